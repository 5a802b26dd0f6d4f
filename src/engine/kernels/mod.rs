//! Fast CPU matrix products on GGUF quantized weights (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
//! Q6_K), for the engine's decode and prefill.
//!
//! A [`QMatrix`] is built once at load from a tensor's raw GGUF bytes: it decodes every block into
//! one unified form (see `format`) and repacks rows 8 at a time into an interleaved layout no larger
//! than the file's blocks (see `packed`). [`QMatrix::matmul`] quantizes the activations to int8 blocks as llama.cpp does, then
//! runs integer dot products with the best kernel this CPU offers, chosen at run time ([`Isa`]):
//! on x86-64 AVX-512 VNNI (`x86_512`, and `x86` on 256-bit registers) or AVX2 (`x86`), on aarch64
//! NEON with the dot-product extension or plain NEON (`neon`), elsewhere the portable scalar
//! reference (`scalar`), which every fast path matches bit for bit. The property tests (`tests`)
//! compare every family the CPU offers with the reference; the aarch64 ones run under qemu on an
//! x86-64 machine with `scripts/check-aarch64-kernels.sh` (emulating CPUs with and without `dotprod`).
//! Work is split across the current rayon pool by groups of output rows, so the caller sets the
//! thread count by running inside its own `rayon::ThreadPool::install`; calling from a thread of that
//! pool (the whole forward pass inside `install`) also spares each product the hand-off to the pool. `QMatrix` also implements
//! candle's `Module` (input `[..., cols]`, output `[..., rows]`), a drop-in for `QMatMul`.
//!
//! The rest of a decoder layer on the CPU lives here too, for the engine's fused forward: [`ops`]
//! (RMS norm, RoPE, SiLU * up, residual adds, a vectorizable `exp`) and [`attention`] (grouped-query
//! attention of new columns over the f16 KV cache, in place).
//!
//! Dense bf16/f16 weights stay 16-bit too: [`HalfMatrix`] (in `dense16`) converts them per tile of
//! rows inside its f32 product.

mod activation;
pub mod attention;
mod dense16;
mod format;
mod module;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod ops;
mod packed;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dense16;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_512;

use rayon::prelude::*;

pub use activation::error_bound;
pub use dense16::{dot_ref, Half, HalfMatrix};
pub use format::QType;

use activation::{LlamaActs, QActs, Rounding};
use format::QK;
use packed::{OutPtr, Packed, G};

/// Errors building or applying a [`QMatrix`].
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The tensor's type has no kernel here.
    #[error("tensor type {0} is not supported by the quantized kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K are)")]
    UnsupportedType(String),
    /// Columns are not a whole number of the type's blocks.
    #[error("{qtype}: {cols} columns is not a multiple of the block length {block}")]
    RaggedColumns { qtype: &'static str, cols: usize, block: usize },
    /// The byte buffer does not hold `rows x cols` weights of the type.
    #[error("{qtype} {rows}x{cols}: expected {expected} bytes of blocks, got {got}")]
    ByteLength { qtype: &'static str, rows: usize, cols: usize, expected: usize, got: usize },
    /// An input or output slice does not match the matrix.
    #[error("{what}: expected {expected} floats, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
    /// A row index past the end.
    #[error("row {row} out of range for a matrix of {rows} rows")]
    Row { row: usize, rows: usize },
    /// The requested instruction set is not available on this CPU.
    #[error("instruction set {0:?} is not available on this CPU")]
    IsaUnavailable(Isa),
    /// A raw row of the tensor does not have the type's row length.
    #[error("{qtype}: row {row} has {got} bytes, expected {expected}")]
    RowLength { qtype: &'static str, row: usize, expected: usize, got: usize },
    /// Memory for the repacked weights could not be mapped.
    #[error("cannot map {bytes} bytes for repacked weights: {cause}")]
    Map { bytes: usize, cause: std::io::Error },
    /// Reading a candle tensor failed.
    #[error("reading the quantized tensor: {0}")]
    Candle(candle_core::Error),
}

// The cause is in the message, so it is not also a `source()`: anyhow's `{:#}` would print it twice.
impl From<candle_core::Error> for KernelError {
    fn from(e: candle_core::Error) -> Self {
        KernelError::Candle(e)
    }
}

/// The raw GGUF rows of a matrix to repack ([`QMatrix::from_gguf_rows`]), read from several threads.
pub trait RawRows: Sync {
    /// Row `r`: its file blocks, `cols / block_len * block_bytes` bytes.
    fn row(&self, r: usize) -> &[u8];
    /// Rows `r0..r1` are repacked and will not be read again (repacking may say so twice): a
    /// memory-mapped source can let go of their pages, so that loading does not hold the file's
    /// bytes besides the repacked ones.
    fn done(&self, _r0: usize, _r1: usize) {}
}

/// Rows of a byte slice holding a whole tensor.
struct BytesRows<'a> {
    bytes: &'a [u8],
    row_bytes: usize,
}

impl RawRows for BytesRows<'_> {
    fn row(&self, r: usize) -> &[u8] {
        &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes]
    }
}

