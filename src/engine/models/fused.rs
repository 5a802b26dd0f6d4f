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

use super::layers::{attend, Block, RmsNorm, Rope};
use super::Model;
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
    /// gate|up `[m, 2 * ffn]`.
    gu: Vec<f32>,
    /// SiLU(gate) * up `[m, ffn]`.
    act: Vec<f32>,
}

/// What every layer of one forward shares.
struct Step<'a> {
    t: usize,
    offset: usize,
    positions: &'a [u32],
    padding: &'a Padding,
    rope: &'a Rope,
    /// The additive mask `[b, 1, t, offset + t]` of a prefill (built once for all layers).
    mask: Option<Tensor>,
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
        let ffn = self.blocks.first().map_or(0, |blk| blk.mlp.gate_up.width() / 2);
        let mut s = Scratch {
            xn: vec![0.0; m * d],
            qkv: vec![0.0; m * qkv_w],
            att: vec![0.0; m * c.n_head * c.head_dim],
            proj: vec![0.0; m * d],
            gu: vec![0.0; m * 2 * ffn],
            act: vec![0.0; m * ffn],
        };
        let positions = padding.positions(offset, t);
        let mask = if t > 1 { Some(padding.tensors(offset, t, &Device::Cpu)?.1) } else { None };
        let step = Step { t, offset, positions: &positions, padding, rope: &self.rope, mask };
        let mut x = vec![0.0; m * d];
        self.embed.embedding_into(tokens, &mut x)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            block_forward(block, layer, c.eps, &mut x, &mut s, &step, kv)?;
        }
        cache.advance(t);
        // Only the last column of each row feeds sampling.
        let last: Vec<f32> = x.chunks_exact(t * d).flat_map(|row| row[(t - 1) * d..].iter().copied()).collect();
        let mut xn = vec![0.0; b * d];
        ops::rms_norm(&last, &self.norm.host, self.norm.eps, &mut xn);
        let out = self.output.as_ref().unwrap_or(&self.embed);
        let vocab = out.rows()?;
        let mut logits = vec![0.0; b * vocab];
        out.matmul_into(&xn, b, &mut logits)?;
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
    eps: f32,
    x: &mut [f32],
    s: &mut Scratch,
    step: &Step,
    kv: &mut HostKv,
) -> candle_core::Result<()> {
    let a = &blk.attn;
    let d = blk.attn_norm.host.len();
    let m = x.len() / d;
    rows2(x, d, &mut s.xn, d, |x, y| ops::rms_norm(x, &blk.attn_norm.host, eps, y));
    a.qkv.matmul_into(&s.xn, m, &mut s.qkv)?;
    let (h, kvh, hd) = (a.n_head, a.n_kv_head, a.head_dim);
    let width = (h + 2 * kvh) * hd;
    let half = hd / 2;
    let rope = step.rope;
    for (r, row) in s.qkv.chunks_exact_mut(width).enumerate() {
        let pos = step.positions[r] as usize;
        let (cos, sin) = (&rope.cos_host[pos * half..][..half], &rope.sin_host[pos * half..][..half]);
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            row[..h * hd].chunks_exact_mut(hd).for_each(|head| norm_head(head, qn));
            row[h * hd..(h + kvh) * hd].chunks_exact_mut(hd).for_each(|head| norm_head(head, kn));
        }
        for head in row[..(h + kvh) * hd].chunks_exact_mut(hd) {
            ops::rope(head, cos, sin, rope.interleaved);
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
    };
    match &step.mask {
        None => attention(&s.qkv, &kv.keys[layer], &kv.values[layer], step.padding.pads(), &shape, &mut s.att),
        Some(mask) => prefill_attention(&s.qkv, kv, layer, mask, &shape, &mut s.att)?,
    }
    a.o.matmul_into(&s.att, m, &mut s.proj)?;
    ops::add_in_place(x, &s.proj);
    rows2(x, d, &mut s.xn, d, |x, y| ops::rms_norm(x, &blk.ffn_norm.host, eps, y));
    let mlp = &blk.mlp;
    mlp.gate_up.matmul_into(&s.xn, m, &mut s.gu)?;
    let ffn = s.act.len() / m;
    rows2(&s.gu, 2 * ffn, &mut s.act, ffn, |gu, y| ops::silu_mul(&gu[..ffn], &gu[ffn..], y));
    mlp.down.matmul_into(&s.act, m, &mut s.proj)?;
    ops::add_in_place(x, &s.proj);
    Ok(())
}

/// RMS-normalises one query or key head in place (qwen3).
fn norm_head(head: &mut [f32], n: &RmsNorm) {
    let ms = head.iter().map(|v| v * v).sum::<f32>() / head.len() as f32;
    let inv = 1.0 / (ms + n.eps).sqrt();
    for (v, w) in head.iter_mut().zip(&n.host) {
        *v = *v * inv * w;
    }
}

/// Attention of many new columns through tensors: the queries out of the q|k|v rows, the filled part
/// of this layer's cache, the padding mask.
fn prefill_attention(
    qkv: &[f32],
    kv: &HostKv,
    layer: usize,
    mask: &Tensor,
    s: &AttnShape,
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
    let y = attend(&q, &k, &v, mask, s.kv_heads)?;
    out.copy_from_slice(&y.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}
