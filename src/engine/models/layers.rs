//! The building blocks the decoder architectures share: [`QLinear`] (every matmul goes through it: on
//! the CPU, quantized weights of the types [`QMatrix`] supports run on the engine's own kernels,
//! anything else on candle's `QMatMul`; [`MatmulKernels`] can force candle's path for comparison), RMS
//! norm, the embedding lookup that dequantizes only the rows it needs, rotary embeddings with per-row
//! positions, grouped-query attention over the preallocated KV cache with per-row masks, and the
//! SwiGLU MLP.

use crate::engine::kernels::{KernelError, QMatrix};
use crate::engine::kv_cache::KvCache;
use crate::engine::weights::{Weight, Weights};
use crate::engine::EngineError;
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};

/// Which code runs the products on quantized weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulKernels {
    /// The engine's own kernels where they apply (CPU, Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K), candle's
    /// `QMatMul` elsewhere.
    #[default]
    Auto,
    /// candle's `QMatMul` everywhere (for comparisons in tests and benchmarks).
    Candle,
}

/// A linear layer `y = x W^T (+ b)`: quantized GGUF weights stay quantized; dense weights keep their
/// stored dtype and the activations are cast to it for the matmul.
pub struct QLinear {
    weight: LinearWeight,
    bias: Option<Tensor>,
}

enum LinearWeight {
    /// The engine's CPU kernels (weights repacked at load).
    Fast(QMatrix),
    Quantized(QMatMul),
    Dense(Tensor),
}

impl QLinear {
    /// Wraps a loaded weight (`[out, in]`) and an optional f32 bias (`[out]`).
    pub fn new(weight: Weight, bias: Option<Tensor>, kernels: MatmulKernels) -> candle_core::Result<Self> {
        let weight = match weight {
            Weight::Quantized(q) if kernels == MatmulKernels::Auto && q.device().is_cpu() => {
                match QMatrix::from_qtensor(&q) {
                    Ok(m) => LinearWeight::Fast(m),
                    // Types without our kernels (F16 tables, Q5_0, Q2_K, ...) stay on candle's.
                    Err(KernelError::UnsupportedType(_)) => LinearWeight::Quantized(QMatMul::from_arc(q)?),
                    Err(e) => return Err(candle_core::Error::wrap(e)),
                }
            }
            Weight::Quantized(q) => LinearWeight::Quantized(QMatMul::from_arc(q)?),
            // On CPU, f16/bf16 matmuls round their outputs to 16 bits, and where gemm splits the work
            // depends on the batch shape: a batched row could then differ from the same row alone.
            // Widening once at load keeps batched greedy output exact (GPUs keep the stored dtype).
            Weight::Dense(t) if t.device().is_cpu() => LinearWeight::Dense(t.to_dtype(DType::F32)?),
            Weight::Dense(t) => LinearWeight::Dense(t),
        };
        Ok(QLinear { weight, bias })
    }

    /// Loads `{name}.weight` and, when `with_bias`, `{name}.bias`.
    pub fn load(w: &mut Weights, name: &str, with_bias: bool, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let weight = w.load(&format!("{name}.weight"))?;
        let bias = if with_bias { Some(w.load_f32(&format!("{name}.bias"))?) } else { None };
        Ok(Self::new(weight, bias, kernels)?)
    }

    /// Whether this layer runs on the engine's own kernels.
    pub fn is_fast(&self) -> bool {
        matches!(self.weight, LinearWeight::Fast(_))
    }

    /// `x`: `[..., in]` f32, contiguous; returns `[..., out]` f32.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            LinearWeight::Fast(m) => m.forward(x)?,
            LinearWeight::Quantized(q) => q.forward(x)?,
            LinearWeight::Dense(w) => {
                let dims = x.dims().to_vec();
                let k = dims[dims.len() - 1];
                let rows = x.elem_count() / k;
                let x2 = x.reshape((rows, k))?.to_dtype(w.dtype())?;
                let y = x2.matmul(&w.t()?)?.to_dtype(DType::F32)?;
                let mut out = dims;
                let last = out.len() - 1;
                out[last] = w.dim(0)?;
                y.reshape(out)?
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// Embedding rows for `ids` (`[b, t]` u32) as f32 `[b, t, in]`: a quantized table dequantizes only
    /// the requested rows (the table is never expanded to f32).
    pub fn embedding(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            LinearWeight::Fast(m) => {
                let (b, t) = ids.dims2()?;
                let device = ids.device().clone();
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let cols = m.cols();
                let mut rows = vec![0f32; ids.len() * cols];
                for (id, out) in ids.iter().zip(rows.chunks_exact_mut(cols)) {
                    m.dequantize_row_into(*id as usize, out).map_err(candle_core::Error::wrap)?;
                }
                Tensor::from_vec(rows, (b, t, cols), &device)
            }
            LinearWeight::Quantized(q) => q.embedding(ids)?.to_dtype(DType::F32),
            LinearWeight::Dense(w) => {
                let (b, t) = ids.dims2()?;
                let rows = w.index_select(&ids.flatten_all()?, 0)?.to_dtype(DType::F32)?;
                rows.reshape((b, t, w.dim(1)?))
            }
        }
    }
}