/// The kernel families, fastest last within each architecture (a CPU offers only its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Portable reference code.
    Scalar,
    /// x86-64: AVX2 + F16C.
    Avx2,
    /// x86-64: AVX-512 (F, BW, VL) VNNI dot products on 256-bit registers.
    Vnni256,
    /// x86-64: AVX-512 (F, BW, VL) VNNI dot products on 512-bit registers (16 rows per register).
    Avx512Vnni,
    /// aarch64: NEON (Advanced SIMD) widening multiplies.
    Neon,
    /// aarch64: NEON with the Armv8.2 dot-product extension (`sdot`).
    Dotprod,
}

impl Isa {
    /// Whether this CPU can run the kernel family.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c"),
            #[cfg(target_arch = "x86_64")]
            Isa::Vnni256 | Isa::Avx512Vnni => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Vnni256 | Isa::Avx512Vnni => false,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::Dotprod => Isa::Neon.is_available() && std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(not(target_arch = "aarch64"))]
            Isa::Neon | Isa::Dotprod => false,
        }
    }

    /// Every family this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Vnni256, Isa::Avx512Vnni, Isa::Neon, Isa::Dotprod]
            .into_iter()
            .filter(|i| i.is_available())
            .collect()
    }

    /// The fastest family this CPU can run.
    pub fn best() -> Isa {
        Isa::available().into_iter().max().unwrap_or(Isa::Scalar)
    }
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QMatrix({} {}x{}, {:?})", self.qtype.name(), self.rows(), self.cols(), self.isa)
    }
}

/// A quantized weight matrix of `rows x cols` (output features x input features, GGUF order),
/// repacked for the kernels.
pub struct QMatrix {
    qtype: QType,
    isa: Isa,
    packed: Packed,
    /// How the activations are rounded before each product.
    rounding: Rounding,
}

/// Work below this many (row group x block x activation row) units runs on one thread: splitting a
/// few microseconds of work costs more in wake-ups than it saves.
const MIN_UNITS_PER_TASK: usize = 1024;
/// Tasks per pool thread. Fine tasks keep both cores streaming to the end of each product on a shared
/// VM, where a thread loses its core for a while: single-stream decode of the 1.5B Q4_K model ran
/// ~8% faster with 16 than with 4 (alternating runs, 2 threads), and no better with 32 or 64.
const TASKS_PER_THREAD: usize = 16;
/// Row groups per cache tile during prefill: about 256 KiB of weights, reused by every activation row.
const TILE_BYTES: usize = 256 * 1024;

impl QMatrix {
    /// Builds the matrix from the raw GGUF bytes of a `rows x cols` tensor (`cols` is the
    /// contiguous, input dimension).
    pub fn from_gguf_bytes(qtype: QType, rows: usize, cols: usize, bytes: &[u8]) -> Result<QMatrix, KernelError> {
        let block = qtype.block_len();
        if !cols.is_multiple_of(block) {
            return Err(KernelError::RaggedColumns { qtype: qtype.name(), cols, block });
        }
        let expected = rows * (cols / block) * qtype.block_bytes();
        if bytes.len() != expected {
            return Err(KernelError::ByteLength { qtype: qtype.name(), rows, cols, expected, got: bytes.len() });
        }
        QMatrix::from_gguf_rows(qtype, rows, cols, &BytesRows { bytes, row_bytes: expected / rows.max(1) })
    }

    /// Builds the matrix from raw GGUF rows (e.g. of a memory-mapped model file, or of several
    /// tensors stacked): loading then never holds a copy of a tensor's file bytes besides the
    /// repacked matrix.
    pub fn from_gguf_rows(qtype: QType, rows: usize, cols: usize, src: &dyn RawRows) -> Result<QMatrix, KernelError> {
        let block = qtype.block_len();
        if !cols.is_multiple_of(block) {
            return Err(KernelError::RaggedColumns { qtype: qtype.name(), cols, block });
        }
        Ok(QMatrix {
            qtype,
            isa: Isa::best(),
            packed: Packed::build(qtype, rows, cols, src)?,
            rounding: Rounding::Blocks32,
        })
    }

