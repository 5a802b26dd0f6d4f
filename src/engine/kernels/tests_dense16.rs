//! Tests of the 16-bit products ([`HalfMatrix`]): the AVX2 path against the scalar reference bit for
//! bit, every path against the exact sum within f32's summation bound, batch and thread invariance,
//! conversions, and bad shapes.

use super::{Half, HalfMatrix, Isa, KernelError};
use candle_core::{DType, Device, Module, Tensor};

/// Deterministic values in [-1, 1) (xorshift).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn matrix(kind: Half, rows: usize, cols: usize, seed: u64) -> HalfMatrix {
    let bits = values(rows * cols, seed)
        .into_iter()
        .map(|v| match kind {
            Half::Bf16 => half::bf16::from_f32(v).to_bits(),
            Half::F16 => half::f16::from_f32(v).to_bits(),
        })
        .collect();
    HalfMatrix::new(kind, rows, cols, bits).expect("matrix")
}

fn product(w: &HalfMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; m * w.rows()];
    w.matmul(x, m, &mut out).expect("matmul");
    out
}

const SHAPES: [(usize, usize); 7] = [(1, 1), (3, 7), (5, 8), (9, 31), (4, 33), (17, 100), (40, 901)];

#[test]
fn avx2_matches_the_reference_bit_for_bit() {
    let mut w = matrix(Half::Bf16, 2, 8, 1);
    if !Isa::Avx2.is_available() {
        assert!(w.set_isa(Isa::Avx2).is_err());
        assert_eq!(w.isa(), Isa::Scalar);
        return;
    }
    assert_eq!(w.isa(), Isa::Avx2, "the AVX2 path is the default where the CPU has it");
    for kind in [Half::Bf16, Half::F16] {
        for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
            let m = 1 + i % 3;
            let x = values(m * cols, 100 + i as u64);
            let mut w = matrix(kind, rows, cols, i as u64);
            let fast = product(&w, &x, m);
            w.set_isa(Isa::Scalar).expect("scalar");
            let reference = product(&w, &x, m);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&reference), "{kind:?} {rows}x{cols}, m = {m}");
        }
    }
}

#[test]
fn products_are_within_the_f32_summation_bound_of_the_exact_sum() {
    for kind in [Half::Bf16, Half::F16] {
        for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
            let x = values(2 * cols, 7 + i as u64);
            let w = matrix(kind, rows, cols, 50 + i as u64);
            let out = product(&w, &x, 2);
            let mut row = vec![0f32; cols];
            for r in 0..rows {
                w.row_into(r, &mut row).expect("row");
                for t in 0..2 {
                    let xs = &x[t * cols..(t + 1) * cols];
                    let exact: f64 = xs.iter().zip(&row).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let mass: f64 = xs.iter().zip(&row).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                    // Any order of n f32 additions errs by at most about n * eps of the terms' mass.
                    let bound = cols as f64 * f32::EPSILON as f64 * mass + 1e-12;
                    let got = out[t * rows + r] as f64;
                    assert!((got - exact).abs() <= bound, "{kind:?} {rows}x{cols} row {r}: {got} vs {exact}");
                }
            }
        }
    }
}

#[test]
fn batched_and_threaded_rows_equal_the_row_alone() {
    // Big enough to split over the pool and into several tiles.
    let (rows, cols, m) = (300, 257, 5);
    let w = matrix(Half::Bf16, rows, cols, 3);
    let x = values(m * cols, 4);
    let batched = product(&w, &x, m);
    for i in 0..m {
        let alone = product(&w, &x[i * cols..(i + 1) * cols], 1);
        assert_eq!(alone, batched[i * rows..(i + 1) * rows], "row {i}");
    }
}

#[test]
fn rows_convert_exactly_and_tensors_round_trip() {
    let vals = [1.0f32, -2.5, 0.1, 65504.0, -0.0, 3.0e-5];
    let t = Tensor::new(&vals[..], &Device::Cpu).expect("t").reshape((2, 3)).expect("2x3");
    for (dtype, kind) in [(DType::BF16, Half::Bf16), (DType::F16, Half::F16)] {
        let t16 = t.to_dtype(dtype).expect("16-bit");
        let w = HalfMatrix::from_tensor(&t16).expect("from tensor");
        assert_eq!((w.kind(), w.rows(), w.cols(), w.size_in_bytes()), (kind, 2, 3, 12));
        let want = t16.to_dtype(DType::F32).and_then(|t| t.to_vec2::<f32>()).expect("want");
        let mut row = vec![0f32; 3];
        for (r, want) in want.iter().enumerate() {
            w.row_into(r, &mut row).expect("row");
            assert_eq!(&row, want, "{kind:?} row {r}");
        }
        // The tensor path agrees with candle's own f32 product of the same weights.
        let x = Tensor::new(&[[0.5f32, -1.0, 2.0]], &Device::Cpu).expect("x");
        let ours = w.forward(&x).and_then(|y| y.to_vec2::<f32>()).expect("ours");
        let theirs = x.matmul(&t16.to_dtype(DType::F32).and_then(|w| w.t()).expect("wt")).expect("mm");
        let theirs = theirs.to_vec2::<f32>().expect("theirs");
        let worst = ours[0].iter().zip(&theirs[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{kind:?}: {ours:?} vs {theirs:?}");
    }
}

#[test]
fn bad_shapes_are_reported() {
    assert!(HalfMatrix::new(Half::F16, 2, 3, vec![0; 5]).is_err());
    let f32_tensor = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).expect("t");
    assert!(matches!(HalfMatrix::from_tensor(&f32_tensor), Err(KernelError::UnsupportedType(_))));
    let w = matrix(Half::Bf16, 2, 4, 9);
    let mut out = vec![0f32; 2];
    assert!(w.matmul(&[0.0; 3], 1, &mut out).is_err());
    assert!(w.matmul(&[0.0; 4], 1, &mut [0f32; 3]).is_err());
    assert!(w.row_into(2, &mut [0f32; 4]).is_err());
    assert!(w.row_into(0, &mut [0f32; 3]).is_err());
}
