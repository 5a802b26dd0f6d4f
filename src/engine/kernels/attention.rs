//! Grouped-query attention over the engine's preallocated f16 KV cache, for decode steps (and short
//! runs of new columns): per (row, query column, head) one pass of scores over the visible keys, a
//! softmax and the weighted sum of values, written straight into the output row. It replaces four
//! candle ops per layer (two matmuls that go through gemm's setup for a 1-row product, the mask add and
//! the softmax) and reads the cache in place, so its cost grows only with the keys it reads.
//!
//! Visibility is left padding plus causality, as [`crate::engine::kv_cache::Padding::mask_window`] defines
//! it: a query at column `c` of a row padded by `pad` sees columns `pad..=c` (the last `window` of them
//! under sliding-window attention), a pad query sees only itself.
//!
//! The products use fused multiply-adds in 8 lanes. One body is compiled twice: inside a SIMD entry
//! point, with intrinsics for the two inner loops (x86-64 `avx2,fma,f16c`: `vcvtph2ps` + `vfmadd`;
//! aarch64 NEON: `fcvtl` + `fmla` on two 4-lane registers per 8 lanes), and plainly, where `mul_add`
//! is an exactly rounded `fma` and `f16::to_f32` converts; all round identically lane for lane, so
//! the portable path reproduces the fast ones bit for bit (the tests check it, the aarch64 one under
//! qemu: `scripts/check-aarch64-kernels.sh`) and only its speed depends on the CPU.

use rayon::prelude::*;

use half::f16;

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
    /// Keys a query sees at most, itself included (sliding-window attention); `usize::MAX` for all.
    pub window: usize,
}

/// Work below this many multiply-adds runs on the calling thread: a fork costs more than it saves.
const MIN_PARALLEL_MACS: usize = 1 << 16;

/// Keys per task. The query heads that share a KV head are served together, chunk by chunk, so each
/// chunk of the cache (64 KiB of keys and values) comes from memory once and from L2 for the other
/// heads; chunks also give the threads enough tasks when one row has only a few KV heads. The size is a
/// constant, so results never depend on the batch or the thread count.
const CHUNK: usize = 128;

/// One task: `n` consecutive keys of one row and KV head, from float `base` of the cache.
struct Task {
    row: usize,
    kv: usize,
    base: usize,
    n: usize,
}

/// Runs attention for every (row, new column, head): `q` holds `batch * t` query rows (heads of
/// `head_dim` back to back, rows `q_stride` apart), `keys`/`values` the cache of this layer as
/// `[batch, kv_heads, capacity, head_dim]` with this step's columns already written, `pads` the left
/// padding of each row, and `out` receives `[batch * t, heads * head_dim]`.
///
/// Each task leaves, per query head, the chunk's score maximum, its sum of `e^(s - max)` and the
/// `e^(s - max)`-weighted sum of values; the merge rescales the chunks to their common maximum.
pub fn attention(q: &[f32], keys: &[f16], values: &[f16], pads: &[usize], s: &AttnShape, out: &mut [f32]) {
    let (hd, kvh) = (s.head_dim, s.kv_heads);
    let rep = s.heads / kvh;
    debug_assert_eq!(out.len(), s.batch * s.t * s.heads * hd);
    debug_assert_eq!(keys.len(), s.batch * kvh * s.capacity * hd);
    let mut tasks = Vec::new();
    // The tasks of each (row, KV head), in order.
    let mut spans = Vec::with_capacity(s.batch * s.t * kvh);
    for row in 0..s.batch * s.t {
        let (b, col) = (row / s.t, s.offset + row % s.t);
        let first = if col < pads[b] { col } else { pads[b].max((col + 1).saturating_sub(s.window)) };
        let n = col + 1 - first;
        for kv in 0..kvh {
            let base = ((b * kvh + kv) * s.capacity + first) * hd;
            let start = tasks.len();
            for at in (0..n).step_by(CHUNK) {
                tasks.push(Task { row, kv, base: base + at * hd, n: (n - at).min(CHUNK) });
            }
            spans.push(start..tasks.len());
        }
    }
    let stride = hd + 2;
    let mut part = vec![0.0f32; tasks.len() * rep * stride];
    let fma = fma_available();
    let run = |(task, p): (&Task, &mut [f32])| {
        let (k, v) = (&keys[task.base..][..task.n * hd], &values[task.base..][..task.n * hd]);
        for (j, pj) in p.chunks_exact_mut(stride).enumerate() {
            let qh = &q[task.row * s.q_stride + (task.kv * rep + j) * hd..][..hd];
            // SAFETY: the fast entry point runs only where the CPU has its features (`fma_available`).
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            if fma {
                unsafe { chunk_fma(qh, k, v, pj) };
                continue;
            }
            let _ = fma;
            chunk(qh, k, v, pj);
        }
    };
    let macs: usize = tasks.iter().map(|t| t.n).sum::<usize>() * rep * hd;
    if macs < MIN_PARALLEL_MACS {
        tasks.iter().zip(part.chunks_exact_mut(rep * stride)).for_each(run);
    } else {
        tasks.par_iter().zip(part.par_chunks_exact_mut(rep * stride)).for_each(run);
    }
    for (idx, span) in spans.into_iter().enumerate() {
        let (row, kv) = (idx / kvh, idx % kvh);
        for j in 0..rep {
            let o = &mut out[(row * s.heads + kv * rep + j) * hd..][..hd];
            merge(span.clone().map(|t| &part[(t * rep + j) * stride..][..stride]), o);
        }
    }
}

