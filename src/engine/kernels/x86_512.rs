//! AVX-512 VNNI kernel on 512-bit registers: two adjacent 8-row groups side by side, 16 output rows
//! per register, so one `vpdpbusd` does 64 multiply-adds and decode needs about half the
//! instructions of the 256-bit kernels. The lower 256 bits come from group `g`, the upper from group
//! `g + 1` (same block), so the layout stays the one shared by all kernels; a leftover odd group goes
//! to the 256-bit VNNI body. Same arithmetic, same order, so results equal the scalar reference.
//!
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
    let mut g = g0;
    // Task ranges start at even groups; an odd start is still handled.
    if g % 2 == 1 && g < g1 {
        super::x86::vnni::<MT>(p, a, i0, g, g + 1, out);
        g += 1;
    }
    while g + 2 <= g1 {
        pair::<MT>(p, a, i0, g, out);
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
#[inline(always)]
unsafe fn sums<const MT: usize>(
    p: &Packed,
    a: &QActs,
    w0: *const u8,
    w1: *const u8,
    i0: usize,
    b: usize,
) -> ([__m512i; MT], [__m512i; MT]) {
    let xbase = a.q.as_ptr();
    let xp = |t: usize| xbase.add((i0 + t) * p.cols + b * 32);
    let mut lo = [_mm512_setzero_si512(); MT];
    let mut hi = [_mm512_setzero_si512(); MT];
    // (w + 128) * x for signed 8-bit weights, corrected by 128 * sum(x) below.
    let zero = if p.width == Width::Int8 {
        let bias = _mm512_set1_epi8(-128);
        for c in 0..8 {
            let wu = _mm512_xor_si512(load2(w0, w1, 32 * c), bias);
            for t in 0..MT {
                let x = bcast(xp(t).add(4 * c));
                let s = if c < 4 { &mut lo[t] } else { &mut hi[t] };
                *s = _mm512_dpbusd_epi32(*s, wu, x);
            }
        }
        128
    } else {
        let mask = _mm512_set1_epi8(0x0F);
        let z = _mm512_setzero_si512();
        let (h5, h6a, h6b) = match p.width {
            Width::Nib5 => (load2(w0, w1, 128), z, z),
            Width::Nib6 => (z, load2(w0, w1, 128), load2(w0, w1, 160)),
            _ => (z, z, z),
        };
        for q in 0..4 {
            let w = load2(w0, w1, 32 * q);
            let mut wl = _mm512_and_si512(w, mask);
            let mut wh = _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask);
            match p.width {
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
                hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast(xp(t).add(16 + 4 * q)));
            }
        }
        p.zero
    };
    for t in 0..MT {
        if zero != 0 {
            let hs = a.hsum.get_unchecked((i0 + t) * p.blocks + b);
            lo[t] = _mm512_sub_epi32(lo[t], _mm512_set1_epi32(zero * hs[0]));
            hi[t] = _mm512_sub_epi32(hi[t], _mm512_set1_epi32(zero * hs[1]));
        }
        if !p.halves {
            lo[t] = _mm512_add_epi32(lo[t], hi[t]);
        }
    }
    (lo, hi)
}

#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn pair<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g: usize, out: OutPtr) {
    let (blocks, vb, nsub, area, sbytes) = (p.blocks, p.vbytes(), p.nsub, p.area(), p.sbytes());
    let zero = _mm512_setzero_ps();
    let mut acc = [zero; MT];
    for r in 0..p.nrec() {
        // Values: both groups' planes of each block side by side; then group g's scales, then g + 1's.
        let pr = p.data.as_ptr().add(p.pair_rec(g, r));
        let (p0, p1) = (pr.add(2 * area), pr.add(2 * area + sbytes));
        for line in p.scale_prefetches(pr) {
            _mm_prefetch::<_MM_HINT_T0>(line as *const i8);
        }
        // The records' super-scales (K-quants).
        let sup = 16 * nsub;
        let (sd, smin) = if p.sup {
            (scales2(p0, p1, sup), if p.has_min { scales2(p0, p1, sup + 16) } else { zero })
        } else {
            (zero, zero)
        };
        for s in 0..nsub {
            let b = r * nsub + s;
            let w0 = pr.add(2 * s * vb);
            let (lo, hi) = sums::<MT>(p, a, w0, w0.add(vb), i0, b);
            let so = 16 * s;
            let (d0, d1, m) = match (p.sup, p.halves) {
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
                _ => (scales2(p0, p1, 0), zero, if p.has_min { scales2(p0, p1, 16) } else { zero }),
            };
            for t in 0..MT {
                let ab = (i0 + t) * blocks + b;
                let dx = _mm512_set1_ps(*a.d.get_unchecked(ab));
                let mut v = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(lo[t])));
                if p.halves {
                    v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(hi[t])));
                }
                if p.has_min {
                    let mds = _mm512_mul_ps(m, _mm512_set1_ps(*a.ds.get_unchecked(ab)));
                    v = if p.sup { _mm512_sub_ps(v, mds) } else { _mm512_add_ps(v, mds) };
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
