//! Llama-architecture checkpoints: SmolLM2, CodeLlama, DeepSeek-Coder, Llama 3.x, as GGUF or HF
//! safetensors. Reads the configuration, including Llama 3.1 long-context rope scaling (the GGUF
//! `rope_freqs.weight` tensor or the HF `rope_scaling` block); the layers themselves are shared.

use super::{gguf_config, hf_config, Config};
use crate::engine::weights::{hf_f64, Weights};
use crate::engine::EngineError;

/// The llama configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    if w.hf_config().is_some() {
        let mut c = hf_config(w, false)?;
        c.rope_freq_factors = hf_llama3_factors(w, &c);
        return Ok(c);
    }
    // llama.cpp's converter permutes q/k for the interleaved rotation in llama GGUF files.
    let mut c = gguf_config(w, "llama", true, false)?;
    if let Some(n) = w.meta_usize("llama.rope.dimension_count").ok().filter(|&n| n != c.head_dim) {
        return Err(EngineError::Model {
            path: w.path().display().to_string(),
            problem: format!("partial rotary embeddings ({n} of {} dims) are not supported", c.head_dim),
        });
    }
    if w.contains("rope_freqs.weight") {
        let t = w.load_f32("rope_freqs.weight")?;
        c.rope_freq_factors = Some(t.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(c)
}

/// Llama 3.1's `rope_scaling` (`rope_type = "llama3"`) as per-frequency divisors, the same factors
/// llama.cpp's converter stores as `rope_freqs.weight`.
fn hf_llama3_factors(w: &Weights, c: &Config) -> Option<Vec<f32>> {
    let s = w.hf_config()?.get("rope_scaling")?;
    let kind = s.get("rope_type").or_else(|| s.get("type"))?.as_str()?;
    if kind != "llama3" {
        return None;
    }
    let factor = hf_f64(s, "factor")?;
    let low = hf_f64(s, "low_freq_factor").unwrap_or(1.0);
    let high = hf_f64(s, "high_freq_factor").unwrap_or(4.0);
    let original = hf_f64(s, "original_max_position_embeddings").unwrap_or(8192.0);
    let (low_wavelen, high_wavelen) = (original / low, original / high);
    Some(
        (0..c.head_dim / 2)
            .map(|i| {
                let freq = 1.0 / (c.rope_theta as f64).powf(2.0 * i as f64 / c.head_dim as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    factor as f32
                } else {
                    let smooth = (original / wavelen - low) / (high - low);
                    // scaled freq = (1 - smooth) * freq / factor + smooth * freq, expressed as a divisor
                    (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
                }
            })
            .collect(),
    )
}
