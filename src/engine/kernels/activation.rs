//! The activation quantizer: each row of `x` becomes blocks of 32 int8 values with one f32 scale,
//! as llama.cpp's `q8_0`/`q8_1` do, plus the integer sum of each 16-value half (for the minimum term
//! of Q4_1/Q4_K/Q5_K and for the unsigned-offset trick of the VNNI kernel) and `d * sum` as a float.
//!
//! Rounding each activation to the nearest multiple of `d = max|x| / 127` (ties to even) is the only approximation
//! the kernels make beyond f32 rounding: the error of a dot product is at most
//! `sum_i |w_i| * d_block(i) / 2`, which [`error_bound`] computes and the tests enforce.
//!
//! [`Rounding::LlamaCpp`] rounds as llama.cpp does instead: against K-quant weights one scale per 256
//! values (its `q8_K`, so one outlier coarsens 256 values instead of 32), against the others scales
//! stored as f16 (`q8_0`, `q8_1`). The blocks keep their layout (a 256-value group is 8 blocks with
//! one scale), so every kernel runs unchanged.

use half::f16;
use rayon::prelude::*;

use super::format::QK;

/// Quantized activations: `m` rows of `cols` values.
pub(crate) struct QActs {
    /// `m * cols` int8 values, row-major.
    pub q: Vec<i8>,
    /// Per row and block: the scale.
    pub d: Vec<f32>,
    /// Per row and block: `d * (sum of q)`, the factor of the weights' minimum.
    pub ds: Vec<f32>,
    /// Per row and block: the integer sums of the two 16-value halves.
    pub hsum: Vec<[i32; 2]>,
}

/// How activations are rounded to int8 before a quantized product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// One f32 scale per 32 values, whatever the weights: the closest to the unquantized model.
    #[default]
    Blocks32,
    /// As llama.cpp rounds against weights of this kind (see the module documentation).
    LlamaCpp(LlamaActs),
}

/// llama.cpp's activation formats, by the weights they meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlamaActs {
    /// `q8_0`/`q8_1` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights): 32 values, the scale and `d * sum` as f16.
    Q8,
    /// `q8_K` (Q4_K, Q5_K, Q6_K weights): 256 values, one f32 scale.
    Q8K,
}

impl QActs {
    /// Quantizes `x` (`m` rows of `cols` values; `cols` a multiple of 32, of 256 for
    /// [`LlamaActs::Q8K`]). Prefill-sized inputs are split by rows over the rayon pool: on one thread
    /// this was ~4% of a 1.5B prefill with the other core idle. Each block (or 256-value group) is
    /// quantized on its own, so the split does not change a bit.
    #[cfg(test)]
    pub fn quantize(x: &[f32], m: usize, cols: usize) -> QActs {
        Self::quantize_as(x, m, cols, Rounding::Blocks32)
    }

    /// [`QActs::quantize`] with the given rounding.
    pub fn quantize_as(x: &[f32], m: usize, cols: usize, rounding: Rounding) -> QActs {
        let blocks = cols / QK;
        let mut a = QActs {
            q: vec![0; m * cols],
            d: vec![0.0; m * blocks],
            ds: vec![0.0; m * blocks],
            hsum: vec![[0; 2]; m * blocks],
        };
        if m > 1 && m * cols >= PARALLEL_VALUES && cols > 0 {
            // Rows per task: about PARALLEL_VALUES values each.
            let rows = (PARALLEL_VALUES / cols).max(1);
            x.par_chunks(rows * cols)
                .zip(a.q.par_chunks_mut(rows * cols))
                .zip(a.d.par_chunks_mut(rows * blocks))
                .zip(a.ds.par_chunks_mut(rows * blocks))
                .zip(a.hsum.par_chunks_mut(rows * blocks))
                .for_each(|((((x, q), d), ds), hsum)| quantize_blocks(x, q, d, ds, hsum, rounding));
        } else {
            quantize_blocks(x, &mut a.q, &mut a.d, &mut a.ds, &mut a.hsum, rounding);
        }
        a
    }
}

/// Values per parallel task of [`QActs::quantize`] (and the least worth splitting).
const PARALLEL_VALUES: usize = 64 * 1024;

