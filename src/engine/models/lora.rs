//! PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`) applied at load. An adapter
//! adds `scale · B·A` to some linear weights `W` (`[out, in]`, A `[r, in]`, B `[out, r]`), with `scale =
//! lora_alpha / r` (`lora_alpha / √r` under rsLoRA). Dense weights (safetensors, F32/F16 GGUF tensors)
//! get the product merged into them as they are read ([`Lora::merge`]); quantized GGUF weights stay as
//! they are and their layer runs the adapter next to the quantized product, `y = Wq·x + scale·B(A·x)`
//! ([`LowRank`]), so no tensor is requantized. `modules_to_save` tensors replace the base's outright.
//!
//! The adapters live in [`crate::engine::weights::Weights`], which the model code already asks for
//! every tensor by its GGUF-style name, so the architectures need no change. An adapter tensor that no
//! layer consumed, or whose shape does not fit the base, is an error naming the tensor
//! ([`Lora::check_all_used`]): a LoRA trained on another base must not load quietly.

use crate::engine::weights::{hf_name_for, Weights};
use crate::engine::EngineError;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The projections an adapter may target: the linear layers of the llama-family blocks, phi3's fused
/// ones and starcoder2's MLP.
const TARGETS: [&str; 11] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "qkv_proj",
    "gate_up_proj",
    "c_fc",
    "c_proj",
];

/// An adapter to attach: the name it is known by in model ids (`ORG/REPO`, or the directory's name) and
/// the local directory holding `adapter_config.json` and `adapter_model.safetensors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSource {
    pub name: String,
    pub dir: PathBuf,
}

/// One adapter's product for one weight: `scale · B·A`.
struct Pair {
    /// `[r, in]`, f32.
    a: Tensor,
    /// `[out, r]`, f32.
    b: Tensor,
    scale: f64,
    /// The adapter's tensor name of A, for errors.
    a_name: String,
    /// The adapter directory, for errors.
    dir: PathBuf,
}

/// The low-rank side product of one quantized projection (or of one part of a stacked q|k|v or
/// gate|up projection): adds `scale · (x Aᵀ) Bᵀ` to output columns `at..at + out`.
pub struct LowRank {
    at: usize,
    /// `[in, r]`, contiguous f32.
    a_t: Tensor,
    /// `[r, out]`, contiguous f32, already multiplied by the scale.
    b_t: Tensor,
}

impl LowRank {
    /// The product for `x` (`[rows, in]` f32): `[rows, out]` f32.
    fn delta(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.a_t)?.matmul(&self.b_t)
    }

    /// Adds the product to `y` (`[rows, width]`) for `x` (`[rows, in]`), on tensors.
    pub fn add(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        let d = self.delta(x)?;
        let (width, out) = (y.dim(1)?, d.dim(1)?);
        y + d.pad_with_zeros(1, self.at, width - self.at - out)?
    }

    /// Adds the product to `out` (`[m, width]` row-major) for `x` (`[m, in]`), on CPU slices.
    pub fn add_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> candle_core::Result<()> {
        let k = x.len() / m.max(1);
        let d = self.delta(&Tensor::from_slice(x, (m, k), &Device::Cpu)?)?.flatten_all()?.to_vec1::<f32>()?;
        let (width, n) = (out.len() / m.max(1), d.len() / m.max(1));
        for (row, add) in out.chunks_exact_mut(width).zip(d.chunks_exact(n)) {
            for (y, v) in row[self.at..self.at + n].iter_mut().zip(add) {
                *y += v;
            }
        }
        Ok(())
    }
}

/// The adapters attached to a checkpoint: their A/B pairs by HF module name (`model.layers.3.self_attn.
/// q_proj`) and their `modules_to_save` tensors by HF tensor name, each removed once a layer uses it.
#[derive(Default)]
pub struct Lora {
    pairs: HashMap<String, Vec<Pair>>,
    saved: HashMap<String, (Tensor, String, PathBuf)>,
    /// `name@sha256-prefix` of each adapter, in order.
    ids: Vec<String>,
    /// The base's HF `model_type`, whose module names the adapters use (phi3's `qkv_proj`, starcoder2's `c_fc`).
    pub(crate) arch: String,
}

