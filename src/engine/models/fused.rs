//! The CPU forward pass on plain f32 buffers: the same blocks as the tensor path in [`super::layers`]
//! (which other devices run), without a candle op per step. A decode step of the default model used to
//! run ~20 tensor ops per layer, each allocating its output and several forking onto the thread pool;
//! here a layer is two RMS norms, three products (q|k|v and gate|up stacked), RoPE and the KV cache
//! write in place, the attention kernel, SiLU * up and two residual adds into the hidden state, over
//! buffers allocated once per forward.
//!
//! Decode steps (one new column) run the engine's attention kernel over the cache in place; prefill
//! (many new columns) builds tensors of the filled cache once per layer and runs the tensor path's
//! [`attend`], whose gemm products beat a per-query loop when every query sees hundreds of keys.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::layers::{attend, AttnOpts, Block, Norm};
use super::rope::RopeRows;
use super::{Act, Model};
use crate::engine::kernels::attention::{attention, AttnShape};
use crate::engine::kernels::ops;
use crate::engine::kv_cache::{HostKv, KvCache, Padding};

/// Rows of `m` above which the element-wise steps split over the thread pool (prefill).
const PAR_ROWS: usize = 16;

/// Buffers for one forward of `m` rows, reused by every layer.
struct Scratch {
    /// Normalized hidden state `[m, d]`.
    xn: Vec<f32>,
    /// q|k|v `[m, (heads + 2 kv_heads) * hd]`, rotated in place.
    qkv: Vec<f32>,
    /// Attention output `[m, heads * hd]`.
    att: Vec<f32>,
    /// Output of the o and down projections `[m, d]`.
    proj: Vec<f32>,
    /// gate|up `[m, 2 * ffn]` (up `[m, ffn]` without a gate).
    gu: Vec<f32>,
    /// act(gate) * up (or act(up)) `[m, ffn]`.
    act: Vec<f32>,
}

/// What every layer of one forward shares.
struct Step<'a> {
    t: usize,
    offset: usize,
    padding: &'a Padding,
    /// The rope rows of the `b * t` new columns, computed once for every layer.
    rope: RopeRows,
    /// The same for the sliding-window layers' own rope (gemma3).
    rope_local: Option<RopeRows>,
    /// Interleaved (GPT-J) rotation, else rotate-half.
    interleaved: bool,
    /// The additive mask `[b, 1, t, offset + t]` of every step when the attention kernel cannot serve
    /// the model (soft-capped scores, gemma2). Otherwise prefill goes through the kernel too: each
    /// query reads its own keys in fixed chunks, so a prompt's numbers do not depend on how it was
    /// cut into prefill chunks, and on 2 cores it beat candle's gemm + softmax (Qwen2.5-Coder-0.5B
    /// prefill 149-163 -> 192-198 tok/s at 309 tokens, 103-108 -> 158-185 at 1,187) without the
    /// `[heads, t, keys]` score tensor.
    mask: Option<Tensor>,
    /// The same with the sliding window, when the model has one.
    window_mask: Option<Tensor>,
}