/// Quantizes whole blocks of `x` into `q` and their scales and sums.
fn quantize_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], ds: &mut [f32], hsum: &mut [[i32; 2]], rounding: Rounding) {
    // Blocks that share one scale.
    let group = if rounding == Rounding::LlamaCpp(LlamaActs::Q8K) { 8 } else { 1 };
    debug_assert_eq!(x.len() % (QK * group), 0, "rows of whole 256-value groups");
    for (g, (xg, qg)) in x.chunks_exact(QK * group).zip(q.chunks_exact_mut(QK * group)).enumerate() {
        // 8 lanes of maxima, so the loop vectorizes.
        let mut lanes = [0.0f32; 8];
        for c in xg.chunks_exact(8) {
            for (m, v) in lanes.iter_mut().zip(c) {
                *m = m.max(v.abs());
            }
        }
        let amax = lanes.iter().fold(0.0f32, |acc, v| acc.max(*v));
        // The scale `dk` and its inverse `id` as each format computes them: ours `1 / (amax / 127)`,
        // llama.cpp's AVX quantizers (and `q8_K`'s) `127 / amax`, whose products can round apart.
        let (dk, id) = match rounding {
            Rounding::Blocks32 => {
                let dk = amax / 127.0;
                (dk, if dk > 0.0 { 1.0 / dk } else { 0.0 })
            }
            Rounding::LlamaCpp(LlamaActs::Q8) => (amax / 127.0, if amax > 0.0 { 127.0 / amax } else { 0.0 }),
            Rounding::LlamaCpp(LlamaActs::Q8K) => {
                let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
                (if id > 0.0 { 1.0 / id } else { 0.0 }, id)
            }
        };
        for (k, (xb, qb)) in xg.chunks_exact(QK).zip(qg.chunks_exact_mut(QK)).enumerate() {
            let mut hs = [0i32; 2];
            for (half, (vs, qs)) in xb.chunks_exact(16).zip(qb.chunks_exact_mut(16)).enumerate() {
                for (v, q) in vs.iter().zip(qs.iter_mut()) {
                    // Clamped to ±127 so that the AVX2 `maddubs` pair sums cannot saturate.
                    *q = round_even((v * id).clamp(-127.0, 127.0)) as i8;
                }
                hs[half] = qs.iter().map(|&q| q as i32).sum();
            }
            let b = g * group + k;
            let sum = (hs[0] + hs[1]) as f32;
            (d[b], ds[b]) = match rounding {
                // q8_0/q8_1 store the scale and `d * sum` (from the unrounded scale) as f16.
                Rounding::LlamaCpp(LlamaActs::Q8) => (f16::from_f32(dk).to_f32(), f16::from_f32(dk * sum).to_f32()),
                _ => (dk, dk * sum),
            };
            hsum[b] = hs;
        }
    }
}

