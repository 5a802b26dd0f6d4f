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
    // Partial rotary embeddings (`llama.rope.dimension_count`) are refused by `check_config`, once the
    // head size is known to be sound.
    let mut c = gguf_config(w, "llama", true, false)?;
    if w.contains("rope_freqs.weight") {
        let t = w.load_f32("rope_freqs.weight")?;
        c.rope.freq_factors = Some(t.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(c)
}
