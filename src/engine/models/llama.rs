//! Llama-architecture checkpoints: SmolLM2, CodeLlama, DeepSeek-Coder, Llama 3.x, as GGUF or HF
//! safetensors. Llama 3.1 long-context rope scaling comes from the GGUF `rope_freqs.weight` tensor or
//! the HF `rope_scaling` block (read for every HF architecture in `hf_config`); the layers are shared.

use super::{gguf_config, hf_config, Config};
use crate::engine::weights::Weights;
use crate::engine::EngineError;

/// The llama configuration of `w`.
pub fn config(w: &mut Weights) -> Result<Config, EngineError> {
    if w.hf_config().is_some() {
        return hf_config(w, false);
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
        c.rope.freq_factors = Some(t.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(c)
}