fn err(path: &Path, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: problem.into() }
}

impl Lora {
    /// Reads the adapters, keeping their tensors as f32 on `device`.
    pub fn open(adapters: &[AdapterSource], device: &Device) -> Result<Self, EngineError> {
        let mut lora = Lora::default();
        for a in adapters {
            lora.add(&a.name, &a.dir, device)?;
        }
        Ok(lora)
    }

    /// Whether no adapter is attached.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `name@hash` of each adapter (its [`AdapterSource::name`] and the first 12 hex digits of the SHA-256
    /// of its two files): what model identities in outputs and caches add for it.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    fn add(&mut self, name: &str, dir: &Path, device: &Device) -> Result<(), EngineError> {
        let config_path = dir.join("adapter_config.json");
        let config_bytes = std::fs::read(&config_path).map_err(|e| err(&config_path, format!("cannot read: {e}")))?;
        let config = AdapterConfig::parse(&config_bytes, &config_path)?;
        let file = dir.join("adapter_model.safetensors");
        if !file.is_file() && dir.join("adapter_model.bin").is_file() {
            return Err(err(dir, "only adapter_model.safetensors is read, not the pickled adapter_model.bin"));
        }
        let bytes = std::fs::read(&file).map_err(|e| err(&file, format!("cannot read: {e}")))?;
        let mut hash = Sha256::new();
        hash.update(&config_bytes);
        hash.update(&bytes);
        let digest = hash.finalize();
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        self.ids.push(format!("{name}@{hex}"));
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| err(&file, format!("not a readable safetensors file: {e}")))?;
        let mut a_of: HashMap<String, (String, Tensor)> = HashMap::new();
        let mut b_of: HashMap<String, (String, Tensor)> = HashMap::new();
        for (key, t) in tensors {
            let bad = |p: String| err(&file, format!("tensor `{key}`: {p}"));
            let t = t.to_dtype(DType::F32).and_then(|t| t.to_device(device)).map_err(|e| bad(e.to_string()))?;
            let inner =
                key.strip_prefix("base_model.model.").ok_or_else(|| bad("not a PEFT LoRA tensor name".into()))?;
            if let Some((module, half)) = split_lora_name(inner) {
                let leaf = module.rsplit('.').next().unwrap_or(module);
                if !TARGETS.contains(&leaf) {
                    return Err(bad(format!("LoRA on `{leaf}` is not supported (only {})", TARGETS.join(", "))));
                }
                let into = if half == 'A' { &mut a_of } else { &mut b_of };
                into.insert(module.to_string(), (key.clone(), t));
            } else if inner.contains("lora_") {
                return Err(bad("LoRA on embeddings or with biases is not supported".into()));
            } else {
                self.saved.insert(inner.to_string(), (t, key.clone(), dir.to_path_buf()));
            }
        }
        for (module, (a_name, a)) in a_of {
            let (_, b) = b_of.remove(&module).ok_or_else(|| err(&file, format!("tensor `{a_name}` has no lora_B")))?;
            let (r, alpha) = config.rank_alpha(&module);
            let rank = a.dim(0)?;
            if rank != r || b.dims().get(1) != Some(&rank) {
                return Err(err(
                    &file,
                    format!("tensor `{a_name}`: rank {rank} (B {:?}) but adapter_config.json gives r = {r}", b.dims()),
                ));
            }
            let scale = if config.use_rslora { alpha / (r as f64).sqrt() } else { alpha / r as f64 };
            let pair = Pair { a, b, scale, a_name, dir: dir.to_path_buf() };
            self.pairs.entry(module).or_default().push(pair);
        }
        if let Some((_, (b_name, _))) = b_of.into_iter().next() {
            return Err(err(&file, format!("tensor `{b_name}` has no lora_A")));
        }
        Ok(())
    }

    /// The `modules_to_save` tensor standing in for the base's `gguf_name`, if an adapter has one.
    pub fn replaces(&self, gguf_name: &str) -> bool {
        hf_name_for(&self.arch, gguf_name).is_some_and(|n| self.saved.contains_key(&n))
    }

    /// Takes the replacement for `gguf_name`, checking it has the base's `dims` (`heads`: as in
    /// [`Lora::take`], for the rows of a llama GGUF q/k projection).
    pub fn take_replacement(
        &mut self,
        gguf_name: &str,
        dims: Option<&[usize]>,
        heads: Option<usize>,
    ) -> Result<Option<Tensor>, EngineError> {
        let Some((t, key, dir)) = hf_name_for(&self.arch, gguf_name).and_then(|n| self.saved.remove(&n)) else {
            return Ok(None);
        };
        if let Some(d) = dims.filter(|d| *d != t.dims()) {
            return Err(err(&dir, format!("tensor `{key}` has shape {:?} but the base's is {d:?}", t.dims())));
        }
        match heads {
            Some(h) => Ok(Some(permute_rows(&t, h)?)),
            None => Ok(Some(t)),
        }
    }

    /// Takes the pairs for the weight `gguf_name` (`[out, in]` = `dims`), checking their shapes. `heads`:
    /// the heads of a llama GGUF q/k projection, whose rows llama.cpp's converter permuted for the
    /// interleaved rotation; B's rows are permuted the same way so the product lands where the base's does.
    fn take(&mut self, gguf_name: &str, dims: &[usize], heads: Option<usize>) -> Result<Vec<Pair>, EngineError> {
        let Some(module) =
            hf_name_for(&self.arch, gguf_name).and_then(|n| n.strip_suffix(".weight").map(str::to_string))
        else {
            return Ok(Vec::new());
        };
        let Some(pairs) = self.pairs.remove(&module) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(pairs.len());
        for mut p in pairs {
            let (a, b) = (p.a.dims().to_vec(), p.b.dims().to_vec());
            if dims.len() != 2 || a[1] != dims[1] || b[0] != dims[0] {
                return Err(err(
                    &p.dir,
                    format!(
                        "tensor `{}`: A {a:?} and B {b:?} do not fit the base's `{module}.weight` {dims:?}",
                        p.a_name
                    ),
                ));
            }
            if let Some(h) = heads {
                p.b = permute_rows(&p.b, h)?;
            }
            out.push(p);
        }
        Ok(out)
    }

    /// `W + Σ scale·B·A` for the dense weight `gguf_name`, computed in f32 and stored back in W's dtype
    /// (what PEFT's `merge_and_unload` would save).
    pub fn merge(&mut self, gguf_name: &str, w: Tensor, heads: Option<usize>) -> Result<Tensor, EngineError> {
        let pairs = self.take(gguf_name, w.dims(), heads)?;
        if pairs.is_empty() {
            return Ok(w);
        }
        let dtype = w.dtype();
        let mut merged = w.to_dtype(DType::F32)?;
        for p in pairs {
            merged = (merged + (p.b.matmul(&p.a)? * p.scale)?)?;
        }
        Ok(merged.to_dtype(dtype)?)
    }

    /// The side products of the quantized weights `names` (each `[rows, in]` = `dims[i]`), stacked in order
    /// into one output (as [`super::linear::Stacked`] does).
    pub fn side(&mut self, names: &[(String, Vec<usize>, Option<usize>)]) -> Result<Vec<LowRank>, EngineError> {
        let mut out = Vec::new();
        let mut at = 0;
        for (name, dims, heads) in names {
            for p in self.take(name, dims, *heads)? {
                let a_t = p.a.t()?.contiguous()?;
                let b_t = (p.b.t()?.contiguous()? * p.scale)?;
                out.push(LowRank { at, a_t, b_t });
            }
            at += dims.first().copied().unwrap_or(0);
        }
        Ok(out)
    }

    /// Fails on the first adapter tensor no layer of the base used: its module is not in the base.
    pub fn check_all_used(&self, base: &Path) -> Result<(), EngineError> {
        if let Some((module, p)) = self.pairs.iter().flat_map(|(m, ps)| ps.iter().map(move |p| (m, p))).next() {
            return Err(err(
                &p.dir,
                format!("tensor `{}`: the base {} has no `{module}` projection", p.a_name, base.display()),
            ));
        }
        if let Some((name, (_, key, dir))) = self.saved.iter().next() {
            return Err(err(dir, format!("tensor `{key}`: the base {} has no `{name}`", base.display())));
        }
        Ok(())
    }
}

