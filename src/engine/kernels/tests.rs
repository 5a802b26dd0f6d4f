//! Property tests: random blocks (extreme scales included) and random shapes (rows not a multiple of
//! the 8-row interleave, m = 1..9) comparing every available fast path (x86-64 or aarch64) with the
//! scalar reference bit for bit, counting the tiles each family's own kernel ran so that no product
//! silently falls back to another one; the check that the best family is the one selected; the scalar
//! reference with an f64 product of the dequantized weights within the activation-quantization
//! bound; dequantized rows with candle's own dequantization; and the products with candle's `QMatMul`.

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

use super::*;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

const TYPES: [QType; 8] =
    [QType::Q4_0, QType::Q4_1, QType::Q5_0, QType::Q5_1, QType::Q8_0, QType::Q4K, QType::Q5K, QType::Q6K];

fn ggml(q: QType) -> GgmlDType {
    match q {
        QType::Q4_0 => GgmlDType::Q4_0,
        QType::Q4_1 => GgmlDType::Q4_1,
        QType::Q5_0 => GgmlDType::Q5_0,
        QType::Q5_1 => GgmlDType::Q5_1,
        QType::Q8_0 => GgmlDType::Q8_0,
        QType::Q4K => GgmlDType::Q4K,
        QType::Q5K => GgmlDType::Q5K,
        QType::Q6K => GgmlDType::Q6K,
    }
}

/// A random f16 scale: ordinary magnitudes, and with `extreme` also zero, subnormals and large ones.
fn scale(rng: &mut Rng, extreme: bool) -> [u8; 2] {
    let v = match (extreme, rng.below(6)) {
        (true, 0) => f16::from_bits(rng.below(0x400) as u16), // subnormal or zero
        (true, 1) => f16::from_f32(rng.unit() * 2000.0),      // large
        (true, 2) => f16::from_f32(0.0),
        _ => f16::from_f32(rng.unit() * 2f32.powi(-(rng.below(12) as i32))),
    };
    v.to_bits().to_le_bytes()
}

/// Random GGUF bytes for `rows x cols` weights: random values, scales from [`scale`].
fn random_bytes(q: QType, rows: usize, cols: usize, rng: &mut Rng, extreme: bool) -> Vec<u8> {
    let nb = rows * cols / q.block_len();
    let mut bytes: Vec<u8> = (0..nb * q.block_bytes()).map(|_| rng.next() as u8).collect();
    let fields: &[usize] = match q {
        QType::Q4_0 | QType::Q5_0 | QType::Q8_0 => &[0],
        QType::Q4_1 | QType::Q5_1 | QType::Q4K | QType::Q5K => &[0, 2],
        QType::Q6K => &[208],
    };
    for b in bytes.chunks_exact_mut(q.block_bytes()) {
        for &at in fields {
            b[at..at + 2].copy_from_slice(&scale(rng, extreme));
        }
    }
    bytes
}

fn qtensor(q: QType, rows: usize, cols: usize, bytes: &[u8]) -> QTensor {
    let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, ggml(q)).expect("storage");
    QTensor::new(storage, (rows, cols)).expect("qtensor")
}

fn run(mat: &QMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; m * mat.rows()];
    mat.matmul(x, m, &mut out).expect("matmul");
    out
}

/// The sum of the magnitudes of every per-block term the kernels add (`|d q| <= |w| + |m|`, plus the
/// minimum term `|m| sum|x|`): f32 rounding is bounded relative to it.
fn terms(mat: &QMatrix, r: usize, w: &[f32], x: &[f32]) -> f64 {
    let p = &mat.packed;
    let mut terms = 0.0f64;
    for (b, (wb, xb)) in w.chunks(QK).zip(x.chunks(QK)).enumerate() {
        let (_, so, s) = p.locate(r / G, b);
        let m = p.block_scales(so, s).m[r % G].abs() as f64;
        let dx = xb.iter().fold(0.0f64, |a, v| a.max(v.abs() as f64)) / 127.0;
        terms += wb.iter().zip(xb).map(|(w, x)| (w.abs() as f64 + 2.0 * m) * (x.abs() as f64 + dx)).sum::<f64>();
    }
    terms
}

fn shapes(rng: &mut Rng, q: QType) -> Vec<(usize, usize)> {
    // 19 blocks: an odd number per row, as in Qwen2.5-Coder-0.5B's 4864-column Q4_K `ffn_down`.
    let mut v = vec![(1, q.block_len()), (8, 2 * q.block_len()), (9, q.block_len()), (16, 19 * q.block_len())];
    for _ in 0..4 {
        v.push((1 + rng.below(40) as usize, q.block_len() * (1 + rng.below(3) as usize)));
    }
    v
}

