//! x86-64 kernels over the interleaved layout: AVX2 (`maddubs`/`madd`) and AVX-512 VNNI
//! (`vpdpbusd` on 256-bit registers, which needs AVX512-VL; 256-bit width keeps the layout shared
//! with AVX2 and avoids the frequency drop of 512-bit work on these Xeons while decode is bound by
//! memory anyway).
//!
//! One body serves both instruction sets: it is `#[inline(always)]` and generic over `VNNI`, so it
//! is compiled inside each `#[target_feature]` entry point with that entry point's features. Each
//! call covers a tile of `MT` (1..=4) activation rows, so weights loaded and unpacked once feed up
//! to 4 rows during prefill and batched decode.
//!
//! Unsigned-times-signed products: 4-bit values are already unsigned; signed 8-bit weights use
//! `|w| * sign(x, w)` on AVX2 and `(w + 128) * x - 128 * sum(x)` with VNNI.

// Tiles index several parallel register arrays by activation row `t` and group `h`.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::activation::QActs;
use super::format::Width;
use super::packed::{OutPtr, Packed, G};

#[inline(always)]
unsafe fn load8<const F16: bool>(p: *const u8) -> __m256 {
    if F16 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    } else {
        _mm256_loadu_ps(p as *const f32)
    }
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

/// Groups `g..g + H` (H = 2 only for an even `g`: their records alternate block by block, and reading
/// both keeps one sequential stream, which the hardware prefetcher needs to reach DRAM bandwidth).
#[inline(always)]
unsafe fn body<const VNNI: bool, const MT: usize, const F16: bool, const H: usize>(
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
    let mask = _mm256_set1_epi8(0x0F);
    let bias = _mm256_set1_epi8(-128);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); MT]; H];
    for b in 0..blocks {
        for h in 0..H {
            let wp = base.add((p.rec_index(g, b) + h) * rec);
            let mut lo = [_mm256_setzero_si256(); MT];
            let mut hi = [_mm256_setzero_si256(); MT];
            if p.width == Width::Nib4 {
                for q in 0..4 {
                    let w = _mm256_loadu_si256(wp.add(32 * q) as *const __m256i);
                    let wl = _mm256_and_si256(w, mask);
                    let wh = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
                    for t in 0..MT {
                        let xp = xbase.add((i0 + t) * cols + b * 32);
                        let (xl, xh) = (bcast(xp.add(4 * q)), bcast(xp.add(16 + 4 * q)));
                        if VNNI {
                            lo[t] = _mm256_dpbusd_epi32(lo[t], wl, xl);
                            lo[t] = _mm256_dpbusd_epi32(lo[t], wh, xh);
                        } else {
                            // i16 partial sums: 8 pairs of at most 15 * 127 * 2 stay below 32767.
                            let s = _mm256_add_epi16(_mm256_maddubs_epi16(wl, xl), _mm256_maddubs_epi16(wh, xh));
                            lo[t] = _mm256_add_epi16(lo[t], s);
                        }
                    }
                }
                if !VNNI {
                    for s in lo.iter_mut() {
                        *s = _mm256_madd_epi16(*s, ones);
                    }
                }
            } else {
                for c in 0..8 {
                    let w = _mm256_loadu_si256(wp.add(32 * c) as *const __m256i);
                    let (wu, aw) = (_mm256_xor_si256(w, bias), _mm256_abs_epi8(w));
                    for t in 0..MT {
                        let x = bcast(xbase.add((i0 + t) * cols + b * 32 + 4 * c));
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
                        let hs = a.hsum.get_unchecked((i0 + t) * blocks + b);
                        lo[t] = _mm256_sub_epi32(lo[t], _mm256_set1_epi32(128 * hs[0]));
                        hi[t] = _mm256_sub_epi32(hi[t], _mm256_set1_epi32(128 * hs[1]));
                    }
                }
                if !p.halves {
                    for t in 0..MT {
                        lo[t] = _mm256_add_epi32(lo[t], hi[t]);
                    }
                }
            }
            let sp = wp.add(wbytes);
            let d = load8::<F16>(sp);
            let d2 = if p.halves { load8::<F16>(sp.add(svec)) } else { d };
            let m = if p.has_min { load8::<F16>(sp.add(svec * (1 + p.halves as usize))) } else { d };
            for t in 0..MT {
                let ab = (i0 + t) * blocks + b;
                let dx = _mm256_set1_ps(*a.d.get_unchecked(ab));
                let mut v = _mm256_add_ps(acc[h][t], _mm256_mul_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(lo[t])));
                if p.halves {
                    v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_mul_ps(d2, dx), _mm256_cvtepi32_ps(hi[t])));
                }
                if p.has_min {
                    v = _mm256_add_ps(v, _mm256_mul_ps(m, _mm256_set1_ps(*a.ds.get_unchecked(ab))));
                }
                acc[h][t] = v;
            }
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        finish::<MT>(acc, i0, g + h, out);
    }
}

/// Groups `g0..g1` in pairs where they can be.
#[inline(always)]
unsafe fn groups<const VNNI: bool, const MT: usize, const F16: bool>(
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
            body::<VNNI, MT, F16, 2>(p, a, i0, g, out);
            g += 2;
        } else {
            body::<VNNI, MT, F16, 1>(p, a, i0, g, out);
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
pub(crate) unsafe fn avx2<const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    groups::<false, MT, F16>(p, a, i0, g0, g1, out)
}

/// AVX-512 VNNI entry point (256-bit `vpdpbusd`).
///
/// # Safety
/// As [`avx2`], and the CPU must have AVX512F/BW/VL and AVX512-VNNI.
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn vnni<const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    groups::<true, MT, F16>(p, a, i0, g0, g1, out)
}
