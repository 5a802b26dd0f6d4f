//! aarch64 kernels over the interleaved layout: plain NEON (widening `smull` + pairwise `sadalp`)
//! and the Armv8.2 dot-product extension (`sdot`, 4 multiply-adds per 32-bit lane, as `vpdpbusd`
//! does on x86 but signed by signed, so neither the unsigned-offset correction of VNNI nor the sign
//! trick of AVX2 is needed).
//!
//! A 128-bit register holds 4 weights of 4 rows (16 bytes of a 32-byte run of the layout), so each
//! 8-row group is two registers, and a broadcast of 4 activation bytes feeds both. As on x86, one
//! body is `#[inline(always)]` and generic over the dot-product flavour ([`Mac`]), so it is compiled
//! inside each `#[target_feature]` entry point; each call covers a tile of `MT` (1..=4) activation
//! rows, and even groups are read in pairs, whose records alternate block by block (one stream).
//!
//! The float steps are the scalar reference's, lane for lane: `(d * dx) * sum`, added to the
//! accumulator, then `m * ds` added, with separate multiplies and adds (`fmul`/`fadd`, never `fmla`)
//! and `scvtf` rounding to nearest as `as f32` does, so results equal the reference bit for bit.
//!
//! Two instructions come from inline assembly because their intrinsics are not stable in Rust: `sdot`
//! (`vdotq_s32`, feature `stdarch_neon_dotprod`) and `fcvtl` (`vcvt_f32_f16`, which needs the
//! unstable `f16` type). Both are exact: integer sums, and f16 to f32 widening.

// Tiles index several parallel register arrays by activation row `t` and row half `r`.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::activation::QActs;
use super::format::Width;
use super::packed::{OutPtr, Packed, G};

/// 4 f16 values at `p` as f32 (`fcvtl`, part of base AdvSIMD: no FP16 arithmetic extension needed).
#[inline(always)]
unsafe fn cvt4(p: *const u8) -> float32x4_t {
    let h = vld1_u16(p as *const u16);
    let o: float32x4_t;
    // SAFETY: register-only instruction of base AdvSIMD.
    asm!("fcvtl {0:v}.4s, {1:v}.4h", out(vreg) o, in(vreg) h, options(pure, nomem, nostack, preserves_flags));
    o
}

/// The 8 scales at `p` as two vectors: rows 0..4, rows 4..8.
#[inline(always)]
unsafe fn load8<const F16: bool>(p: *const u8) -> [float32x4_t; 2] {
    if F16 {
        [cvt4(p), cvt4(p.add(8))]
    } else {
        [vld1q_f32(p as *const f32), vld1q_f32(p.add(16) as *const f32)]
    }
}

/// Broadcasts 4 activation bytes to all 4 lanes (`ld1r`).
#[inline(always)]
unsafe fn bcast(p: *const i8) -> int8x16_t {
    vreinterpretq_s8_s32(vdupq_n_s32(std::ptr::read_unaligned(p as *const i32)))
}

/// One flavour of 4-way byte dot products into 32-bit lanes, one lane per row. The accumulator is
/// two vectors so that the widening flavour can keep pairs of products apart until [`Mac::total`].
trait Mac {
    /// `acc` += the products of `w` (4 bytes of each of 4 rows) and `x` (4 bytes, broadcast).
    unsafe fn mac(acc: &mut [int32x4_t; 2], w: int8x16_t, x: int8x16_t);
    /// The 4 row sums.
    unsafe fn total(acc: [int32x4_t; 2]) -> int32x4_t;
}

/// Plain NEON: 16 products widened to i16 (`smull`, `smull2`; |w x| <= 128 * 127 fits), then added
/// pairwise into i32 (`sadalp`): lanes hold (row, pair of weights) until the final pairwise add.
struct Widening;

impl Mac for Widening {
    #[inline(always)]
    unsafe fn mac(acc: &mut [int32x4_t; 2], w: int8x16_t, x: int8x16_t) {
        acc[0] = vpadalq_s16(acc[0], vmull_s8(vget_low_s8(w), vget_low_s8(x)));
        acc[1] = vpadalq_s16(acc[1], vmull_high_s8(w, x));
    }

    #[inline(always)]
    unsafe fn total(acc: [int32x4_t; 2]) -> int32x4_t {
        vpaddq_s32(acc[0], acc[1])
    }
}

/// Armv8.2 `sdot`: each 32-bit lane gains the dot product of its 4 byte pairs.
struct Sdot;

impl Mac for Sdot {
    #[inline(always)]
    unsafe fn mac(acc: &mut [int32x4_t; 2], w: int8x16_t, x: int8x16_t) {
        // SAFETY: compiled only inside `dotprod`, whose CPU has the dot-product extension.
        asm!(
            "sdot {0:v}.4s, {1:v}.16b, {2:v}.16b",
            inout(vreg) acc[0],
            in(vreg) w,
            in(vreg) x,
            options(pure, nomem, nostack, preserves_flags)
        );
    }

