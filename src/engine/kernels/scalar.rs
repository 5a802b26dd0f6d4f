//! The portable reference kernel: the same arithmetic as the SIMD kernels, one row and block at a
//! time. Integer block sums are exact, and the float steps (`d * dx`, times the sum, added to the
//! accumulator, then `m * ds` added, or for K-quants `(dmin * min) * ds` subtracted, for types with a
//! minimum) happen in the same order with no fused
//! multiply-add, so every fast path must reproduce its results bit for bit; the property tests check
//! exactly that. Each group-block is unpacked once and reused by every activation row of the tile.

use super::activation::QActs;
use super::format::QK;
use super::packed::{OutPtr, Packed, G};

/// Activation rows per pass over the weights.
const TILE: usize = 4;

/// Computes groups `g0..g1` for activation rows `i0..i1`.
///
/// # Safety
/// `out` must hold `i1` rows of `p.rows` floats, and no other thread may write groups `g0..g1`.
pub(crate) unsafe fn run(p: &Packed, a: &QActs, i0: usize, i1: usize, g0: usize, g1: usize, out: OutPtr) {
    let mut t0 = i0;
    while t0 < i1 {
        let t1 = (t0 + TILE).min(i1);
        for g in g0..g1 {
            let mut acc = [[0.0f32; G]; TILE];
            let mut vals = [[0i32; QK]; G];
            for b in 0..p.blocks {
                let (vo, so, s) = p.locate(g, b);
                for (j, row) in vals.iter_mut().enumerate() {
                    for (k, v) in row.iter_mut().enumerate() {
                        *v = p.value(vo, j, k);
                    }
                }
                let sc = p.block_scales(so, s);
                for (i, acc) in (t0..t1).zip(acc.iter_mut()) {
                    let ab = i * p.blocks + b;
                    let (dx, ds) = (a.d[ab], a.ds[ab]);
                    let x = &a.q[i * p.cols + b * QK..][..QK];
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let dot = |r: std::ops::Range<usize>| -> i32 { r.map(|k| vals[j][k] * x[k] as i32).sum() };
                        let (s0, s1) = (dot(0..16), dot(16..32));
                        if p.halves {
                            *acc += (sc.d0[j] * dx) * s0 as f32;
                            *acc += (sc.d1[j] * dx) * s1 as f32;
                        } else {
                            *acc += (sc.d0[j] * dx) * (s0 + s1) as f32;
                        }
                        if p.has_min && p.sup {
                            *acc -= sc.m[j] * ds;
                        } else if p.has_min {
                            *acc += sc.m[j] * ds;
                        }
                    }
                }
            }
            for (i, acc) in (t0..t1).zip(acc.iter()) {
                out.store(i, g, acc);
            }
        }
        t0 = t1;
    }
}
