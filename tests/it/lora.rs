//! LoRA adapters and the qwen3 architecture against the reference implementations: tests/fixtures/lora
//! holds tiny random qwen2, llama and qwen3 checkpoints (HF safetensors and the same weights as Q8_0 GGUF,
//! converted by llama.cpp's convert_hf_to_gguf.py), a PEFT adapter for each, and
//! the logits and greedy tokens transformers + peft computed for fixed prompts
//! (`scripts/make-lora-fixtures` writes them all). Safetensors bases get the adapter merged; GGUF bases
//! run it next to the quantized products, on the engine's kernels and on candle's. Also: errors for
//! adapters that do not fit the base, and the adapter in the model id.

use crate::common::tempdir;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use unitcoder::engine::kv_cache::Padding;
use unitcoder::engine::models::lora::{AdapterSource, Lora};
use unitcoder::engine::models::{MatmulKernels, Model};
use unitcoder::engine::weights::Weights;

/// Largest |ours - reference| allowed for a logit (the logits span about ±30, standard deviation 8):
/// f32 weights differ from transformers only by summation order and our f16 KV cache (measured: up
/// to 0.03).
const TOL_DENSE: f32 = 0.05;
/// Q8_0 GGUF weights hold the same numbers, but the quantized products also round the activations to
/// 8 bits (measured: up to 0.34, about 1% of the logits' span).
const TOL_GGUF: f32 = 0.6;

fn fixtures() -> PathBuf {
    crate::reference::fixtures("lora")
}

use crate::reference::{Reference, Run};

fn reference(arch: &str) -> Reference {
    crate::reference::reference("lora", arch)
}

fn adapter(dir: &Path) -> AdapterSource {
    AdapterSource { name: dir.file_name().unwrap().to_string_lossy().into_owned(), dir: dir.to_path_buf() }
}

fn load(base: &Path, lora: Option<&Path>, kernels: MatmulKernels) -> Result<Model, String> {
    let mut w = Weights::open(base, &Device::Cpu).map_err(|e| e.to_string())?;
    let adapters: Vec<AdapterSource> = lora.map(adapter).into_iter().collect();
    w.attach_lora(Lora::open(&adapters, &Device::Cpu).map_err(|e| e.to_string())?);
    Model::load_with(&mut w, kernels).map_err(|e| e.to_string())
}

/// Our last-position logits and `steps` greedy tokens for one prompt (batch of one).
fn run(model: &Model, prompt: &[u32], steps: usize) -> (Vec<f32>, Vec<u32>) {
    let padding = Padding::new(vec![0]);
    let mut cache = model.new_cache(1, prompt.len() + steps).unwrap();
    let mut logits: Vec<f32> =
        model.forward(prompt, prompt.len(), &padding, &mut cache).unwrap().to_vec2().unwrap()[0].clone();
    let first = logits.clone();
    let mut tokens = Vec::new();
    for _ in 0..steps {
        let next = logits.iter().enumerate().fold(0, |best, (i, x)| if *x > logits[best] { i } else { best }) as u32;
        tokens.push(next);
        logits = model.forward(&[next], 1, &padding, &mut cache).unwrap().to_vec2().unwrap()[0].clone();
    }
    (first, tokens)
}

/// Checks `model` against one reference run; returns the largest logit difference.
fn check(model: &Model, r: &Reference, want: &Run, tol: f32, what: &str) -> f32 {
    let mut worst = 0f32;
    for (i, prompt) in r.prompts.iter().enumerate() {
        let (logits, greedy) = run(model, prompt, want.greedy[i].len());
        assert_eq!(logits.len(), want.logits[i].len(), "{what}: vocabulary");
        for (x, y) in logits.iter().zip(&want.logits[i]) {
            worst = worst.max((x - y).abs());
        }
        assert_eq!(greedy, want.greedy[i], "{what}: greedy tokens of prompt {i}");
    }
    eprintln!("{what}: max abs logit difference {worst}");
    assert!(worst <= tol, "{what}: logits differ by up to {worst} (tolerance {tol})");
    worst
}