impl Weights {
    /// The adapters' side products for the quantized weights `{name}.weight` of `names`, stacked in order.
    pub fn lora_side(&mut self, names: &[String]) -> Result<Vec<LowRank>, EngineError> {
        if self.lora().is_empty() {
            return Ok(Vec::new());
        }
        let mut parts = Vec::with_capacity(names.len());
        for n in names {
            let name = format!("{n}.weight");
            let dims = self.tensor_dims(&name).unwrap_or_default();
            let heads = self.lora_heads(&name);
            parts.push((name, dims, heads));
        }
        self.lora_mut().side(&parts)
    }

    /// For a q or k projection of a llama GGUF file, its head count: llama.cpp's converter permuted
    /// those rows (see [`Lora`]'s use of it); None for every other tensor.
    pub(crate) fn lora_heads(&self, name: &str) -> Option<usize> {
        if !matches!(self, Weights::Gguf { .. }) || self.lora().is_empty() {
            return None;
        }
        if self.meta_str("general.architecture").ok()? != "llama" {
            return None;
        }
        let q_heads = self.meta_usize("llama.attention.head_count").ok()?;
        match name.strip_prefix("blk.")?.split_once('.')?.1 {
            "attn_q.weight" => Some(q_heads),
            "attn_k.weight" => Some(self.meta_usize("llama.attention.head_count_kv").unwrap_or(q_heads)),
            _ => None,
        }
    }
}

