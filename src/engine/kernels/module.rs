//! [`QMatrix`] as a candle [`Module`], so a model can swap it in where it used `QMatMul`: the input is
//! `[..., cols]` on the CPU, the output `[..., rows]` in the input's dtype.

use candle_core::{DType, Device, Module, Tensor};

use super::QMatrix;

impl Module for QMatrix {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if !matches!(xs.device(), Device::Cpu) {
            candle_core::bail!("QMatrix runs on the CPU, got an input on {:?}", xs.device());
        }
        let dims = xs.dims();
        if dims.last() != Some(&self.cols()) {
            candle_core::bail!(
                "QMatrix {}x{}: input shape {:?} does not end in {}",
                self.rows(),
                self.cols(),
                dims,
                self.cols()
            );
        }
        let m = xs.elem_count() / self.cols();
        let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut out = vec![0.0f32; m * self.rows()];
        self.matmul(&x, m, &mut out).map_err(candle_core::Error::wrap)?;
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.rows();
        }
        Tensor::from_vec(out, shape, &Device::Cpu)?.to_dtype(xs.dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kernels::QType;

    #[test]
    fn forward_keeps_leading_dims_and_matches_matmul() {
        // Q8_0 rows: scale 1.0 (f16 0x3C00), values 0, 1, 2, ... so row r dots x as sum (i + r) x_i.
        let (rows, cols) = (3, 32);
        let mut bytes = Vec::new();
        for r in 0..rows {
            bytes.extend_from_slice(&0x3C00u16.to_le_bytes());
            bytes.extend((0..cols).map(|i| (i + r) as u8));
        }
        let mat = QMatrix::from_gguf_bytes(QType::Q8_0, rows, cols, &bytes).expect("build");
        let x: Vec<f32> = (0..2 * 2 * cols).map(|i| [-127.0, -3.0, 0.0, 5.0, 127.0][i % 5]).collect();
        let xt = Tensor::from_vec(x.clone(), (2, 2, cols), &Device::Cpu).expect("x");
        let y = mat.forward(&xt).expect("forward");
        assert_eq!(y.dims(), &[2, 2, rows]);
        let mut want = vec![0.0; 4 * rows];
        mat.matmul(&x, 4, &mut want).expect("matmul");
        assert_eq!(y.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("y"), want);
        // Every block holds ±127, so its step is exactly 1: integer inputs quantize without error.
        let exact: f32 = (0..cols).map(|i| i as f32 * x[i]).sum();
        assert_eq!(want[0], exact);
        let bad = Tensor::zeros((1, 31), DType::F32, &Device::Cpu).expect("bad");
        assert!(mat.forward(&bad).is_err());
    }
}