impl Model {
    /// [`Model::forward`] on the CPU (the cache must be a CPU cache).
    pub(super) fn forward_host(
        &self,
        tokens: &[u32],
        t: usize,
        padding: &Padding,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (b, d) = (padding.pads().len(), c.n_embd);
        let m = b * t;
        if tokens.len() != m {
            candle_core::bail!("{} tokens for {b} rows of {t} columns", tokens.len())
        }
        let offset = cache.len();
        let Some(kv) = cache.host_mut() else { candle_core::bail!("the fused CPU forward needs a CPU KV cache") };
        if kv.batch != b {
            candle_core::bail!("KV cache holds {} rows, the step has {b}", kv.batch)
        }
        let qkv_w = (c.n_head + 2 * c.n_kv_head) * c.head_dim;
        let (ffn, gu_w) = self.blocks.first().map_or((0, 0), |blk| (blk.mlp.ffn(), blk.mlp.gate_up.width()));
        let mut s = Scratch {
            xn: vec![0.0; m * d],
            qkv: vec![0.0; m * qkv_w],
            att: vec![0.0; m * c.n_head * c.head_dim],
            proj: vec![0.0; m * d],
            gu: vec![0.0; m * gu_w],
            act: vec![0.0; m * ffn],
        };
        let positions = padding.positions(offset, t);
        let (mut mask, mut window_mask) = (None, None);
        if c.attn_softcap.is_some() {
            let m = padding.tensors(offset, t, &Device::Cpu)?.1;
            if let Some(w) = c.sliding_window {
                window_mask = Some(Tensor::from_vec(padding.mask_window(offset, t, w), m.shape(), &Device::Cpu)?);
            }
            mask = Some(m);
        }
        let rope = self.rope.rows(&positions);
        let rope_local = self.rope_local.as_ref().map(|r| r.rows(&positions));
        let interleaved = self.rope.interleaved;
        let step = Step { t, offset, padding, rope, rope_local, interleaved, mask, window_mask };
        let mut x = vec![0.0; m * d];
        self.embed.embedding_into(tokens, &mut x)?;
        if let Some(scale) = c.embed_scale {
            x.iter_mut().for_each(|v| *v *= scale);
        }
        for (layer, block) in self.blocks.iter().enumerate() {
            block_forward(block, layer, &mut x, &mut s, &step, kv)?;
        }
        cache.advance(t);
        // Only the last column of each row feeds sampling.
        let last: Vec<f32> = x.chunks_exact(t * d).flat_map(|row| row[(t - 1) * d..].iter().copied()).collect();
        let mut xn = vec![0.0; b * d];
        rows2(&last, d, &mut xn, d, |x, y| self.norm.forward_host(x, y));
        let out = self.output.as_ref().unwrap_or(&self.embed);
        let vocab = out.rows()?;
        let mut logits = vec![0.0; b * vocab];
        out.matmul_into(&xn, b, &mut logits)?;
        if let Some(cap) = c.final_softcap {
            logits.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }
        Tensor::from_vec(logits, (b, vocab), &Device::Cpu)
    }
}

/// Applies `f` to matching `wa`-wide rows of `a` and `wb`-wide rows of `b`, over the pool when there
/// are many.
fn rows2(a: &[f32], wa: usize, b: &mut [f32], wb: usize, f: impl Fn(&[f32], &mut [f32]) + Sync + Send) {
    if a.len() / wa.max(1) > PAR_ROWS {
        a.par_chunks_exact(wa).zip(b.par_chunks_exact_mut(wb)).for_each(|(x, y)| f(x, y));
    } else {
        a.chunks_exact(wa).zip(b.chunks_exact_mut(wb)).for_each(|(x, y)| f(x, y));
    }
}

