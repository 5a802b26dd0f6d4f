//! x86-64 kernels over the interleaved layout: AVX2 (`maddubs`/`madd`) and AVX-512 VNNI
//! (`vpdpbusd` on 256-bit registers, which needs AVX512-VL; 256-bit width keeps the layout shared
//! with AVX2 and avoids the frequency drop of 512-bit work on these Xeons while decode is bound by
//! memory anyway).
//!
//! One body serves both instruction sets: it is `#[inline(always)]` and generic over `VNNI`, so it
//! is compiled inside each `#[target_feature]` entry point with that entry point's features. Each
//! call covers a tile of `MT` (1..=4) activation rows, so weights loaded and unpacked once feed up
//! to 4 rows during prefill and batched decode (up to 8 when the 512-bit kernel hands over an odd
//! leftover group of its 8-row tile).
//!
//! Unsigned-times-signed products: 4-, 5- and 6-bit values are stored unsigned (a type's offset is
//! subtracted from the integer sums as `zero * sum(x)`); signed 8-bit weights use `|w| * sign(x, w)`
//! on AVX2 and `(w + 128) * x - 128 * sum(x)` with VNNI. K-quant scales are formed per block from the
//! byte sub-scales and the f16 super-scales of the record (`d * sc`, exact in f32).

// Tiles index several parallel register arrays by activation row `t` and group `h`.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::activation::QActs;
use super::format::Width;
use super::packed::{OutPtr, Packed, G};

/// 8 f16 values at `p` as f32.
#[inline(always)]
unsafe fn load8(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
}

/// 8 bytes at `p` (unsigned, or signed with `SIGNED`) as f32.
#[inline(always)]
unsafe fn bytes8<const SIGNED: bool>(p: *const u8) -> __m256 {
    let b = _mm_loadl_epi64(p as *const __m128i);
    _mm256_cvtepi32_ps(if SIGNED { _mm256_cvtepi8_epi32(b) } else { _mm256_cvtepu8_epi32(b) })
}

/// Broadcasts 4 activation bytes to all 8 lanes (one `vpbroadcastd` from memory).
#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m256i {
    _mm256_set1_epi32(std::ptr::read_unaligned(p as *const i32))
}

#[inline(always)]
unsafe fn finish<const MT: usize>(acc: &[__m256; MT], i0: usize, g: usize, out: OutPtr) {
    for (t, v) in acc.iter().enumerate() {
        let mut vals = [0.0f32; G];
        _mm256_storeu_ps(vals.as_mut_ptr(), *v);
        out.store(i0 + t, g, &vals);
    }
}

/// Bit 4 of the 5-bit values of step `q` out of the 1-bit plane `h`: (low half, high half).
#[inline(always)]
unsafe fn bit5(h: __m256i, q: usize) -> (__m256i, __m256i) {
    // Byte-local shifts: 16-bit lanes, but the bit kept (4) never comes from the other byte.
    let (lo, hi) = match q {
        0 => (_mm256_slli_epi16::<4>(h), h),
        1 => (_mm256_slli_epi16::<3>(h), _mm256_srli_epi16::<1>(h)),
        2 => (_mm256_slli_epi16::<2>(h), _mm256_srli_epi16::<2>(h)),
        _ => (_mm256_slli_epi16::<1>(h), _mm256_srli_epi16::<3>(h)),
    };
    let m = _mm256_set1_epi8(0x10);
    (_mm256_and_si256(lo, m), _mm256_and_si256(hi, m))
}

/// Bits 4..6 of the 6-bit values of step `q` out of one half's 2-bit plane `h`.
#[inline(always)]
unsafe fn bits6(h: __m256i, q: usize) -> __m256i {
    let s = match q {
        0 => _mm256_slli_epi16::<4>(h),
        1 => _mm256_slli_epi16::<2>(h),
        2 => h,
        _ => _mm256_srli_epi16::<2>(h),
    };
    _mm256_and_si256(s, _mm256_set1_epi8(0x30))
}

