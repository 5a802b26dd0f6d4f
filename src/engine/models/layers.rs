//! The building blocks the decoder architectures share, on candle tensors (the path of non-CPU devices
//! and the reference for the fused CPU forward in `fused`): RMS or layer norm, grouped-query attention
//! over the preallocated KV cache with per-row masks (optionally a sliding window, its own score
//! scale and soft-capping), and the gated (SwiGLU, GeGLU) or plain MLP, over the linear layers of
//! [`super::linear`]. Which variant a model gets is read from its [`super::Config`].

pub use super::linear::{MatmulKernels, QLinear, Stacked};
pub use super::rope::Rope;
use super::{Act, Config, NormKind};
use crate::engine::kv_cache::KvCache;
use crate::engine::weights::Weights;
use crate::engine::EngineError;
use candle_core::{DType, Tensor};

/// RMS normalisation with a learned scale (gemma's `1 + w` folded in at load), or layer norm with a
/// bias (starcoder2).
pub struct Norm {
    weight: Tensor,
    bias: Option<Tensor>,
    /// The scale and bias as floats, for the CPU slice path.
    pub(super) host: Vec<f32>,
    pub(super) bias_host: Option<Vec<f32>>,
    pub(super) eps: f32,
}

impl Norm {
    /// Loads `{name}.weight` (and `{name}.bias` for layer norm).
    pub fn load(w: &mut Weights, name: &str, cfg: &Config) -> Result<Self, EngineError> {
        let mut weight = w.load_f32(&format!("{name}.weight"))?;
        if cfg.norm == NormKind::RmsPlusOne {
            weight = (weight + 1.0)?;
        }
        let host = weight.flatten_all()?.to_vec1::<f32>()?;
        let bias = match cfg.norm {
            NormKind::Layer => Some(w.load_f32(&format!("{name}.bias"))?),
            _ => None,
        };
        let bias_host = bias.as_ref().map(|b| b.flatten_all().and_then(|b| b.to_vec1::<f32>())).transpose()?;
        Ok(Norm { weight, bias, host, bias_host, eps: cfg.eps })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.bias {
            Some(b) => candle_nn::ops::layer_norm(x, &self.weight, b, self.eps),
            None => candle_nn::ops::rms_norm(x, &self.weight, self.eps),
        }
    }

    /// [`Norm::forward`] of one row on CPU slices.
    pub fn forward_host(&self, x: &[f32], out: &mut [f32]) {
        let Some(b) = &self.bias_host else {
            return crate::engine::kernels::ops::rms_norm(x, &self.host, self.eps, out);
        };
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for (((o, v), w), b) in out.iter_mut().zip(x).zip(&self.host).zip(b) {
            *o = (v - mean) * inv * w + b;
        }
    }
}

/// Per-step inputs shared by every layer: rope tables and the additive attention masks.
pub struct StepInputs {
    /// `[b, t, head_dim/2]`
    pub cos: Tensor,
    /// `[b, t, head_dim/2]`
    pub sin: Tensor,
    /// The tables of the local layers' own rope (gemma3), when they have one.
    pub local: Option<(Tensor, Tensor)>,
    /// `[b, 1, t, cache_len + t]`, 0 where attention is allowed and -inf elsewhere.
    pub mask: Tensor,
    /// The mask of sliding-window layers, when the model has a window.
    pub window_mask: Option<Tensor>,
}

/// How attention scores are formed beyond `q . k`.
#[derive(Debug, Clone, Copy)]
pub struct AttnOpts {
    /// The factor on `q . k` (`1 / sqrt(head_dim)` unless the model sets its own).
    pub scale: f64,
    /// `cap * tanh(score / cap)` before the mask (gemma2).
    pub softcap: Option<f64>,
}

/// Grouped-query self-attention.
pub struct Attention {
    /// q|k|v.
    pub(super) qkv: Stacked,
    pub(super) o: QLinear,
    /// Per-head norms of the queries and keys (qwen3, gemma3), applied before the rotation.
    pub(super) q_norm: Option<Norm>,
    pub(super) k_norm: Option<Norm>,
    pub(super) n_head: usize,
    pub(super) n_kv_head: usize,
    pub(super) head_dim: usize,
    pub(super) opts: AttnOpts,
    /// The sliding window of this layer: keys more than `window - 1` columns back are masked.
    pub(super) window: Option<usize>,
    /// Whether this layer rotates with the local rope (gemma3's sliding layers).
    pub(super) local_rope: bool,
}

