//! Weight access for the model code: one [`Weights`] type over the two checkpoint formats the engine
//! reads, a GGUF file (memory-mapped; tensors stay quantized as [`QTensor`]s, or are handed to the
//! kernels' repacking row by row in place, [`FileRows`]) and an HF safetensors checkpoint
//! directory (single file or sharded index, memory-mapped; tensors keep their stored dtype). Model files
//! ask for tensors by GGUF-style logical names and [`Weights`] translates them for safetensors, so each
//! architecture is written once. Every failure names the file and the tensor or field at fault.

use crate::engine::gguf_info::GgufHeader;
use crate::engine::hf_names::model_type;
pub use crate::engine::hf_names::{hf_name, hf_name_for};
pub use crate::engine::mapped::FileRows;
use crate::engine::mapped::{release, release_bytes};
use crate::engine::models::linear::Quantize;
use crate::engine::models::lora::Lora;
use crate::engine::EngineError;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One loaded tensor: quantized (GGUF) or dense (safetensors or GGUF F32/F16 tensors).
pub enum Weight {
    /// A GGUF tensor kept in its quantized block format.
    Quantized(Arc<QTensor>),
    /// A dense tensor in its stored dtype.
    Dense(Tensor),
}

/// Where a 2-D quantized GGUF tensor's blocks lie in the file, for reading them row by row
/// ([`Weights::rows`]) straight into the engine's repacked layout.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// The tensor's GGUF name.
    pub name: String,
    pub dtype: GgmlDType,
    /// Rows (output features) and columns (input features, contiguous).
    pub rows: usize,
    pub cols: usize,
    /// Bytes per row.
    pub row_bytes: usize,
    /// Absolute file offset of row 0.
    offset: u64,
}

/// A model checkpoint opened for reading tensors and its configuration.
pub enum Weights {
    /// A GGUF file: its header, which holds the whole file mapped read-only (tensors are read on demand).
    Gguf {
        header: Arc<GgufHeader>,
        device: Device,
        lora: Lora,
        /// Quantization of dense 2-D weights at load (`--quantize`).
        quantize: Option<Quantize>,
    },
    /// An HF checkpoint directory: `config.json` plus memory-mapped safetensors shards.
    Safetensors {
        dir: PathBuf,
        config: serde_json::Value,
        tensors: candle_core::safetensors::MmapedSafetensors,
        device: Device,
        /// LoRA adapters applied to the tensors as they are loaded (empty unless attached).
        lora: Lora,
        /// Quantization of dense 2-D weights at load (`--quantize`).
        quantize: Option<Quantize>,
    },
}

fn model_err(path: &Path, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: problem.into() }
}

impl Weights {
    /// Opens a `.gguf` file (reading only its header) or an HF checkpoint directory.
    pub fn open(path: &Path, device: &Device) -> Result<Self, EngineError> {
        if path.is_dir() {
            Self::open_safetensors(path, device)
        } else {
            Self::open_gguf(path, device)
        }
    }

    fn open_gguf(path: &Path, device: &Device) -> Result<Self, EngineError> {
        Ok(Self::from_gguf(Arc::new(GgufHeader::read(path)?), device))
    }

    /// The weights of a GGUF file whose header was already read (and checked: every tensor lies
    /// inside the file), so that one load parses it once for the tokenizer, template and weights.
    pub fn from_gguf(header: Arc<GgufHeader>, device: &Device) -> Self {
        // The header's pages (mostly the vocabulary) are not needed again.
        release(&header.map, 0, header.content.tensor_data_offset as usize);
        let (lora, quantize) = (Lora::default(), None);
        Weights::Gguf { header, device: device.clone(), lora, quantize }
    }

