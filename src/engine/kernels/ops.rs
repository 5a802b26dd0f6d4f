//! The element-wise steps of a decoder layer on plain f32 rows, for the engine's fused CPU forward:
//! RMS norm, rotary embeddings in place, SiLU(gate) * up, residual adds and a fast `exp`.
//!
//! Each is a straight loop over slices written so that LLVM vectorizes it for whatever the build
//! targets (no intrinsics, no fused multiply-adds, no reassociation beyond the explicit 8-lane
//! partial sums), so the results do not depend on the CPU. The formulas follow candle's CPU ops
//! (`rms_norm`, `rope_i`, `rope`, `silu`) operation for operation; only summation order and `exp`
//! differ, which the tests bound.

/// Lanes of the partial sums: one AVX register of f32.
const LANES: usize = 8;

/// `sum(a[i] * b[i])` with 8 partial sums (vectorizes; order fixed, so reproducible).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    hsum(&acc) + tail
}

#[inline(always)]
fn hsum(acc: &[f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `y[i] += a * x[i]`.
#[inline(always)]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `e^x` to within 2 ulp for `x` in [-87, 88] (Cephes' `expf` polynomial after reducing by powers of
/// two); below -87 it returns about 1e-38 instead of a subnormal, which softmax and SiLU do not
/// notice. Branch-free, so loops over it vectorize, unlike libm's `expf`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n * C1 is exact.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (round-to-nearest mode).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * C1) - n * C2;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = (p * r) * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// RMS norm of each `cols`-wide row of `x` into `out`: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let cols = w.len();
    for (xr, or) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = (dot(xr, xr) / cols as f32 + eps).sqrt();
        for ((o, v), w) in or.iter_mut().zip(xr).zip(w) {
            *o = *v / m * *w;
        }
    }
}

/// Rotates one head (`x.len()` = head_dim) in place by the tables of its position (`head_dim / 2`
/// each): adjacent pairs (GPT-J, GGUF llama) when `interleaved`, else the two halves (NeoX).
#[inline]
pub fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], interleaved: bool) {
    let half = x.len() / 2;
    if interleaved {
        for ((p, c), s) in x.chunks_exact_mut(2).zip(cos).zip(sin) {
            let (a, b) = (p[0], p[1]);
            p[0] = a * c - b * s;
            p[1] = a * s + b * c;
        }
    } else {
        let (lo, hi) = x.split_at_mut(half);
        for (((a, b), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(cos).zip(sin) {
            let (x1, x2) = (*a, *b);
            *a = x1 * c - x2 * s;
            *b = x1 * s + x2 * c;
        }
    }
}

/// `out[i] = silu(gate[i]) * up[i]`, with `silu(g) = g / (1 + e^-g)`.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
        *o = *g / (1.0 + exp(-*g)) * *u;
    }
}

/// `x[i] += y[i]`.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += *b;
    }
}

/// Softmax of `s` in place; returns nothing for an empty slice.
pub fn softmax(s: &mut [f32]) {
    let max = s.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let mut sum = 0.0f32;
    let mut acc = [0.0f32; LANES];
    let mut chunks = s.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = exp(c[l] - max);
            acc[l] += c[l];
        }
    }
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / (hsum(&acc) + sum);
    for v in s.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn seq(n: usize, k: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(k) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            let ulp = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, libm {want}");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn rms_norm_matches_candle() {
        let (rows, cols) = (3, 576);
        let x = seq(rows * cols, 1);
        let w = seq(cols, 7);
        let mut out = vec![0.0; rows * cols];
        rms_norm(&x, &w, 1e-5, &mut out);
        let xt = Tensor::from_vec(x, (rows, cols), &Device::Cpu).unwrap();
        let wt = Tensor::from_vec(w, cols, &Device::Cpu).unwrap();
        let want: Vec<f32> =
            candle_nn::ops::rms_norm(&xt, &wt, 1e-5).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    #[test]
    fn rope_matches_candle_bit_for_bit() {
        let (heads, hd) = (3, 64);
        let x = seq(heads * hd, 3);
        let cos = seq(hd / 2, 5);
        let sin = seq(hd / 2, 9);
        for interleaved in [true, false] {
            let mut ours = x.clone();
            for h in ours.chunks_exact_mut(hd) {
                rope(h, &cos, &sin, interleaved);
            }
            let xt = Tensor::from_vec(x.clone(), (1, heads, 1, hd), &Device::Cpu).unwrap();
            let ct = Tensor::from_vec(cos.clone(), (1, hd / 2), &Device::Cpu).unwrap();
            let st = Tensor::from_vec(sin.clone(), (1, hd / 2), &Device::Cpu).unwrap();
            let want = if interleaved {
                candle_nn::rotary_emb::rope_i(&xt, &ct, &st)
            } else {
                candle_nn::rotary_emb::rope(&xt, &ct, &st)
            };
            let want: Vec<f32> = want.unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(ours, want, "interleaved {interleaved}");
        }
    }

    #[test]
    fn silu_mul_and_softmax_match_candle() {
        let n = 1536 + 5;
        let g: Vec<f32> = seq(n, 11).iter().map(|v| v * 12.0).collect();
        let u = seq(n, 13);
        let mut out = vec![0.0; n];
        silu_mul(&g, &u, &mut out);
        let gt = Tensor::from_vec(g.clone(), n, &Device::Cpu).unwrap();
        let ut = Tensor::from_vec(u, n, &Device::Cpu).unwrap();
        let want: Vec<f32> = (candle_nn::ops::silu(&gt).unwrap() * ut).unwrap().to_vec1().unwrap();
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1e-3), "{a} vs {b}");
        }
        let mut s = g.clone();
        softmax(&mut s);
        let want: Vec<f32> = candle_nn::ops::softmax_last_dim(&gt.unsqueeze(0).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in s.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs() + 1e-12, "{a} vs {b}");
        }
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn dot_and_add_handle_tails() {
        let a = seq(13, 1);
        let b = seq(13, 2);
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - want).abs() < 1e-5);
        let mut y = a.clone();
        add_in_place(&mut y, &b);
        axpy(&mut y, -1.0, &b);
        for (y, a) in y.iter().zip(&a) {
            assert!((y - a).abs() < 1e-6);
        }
    }
}