impl Attention {
    /// Loads `blk.{i}.attn_{q,k,v,output}` (or the fused `attn_qkv`), with biases and
    /// `attn_{q,k}_norm` as the configuration says.
    pub fn load(w: &mut Weights, layer: usize, cfg: &Config, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        let mut norm = |n: &str| cfg.qk_norm.then(|| Norm::load(w, &format!("{p}.{n}"), cfg)).transpose();
        let (q_norm, k_norm) = (norm("attn_q_norm")?, norm("attn_k_norm")?);
        let (h, kvh, hd) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim);
        let qkv = if cfg.fused_qkv {
            Stacked::fused(w, &format!("{p}.attn_qkv"), &[h * hd, kvh * hd, kvh * hd], cfg.qkv_bias, kernels)?
        } else {
            let names = ["attn_q", "attn_k", "attn_v"].map(|n| format!("{p}.{n}"));
            Stacked::load(w, &names, cfg.qkv_bias, kernels)?
        };
        Ok(Attention {
            qkv,
            o: QLinear::load(w, &format!("{p}.attn_output"), cfg.o_bias, kernels)?,
            q_norm,
            k_norm,
            n_head: h,
            n_kv_head: kvh,
            head_dim: hd,
            opts: AttnOpts {
                scale: cfg.attn_scale.map_or(1.0 / (hd as f64).sqrt(), f64::from),
                softcap: cfg.attn_softcap.map(f64::from),
            },
            window: cfg.window(layer),
            local_rope: cfg.window(layer).is_some() && cfg.rope_local.is_some(),
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
        let norm = |x: Tensor, n: &Option<Norm>| match n {
            Some(n) => n.forward(&x),
            None => Ok(x),
        };
        let q = norm(q.reshape((b, t, h, hd))?, &self.q_norm)?.transpose(1, 2)?.contiguous()?;
        let k = norm(k.reshape((b, t, kvh, hd))?, &self.k_norm)?.transpose(1, 2)?.contiguous()?;
        let v = v.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let (cos, sin) = match (&step.local, self.local_rope) {
            (Some((c, s)), true) => (c, s),
            _ => (&step.cos, &step.sin),
        };
        let q = rope.apply(&q, cos, sin)?;
        let k = rope.apply(&k, cos, sin)?;
        let (k, v) = cache.append(layer, &k, &v)?;
        let mask = match (&step.window_mask, self.window) {
            (Some(m), Some(_)) => m,
            _ => &step.mask,
        };
        self.o.forward(&attend(&q, &k, &v, mask, kvh, self.opts)?)
    }
}

/// Grouped-query attention on tensors: `q` `[b, heads, t, hd]` (rotated), `k`/`v` `[b, kv_heads, len,
/// hd]`, `mask` `[b, 1, t, len]`; returns `[b, t, heads * hd]`.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    kvh: usize,
    opts: AttnOpts,
) -> candle_core::Result<Tensor> {
    let (b, h, t, hd) = q.dims4()?;
    let len = k.dim(2)?;
    // GQA without copying the cache: the query heads that share a KV head are stacked along the
    // sequence axis, so one matmul per KV head serves all of them.
    let rep = h / kvh;
    let q = (q * opts.scale)?.reshape((b, kvh, rep * t, hd))?;
    let mut scores = q.matmul(&k.t()?)?.reshape((b, h, t, len))?;
    if let Some(cap) = opts.softcap {
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    let scores = scores.broadcast_add(mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, kvh, rep * t, len))?;
    probs.matmul(v)?.reshape((b, h, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, h * hd))
}

/// The feed-forward block: `down(act(gate(x)) * up(x))` when gated, `down(act(up(x)))` otherwise.
pub struct Mlp {
    /// gate|up (gated), or up alone.
    pub(super) gate_up: Stacked,
    pub(super) down: QLinear,
    pub(super) gated: bool,
    pub(super) act: Act,
}

