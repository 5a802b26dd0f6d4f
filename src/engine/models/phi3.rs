//! Phi-3-architecture checkpoints (Phi-3 mini/medium, Phi-4-mini without partial rotary) as HF
//! safetensors: llama's numerics with q|k|v stored as one `qkv_proj` and gate|up as one
//! `gate_up_proj`, which load straight into the stacked products the other architectures build.
//! Partial rotary embeddings and LongRoPE scaling are refused when the configuration is read.

use super::{hf_config, hf_only, hf_window, Config};
use crate::engine::weights::Weights;
use crate::engine::EngineError;

/// The phi3 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, "phi3")) };
    let window = hf_window(hf);
    let mut c = hf_config(w, false)?;
    c.fused_qkv = true;
    c.sliding_window = window;
    Ok(c)
}
