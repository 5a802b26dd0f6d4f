//! Gemma 2 checkpoints as HF safetensors: embeddings scaled by `sqrt(hidden)`, RMS norms of `1 + w`,
//! norms after attention and after the MLP as well as before, a GeGLU MLP, attention scores scaled by
//! `query_pre_attn_scalar` and soft-capped, final logits soft-capped, and sliding-window layers
//! alternating with global ones (`layer_types`). [`gemma_config`] is shared with gemma3.

use super::{hf_config, hf_only, Config, NormKind};
use crate::engine::weights::{hf_f64, Weights};
use crate::engine::EngineError;

/// The gemma2 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let mut c = gemma_config(w, "gemma2")?;
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, "gemma2")) };
    c.attn_softcap = hf_f64(hf, "attn_logit_softcapping").map(|v| v as f32);
    c.final_softcap = hf_f64(hf, "final_logit_softcapping").map(|v| v as f32);
    Ok(c)
}

/// What gemma2 and gemma3 share.
pub(super) fn gemma_config(w: &mut Weights, arch: &str) -> Result<Config, EngineError> {
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, arch)) };
    let bias = hf.get("attention_bias").and_then(|v| v.as_bool()).unwrap_or(false);
    let act = super::hf_act(hf, "hidden_activation", w.path())?;
    let scalar = hf_f64(hf, "query_pre_attn_scalar");
    let window = hf.get("sliding_window").and_then(|v| v.as_u64()).map(|v| v as usize);
    let sliding = match hf.get("layer_types").and_then(|v| v.as_array()) {
        Some(types) => types.iter().map(|t| t.as_str() == Some("sliding_attention")).collect(),
        // Before `layer_types`, gemma2 alternated local (even) and global (odd) layers.
        None => (0..super::weights_layers(hf)).map(|i| i % 2 == 0).collect(),
    };
    let mut c = hf_config(w, bias)?;
    c.norm = NormKind::RmsPlusOne;
    c.act = act;
    c.sandwich_norms = true;
    c.embed_scale = Some((c.n_embd as f32).sqrt());
    c.attn_scale = scalar.map(|s| (1.0 / s.sqrt()) as f32);
    c.sliding_window = window;
    c.sliding_layers = sliding;
    Ok(c)
}
