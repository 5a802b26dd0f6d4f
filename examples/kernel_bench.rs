//! Side-by-side speed of `unitcoder::engine::kernels::QMatrix` and candle's `QMatMul` on the real
//! matrices of a GGUF model, in one process: per-matrix GFLOP/s and GB/s for m = 1, 8 and 256
//! activation rows, then every layer's matrices plus the output projection for one decode step
//! (an upper bound on decode tok/s from the matrix products alone).
//!
//! Run: `RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=2 cargo run --release --example kernel_bench -- [model.gguf] [--isa scalar|avx2|vnni256|avx512vnni]`
//! `--isas` times only our whole-model step with each kernel family this CPU has. `--step ROUNDS` times
//! only our whole-model decode step (m = 1), next to a plain read of as many bytes on the same threads
//! (what DRAM allows), once per round: for comparing two builds in alternating runs.
//! Instruction counts: add `--profile ours|candle MATRIX M CALLS` and run under
//! `valgrind --tool=callgrind` with CALLS and with 0 (valgrind hides AVX-512, so this counts AVX2).
//! Both sides use 2 threads (candle's own pool reads CANDLE_NUM_THREADS, ours runs on rayon's global
//! pool, sized by RAYON_NUM_THREADS). Every figure is the best of several runs, because the machine is shared.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use unitcoder::engine::kernels::{Isa, QMatrix};

/// Best wall time of `f` over at least 3 runs and about `budget` in total.
fn best<F: FnMut() -> Result<()>>(budget: Duration, mut f: F) -> Result<Duration> {
    f()?; // warm caches and thread pools
    let (start, mut best, mut runs) = (Instant::now(), Duration::MAX, 0);
    while runs < 3 || start.elapsed() < budget {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed());
        runs += 1;
    }
    Ok(best)
}

fn inputs(m: usize, cols: usize) -> Vec<f32> {
    (0..m * cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.7).collect()
}

struct Loaded {
    name: String,
    ours: QMatrix,
    theirs: QMatMul,
    bytes: usize,
}

fn load(content: &gguf_file::Content, file: &mut std::fs::File, name: &str, isa: Option<Isa>) -> Result<Loaded> {
    let qt: QTensor = content.tensor(file, name, &Device::Cpu).with_context(|| format!("tensor {name}"))?;
    let bytes = qt.storage_size_in_bytes();
    let mut ours = QMatrix::from_qtensor(&qt).with_context(|| format!("repacking {name}"))?;
    if let Some(isa) = isa {
        ours.set_isa(isa)?;
    }
    Ok(Loaded { name: name.to_string(), ours, theirs: QMatMul::from_qtensor(qt)?, bytes })
}