/// The integer sums of the two halves of block `b` (values at `wp`) for activation rows
/// `i0..i0 + MT`, the type's offset subtracted; with one scale per block (no `halves`) the first
/// holds the whole block.
#[inline(always)]
unsafe fn sums<const VNNI: bool, const MT: usize>(
    p: &Packed,
    a: &QActs,
    wp: *const u8,
    i0: usize,
    b: usize,
) -> ([__m256i; MT], [__m256i; MT]) {
    let xbase = a.q.as_ptr();
    let xp = |t: usize| xbase.add((i0 + t) * p.cols + b * 32);
    let ones = _mm256_set1_epi16(1);
    let mut lo = [_mm256_setzero_si256(); MT];
    let mut hi = [_mm256_setzero_si256(); MT];
    if p.width == Width::Int8 {
        let bias = _mm256_set1_epi8(-128);
        for c in 0..8 {
            let w = _mm256_loadu_si256(wp.add(32 * c) as *const __m256i);
            let (wu, aw) = (_mm256_xor_si256(w, bias), _mm256_abs_epi8(w));
            for t in 0..MT {
                let x = bcast(xp(t).add(4 * c));
                let s = if c < 4 { &mut lo[t] } else { &mut hi[t] };
                if VNNI {
                    *s = _mm256_dpbusd_epi32(*s, wu, x);
                } else {
                    let prod = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(prod, ones));
                }
            }
        }
        if VNNI {
            for t in 0..MT {
                let hs = a.hsum.get_unchecked((i0 + t) * p.blocks + b);
                lo[t] = _mm256_sub_epi32(lo[t], _mm256_set1_epi32(128 * hs[0]));
                hi[t] = _mm256_sub_epi32(hi[t], _mm256_set1_epi32(128 * hs[1]));
            }
        }
    } else {
        let mask = _mm256_set1_epi8(0x0F);
        let plane = |o: usize| _mm256_loadu_si256(wp.add(o) as *const __m256i);
        let (h5, h6a, h6b) = match p.width {
            Width::Nib5 => (plane(128), _mm256_setzero_si256(), _mm256_setzero_si256()),
            Width::Nib6 => (_mm256_setzero_si256(), plane(128), plane(160)),
            _ => (_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()),
        };
        // AVX2 sums pairs of products in i16: 4 steps of two u * x <= 31 * 127 stay below 32767, 6-bit
        // values only 2 steps, so they are widened to i32 twice as often.
        let flush = if p.width == Width::Nib6 { 2 } else { 4 };
        let mut lo16 = [_mm256_setzero_si256(); MT];
        let mut hi16 = [_mm256_setzero_si256(); MT];
        for q in 0..4 {
            let w = plane(32 * q);
            let mut wl = _mm256_and_si256(w, mask);
            let mut wh = _mm256_and_si256(_mm256_srli_epi16::<4>(w), mask);
            match p.width {
                Width::Nib5 => {
                    let (l, h) = bit5(h5, q);
                    wl = _mm256_or_si256(wl, l);
                    wh = _mm256_or_si256(wh, h);
                }
                Width::Nib6 => {
                    wl = _mm256_or_si256(wl, bits6(h6a, q));
                    wh = _mm256_or_si256(wh, bits6(h6b, q));
                }
                _ => {}
            }
            for t in 0..MT {
                let (xl, xh) = (bcast(xp(t).add(4 * q)), bcast(xp(t).add(16 + 4 * q)));
                if VNNI {
                    lo[t] = _mm256_dpbusd_epi32(lo[t], wl, xl);
                    hi[t] = _mm256_dpbusd_epi32(hi[t], wh, xh);
                } else {
                    lo16[t] = _mm256_add_epi16(lo16[t], _mm256_maddubs_epi16(wl, xl));
                    hi16[t] = _mm256_add_epi16(hi16[t], _mm256_maddubs_epi16(wh, xh));
                }
            }
            if !VNNI && (q + 1) % flush == 0 {
                for t in 0..MT {
                    lo[t] = _mm256_add_epi32(lo[t], _mm256_madd_epi16(lo16[t], ones));
                    hi[t] = _mm256_add_epi32(hi[t], _mm256_madd_epi16(hi16[t], ones));
                    lo16[t] = _mm256_setzero_si256();
                    hi16[t] = _mm256_setzero_si256();
                }
            }
        }
        if p.zero != 0 {
            for t in 0..MT {
                let hs = a.hsum.get_unchecked((i0 + t) * p.blocks + b);
                lo[t] = _mm256_sub_epi32(lo[t], _mm256_set1_epi32(p.zero * hs[0]));
                hi[t] = _mm256_sub_epi32(hi[t], _mm256_set1_epi32(p.zero * hs[1]));
            }
        }
    }
    if !p.halves {
        for t in 0..MT {
            lo[t] = _mm256_add_epi32(lo[t], hi[t]);
        }
    }
    (lo, hi)
}