/// Combines the partial results `[max, sum, weighted values...]` of one head's chunks into `out`.
fn merge<'a>(parts: impl Iterator<Item = &'a [f32]> + Clone, out: &mut [f32]) {
    let max = parts.clone().fold(f32::NEG_INFINITY, |m, p| m.max(p[0]));
    out.fill(0.0);
    let mut sum = 0.0f32;
    for p in parts {
        let w = exp(p[0] - max);
        sum += p[1] * w;
        for (o, x) in out.iter_mut().zip(&p[2..]) {
            *o += x * w;
        }
    }
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|o| *o *= inv);
}

/// Whether the SIMD entry point [`chunk_fma`] can run here.
fn fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("neon")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// [`chunk`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn chunk_fma(q: &[f32], k: &[f16], v: &[f16], part: &mut [f32]) {
    chunk_impl::<true>(q, k, v, part)
}

/// [`chunk`] compiled for NEON (fused `fmla`, and `fcvtl` for the f16 cache).
///
/// # Safety
/// The CPU must have NEON.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn chunk_fma(q: &[f32], k: &[f16], v: &[f16], part: &mut [f32]) {
    chunk_impl::<true>(q, k, v, part)
}

/// One head over one chunk of at most [`CHUNK`] keys: writes `[max, sum, weighted values]` to
/// `part`, where the scores are `k . q / sqrt(hd)`, `sum` adds up `e^(score - max)` and the values
/// are weighted by the same factors. The common head sizes are unrolled so that the query and the
/// output stay in registers.
pub(crate) fn chunk(q: &[f32], k: &[f16], v: &[f16], part: &mut [f32]) {
    chunk_impl::<false>(q, k, v, part)
}

/// [`chunk`]; `SIMD` picks the intrinsics of the architecture (only inside [`chunk_fma`]).
#[inline(always)]
fn chunk_impl<const SIMD: bool>(q: &[f32], k: &[f16], v: &[f16], part: &mut [f32]) {
    let hd = q.len();
    let mut buf = [0.0f32; CHUNK];
    let scores = &mut buf[..(k.len() / hd).min(CHUNK)];
    let (head, acc) = part.split_at_mut(2);
    let (max, sum) = match hd {
        64 => head_n::<64, SIMD>(q, k, v, scores, acc),
        128 => head_n::<128, SIMD>(q, k, v, scores, acc),
        _ => {
            let scale = 1.0 / (hd as f32).sqrt();
            for (s, kr) in scores.iter_mut().zip(k.chunks_exact(hd)) {
                *s = dot_fma(q, kr) * scale;
            }
            let max = max_of(scores);
            let sum = exp_shift(scores, max);
            acc.fill(0.0);
            for (p, vr) in scores.iter().zip(v.chunks_exact(hd)) {
                for (o, x) in acc.iter_mut().zip(vr) {
                    *o = x.to_f32().mul_add(*p, *o);
                }
            }
            (max, sum)
        }
    };
    head[0] = max;
    head[1] = sum;
}