    #[inline(always)]
    unsafe fn total(acc: [int32x4_t; 2]) -> int32x4_t {
        acc[0]
    }
}

/// Groups `g..g + H` for activation rows `i0..i0 + MT`.
#[inline(always)]
unsafe fn body<D: Mac, const MT: usize, const F16: bool, const H: usize>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g: usize,
    out: OutPtr,
) {
    let (blocks, cols, rec, wbytes) = (p.blocks, p.cols, p.rec(), p.wbytes());
    let svec = G * if F16 { 2 } else { 4 };
    let base = p.data.as_ptr();
    let xbase = a.q.as_ptr();
    let mask = vdupq_n_u8(0x0F);
    let zero = vdupq_n_s32(0);
    // Per group, activation row and row half (rows 0..4, 4..8).
    let mut acc = [[[vdupq_n_f32(0.0); 2]; MT]; H];
    for b in 0..blocks {
        for h in 0..H {
            let wp = base.add((p.rec_index(g, b) + h) * rec);
            // The sums of weights 0..16 (`lo`) and 16..32 (`hi`), kept apart only where the two
            // halves have their own scales (Q6_K).
            let mut lo = [[[zero; 2]; 2]; MT];
            let mut hi = [[[zero; 2]; 2]; MT];
            if p.width == Width::Nib4 {
                for q in 0..4 {
                    for r in 0..2 {
                        let w = vld1q_u8(wp.add(32 * q + 16 * r));
                        let wl = vreinterpretq_s8_u8(vandq_u8(w, mask));
                        let wh = vreinterpretq_s8_u8(vshrq_n_u8::<4>(w));
                        for t in 0..MT {
                            let xp = xbase.add((i0 + t) * cols + b * 32);
                            D::mac(&mut lo[t][r], wl, bcast(xp.add(4 * q)));
                            D::mac(&mut lo[t][r], wh, bcast(xp.add(16 + 4 * q)));
                        }
                    }
                }
            } else {
                for c in 0..8 {
                    for r in 0..2 {
                        let w = vld1q_s8(wp.add(32 * c + 16 * r) as *const i8);
                        for t in 0..MT {
                            let x = bcast(xbase.add((i0 + t) * cols + b * 32 + 4 * c));
                            let s = if c < 4 || !p.halves { &mut lo[t][r] } else { &mut hi[t][r] };
                            D::mac(s, w, x);
                        }
                    }
                }
            }
            let sp = wp.add(wbytes);
            let d = load8::<F16>(sp);
            let d2 = if p.halves { load8::<F16>(sp.add(svec)) } else { d };
            let m = if p.has_min { load8::<F16>(sp.add(svec * (1 + p.halves as usize))) } else { d };
            for t in 0..MT {
                let ab = (i0 + t) * blocks + b;
                let dx = vdupq_n_f32(*a.d.get_unchecked(ab));
                let ds = vdupq_n_f32(*a.ds.get_unchecked(ab));
                for r in 0..2 {
                    let s0 = vcvtq_f32_s32(D::total(lo[t][r]));
                    let mut v = vaddq_f32(acc[h][t][r], vmulq_f32(vmulq_f32(d[r], dx), s0));
                    if p.halves {
                        let s1 = vcvtq_f32_s32(D::total(hi[t][r]));
                        v = vaddq_f32(v, vmulq_f32(vmulq_f32(d2[r], dx), s1));
                    }
                    if p.has_min {
                        v = vaddq_f32(v, vmulq_f32(m[r], ds));
                    }
                    acc[h][t][r] = v;
                }
            }
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        for (t, v) in acc.iter().enumerate() {
            let mut vals = [0.0f32; G];
            vst1q_f32(vals.as_mut_ptr(), v[0]);
            vst1q_f32(vals.as_mut_ptr().add(4), v[1]);
            out.store(i0 + t, g + h, &vals);
        }
    }
}

/// Groups `g0..g1` in pairs where they can be.
#[inline(always)]
unsafe fn groups<D: Mac, const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    let mut g = g0;
    while g < g1 {
        if g.is_multiple_of(2) && g + 2 <= g1 {
            body::<D, MT, F16, 2>(p, a, i0, g, out);
            g += 2;
        } else {
            body::<D, MT, F16, 1>(p, a, i0, g, out);
            g += 1;
        }
    }
}

/// NEON entry point.
///
/// # Safety
/// The CPU must have NEON (every aarch64 Linux CPU does); `out` must hold `i0 + MT` rows and groups
/// `g0..g1` must be this caller's alone.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn neon<const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    groups::<Widening, MT, F16>(p, a, i0, g0, g1, out)
}

/// Dot-product entry point (`sdot`).
///
/// # Safety
/// As [`neon`], and the CPU must have the dot-product extension (`dotprod`).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn dotprod<const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    groups::<Sdot, MT, F16>(p, a, i0, g0, g1, out)
}
