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
//! 4-, 5- and 6-bit values are stored unsigned (non-negative as signed bytes too), and a type's offset
//! is subtracted from the integer sums as `zero * sum(x)`; the high bits come out of their planes with
//! byte shifts. The float steps are the scalar reference's, lane for lane: `(d * dx) * sum`, added to
//! the accumulator, then `m * ds` added (K-quants: `(dmin * min) * ds` subtracted), with separate multiplies and adds (`fmul`/`fadd`, never `fmla`)
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

/// The 8 f16 scales at `p` as two vectors: rows 0..4, rows 4..8.
#[inline(always)]
unsafe fn load8(p: *const u8) -> [float32x4_t; 2] {
    [cvt4(p), cvt4(p.add(8))]
}

/// The 8 bytes at `p` (unsigned, or signed with `SIGNED`) as two vectors of floats.
#[inline(always)]
unsafe fn bytes8<const SIGNED: bool>(p: *const u8) -> [float32x4_t; 2] {
    if SIGNED {
        let w = vmovl_s8(vld1_s8(p as *const i8));
        [vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), vcvtq_f32_s32(vmovl_high_s16(w))]
    } else {
        let w = vmovl_u8(vld1_u8(p));
        [vcvtq_f32_u32(vmovl_u16(vget_low_u16(w))), vcvtq_f32_u32(vmovl_high_u16(w))]
    }
}

#[inline(always)]
unsafe fn mul2(a: [float32x4_t; 2], b: [float32x4_t; 2]) -> [float32x4_t; 2] {
    [vmulq_f32(a[0], b[0]), vmulq_f32(a[1], b[1])]
}

/// Bit 4 of the 5-bit values of step `q` out of the 1-bit plane `h`: (low half, high half).
#[inline(always)]
unsafe fn bit5(h: uint8x16_t, q: usize) -> (uint8x16_t, uint8x16_t) {
    let (lo, hi) = match q {
        0 => (vshlq_n_u8::<4>(h), h),
        1 => (vshlq_n_u8::<3>(h), vshrq_n_u8::<1>(h)),
        2 => (vshlq_n_u8::<2>(h), vshrq_n_u8::<2>(h)),
        _ => (vshlq_n_u8::<1>(h), vshrq_n_u8::<3>(h)),
    };
    let m = vdupq_n_u8(0x10);
    (vandq_u8(lo, m), vandq_u8(hi, m))
}

