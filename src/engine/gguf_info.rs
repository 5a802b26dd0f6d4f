//! GGUF metadata inspection: reading a file's header (metadata and tensor table, never the tensor data),
//! typed accessors that name the file and key when a field is missing or mistyped, and the summary that
//! `unitcoder models info` prints. The tokenizer and chat-template builders read their metadata here.

use crate::engine::EngineError;
use candle_core::quantized::gguf_file::{Content, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Architectures the engine reads as GGUF files (`general.architecture`); HF checkpoints: `models::SUPPORTED`.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3"];

/// A GGUF file's header: its metadata and tensor table, plus the path for error messages.
pub struct GgufHeader {
    /// The file the header was read from.
    pub path: PathBuf,
    /// candle's parsed header (metadata, tensor infos, data offset).
    pub content: Content,
    /// File size in bytes.
    pub file_size: u64,
    /// The whole file, mapped read-only: the weights read their tensors from it
    /// ([`crate::engine::weights::Weights::from_gguf`]).
    pub map: memmap2::Mmap,
}

impl std::fmt::Debug for GgufHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tensors = self.content.tensor_infos.len();
        f.debug_struct("GgufHeader").field("path", &self.path).field("tensors", &tensors).finish_non_exhaustive()
    }
}

thread_local! {
    /// Headers parsed on this thread ([`GgufHeader::parses_on_this_thread`]).
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn model_err(path: &Path, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: problem.into() }
}

impl GgufHeader {
    /// Reads the header of `path`; a missing, truncated or non-GGUF file is an error naming the file.
    /// Also checks that every tensor's data lies inside the file, so truncation is caught before loading.
    pub fn read(path: &Path) -> Result<Self, EngineError> {
        let file = File::open(path).map_err(|e| model_err(path, format!("cannot open: {e}")))?;
        let file_size = file.metadata().map_err(|e| model_err(path, e.to_string()))?.len();
        // Parsed from a memory map: candle's parser asks its reader for the position at every
        // string, which a `BufReader<File>` answers with an `lseek` each (~300k for Qwen's
        // vocabulary and merges, most of the parse time). Only the header's pages are touched.
        // SAFETY: mapped read-only; as for the weights, nobody is assumed to rewrite the model file
        // while it is read.
        if file_size == 0 {
            return Err(model_err(path, "not a GGUF file (empty)"));
        }
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| model_err(path, format!("cannot map: {e}")))?;
        PARSES.with(|n| n.set(n.get() + 1));
        let mut reader = Cursor::new(&map[..]);
        let content = match Content::read(&mut reader) {
            Ok(content) => content,
            Err(e) => {
                // candle appends a backtrace to some errors when RUST_BACKTRACE is set; keep the message.
                let full = e.to_string();
                let msg = full.lines().next().unwrap_or_default().trim_end_matches('(').trim_end();
                return Err(if msg.contains("magic") {
                    model_err(path, format!("not a GGUF file ({msg})"))
                } else if msg.contains("fill whole buffer") || msg.contains("remaining") {
                    // The reader ran out of bytes: the file ends inside its own header.
                    model_err(
                        path,
                        format!(
                            "truncated: the file ends at byte {file_size}, inside its header (the metadata or the \
                             tensor table; read up to byte {}: {msg}): a download cut short? fetch it again",
                            reader.position()
                        ),
                    )
                } else {
                    model_err(path, format!("corrupt GGUF header: {msg}"))
                });
            }
        };
        // The tensor that reaches furthest (ties by name): the tensor table is a HashMap, and naming
        // the first one found out of range would name a different tensor on every run.
        let furthest = content
            .tensor_infos
            .iter()
            .map(|(name, info)| {
                let elems = info.shape.elem_count();
                let bytes = (elems / info.ggml_dtype.block_size() * info.ggml_dtype.type_size()) as u64;
                (content.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes), name)
            })
            .max();
        if let Some((end, name)) = furthest.filter(|(end, _)| *end > file_size) {
            return Err(model_err(
                path,
                format!("truncated: needs at least {end} bytes (tensor `{name}` ends there), has {file_size}"),
            ));
        }
        Ok(GgufHeader { path: path.to_path_buf(), content, file_size, map })
    }

    /// How many headers this thread has parsed: a load parses its model's header once, and this lets
    /// tests check that (a whole vocabulary is parsed each time, a second or more for large models).
    pub fn parses_on_this_thread() -> usize {
        PARSES.with(|n| n.get())
    }

    /// The raw metadata value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A required string field.
    pub fn string(&self, key: &str) -> Result<&str, EngineError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.field_err(key, &format!("expected a string, found {:?}", other.value_type()))),
            None => Err(self.field_err(key, "missing")),
        }
    }

    /// An optional string field (absent or not a string reads as `None`).
    pub fn opt_string(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An optional integer field of any integer width.
    pub fn opt_u64(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::U8(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I8(v) => u64::try_from(*v).ok(),
            Value::I16(v) => u64::try_from(*v).ok(),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A required array of strings (e.g. `tokenizer.ggml.tokens`).
    pub fn string_array(&self, key: &str) -> Result<Vec<&str>, EngineError> {
        let arr = self.array(key)?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                other => {
                    Err(self.field_err(key, &format!("element {i} is {:?}, expected a string", other.value_type())))
                }
            })
            .collect()
    }

    /// A required array of integers (e.g. `tokenizer.ggml.token_type`).
    pub fn int_array(&self, key: &str) -> Result<Vec<i64>, EngineError> {
        let arr = self.array(key)?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::I32(x) => Ok(i64::from(*x)),
                Value::U32(x) => Ok(i64::from(*x)),
                Value::I8(x) => Ok(i64::from(*x)),
                Value::U8(x) => Ok(i64::from(*x)),
                Value::I16(x) => Ok(i64::from(*x)),
                Value::U16(x) => Ok(i64::from(*x)),
                Value::I64(x) => Ok(*x),
                other => {
                    Err(self.field_err(key, &format!("element {i} is {:?}, expected an integer", other.value_type())))
                }
            })
            .collect()
    }

    /// A required array of floats (e.g. `tokenizer.ggml.scores`).
    pub fn float_array(&self, key: &str) -> Result<Vec<f32>, EngineError> {
        let arr = self.array(key)?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::F32(x) => Ok(*x),
                Value::F64(x) => Ok(*x as f32),
                other => {
                    Err(self.field_err(key, &format!("element {i} is {:?}, expected a float", other.value_type())))
                }
            })
            .collect()
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>, EngineError> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(self.field_err(key, &format!("expected an array, found {:?}", other.value_type()))),
            None => Err(self.field_err(key, "missing")),
        }
    }

    /// An error about metadata field `key` of this file.
    pub fn field_err(&self, key: &str, problem: &str) -> EngineError {
        model_err(&self.path, format!("metadata `{key}`: {problem}"))
    }

    /// `general.architecture`, checked against the architectures the engine supports.
    pub fn architecture(&self) -> Result<&str, EngineError> {
        let arch = self.string("general.architecture")?;
        if SUPPORTED_ARCHITECTURES.contains(&arch) {
            Ok(arch)
        } else {
            Err(model_err(
                &self.path,
                format!("unsupported architecture `{arch}` (supported: {})", SUPPORTED_ARCHITECTURES.join(", ")),
            ))
        }
    }
}

