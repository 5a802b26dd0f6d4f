//! Products on dense 16-bit weights (bf16, f16) kept as the checkpoint stores them: widening a bf16
//! checkpoint to f32 at load doubles its memory (a 1 GB Qwen2.5-0.5B took 2 GB), while decode streams
//! every weight from DRAM once per token anyway, so converting on the fly costs little.
//!
//! [`HalfMatrix::matmul`] converts a tile of weight rows to f32 (bf16: the 16 bits shifted into the
//! top of an f32; f16: F16C's `vcvtph2ps` on x86-64; both exact) and dots every activation row with
//! them in f32, the activations unrounded. Each output is one dot product summed in a fixed order —
//! 4 x 8 lanes, element-wise multiply then add (no fused multiply-add), the lanes reduced in a fixed
//! tree, the last `cols % 8` terms added one by one — whatever the batch, tile or thread split, so
//! batched rows give exactly what the row gives alone. The portable reference ([`dot_ref`]) follows
//! that order and the AVX2 path matches it bit for bit (tested); other CPUs run the reference.

use candle_core::{DType, Device, Module, Tensor};
use rayon::prelude::*;

use super::packed::OutPtr;
use super::{Isa, KernelError};

/// The 16-bit float format of a [`HalfMatrix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Bf16,
    F16,
}

impl Half {
    fn to_f32(self, bits: u16) -> f32 {
        match self {
            Half::Bf16 => f32::from_bits((bits as u32) << 16),
            Half::F16 => half::f16::from_bits(bits).to_f32(),
        }
    }
}

/// A `rows x cols` matrix of 16-bit weights (output features x input features, row-major).
pub struct HalfMatrix {
    kind: Half,
    /// [`Isa::Avx2`] where the CPU has it, [`Isa::Scalar`] otherwise.
    isa: Isa,
    rows: usize,
    cols: usize,
    bits: Vec<u16>,
}

impl std::fmt::Debug for HalfMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HalfMatrix({:?} {}x{}, {:?})", self.kind, self.rows, self.cols, self.isa)
    }
}

/// Weight floats converted per tile (128 KiB of f32, which stays in L2 while every activation row
/// of a prefill reads it).
const TILE_FLOATS: usize = 32 * 1024;
/// Products below this many multiply-adds run on one thread.
const MIN_PARALLEL: usize = 1 << 16;

impl HalfMatrix {
    /// Wraps `rows * cols` raw 16-bit values.
    pub fn new(kind: Half, rows: usize, cols: usize, bits: Vec<u16>) -> Result<HalfMatrix, KernelError> {
        if bits.len() != rows * cols {
            return Err(KernelError::Shape { what: "16-bit weights", expected: rows * cols, got: bits.len() });
        }
        let isa = if Isa::Avx2.is_available() { Isa::Avx2 } else { Isa::Scalar };
        Ok(HalfMatrix { kind, isa, rows, cols, bits })
    }

    /// Takes a 2-D bf16 or f16 CPU tensor's values (one copy; the tensor can be dropped after).
    pub fn from_tensor(t: &Tensor) -> Result<HalfMatrix, KernelError> {
        let (rows, cols) = t.dims2()?;
        let flat = t.flatten_all()?;
        // `into_iter().map().collect()` between types of one layout reuses the allocation.
        let (kind, bits): (Half, Vec<u16>) = match t.dtype() {
            DType::BF16 => (Half::Bf16, flat.to_vec1::<half::bf16>()?.into_iter().map(|x| x.to_bits()).collect()),
            DType::F16 => (Half::F16, flat.to_vec1::<half::f16>()?.into_iter().map(|x| x.to_bits()).collect()),
            other => return Err(KernelError::UnsupportedType(format!("{other:?} (16-bit weights expected)"))),
        };
        HalfMatrix::new(kind, rows, cols, bits)
    }

    /// Forces the reference ([`Isa::Scalar`]) or the AVX2 path; fails for other families or when the
    /// CPU lacks it.
    pub fn set_isa(&mut self, isa: Isa) -> Result<(), KernelError> {
        if !matches!(isa, Isa::Scalar | Isa::Avx2) || !isa.is_available() {
            return Err(KernelError::IsaUnavailable(isa));
        }
        self.isa = isa;
        Ok(())
    }