/// `(module, 'A' | 'B')` for `model.layers.0.self_attn.q_proj.lora_A.weight` (also with PEFT's adapter
/// name, `.lora_A.default.weight`, as in-memory state dicts have it).
fn split_lora_name(inner: &str) -> Option<(&str, char)> {
    let stem = inner.strip_suffix(".weight")?;
    let stem = stem.strip_suffix(".default").unwrap_or(stem);
    for (suffix, half) in [(".lora_A", 'A'), (".lora_B", 'B')] {
        if let Some(module) = stem.strip_suffix(suffix) {
            return Some((module, half));
        }
    }
    None
}

/// llama.cpp's q/k permutation: within each head, the rows of the two rotate-half halves are interleaved.
fn permute_rows(b: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, r) = b.dims2()?;
    let hd = out / heads.max(1);
    b.reshape((heads, 2, hd / 2, r))?.transpose(1, 2)?.contiguous()?.reshape((out, r))
}

/// The fields of `adapter_config.json` that loading needs.
struct AdapterConfig {
    r: usize,
    alpha: f64,
    use_rslora: bool,
    /// In the file's order: PEFT takes the first key that matches, after an exact one.
    rank_pattern: Vec<(String, usize)>,
    alpha_pattern: Vec<(String, f64)>,
}

/// A JSON object's entries in the order the file gives them (`serde_json::Value` sorts its keys).
struct InFileOrder(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for InFileOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = InFileOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<InFileOrder, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(InFileOrder(entries))
            }
            fn visit_unit<E>(self) -> Result<InFileOrder, E> {
                Ok(InFileOrder(Vec::new()))
            }
        }
        d.deserialize_any(Entries)
    }
}

