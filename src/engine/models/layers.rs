//! The building blocks the decoder architectures share, on candle tensors (the path of non-CPU devices
//! and the reference for the fused CPU forward in `fused`): RMS norm, rotary embeddings with per-row
//! positions, grouped-query attention over the preallocated KV cache with per-row masks, and the
//! SwiGLU MLP, over the linear layers of [`super::linear`].

pub use super::linear::{MatmulKernels, QLinear, Stacked};
use crate::engine::kv_cache::KvCache;
use crate::engine::weights::Weights;
use crate::engine::EngineError;
use candle_core::{Device, Tensor};

/// RMS normalisation with a learned scale.
pub struct RmsNorm {
    weight: Tensor,
    /// The scale as floats, for the CPU slice path.
    pub(super) host: Vec<f32>,
    pub(super) eps: f32,
}

impl RmsNorm {
    /// Loads `{name}.weight`.
    pub fn load(w: &mut Weights, name: &str, eps: f32) -> Result<Self, EngineError> {
        let weight = w.load_f32(&format!("{name}.weight"))?;
        let host = weight.flatten_all()?.to_vec1::<f32>()?;
        Ok(RmsNorm { weight, host, eps })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

/// Rotary position embedding tables for every position of the model's context.
pub struct Rope {
    /// The tables as tensors on a device other than the CPU; on the CPU, rows are gathered from the
    /// host tables instead (a model's whole context is 8 MiB of tables for Qwen2.5's 32768
    /// positions, not worth holding twice).
    device_tables: Option<(Tensor, Tensor)>,
    context: usize,
    /// `[context, head_dim / 2]` floats, for the CPU slice path.
    pub(super) cos_host: Vec<f32>,
    pub(super) sin_host: Vec<f32>,
    /// GGUF llama checkpoints store q/k permuted for the interleaved (GPT-J) rotation; HF checkpoints
    /// and qwen2 GGUF use the rotate-half (NeoX) form.
    pub(super) interleaved: bool,
}

impl Rope {
    /// Tables for `context` positions; `freq_factors` (Llama 3.1 long-context scaling) divide the
    /// frequencies. Unlike candle's examples the table covers the model's whole context.
    pub fn new(
        head_dim: usize,
        theta: f32,
        context: usize,
        freq_factors: Option<&[f32]>,
        interleaved: bool,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| {
                let f = 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32);
                f / freq_factors.and_then(|ff| ff.get(i)).copied().unwrap_or(1.0)
            })
            .collect();
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        for p in 0..context {
            for f in &inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let device_tables = match device.is_cpu() {
            true => None,
            false => Some((
                Tensor::from_slice(&cos, (context, half), device)?,
                Tensor::from_slice(&sin, (context, half), device)?,
            )),
        };
        Ok(Rope { device_tables, context, cos_host: cos, sin_host: sin, interleaved })
    }

    /// The number of positions the tables cover.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Gathers per-row tables for `positions` (`[b, t]` u32) as `[b, t, head_dim/2]`.
    pub fn tables(&self, positions: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let half = self.cos_host.len() / self.context.max(1);
        if let Some((cos, sin)) = &self.device_tables {
            let cos = cos.index_select(&flat, 0)?.reshape((b, t, half))?;
            let sin = sin.index_select(&flat, 0)?.reshape((b, t, half))?;
            return Ok((cos, sin));
        }
        let gather = |table: &[f32]| -> candle_core::Result<Tensor> {
            let mut rows = Vec::with_capacity(b * t * half);
            for p in flat.to_vec1::<u32>()? {
                let at = p as usize * half;
                let row = table.get(at..at + half).ok_or_else(|| {
                    candle_core::Error::Msg(format!("position {p} past the rope tables of {} positions", self.context))
                })?;
                rows.extend_from_slice(row);
            }
            Tensor::from_vec(rows, (b, t, half), positions.device())
        };
        Ok((gather(&self.cos_host)?, gather(&self.sin_host)?))
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

/// Per-step inputs shared by every layer: rope tables and the additive attention mask.
pub struct StepInputs {
    /// `[b, t, head_dim/2]`
    pub cos: Tensor,
    /// `[b, t, head_dim/2]`
    pub sin: Tensor,
    /// `[b, 1, t, cache_len + t]`, 0 where attention is allowed and -inf elsewhere.
    pub mask: Tensor,
}

/// Grouped-query self-attention.
pub struct Attention {
    /// q|k|v.
    pub(super) qkv: Stacked,
    pub(super) o: QLinear,
    /// Per-head norms of the queries and keys (qwen3), applied before the rotation.
    pub(super) q_norm: Option<RmsNorm>,
    pub(super) k_norm: Option<RmsNorm>,
    pub(super) n_head: usize,
    pub(super) n_kv_head: usize,
    pub(super) head_dim: usize,
}

impl Attention {
    /// Loads `blk.{i}.attn_{q,k,v,output}` (q/k/v biases for qwen2, `attn_{q,k}_norm` for qwen3).
    pub fn load(
        w: &mut Weights,
        layer: usize,
        cfg: &super::Config,
        kernels: MatmulKernels,
    ) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        let names = ["attn_q", "attn_k", "attn_v"].map(|n| format!("{p}.{n}"));
        let mut norm = |n: &str| cfg.qk_norm.then(|| RmsNorm::load(w, &format!("{p}.{n}"), cfg.eps)).transpose();
        let (q_norm, k_norm) = (norm("attn_q_norm")?, norm("attn_k_norm")?);
        Ok(Attention {
            qkv: Stacked::load(w, &names, cfg.qkv_bias, kernels)?,
            o: QLinear::load(w, &format!("{p}.attn_output"), false, kernels)?,
            q_norm,
            k_norm,
            n_head: cfg.n_head,
            n_kv_head: cfg.n_kv_head,
            head_dim: cfg.head_dim,
        })
    }

    /// `x`: `[b, t, d]`; writes this step's keys/values into `cache` (layer `layer`) and attends over
    /// everything cached so far.
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        step: &StepInputs,
        cache: &mut KvCache,
        layer: usize,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let [q, k, v]: [Tensor; 3] = match <[Tensor; 3]>::try_from(self.qkv.forward(x)?) {
            Ok(parts) => parts,
            Err(_) => candle_core::bail!("q|k|v projection did not give three outputs"),
        };
        let norm = |x: Tensor, n: &Option<RmsNorm>| match n {
            Some(n) => n.forward(&x),
            None => Ok(x),
        };
        let q = norm(q.reshape((b, t, h, hd))?, &self.q_norm)?.transpose(1, 2)?.contiguous()?;
        let k = norm(k.reshape((b, t, kvh, hd))?, &self.k_norm)?.transpose(1, 2)?.contiguous()?;
        let v = v.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let q = rope.apply(&q, &step.cos, &step.sin)?;
        let k = rope.apply(&k, &step.cos, &step.sin)?;
        let (k, v) = cache.append(layer, &k, &v)?;
        self.o.forward(&attend(&q, &k, &v, &step.mask, kvh)?)
    }
}

/// Grouped-query attention on tensors: `q` `[b, heads, t, hd]` (rotated), `k`/`v` `[b, kv_heads, len,
/// hd]`, `mask` `[b, 1, t, len]`; returns `[b, t, heads * hd]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, kvh: usize) -> candle_core::Result<Tensor> {
    let (b, h, t, hd) = q.dims4()?;
    let len = k.dim(2)?;
    // GQA without copying the cache: the query heads that share a KV head are stacked along the
    // sequence axis, so one matmul per KV head serves all of them.
    let rep = h / kvh;
    let q = (q * (1.0 / (hd as f64).sqrt()))?.reshape((b, kvh, rep * t, hd))?;
    let scores = q.matmul(&k.t()?)?.reshape((b, h, t, len))?;
    let scores = scores.broadcast_add(mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, kvh, rep * t, len))?;
    probs.matmul(v)?.reshape((b, h, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, h * hd))
}