    /// Builds the matrix from a 2-D candle quantized tensor (shape `[rows, cols]`).
    pub fn from_qtensor(t: &candle_core::quantized::QTensor) -> Result<QMatrix, KernelError> {
        let qtype =
            QType::from_ggml(t.dtype()).ok_or_else(|| KernelError::UnsupportedType(format!("{:?}", t.dtype())))?;
        let (rows, cols) = t.shape().dims2()?;
        QMatrix::from_gguf_bytes(qtype, rows, cols, &t.data()?)
    }

    /// Forces a kernel family (e.g. [`Isa::Scalar`] for comparison); fails if the CPU lacks it.
    pub fn set_isa(&mut self, isa: Isa) -> Result<(), KernelError> {
        if !isa.is_available() {
            return Err(KernelError::IsaUnavailable(isa));
        }
        self.isa = isa;
        Ok(())
    }

    /// Rounds the activations as llama.cpp does against this matrix's type (`q8_K` for K-quants:
    /// one scale per 256 values; `q8_0`/`q8_1` otherwise: f16 scales) instead of one f32 scale per 32
    /// values, so that the rounding error is llama.cpp's; the default is closer to the unquantized
    /// model.
    pub fn set_llama_cpp_activations(&mut self, on: bool) {
        let format = if self.qtype.is_k() { LlamaActs::Q8K } else { LlamaActs::Q8 };
        self.rounding = if on { Rounding::LlamaCpp(format) } else { Rounding::Blocks32 };
    }

    /// The kernel family in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The GGUF type the matrix was built from.
    pub fn qtype(&self) -> QType {
        self.qtype
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.packed.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.packed.cols
    }

    /// Bytes held by the repacked weights and scales.
    pub fn size_in_bytes(&self) -> usize {
        self.packed.size_in_bytes()
    }

