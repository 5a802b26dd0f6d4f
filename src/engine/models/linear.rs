//! The linear layers every model's products go through. [`QLinear`]: on the CPU, quantized weights
//! of the types [`QMatrix`] supports run on the engine's own kernels, anything else on candle's
//! `QMatMul` ([`MatmulKernels`] can force candle's path for comparison); dense bf16/f16 weights stay
//! 16-bit on the engine's [`HalfMatrix`] products, f32 ones and those on other devices are candle tensors.
//! [`Stacked`]: projections of one input (q|k|v, gate|up) stacked into one product where the weights
//! allow it. Both run on tensors (any device) or on CPU slices (the fused forward).

use super::lora::LowRank;
use crate::engine::kernels::{ops, HalfMatrix, KernelError, QMatrix, QType, RawRows};
use crate::engine::weights::{FileRows, Weight, Weights};
use crate::engine::EngineError;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use std::sync::Arc;

/// Which code runs the products on quantized weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulKernels {
    /// The engine's own kernels where they apply (CPU, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K), candle's
    /// `QMatMul` elsewhere.
    #[default]
    Auto,
    /// candle's `QMatMul` everywhere (for comparisons in tests and benchmarks).
    Candle,
    /// The engine's kernels with activations rounded as llama.cpp rounds them (one scale per 256
    /// values against K-quant weights, f16 scales against the others), for comparisons: the rounding
    /// error is then llama.cpp's. The default rounds per 32 values, which is closer to the unquantized
    /// model.
    LlamaCppActivations,
    /// Every quantized weight widened to f32 at load, and f32 products: the model the file encodes,
    /// computed without rounding activations to int8 (llama.cpp's f32 copy of the file computes the
    /// same). About 6x the memory of a 4-bit file, and slower; the reference both engines' quantized
    /// products are measured against.
    Dequantized,
}

impl MatmulKernels {
    /// Whether the engine's own kernels run the products they can.
    fn ours(self) -> bool {
        !matches!(self, MatmulKernels::Candle | MatmulKernels::Dequantized)
    }

    /// Sets up `m` for this choice.
    fn prepare(self, mut m: QMatrix) -> QMatrix {
        m.set_llama_cpp_activations(self == MatmulKernels::LlamaCppActivations);
        m
    }
}

/// A quantization applied at load to dense 2-D weights (`--quantize`), for the engine's quantized
/// kernels: a bf16 checkpoint then takes about half its memory and decodes faster, at the cost of
/// rounding every weight to 8 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantize {
    /// GGUF's Q8_0: blocks of 32 weights as int8 times one f16 scale, rounded as llama.cpp rounds.
    Q8_0,
}

impl Quantize {
    /// Every quantization, by name.
    pub const ALL: [Quantize; 1] = [Quantize::Q8_0];

    /// The name used on the command line and in model ids.
    pub fn name(self) -> &'static str {
        match self {
            Quantize::Q8_0 => "q8_0",
        }
    }

    /// The quantization called `name` (case-insensitive), if there is one.
    pub fn from_name(name: &str) -> Option<Quantize> {
        Quantize::ALL.into_iter().find(|q| q.name().eq_ignore_ascii_case(name))
    }

    fn ggml(self) -> GgmlDType {
        match self {
            Quantize::Q8_0 => GgmlDType::Q8_0,
        }
    }

    /// `w` quantized, when it is a dense 2-D weight whose rows are whole blocks; unchanged otherwise
    /// (GGUF's quantized tensors, vectors, ragged rows).
    fn apply(self, w: Weight) -> candle_core::Result<Weight> {
        match w {
            Weight::Dense(t) if t.rank() == 2 && t.dim(1)?.is_multiple_of(self.ggml().block_size()) => {
                Ok(Weight::Quantized(Arc::new(QTensor::quantize(&t, self.ggml())?)))
            }
            w => Ok(w),
        }
    }
}

