//! The portable reference kernel: the same arithmetic as the SIMD kernels, one row and block at a
//! time. Integer block sums are exact, and the float steps (`d * dx`, times the sum, added to the
//! accumulator, then `m * ds` added for types with a minimum) happen in the same order with no fused multiply-add, so every
//! fast path must reproduce its results bit for bit; the property tests check exactly that.

use super::activation::QActs;
use super::packed::{OutPtr, Packed, G};

/// Computes groups `g0..g1` for activation rows `i0..i1`.
///
/// # Safety
/// `out` must hold `i1` rows of `p.rows` floats, and no other thread may write groups `g0..g1`.
pub(crate) unsafe fn run(
    p: &Packed,
    a: &QActs,
    i0: usize,
    i1: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    for g in g0..g1 {
        for i in i0..i1 {
            let mut acc = [0.0f32; G];
            for b in 0..p.blocks {
                let gb = g * p.blocks + b;
                let ab = i * p.blocks + b;
                let (dx, ds) = (a.d[ab], a.ds[ab]);
                let x = &a.q[i * p.cols + b * 32..][..32];
                for (j, acc) in acc.iter_mut().enumerate() {
                    let mut s = [0i32; 2];
                    for (k, &xv) in x.iter().enumerate() {
                        s[k / 16] += p.value(gb, j, k) * xv as i32;
                    }
                    if p.halves {
                        *acc += (p.scale(gb, 0, j) * dx) * s[0] as f32;
                        *acc += (p.scale(gb, 1, j) * dx) * s[1] as f32;
                    } else {
                        *acc += (p.scale(gb, 0, j) * dx) * (s[0] + s[1]) as f32;
                    }
                    if p.has_min {
                        *acc += p.min(gb, j) * ds;
                    }
                }
            }
            out.store(i, g, &acc);
        }
    }
}
