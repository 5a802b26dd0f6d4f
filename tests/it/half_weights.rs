//! Checkpoints stored in bf16 and f16 against the reference implementation: tests/fixtures/half holds a
//! tiny random bf16 Qwen2 (tied embeddings) with a LoRA adapter and a tiny f16 Llama (untied output;
//! also as an F16 GGUF file), and the logits and greedy tokens transformers computes from the same 16-bit weights in f32
//! (`scripts/make-half-fixtures`). The engine keeps the weights 16-bit and sums in f32, so it is held
//! to the tolerance of f32 checkpoints.

use candle_core::Device;
use std::path::{Path, PathBuf};
use unitcoder::engine::kv_cache::Padding;
use unitcoder::engine::models::linear::Quantize;
use unitcoder::engine::models::lora::{AdapterSource, Lora};
use unitcoder::engine::models::Model;
use unitcoder::engine::weights::Weights;

/// Largest |ours - reference| allowed for a logit (they span about ±30): only summation order and our
/// f16 KV cache differ from transformers, as for f32 checkpoints (measured: up to 0.03).
const TOL: f32 = 0.05;

fn fixtures() -> PathBuf {
    crate::reference::fixtures("half")
}

use crate::reference::{Reference, Run};

fn reference(name: &str) -> Reference {
    crate::reference::reference("half", name)
}

fn load(name: &str, lora: Option<&str>) -> Model {
    let mut w = Weights::open(&fixtures().join(name), &Device::Cpu).unwrap();
    let adapters: Vec<AdapterSource> =
        lora.map(|l| AdapterSource { name: l.to_string(), dir: fixtures().join(l) }).into_iter().collect();
    w.attach_lora(Lora::open(&adapters, &Device::Cpu).unwrap());
    Model::load(&mut w).unwrap()
}

/// Checks the fused CPU forward (logits and greedy tokens) and the tensor path (logits) against `want`.
fn check(model: &Model, r: &Reference, want: &Run, what: &str) {
    let mut worst = 0f32;
    for (i, prompt) in r.prompts.iter().enumerate() {
        let padding = Padding::new(vec![0]);
        let steps = want.greedy[i].len();
        let mut cache = model.new_cache(1, prompt.len() + steps).unwrap();
        let mut logits: Vec<f32> =
            model.forward(prompt, prompt.len(), &padding, &mut cache).unwrap().to_vec2().unwrap()[0].clone();
        assert_eq!(logits.len(), want.logits[i].len(), "{what}: vocabulary");
        worst = logits.iter().zip(&want.logits[i]).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        let mut tensors_cache = model.new_cache(1, prompt.len()).unwrap();
        let t = model.forward_tensors(prompt, prompt.len(), &padding, &mut tensors_cache).unwrap();
        let t: Vec<f32> = t.to_vec2().unwrap()[0].clone();
        worst = t.iter().zip(&want.logits[i]).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        let mut greedy = Vec::new();
        for _ in 0..steps {
            let next = logits.iter().enumerate().fold(0, |b, (k, x)| if *x > logits[b] { k } else { b }) as u32;
            greedy.push(next);
            logits = model.forward(&[next], 1, &padding, &mut cache).unwrap().to_vec2().unwrap()[0].clone();
        }
        assert_eq!(greedy, want.greedy[i], "{what}: greedy tokens of prompt {i}");
    }
    eprintln!("{what}: max abs logit difference {worst}");
    assert!(worst <= TOL, "{what}: logits differ by up to {worst} (tolerance {TOL})");
}

#[test]
fn bf16_and_f16_checkpoints_match_transformers() {
    // The f16 llama also as an F16 GGUF file (what llama.cpp's converter writes by default).
    for (file, name, dtype) in [
        ("qwen2-bf16", "qwen2-bf16", "bfloat16"),
        ("llama-f16", "llama-f16", "float16"),
        ("llama-f16.gguf", "llama-f16", "float16"),
    ] {
        let r = reference(name);
        assert_eq!(r.dtype, dtype, "{name}: the fixture's stored dtype");
        check(&load(file, None), &r, &r.base, file);
    }
}

