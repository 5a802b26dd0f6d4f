//! Rotary position embeddings: the cos and sin rows every attention layer rotates its queries and keys
//! with, and the long-context scalings of the HF `rope_scaling` / `rope_parameters` block. Linear, YaRN
//! and Llama 3 scaling only change the frequencies (YaRN also scales cos and sin), so one set of
//! frequencies serves every position; dynamic NTK scaling changes the frequencies with the sequence
//! length, which a KV cache of already-rotated keys cannot follow, so it is refused by name like every
//! other unknown type.

use crate::engine::weights::hf_f64;
use crate::engine::EngineError;
use candle_core::{Device, Tensor};

/// A frequency scaling read from the checkpoint's configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor` (every frequency divided by it).
    Linear { factor: f32 },
    /// YaRN: high frequencies kept, low ones interpolated by `factor`, a ramp in between, and cos/sin
    /// multiplied by `attention_factor`.
    Yarn { factor: f32, original: f32, beta_fast: f32, beta_slow: f32, attention_factor: f32, truncate: bool },
}

/// The rotary setup of a checkpoint: base, context and scaling.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RopeSpec {
    pub theta: f32,
    /// Llama 3.1-style per-frequency divisors (GGUF `rope_freqs.weight` or HF `rope_type: llama3`).
    pub freq_factors: Option<Vec<f32>>,
    pub scaling: Option<RopeScaling>,
}

impl RopeSpec {
    /// The inverse frequencies of a `head_dim`-wide head and the factor cos and sin are scaled by.
    pub fn inv_freq(&self, head_dim: usize) -> (Vec<f32>, f32) {
        // In f32 as before the scalings existed (and as llama.cpp computes it): greedy output that
        // matches llama.cpp's must not move with the last bit of a frequency.
        let base: Vec<f32> = (0..head_dim / 2)
            .map(|i| {
                let f = 1.0 / self.theta.powf(2.0 * i as f32 / head_dim as f32);
                f / self.freq_factors.as_ref().and_then(|ff| ff.get(i)).copied().unwrap_or(1.0)
            })
            .collect();
        match &self.scaling {
            None => (base, 1.0),
            Some(RopeScaling::Linear { factor }) => (base.iter().map(|f| f / factor).collect(), 1.0),
            Some(RopeScaling::Yarn { factor, original, beta_fast, beta_slow, attention_factor, truncate }) => {
                let (dim, theta) = (head_dim as f64, self.theta as f64);
                let correction = |rotations: f32| {
                    dim * (*original as f64 / (rotations as f64 * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
                };
                let (mut low, mut high) = (correction(*beta_fast), correction(*beta_slow));
                if *truncate {
                    (low, high) = (low.floor(), high.ceil());
                }
                let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
                if low == high {
                    high += 0.001;
                }
                let freqs = base
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        // 1 where the dimension keeps its frequency, 0 where it is interpolated.
                        let keep = 1.0 - ((i as f64 - low) / (high - low)).clamp(0.0, 1.0) as f32;
                        f / factor * (1.0 - keep) + f * keep
                    })
                    .collect();
                (freqs, *attention_factor)
            }
        }
    }
}

/// Reads `theta` and the scaling of an HF rope block: `block` is `rope_scaling` (older configs,
/// `theta` at the top level) or transformers 5's `rope_parameters`. `head_dim` sizes Llama 3 factors.
pub fn hf_rope(
    block: Option<&serde_json::Value>,
    theta: f32,
    head_dim: usize,
    at: &str,
) -> Result<RopeSpec, EngineError> {
    let mut spec = RopeSpec { theta, ..Default::default() };
    let Some(s) = block.filter(|b| !b.is_null()) else { return Ok(spec) };
    let bad = |problem: String| EngineError::Model { path: at.to_string(), problem };
    if let Some(t) = hf_f64(s, "rope_theta") {
        spec.theta = t as f32;
    }
    if let Some(p) = hf_f64(s, "partial_rotary_factor").filter(|p| *p != 1.0) {
        return Err(bad(format!("partial rotary embeddings (`partial_rotary_factor` {p}) are not supported")));
    }
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let factor = || {
        hf_f64(s, "factor").map(|f| f as f32).ok_or_else(|| bad(format!("rope scaling `{kind}` without a `factor`")))
    };
    spec.scaling = match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear { factor: factor()? }),
        "llama3" => {
            spec.freq_factors = Some(llama3_factors(s, spec.theta, head_dim, factor()?));
            None
        }
        "yarn" => {
            let factor = factor()?;
            let original = hf_f64(s, "original_max_position_embeddings")
                .ok_or_else(|| bad("rope scaling `yarn` without `original_max_position_embeddings`".into()))?;
            let mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
            let f = factor as f64;
            let attention_factor =
                match (hf_f64(s, "attention_factor"), hf_f64(s, "mscale"), hf_f64(s, "mscale_all_dim")) {
                    (Some(a), _, _) => a,
                    (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => mscale(f, m) / mscale(f, all),
                    _ => mscale(f, 1.0),
                };
            let num = |k: &str, d: f64| hf_f64(s, k).filter(|v| *v != 0.0).unwrap_or(d) as f32;
            Some(RopeScaling::Yarn {
                factor,
                original: original as f32,
                beta_fast: num("beta_fast", 32.0),
                beta_slow: num("beta_slow", 1.0),
                attention_factor: attention_factor as f32,
                truncate: s.get("truncate").and_then(|v| v.as_bool()).unwrap_or(true),
            })
        }
        "dynamic" => {
            return Err(bad(
                "rope scaling `dynamic` (NTK) is not supported: its frequencies change with the sequence length, \
                 which keys already rotated in the KV cache cannot follow"
                    .into(),
            ))
        }
        other => return Err(bad(format!("rope scaling `{other}` is not supported (supported: linear, yarn, llama3)"))),
    };
    Ok(spec)
}