    /// The kernel family in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The stored format.
    pub fn kind(&self) -> Half {
        self.kind
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held by the weights.
    pub fn size_in_bytes(&self) -> usize {
        2 * self.bits.len()
    }

    /// Row `r` as f32 into `out` (`cols` floats), for embedding lookups.
    pub fn row_into(&self, r: usize, out: &mut [f32]) -> Result<(), KernelError> {
        if r >= self.rows {
            return Err(KernelError::Row { row: r, rows: self.rows });
        }
        if out.len() != self.cols {
            return Err(KernelError::Shape { what: "16-bit row", expected: self.cols, got: out.len() });
        }
        let src = &self.bits[r * self.cols..(r + 1) * self.cols];
        for (o, b) in out.iter_mut().zip(src) {
            *o = self.kind.to_f32(*b);
        }
        Ok(())
    }

    /// `out[i, r] = sum_c x[i, c] * W[r, c]` for `m` activation rows (`x` `[m, cols]`, `out`
    /// `[m, rows]`, row-major), on the current rayon pool.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<(), KernelError> {
        let (rows, cols) = (self.rows, self.cols);
        if x.len() != m * cols {
            return Err(KernelError::Shape { what: "matmul input", expected: m * cols, got: x.len() });
        }
        if out.len() != m * rows {
            return Err(KernelError::Shape { what: "matmul output", expected: m * rows, got: out.len() });
        }
        if m == 0 || rows == 0 {
            return Ok(());
        }
        if cols == 0 {
            out.fill(0.0);
            return Ok(());
        }
        let tile = (TILE_FLOATS / cols).clamp(1, rows);
        let tiles = rows.div_ceil(tile);
        let dst = OutPtr { ptr: out.as_mut_ptr(), rows };
        let run = |buf: &mut Vec<f32>, t: usize| {
            let (r0, r1) = (t * tile, ((t + 1) * tile).min(rows));
            // SAFETY: tile t writes only columns r0..r1 of `out`, which holds m rows of `rows`.
            unsafe { self.run_tile(x, m, r0, r1, buf, dst) }
        };
        if tiles == 1 || m * rows * cols < MIN_PARALLEL {
            let mut buf = Vec::new();
            (0..tiles).for_each(|t| run(&mut buf, t));
        } else {
            (0..tiles).into_par_iter().for_each_init(Vec::new, run);
        }
        Ok(())
    }

    /// Converts rows `r0..r1` into `buf` and writes their dot products with every activation row.
    ///
    /// # Safety
    /// `out` must hold `m` rows of `self.rows` floats, and no other thread may write columns `r0..r1`.
    unsafe fn run_tile(&self, x: &[f32], m: usize, r0: usize, r1: usize, buf: &mut Vec<f32>, out: OutPtr) {
        let cols = self.cols;
        let w = &self.bits[r0 * cols..r1 * cols];
        buf.resize(w.len(), 0.0);
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::convert(self.kind, w, buf),
            _ => {
                for (o, b) in buf.iter_mut().zip(w) {
                    *o = self.kind.to_f32(*b);
                }
            }
        }
        for i in 0..m {
            let xi = &x[i * cols..(i + 1) * cols];
            for (k, wr) in buf.chunks_exact(cols).enumerate() {
                let v = match self.isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => avx2::dot(xi, wr),
                    _ => dot_ref(xi, wr),
                };
                *out.ptr.add(i * out.rows + r0 + k) = v;
            }
        }
    }
}

