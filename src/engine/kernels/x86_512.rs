//! AVX-512 VNNI kernel on 512-bit registers: two adjacent 8-row groups side by side, 16 output rows
//! per register, so one `vpdpbusd` does 64 multiply-adds and decode needs about half the
//! instructions of the 256-bit kernels. The lower 256 bits come from group `g`, the upper from group
//! `g + 1` (same block), so the layout stays the one shared by all kernels; a leftover odd group goes
//! to the 256-bit VNNI body. Same arithmetic, same order, so results equal the scalar reference.
//!
//! Each type's layout is a set of constants ([`Layout`]), so every type gets a loop of its own: with
//! the layout read from [`Packed`] at run time, a decode step branched on the width, the scales' form
//! and the minimum in every 32-weight block, and kept the record's sizes on the stack.
//!
//! Groups `2k` and `2k + 1` have their records alternating block by block, so a pair is read as one
//! sequential stream: with the pair's records `blocks` apart instead (two streams), the whole-model
//! decode step ran 2x slower from DRAM on this Xeon, although cache-resident products were faster.

// Tiles index several parallel register arrays by activation row `t`.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::activation::QActs;
use super::format::Width;
use super::packed::{OutPtr, Packed, G};

/// Entry point for groups `g0..g1` and activation rows `i0..i0 + MT`.
///
/// # Safety
/// The CPU must have AVX2, F16C, AVX512F/BW/VL and AVX512-VNNI; `out` must hold `i0 + MT` rows and
/// groups `g0..g1` must be this caller's alone.
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn vnni512<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    // (width, K-quant scales, scale per half, minimum): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
    match (p.width, p.sup, p.halves, p.has_min) {
        (Width::Nib4, false, false, false) => groups::<MT, L<4, false, false, false>>(p, a, i0, g0, g1, out),
        (Width::Nib4, false, false, true) => groups::<MT, L<4, false, false, true>>(p, a, i0, g0, g1, out),
        (Width::Nib5, false, false, false) => groups::<MT, L<5, false, false, false>>(p, a, i0, g0, g1, out),
        (Width::Nib5, false, false, true) => groups::<MT, L<5, false, false, true>>(p, a, i0, g0, g1, out),
        (Width::Int8, false, false, false) => groups::<MT, L<8, false, false, false>>(p, a, i0, g0, g1, out),
        (Width::Nib4, true, false, true) => groups::<MT, L<4, true, false, true>>(p, a, i0, g0, g1, out),
        (Width::Nib5, true, false, true) => groups::<MT, L<5, true, false, true>>(p, a, i0, g0, g1, out),
        (Width::Nib6, true, true, false) => groups::<MT, L<6, true, true, false>>(p, a, i0, g0, g1, out),
        // No such type today; the 256-bit kernel reads any layout at run time.
        _ => super::x86::vnni::<MT>(p, a, i0, g0, g1, out),
    }
}

/// A type's layout as constants (see [`Packed`]'s fields of the same meaning).
trait Layout {
    const WIDTH: Width;
    /// K-quant scales: byte sub-scales per block, f16 super-scales per record of 8 blocks.
    const SUP: bool;
    const HALVES: bool;
    const MIN: bool;
    /// Blocks per record.
    const NSUB: usize = if Self::SUP { 8 } else { 1 };
    /// Bytes of value planes per group and block ([`Packed::vbytes`]).
    const VBYTES: usize = match Self::WIDTH {
        Width::Nib4 => 128,
        Width::Nib5 => 160,
        Width::Nib6 => 192,
        Width::Int8 => 256,
    };
    /// Bytes of scales per group and record ([`Packed::sbytes`]).
    const SBYTES: usize = 16 * (1 + Self::MIN as usize) + if Self::SUP { 16 * Self::NSUB } else { 0 };
}

/// The layout with value bits `W` (4, 5, 6 or 8) and the other constants as named in [`Layout`].
struct L<const W: u8, const SUP: bool, const HALVES: bool, const MIN: bool>;

impl<const W: u8, const SUP: bool, const HALVES: bool, const MIN: bool> Layout for L<W, SUP, HALVES, MIN> {
    const WIDTH: Width = match W {
        4 => Width::Nib4,
        5 => Width::Nib5,
        6 => Width::Nib6,
        _ => Width::Int8,
    };
    const SUP: bool = SUP;
    const HALVES: bool = HALVES;
    const MIN: bool = MIN;
}

#[inline(always)]
unsafe fn groups<const MT: usize, T: Layout>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    debug_assert!(p.width == T::WIDTH && p.sup == T::SUP && p.halves == T::HALVES && p.has_min == T::MIN);
    debug_assert!(p.nsub == T::NSUB && p.vbytes() == T::VBYTES && p.sbytes() == T::SBYTES);
    let mut g = g0;
    // Task ranges start at even groups; an odd start is still handled.
    if g % 2 == 1 && g < g1 {
        super::x86::vnni::<MT>(p, a, i0, g, g + 1, out);
        g += 1;
    }
    while g + 2 <= g1 {
        pair::<MT, T>(p, a, i0, g, out);
        g += 2;
    }
    if g < g1 {
        super::x86::vnni::<MT>(p, a, i0, g, g1, out);
    }
}