    fn open_safetensors(dir: &Path, device: &Device) -> Result<Self, EngineError> {
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| model_err(&config_path, format!("cannot read: {e}")))?;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| model_err(&config_path, format!("invalid JSON: {e}")))?;
        let files = safetensors_files(dir)?;
        // SAFETY: the checkpoint files are mapped read-only; like every inference engine we assume
        // nobody rewrites them while the model is loading (tensors are copied out during loading).
        let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| model_err(dir, format!("cannot map safetensors: {e}")))?;
        refuse_repeated_tensors(dir, &files)?;
        let lora = Lora::default();
        let quantize = None;
        Ok(Weights::Safetensors { dir: dir.to_path_buf(), config, tensors, device: device.clone(), lora, quantize })
    }

    /// The file or directory these weights come from.
    pub fn path(&self) -> &Path {
        match self {
            Weights::Gguf { header, .. } => &header.path,
            Weights::Safetensors { dir, .. } => dir,
        }
    }

    /// The device tensors are loaded onto.
    pub fn device(&self) -> &Device {
        match self {
            Weights::Gguf { device, .. } | Weights::Safetensors { device, .. } => device,
        }
    }

    /// Attaches LoRA adapters: every tensor loaded from now on gets theirs (see [`Lora`]).
    pub fn attach_lora(&mut self, mut adapters: Lora) {
        adapters.arch = self.hf_config().map(model_type).unwrap_or_default().to_string();
        *self.lora_mut() = adapters;
    }

    /// The attached adapters (empty when none).
    pub fn lora(&self) -> &Lora {
        match self {
            Weights::Gguf { lora, .. } | Weights::Safetensors { lora, .. } => lora,
        }
    }

    /// Asks for dense 2-D weights to be quantized as the layers load them (see
    /// [`crate::engine::models::linear::QLinear::load`]); GGUF's quantized tensors stay as they are.
    pub fn set_quantize(&mut self, q: Option<Quantize>) {
        match self {
            Weights::Gguf { quantize, .. } | Weights::Safetensors { quantize, .. } => *quantize = q,
        }
    }

    /// The quantization asked for with [`Weights::set_quantize`].
    pub fn quantize(&self) -> Option<Quantize> {
        match self {
            Weights::Gguf { quantize, .. } | Weights::Safetensors { quantize, .. } => *quantize,
        }
    }

    pub(crate) fn lora_mut(&mut self) -> &mut Lora {
        match self {
            Weights::Gguf { lora, .. } | Weights::Safetensors { lora, .. } => lora,
        }
    }

    /// The architecture name: GGUF `general.architecture`, or the HF `model_type`.
    pub fn architecture(&self) -> Result<String, EngineError> {
        match self {
            Weights::Gguf { .. } => self.meta_str("general.architecture"),
            Weights::Safetensors { config, dir, .. } => config
                .get("model_type")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| model_err(&dir.join("config.json"), "missing field `model_type`")),
        }
    }

    /// The GGUF metadata value `key`, if this is a GGUF file that has it.
    pub fn meta(&self, key: &str) -> Option<&gguf_file::Value> {
        match self {
            Weights::Gguf { header, .. } => header.content.metadata.get(key),
            Weights::Safetensors { .. } => None,
        }
    }

    /// A required GGUF metadata string.
    pub fn meta_str(&self, key: &str) -> Result<String, EngineError> {
        let v = self.meta(key).ok_or_else(|| model_err(self.path(), format!("missing metadata `{key}`")))?;
        v.to_string().cloned().map_err(|e| model_err(self.path(), format!("metadata `{key}`: {e}")))
    }

    /// A required GGUF metadata integer (any integer width).
    pub fn meta_usize(&self, key: &str) -> Result<usize, EngineError> {
        let v = self.meta(key).ok_or_else(|| model_err(self.path(), format!("missing metadata `{key}`")))?;
        v.to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .map_err(|e| e.to_string())
            .or_else(|_| match v.to_i32() {
                Ok(x) => u64::try_from(x).map_err(|_| format!("is {x}: must not be negative")),
                Err(e) => Err(e.to_string()),
            })
            .map(|x| x as usize)
            .map_err(|e| model_err(self.path(), format!("metadata `{key}`: {e}")))
    }

    /// An optional GGUF metadata integer: `default` when the key is absent, an error when it is there
    /// but not a non-negative integer (a bad value is not silently replaced).
    pub fn meta_usize_or(&self, key: &str, default: usize) -> Result<usize, EngineError> {
        match self.meta(key) {
            None => Ok(default),
            Some(_) => self.meta_usize(key),
        }
    }

    /// An optional GGUF metadata float.
    pub fn meta_f32(&self, key: &str) -> Result<Option<f32>, EngineError> {
        match self.meta(key) {
            None => Ok(None),
            Some(v) => v
                .to_f32()
                .or_else(|_| v.to_f64().map(|x| x as f32))
                .map(Some)
                .map_err(|e| model_err(self.path(), format!("metadata `{key}`: {e}"))),
        }
    }

    /// The HF `config.json` (None for GGUF).
    pub fn hf_config(&self) -> Option<&serde_json::Value> {
        match self {
            Weights::Safetensors { config, .. } => Some(config),
            Weights::Gguf { .. } => None,
        }
    }

    /// Whether a tensor exists. Names are GGUF names; safetensors names are derived with [`hf_name_for`].
    pub fn contains(&self, name: &str) -> bool {
        if self.lora().replaces(name) {
            return true;
        }
        match self {
            Weights::Gguf { header, .. } => header.content.tensor_infos.contains_key(name),
            Weights::Safetensors { tensors, config, .. } => {
                hf_name_for(model_type(config), name).is_some_and(|n| tensors.get(&n).is_ok())
            }
        }
    }

    /// The dims of a tensor (row-major, e.g. `[vocab, n_embd]` for `token_embd.weight`).
    pub fn tensor_dims(&self, name: &str) -> Option<Vec<usize>> {
        match self {
            Weights::Gguf { header, .. } => header.content.tensor_infos.get(name).map(|i| i.shape.dims().to_vec()),
            Weights::Safetensors { tensors, config, .. } => {
                hf_name_for(model_type(config), name).and_then(|n| tensors.get(&n).ok().map(|v| v.shape().to_vec()))
            }
        }
    }

    /// Loads one tensor by its GGUF name; quantized GGUF tensors stay quantized. Attached LoRA
    /// adapters replace (`modules_to_save`) or are merged into dense tensors here; quantized ones get
    /// theirs as side products from `Weights::lora_side` (in [`crate::engine::models::lora`]).
    pub fn load(&mut self, name: &str) -> Result<Weight, EngineError> {
        if self.lora().is_empty() {
            return self.load_stored(name);
        }
        let heads = self.lora_heads(name);
        let dims = self.tensor_dims(name);
        if let Some(t) = self.lora_mut().take_replacement(name, dims.as_deref(), heads)? {
            return Ok(Weight::Dense(t));
        }
        match self.load_stored(name)? {
            Weight::Dense(t) => Ok(Weight::Dense(self.lora_mut().merge(name, t, heads)?)),
            q => Ok(q),
        }
    }

    fn load_stored(&mut self, name: &str) -> Result<Weight, EngineError> {
        match self {
            Weights::Gguf { header, device, .. } => {
                let (path, content, map) = (&header.path, &header.content, &header.map);
                let bad = |e: candle_core::Error| model_err(path, format!("tensor `{name}`: {e}"));
                let q = content.tensor(&mut Cursor::new(&map[..]), name, device).map_err(bad)?;
                // Copied out now: the file pages need not stay in the resident set (as for safetensors).
                if let Some(info) = content.tensor_infos.get(name) {
                    let bytes = info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
                    release(map, (content.tensor_data_offset + info.offset) as usize, bytes);
                }
                let dtype = match q.dtype() {
                    GgmlDType::F16 => DType::F16,
                    _ => DType::BF16,
                };
                match q.dtype() {
                    // 16-bit matrices stay 16-bit on the CPU, for the engine's 16-bit products
                    // (`convert_hf_to_gguf.py` writes f16 or bf16 files unless asked to quantize).
                    GgmlDType::F16 | GgmlDType::BF16 if device.is_cpu() && q.shape().rank() == 2 => {
                        let data = q.data().map_err(bad)?;
                        Ok(Weight::Dense(Tensor::from_raw_buffer(&data, dtype, q.shape().dims(), device).map_err(bad)?))
                    }
                    // Small or unquantized tensors (norms, biases) are used as plain f32 tensors.
                    GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                        Ok(Weight::Dense(q.dequantize(device).map_err(bad)?))
                    }
                    _ => Ok(Weight::Quantized(Arc::new(q))),
                }
            }
            Weights::Safetensors { dir, tensors, device, config, .. } => {
                let hf = hf_name_for(model_type(config), name)
                    .ok_or_else(|| model_err(dir, format!("no HF name for tensor `{name}`")))?;
                let t = tensors.load(&hf, device).map_err(|e| model_err(dir, format!("tensor `{hf}`: {e}")))?;
                // The tensor is a copy now: its file pages would otherwise stay in the resident set
                // until the mapping is dropped, twice the checkpoint's size by the end of loading.
                if let Ok(view) = tensors.get(&hf) {
                    release_bytes(view.data());
                }
                Ok(Weight::Dense(t))
            }
        }
    }

    /// The location of a quantized 2-D GGUF tensor, when the weights are a GGUF file loaded onto the
    /// CPU; `None` otherwise (safetensors, another device, F32/F16 tensors, other ranks).
    pub fn raw_tensor(&self, name: &str) -> Option<RawTensor> {
        let Weights::Gguf { header, device, .. } = self else { return None };
        let content = &header.content;
        if self.lora().replaces(name) {
            return None;
        }
        let info = content.tensor_infos.get(name)?;
        if !device.is_cpu() || matches!(info.ggml_dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
            return None;
        }
        // GGUF dims are stored innermost first; candle's shape is row-major `[rows, cols]`.
        let &[rows, cols] = info.shape.dims() else { return None };
        let (block, size) = (info.ggml_dtype.block_size(), info.ggml_dtype.type_size());
        if !cols.is_multiple_of(block) {
            return None;
        }
        let offset = content.tensor_data_offset + info.offset;
        Some(RawTensor {
            name: name.to_string(),
            dtype: info.ggml_dtype,
            rows,
            cols,
            row_bytes: cols / block * size,
            offset,
        })
    }

    /// The rows of `t` in place in the mapped file, for [`crate::engine::kernels::QMatrix::from_gguf_rows`]:
    /// loading then needs no copy of a tensor besides its repacked form.
    pub fn rows(&self, t: &RawTensor) -> Result<FileRows<'_>, EngineError> {
        let Weights::Gguf { header, .. } = self else {
            return Err(model_err(self.path(), "not a GGUF file"));
        };
        let (path, map) = (&header.path, &header.map);
        let start = t.offset as usize;
        let end = start + t.rows * t.row_bytes;
        // `GgufHeader::read` checked that every tensor lies inside the file; a `RawTensor` of another file could not.
        if end > map.len() {
            return Err(model_err(path, format!("tensor `{}` ends at byte {end}, past the end of the file", t.name)));
        }
        Ok(FileRows { map, start, row_bytes: t.row_bytes, rows: t.rows })
    }

    /// Loads a small tensor (norm weight, bias) as dense f32.
    pub fn load_f32(&mut self, name: &str) -> Result<Tensor, EngineError> {
        let path = self.path().to_path_buf();
        let t = match self.load(name)? {
            Weight::Dense(t) => t,
            Weight::Quantized(q) => {
                q.dequantize(&q.device()).map_err(|e| model_err(&path, format!("tensor `{name}`: {e}")))?
            }
        };
        t.to_dtype(DType::F32).map_err(|e| model_err(&path, format!("tensor `{name}`: {e}")))
    }
}