/// [`chunk`] for a head size known at compile time (a multiple of 8): `out` gets the weighted values;
/// returns the maximum score and the sum of the weights.
#[inline(always)]
fn head_n<const HD: usize, const SIMD: bool>(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    scores: &mut [f32],
    out: &mut [f32],
) -> (f32, f32) {
    let Ok(q) = <&[f32; HD]>::try_from(q) else { return (f32::NEG_INFINITY, 0.0) };
    let scale = 1.0 / (HD as f32).sqrt();
    // Four keys at a time: four independent chains of multiply-adds instead of one.
    let mut sc = scores.chunks_exact_mut(4);
    let mut kc = k.chunks_exact(4 * HD);
    for (s, k4) in (&mut sc).zip(&mut kc) {
        #[cfg(target_arch = "x86_64")]
        let dots = if SIMD {
            // SAFETY: SIMD is true only inside `chunk_fma`, which requires AVX2 and FMA.
            unsafe { x86::dot4::<HD>(q, k4) }
        } else {
            dot4::<HD>(q, k4)
        };
        #[cfg(target_arch = "aarch64")]
        let dots = if SIMD {
            // SAFETY: SIMD is true only inside `chunk_fma`, which requires NEON.
            unsafe { arm::dot4::<HD>(q, k4) }
        } else {
            dot4::<HD>(q, k4)
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let dots = dot4::<HD>(q, k4);
        for (s, d) in s.iter_mut().zip(dots) {
            *s = d * scale;
        }
    }
    for (s, kr) in sc.into_remainder().iter_mut().zip(kc.remainder().chunks_exact(HD)) {
        *s = dot_fma(q, kr) * scale;
    }
    let max = max_of(scores);
    let sum = exp_shift(scores, max);
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: as above.
        unsafe { x86::weighted_sum::<HD>(scores, v, out) };
        return (max, sum);
    }
    #[cfg(target_arch = "aarch64")]
    if SIMD {
        // SAFETY: as above.
        unsafe { arm::weighted_sum::<HD>(scores, v, out) };
        return (max, sum);
    }
    let mut acc = [0.0f32; HD];
    for (p, vr) in scores.iter().zip(v.chunks_exact(HD)) {
        for (a, x) in acc.iter_mut().zip(vr) {
            *a = x.to_f32().mul_add(*p, *a);
        }
    }
    out.copy_from_slice(&acc);
    (max, sum)
}

fn max_of(s: &[f32]) -> f32 {
    s.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v))
}

