//! Gemma 3 text checkpoints (`Gemma3ForCausalLM`, `model_type: gemma3_text`) as HF safetensors:
//! gemma2's blocks without soft-capping, with `1 + w` RMS norms over each query and key head, and two
//! rotary setups: the sliding-window layers rotate with their own base frequency
//! (`rope_local_base_freq`), the global ones with `rope_theta` and the checkpoint's scaling.
//! Multimodal `gemma3` checkpoints (the language model under another prefix) are not read.

use super::gemma2::gemma_config;
use super::{hf_only, rope, Config};
use crate::engine::weights::{hf_f64, Weights};
use crate::engine::EngineError;

/// The gemma3 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let mut c = gemma_config(w, "gemma3_text")?;
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, "gemma3_text")) };
    let at = w.path().join("config.json").display().to_string();
    c.qk_norm = true;
    // transformers 5: `rope_parameters` per layer type; older: `rope_theta`, `rope_scaling` (global
    // layers) and `rope_local_base_freq` (local layers, never scaled).
    let params = hf.get("rope_parameters");
    match params.and_then(|p| p.get("full_attention")) {
        Some(global) => {
            c.rope = rope::hf_rope(Some(global), 1_000_000.0, c.head_dim, &at)?;
            let local = params.and_then(|p| p.get("sliding_attention"));
            c.rope_local = Some(rope::hf_rope(local, 10_000.0, c.head_dim, &at)?);
        }
        None => {
            let theta = hf_f64(hf, "rope_local_base_freq").unwrap_or(10_000.0) as f32;
            c.rope_local = Some(rope::RopeSpec { theta, ..Default::default() });
        }
    }
    Ok(c)
}