/// Bits 4..6 of the 6-bit values of step `q` out of one half's 2-bit plane `h`.
#[inline(always)]
unsafe fn bits6(h: uint8x16_t, q: usize) -> uint8x16_t {
    let s = match q {
        0 => vshlq_n_u8::<4>(h),
        1 => vshlq_n_u8::<2>(h),
        2 => h,
        _ => vshrq_n_u8::<2>(h),
    };
    vandq_u8(s, vdupq_n_u8(0x30))
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

/// The integer sums of the two halves of block `b` (values at `wp`) per activation row and row half
/// (rows 0..4, 4..8), the type's offset subtracted; the first holds the whole block unless `halves`.
#[inline(always)]
unsafe fn sums<D: Mac, const MT: usize>(
    p: &Packed,
    a: &QActs,
    wp: *const u8,
    i0: usize,
    b: usize,
) -> ([[int32x4_t; 2]; MT], [[int32x4_t; 2]; MT]) {
    let xbase = a.q.as_ptr();
    let xp = |t: usize| xbase.add((i0 + t) * p.cols + b * 32);
    let zero = vdupq_n_s32(0);
    let mut lo = [[[zero; 2]; 2]; MT];
    let mut hi = [[[zero; 2]; 2]; MT];
    if p.width == Width::Int8 {
        for c in 0..8 {
            for r in 0..2 {
                let w = vld1q_s8(wp.add(32 * c + 16 * r) as *const i8);
                for t in 0..MT {
                    let x = bcast(xp(t).add(4 * c));
                    let s = if c < 4 { &mut lo[t][r] } else { &mut hi[t][r] };
                    D::mac(s, w, x);
                }
            }
        }
    } else {
        let mask = vdupq_n_u8(0x0F);
        for r in 0..2 {
            let plane = |o: usize| vld1q_u8(wp.add(o + 16 * r));
            let z = vdupq_n_u8(0);
            let (h5, h6a, h6b) = match p.width {
                Width::Nib5 => (plane(128), z, z),
                Width::Nib6 => (z, plane(128), plane(160)),
                _ => (z, z, z),
            };
            for q in 0..4 {
                let w = plane(32 * q);
                let mut wl = vandq_u8(w, mask);
                let mut wh = vshrq_n_u8::<4>(w);
                match p.width {
                    Width::Nib5 => {
                        let (l, h) = bit5(h5, q);
                        wl = vorrq_u8(wl, l);
                        wh = vorrq_u8(wh, h);
                    }
                    Width::Nib6 => {
                        wl = vorrq_u8(wl, bits6(h6a, q));
                        wh = vorrq_u8(wh, bits6(h6b, q));
                    }
                    _ => {}
                }
                let (wl, wh) = (vreinterpretq_s8_u8(wl), vreinterpretq_s8_u8(wh));
                for t in 0..MT {
                    D::mac(&mut lo[t][r], wl, bcast(xp(t).add(4 * q)));
                    D::mac(&mut hi[t][r], wh, bcast(xp(t).add(16 + 4 * q)));
                }
            }
        }
    }
    let mut s0 = [[zero; 2]; MT];
    let mut s1 = [[zero; 2]; MT];
    for t in 0..MT {
        let hs = a.hsum.get_unchecked((i0 + t) * p.blocks + b);
        let (z0, z1) = (vdupq_n_s32(p.zero * hs[0]), vdupq_n_s32(p.zero * hs[1]));
        for r in 0..2 {
            s0[t][r] = vsubq_s32(D::total(lo[t][r]), z0);
            s1[t][r] = vsubq_s32(D::total(hi[t][r]), z1);
            if !p.halves {
                s0[t][r] = vaddq_s32(s0[t][r], s1[t][r]);
            }
        }
    }
    (s0, s1)
}

/// Groups `g..g + H` for activation rows `i0..i0 + MT`.
#[inline(always)]
unsafe fn body<D: Mac, const MT: usize, const H: usize>(p: &Packed, a: &QActs, i0: usize, g: usize, out: OutPtr) {
    let (blocks, vb, nsub, area, sbytes) = (p.blocks, p.vbytes(), p.nsub, p.area(), p.sbytes());
    let base = p.data.as_ptr();
    let zf = [vdupq_n_f32(0.0); 2];
    // Per group, activation row and row half (rows 0..4, 4..8).
    let mut acc = [[zf; MT]; H];
    for rr in 0..p.nrec() {
        let pr = base.add(p.pair_rec(g, rr));
        for line in p.scale_prefetches(pr) {
            // PRFM never faults (no stable intrinsic for it yet).
            std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) line, options(nostack, preserves_flags, readonly));
        }
        for h in 0..H {
            // Values of this group's blocks every 2 * vb bytes, its scales after all the values.
            // The group's place in its pair: an odd group alone (H = 1) is the pair's second.
            let half = (g + h) % 2;
            let rp = pr.add(half * vb);
            let sp = pr.add(2 * area + half * sbytes);
            // The record's super-scales (K-quants).
            let (sd, smin) = if p.sup {
                let at = sp.add(16 * nsub);
                (load8(at), if p.has_min { load8(at.add(16)) } else { zf })
            } else {
                (zf, zf)
            };
            for s in 0..nsub {
                let b = rr * nsub + s;
                let (lo, hi) = sums::<D, MT>(p, a, rp.add(2 * s * vb), i0, b);
                let (d0, d1, m) = match (p.sup, p.halves) {
                    (true, true) => {
                        (mul2(sd, bytes8::<true>(sp.add(16 * s))), mul2(sd, bytes8::<true>(sp.add(16 * s + 8))), zf)
                    }
                    (true, false) => {
                        (mul2(sd, bytes8::<false>(sp.add(16 * s))), zf, mul2(smin, bytes8::<false>(sp.add(16 * s + 8))))
                    }
                    _ => (load8(sp), zf, if p.has_min { load8(sp.add(16)) } else { zf }),
                };
                for t in 0..MT {
                    let ab = (i0 + t) * blocks + b;
                    let dx = vdupq_n_f32(*a.d.get_unchecked(ab));
                    let ds = vdupq_n_f32(*a.ds.get_unchecked(ab));
                    for r in 0..2 {
                        let mut v = vaddq_f32(acc[h][t][r], vmulq_f32(vmulq_f32(d0[r], dx), vcvtq_f32_s32(lo[t][r])));
                        if p.halves {
                            v = vaddq_f32(v, vmulq_f32(vmulq_f32(d1[r], dx), vcvtq_f32_s32(hi[t][r])));
                        }
                        if p.has_min {
                            let mds = vmulq_f32(m[r], ds);
                            v = if p.sup { vsubq_f32(v, mds) } else { vaddq_f32(v, mds) };
                        }
                        acc[h][t][r] = v;
                    }
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
unsafe fn groups<D: Mac, const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    let mut g = g0;
    while g < g1 {
        if g.is_multiple_of(2) && g + 2 <= g1 {
            body::<D, MT, 2>(p, a, i0, g, out);
            g += 2;
        } else {
            body::<D, MT, 1>(p, a, i0, g, out);
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
pub(crate) unsafe fn neon<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    groups::<Widening, MT>(p, a, i0, g0, g1, out)
}

/// Dot-product entry point (`sdot`).
///
/// # Safety
/// As [`neon`], and the CPU must have the dot-product extension (`dotprod`).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn dotprod<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    groups::<Sdot, MT>(p, a, i0, g0, g1, out)
}