#[test]
fn lora_merged_into_a_bf16_base_matches_peft() {
    let r = reference("qwen2-bf16");
    let want = r.lora.as_ref().expect("the qwen2-bf16 reference has a LoRA run");
    check(&load("qwen2-bf16", Some("qwen2-bf16-lora")), &r, want, "qwen2-bf16 + lora");
    // The adapter must matter, or the check above proves nothing.
    let moved = r.base.logits[0].iter().zip(&want.logits[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(moved > 20.0 * TOL, "the adapter moves the logits by only {moved}");
}

#[test]
fn batched_rows_of_a_bf16_model_equal_the_rows_alone() {
    // Left padding: row 1 is the shorter prompt, padded by 2 at the front.
    let model = load("qwen2-bf16", None);
    let (a, b) = ([5u32, 9, 33, 200, 17], [71u32, 72, 73]);
    let alone = |p: &[u32]| -> Vec<f32> {
        let mut cache = model.new_cache(1, p.len()).unwrap();
        model.forward(p, p.len(), &Padding::new(vec![0]), &mut cache).unwrap().to_vec2().unwrap()[0].clone()
    };
    let mut tokens = a.to_vec();
    tokens.extend([0, 0]);
    tokens.extend(b);
    let mut cache = model.new_cache(2, 5).unwrap();
    let batched: Vec<Vec<f32>> =
        model.forward(&tokens, 5, &Padding::new(vec![0, 2]), &mut cache).unwrap().to_vec2().unwrap();
    assert_eq!(batched[0], alone(&a), "row 0");
    let worst = batched[1].iter().zip(alone(&b)).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    // The padded row's attention sees masked columns, whose order of summation differs.
    assert!(worst <= 1e-4, "padded row differs by {worst}");
}

/// Last-position logits of each prompt of the qwen2 LoRA fixture's reference (batch of one).
fn prompt_logits(model: &Model, prompts: &[Vec<u32>]) -> Vec<Vec<f32>> {
    prompts
        .iter()
        .map(|p| {
            let mut cache = model.new_cache(1, p.len()).unwrap();
            model.forward(p, p.len(), &Padding::new(vec![0]), &mut cache).unwrap().to_vec2().unwrap()[0].clone()
        })
        .collect()
}

#[test]
fn quantize_q8_0_at_load_reproduces_the_q8_0_gguf_file() {
    // The LoRA fixtures' f32 checkpoints hold weights already on the Q8_0 grid, and their .gguf files
    // the same weights as Q8_0 blocks: quantizing at load must rebuild exactly those blocks.
    let lora = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lora");
    let prompts = vec![vec![5u32, 9, 33, 200, 17], vec![71, 72, 73]];
    for arch in ["qwen2", "llama"] {
        let mut w = Weights::open(&lora.join(arch), &Device::Cpu).unwrap();
        w.set_quantize(Some(Quantize::Q8_0));
        let quantized = Model::load(&mut w).unwrap();
        let (fast, total) = quantized.fast_layers();
        assert_eq!(fast, total, "{arch}: every linear layer runs on the Q8_0 kernels");
        let gguf = Model::load(&mut Weights::open(&lora.join(format!("{arch}.gguf")), &Device::Cpu).unwrap()).unwrap();
        let (ours, file) = (prompt_logits(&quantized, &prompts), prompt_logits(&gguf, &prompts));
        let worst = ours.iter().flatten().zip(file.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{arch}: quantized at load differs from the GGUF file by {worst}");
        // And it is not the f32 model: the activations are rounded to 8 bits too.
        let dense = Model::load(&mut Weights::open(&lora.join(arch), &Device::Cpu).unwrap()).unwrap();
        let moved = prompt_logits(&dense, &prompts)
            .iter()
            .flatten()
            .zip(ours.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(moved > 1e-3, "{arch}: --quantize changed nothing ({moved})");
    }
}

#[test]
fn quantize_q8_0_is_in_the_model_id_and_keeps_the_bf16_model_close() {
    use std::sync::Arc;
    use unitcoder::engine::codec::TokenizerCodec;
    use unitcoder::engine::{Engine, EngineOptions, Generator};
    let base = fixtures().join("qwen2-bf16");
    let codec = Arc::new(TokenizerCodec::from_file(&base.join("tokenizer.json"), &["<eos>"]).unwrap());
    let options = EngineOptions { model_id: "tiny".into(), quantize: Some(Quantize::Q8_0), ..EngineOptions::default() };
    assert_eq!(Engine::with_codec(&base, codec, options).unwrap().model_id(), "tiny+q8_0");
    // Weights rounded to 8 bits (unlike the GGUF fixtures', which lie on the Q8_0 grid already) and
    // 8-bit activations: measured up to 0.63 on logits spanning ±45.
    let r = reference("qwen2-bf16");
    let mut w = Weights::open(&base, &Device::Cpu).unwrap();
    w.set_quantize(Some(Quantize::Q8_0));
    let model = Model::load(&mut w).unwrap();
    let got = prompt_logits(&model, &r.prompts);
    let worst =
        got.iter().flatten().zip(r.base.logits.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("qwen2-bf16 quantized to q8_0: max abs logit difference {worst}");
    assert!(worst <= 1.0, "q8_0 logits differ from the bf16 reference by {worst}");
}

#[test]
fn generate_quantize_flag_runs_the_quantized_model_and_rejects_what_it_cannot_do() {
    use crate::common::unitcoder;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lora/qwen2");
    let base = base.to_str().unwrap();
    // Prompt [1, 2, 3] of the LoRA fixtures' reference: greedy repeats byte 3 (as the Q8_0 GGUF file does).
    let args = ["generate", "--model", base, "--prompt", "\u{1}\u{2}\u{3}", "--max-tokens", "8", "--ignore-eos"];
    let out = unitcoder(&[&args[..], &["--quantize", "q8_0"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'), "\u{3}".repeat(8));
    let bad = unitcoder(&["generate", "--model", base, "--prompt", "a", "--quantize", "q4"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--quantize") && err.contains("supported: q8_0"), "{err}");
    let server =
        unitcoder(&["generate", "--model", "openai:http://127.0.0.1:9#m", "--prompt", "a", "--quantize", "q8_0"]);
    assert_eq!(server.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&server.stderr).contains("in-process"));
}