/// The SwiGLU feed-forward block.
pub struct Mlp {
    /// gate|up.
    pub(super) gate_up: Stacked,
    pub(super) down: QLinear,
}

impl Mlp {
    /// Loads `blk.{i}.ffn_{gate,up,down}`.
    pub fn load(w: &mut Weights, layer: usize, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        let names = ["ffn_gate", "ffn_up"].map(|n| format!("{p}.{n}"));
        Ok(Mlp {
            gate_up: Stacked::load(w, &names, false, kernels)?,
            down: QLinear::load(w, &format!("{p}.ffn_down"), false, kernels)?,
        })
    }

    /// `down(silu(gate(x)) * up(x))`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [g, u]: [Tensor; 2] = match <[Tensor; 2]>::try_from(self.gate_up.forward(x)?) {
            Ok(parts) => parts,
            Err(_) => candle_core::bail!("gate|up projection did not give two outputs"),
        };
        self.down.forward(&(candle_nn::ops::silu(&g)? * u)?)
    }
}

/// One pre-norm decoder block.
pub struct Block {
    pub(super) attn_norm: RmsNorm,
    pub(super) attn: Attention,
    pub(super) ffn_norm: RmsNorm,
    pub(super) mlp: Mlp,
}

impl Block {
    /// Loads block `layer`.
    pub fn load(
        w: &mut Weights,
        layer: usize,
        cfg: &super::Config,
        kernels: MatmulKernels,
    ) -> Result<Self, EngineError> {
        Ok(Block {
            attn_norm: RmsNorm::load(w, &format!("blk.{layer}.attn_norm"), cfg.eps)?,
            attn: Attention::load(w, layer, cfg, kernels)?,
            ffn_norm: RmsNorm::load(w, &format!("blk.{layer}.ffn_norm"), cfg.eps)?,
            mlp: Mlp::load(w, layer, kernels)?,
        })
    }

    /// How many of the block's seven projections run on the engine's kernels, out of how many.
    pub fn fast_count(&self) -> (usize, usize) {
        let (a, m) = (&self.attn, &self.mlp);
        let (qkv, gu) = (a.qkv.fast_count(), m.gate_up.fast_count());
        let single = [&a.o, &m.down].iter().filter(|l| l.is_fast()).count();
        (qkv.0 + gu.0 + single, qkv.1 + gu.1 + 2)
    }

    /// Residual attention then residual MLP.
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        step: &StepInputs,
        cache: &mut KvCache,
        layer: usize,
    ) -> candle_core::Result<Tensor> {
        let h = (x + self.attn.forward(&self.attn_norm.forward(x)?, rope, step, cache, layer)?)?;
        &h + self.mlp.forward(&self.ffn_norm.forward(&h)?)?
    }
}

/// Picks the last column of `x` (`[b, t, d]`) as a contiguous `[b, d]` tensor.
pub fn last_column(x: &Tensor) -> candle_core::Result<Tensor> {
    let t = x.dim(1)?;
    x.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()
}