/// 32 bytes at `off` of both groups' records: group `g` low, group `g + 1` high.
#[inline(always)]
unsafe fn load2(p0: *const u8, p1: *const u8, off: usize) -> __m512i {
    let lo = _mm256_loadu_si256(p0.add(off) as *const __m256i);
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), _mm256_loadu_si256(p1.add(off) as *const __m256i))
}

/// 8 f16 scales at `off` of both groups' records, as 16 floats.
#[inline(always)]
unsafe fn scales2(p0: *const u8, p1: *const u8, off: usize) -> __m512 {
    let lo = _mm_loadu_si128(p0.add(off) as *const __m128i);
    let both = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), _mm_loadu_si128(p1.add(off) as *const __m128i));
    _mm512_cvtph_ps(both)
}

/// 8 bytes at `off` of both groups' records (unsigned, or signed with `SIGNED`), as 16 floats.
#[inline(always)]
unsafe fn bytes2<const SIGNED: bool>(p0: *const u8, p1: *const u8, off: usize) -> __m512 {
    let b = _mm_unpacklo_epi64(
        _mm_loadl_epi64(p0.add(off) as *const __m128i),
        _mm_loadl_epi64(p1.add(off) as *const __m128i),
    );
    _mm512_cvtepi32_ps(if SIGNED { _mm512_cvtepi8_epi32(b) } else { _mm512_cvtepu8_epi32(b) })
}

#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m512i {
    _mm512_set1_epi32(std::ptr::read_unaligned(p as *const i32))
}

/// Bit 4 of the 5-bit values of step `q` out of the 1-bit plane `h` (as `x86::bit5`).
#[inline(always)]
unsafe fn bit5(h: __m512i, q: usize) -> (__m512i, __m512i) {
    let (lo, hi) = match q {
        0 => (_mm512_slli_epi16::<4>(h), h),
        1 => (_mm512_slli_epi16::<3>(h), _mm512_srli_epi16::<1>(h)),
        2 => (_mm512_slli_epi16::<2>(h), _mm512_srli_epi16::<2>(h)),
        _ => (_mm512_slli_epi16::<1>(h), _mm512_srli_epi16::<3>(h)),
    };
    let m = _mm512_set1_epi8(0x10);
    (_mm512_and_si512(lo, m), _mm512_and_si512(hi, m))
}

/// Bits 4..6 of the 6-bit values of step `q` out of one half's 2-bit plane `h` (as `x86::bits6`).
#[inline(always)]
unsafe fn bits6(h: __m512i, q: usize) -> __m512i {
    let s = match q {
        0 => _mm512_slli_epi16::<4>(h),
        1 => _mm512_slli_epi16::<2>(h),
        2 => h,
        _ => _mm512_srli_epi16::<2>(h),
    };
    _mm512_and_si512(s, _mm512_set1_epi8(0x30))
}