/// A linear layer `y = x W^T (+ b)`: quantized GGUF weights stay quantized; dense weights keep their
/// stored dtype and the activations are cast to it for the matmul.
pub struct QLinear {
    weight: LinearWeight,
    bias: Option<Tensor>,
    /// The bias as floats, for the CPU slice path.
    bias_host: Option<Vec<f32>>,
    /// LoRA side products next to a quantized weight (dense weights have theirs merged).
    lora: Vec<LowRank>,
}

enum LinearWeight {
    /// The engine's CPU kernels (weights repacked at load).
    Fast(QMatrix),
    /// Dense bf16/f16 weights on the CPU, kept 16-bit (converted per tile inside the product).
    Half(HalfMatrix),
    Quantized(QMatMul),
    Dense(Tensor),
}

impl QLinear {
    /// Wraps a loaded weight (`[out, in]`) and an optional f32 bias (`[out]`).
    pub fn new(weight: Weight, bias: Option<Tensor>, kernels: MatmulKernels) -> candle_core::Result<Self> {
        let weight = match weight {
            Weight::Quantized(q) if kernels.ours() && q.device().is_cpu() => {
                match QMatrix::from_qtensor(&q) {
                    Ok(m) => LinearWeight::Fast(kernels.prepare(m)),
                    // Types without our kernels (F16 tables, Q2_K, Q3_K, ...) stay on candle's.
                    Err(KernelError::UnsupportedType(_)) => LinearWeight::Quantized(QMatMul::from_arc(q)?),
                    Err(e) => return Err(candle_core::Error::wrap(e)),
                }
            }
            Weight::Quantized(q) if kernels == MatmulKernels::Dequantized => {
                LinearWeight::Dense(q.dequantize(&q.device())?)
            }
            Weight::Quantized(q) => LinearWeight::Quantized(QMatMul::from_arc(q)?),
            // On CPU, candle's f16/bf16 matmuls round their outputs to 16 bits, and where gemm splits
            // the work depends on the batch shape: a batched row could then differ from the same row
            // alone. Our 16-bit product sums in f32 in one order for every row, and keeps the weights
            // at half the size of widening them (GPUs keep the stored dtype).
            Weight::Dense(t)
                if t.device().is_cpu() && t.rank() == 2 && matches!(t.dtype(), DType::BF16 | DType::F16) =>
            {
                LinearWeight::Half(HalfMatrix::from_tensor(&t).map_err(candle_core::Error::wrap)?)
            }
            Weight::Dense(t) if t.device().is_cpu() => LinearWeight::Dense(t.to_dtype(DType::F32)?),
            Weight::Dense(t) => LinearWeight::Dense(t),
        };
        Self::from_weight(weight, bias)
    }

    fn from_weight(weight: LinearWeight, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let bias_host = match &bias {
            Some(b) if b.device().is_cpu() => Some(b.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?),
            _ => None,
        };
        Ok(QLinear { weight, bias, bias_host, lora: Vec::new() })
    }

    /// Loads `{name}.weight` and, when `with_bias`, `{name}.bias`; on the CPU, weights our kernels read
    /// are repacked straight from the file's rows. Dense weights are quantized first when the weights
    /// ask for it ([`Weights::set_quantize`]).
    pub fn load(w: &mut Weights, name: &str, with_bias: bool, kernels: MatmulKernels) -> Result<Self, EngineError> {
        let bias = if with_bias { Some(w.load_f32(&format!("{name}.bias"))?) } else { None };
        let mut linear = match load_fast(w, &[name.to_string()], kernels)? {
            Some((m, _)) => Self::from_weight(LinearWeight::Fast(m), bias)?,
            None => {
                let weight = w.load(&format!("{name}.weight"))?;
                let weight = match w.quantize() {
                    Some(q) => q.apply(weight).map_err(|e| EngineError::Model {
                        path: w.path().display().to_string(),
                        problem: format!("quantizing tensor `{name}.weight` to {}: {e}", q.name()),
                    })?,
                    None => weight,
                };
                Self::new(weight, bias, kernels)?
            }
        };
        linear.lora = w.lora_side(&[name.to_string()])?;
        Ok(linear)
    }

