//! Qwen2-architecture checkpoints (Qwen2.5 and Qwen2.5-Coder) as GGUF or HF safetensors: llama's
//! layout plus biases on the q/k/v projections, rotate-half rope in both formats, and (in the small
//! models) the output projection tied to the embedding table.

use super::{gguf_config, hf_config, Config};
use crate::engine::weights::Weights;
use crate::engine::EngineError;

/// The qwen2 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    if w.hf_config().is_some() {
        return hf_config(w, true);
    }
    // llama.cpp runs qwen2 with NeoX-style rope and does not permute q/k when converting.
    gguf_config(w, "qwen2", false, true)
}