thread_local! {
    /// Tiles run by each kernel family on this thread, indexed by `Isa as usize`.
    static TILES: std::cell::Cell<[usize; 6]> = const { std::cell::Cell::new([0; 6]) };
}

/// Called by `QMatrix::run_tile` from the match arm that ran (test builds only), so tests can check
/// which kernel family a product really used.
pub(super) fn record_tile(isa: Isa) {
    TILES.with(|c| {
        let mut v = c.get();
        v[isa as usize] += 1;
        c.set(v);
    });
}

/// `run`, checking that every tile went to `isa`'s own kernel (none fell back to another arm).
fn run_checked(mat: &QMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let before = TILES.with(|c| c.get());
    let out = run(mat, x, m);
    let after = TILES.with(|c| c.get());
    let ran: Vec<(usize, usize)> = (0..6).map(|i| (i, after[i] - before[i])).filter(|(_, n)| *n > 0).collect();
    assert!(
        ran.len() == 1 && ran[0].0 == mat.isa() as usize,
        "{:?} requested, tiles per family index: {ran:?}",
        mat.isa()
    );
    out
}

#[test]
fn fast_paths_match_the_scalar_reference_bit_for_bit() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let fast: Vec<Isa> = Isa::available().into_iter().filter(|i| *i != Isa::Scalar).collect();
    // One thread, and the tile counters are thread-local: every tile of these products is counted here.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    pool.install(|| {
        for q in TYPES {
            let mut products = 0;
            for (k, (rows, cols)) in shapes(&mut rng, q).into_iter().enumerate() {
                let bytes = random_bytes(q, rows, cols, &mut rng, k % 2 == 1);
                let mut mat = QMatrix::from_gguf_bytes(q, rows, cols, &bytes).expect("build");
                // Up to two whole 8-row tiles of the 512-bit kernel and a leftover row.
                for m in (1..=10).chain([16, 17]) {
                    let x: Vec<f32> = (0..m * cols).map(|_| rng.unit() * 3.0).collect();
                    mat.set_isa(Isa::Scalar).expect("scalar");
                    let want = run_checked(&mat, &x, m);
                    for &isa in &fast {
                        mat.set_isa(isa).expect("isa");
                        let got = run_checked(&mat, &x, m);
                        let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{isa:?} {} {rows}x{cols} m={m}: {got:?} != {want:?}", q.name());
                        products += 1;
                    }
                }
            }
            eprintln!("kernels: {} {fast:?} equal Scalar bit for bit in {products} products", q.name());
        }
        let tiles = TILES.with(|c| c.get());
        let tiles: Vec<(Isa, usize)> = ALL_ISAS.into_iter().zip(tiles).filter(|(_, n)| *n > 0).collect();
        eprintln!("kernels: tiles run by each family's own kernel {tiles:?}");
    });
}

const ALL_ISAS: [Isa; 6] = [Isa::Scalar, Isa::Avx2, Isa::Vnni256, Isa::Avx512Vnni, Isa::Neon, Isa::Dotprod];

/// The fastest family this CPU offers is the one a new matrix picks: AVX-512 VNNI or AVX2 on x86-64
/// CPUs that have them, the dot-product kernel or plain NEON on aarch64.
#[test]
fn the_best_kernel_of_this_cpu_is_selected() {
    let want = {
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx512Vnni.is_available() {
                Isa::Avx512Vnni
            } else if Isa::Avx2.is_available() {
                Isa::Avx2
            } else {
                Isa::Scalar
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            // NEON is mandatory on aarch64 Linux; the dot-product extension came with Armv8.2.
            assert!(std::arch::is_aarch64_feature_detected!("neon"), "aarch64 without NEON");
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                Isa::Dotprod
            } else {
                Isa::Neon
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Isa::Scalar
        }
    };
    let mat = QMatrix::from_gguf_bytes(QType::Q8_0, 1, 32, &[0; 34]).expect("build");
    assert_eq!((Isa::best(), mat.isa()), (want, want));
    for isa in ALL_ISAS {
        assert_eq!(Isa::available().contains(&isa), isa.is_available(), "{isa:?}");
    }
    eprintln!("kernels: available {:?}, selected {:?}", Isa::available(), mat.isa());
}