    /// Whether this layer runs on the engine's own kernels.
    pub fn is_fast(&self) -> bool {
        matches!(self.weight, LinearWeight::Fast(_))
    }

    /// `x`: `[..., in]` f32, contiguous; returns `[..., out]` f32.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            LinearWeight::Fast(m) => m.forward(x)?,
            LinearWeight::Half(h) => h.forward(x)?,
            LinearWeight::Quantized(q) => q.forward(x)?,
            LinearWeight::Dense(w) => {
                let dims = x.dims().to_vec();
                let k = dims[dims.len() - 1];
                let rows = x.elem_count() / k;
                let x2 = x.reshape((rows, k))?.to_dtype(w.dtype())?;
                let y = x2.matmul(&w.t()?)?.to_dtype(DType::F32)?;
                let mut out = dims;
                let last = out.len() - 1;
                out[last] = w.dim(0)?;
                y.reshape(out)?
            }
        };
        let y = self.add_lora(x, y)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// `y` (`[..., out]`) plus the LoRA side products for `x` (`[..., in]`).
    fn add_lora(&self, x: &Tensor, y: Tensor) -> candle_core::Result<Tensor> {
        if self.lora.is_empty() {
            return Ok(y);
        }
        let (k, n) = (x.dim(x.rank() - 1)?, y.dim(y.rank() - 1)?);
        let rows = x.elem_count() / k;
        let (x2, mut y2) = (x.reshape((rows, k))?, y.reshape((rows, n))?);
        for l in &self.lora {
            y2 = l.add(&x2, &y2)?;
        }
        y2.reshape(y.shape())
    }

    /// Output features.
    pub fn rows(&self) -> candle_core::Result<usize> {
        match &self.weight {
            LinearWeight::Fast(m) => Ok(m.rows()),
            LinearWeight::Half(h) => Ok(h.rows()),
            LinearWeight::Quantized(q) => match q {
                QMatMul::QTensor(t) => t.shape().dims2().map(|d| d.0),
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dim(0),
            },
            LinearWeight::Dense(w) => w.dim(0),
        }
    }

    /// `out = x W^T (+ b)` on CPU slices: `x` is `[m, in]`, `out` `[m, out]`. The engine's kernels run
    /// in place; other weights go through candle tensors (correct, not fast).
    pub fn matmul_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> candle_core::Result<()> {
        let in_place = match &self.weight {
            LinearWeight::Fast(w) => w.matmul(x, m, out).map(|_| true),
            LinearWeight::Half(h) => h.matmul(x, m, out).map(|_| true),
            _ => Ok(false),
        };
        match in_place.map_err(candle_core::Error::wrap)? {
            true => {
                for l in &self.lora {
                    l.add_into(x, m, out)?;
                }
                if let Some(b) = &self.bias_host {
                    for row in out.chunks_exact_mut(b.len()) {
                        ops::add_in_place(row, b);
                    }
                }
            }
            false => {
                let k = x.len() / m.max(1);
                let y = self.forward(&Tensor::from_slice(x, (m, k), &Device::Cpu)?)?;
                out.copy_from_slice(&y.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(())
    }

    /// Embedding rows for `ids` into `out` (`[ids.len(), in]`), on the CPU.
    pub fn embedding_into(&self, ids: &[u32], out: &mut [f32]) -> candle_core::Result<()> {
        match &self.weight {
            LinearWeight::Fast(m) => {
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(m.cols())) {
                    m.dequantize_row_into(*id as usize, row).map_err(candle_core::Error::wrap)?;
                }
            }
            LinearWeight::Half(h) => {
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(h.cols())) {
                    h.row_into(*id as usize, row).map_err(candle_core::Error::wrap)?;
                }
            }
            _ => {
                let t = Tensor::from_slice(ids, (1, ids.len()), &Device::Cpu)?;
                out.copy_from_slice(&self.embedding(&t)?.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(())
    }

    /// Embedding rows for `ids` (`[b, t]` u32) as f32 `[b, t, in]`: a quantized or 16-bit table
    /// converts only the requested rows (the table is never expanded to f32).
    pub fn embedding(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            LinearWeight::Fast(m) => {
                let (b, t) = ids.dims2()?;
                let device = ids.device().clone();
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let cols = m.cols();
                let mut rows = vec![0f32; ids.len() * cols];
                for (id, out) in ids.iter().zip(rows.chunks_exact_mut(cols)) {
                    m.dequantize_row_into(*id as usize, out).map_err(candle_core::Error::wrap)?;
                }
                Tensor::from_vec(rows, (b, t, cols), &device)
            }
            LinearWeight::Quantized(q) => q.embedding(ids)?.to_dtype(DType::F32),
            LinearWeight::Half(h) => {
                let (b, t) = ids.dims2()?;
                let mut rows = vec![0f32; b * t * h.cols()];
                self.embedding_into(&ids.flatten_all()?.to_vec1::<u32>()?, &mut rows)?;
                Tensor::from_vec(rows, (b, t, h.cols()), ids.device())
            }
            LinearWeight::Dense(w) => {
                let (b, t) = ids.dims2()?;
                let rows = w.index_select(&ids.flatten_all()?, 0)?.to_dtype(DType::F32)?;
                rows.reshape((b, t, w.dim(1)?))
            }
        }
    }
}

/// Projections of one input whose outputs are used side by side (q|k|v, gate|up). On the CPU with the
/// engine's kernels their weights are stacked into one matrix at load, so one product (one pass of
/// threads) serves all of them; the outputs are bit for bit those of the separate products, since each
/// output row only ever sees its own weights and the shared quantized input.
pub struct Stacked {
    parts: Vec<QLinear>,
    /// Output features of each projection.
    widths: Vec<usize>,
}

impl Stacked {
    /// Loads `{name}.weight` (and `{name}.bias` when `with_bias`) for each name.
    pub fn load(
        w: &mut Weights,
        names: &[String],
        with_bias: bool,
        kernels: MatmulKernels,
    ) -> Result<Self, EngineError> {
        if let Some((m, widths)) = load_fast(w, names, kernels)? {
            let bias = match with_bias {
                true => {
                    let b = names.iter().map(|n| w.load_f32(&format!("{n}.bias"))).collect::<Result<Vec<_>, _>>()?;
                    Some(Tensor::cat(&b, 0)?)
                }
                false => None,
            };
            let mut linear = QLinear::from_weight(LinearWeight::Fast(m), bias)?;
            linear.lora = w.lora_side(names)?;
            return Ok(Stacked { parts: vec![linear], widths });
        }
        let mut parts = Vec::with_capacity(names.len());
        let mut widths = Vec::with_capacity(names.len());
        for name in names {
            let l = QLinear::load(w, name, with_bias, kernels)?;
            widths.push(l.rows()?);
            parts.push(l);
        }
        Ok(Stacked { parts, widths })
    }

    /// One stored tensor `{name}.weight` that already holds the projections stacked (phi3's `qkv_proj`
    /// and `gate_up_proj`), `widths` rows each.
    pub fn fused(
        w: &mut Weights,
        name: &str,
        widths: &[usize],
        with_bias: bool,
        kernels: MatmulKernels,
    ) -> Result<Self, EngineError> {
        let linear = QLinear::load(w, name, with_bias, kernels)?;
        let rows = linear.rows()?;
        if rows != widths.iter().sum::<usize>() || widths.contains(&0) {
            return Err(EngineError::Model {
                path: w.path().display().to_string(),
                problem: format!("tensor `{name}.weight` has {rows} rows, expected {widths:?} stacked"),
            });
        }
        Ok(Stacked { parts: vec![linear], widths: widths.to_vec() })
    }

    /// Output features of all projections together.
    pub fn width(&self) -> usize {
        self.widths.iter().sum()
    }

    /// How many of the projections run on the engine's kernels, out of how many.
    pub fn fast_count(&self) -> (usize, usize) {
        let fast = match self.parts.as_slice() {
            [one] if self.widths.len() > 1 => one.is_fast() as usize * self.widths.len(),
            parts => parts.iter().filter(|p| p.is_fast()).count(),
        };
        (fast, self.widths.len())
    }

    /// The outputs of every projection for `x` (`[..., in]`).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        if let [one] = self.parts.as_slice() {
            let y = one.forward(x)?;
            let last = y.rank() - 1;
            let mut at = 0;
            let mut out = Vec::with_capacity(self.widths.len());
            for w in &self.widths {
                out.push(y.narrow(last, at, *w)?.contiguous()?);
                at += w;
            }
            return Ok(out);
        }
        self.parts.iter().map(|p| p.forward(x)).collect()
    }

    /// All outputs side by side on CPU slices: `x` `[m, in]`, `out` `[m, width]`.
    pub fn matmul_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> candle_core::Result<()> {
        if let [one] = self.parts.as_slice() {
            return one.matmul_into(x, m, out);
        }
        let total = self.width();
        let mut at = 0;
        for (p, w) in self.parts.iter().zip(&self.widths) {
            let mut y = vec![0.0; m * w];
            p.matmul_into(x, m, &mut y)?;
            for (dst, src) in out.chunks_exact_mut(total).zip(y.chunks_exact(*w)) {
                dst[at..at + w].copy_from_slice(src);
            }
            at += w;
        }
        Ok(())
    }
}

