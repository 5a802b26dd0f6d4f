//! StarCoder2-architecture checkpoints as HF safetensors: layer norm with a bias instead of RMS norm,
//! biases on every projection (`use_bias`), a plain MLP (`c_fc`, GELU, `c_proj`) without a gate, and
//! sliding-window attention.

use super::{hf_config, hf_only, hf_window, Config, NormKind};
use crate::engine::weights::{hf_f64, Weights};
use crate::engine::EngineError;

/// The starcoder2 configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    let Some(hf) = w.hf_config() else { return Err(hf_only(w, "starcoder2")) };
    let bias = hf.get("use_bias").and_then(|v| v.as_bool()).unwrap_or(true);
    let (window, eps) = (hf_window(hf), hf_f64(hf, "norm_epsilon").unwrap_or(1e-5) as f32);
    let act = super::hf_act(hf, "hidden_act", w.path())?;
    let mut c = hf_config(w, bias)?;
    c.eps = eps;
    c.norm = NormKind::Layer;
    c.act = act;
    c.mlp_gated = false;
    c.mlp_bias = bias;
    c.o_bias = bias;
    c.sliding_window = window;
    Ok(c)
}