#[test]
fn merged_adapter_on_safetensors_matches_peft() {
    for arch in ["qwen2", "llama", "qwen3"] {
        let r = reference(arch);
        let base = fixtures().join(arch);
        let lora = fixtures().join(format!("{arch}-lora"));
        let plain = load(&base, None, MatmulKernels::Auto).unwrap();
        check(&plain, &r, &r.base, TOL_DENSE, &format!("{arch} base"));
        let tuned = load(&base, Some(&lora), MatmulKernels::Auto).unwrap();
        check(&tuned, &r, r.lora(), TOL_DENSE, &format!("{arch} base+lora"));
        // The adapter must matter, or the check above proves nothing.
        let moved = r.base.logits[0].iter().zip(&r.lora().logits[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(moved > 20.0 * TOL_DENSE, "{arch}: the adapter moves the logits by only {moved}");
    }
}

#[test]
fn tensor_path_matches_the_reference_for_every_architecture() {
    // The path of non-CPU devices, which the fused CPU forward above replaces.
    for arch in ["qwen2", "llama", "qwen3"] {
        let r = reference(arch);
        let lora = fixtures().join(format!("{arch}-lora"));
        let model = load(&fixtures().join(arch), Some(&lora), MatmulKernels::Auto).unwrap();
        for (i, prompt) in r.prompts.iter().enumerate() {
            let mut cache = model.new_cache(1, prompt.len()).unwrap();
            let padding = Padding::new(vec![0]);
            let out = model.forward_tensors(prompt, prompt.len(), &padding, &mut cache).unwrap();
            let logits: Vec<f32> = out.to_vec2().unwrap()[0].clone();
            let worst = logits.iter().zip(&r.lora().logits[i]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(worst <= TOL_DENSE, "{arch} prompt {i}: tensor path differs by up to {worst}");
        }
    }
}

/// Teacher-forced greedy check for quantized runs: fed the reference's greedy tokens, our best token at
/// every step must be the reference's, or tie with it within `tol` (8-bit activations can swap two
/// tokens whose logits are that close, and free-running greedy output would then diverge for good).
/// Returns how many steps matched exactly.
fn check_forced(model: &Model, r: &Reference, want: &Run, tol: f32, what: &str) -> usize {
    let mut exact = 0;
    for (i, prompt) in r.prompts.iter().enumerate() {
        let steps = &want.greedy[i];
        let padding = Padding::new(vec![0]);
        let mut cache = model.new_cache(1, prompt.len() + steps.len()).unwrap();
        let mut input: Vec<u32> = prompt.clone();
        for (s, &token) in steps.iter().enumerate() {
            let logits: Vec<f32> =
                model.forward(&input, input.len(), &padding, &mut cache).unwrap().to_vec2().unwrap()[0].clone();
            let best = logits.iter().cloned().fold(f32::MIN, f32::max);
            if logits[token as usize] == best {
                exact += 1;
            }
            assert!(
                logits[token as usize] >= best - tol,
                "{what}: prompt {i} step {s}: reference token {token} at {} vs our best {best}",
                logits[token as usize]
            );
            input = vec![token];
        }
    }
    exact
}

#[test]
fn side_product_on_gguf_matches_peft_on_both_kernels() {
    for arch in ["qwen2", "llama", "qwen3"] {
        let r = reference(arch);
        let base = fixtures().join(format!("{arch}.gguf"));
        let lora = fixtures().join(format!("{arch}-lora"));
        for kernels in [MatmulKernels::Auto, MatmulKernels::Candle] {
            let what = format!("{arch} gguf {kernels:?}");
            for (adapter, want, label) in [(None, &r.base, "base"), (Some(lora.as_path()), r.lora(), "base+lora")] {
                let model = load(&base, adapter, kernels).unwrap();
                let what = format!("{what} {label}");
                let (logits, _) = run(&model, &r.prompts[0], 0);
                let worst = logits.iter().zip(&want.logits[0]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                for (i, prompt) in r.prompts.iter().enumerate().skip(1) {
                    let (logits, _) = run(&model, prompt, 0);
                    let w = logits.iter().zip(&want.logits[i]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                    assert!(w <= TOL_GGUF, "{what}: prompt {i}: logits differ by up to {w} (tolerance {TOL_GGUF})");
                }
                assert!(worst <= TOL_GGUF, "{what}: logits differ by up to {worst} (tolerance {TOL_GGUF})");
                let exact = check_forced(&model, &r, want, TOL_GGUF, &what);
                eprintln!("{what}: max abs logit difference {worst}, {exact}/24 greedy steps exact");
            }
        }
    }
}

/// The qwen2 adapter's tensors, for writing altered copies.
fn adapter_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("qwen2-lora/adapter_model.safetensors"), &Device::Cpu).unwrap()
}

fn write_adapter(dir: &Path, tensors: &HashMap<String, Tensor>) {
    std::fs::copy(fixtures().join("qwen2-lora/adapter_config.json"), dir.join("adapter_config.json")).unwrap();
    candle_core::safetensors::save(tensors, dir.join("adapter_model.safetensors")).unwrap();
}

#[test]
fn adapters_for_another_base_fail_naming_the_tensor() {
    let base = fixtures().join("qwen2");
    // A layer the 2-layer base does not have.
    let dir = tempdir();
    let mut t = adapter_tensors();
    for half in ["A", "B"] {
        let from = format!("base_model.model.model.layers.1.self_attn.q_proj.lora_{half}.weight");
        let x = t.remove(&from).unwrap();
        t.insert(from.replace("layers.1.", "layers.7."), x);
    }
    write_adapter(dir.path(), &t);
    let e = load(&base, Some(dir.path()), MatmulKernels::Auto).err().unwrap();
    assert!(e.contains("base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"), "{e}");
    assert!(e.contains("has no `model.layers.7.self_attn.q_proj`"), "{e}");
    // A projection of another width: B of 96 rows for a 64-row q_proj.
    let dir = tempdir();
    let mut t = adapter_tensors();
    let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    t.insert(key.into(), Tensor::zeros((96, 4), candle_core::DType::F32, &Device::Cpu).unwrap());
    write_adapter(dir.path(), &t);
    for base in [fixtures().join("qwen2"), fixtures().join("qwen2.gguf")] {
        let e = load(&base, Some(dir.path()), MatmulKernels::Auto).err().unwrap();
        assert!(e.contains("layers.0.self_attn.q_proj.lora_A.weight") && e.contains("do not fit"), "{e}");
    }
    // A B without its A.
    let dir = tempdir();
    let mut t = adapter_tensors();
    t.remove("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight");
    write_adapter(dir.path(), &t);
    let e = load(&base, Some(dir.path()), MatmulKernels::Auto).err().unwrap();
    assert!(e.contains("base_model.model.model.layers.0.mlp.up_proj.lora_B.weight") && e.contains("no lora_A"), "{e}");
}

#[test]
fn model_id_names_the_adapter_and_its_contents() {
    use std::sync::Arc;
    use unitcoder::engine::codec::TokenizerCodec;
    use unitcoder::engine::{Engine, EngineOptions, Generator};
    let base = fixtures().join("qwen2");
    let codec = || Arc::new(TokenizerCodec::from_file(&base.join("tokenizer.json"), &["<eos>"]).unwrap());
    let id = |lora: Vec<AdapterSource>| {
        let options = EngineOptions { model_id: "tiny".into(), lora, ..EngineOptions::default() };
        Engine::with_codec(&base, codec(), options).unwrap().model_id()
    };
    assert_eq!(id(vec![]), "tiny");
    let with = id(vec![adapter(&fixtures().join("qwen2-lora"))]);
    assert!(with.starts_with("tiny+lora:qwen2-lora@") && with.len() == "tiny+lora:qwen2-lora@".len() + 12, "{with}");
    // Same directory name, other weights: another id.
    let dir = tempdir();
    let altered = dir.path().join("qwen2-lora");
    std::fs::create_dir(&altered).unwrap();
    let mut t = adapter_tensors();
    let key = "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight";
    let doubled = (t[key].clone() * 2.0).unwrap();
    t.insert(key.into(), doubled);
    write_adapter(&altered, &t);
    let other = id(vec![adapter(&altered)]);
    assert!(other.starts_with("tiny+lora:qwen2-lora@") && other != with, "{other} vs {with}");
}

#[test]
fn generate_with_lora_on_the_command_line() {
    use crate::common::unitcoder;
    let base = fixtures().join("qwen2");
    let lora = fixtures().join("qwen2-lora");
    // Prompt [1, 2, 3] of the reference, as text (one byte token each).
    let gen = |extra: &[&str]| {
        let mut args = vec!["generate", "--model", base.to_str().unwrap(), "--prompt", "\u{1}\u{2}\u{3}"];
        args.extend_from_slice(&["--max-tokens", "8", "--ignore-eos"]);
        args.extend_from_slice(extra);
        let out = unitcoder(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let r = reference("qwen2");
    assert_eq!(r.prompts[2], vec![1, 2, 3]);
    // The reference's greedy tokens as bytes: the base repeats byte 3; the adapter starts with 'M'.
    assert_eq!(r.base.greedy[2], vec![3; 8]);
    assert_eq!(gen(&[]).trim_end_matches('\n'), "\u{3}".repeat(8));
    assert_eq!(r.lora().greedy[2][0], u32::from(b'M'));
    let tuned = gen(&["--lora", lora.to_str().unwrap()]);
    assert!(tuned.starts_with('M'), "{tuned:?}");

    let t = tempdir();
    let out = unitcoder(&[
        "generate",
        "--model",
        base.to_str().unwrap(),
        "--lora",
        t.path().to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adapter_config.json"), "{err}");

    // A path that is not there, or a file, is named as such (not as a missing adapter_config.json).
    let file = t.path().join("adapter_config.json");
    std::fs::write(&file, "{}").unwrap();
    let missing = t.path().join("no-such-adapter");
    for (lora, want) in [(&missing, "no such directory"), (&file, "not a directory")] {
        let args = ["generate", "--model", base.to_str().unwrap(), "--prompt", "x", "--lora", lora.to_str().unwrap()];
        let out = unitcoder(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{}: {want}", lora.display())), "want `{want}`: {err}");
    }
}

/// An HF cache (`HF_HOME`) holding the qwen2 fixture as `acme/tiny` and its adapter as `acme/tiny-lora`,
/// whose adapter_config.json names `acme/tiny` as its base.
fn hf_home_with_adapter() -> tempfile::TempDir {
    let root = tempdir();
    let hub = root.path().join("hub");
    let base = crate::models_hf::hf_repo(&hub, "acme/tiny");
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixtures().join("qwen2").join(f), base.join(f)).unwrap();
    }
    let snap = crate::models_hf::hf_repo(&hub, "acme/tiny-lora");
    let src = fixtures().join("qwen2-lora");
    std::fs::copy(src.join("adapter_model.safetensors"), snap.join("adapter_model.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("adapter_config.json")).unwrap()).unwrap();
    config["base_model_name_or_path"] = "acme/tiny".into();
    std::fs::write(snap.join("adapter_config.json"), config.to_string()).unwrap();
    root
}

#[test]
fn hf_adapter_repos_resolve_to_their_base_offline() {
    use unitcoder::engine::fetch::ModelSettings;
    use unitcoder::engine::resolve;
    use unitcoder::progress::Silent;
    let root = hf_home_with_adapter();
    let mut settings = ModelSettings::in_dir(root.path());
    settings.hf_hub_dir = root.path().join("hub");
    settings.hf_offline = true;
    let m = resolve::resolve("hf:acme/tiny-lora", &settings, &Silent).unwrap();
    assert_eq!((m.id.as_str(), m.architecture.as_str()), ("hf:acme/tiny", "qwen2"));
    assert_eq!(m.adapters.len(), 1);
    assert_eq!(m.adapters[0].name, "acme/tiny-lora");
    assert!(m.adapters[0].dir.join("adapter_model.safetensors").is_file());
    let a = resolve::resolve_adapter("hf:acme/tiny-lora", &settings, &Silent).unwrap();
    assert_eq!(a, m.adapters[0]);
    let e = resolve::resolve_adapter("hf:acme/absent", &settings, &Silent).unwrap_err().to_string();
    assert!(e.contains("offline") && e.contains("models--acme--absent"), "{e}");

    // The CLI, offline, with the adapter repository as the model: the reference's greedy text.
    let out = std::process::Command::new(crate::common::bin())
        .args(["generate", "--model", "hf:acme/tiny-lora", "--prompt", "\u{1}\u{2}\u{3}", "--max-tokens", "8"])
        .args(["--ignore-eos", "--out"])
        .arg(root.path().join("out.jsonl"))
        .env("HF_HOME", root.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("UNITCODER_CACHE", root.path().join("uc"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("out.jsonl")).unwrap()).unwrap();
    assert!(line["text"].as_str().unwrap().starts_with('M'), "{line}");
}

#[test]
fn repeated_adapters_add_up() {
    // Twice the adapter gives what one adapter with every B doubled gives, merged and as side products.
    let lora = fixtures().join("qwen2-lora");
    let dir = tempdir();
    let doubled = dir.path().join("doubled");
    std::fs::create_dir(&doubled).unwrap();
    let t: HashMap<String, Tensor> = adapter_tensors()
        .into_iter()
        .map(|(k, v)| if k.contains("lora_B") { (k, (v * 2.0).unwrap()) } else { (k, v) })
        .collect();
    write_adapter(&doubled, &t);
    let prompt = &reference("qwen2").prompts[1];
    for base in [fixtures().join("qwen2"), fixtures().join("qwen2.gguf")] {
        let mut w = Weights::open(&base, &Device::Cpu).unwrap();
        w.attach_lora(Lora::open(&[adapter(&lora), adapter(&lora)], &Device::Cpu).unwrap());
        let twice = Model::load(&mut w).unwrap();
        let once_doubled = load(&base, Some(&doubled), MatmulKernels::Auto).unwrap();
        let single = load(&base, Some(&lora), MatmulKernels::Auto).unwrap();
        let (a, b, c) = (run(&twice, prompt, 0).0, run(&once_doubled, prompt, 0).0, run(&single, prompt, 0).0);
        let diff = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(diff(&a, &b) < 1e-3, "{}: twice vs doubled differ by {}", base.display(), diff(&a, &b));
        assert!(diff(&a, &c) > 1.0, "{}: the second adapter changed nothing", base.display());
    }
}