/// Refuses a tensor held by two of the files: mapped together, the later file's copy would silently
/// win (a full `model.safetensors` left beside the shards that replaced it, two checkpoints in one
/// directory).
fn refuse_repeated_tensors(dir: &Path, files: &[PathBuf]) -> Result<(), EngineError> {
    if files.len() < 2 {
        return Ok(());
    }
    let mut holder: std::collections::HashMap<String, &Path> = std::collections::HashMap::new();
    for file in files {
        // SAFETY: as in `open_safetensors`: read-only, and only the header is read here.
        let one = unsafe { candle_core::safetensors::MmapedSafetensors::new(file) }
            .map_err(|e| model_err(file, format!("cannot map safetensors: {e}")))?;
        for (name, _) in one.tensors() {
            if let Some(first) = holder.insert(name.clone(), file) {
                return Err(model_err(
                    dir,
                    format!(
                        "tensor `{name}` is in both {} and {}: a checkpoint directory holds one model's files",
                        first.display(),
                        file.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The tensor and parameter counts of a checkpoint's safetensors files, from their headers (mapped;
/// no tensor data is read). A file that is not whole (cut short, not safetensors, a tensor past its
/// end) is an error naming it: `models info` must not describe a checkpoint that cannot load.
pub fn safetensors_counts(files: &[PathBuf]) -> Result<(usize, u64), EngineError> {
    let (mut tensors, mut parameters) = (0usize, 0u64);
    for file in files {
        // SAFETY: mapped read-only to read the header; nothing is kept past this loop.
        let mapped = unsafe { candle_core::safetensors::MmapedSafetensors::new(file) }
            .map_err(|e| model_err(file, format!("not a whole safetensors file: {e}")))?;
        for (_, view) in mapped.tensors() {
            tensors += 1;
            parameters += view.shape().iter().map(|&d| d as u64).product::<u64>();
        }
    }
    // Counted as the loader would load them: a tensor two files hold is the same refusal here.
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        refuse_repeated_tensors(dir, files)?;
    }
    Ok((tensors, parameters))
}

/// Whether `path` is a weights file of a checkpoint directory without an index: a `*.safetensors`
/// file other than a PEFT adapter's (`adapter_model.safetensors`, which a trainer saves beside the
/// base's files and which is loaded only with `--lora`).
pub fn is_weights_file(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "safetensors")
        && path.file_name().is_none_or(|n| n != "adapter_model.safetensors")
}

/// The safetensors files of a checkpoint directory: the shards listed in
/// `model.safetensors.index.json`, or every `*.safetensors` file.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| model_err(&index, format!("cannot read: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| model_err(&index, format!("invalid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| model_err(&index, "missing field `weight_map`"))?;
        let mut files: Vec<PathBuf> = map.values().filter_map(|f| f.as_str()).map(|f| dir.join(f)).collect::<Vec<_>>();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| model_err(dir, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_weights_file(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(model_err(dir, "no *.safetensors files in the checkpoint directory"));
    }
    Ok(files)
}

/// Reads an optional number from an HF config, checking its type.
pub fn hf_f64(config: &serde_json::Value, key: &str) -> Option<f64> {
    config.get(key).and_then(|v| v.as_f64())
}

/// Reads a required integer from an HF config.
pub fn hf_usize(config: &serde_json::Value, key: &str, dir: &Path) -> Result<usize, EngineError> {
    config
        .get(key)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .ok_or_else(|| model_err(&dir.join("config.json"), format!("missing or non-integer field `{key}`")))
}