/// Llama 3.1's per-frequency divisors, the same factors llama.cpp's converter stores as `rope_freqs.weight`.
fn llama3_factors(s: &serde_json::Value, theta: f32, head_dim: usize, factor: f32) -> Vec<f32> {
    let low = hf_f64(s, "low_freq_factor").unwrap_or(1.0);
    let high = hf_f64(s, "high_freq_factor").unwrap_or(4.0);
    let original = hf_f64(s, "original_max_position_embeddings").unwrap_or(8192.0);
    let (low_wavelen, high_wavelen) = (original / low, original / high);
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / (theta as f64).powf(2.0 * i as f64 / head_dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                // scaled freq = (1 - smooth) * freq / factor + smooth * freq, expressed as a divisor
                (1.0 / ((1.0 - smooth) / factor as f64 + smooth)) as f32
            }
        })
        .collect()
}

/// The most positions a model may declare. Positions are rotated in f32 (`p as f32 * freq`, as
/// llama.cpp computes them), which counts exactly only up to 2^24; the longest contexts released
/// (about 10M positions) fit well under it, so a larger value is a corrupt or hand-edited file.
pub const MAX_CONTEXT: usize = 1 << 24;

/// Rotary position embeddings: the frequencies, from which each step computes the rows of its own
/// positions. No table is built for the model's whole declared context: that is gigabytes for the
/// millions of positions some files declare (and an abort for a corrupt 2^32), while a step needs
/// one row per column, whose sines and cosines cost little next to the step's products.
pub struct Rope {
    /// `head_dim / 2` inverse frequencies.
    inv_freq: Vec<f32>,
    /// The factor on cos and sin (YaRN's attention factor; 1 otherwise).
    scale: f32,
    /// GGUF llama checkpoints store q/k permuted for the interleaved (GPT-J) rotation; HF checkpoints
    /// and qwen2 GGUF use the rotate-half (NeoX) form.
    pub(super) interleaved: bool,
}

/// The cos and sin rows of one step's positions, `[positions, head_dim / 2]` each.
pub struct RopeRows {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
}

impl RopeRows {
    /// The cos and sin of the `r`-th position.
    pub fn row(&self, r: usize) -> (&[f32], &[f32]) {
        (&self.cos[r * self.half..][..self.half], &self.sin[r * self.half..][..self.half])
    }
}

impl Rope {
    /// The rotation of `head_dim`-wide heads for `spec`.
    pub fn new(head_dim: usize, spec: &RopeSpec, interleaved: bool) -> Self {
        let (inv_freq, scale) = spec.inv_freq(head_dim);
        Rope { inv_freq, scale, interleaved }
    }

    /// The rows of `positions`, each computed exactly as a whole-context table computed it before
    /// (f32 angle, then cos and sin times the scale), so outputs do not move.
    pub fn rows(&self, positions: &[u32]) -> RopeRows {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos() * self.scale);
                sin.push(a.sin() * self.scale);
            }
        }
        RopeRows { cos, sin, half }
    }

    /// The rows of `positions` (`b * t`, row-major) as `[b, t, head_dim/2]` tensors on `device`.
    pub fn tables(
        &self,
        positions: &[u32],
        b: usize,
        t: usize,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let RopeRows { cos, sin, half } = self.rows(positions);
        Ok((Tensor::from_vec(cos, (b, t, half), device)?, Tensor::from_vec(sin, (b, t, half), device)?))
    }

    /// Rotates `x` (`[b, heads, t, head_dim]`, contiguous) with per-row tables.
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        if self.interleaved {
            candle_nn::rotary_emb::rope_i(x, cos, sin)
        } else {
            candle_nn::rotary_emb::rope(x, cos, sin)
        }
    }
}
