//! Mistral-architecture checkpoints (Mistral 7B, Codestral-style fine-tunes) as HF safetensors:
//! llama's layout with sliding-window attention, where each query sees only the `sliding_window`
//! most recent keys (itself included). Mistral GGUF files say `llama` and load as llama.

use super::{hf_config, hf_only, hf_window, Config};
use crate::engine::weights::Weights;
use crate::engine::EngineError;

/// The mistral configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, "mistral")) };
    let window = hf_window(hf);
    let mut c = hf_config(w, false)?;
    c.sliding_window = window;
    Ok(c)
}