/// Rounds to the nearest integer, ties to even (as llama.cpp's AVX quantizers, `_mm256_round_ps` with
/// `_MM_ROUND_NEAREST`), for `|x| < 2^22`: adding and subtracting 1.5 * 2^23 leaves no fraction bits.
/// Unlike `f32::round` (a libm call per value here) it vectorizes.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// The largest error activation quantization can cause in `sum_i w[i] * x[i]` (one row of each),
/// with activations quantized in blocks of `width` values (32 here; 256 for candle's Q8_K).
pub fn error_bound(w: &[f32], x: &[f32], width: usize) -> f64 {
    w.chunks(width)
        .zip(x.chunks(width))
        .map(|(wb, xb)| {
            let amax = xb.iter().fold(0.0f64, |a, v| a.max(v.abs() as f64));
            let step = amax / 127.0;
            wb.iter().map(|v| v.abs() as f64).sum::<f64>() * step / 2.0
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_to_nearest_step_with_half_sums() {
        let mut x = vec![0.0f32; 64];
        x[0] = 1.27;
        x[1] = -0.5;
        x[20] = 0.011;
        x[40] = -2.54;
        let a = QActs::quantize(&x, 1, 64);
        assert_eq!(a.d.len(), 2);
        assert_eq!((a.q[0], a.q[1], a.q[20], a.q[40]), (127, -50, 1, -127));
        assert_eq!(a.hsum[0], [77, 1]);
        assert_eq!(a.hsum[1], [-127, 0]);
        assert!((a.d[0] - 0.01).abs() < 1e-7 && (a.d[1] - 0.02).abs() < 1e-7);
        assert!((a.ds[0] - 0.78).abs() < 1e-6);
    }

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        let cases = [(0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-0.5, 0.0), (-1.5, -2.0), (126.4, 126.0), (-126.6, -127.0)];
        for (x, want) in cases {
            assert_eq!(round_even(x), want, "{x}");
        }
    }

    #[test]
    fn rows_split_over_threads_quantize_as_one_pass() {
        let (m, cols) = (37, 4864);
        assert!(m * cols >= PARALLEL_VALUES);
        let x: Vec<f32> =
            (0..m * cols).map(|i| ((i * 7919 % 2003) as f32 / 1000.0 - 1.0) * (1 + i % 7) as f32).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().expect("pool");
        let a = pool.install(|| QActs::quantize(&x, m, cols));
        let blocks = m * cols / QK;
        let (mut q, mut d, mut ds, mut hsum) =
            (vec![0; m * cols], vec![0.0; blocks], vec![0.0; blocks], vec![[0; 2]; blocks]);
        quantize_blocks(&x, &mut q, &mut d, &mut ds, &mut hsum, Rounding::Blocks32);
        assert_eq!(a.q, q);
        assert_eq!(a.hsum, hsum);
        assert!(a.d.iter().zip(&d).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(a.ds.iter().zip(&ds).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(a.d.iter().all(|&v| v > 0.0), "every block was written");
    }

    /// llama.cpp's `quantize_row_q8_K_ref` for one 256-value block, as written there: the value of
    /// largest magnitude `max` sets `iscale = -127 / max`, `q = nearest_int(iscale * x)` capped at 127,
    /// `d = 1 / iscale`.
    fn q8_k_reference(x: &[f32]) -> (Vec<i8>, f32) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in x {
            if v.abs() > amax {
                (amax, max) = (v.abs(), v);
            }
        }
        if amax == 0.0 {
            return (vec![0; x.len()], 0.0);
        }
        let iscale = -127.0 / max;
        (x.iter().map(|&v| (round_even(iscale * v) as i32).min(127) as i8).collect(), 1.0 / iscale)
    }

    #[test]
    fn llama_cpp_rounding_shares_one_scale_per_256_values_as_q8_k_does() {
        // Two rows of 512, each 256-value group with one outlier, positive in one group and negative in
        // another, so both signs of llama.cpp's `max` are met.
        let (m, cols) = (2, 512);
        let mut x: Vec<f32> = (0..m * cols).map(|i| ((i * 7919 % 2003) as f32 / 1000.0 - 1.0) * 0.37).collect();
        for (g, v) in [(0, 9.5f32), (1, -7.25), (2, 3.0), (3, -11.0)] {
            x[g * 256 + 100] = v;
        }
        let a = QActs::quantize_as(&x, m, cols, Rounding::LlamaCpp(LlamaActs::Q8K));
        for (g, xg) in x.chunks_exact(256).enumerate() {
            let (q, d) = q8_k_reference(xg);
            let ours = &a.q[g * 256..][..256];
            // llama.cpp's ints carry the sign of -max; the products d * q are the same.
            let sign = if d < 0.0 { -1 } else { 1 };
            assert!(ours.iter().zip(&q).all(|(&o, &t)| o as i32 == sign * t as i32), "group {g}");
            for b in 0..8 {
                assert_eq!(a.d[g * 8 + b].to_bits(), d.abs().to_bits(), "group {g} block {b}: one scale");
                let sum: i32 = ours[b * 32..][..32].iter().map(|&v| v as i32).sum();
                assert_eq!(a.ds[g * 8 + b], a.d[g * 8 + b] * sum as f32);
            }
        }
        // Our own rounding scales each 32-value block by its own maximum: finer away from the outlier.
        let own = QActs::quantize(&x, m, cols);
        assert!(own.d[0] < a.d[0] && own.d[3] == a.d[0], "block 3 holds group 0's outlier");
    }

    #[test]
    fn llama_cpp_rounding_of_32_value_blocks_stores_f16_scales() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.731).sin() * 3.3).collect();
        let a = QActs::quantize_as(&x, 1, 64, Rounding::LlamaCpp(LlamaActs::Q8));
        for (b, xb) in x.chunks_exact(32).enumerate() {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            assert_eq!(a.d[b], f16::from_f32(d).to_f32(), "block {b}: q8_0's f16 scale");
            let q: Vec<i8> = xb.iter().map(|&v| round_even(v * (127.0 / amax)) as i8).collect();
            assert_eq!(&a.q[b * 32..][..32], &q[..], "block {b}: rounded with 127 / amax");
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            assert_eq!(a.ds[b], f16::from_f32(d * sum as f32).to_f32(), "block {b}: q8_1's f16 d * sum");
        }
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let a = QActs::quantize(&[0.0; 32], 1, 32);
        assert_eq!((a.d[0], a.ds[0], a.hsum[0]), (0.0, 0.0, [0, 0]));
        assert!(a.q.iter().all(|&q| q == 0));
    }
}
