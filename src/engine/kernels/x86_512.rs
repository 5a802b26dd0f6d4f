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
pub(crate) unsafe fn vnni512<const MT: usize, const F16: bool>(
    p: &Packed,
    a: &QActs,
    i0: usize,
    g0: usize,
    g1: usize,
    out: OutPtr,
) {
    let mut g = g0;
    // Task ranges start at even groups; an odd start is still handled.
    if g % 2 == 1 && g < g1 {
        super::x86::vnni::<MT, F16>(p, a, i0, g, g + 1, out);
        g += 1;
    }
    while g + 2 <= g1 {
        pair::<MT, F16>(p, a, i0, g, out);
        g += 2;
    }
    if g < g1 {
        super::x86::vnni::<MT, F16>(p, a, i0, g, g1, out);
    }
}

/// 32 bytes at `off` of both groups' records: group `g` low, group `g + 1` high.
#[inline(always)]
unsafe fn load2(p0: *const u8, p1: *const u8, off: usize) -> __m512i {
    let lo = _mm256_loadu_si256(p0.add(off) as *const __m256i);
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), _mm256_loadu_si256(p1.add(off) as *const __m256i))
}

/// 8 scales at `off` of both groups' records, as 16 floats.
#[inline(always)]
unsafe fn scales2<const F16: bool>(p0: *const u8, p1: *const u8, off: usize) -> __m512 {
    if F16 {
        let lo = _mm_loadu_si128(p0.add(off) as *const __m128i);
        let both =
            _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), _mm_loadu_si128(p1.add(off) as *const __m128i));
        _mm512_cvtph_ps(both)
    } else {
        let lo = _mm256_loadu_pd(p0.add(off) as *const f64);
        let both = _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(lo), _mm256_loadu_pd(p1.add(off) as *const f64));
        _mm512_castpd_ps(both)
    }
}

#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m512i {
    _mm512_set1_epi32(std::ptr::read_unaligned(p as *const i32))
}

#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn pair<const MT: usize, const F16: bool>(p: &Packed, a: &QActs, i0: usize, g: usize, out: OutPtr) {
    let (blocks, cols, rec, wbytes) = (p.blocks, p.cols, p.rec(), p.wbytes());
    let svec = G * if F16 { 2 } else { 4 };
    let xbase = a.q.as_ptr();
    let mask = _mm512_set1_epi8(0x0F);
    let bias = _mm512_set1_epi8(-128);
    let mut acc = [_mm512_setzero_ps(); MT];
    for b in 0..blocks {
        let p0 = p.data.as_ptr().add(p.rec_index(g, b) * rec);
        let p1 = p0.add(rec);
        let mut lo = [_mm512_setzero_si512(); MT];
        let mut hi = [_mm512_setzero_si512(); MT];
        if p.width == Width::Nib4 {
            for q in 0..4 {
                let w = load2(p0, p1, 32 * q);
                let wl = _mm512_and_si512(w, mask);
                let wh = _mm512_and_si512(_mm512_srli_epi16::<4>(w), mask);
                for t in 0..MT {
                    let xp = xbase.add((i0 + t) * cols + b * 32);
                    lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast(xp.add(4 * q)));
                    lo[t] = _mm512_dpbusd_epi32(lo[t], wh, bcast(xp.add(16 + 4 * q)));
                }
            }
        } else {
            for c in 0..8 {
                // (w + 128) * x, corrected by 128 * sum(x) below.
                let wu = _mm512_xor_si512(load2(p0, p1, 32 * c), bias);
                for t in 0..MT {
                    let x = bcast(xbase.add((i0 + t) * cols + b * 32 + 4 * c));
                    let s = if c < 4 { &mut lo[t] } else { &mut hi[t] };
                    *s = _mm512_dpbusd_epi32(*s, wu, x);
                }
            }
            for t in 0..MT {
                let hs = a.hsum.get_unchecked((i0 + t) * blocks + b);
                lo[t] = _mm512_sub_epi32(lo[t], _mm512_set1_epi32(128 * hs[0]));
                hi[t] = _mm512_sub_epi32(hi[t], _mm512_set1_epi32(128 * hs[1]));
                if !p.halves {
                    lo[t] = _mm512_add_epi32(lo[t], hi[t]);
                }
            }
        }
        let d = scales2::<F16>(p0, p1, wbytes);
        let d2 = if p.halves { scales2::<F16>(p0, p1, wbytes + svec) } else { d };
        let m = if p.has_min { scales2::<F16>(p0, p1, wbytes + svec * (1 + p.halves as usize)) } else { d };
        for t in 0..MT {
            let ab = (i0 + t) * blocks + b;
            let dx = _mm512_set1_ps(*a.d.get_unchecked(ab));
            let mut v = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(lo[t])));
            if p.halves {
                v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(d2, dx), _mm512_cvtepi32_ps(hi[t])));
            }
            if p.has_min {
                v = _mm512_add_ps(v, _mm512_mul_ps(m, _mm512_set1_ps(*a.ds.get_unchecked(ab))));
            }
            acc[t] = v;
        }
    }
    for (t, v) in acc.iter().enumerate() {
        let mut vals = [[0.0f32; G]; 2];
        _mm512_storeu_ps(vals.as_mut_ptr() as *mut f32, *v);
        out.store(i0 + t, g, &vals[0]);
        out.store(i0 + t, g + 1, &vals[1]);
    }
}