#[test]
fn products_stay_within_the_activation_quantization_bound_and_agree_with_candle() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    // candle 0.11.1's aarch64 quantized dot products run `sdot` without checking for the dot-product
    // extension, so on an Armv8.0 CPU (Cortex-A72, qemu's `-cpu cortex-a72`) its `QMatMul` dies of
    // SIGILL: there only the bound against the exact product is checked.
    #[cfg(target_arch = "aarch64")]
    let candle_runs = std::arch::is_aarch64_feature_detected!("dotprod");
    #[cfg(not(target_arch = "aarch64"))]
    let candle_runs = true;
    if !candle_runs {
        eprintln!("kernels: no dot-product extension, so candle's QMatMul (which needs it) is not compared");
    }
    for q in TYPES {
        for (k, (rows, cols)) in shapes(&mut rng, q).into_iter().enumerate() {
            // candle's Q4_0/Q4_1/Q5_x/Q8_0 dot products require an even number of blocks per row
            // (its K-quant ones do not, and an odd number of super-blocks must be covered).
            let cols = if !q.is_k() && cols % (2 * q.block_len()) != 0 { cols + q.block_len() } else { cols };
            let bytes = random_bytes(q, rows, cols, &mut rng, k % 2 == 0);
            let mut mat = QMatrix::from_gguf_bytes(q, rows, cols, &bytes).expect("build");
            mat.set_isa(Isa::Scalar).expect("scalar");
            let qt = qtensor(q, rows, cols, &bytes);
            let w: Vec<f32> = qt.dequantize(&Device::Cpu).and_then(|t| t.flatten_all()?.to_vec1()).expect("dequantize");
            for r in 0..rows {
                let ours = mat.dequantize_row(r).expect("row");
                let same = ours.iter().zip(&w[r * cols..(r + 1) * cols]).all(|(a, b)| a == b);
                assert!(same, "{} row {r} dequantizes differently from candle", q.name());
            }
            let m = 1 + rng.below(9) as usize;
            let x: Vec<f32> = (0..m * cols).map(|_| rng.unit() * 2.0).collect();
            let got = run(&mat, &x, m);
            let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).expect("x");
            let candle = candle_runs.then(|| {
                let c = QMatMul::from_qtensor(qt).and_then(|mm| mm.forward(&xt)?.flatten_all()?.to_vec1::<f32>());
                c.expect("candle matmul")
            });
            // candle quantizes activations in blocks of 256 for K-quants (Q8_K), with f16 scales otherwise.
            let width = q.block_len();
            for i in 0..m {
                for r in 0..rows {
                    let (wr, xr) = (&w[r * cols..(r + 1) * cols], &x[i * cols..(i + 1) * cols]);
                    let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let ours = got[i * rows + r] as f64;
                    let t = terms(&mat, r, wr, xr);
                    let tol = error_bound(wr, xr, QK) + (6 + cols / QK) as f64 * f32::EPSILON as f64 * t;
                    assert!(
                        (ours - exact).abs() <= tol,
                        "{} {rows}x{cols} m={m} [{i},{r}]: {ours} vs exact {exact}, tol {tol}",
                        q.name()
                    );
                    let Some(candle) = &candle else { continue };
                    let theirs = candle[i * rows + r] as f64;
                    // candle's activation scales (and Q8_1 sums) are f16: allow 2^-9 of the terms for them.
                    let tol_c = tol + 1.25 * error_bound(wr, xr, width) + t / 512.0;
                    assert!(
                        (ours - theirs).abs() <= tol_c,
                        "{} {rows}x{cols} m={m} [{i},{r}]: ours {ours} vs candle {theirs}, tol {tol_c}",
                        q.name()
                    );
                }
            }
        }
    }
}

