//! The reference fixtures' JSON, as `scripts/make-lora-fixtures`, `make-arch-fixtures` and
//! `make-half-fixtures` write it: transformers' (and peft's) last-position logits and greedy tokens
//! per prompt, for the base and, where the fixture has one, base + adapter.

use std::path::{Path, PathBuf};

/// One run of the reference.
#[derive(serde::Deserialize)]
pub struct Run {
    pub logits: Vec<Vec<f32>>,
    pub greedy: Vec<Vec<u32>>,
}

#[derive(serde::Deserialize)]
pub struct Reference {
    pub prompts: Vec<Vec<u32>>,
    /// The checkpoint's stored dtype (16-bit fixtures only).
    #[serde(default)]
    pub dtype: String,
    pub base: Run,
    /// Base + the fixture's adapter.
    pub lora: Option<Run>,
}

impl Reference {
    pub fn lora(&self) -> &Run {
        self.lora.as_ref().expect("the fixture has a base + adapter run")
    }
}

/// `tests/fixtures/<set>`.
pub fn fixtures(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(set)
}

/// `tests/fixtures/<set>/<name>.json`.
pub fn reference(set: &str, name: &str) -> Reference {
    let path = fixtures(set).join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