/// Replaces every score by `e^(score - max)` and returns their sum (8 lanes, so it vectorizes).
#[inline(always)]
fn exp_shift(scores: &mut [f32], max: f32) -> f32 {
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
fn dot4<const HD: usize>(q: &[f32; HD], k4: &[f16]) -> [f32; 4] {
    let mut acc = [[0.0f32; 8]; 4];
    for c in 0..HD / 8 {
        for (j, a) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                a[l] = q[c * 8 + l].mul_add(k4[j * HD + c * 8 + l].to_f32(), a[l]);
            }
        }
    }
    acc.map(|a| reduce(&a))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    /// 8 f16 values as f32 (exact, as `f16::to_f32`).
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }

    /// [`super::dot4`] on 256-bit registers.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C, and `k4` must hold `4 * HD` values.
    #[inline(always)]
    pub(super) unsafe fn dot4<const HD: usize>(q: &[f32; HD], k4: &[f16]) -> [f32; 4] {
        debug_assert!(k4.len() >= 4 * HD);
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in 0..HD / 8 {
            let qv = _mm256_loadu_ps(q.as_ptr().add(c * 8));
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(qv, load8(k4.as_ptr().add(j * HD + c * 8)), *a);
            }
        }
        acc.map(|a| hsum(a))
    }

    /// `out = sum_i p[i] * v[i]` over the rows of `v`, lane for lane as the portable loop.
    ///
    /// # Safety
    /// As [`dot4`]; `v` must hold `p.len()` rows of `HD` values and `out` `HD` floats.
    #[inline(always)]
    pub(super) unsafe fn weighted_sum<const HD: usize>(p: &[f32], v: &[f16], out: &mut [f32]) {
        debug_assert!(v.len() >= p.len() * HD && out.len() >= HD);
        // Head sizes up to 128 (16 registers; `head_n` is only instantiated for 64 and 128).
        let mut acc = [_mm256_setzero_ps(); 16];
        let acc = &mut acc[..HD / 8];
        for (i, w) in p.iter().enumerate() {
            let w = _mm256_set1_ps(*w);
            let row = v.as_ptr().add(i * HD);
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(load8(row.add(c * 8)), w, *a);
            }
        }
        for (c, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(c * 8), *a);
        }
    }

    /// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
    #[inline(always)]
    unsafe fn hsum(a: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let u = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)))
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;
    use std::arch::asm;

    use half::f16;

    /// 4 f16 values as f32 (`fcvtl`, exact; the f16 vector intrinsics are not stable in Rust).
    #[inline(always)]
    unsafe fn load4(p: *const f16) -> float32x4_t {
        let h = vld1_u16(p as *const u16);
        let o: float32x4_t;
        // SAFETY: register-only instruction of base AdvSIMD.
        asm!("fcvtl {0:v}.4s, {1:v}.4h", out(vreg) o, in(vreg) h, options(pure, nomem, nostack, preserves_flags));
        o
    }

    /// [`super::dot4`] with each 8-lane accumulator as two 4-lane registers (lanes 0..4, 4..8).
    ///
    /// # Safety
    /// The CPU must have NEON, and `k4` must hold `4 * HD` values.
    #[inline(always)]
    pub(super) unsafe fn dot4<const HD: usize>(q: &[f32; HD], k4: &[f16]) -> [f32; 4] {
        debug_assert!(k4.len() >= 4 * HD);
        let mut acc = [[vdupq_n_f32(0.0); 2]; 4];
        for c in 0..HD / 8 {
            let qv = [vld1q_f32(q.as_ptr().add(c * 8)), vld1q_f32(q.as_ptr().add(c * 8 + 4))];
            for (j, a) in acc.iter_mut().enumerate() {
                let kp = k4.as_ptr().add(j * HD + c * 8);
                // vfmaq_f32(a, b, c) = a + b * c, rounded once: `q.mul_add(k, a)`.
                a[0] = vfmaq_f32(a[0], qv[0], load4(kp));
                a[1] = vfmaq_f32(a[1], qv[1], load4(kp.add(4)));
            }
        }
        acc.map(|a| hsum(a))
    }

    /// `out = sum_i p[i] * v[i]` over the rows of `v`, lane for lane as the portable loop.
    ///
    /// # Safety
    /// As [`dot4`]; `v` must hold `p.len()` rows of `HD` values and `out` `HD` floats.
    #[inline(always)]
    pub(super) unsafe fn weighted_sum<const HD: usize>(p: &[f32], v: &[f16], out: &mut [f32]) {
        debug_assert!(v.len() >= p.len() * HD && out.len() >= HD);
        // Head sizes up to 128 (all 32 registers at 128; `head_n` is only instantiated for 64 and 128).
        let mut acc = [vdupq_n_f32(0.0); 32];
        let acc = &mut acc[..HD / 4];
        for (i, w) in p.iter().enumerate() {
            let w = vdupq_n_f32(*w);
            let row = v.as_ptr().add(i * HD);
            for (c, a) in acc.iter_mut().enumerate() {
                *a = vfmaq_f32(*a, load4(row.add(c * 4)), w);
            }
        }
        for (c, a) in acc.iter().enumerate() {
            vst1q_f32(out.as_mut_ptr().add(c * 4), *a);
        }
    }

    /// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`, as [`super::reduce`].
    #[inline(always)]
    unsafe fn hsum(a: [float32x4_t; 2]) -> f32 {
        let s = vaddq_f32(a[0], a[1]);
        let u = vadd_f32(vget_low_f32(s), vget_high_f32(s));
        vget_lane_f32::<0>(u) + vget_lane_f32::<1>(u)
    }
}