#[test]
fn thread_partitions_give_identical_results() {
    let mut rng = Rng(42);
    let (rows, cols, m) = (1000, 512, 3);
    let bytes = random_bytes(QType::Q4_1, rows, cols, &mut rng, false);
    let mat = QMatrix::from_gguf_bytes(QType::Q4_1, rows, cols, &bytes).expect("build");
    let x: Vec<f32> = (0..m * cols).map(|_| rng.unit()).collect();
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool");
    let one = pool(1).install(|| run(&mat, &x, m));
    let three = pool(3).install(|| run(&mat, &x, m));
    assert!(one.iter().zip(&three).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(one.iter().all(|v| v.is_finite()));
}

/// Decode streams every weight byte from DRAM, so the repacked matrices are no larger than the file's
/// blocks (legacy types exactly their size) plus the padding rows up to a pair of 8-row groups.
#[test]
fn repacked_sizes_stay_within_the_file_size() {
    let mut rng = Rng(7);
    // (type, repacked bytes per 256 weights of 16 rows' worth): the file's bits per weight for the
    // legacy types, 4.625 / 5.625 / 6.5625 for Q4_K / Q5_K / Q6_K (files: 4.5, 5.5, 6.5625).
    let want_bpw = [
        (QType::Q4_0, 4.5),
        (QType::Q4_1, 5.0),
        (QType::Q5_0, 5.5),
        (QType::Q5_1, 6.0),
        (QType::Q8_0, 8.5),
        (QType::Q4K, 4.625),
        (QType::Q5K, 5.625),
        (QType::Q6K, 6.5625),
    ];
    for (q, bpw) in want_bpw {
        let (rows, cols) = (16, 512);
        let b = random_bytes(q, rows, cols, &mut rng, false);
        let mat = QMatrix::from_gguf_bytes(q, rows, cols, &b).expect("build");
        assert_eq!(mat.size_in_bytes() as f64 * 8.0 / (rows * cols) as f64, bpw, "{}", q.name());
        let file_bpw = b.len() as f64 * 8.0 / (rows * cols) as f64;
        assert!(bpw <= file_bpw + 0.125, "{}: {bpw} bits per weight against the file's {file_bpw}", q.name());
    }
    // Padding: 9 rows take two groups.
    let b = random_bytes(QType::Q8_0, 9, 64, &mut rng, false);
    let mat = QMatrix::from_gguf_bytes(QType::Q8_0, 9, 64, &b).expect("build");
    assert_eq!(mat.size_in_bytes(), b.len() / 9 * 16);
}

/// The 5-bit types run on each family's own kernel (no fallback to candle or to the scalar code):
/// the tile counters of a product at the best family see only that family.
#[test]
fn q5_products_run_on_the_best_kernel() {
    let mut rng = Rng(11);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    pool.install(|| {
        for q in [QType::Q5_0, QType::Q5_1] {
            let b = random_bytes(q, 40, 96, &mut rng, false);
            let mat = QMatrix::from_gguf_bytes(q, 40, 96, &b).expect("build");
            assert_eq!(mat.isa(), Isa::best());
            let x: Vec<f32> = (0..3 * 96).map(|_| rng.unit()).collect();
            let before = TILES.with(|c| c.get());
            run_checked(&mat, &x, 3);
            let after = TILES.with(|c| c.get());
            assert!(after[Isa::best() as usize] > before[Isa::best() as usize], "{}", q.name());
        }
    });
}

#[test]
fn bad_inputs_are_reported() {
    let err = QMatrix::from_gguf_bytes(QType::Q4_1, 2, 64, &[0; 79]).expect_err("length");
    assert_eq!(err.to_string(), "Q4_1 2x64: expected 80 bytes of blocks, got 79");
    let err = QMatrix::from_gguf_bytes(QType::Q6K, 1, 128, &[]).expect_err("ragged");
    assert!(err.to_string().contains("128 columns is not a multiple of the block length 256"));
    let mat = QMatrix::from_gguf_bytes(QType::Q8_0, 2, 32, &[0; 68]).expect("build");
    let mut out = vec![0.0; 2];
    let err = mat.matmul(&[0.0; 31], 1, &mut out).expect_err("shape");
    assert_eq!(err.to_string(), "matmul input: expected 32 floats, got 31");
    assert!(mat.dequantize_row(2).is_err());
    let f32_tensor =
        QTensor::quantize(&Tensor::zeros((2, 32), candle_core::DType::F32, &Device::Cpu).expect("t"), GgmlDType::F32);
    let err = QMatrix::from_qtensor(&f32_tensor.expect("qtensor")).expect_err("type");
    assert!(err.to_string().contains("not supported"), "{err}");
}

/// Tiles may start at an odd group (prefill tiles are sized in bytes, not pairs), where a kernel runs
/// the second group of a pair alone: every family must then read that group's own values and scales.
/// (It once read its pair's first group: Qwen2.5-Coder-0.5B's 4864-row products were off by up to 4.)
#[test]
fn tiles_starting_at_odd_groups_match_the_scalar_reference() {
    let mut rng = Rng(0x5151_2727_9393_4141);
    for q in TYPES {
        let (rows, cols) = (6 * G - 3, 2 * q.block_len());
        let bytes = random_bytes(q, rows, cols, &mut rng, false);
        let mut mat = QMatrix::from_gguf_bytes(q, rows, cols, &bytes).expect("build");
        let m = 2;
        let x: Vec<f32> = (0..m * cols).map(|_| rng.unit() * 3.0).collect();
        mat.set_isa(Isa::Scalar).expect("scalar");
        let want = run(&mat, &x, m);
        let acts = QActs::quantize(&x, m, cols);
        for isa in Isa::available() {
            mat.set_isa(isa).expect("isa");
            let mut got = vec![f32::NAN; m * rows];
            let dst = OutPtr { ptr: got.as_mut_ptr(), rows };
            for (g0, g1) in [(0, 1), (1, 2), (2, 5), (5, 6)] {
                // SAFETY: `got` holds m rows of `rows` floats, and the ranges are disjoint.
                unsafe { mat.run_tile(&acts, 0, m, g0, g1, dst) };
            }
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{isa:?} {}: {got:?} != {want:?}", q.name());
        }
    }
}