/// RMS normalisation with a learned scale.
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// Loads `{name}.weight`.
    pub fn load(w: &mut Weights, name: &str, eps: f32) -> Result<Self, EngineError> {
        Ok(RmsNorm { weight: w.load_f32(&format!("{name}.weight"))?, eps })
    }

    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

/// Rotary position embedding tables for every position of the model's context.
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// GGUF llama checkpoints store q/k permuted for the interleaved (GPT-J) rotation; HF checkpoints
    /// and qwen2 GGUF use the rotate-half (NeoX) form.
    interleaved: bool,
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
        Ok(Rope {
            cos: Tensor::from_vec(cos, (context, half), device)?,
            sin: Tensor::from_vec(sin, (context, half), device)?,
            interleaved,
        })
    }

    /// The number of positions the tables cover.
    pub fn context(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Gathers per-row tables for `positions` (`[b, t]` u32) as `[b, t, head_dim/2]`.
    pub fn tables(&self, positions: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t) = positions.dims2()?;
        let flat = positions.flatten_all()?;
        let half = self.cos.dim(1)?;
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, t, half))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, t, half))?;
        Ok((cos, sin))
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
    q: QLinear,
    k: QLinear,
    v: QLinear,
    o: QLinear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl Attention {
    /// Loads `blk.{i}.attn_{q,k,v,output}` (q/k/v biases for qwen2).
    pub fn load(
        w: &mut Weights,
        layer: usize,
        n_head: usize,
        n_kv_head: usize,
        head_dim: usize,
        qkv_bias: bool,
        kernels: MatmulKernels,
    ) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        Ok(Attention {
            q: QLinear::load(w, &format!("{p}.attn_q"), qkv_bias, kernels)?,
            k: QLinear::load(w, &format!("{p}.attn_k"), qkv_bias, kernels)?,
            v: QLinear::load(w, &format!("{p}.attn_v"), qkv_bias, kernels)?,
            o: QLinear::load(w, &format!("{p}.attn_output"), false, kernels)?,
            n_head,
            n_kv_head,
            head_dim,
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
        let q = self.q.forward(x)?.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous()?;
        let k = self.k.forward(x)?.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let v = self.v.forward(x)?.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let q = rope.apply(&q, &step.cos, &step.sin)?;
        let k = rope.apply(&k, &step.cos, &step.sin)?;
        let (k, v) = cache.append(layer, &k, &v)?;
        let len = k.dim(2)?;
        // GQA without copying the cache: the query heads that share a KV head are stacked along the
        // sequence axis, so one matmul per KV head serves all of them.
        let rep = h / kvh;
        let q = (q * (1.0 / (hd as f64).sqrt()))?.reshape((b, kvh, rep * t, hd))?;
        let scores = q.matmul(&k.t()?)?.reshape((b, h, t, len))?;
        let scores = scores.broadcast_add(&step.mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((b, kvh, rep * t, len))?;
        let out = probs.matmul(&v)?.reshape((b, h, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, h * hd))?;
        self.o.forward(&out)
    }
}

/// The SwiGLU feed-forward block.
pub struct Mlp {
    gate: QLinear,
    up: QLinear,
    down: QLinear,
}

impl Mlp {
    /// Loads `blk.{i}.ffn_{gate,up,down}`.
    pub fn load(w: &mut Weights, layer: usize, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let p = format!("blk.{layer}");
        Ok(Mlp {
            gate: QLinear::load(w, &format!("{p}.ffn_gate"), false, kernels)?,
            up: QLinear::load(w, &format!("{p}.ffn_up"), false, kernels)?,
            down: QLinear::load(w, &format!("{p}.ffn_down"), false, kernels)?,
        })
    }

    /// `down(silu(gate(x)) * up(x))`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let g = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        self.down.forward(&(g * self.up.forward(x)?)?)
    }
}

/// One pre-norm decoder block.
pub struct Block {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    mlp: Mlp,
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
            attn: Attention::load(w, layer, cfg.n_head, cfg.n_kv_head, cfg.head_dim, cfg.qkv_bias, kernels)?,
            ffn_norm: RmsNorm::load(w, &format!("blk.{layer}.ffn_norm"), cfg.eps)?,
            mlp: Mlp::load(w, layer, kernels)?,
        })
    }

    /// The block's seven projections.
    pub fn linears(&self) -> [&QLinear; 7] {
        let (a, m) = (&self.attn, &self.mlp);
        [&a.q, &a.k, &a.v, &a.o, &m.gate, &m.up, &m.down]
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