/// What `unitcoder models info` reports about a GGUF file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GgufSummary {
    pub path: PathBuf,
    pub architecture: String,
    pub name: Option<String>,
    pub file_size: u64,
    pub parameters: u64,
    pub tensors: usize,
    /// Number of tensors per ggml type, e.g. {"Q4_1": 210, "F32": 61}.
    pub tensor_types: BTreeMap<String, usize>,
    pub context_length: Option<u64>,
    pub layers: Option<u64>,
    pub embedding_length: Option<u64>,
    pub vocab_size: Option<usize>,
    pub tokenizer_model: Option<String>,
    pub tokenizer_pre: Option<String>,
    pub chat_template: bool,
}

/// Reads `path` and summarises it; an unsupported architecture is an error.
pub fn summarize(path: &Path) -> Result<GgufSummary, EngineError> {
    let h = GgufHeader::read(path)?;
    let arch = h.architecture()?.to_string();
    let mut tensor_types = BTreeMap::new();
    let mut parameters = 0u64;
    for info in h.content.tensor_infos.values() {
        *tensor_types.entry(ggml_type_name(info.ggml_dtype)).or_insert(0) += 1;
        parameters += info.shape.elem_count() as u64;
    }
    let vocab_size = match h.get("tokenizer.ggml.tokens") {
        Some(Value::Array(a)) => Some(a.len()),
        _ => None,
    };
    Ok(GgufSummary {
        architecture: arch.clone(),
        name: h.opt_string("general.name").map(str::to_string),
        file_size: h.file_size,
        parameters,
        tensors: h.content.tensor_infos.len(),
        tensor_types,
        context_length: h.opt_u64(&format!("{arch}.context_length")),
        layers: h.opt_u64(&format!("{arch}.block_count")),
        embedding_length: h.opt_u64(&format!("{arch}.embedding_length")),
        vocab_size,
        tokenizer_model: h.opt_string("tokenizer.ggml.model").map(str::to_string),
        tokenizer_pre: h.opt_string("tokenizer.ggml.pre").map(str::to_string),
        chat_template: h.opt_string("tokenizer.chat_template").is_some(),
        path: h.path,
    })
}

/// A tensor type as llama.cpp and the GGUF spec write it (`Q4_K`, `Q4_0`, `F16`); candle's
/// `Debug` drops the underscore of the K-quants (`Q4K`).
pub fn ggml_type_name(t: candle_core::quantized::GgmlDType) -> String {
    let name = format!("{t:?}").to_uppercase();
    match name.strip_suffix('K') {
        Some(head) if head.ends_with(|c: char| c.is_ascii_digit()) => format!("{head}_K"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    #[test]
    fn tensor_types_are_named_as_llama_cpp_names_them() {
        assert_eq!(ggml_type_name(GgmlDType::Q4K), "Q4_K");
        assert_eq!(ggml_type_name(GgmlDType::Q6K), "Q6_K");
        assert_eq!(ggml_type_name(GgmlDType::Q4_1), "Q4_1");
        assert_eq!(ggml_type_name(GgmlDType::F32), "F32");
        assert_eq!(ggml_type_name(GgmlDType::BF16), "BF16");
    }
}