/// Integer sums of the two halves of block `b` (values at `w0`, `w1`), offset subtracted; the
/// first holds the whole block unless the type has `halves`.
///
/// Without `halves` both halves go into one accumulator per row: the sums are exact integers, so the
/// order does not matter, and the registers saved let a tile take 8 activation rows, which halves the
/// weight unpacking per row (at 4 rows, unpacking, not `vpdpbusd`, filled the vector ports).
/// The offset correction starts the accumulators instead of being subtracted at the end.
#[inline(always)]
unsafe fn sums<const MT: usize, T: Layout>(
    p: &Packed,
    a: &QActs,
    w0: *const u8,
    w1: *const u8,
    i0: usize,
    b: usize,
) -> ([__m512i; MT], [__m512i; MT]) {
    let xbase = a.q.as_ptr();
    let xp = |t: usize| xbase.add((i0 + t) * p.cols + b * 32);
    // The type's offset times the activations' sums, subtracted up front (zero for types with a minimum).
    let zero = if T::WIDTH == Width::Int8 { 128 } else { p.zero };
    let mut lo = [_mm512_setzero_si512(); MT];
    let mut hi = [_mm512_setzero_si512(); MT];
    if zero != 0 {
        for t in 0..MT {
            let hs = a.hsum.get_unchecked((i0 + t) * p.blocks + b);
            if T::HALVES {
                lo[t] = _mm512_set1_epi32(-zero * hs[0]);
                hi[t] = _mm512_set1_epi32(-zero * hs[1]);
            } else {
                lo[t] = _mm512_set1_epi32(-zero * (hs[0] + hs[1]));
            }
        }
    }
    // (w + 128) * x for signed 8-bit weights, corrected by 128 * sum(x) above.
    if T::WIDTH == Width::Int8 {
        let bias = _mm512_set1_epi8(-128);
        for c in 0..8 {
            let wu = _mm512_xor_si512(load2(w0, w1, 32 * c), bias);
            for t in 0..MT {
                let x = bcast(xp(t).add(4 * c));
                let s = if c < 4 || !T::HALVES { &mut lo[t] } else { &mut hi[t] };
                *s = _mm512_dpbusd_epi32(*s, wu, x);
            }
        }
    } else {
        let mask = _mm512_set1_epi8(0x0F);
        let z = _mm512_setzero_si512();
        let (h5, h6a, h6b) = match T::WIDTH {
            Width::Nib5 => (load2(w0, w1, 128), z, z),
            Width::Nib6 => (z, load2(w0, w1, 128), load2(w0, w1, 160)),
            _ => (z, z, z),
        };
        for q in 0..4 {
            let w = load2(w0, w1, 32 * q);
            let mut wl = _mm512_and_si512(w, mask);
            let mut wh = _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask);
            match T::WIDTH {
                Width::Nib5 => {
                    let (l, h) = bit5(h5, q);
                    wl = _mm512_or_si512(wl, l);
                    wh = _mm512_or_si512(wh, h);
                }
                Width::Nib6 => {
                    wl = _mm512_or_si512(wl, bits6(h6a, q));
                    wh = _mm512_or_si512(wh, bits6(h6b, q));
                }
                _ => {}
            }
            for t in 0..MT {
                lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast(xp(t).add(4 * q)));
                let s = if T::HALVES { &mut hi[t] } else { &mut lo[t] };
                *s = _mm512_dpbusd_epi32(*s, wh, bcast(xp(t).add(16 + 4 * q)));
            }
        }
    }
    (lo, hi)
}

#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn pair<const MT: usize, T: Layout>(p: &Packed, a: &QActs, i0: usize, g: usize, out: OutPtr) {
    let (blocks, vb, nsub, sbytes) = (p.blocks, T::VBYTES, T::NSUB, T::SBYTES);
    let area = nsub * vb;
    let zero = _mm512_setzero_ps();
    let mut acc = [zero; MT];
    for r in 0..blocks / nsub {
        // Values: both groups' planes of each block side by side; then group g's scales, then g + 1's.
        let pr = p.data.as_ptr().add(p.pair_rec(g, r));
        let (p0, p1) = (pr.add(2 * area), pr.add(2 * area + sbytes));
        if T::SUP {
            for line in p.scale_prefetches(pr) {
                _mm_prefetch::<_MM_HINT_T0>(line as *const i8);
            }
        }
        // The records' super-scales (K-quants).
        let sup = 16 * nsub;
        let (sd, smin) = if T::SUP {
            (scales2(p0, p1, sup), if T::MIN { scales2(p0, p1, sup + 16) } else { zero })
        } else {
            (zero, zero)
        };
        for s in 0..nsub {
            let b = r * nsub + s;
            let w0 = pr.add(2 * s * vb);
            let (lo, hi) = sums::<MT, T>(p, a, w0, w0.add(vb), i0, b);
            let so = 16 * s;
            let (d0, d1, m) = match (T::SUP, T::HALVES) {
                (true, true) => (
                    _mm512_mul_ps(sd, bytes2::<true>(p0, p1, so)),
                    _mm512_mul_ps(sd, bytes2::<true>(p0, p1, so + 8)),
                    zero,
                ),
                (true, false) => (
                    _mm512_mul_ps(sd, bytes2::<false>(p0, p1, so)),
                    zero,
                    _mm512_mul_ps(smin, bytes2::<false>(p0, p1, so + 8)),
                ),
                _ => (scales2(p0, p1, 0), zero, if T::MIN { scales2(p0, p1, 16) } else { zero }),
            };
            for t in 0..MT {
                let ab = (i0 + t) * blocks + b;
                let dx = _mm512_set1_ps(*a.d.get_unchecked(ab));
                let mut v = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(lo[t])));
                if T::HALVES {
                    v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(hi[t])));
                }
                if T::MIN {
                    let mds = _mm512_mul_ps(m, _mm512_set1_ps(*a.ds.get_unchecked(ab)));
                    v = if T::SUP { _mm512_sub_ps(v, mds) } else { _mm512_add_ps(v, mds) };
                }
                acc[t] = v;
            }
        }
    }
    for (t, v) in acc.iter().enumerate() {
        let mut vals = [[0.0f32; G]; 2];
        _mm512_storeu_ps(vals.as_mut_ptr() as *mut f32, *v);
        out.store(i0 + t, g, &vals[0]);
        out.store(i0 + t, g + 1, &vals[1]);
    }
}