/// The pattern fields of `adapter_config.json`, read in the file's order.
#[derive(serde::Deserialize)]
struct Patterns {
    #[serde(default)]
    rank_pattern: Option<InFileOrder>,
    #[serde(default)]
    alpha_pattern: Option<InFileOrder>,
}

impl AdapterConfig {
    fn parse(bytes: &[u8], path: &Path) -> Result<Self, EngineError> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err(path, format!("invalid JSON: {e}")))?;
        if !v.is_object() {
            return Err(err(path, format!("expected a JSON object, found {}", crate::json_line::kind(&v))));
        }
        let field = |name: &str| v.get(name).filter(|x| !x.is_null());
        let kind = field("peft_type").and_then(|x| x.as_str()).unwrap_or("LORA");
        if kind != "LORA" {
            return Err(err(path, format!("field `peft_type`: `{kind}` adapters are not supported (only LORA)")));
        }
        if field("use_dora").and_then(|x| x.as_bool()) == Some(true) {
            return Err(err(path, "field `use_dora`: DoRA adapters are not supported"));
        }
        // Settings under which the adapter computes something other than W + (alpha/r)·B·A on the
        // base as published: refused by name rather than applied as plain LoRA.
        let set = |name: &str| {
            field(name).is_some_and(|x| {
                x.as_bool() != Some(false)
                    && x.as_array().is_none_or(|a| !a.is_empty())
                    && x.as_object().is_none_or(|o| !o.is_empty())
            })
        };
        for (name, what) in [
            ("layer_replication", "the base's layers are replicated before the adapter applies"),
            ("use_qalora", "QA-LoRA pools the adapter's input"),
            ("alora_invocation_tokens", "activated LoRA applies only after its invocation tokens"),
            ("use_bdlora", "block-diagonal LoRA"),
            ("lora_bias", "the adapter's B carries a bias"),
            ("target_parameters", "the adapter targets parameters, not modules"),
            ("trainable_token_indices", "the adapter trains embedding rows"),
        ] {
            if set(name) {
                return Err(err(path, format!("field `{name}`: not supported ({what})")));
            }
        }
        // These initialisations change the base's own weights; an adapter saved without converting
        // back (PEFT then records `init_lora_weights: true`) is only right on that changed base.
        if let Some(init) = field("init_lora_weights").and_then(|x| x.as_str()) {
            let lower = init.to_ascii_lowercase();
            if ["pissa", "olora", "loftq", "corda"].iter().any(|m| lower.starts_with(m)) {
                return Err(err(
                    path,
                    format!(
                        "field `init_lora_weights`: `{init}` adapters hold the difference to a base that \
                         initialisation changed; save the adapter converted to plain LoRA \
                         (PEFT's `path_initial_model_for_weight_conversion`)"
                    ),
                ));
            }
        }
        if let Some(bias) = field("bias").and_then(|x| x.as_str()).filter(|b| *b != "none") {
            return Err(err(path, format!("field `bias`: `{bias}` is not supported (only \"none\")")));
        }
        if let Some(list) = field("target_modules").and_then(|x| x.as_array()) {
            for m in list.iter().filter_map(|m| m.as_str()) {
                let leaf = m.rsplit('.').next().unwrap_or(m);
                if !TARGETS.contains(&leaf) {
                    let supported = TARGETS.join(", ");
                    return Err(err(
                        path,
                        format!("field `target_modules`: `{m}` is not supported (only {supported})"),
                    ));
                }
            }
        }
        let r = field("r")
            .and_then(|x| x.as_u64())
            .filter(|&r| r > 0)
            .ok_or_else(|| err(path, "field `r`: missing or not a positive integer"))? as usize;
        let alpha = match field("lora_alpha") {
            None => 8.0, // PEFT's default
            Some(x) => x.as_f64().ok_or_else(|| err(path, "field `lora_alpha`: not a number"))?,
        };
        // The scale alpha/r is applied in f32: an alpha that overflows it would make every output NaN.
        let in_range = |name: &str, a: f64| match (a as f32).is_finite() {
            true => Ok(a),
            false => Err(err(path, format!("field `{name}`: {a:e} is out of range (the scale alpha/r is an f32)"))),
        };
        let alpha = in_range("lora_alpha", alpha)?;
        let patterns: Patterns = serde_json::from_slice(bytes)
            .map_err(|e| err(path, format!("fields `rank_pattern`/`alpha_pattern`: not objects ({e})")))?;
        let mut rank_pattern = Vec::new();
        for (k, x) in patterns.rank_pattern.map(|p| p.0).unwrap_or_default() {
            let r = x.as_u64().ok_or_else(|| err(path, format!("field `rank_pattern.{k}`: not an integer")))?;
            rank_pattern.push((k, r as usize));
        }
        let mut alpha_pattern = Vec::new();
        for (k, x) in patterns.alpha_pattern.map(|p| p.0).unwrap_or_default() {
            let a = x.as_f64().ok_or_else(|| err(path, format!("field `alpha_pattern.{k}`: not a number")))?;
            alpha_pattern.push((k.clone(), in_range(&format!("alpha_pattern.{k}"), a)?));
        }
        // `fan_in_fan_out` only applies to GPT-2's Conv1D layers: PEFT resets it to false for the
        // nn.Linear projections of every architecture loaded here, so it is read and ignored alike.
        let use_rslora = field("use_rslora").and_then(|x| x.as_bool()).unwrap_or(false);
        Ok(AdapterConfig { r, alpha, use_rslora, rank_pattern, alpha_pattern })
    }

    /// The rank and alpha of `module`: a `rank_pattern`/`alpha_pattern` key that is the module's name,
    /// else the first in the file that is a dotted suffix of it (PEFT matches keys as `(.*\.)?key$`,
    /// exact names first), else the adapter's `r`/`lora_alpha`. One rule, so overlapping keys
    /// (`down_proj` and `layers.1.mlp.down_proj`) give the same scale on every run.
    fn rank_alpha(&self, module: &str) -> (usize, f64) {
        fn pick<T: Copy>(pattern: &[(String, T)], module: &str, default: T) -> T {
            let exact = pattern.iter().find(|(k, _)| k == module);
            let suffix = || pattern.iter().find(|(k, _)| module.ends_with(&format!(".{k}")));
            exact.or_else(suffix).map_or(default, |(_, v)| *v)
        }
        (pick(&self.rank_pattern, module, self.r), pick(&self.alpha_pattern, module, self.alpha))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lora_tensor_names_split_into_module_and_half() {
        assert_eq!(
            split_lora_name("model.layers.3.self_attn.q_proj.lora_A.weight"),
            Some(("model.layers.3.self_attn.q_proj", 'A'))
        );
        assert_eq!(
            split_lora_name("model.layers.0.mlp.up_proj.lora_B.default.weight"),
            Some(("model.layers.0.mlp.up_proj", 'B'))
        );
        assert_eq!(split_lora_name("lm_head.weight"), None);
    }

    #[test]
    fn config_scales_and_patterns() {
        let json = br#"{"r": 8, "lora_alpha": 16, "use_rslora": true, "rank_pattern": {"q_proj": 4},
                        "alpha_pattern": {"model.layers.1.mlp.down_proj": 2}, "bias": "none"}"#;
        let c = AdapterConfig::parse(json, Path::new("a.json")).unwrap();
        assert!(c.use_rslora);
        assert_eq!(c.rank_alpha("model.layers.0.self_attn.q_proj"), (4, 16.0));
        assert_eq!(c.rank_alpha("model.layers.1.mlp.down_proj"), (8, 2.0));
        assert_eq!(c.rank_alpha("model.layers.0.mlp.down_proj"), (8, 16.0));
    }

    #[test]
    fn config_refuses_what_is_not_supported() {
        let bad = |json: &str| AdapterConfig::parse(json.as_bytes(), Path::new("a.json")).err().unwrap().to_string();
        assert!(bad(r#"{"r": 8, "use_dora": true}"#).contains("use_dora"));
        assert!(bad(r#"{"r": 8, "target_modules": ["q_proj", "embed_tokens"]}"#).contains("embed_tokens"));
        assert!(bad(r#"{"r": 8, "bias": "all"}"#).contains("field `bias`"));
        assert!(bad(r#"{"lora_alpha": 8}"#).contains("field `r`"));
        assert!(bad(r#"{"r": 8, "lora_alpha": -1e40}"#).contains("field `lora_alpha`: -1e40 is out of range"));
        assert!(bad(r#"{"r": 8, "alpha_pattern": {"q_proj": 1e300}}"#).contains("alpha_pattern.q_proj"));
        assert!(bad(r#"[{"r": 8}]"#).contains("expected a JSON object, found an array"));
        assert!(bad(r#"{"r": 8, "peft_type": "IA3"}"#).contains("IA3"));
        assert!(bad(r#"{"r": 8, "layer_replication": [[0, 2], [1, 2]]}"#).contains("field `layer_replication`"));
        assert!(bad(r#"{"r": 8, "use_qalora": true}"#).contains("field `use_qalora`"));
        assert!(bad(r#"{"r": 8, "alora_invocation_tokens": [5, 6]}"#).contains("alora_invocation_tokens"));
        assert!(bad(r#"{"r": 8, "init_lora_weights": "pissa_niter_4"}"#).contains("path_initial_model_for_weight"));
        assert!(bad(r#"{"r": 8, "init_lora_weights": "loftq"}"#).contains("init_lora_weights"));
        // Their off values, as PEFT writes them into every config, are plain LoRA.
        let off = r#"{"r": 8, "layer_replication": null, "use_qalora": false, "alora_invocation_tokens": null,
                      "lora_bias": false, "target_parameters": [], "trainable_token_indices": null,
                      "init_lora_weights": true}"#;
        assert!(AdapterConfig::parse(off.as_bytes(), Path::new("a.json")).is_ok());
        assert!(AdapterConfig::parse(br#"{"r": 8, "init_lora_weights": "gaussian"}"#, Path::new("a.json")).is_ok());
    }

    #[test]
    fn overlapping_pattern_keys_follow_peft_exact_first_then_the_files_order() {
        let json = br#"{"r": 8, "lora_alpha": 16,
            "alpha_pattern": {"mlp.down_proj": 300, "down_proj": 3, "model.layers.1.mlp.down_proj": 3000},
            "rank_pattern": {"z_proj": 1, "q_proj": 2, "self_attn.q_proj": 4}}"#;
        let c = AdapterConfig::parse(json, Path::new("a.json")).unwrap();
        for _ in 0..3 {
            assert_eq!(c.rank_alpha("model.layers.1.mlp.down_proj"), (8, 3000.0), "exact name first");
            assert_eq!(c.rank_alpha("model.layers.0.mlp.down_proj"), (8, 300.0), "then the first in the file");
            assert_eq!(c.rank_alpha("model.layers.0.self_attn.q_proj"), (2, 16.0));
        }
    }

    #[test]
    fn permuted_rows_follow_llama_cpp() {
        // One head of 4 rows (two halves of 2): llama.cpp orders them 0, 2, 1, 3.
        let b = Tensor::from_vec(vec![0f32, 1., 2., 3.], (4, 1), &Device::Cpu).unwrap();
        let p = permute_rows(&b, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(p, vec![0., 2., 1., 3.]);
    }
}