/// The other supported types on an ffn_down-shaped (576x1536) matrix (K-quants need 256 | cols) quantized by candle from
/// pseudo-random weights: the default model has none of them.
fn other_types(isa: Option<Isa>, budget: Duration) -> Result<()> {
    use candle_core::quantized::GgmlDType;
    println!("\nother types, 576x1536 (ffn_down shape) quantized by candle from pseudo-random weights:");
    let w: Vec<f32> = (0..1536 * 576).map(|i| ((i * 2654435761usize % 10007) as f32 / 5003.5 - 1.0) * 0.05).collect();
    let w = Tensor::from_vec(w, (576, 1536), &Device::Cpu)?;
    for dtype in [GgmlDType::Q4_0, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K] {
        let qt = QTensor::quantize(&w, dtype)?;
        let mut ours = QMatrix::from_qtensor(&qt)?;
        if let Some(isa) = isa {
            ours.set_isa(isa)?;
        }
        let l = Loaded {
            name: format!("{dtype:?}"),
            bytes: qt.storage_size_in_bytes(),
            ours,
            theirs: QMatMul::from_qtensor(qt)?,
        };
        for m in [1, 8, 256] {
            let (a, b) = (time_ours(&l, m, budget)?, time_candle(&l, m, budget)?);
            println!(
                "{:<6} m={m:<4} ours {:>9.1} us  candle {:>9.1} us  speedup {:>6.2}x",
                l.name,
                a.as_secs_f64() * 1e6,
                b.as_secs_f64() * 1e6,
                b.as_secs_f64() / a.as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Times one product of `m` rows with our kernels.
fn time_ours(l: &Loaded, m: usize, budget: Duration) -> Result<Duration> {
    let x = inputs(m, l.ours.cols());
    let mut out = vec![0.0; m * l.ours.rows()];
    best(budget, || Ok(l.ours.matmul(&x, m, &mut out)?))
}

/// Times one product of `m` rows with candle.
fn time_candle(l: &Loaded, m: usize, budget: Duration) -> Result<Duration> {
    let xt = Tensor::from_vec(inputs(m, l.ours.cols()), (m, l.ours.cols()), &Device::Cpu)?;
    best(budget, || {
        l.theirs.forward(&xt)?;
        Ok(())
    })
}

fn main() -> Result<()> {
    // The forward pass runs inside the pool, as the engine should run it: each product then starts on
    // the calling worker instead of being handed over from outside.
    let pool = rayon::ThreadPoolBuilder::new().build()?;
    pool.install(bench)
}

fn bench() -> Result<()> {
    let mut path = "/work/dev/SmolLM2-135M-Instruct.Q4_1.gguf".to_string();
    let mut isa = None;
    let mut compare_isas = false;
    let mut step_rounds = None;
    let mut profile: Option<(String, String, usize, usize)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--isa" => {
                isa = Some(match args.next().as_deref() {
                    Some("scalar") => Isa::Scalar,
                    Some("avx2") => Isa::Avx2,
                    Some("vnni256") => Isa::Vnni256,
                    Some("avx512vnni") => Isa::Avx512Vnni,
                    other => {
                        bail!("--isa takes scalar, avx2, vnni256 or avx512vnni, got {other:?}")
                    }
                })
            }
            "--isas" => compare_isas = true,
            "--step" => step_rounds = Some(args.next().context("--step takes a number of rounds")?.parse()?),
            "--profile" => {
                let mut next = || args.next().context("--profile takes SIDE MATRIX M CALLS");
                profile = Some((next()?, next()?, next()?.parse()?, next()?.parse()?));
            }
            _ => path = a,
        }
    }
    let mut file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let content = gguf_file::Content::read(&mut file).with_context(|| format!("reading {path}"))?;
    if compare_isas {
        return isas(&content, &mut file);
    }
    if let Some(rounds) = step_rounds {
        return step_only(&content, &mut file, isa, rounds);
    }
    if let Some((side, name, m, calls)) = profile {
        let l = load(&content, &mut file, &name, isa)?;
        return run_calls(&l, &side, m, calls);
    }
    println!(
        "model {path}\nthreads {} | kernels {:?} (best available {:?})",
        rayon::current_num_threads(),
        isa.unwrap_or(Isa::best()),
        Isa::best()
    );

    let budget = Duration::from_millis(400);
    println!(
        "\n{:<24} {:>11} {:>4} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "matrix", "shape", "m", "ours us", "candle us", "GFLOP/s", "GB/s", "cand GB/s", "speedup"
    );
    let names = [
        "blk.0.attn_q.weight",
        "blk.0.attn_k.weight",
        "blk.0.ffn_up.weight",
        "blk.0.ffn_down.weight",
        "token_embd.weight",
    ];
    let loaded = names.iter().map(|n| load(&content, &mut file, n, isa)).collect::<Result<Vec<_>>>()?;
    // One side at a time: both thread pools spin while idle, so interleaving them would let each
    // slow the other down on a 2-core machine.
    let cases: Vec<(&Loaded, usize)> = loaded.iter().flat_map(|l| [1, 8, 256].map(|m| (l, m))).collect();
    let ours = cases.iter().map(|(l, m)| time_ours(l, *m, budget)).collect::<Result<Vec<_>>>()?;
    let theirs = cases.iter().map(|(l, m)| time_candle(l, *m, budget)).collect::<Result<Vec<_>>>()?;
    for (((l, m), ours), theirs) in cases.iter().zip(ours).zip(theirs) {
        let (rows, cols) = (l.ours.rows(), l.ours.cols());
        let flop = 2.0 * (m * rows * cols) as f64;
        println!(
            "{:<24} {:>11} {:>4} {:>10.1} {:>10.1} {:>8.1} {:>8.1} {:>8.1} {:>6.2}x",
            l.name,
            format!("{rows}x{cols}"),
            m,
            ours.as_secs_f64() * 1e6,
            theirs.as_secs_f64() * 1e6,
            flop / ours.as_secs_f64() / 1e9,
            l.bytes as f64 / ours.as_secs_f64() / 1e9,
            l.bytes as f64 / theirs.as_secs_f64() / 1e9,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    other_types(isa, budget)?;
    whole_model(&content, &mut file, isa)
}

/// `calls` products of `m` rows on one side and nothing else, for instruction counts under callgrind
/// (run once with 0 calls and subtract).
#[inline(never)]
fn run_calls(l: &Loaded, side: &str, m: usize, calls: usize) -> Result<()> {
    let x = inputs(m, l.ours.cols());
    let mut out = vec![0.0; m * l.ours.rows()];
    let xt = Tensor::from_vec(x.clone(), (m, l.ours.cols()), &Device::Cpu)?;
    for _ in 0..calls {
        match side {
            "ours" => l.ours.matmul(&x, m, &mut out)?,
            "candle" => drop(l.theirs.forward(&xt)?),
            other => bail!("--profile side is ours or candle, got {other}"),
        }
    }
    Ok(())
}

/// Our whole-model step (m = 1 and 8) with every kernel family this CPU has, round-robin so that
/// the machine's load affects all alike; best of 5 rounds.
fn isas(content: &gguf_file::Content, file: &mut std::fs::File) -> Result<()> {
    let mut mats = model_matrices(content, file, None)?;
    for m in [1, 8] {
        let xs: Vec<Vec<f32>> = mats.iter().map(|l| inputs(m, l.ours.cols())).collect();
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|l| vec![0.0; m * l.ours.rows()]).collect();
        let mut bests = vec![Duration::MAX; Isa::available().len()];
        for _ in 0..5 {
            for (k, isa) in Isa::available().into_iter().enumerate() {
                for l in mats.iter_mut() {
                    l.ours.set_isa(isa)?;
                }
                let t = best(Duration::from_millis(300), || {
                    for ((l, x), o) in mats.iter().zip(&xs).zip(outs.iter_mut()) {
                        l.ours.matmul(x, m, o)?;
                    }
                    Ok(())
                })?;
                bests[k] = bests[k].min(t);
            }
        }
        for (isa, t) in Isa::available().into_iter().zip(bests) {
            println!("m={m} {isa:?}: {:.2} ms/step = {:.0} tok/s", t.as_secs_f64() * 1e3, m as f64 / t.as_secs_f64());
        }
    }
    Ok(())
}

/// Our whole-model decode step (m = 1), best of 1 s, then a read of as many bytes as the repacked
/// weights hold, split over the pool as the products are: `rounds` times.
fn step_only(content: &gguf_file::Content, file: &mut std::fs::File, isa: Option<Isa>, rounds: usize) -> Result<()> {
    use rayon::prelude::*;
    let mats = model_matrices(content, file, isa)?;
    let bytes: usize = mats.iter().map(|l| l.ours.size_in_bytes()).sum();
    let xs: Vec<Vec<f32>> = mats.iter().map(|l| inputs(1, l.ours.cols())).collect();
    let mut outs: Vec<Vec<f32>> = mats.iter().map(|l| vec![0.0; l.ours.rows()]).collect();
    let words: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    println!(
        "{} threads, kernels {:?}, {:.1} MB repacked",
        rayon::current_num_threads(),
        mats[0].ours.isa(),
        bytes as f64 / 1e6
    );
    for r in 0..rounds {
        let cpu0 = thread_cpu();
        let mut steps = 0;
        let ours = best(Duration::from_secs(1), || {
            steps += 1;
            for ((l, x), o) in mats.iter().zip(&xs).zip(outs.iter_mut()) {
                l.ours.matmul(x, 1, o)?;
            }
            Ok(())
        })?;
        // With one thread every product runs on this one, so its CPU time per step is the step's cost
        // without the time other processes held the core (memory stalls included).
        let cpu = (thread_cpu() - cpu0) / steps as f64;
        let read = best(Duration::from_secs(1), || {
            let x = words.par_chunks(1 << 15).map(|c| c.iter().fold(0, |a, v| a ^ v)).reduce(|| 0, |a, b| a ^ b);
            std::hint::black_box(x);
            Ok(())
        })?;
        println!(
            "round {r}: step {:.2} ms = {:.1} tok/s ({:.1} GB/s), this thread's CPU {:.2} ms/step | read {:.2} ms ({:.1} GB/s) | step/read {:.2}",
            ours.as_secs_f64() * 1e3,
            1.0 / ours.as_secs_f64(),
            bytes as f64 / ours.as_secs_f64() / 1e9,
            cpu * 1e3,
            read.as_secs_f64() * 1e3,
            bytes as f64 / read.as_secs_f64() / 1e9,
            read.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}

/// CPU time of the calling thread, in seconds.
#[cfg(unix)]
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(not(unix))]
fn thread_cpu() -> f64 {
    f64::NAN
}

/// Every layer's seven matrices and the output projection, in model order.
fn model_matrices(content: &gguf_file::Content, file: &mut std::fs::File, isa: Option<Isa>) -> Result<Vec<Loaded>> {
    let layers = (0..).take_while(|i| content.tensor_infos.contains_key(&format!("blk.{i}.attn_q.weight"))).count();
    let mut mats = Vec::new();
    for i in 0..layers {
        for t in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
            mats.push(load(content, file, &format!("blk.{i}.{t}.weight"), isa)?);
        }
    }
    let output = if content.tensor_infos.contains_key("output.weight") { "output.weight" } else { "token_embd.weight" };
    mats.push(load(content, file, output, isa)?);
    Ok(mats)
}

/// Every layer's seven matrices and the (tied) output projection, in model order, for m = 1 and 8.
fn whole_model(content: &gguf_file::Content, file: &mut std::fs::File, isa: Option<Isa>) -> Result<()> {
    let layers = (0..).take_while(|i| content.tensor_infos.contains_key(&format!("blk.{i}.attn_q.weight"))).count();
    let mut mats = Vec::new();
    for i in 0..layers {
        for t in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
            mats.push(load(content, file, &format!("blk.{i}.{t}.weight"), isa)?);
        }
    }
    let output = if content.tensor_infos.contains_key("output.weight") { "output.weight" } else { "token_embd.weight" };
    mats.push(load(content, file, output, isa)?);
    let bytes: usize = mats.iter().map(|l| l.bytes).sum();
    println!(
        "\nwhole model: {layers} layers x 7 matrices + {output}, {:.1} MB of weights per step",
        bytes as f64 / 1e6
    );
    for m in [1, 8] {
        let xs: Vec<Vec<f32>> = mats.iter().map(|l| inputs(m, l.ours.cols())).collect();
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|l| vec![0.0; m * l.ours.rows()]).collect();
        let ours = best(Duration::from_secs(2), || {
            for ((l, x), o) in mats.iter().zip(&xs).zip(outs.iter_mut()) {
                l.ours.matmul(x, m, o)?;
            }
            Ok(())
        })?;
        let xts = xs
            .iter()
            .zip(&mats)
            .map(|(x, l)| Tensor::from_vec(x.clone(), (m, l.ours.cols()), &Device::Cpu))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let theirs = best(Duration::from_secs(2), || {
            for (l, x) in mats.iter().zip(&xts) {
                l.theirs.forward(x)?;
            }
            Ok(())
        })?;
        println!(
            "m={m}: ours {:.2} ms/step = {:.0} tok/s ({:.1} GB/s) | candle {:.2} ms/step = {:.0} tok/s ({:.1} GB/s) | speedup {:.2}x",
            ours.as_secs_f64() * 1e3,
            m as f64 / ours.as_secs_f64(),
            bytes as f64 / ours.as_secs_f64() / 1e9,
            theirs.as_secs_f64() * 1e3,
            m as f64 / theirs.as_secs_f64(),
            bytes as f64 / theirs.as_secs_f64() / 1e9,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}
