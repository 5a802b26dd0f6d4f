//! Qwen3-architecture checkpoints (the dense Qwen3 models) as GGUF or HF safetensors: qwen2's layout
//! without the q/k/v biases, with an RMS norm over each query and key head before the rotation
//! (`q_norm`/`k_norm`), and a head size set on its own (Qwen3 heads are 128 wide whatever the hidden size).

use super::{gguf_config, hf_config, Config};
use crate::engine::weights::Weights;
use crate::engine::EngineError;

/// The qwen3 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let mut c = match w.hf_config() {
        Some(hf) => {
            // Qwen3 checkpoints say `attention_bias: false`; honour a fine-tune that turned it on.
            let bias = hf.get("attention_bias").and_then(|v| v.as_bool()).unwrap_or(false);
            hf_config(w, bias)?
        }
        // llama.cpp runs qwen3 with NeoX-style rope and does not permute q/k when converting.
        None => gguf_config(w, "qwen3", false, false)?,
    };
    c.qk_norm = true;
    Ok(c)
}
