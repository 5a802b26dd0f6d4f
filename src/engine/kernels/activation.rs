//! The activation quantizer: each row of `x` becomes blocks of 32 int8 values with one f32 scale,
//! as llama.cpp's `q8_0`/`q8_1` do, plus the integer sum of each 16-value half (for the minimum term
//! of Q4_1/Q4_K/Q5_K and for the unsigned-offset trick of the VNNI kernel) and `d * sum` as a float.
//!
//! Rounding each activation to the nearest multiple of `d = max|x| / 127` (ties to even) is the only approximation
//! the kernels make beyond f32 rounding: the error of a dot product is at most
//! `sum_i |w_i| * d_block(i) / 2`, which [`error_bound`] computes and the tests enforce.

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
    /// Quantizes `x` (`m` rows of `cols` values; `cols` a multiple of 32).
    pub fn quantize(x: &[f32], m: usize, cols: usize) -> QActs {
        let blocks = cols / QK;
        let mut a = QActs {
            q: vec![0; m * cols],
            d: vec![0.0; m * blocks],
            ds: vec![0.0; m * blocks],
            hsum: vec![[0; 2]; m * blocks],
        };
        for (k, (xb, qb)) in x.chunks_exact(QK).zip(a.q.chunks_exact_mut(QK)).enumerate() {
            // 8 lanes of maxima, so the loop vectorizes.
            let mut lanes = [0.0f32; 8];
            for c in xb.chunks_exact(8) {
                for (m, v) in lanes.iter_mut().zip(c) {
                    *m = m.max(v.abs());
                }
            }
            let amax = lanes.iter().fold(0.0f32, |acc, v| acc.max(*v));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut hs = [0i32; 2];
            for (half, (vs, qs)) in xb.chunks_exact(16).zip(qb.chunks_exact_mut(16)).enumerate() {
                for (v, q) in vs.iter().zip(qs.iter_mut()) {
                    // Clamped to ±127 so that the AVX2 `maddubs` pair sums cannot saturate.
                    *q = round_even((v * id).clamp(-127.0, 127.0)) as i8;
                }
                hs[half] = qs.iter().map(|&q| q as i32).sum();
            }
            a.d[k] = d;
            a.ds[k] = d * (hs[0] + hs[1]) as f32;
            a.hsum[k] = hs;
        }
        a
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
    fn zero_block_has_zero_scale() {
        let a = QActs::quantize(&[0.0; 32], 1, 32);
        assert_eq!((a.d[0], a.ds[0], a.hsum[0]), (0.0, 0.0, [0, 0]));
        assert!(a.q.iter().all(|&q| q == 0));
    }
}
