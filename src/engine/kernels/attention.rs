//! Grouped-query attention over the engine's preallocated f32 KV cache, for decode steps (and short
//! runs of new columns): per (row, query column, head) one pass of scores over the visible keys, a
//! softmax and the weighted sum of values, written straight into the output row. It replaces four
//! candle ops per layer (two matmuls that go through gemm's setup for a 1-row product, the mask add and
//! the softmax) and reads the cache in place, so its cost grows only with the keys it reads.
//!
//! Visibility is left padding plus causality, as [`crate::engine::kv_cache::Padding::mask`] defines it:
//! a query at column `c` of a row padded by `pad` sees columns `pad..=c`, a pad query sees only itself.
//!
//! The products use fused multiply-adds in 8 lanes. One body is compiled twice: inside an
//! `avx2,fma` entry point, where `mul_add` becomes `vfmadd` on whole registers, and plainly, where it
//! is libm's exactly rounded `fmaf`; both round identically, so the portable path reproduces the fast
//! one bit for bit (the tests check it) and only its speed depends on the CPU.

use rayon::prelude::*;

use super::ops::exp;

/// Where the queries, the cache and the output live, and their shapes.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    /// Rows of the batch.
    pub batch: usize,
    /// New columns per row in this step (1 when decoding).
    pub t: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Columns already in the cache before this step; this step's keys follow them.
    pub offset: usize,
    /// Columns the cache holds per row and KV head (its allocation, not its fill).
    pub capacity: usize,
    /// Floats between consecutive query rows in `q` (`heads * head_dim` or more, when `q` is a
    /// column range of a fused q|k|v product).
    pub q_stride: usize,
}

/// Work below this many multiply-adds runs on the calling thread: a fork costs more than it saves.
const MIN_PARALLEL_MACS: usize = 1 << 16;

/// Runs attention for every (row, new column, head): `q` holds `batch * t` query rows (heads of
/// `head_dim` back to back, rows `q_stride` apart), `keys`/`values` the cache of this layer as
/// `[batch, kv_heads, capacity, head_dim]` with this step's columns already written, `pads` the left
/// padding of each row, and `out` receives `[batch * t, heads * head_dim]`.
pub fn attention(q: &[f32], keys: &[f32], values: &[f32], pads: &[usize], s: &AttnShape, out: &mut [f32]) {
    let hd = s.head_dim;
    let items = s.batch * s.t * s.heads;
    debug_assert_eq!(out.len(), items * hd);
    debug_assert_eq!(keys.len(), s.batch * s.kv_heads * s.capacity * hd);
    let fma = fma_available();
    let run = |scores: &mut Vec<f32>, (idx, o): (usize, &mut [f32])| {
        let (row, h) = (idx / s.heads, idx % s.heads);
        let (b, tt) = (row / s.t, row % s.t);
        let col = s.offset + tt;
        let pad = pads[b];
        let first = if col < pad { col } else { pad };
        let kv = h / (s.heads / s.kv_heads);
        let base = ((b * s.kv_heads + kv) * s.capacity + first) * hd;
        let n = col + 1 - first;
        let qh = &q[row * s.q_stride + h * hd..][..hd];
        let (k, v) = (&keys[base..base + n * hd], &values[base..base + n * hd]);
        scores.resize(n, 0.0);
        // SAFETY: the fast entry point runs only where the CPU has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        if fma {
            unsafe { head_fma(qh, k, v, scores, o) };
            return;
        }
        let _ = fma;
        head(qh, k, v, scores, o);
    };
    let macs = items * (s.offset + s.t) * hd;
    if macs < MIN_PARALLEL_MACS {
        let mut scores = Vec::new();
        out.chunks_exact_mut(hd).enumerate().for_each(|it| run(&mut scores, it));
    } else {
        out.par_chunks_exact_mut(hd).enumerate().for_each_init(Vec::new, run);
    }
}

/// Whether the fused multiply-add entry point can run here.
fn fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`head`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_fma(q: &[f32], k: &[f32], v: &[f32], scores: &mut [f32], out: &mut [f32]) {
    head_impl::<true>(q, k, v, scores, out)
}

/// One head: `out = softmax(k . q / sqrt(hd)) . v` over the `scores.len()` visible columns of `k`/`v`,
/// with the common head sizes unrolled so that the query and the output stay in registers.
pub(crate) fn head(q: &[f32], k: &[f32], v: &[f32], scores: &mut [f32], out: &mut [f32]) {
    head_impl::<false>(q, k, v, scores, out)
}

