//! The activation quantizer: each row of `x` becomes blocks of 32 int8 values with one f32 scale,
//! as llama.cpp's `q8_0`/`q8_1` do, plus the integer sum of each 16-value half (for the minimum term
//! of Q4_1/Q4_K/Q5_K and for the unsigned-offset trick of the VNNI kernel) and `d * sum` as a float.
//!
//! Rounding each activation to the nearest multiple of `d = max|x| / 127` (ties to even) is the only approximation
//! the kernels make beyond f32 rounding: the error of a dot product is at most
//! `sum_i |w_i| * d_block(i) / 2`, which [`error_bound`] computes and the tests enforce.

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

impl QActs {
    /// Quantizes `x` (`m` rows of `cols` values; `cols` a multiple of 32). Prefill-sized inputs are
    /// split by rows over the rayon pool: on one thread this was ~4% of a 1.5B prefill with the
    /// other core idle. Each block is quantized on its own, so the split does not change a bit.
    pub fn quantize(x: &[f32], m: usize, cols: usize) -> QActs {
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
                .for_each(|((((x, q), d), ds), hsum)| quantize_blocks(x, q, d, ds, hsum));
        } else {
            quantize_blocks(x, &mut a.q, &mut a.d, &mut a.ds, &mut a.hsum);
        }
        a
    }
}

/// Values per parallel task of [`QActs::quantize`] (and the least worth splitting).
const PARALLEL_VALUES: usize = 64 * 1024;

/// Quantizes whole blocks of `x` into `q` and their scales and sums.
fn quantize_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], ds: &mut [f32], hsum: &mut [[i32; 2]]) {
    for (k, (xb, qb)) in x.chunks_exact(QK).zip(q.chunks_exact_mut(QK)).enumerate() {
        // 8 lanes of maxima, so the loop vectorizes.
        let mut lanes = [0.0f32; 8];
        for c in xb.chunks_exact(8) {
            for (m, v) in lanes.iter_mut().zip(c) {
                *m = m.max(v.abs());
            }
        }
        let amax = lanes.iter().fold(0.0f32, |acc, v| acc.max(*v));
        let dk = amax / 127.0;
        let id = if dk > 0.0 { 1.0 / dk } else { 0.0 };
        let mut hs = [0i32; 2];
        for (half, (vs, qs)) in xb.chunks_exact(16).zip(qb.chunks_exact_mut(16)).enumerate() {
            for (v, q) in vs.iter().zip(qs.iter_mut()) {
                // Clamped to ±127 so that the AVX2 `maddubs` pair sums cannot saturate.
                *q = round_even((v * id).clamp(-127.0, 127.0)) as i8;
            }
            hs[half] = qs.iter().map(|&q| q as i32).sum();
        }
        d[k] = dk;
        ds[k] = dk * (hs[0] + hs[1]) as f32;
        hsum[k] = hs;
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
        quantize_blocks(&x, &mut q, &mut d, &mut ds, &mut hsum);
        assert_eq!(a.q, q);
        assert_eq!(a.hsum, hsum);
        assert!(a.d.iter().zip(&d).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(a.ds.iter().zip(&ds).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(a.d.iter().all(|&v| v > 0.0), "every block was written");
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let a = QActs::quantize(&[0.0; 32], 1, 32);
        assert_eq!((a.d[0], a.ds[0], a.hsum[0]), (0.0, 0.0, [0, 0]));
        assert!(a.q.iter().all(|&q| q == 0));
    }
}