/// One block: `x += attn(norm(x)); x += mlp(norm(x))`, writing this step's keys and values into
/// `kv` (layer `layer`).
fn block_forward(
    blk: &Block,
    layer: usize,
    x: &mut [f32],
    s: &mut Scratch,
    step: &Step,
    kv: &mut HostKv,
) -> candle_core::Result<()> {
    let a = &blk.attn;
    let d = blk.attn_norm.host.len();
    let m = x.len() / d;
    rows2(x, d, &mut s.xn, d, |x, y| blk.attn_norm.forward_host(x, y));
    a.qkv.matmul_into(&s.xn, m, &mut s.qkv)?;
    let (h, kvh, hd) = (a.n_head, a.n_kv_head, a.head_dim);
    let width = (h + 2 * kvh) * hd;
    let rope = match &step.rope_local {
        Some(local) if a.local_rope => local,
        _ => &step.rope,
    };
    let mask = match (&step.window_mask, a.window) {
        (Some(m), Some(_)) => Some(m),
        _ => step.mask.as_ref(),
    };
    // The kernel scales scores by 1 / sqrt(hd): a model's own scale goes into its queries.
    let q_scale = (mask.is_none() && (a.opts.scale - 1.0 / (hd as f64).sqrt()).abs() > 1e-12)
        .then(|| (a.opts.scale * (hd as f64).sqrt()) as f32);
    for (r, row) in s.qkv.chunks_exact_mut(width).enumerate() {
        let (cos, sin) = rope.row(r);
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            row[..h * hd].chunks_exact_mut(hd).for_each(|head| norm_head(head, qn));
            row[h * hd..(h + kvh) * hd].chunks_exact_mut(hd).for_each(|head| norm_head(head, kn));
        }
        for head in row[..(h + kvh) * hd].chunks_exact_mut(hd) {
            ops::rope(head, cos, sin, step.interleaved);
        }
        if let Some(f) = q_scale {
            row[..h * hd].iter_mut().for_each(|v| *v *= f);
        }
        let (b, col) = (r / step.t, step.offset + r % step.t);
        for j in 0..kvh {
            let (k, v) = (&row[(h + j) * hd..][..hd], &row[(h + kvh + j) * hd..][..hd]);
            kv.write(layer, b, j, col, k, v);
        }
    }
    let shape = AttnShape {
        batch: kv.batch,
        t: step.t,
        heads: h,
        kv_heads: kvh,
        head_dim: hd,
        offset: step.offset,
        capacity: kv.capacity,
        q_stride: width,
        window: a.window.unwrap_or(usize::MAX),
    };
    match mask {
        None => attention(&s.qkv, &kv.keys[layer], &kv.values[layer], step.padding.pads(), &shape, &mut s.att),
        Some(mask) => prefill_attention(&s.qkv, kv, layer, mask, &shape, a.opts, &mut s.att)?,
    }
    a.o.matmul_into(&s.att, m, &mut s.proj)?;
    residual_add(x, &s.proj, &mut s.xn, blk.attn_post_norm.as_ref());
    rows2(x, d, &mut s.xn, d, |x, y| blk.ffn_norm.forward_host(x, y));
    let mlp = &blk.mlp;
    mlp.gate_up.matmul_into(&s.xn, m, &mut s.gu)?;
    let ffn = s.act.len() / m;
    let gu_w = s.gu.len() / m;
    match (mlp.gated, mlp.act) {
        (true, Act::Silu) => rows2(&s.gu, gu_w, &mut s.act, ffn, |gu, y| ops::silu_mul(&gu[..ffn], &gu[ffn..], y)),
        (true, Act::GeluTanh) => rows2(&s.gu, gu_w, &mut s.act, ffn, |gu, y| {
            y.iter_mut().zip(&gu[..ffn]).zip(&gu[ffn..]).for_each(|((o, g), u)| *o = gelu_tanh(*g) * u)
        }),
        (false, act) => rows2(&s.gu, gu_w, &mut s.act, ffn, |u, y| {
            y.iter_mut()
                .zip(u)
                .for_each(|(o, u)| *o = if act == Act::Silu { u / (1.0 + (-u).exp()) } else { gelu_tanh(*u) })
        }),
    }
    mlp.down.matmul_into(&s.act, m, &mut s.proj)?;
    residual_add(x, &s.proj, &mut s.xn, blk.ffn_post_norm.as_ref());
    Ok(())
}

/// `x += post(y)`: gemma normalises a sublayer's output before the residual add (`scratch` is as wide as `y`).
fn residual_add(x: &mut [f32], y: &[f32], scratch: &mut [f32], post: Option<&Norm>) {
    match post {
        Some(n) => {
            let d = n.host.len();
            rows2(y, d, scratch, d, |y, o| n.forward_host(y, o));
            ops::add_in_place(x, scratch);
        }
        None => ops::add_in_place(x, y),
    }
}

/// GELU with the tanh approximation, as candle's `gelu` and PyTorch's `gelu(approximate="tanh")` compute it.
fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

/// Normalises one query or key head in place (qwen3, gemma3).
fn norm_head(head: &mut [f32], n: &Norm) {
    let mut out = vec![0.0; head.len()];
    n.forward_host(head, &mut out);
    head.copy_from_slice(&out);
}

/// Attention of many new columns through tensors, for soft-capped scores: the queries out of the
/// q|k|v rows, the filled part of this layer's cache, the padding mask.
fn prefill_attention(
    qkv: &[f32],
    kv: &HostKv,
    layer: usize,
    mask: &Tensor,
    s: &AttnShape,
    opts: AttnOpts,
    out: &mut [f32],
) -> candle_core::Result<()> {
    let (b, t, hd, len) = (s.batch, s.t, s.head_dim, s.offset + s.t);
    let dev = Device::Cpu;
    let q: Vec<f32> = qkv.chunks_exact(s.q_stride).flat_map(|r| r[..s.heads * hd].iter().copied()).collect();
    let q = Tensor::from_vec(q, (b, t, s.heads, hd), &dev)?.transpose(1, 2)?.contiguous()?;
    let filled = |buf: &[half::f16]| -> candle_core::Result<Tensor> {
        let v: Vec<f32> =
            buf.chunks_exact(s.capacity * hd).flat_map(|c| c[..len * hd].iter().map(|v| v.to_f32())).collect();
        Tensor::from_vec(v, (b, s.kv_heads, len, hd), &dev)
    };
    let (k, v) = (filled(&kv.keys[layer])?, filled(&kv.values[layer])?);
    let y = attend(&q, &k, &v, mask, s.kv_heads, opts)?;
    out.copy_from_slice(&y.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}