/// [`head`]; `AVX` picks the intrinsics for the scores (only inside [`head_fma`]).
#[inline(always)]
fn head_impl<const AVX: bool>(q: &[f32], k: &[f32], v: &[f32], scores: &mut [f32], out: &mut [f32]) {
    match q.len() {
        64 => head_n::<64, AVX>(q, k, v, scores, out),
        128 => head_n::<128, AVX>(q, k, v, scores, out),
        hd => {
            let scale = 1.0 / (hd as f32).sqrt();
            for (s, kr) in scores.iter_mut().zip(k.chunks_exact(hd)) {
                *s = dot_fma(q, kr) * scale;
            }
            let inv = 1.0 / exp_shift(scores);
            out.fill(0.0);
            for (p, vr) in scores.iter().zip(v.chunks_exact(hd)) {
                for (o, x) in out.iter_mut().zip(vr) {
                    *o = x.mul_add(*p, *o);
                }
            }
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
}

/// [`head`] for a head size known at compile time (a multiple of 8).
#[inline(always)]
fn head_n<const HD: usize, const AVX: bool>(q: &[f32], k: &[f32], v: &[f32], scores: &mut [f32], out: &mut [f32]) {
    let Ok(q) = <&[f32; HD]>::try_from(q) else { return };
    let scale = 1.0 / (HD as f32).sqrt();
    // Four keys at a time: four independent chains of multiply-adds instead of one.
    let mut sc = scores.chunks_exact_mut(4);
    let mut kc = k.chunks_exact(4 * HD);
    for (s, k4) in (&mut sc).zip(&mut kc) {
        #[cfg(target_arch = "x86_64")]
        let dots = if AVX {
            // SAFETY: AVX is true only inside `head_fma`, which requires AVX2 and FMA.
            unsafe { x86::dot4::<HD>(q, k4) }
        } else {
            dot4::<HD>(q, k4)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let dots = dot4::<HD>(q, k4);
        for (s, d) in s.iter_mut().zip(dots) {
            *s = d * scale;
        }
    }
    for (s, kr) in sc.into_remainder().iter_mut().zip(kc.remainder().chunks_exact(HD)) {
        *s = dot_fma(q, kr) * scale;
    }
    let inv = 1.0 / exp_shift(scores);
    let mut acc = [0.0f32; HD];
    for (p, vr) in scores.iter().zip(v.chunks_exact(HD)) {
        for (a, x) in acc.iter_mut().zip(vr) {
            *a = x.mul_add(*p, *a);
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = a * inv;
    }
}

/// Replaces every score by `e^(score - max)` and returns their sum (8 lanes, so it vectorizes).
#[inline(always)]
fn exp_shift(scores: &mut [f32]) -> f32 {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let mut acc = [0.0f32; 8];
    let mut chunks = scores.chunks_exact_mut(8);
    for c in &mut chunks {
        for l in 0..8 {
            c[l] = exp(c[l] - max);
            acc[l] += c[l];
        }
    }
    let mut tail = 0.0f32;
    for s in chunks.into_remainder() {
        *s = exp(*s - max);
        tail += *s;
    }
    reduce(&acc) + tail
}

/// The sum of 8 lanes in the order the AVX reduction takes (halves, then pairs).
#[inline(always)]
fn reduce(a: &[f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// The dot products of `q` with four consecutive keys of `k4`, lane for lane as [`x86::dot4`].
#[inline(always)]
fn dot4<const HD: usize>(q: &[f32; HD], k4: &[f32]) -> [f32; 4] {
    let mut acc = [[0.0f32; 8]; 4];
    for c in 0..HD / 8 {
        for (j, a) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                a[l] = q[c * 8 + l].mul_add(k4[j * HD + c * 8 + l], a[l]);
            }
        }
    }
    acc.map(|a| reduce(&a))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::dot4`] on 256-bit registers.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA, and `k4` must hold `4 * HD` floats.
    #[inline(always)]
    pub(super) unsafe fn dot4<const HD: usize>(q: &[f32; HD], k4: &[f32]) -> [f32; 4] {
        debug_assert!(k4.len() >= 4 * HD);
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in 0..HD / 8 {
            let qv = _mm256_loadu_ps(q.as_ptr().add(c * 8));
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k4.as_ptr().add(j * HD + c * 8)), *a);
            }
        }
        acc.map(|a| hsum(a))
    }

    /// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
    #[inline(always)]
    unsafe fn hsum(a: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let u = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)))
    }
}

/// `sum(a[i] * b[i])` in 8 lanes of fused multiply-adds, then a fixed pairwise reduction.
#[inline(always)]
fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail = x.mul_add(*y, tail);
    }
    reduce(&acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kv_cache::Padding;
    use candle_core::{Device, Tensor};

    fn seq(n: usize, k: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(k) % 2001) as f32 / 500.0 - 2.0).collect()
    }

    /// candle's attention (the engine's reference path): scaled scores, additive mask, softmax, `. v`.
    fn reference(q: &[f32], keys: &[f32], values: &[f32], pads: &[usize], s: &AttnShape) -> Vec<f32> {
        let dev = Device::Cpu;
        let (b, t, h, kvh, hd, len) = (s.batch, s.t, s.heads, s.kv_heads, s.head_dim, s.offset + s.t);
        let q = Tensor::from_slice(q, (b, t, h, hd), &dev).unwrap().transpose(1, 2).unwrap();
        let k = Tensor::from_slice(keys, (b, kvh, s.capacity, hd), &dev).unwrap().narrow(2, 0, len).unwrap();
        let v = Tensor::from_slice(values, (b, kvh, s.capacity, hd), &dev).unwrap().narrow(2, 0, len).unwrap();
        let rep = h / kvh;
        let k = k.unsqueeze(2).unwrap().repeat((1, 1, rep, 1, 1)).unwrap().reshape((b, h, len, hd)).unwrap();
        let v = v.unsqueeze(2).unwrap().repeat((1, 1, rep, 1, 1)).unwrap().reshape((b, h, len, hd)).unwrap();
        let scores = (q.contiguous().unwrap().matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap();
        let (_, mask) = Padding::new(pads.to_vec()).tensors(s.offset, t, &dev).unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
        let out = probs.matmul(&v.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap();
        out.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn case(batch: usize, t: usize, offset: usize, pads: &[usize]) {
        case_hd(batch, t, offset, pads, 40)
    }

    fn case_hd(batch: usize, t: usize, offset: usize, pads: &[usize], head_dim: usize) {
        let (heads, kv_heads, capacity) = (6, 2, offset + t + 3);
        let s = AttnShape { batch, t, heads, kv_heads, head_dim, offset, capacity, q_stride: heads * head_dim + 8 };
        let q = seq(batch * t * s.q_stride, 1);
        let keys = seq(batch * kv_heads * capacity * head_dim, 2);
        let values = seq(batch * kv_heads * capacity * head_dim, 3);
        let mut out = vec![f32::NAN; batch * t * heads * head_dim];
        attention(&q, &keys, &values, pads, &s, &mut out);
        let dense: Vec<f32> = q.chunks_exact(s.q_stride).flat_map(|r| r[..heads * head_dim].to_vec()).collect();
        let want = reference(&dense, &keys, &values, pads, &s);
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "item {i}: {a} vs {b} ({batch} {t} {offset} {pads:?})");
        }
    }

    #[test]
    fn matches_candle_for_decode_prefill_and_padding() {
        case(1, 1, 9, &[0]);
        case(3, 1, 200, &[0, 5, 199]);
        case_hd(2, 1, 70, &[0, 3], 64);
        case_hd(1, 2, 5, &[0], 128);
        case(2, 4, 0, &[0, 2]);
        case(2, 3, 5, &[7, 0]);
    }

    /// Where the CPU has FMA (every x86-64 CI machine since 2013), the two compilations agree exactly.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn portable_path_equals_the_fma_path_bit_for_bit() {
        assert!(fma_available(), "this test needs a CPU with AVX2 and FMA");
        for hd in [64, 128, 40] {
            let q = seq(hd, 4);
            let (k, v) = (seq(37 * hd, 5), seq(37 * hd, 6));
            let (mut s1, mut s2) = (vec![0.0; 37], vec![0.0; 37]);
            let (mut o1, mut o2) = (vec![0.0; hd], vec![0.0; hd]);
            head(&q, &k, &v, &mut s1, &mut o1);
            unsafe { head_fma(&q, &k, &v, &mut s2, &mut o2) };
            assert_eq!(o1, o2, "head_dim {hd}");
            assert_eq!(s1, s2, "head_dim {hd}");
        }
    }
}