/// One repacked matrix of the rows of `{name}.weight` for every name, stacked in order, read straight
/// from a GGUF file's rows when all are CPU-quantized in one type our kernels read, with one input
/// width; `None` otherwise (the caller then loads them through candle).
fn load_fast(
    w: &mut Weights,
    names: &[String],
    kernels: MatmulKernels,
) -> Result<Option<(QMatrix, Vec<usize>)>, EngineError> {
    if !kernels.ours() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(names.len());
    for n in names {
        let Some(t) = w.raw_tensor(&format!("{n}.weight")) else { return Ok(None) };
        parts.push(t);
    }
    let Some(first) = parts.first().cloned() else { return Ok(None) };
    let Some(qtype) = QType::from_ggml(first.dtype) else { return Ok(None) };
    if parts.iter().any(|t| t.dtype != first.dtype || t.cols != first.cols) {
        return Ok(None);
    }
    let widths: Vec<usize> = parts.iter().map(|t| t.rows).collect();
    let path = w.path().display().to_string();
    let parts = parts.iter().map(|t| w.rows(t)).collect::<Result<Vec<_>, _>>()?;
    let read = StackedRows { parts };
    let m = QMatrix::from_gguf_rows(qtype, widths.iter().sum(), first.cols, &read)
        .map_err(|e| EngineError::Model { path, problem: format!("tensor `{}.weight`: {e}", names[0]) })?;
    Ok(Some((kernels.prepare(m), widths)))
}

/// The rows of several tensors of one type and width, one after the other.
struct StackedRows<'a> {
    parts: Vec<FileRows<'a>>,
}

impl StackedRows<'_> {
    /// The part holding stacked row `r`, and the row's index in it.
    fn find(&self, mut r: usize) -> (&FileRows<'_>, usize) {
        for p in &self.parts[..self.parts.len() - 1] {
            if r < p.rows() {
                return (p, r);
            }
            r -= p.rows();
        }
        (&self.parts[self.parts.len() - 1], r)
    }
}

impl RawRows for StackedRows<'_> {
    fn row(&self, r: usize) -> &[u8] {
        let (p, r) = self.find(r);
        p.row(r)
    }

    fn done(&self, r0: usize, r1: usize) {
        let mut base = 0;
        for p in &self.parts {
            let (a, b) = (r0.max(base), r1.min(base + p.rows()));
            if a < b {
                p.done(a - base, b - base);
            }
            base += p.rows();
        }
    }
}