    /// `out[i, r] = sum_c x[i, c] * W[r, c]` for `m` activation rows: `x` is `[m, cols]` and `out`
    /// is `[m, rows]`, both row-major. Runs on the current rayon pool.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<(), KernelError> {
        let p = &self.packed;
        if x.len() != m * p.cols {
            return Err(KernelError::Shape { what: "matmul input", expected: m * p.cols, got: x.len() });
        }
        if out.len() != m * p.rows {
            return Err(KernelError::Shape { what: "matmul output", expected: m * p.rows, got: out.len() });
        }
        if m == 0 || p.rows == 0 {
            return Ok(());
        }
        let acts = QActs::quantize_as(x, m, p.cols, self.rounding);
        let units = p.groups * p.blocks * m;
        // Several tasks per thread: on a shared machine a descheduled worker's share is then picked
        // up by the others instead of stalling the whole product.
        let threads = rayon::current_num_threads();
        let tasks = if threads == 1 { 1 } else { TASKS_PER_THREAD * threads };
        let tasks = tasks.min(units / MIN_UNITS_PER_TASK).clamp(1, p.groups / 2);
        let dst = OutPtr { ptr: out.as_mut_ptr(), rows: p.rows };
        let run = |t: usize| {
            // Split at even groups so that the 512-bit kernel gets whole pairs.
            let pairs = p.groups / 2;
            let (g0, g1) = (2 * (pairs * t / tasks), 2 * (pairs * (t + 1) / tasks));
            // SAFETY: task t writes only its own groups g0..g1, and `out` holds m rows of p.rows.
            unsafe { self.run_groups(&acts, m, g0, g1, dst) }
        };
        if tasks == 1 {
            run(0);
        } else {
            (0..tasks).into_par_iter().for_each(run);
        }
        Ok(())
    }

    /// Runs groups `g0..g1` for all `m` activation rows, tiled so that prefill reuses cached weights.
    unsafe fn run_groups(&self, a: &QActs, m: usize, g0: usize, g1: usize, out: OutPtr) {
        let p = &self.packed;
        let per_group = (p.nrec() * p.rec()).max(1);
        // Whole pairs of groups, which the kernels read as one stream.
        let tile = ((TILE_BYTES / per_group) & !1).max(2);
        let mut t0 = g0;
        while t0 < g1 {
            let t1 = (t0 + tile).min(g1);
            let mut i0 = 0;
            while i0 < m {
                let mt = (m - i0).min(self.max_tile_rows());
                self.run_tile(a, i0, mt, t0, t1, out);
                i0 += mt;
            }
            t0 = t1;
        }
    }

    /// Activation rows per kernel call. The 512-bit kernel has the registers for 8 rows, so it
    /// unpacks each weight block once per 8 rows instead of per 4: unpacking, not `vpdpbusd`, was
    /// what filled the vector ports at 4. Single products of the 1.5B model's blk.0 matrices at
    /// m = 256, 2 threads, alternating runs: Q4_K `ffn_up` ~20 -> ~16 ms, Q6_K `ffn_down` ~27 -> ~21
    /// ms. 12 rows were no faster on Q4_K and slower on Q6_K (its two sums per row spill).
    fn max_tile_rows(&self) -> usize {
        match self.isa {
            Isa::Avx512Vnni => 8,
            _ => 4,
        }
    }

    unsafe fn run_tile(&self, a: &QActs, i0: usize, mt: usize, g0: usize, g1: usize, out: OutPtr) {
        let p = &self.packed;
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                #[cfg(test)]
                tests::record_tile(self.isa);
                match mt {
                    1 => x86_512::vnni512::<1>(p, a, i0, g0, g1, out),
                    2 => x86_512::vnni512::<2>(p, a, i0, g0, g1, out),
                    3 => x86_512::vnni512::<3>(p, a, i0, g0, g1, out),
                    4 => x86_512::vnni512::<4>(p, a, i0, g0, g1, out),
                    5 => x86_512::vnni512::<5>(p, a, i0, g0, g1, out),
                    6 => x86_512::vnni512::<6>(p, a, i0, g0, g1, out),
                    7 => x86_512::vnni512::<7>(p, a, i0, g0, g1, out),
                    _ => x86_512::vnni512::<8>(p, a, i0, g0, g1, out),
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Vnni256 => {
                #[cfg(test)]
                tests::record_tile(self.isa);
                macro_rules! go {
                    ($mt:literal) => {
                        match self.isa {
                            Isa::Vnni256 => x86::vnni::<$mt>(p, a, i0, g0, g1, out),
                            _ => x86::avx2::<$mt>(p, a, i0, g0, g1, out),
                        }
                    };
                }
                match mt {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    _ => go!(4),
                }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::Dotprod => {
                #[cfg(test)]
                tests::record_tile(self.isa);
                macro_rules! go {
                    ($mt:literal) => {
                        match self.isa {
                            Isa::Dotprod => neon::dotprod::<$mt>(p, a, i0, g0, g1, out),
                            _ => neon::neon::<$mt>(p, a, i0, g0, g1, out),
                        }
                    };
                }
                match mt {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    _ => go!(4),
                }
            }
            _ => {
                #[cfg(test)]
                tests::record_tile(Isa::Scalar);
                scalar::run(p, a, i0, i0 + mt, g0, g1, out)
            }
        }
    }

    /// Row `r` as floats, exactly as the format dequantizes it (for embedding lookups).
    pub fn dequantize_row(&self, r: usize) -> Result<Vec<f32>, KernelError> {
        let mut out = vec![0.0; self.packed.cols];
        self.dequantize_row_into(r, &mut out)?;
        Ok(out)
    }

    /// Row `r` into `out` (`cols` floats).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) -> Result<(), KernelError> {
        let p = &self.packed;
        if r >= p.rows {
            return Err(KernelError::Row { row: r, rows: p.rows });
        }
        if out.len() != p.cols {
            return Err(KernelError::Shape { what: "dequantized row", expected: p.cols, got: out.len() });
        }
        let (g, j) = (r / G, r % G);
        for (b, ob) in out.chunks_exact_mut(QK).enumerate() {
            let (vo, so, s) = p.locate(g, b);
            let sc = p.block_scales(so, s);
            let d = [sc.d0[j], if p.halves { sc.d1[j] } else { sc.d0[j] }];
            for (i, o) in ob.iter_mut().enumerate() {
                let v = d[i / 16] * p.value(vo, j, i) as f32;
                // As candle's `to_float`: `d * q + m`, and `d * q - dmin * min` for the K-quants.
                *o = match (p.has_min, p.sup) {
                    (false, _) => v,
                    (true, false) => v + sc.m[j],
                    (true, true) => v - sc.m[j],
                };
            }
        }
        Ok(())
    }
}