/// Groups `g..g + H` (H = 2 only for an even `g`: their records alternate, and reading both keeps
/// one sequential stream, which the hardware prefetcher needs to reach DRAM bandwidth).
#[inline(always)]
unsafe fn body<const VNNI: bool, const MT: usize, const H: usize>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g: usize,
    out: OutPtr,
) {
    let (blocks, vb, nsub, area, sbytes) = (p.blocks, p.vbytes(), p.nsub, p.area(), p.sbytes());
    let base = p.data.as_ptr();
    let zero = _mm256_setzero_ps();
    let mut acc = [[zero; MT]; H];
    for r in 0..p.nrec() {
        let pr = base.add(p.pair_rec(g, r));
        for line in p.scale_prefetches(pr) {
            _mm_prefetch::<_MM_HINT_T0>(line as *const i8);
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
                (load8(at), if p.has_min { load8(at.add(16)) } else { zero })
            } else {
                (zero, zero)
            };
            for s in 0..nsub {
                let b = r * nsub + s;
                let (lo, hi) = sums::<VNNI, MT>(p, a, rp.add(2 * s * vb), i0, b);
                let (d0, d1, m) = match (p.sup, p.halves) {
                    (true, true) => (
                        _mm256_mul_ps(sd, bytes8::<true>(sp.add(16 * s))),
                        _mm256_mul_ps(sd, bytes8::<true>(sp.add(16 * s + 8))),
                        zero,
                    ),
                    (true, false) => (
                        _mm256_mul_ps(sd, bytes8::<false>(sp.add(16 * s))),
                        zero,
                        _mm256_mul_ps(smin, bytes8::<false>(sp.add(16 * s + 8))),
                    ),
                    _ => (load8(sp), zero, if p.has_min { load8(sp.add(16)) } else { zero }),
                };
                for t in 0..MT {
                    let ab = (i0 + t) * blocks + b;
                    let dx = _mm256_set1_ps(*a.d.get_unchecked(ab));
                    let mut v =
                        _mm256_add_ps(acc[h][t], _mm256_mul_ps(_mm256_mul_ps(d0, dx), _mm256_cvtepi32_ps(lo[t])));
                    if p.halves {
                        v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_mul_ps(d1, dx), _mm256_cvtepi32_ps(hi[t])));
                    }
                    if p.has_min {
                        let mds = _mm256_mul_ps(m, _mm256_set1_ps(*a.ds.get_unchecked(ab)));
                        v = if p.sup { _mm256_sub_ps(v, mds) } else { _mm256_add_ps(v, mds) };
                    }
                    acc[h][t] = v;
                }
            }
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        finish::<MT>(acc, i0, g + h, out);
    }
}

/// Groups `g0..g1` in pairs where they can be.
#[inline(always)]
unsafe fn groups<const VNNI: bool, const MT: usize>(
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
            body::<VNNI, MT, 2>(p, a, i0, g, out);
            g += 2;
        } else {
            body::<VNNI, MT, 1>(p, a, i0, g, out);
            g += 1;
        }
    }
}

/// AVX2 entry point.
///
/// # Safety
/// The CPU must have AVX2 and F16C; `out` must hold `i0 + MT` rows and groups `g0..g1` must be this
/// caller's alone.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn avx2<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    groups::<false, MT>(p, a, i0, g0, g1, out)
}

/// AVX-512 VNNI entry point (256-bit `vpdpbusd`).
///
/// # Safety
/// As [`avx2`], and the CPU must have AVX512F/BW/VL and AVX512-VNNI.
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn vnni<const MT: usize>(p: &Packed, a: &QActs, i0: usize, g0: usize, g1: usize, out: OutPtr) {
    groups::<true, MT>(p, a, i0, g0, g1, out)
}