/// The reference dot product, in the order every path sums: lanes `l` of 4 accumulators of 8 take
/// element `32c + 8u + l` of each full 32-element chunk, further whole 8s go to accumulator 0; the
/// accumulators are added pairwise ((0 + 1) + (2 + 3)), the 8 lanes folded as an x86 horizontal sum
/// does (`l + 4`, then `l + 2`, then `l + 1`), and the last `len % 8` products added in order.
pub fn dot_ref(x: &[f32], w: &[f32]) -> f32 {
    let n = x.len().min(w.len());
    let mut acc = [[0f32; 8]; 4];
    let full = n / 32 * 32;
    for c in (0..full).step_by(32) {
        for (u, a) in acc.iter_mut().enumerate() {
            for (l, a) in a.iter_mut().enumerate() {
                *a += x[c + 8 * u + l] * w[c + 8 * u + l];
            }
        }
    }
    let eights = n / 8 * 8;
    for c in (full..eights).step_by(8) {
        for (l, a) in acc[0].iter_mut().enumerate() {
            *a += x[c + l] * w[c + l];
        }
    }
    let mut v = [0f32; 8];
    for (l, v) in v.iter_mut().enumerate() {
        *v = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    let s: [f32; 4] = std::array::from_fn(|l| v[l] + v[l + 4]);
    let mut total = (s[0] + s[2]) + (s[1] + s[3]);
    for c in eights..n {
        total += x[c] * w[c];
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Half;
    use std::arch::x86_64::*;

    /// `w` converted into `out` (same length).
    pub(super) fn convert(kind: Half, w: &[u16], out: &mut [f32]) {
        // SAFETY: only selected when `Isa::Avx2` (AVX2 + F16C) is available.
        unsafe {
            match kind {
                Half::Bf16 => convert_bf16(w, out),
                Half::F16 => convert_f16(w, out),
            }
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn convert_bf16(w: &[u16], out: &mut [f32]) {
        let n = w.len().min(out.len()) / 8 * 8;
        for c in (0..n).step_by(8) {
            let h = _mm_loadu_si128(w.as_ptr().add(c) as *const __m128i);
            let f = _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h));
            _mm256_storeu_ps(out.as_mut_ptr().add(c), _mm256_castsi256_ps(f));
        }
        for c in n..w.len().min(out.len()) {
            out[c] = Half::Bf16.to_f32(w[c]);
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    unsafe fn convert_f16(w: &[u16], out: &mut [f32]) {
        let n = w.len().min(out.len()) / 8 * 8;
        for c in (0..n).step_by(8) {
            let h = _mm_loadu_si128(w.as_ptr().add(c) as *const __m128i);
            _mm256_storeu_ps(out.as_mut_ptr().add(c), _mm256_cvtph_ps(h));
        }
        for c in n..w.len().min(out.len()) {
            out[c] = Half::F16.to_f32(w[c]);
        }
    }

    /// [`super::dot_ref`] on 256-bit registers, bit for bit.
    pub(super) fn dot(x: &[f32], w: &[f32]) -> f32 {
        // SAFETY: only selected when AVX2 is available.
        unsafe { dot_avx2(x, w) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_avx2(x: &[f32], w: &[f32]) -> f32 {
        let n = x.len().min(w.len());
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        // A macro, not a closure: the loads must compile with this function's target features.
        macro_rules! mul {
            ($c:expr) => {
                _mm256_mul_ps(_mm256_loadu_ps(xp.add($c)), _mm256_loadu_ps(wp.add($c)))
            };
        }
        let mut acc = [_mm256_setzero_ps(); 4];
        let full = n / 32 * 32;
        for c in (0..full).step_by(32) {
            for (u, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, mul!(c + 8 * u));
            }
        }
        let eights = n / 8 * 8;
        for c in (full..eights).step_by(8) {
            acc[0] = _mm256_add_ps(acc[0], mul!(c));
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        // [s0 + s2, s1 + s3, ...], then lane 0 plus lane 1.
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        let mut total = _mm_cvtss_f32(s);
        for c in eights..n {
            total += x[c] * w[c];
        }
        total
    }
}

/// Input `[..., cols]` f32 on the CPU, output `[..., rows]` f32.
impl Module for HalfMatrix {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if !matches!(xs.device(), Device::Cpu) {
            candle_core::bail!("HalfMatrix runs on the CPU, got an input on {:?}", xs.device());
        }
        let dims = xs.dims();
        if dims.last() != Some(&self.cols) {
            candle_core::bail!(
                "HalfMatrix {}x{}: input shape {dims:?} does not end in {}",
                self.rows,
                self.cols,
                self.cols
            );
        }
        let m = xs.elem_count() / self.cols.max(1);
        let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut out = vec![0.0f32; m * self.rows];
        self.matmul(&x, m, &mut out).map_err(candle_core::Error::wrap)?;
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.rows;
        }
        Tensor::from_vec(out, shape, &Device::Cpu)
    }
}