impl Mlp {
    /// Loads `blk.{i}.ffn_{gate,up,down}` (phi3: gate|up fused in `ffn_up`; plain MLPs: no gate).
    pub fn load(w: &mut Weights, layer: usize, cfg: &Config, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        let gate_up = match (cfg.mlp_gated, cfg.fused_qkv) {
            (true, true) => {
                let rows = w.tensor_dims(&format!("{p}.ffn_up.weight")).and_then(|d| d.first().copied()).unwrap_or(0);
                Stacked::fused(w, &format!("{p}.ffn_up"), &[rows / 2, rows / 2], cfg.mlp_bias, kernels)?
            }
            (true, false) => {
                Stacked::load(w, &["ffn_gate", "ffn_up"].map(|n| format!("{p}.{n}")), cfg.mlp_bias, kernels)?
            }
            (false, _) => Stacked::load(w, &[format!("{p}.ffn_up")], cfg.mlp_bias, kernels)?,
        };
        Ok(Mlp {
            gate_up,
            down: QLinear::load(w, &format!("{p}.ffn_down"), cfg.mlp_bias, kernels)?,
            gated: cfg.mlp_gated,
            act: cfg.act,
        })
    }

    /// The hidden width (`intermediate_size`).
    pub fn ffn(&self) -> usize {
        self.gate_up.width() / if self.gated { 2 } else { 1 }
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let parts = self.gate_up.forward(x)?;
        let act = |x: &Tensor| match self.act {
            Act::Silu => candle_nn::ops::silu(x),
            Act::GeluTanh => x.gelu(),
        };
        let hidden = match parts.as_slice() {
            [g, u] if self.gated => (act(g)? * u)?,
            [u] if !self.gated => act(u)?,
            _ => candle_core::bail!("gate|up projection gave {} outputs", parts.len()),
        };
        self.down.forward(&hidden)
    }
}

/// One pre-norm decoder block; gemma's also normalises the attention and MLP outputs before the residual.
pub struct Block {
    pub(super) attn_norm: Norm,
    pub(super) attn: Attention,
    pub(super) attn_post_norm: Option<Norm>,
    pub(super) ffn_norm: Norm,
    pub(super) mlp: Mlp,
    pub(super) ffn_post_norm: Option<Norm>,
}

impl Block {
    /// Loads block `layer`.
    pub fn load(w: &mut Weights, layer: usize, cfg: &Config, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        let mut post = |n: &str| cfg.sandwich_norms.then(|| Norm::load(w, &format!("{p}.{n}"), cfg)).transpose();
        let (attn_post_norm, ffn_post_norm) = (post("attn_post_norm")?, post("ffn_post_norm")?);
        Ok(Block {
            attn_norm: Norm::load(w, &format!("{p}.attn_norm"), cfg)?,
            attn: Attention::load(w, layer, cfg, kernels)?,
            attn_post_norm,
            ffn_norm: Norm::load(w, &format!("{p}.ffn_norm"), cfg)?,
            mlp: Mlp::load(w, layer, cfg, kernels)?,
            ffn_post_norm,
        })
    }

    /// How many of the block's projections run on the engine's kernels, out of how many.
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
        let post = |y: Tensor, n: &Option<Norm>| match n {
            Some(n) => n.forward(&y),
            None => Ok(y),
        };
        let a = self.attn.forward(&self.attn_norm.forward(x)?, rope, step, cache, layer)?;
        let h = (x + post(a, &self.attn_post_norm)?)?;
        &h + post(self.mlp.forward(&self.ffn_norm.forward(&h)?)?, &self.ffn_post_norm)?
    }
}

/// `cap * tanh(x / cap)` (gemma2's final logits).
pub fn softcap(x: &Tensor, cap: Option<f32>) -> candle_core::Result<Tensor> {
    match cap {
        Some(c) => ((x / c as f64)?.tanh()? * c as f64)?.to_dtype(DType::F32),
        None => Ok(x.clone()),
    }
}

/// Picks the last column of `x` (`[b, t, d]`) as a contiguous `[b, d]` tensor.
pub fn last_column(x: &Tensor) -> candle_core::Result<Tensor> {
    let t = x.dim(1)?;
    x.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()
}