/// `sum(a[i] * b[i])` in 8 lanes of fused multiply-adds, then a fixed pairwise reduction.
#[inline(always)]
fn dot_fma(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l].to_f32(), acc[l]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail = x.mul_add(y.to_f32(), tail);
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
        let mask = Padding::new(pads.to_vec()).mask_window(s.offset, t, s.window);
        let mask = Tensor::from_vec(mask, (b, 1, t, len), &dev).unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
        let out = probs.matmul(&v.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap();
        out.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn half_of(x: &[f32]) -> Vec<f16> {
        x.iter().map(|v| f16::from_f32(*v)).collect()
    }

    fn float_of(x: &[f16]) -> Vec<f32> {
        x.iter().map(|v| v.to_f32()).collect()
    }

    fn case(batch: usize, t: usize, offset: usize, pads: &[usize]) {
        case_hd(batch, t, offset, pads, 40)
    }

    fn case_hd(batch: usize, t: usize, offset: usize, pads: &[usize], head_dim: usize) {
        case_window(batch, t, offset, pads, head_dim, usize::MAX)
    }

    fn case_window(batch: usize, t: usize, offset: usize, pads: &[usize], head_dim: usize, window: usize) {
        let (heads, kv_heads, capacity) = (6, 2, offset + t + 3);
        let q_stride = heads * head_dim + 8;
        let s = AttnShape { batch, t, heads, kv_heads, head_dim, offset, capacity, q_stride, window };
        let q = seq(batch * t * s.q_stride, 1);
        let n = batch * kv_heads * capacity * head_dim;
        let (k16, v16) = (half_of(&seq(n, 2)), half_of(&seq(n, 3)));
        let (keys, values) = (float_of(&k16), float_of(&v16));
        let mut out = vec![f32::NAN; batch * t * heads * head_dim];
        attention(&q, &k16, &v16, pads, &s, &mut out);
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
        case(1, 1, 700, &[3]);
        case_hd(2, 1, 70, &[0, 3], 64);
        case_hd(1, 2, 5, &[0], 128);
        case(2, 4, 0, &[0, 2]);
        case(2, 3, 5, &[7, 0]);
    }

    #[test]
    fn sliding_window_hides_old_keys() {
        // Windows shorter and longer than the padded rows, across a chunk boundary.
        case_window(2, 1, 300, &[0, 20], 64, 130);
        case_window(2, 3, 9, &[0, 4], 40, 4);
        case_window(1, 1, 5, &[0], 40, 1);
    }

    /// Where the CPU has AVX2, FMA and F16C (every x86-64 CI machine since 2013), or NEON (every aarch64
    /// Linux machine), the two compilations agree exactly.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn portable_path_equals_the_fma_path_bit_for_bit() {
        assert!(fma_available(), "this test needs a CPU with AVX2, FMA and F16C, or NEON");
        for hd in [64, 128, 40] {
            let q = seq(hd, 4);
            let (k, v) = (half_of(&seq(37 * hd, 5)), half_of(&seq(37 * hd, 6)));
            let (mut p1, mut p2) = (vec![0.0; hd + 2], vec![0.0; hd + 2]);
            chunk(&q, &k, &v, &mut p1);
            unsafe { chunk_fma(&q, &k, &v, &mut p2) };
            assert_eq!(p1, p2, "head_dim {hd}");
        }
    }
}
