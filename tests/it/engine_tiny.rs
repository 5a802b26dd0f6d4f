//! Engine tests on tiny random checkpoints written by the test itself (HF safetensors + a byte-level
//! `tokenizer.json`): f32 greedy output of a batch equals each prompt's batch-of-one output token for
//! token, for llama and qwen2 (biases, tied embeddings), in f32, f16 and bf16; stop strings, max tokens,
//! n samples, seeds and the channel-fed model thread.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use unitcoder::engine::codec::TokenizerCodec;
use unitcoder::engine::{Engine, EngineOptions, FinishReason, Generator, Prompt, Request, SamplingParams};

const VOCAB: usize = 257; // 256 byte tokens + <eos>
const EOS: &str = "<eos>";

/// GPT-2's byte-to-unicode table: the printable bytes map to themselves, the rest to 256 and up.
fn byte_chars() -> Vec<char> {
    let mut out = vec!['\0'; 256];
    let mut n = 0;
    for b in 0..256u32 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        out[b as usize] = if printable {
            char::from_u32(b).unwrap()
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap()
        };
    }
    out
}

pub fn write_tokenizer(dir: &Path) {
    let vocab: serde_json::Map<String, serde_json::Value> =
        byte_chars().iter().enumerate().map(|(i, c)| (c.to_string(), i.into())).collect();
    let byte_level =
        serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "normalizer": null, "post_processor": null,
        "added_tokens": [{"id": 256, "content": EOS, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": true}],
        "pre_tokenizer": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), serde_json::json!({"eos_token": EOS}).to_string()).unwrap();
}

/// Normal(0, std) samples from a seeded RNG (Box-Muller), as an f32 tensor.
fn randn(rng: &mut ChaCha8Rng, shape: &[usize], std: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// A random 2-layer checkpoint of `arch` ("llama" or "qwen2") stored in `dtype`.
pub fn write_model(dir: &Path, arch: &str, dtype: DType, seed: u64) {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (d, ffn, heads, kv, layers) = (64usize, 128usize, 4usize, 2usize, 2usize);
    let hd = d / heads;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut rand = |name: String, shape: &[usize], std: f64| {
        let x = randn(&mut rng, shape, std).to_dtype(dtype).unwrap();
        t.insert(name, x);
    };
    rand("model.embed_tokens.weight".into(), &[VOCAB, d], 1.0);
    let s = 1.0 / (d as f64).sqrt();
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        rand(format!("{p}.self_attn.q_proj.weight"), &[heads * hd, d], s);
        rand(format!("{p}.self_attn.k_proj.weight"), &[kv * hd, d], s);
        rand(format!("{p}.self_attn.v_proj.weight"), &[kv * hd, d], s);
        rand(format!("{p}.self_attn.o_proj.weight"), &[d, heads * hd], s);
        if arch == "qwen2" {
            rand(format!("{p}.self_attn.q_proj.bias"), &[heads * hd], 0.1);
            rand(format!("{p}.self_attn.k_proj.bias"), &[kv * hd], 0.1);
            rand(format!("{p}.self_attn.v_proj.bias"), &[kv * hd], 0.1);
        }
        rand(format!("{p}.mlp.gate_proj.weight"), &[ffn, d], s);
        rand(format!("{p}.mlp.up_proj.weight"), &[ffn, d], s);
        rand(format!("{p}.mlp.down_proj.weight"), &[d, ffn], 1.0 / (ffn as f64).sqrt());
        rand(format!("{p}.input_layernorm.weight"), &[d], 0.1);
        rand(format!("{p}.post_attention_layernorm.weight"), &[d], 0.1);
    }
    let tied = arch == "qwen2";
    if !tied {
        rand("lm_head.weight".into(), &[VOCAB, d], s);
    }
    // Norm scales near 1, not near 0.
    for (name, w) in t.iter_mut() {
        if name.ends_with("layernorm.weight") {
            *w = (w.to_dtype(DType::F32).unwrap() + 1.0).unwrap().to_dtype(dtype).unwrap();
        }
    }
    t.insert("model.norm.weight".into(), Tensor::ones(d, dtype, &dev).unwrap());
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "model_type": arch, "hidden_size": d, "intermediate_size": ffn, "num_attention_heads": heads,
        "num_key_value_heads": kv, "num_hidden_layers": layers, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "max_position_embeddings": 256, "vocab_size": VOCAB, "tie_word_embeddings": tied,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    write_tokenizer(dir);
}

fn engine(dir: &Path, max_batch: usize) -> Engine {
    let codec = TokenizerCodec::from_file(&dir.join("tokenizer.json"), &[EOS]).unwrap();
    let options = EngineOptions { max_batch, ..EngineOptions::default() };
    Engine::with_codec(dir, Arc::new(codec), options).unwrap()
}

fn greedy(prompt: &str, max_tokens: usize) -> Request {
    let params = SamplingParams { max_tokens, ignore_eos: true, ..SamplingParams::default() };
    Request::new(Prompt::Text(prompt.into()), 1, params)
}

const PROMPTS: [&str; 4] = ["def add(a, b):", "x", "import os\nimport sys\n\nclass Foo:\n    pass", "print(1 + 2)"];

fn batched_equals_single(arch: &str, dtype: DType) {
    let dir = common_tempdir();
    write_model(dir.path(), arch, dtype, 7);
    let e = engine(dir.path(), 16);
    let reqs: Vec<Request> = PROMPTS.iter().map(|p| greedy(p, 24)).collect();
    let batched = e.generate(&reqs).unwrap();
    for (i, r) in reqs.iter().enumerate() {
        let single = e.generate(std::slice::from_ref(r)).unwrap();
        assert_eq!(single[0][0].generated_tokens, 24);
        assert_eq!(batched[i][0], single[0][0], "{arch} {dtype:?}: prompt {i} differs when batched");
    }
    // Something was generated, and not the same thing for every prompt.
    assert!(batched.iter().any(|c| c[0].text != batched[0][0].text));
}

fn common_tempdir() -> tempfile::TempDir {
    crate::common::tempdir()
}

#[test]
fn llama_f32_batched_greedy_equals_batch_of_one() {
    batched_equals_single("llama", DType::F32);
}

#[test]
fn qwen2_f32_batched_greedy_equals_batch_of_one() {
    batched_equals_single("qwen2", DType::F32);
}

#[test]
fn llama_f16_and_bf16_batched_greedy_equals_batch_of_one() {
    batched_equals_single("llama", DType::F16);
    batched_equals_single("llama", DType::BF16);
}

#[test]
fn finished_rows_leave_the_batch_without_changing_the_others() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 11);
    let e = engine(dir.path(), 16);
    // Different max_tokens: rows finish at different steps and are compacted out of the batch.
    let reqs: Vec<Request> = PROMPTS.iter().enumerate().map(|(i, p)| greedy(p, 3 + 7 * i)).collect();
    let batched = e.generate(&reqs).unwrap();
    for (i, r) in reqs.iter().enumerate() {
        let single = e.generate(std::slice::from_ref(r)).unwrap();
        assert_eq!(batched[i][0], single[0][0], "prompt {i}");
        assert_eq!(batched[i][0].finish, FinishReason::Length);
        assert_eq!(batched[i][0].generated_tokens, 3 + 7 * i);
    }
}

#[test]
fn stop_strings_cut_the_text_and_stream_matches_result() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 3);
    let e = engine(dir.path(), 16);
    let free = e.generate(&[greedy("abc", 30)]).unwrap()[0][0].text.clone();
    // Pick a stop string from the middle of the free-running text (two characters, so it may span tokens).
    let chars: Vec<char> = free.chars().collect();
    assert!(chars.len() >= 12, "{free:?}");
    let stop: String = chars[8..10].iter().collect();
    let mut req = greedy("abc", 30);
    req.params.stop = vec![stop.clone()];
    let mut streamed = String::new();
    let (out, stats) = e.generate_stream(&[req], |_, _, piece| streamed.push_str(piece)).unwrap();
    let c = &out[0][0];
    assert_eq!(c.finish, FinishReason::Stop);
    let cut = free.find(&stop).unwrap();
    assert_eq!(c.text, free[..cut]);
    assert_eq!(streamed, c.text);
    assert_eq!(stats.prompt_tokens, 3);
    assert!(stats.generated_tokens >= 1 && stats.peak_rss_mb > 0.0);
}

#[test]
fn samples_are_seeded_per_prompt_and_independent_of_the_batch() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 5);
    let e = engine(dir.path(), 16);
    let sampled = |prompt: &str, seed| {
        let params = SamplingParams {
            max_tokens: 12,
            temperature: 1.0,
            top_p: 0.95,
            top_k: 40,
            seed,
            ignore_eos: true,
            ..Default::default()
        };
        Request::new(Prompt::Text(prompt.into()), 3, params)
    };
    let alone = e.generate(&[sampled("def f():", 1)]).unwrap();
    let with_other = e.generate(&[sampled("def f():", 1), sampled("while True:", 2)]).unwrap();
    assert_eq!(alone[0], with_other[0]);
    // Nor does its place in the call: synth sends whichever items are ready, in any order, and its
    // cache keeps the answer under the request alone.
    let second = e.generate(&[sampled("while True:", 2), sampled("x = 1", 3), sampled("def f():", 1)]).unwrap();
    assert_eq!(alone[0], second[2]);
    assert_eq!(with_other[1], second[0]);
    assert_eq!(alone[0].len(), 3);
    // Three samples of one request differ from each other.
    assert!(alone[0][0].text != alone[0][1].text || alone[0][1].text != alone[0][2].text);
    let other_seed = e.generate(&[sampled("def f():", 99)]).unwrap();
    assert_ne!(alone[0], other_seed[0]);
    // Samples 1..3 asked for on their own are samples 1 and 2 of the request for 3 (how `generate`
    // raises `-n` on a finished run).
    let later = e.generate(&[Request { first: 1, n: 2, ..sampled("def f():", 1) }]).unwrap();
    assert_eq!(later[0], alone[0][1..]);
}

#[test]
fn a_prompt_near_the_end_of_the_context_does_not_cut_its_neighbours_short() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 9);
    let e = engine(dir.path(), 16);
    // The long prompt leaves a few of the 256 positions; the short ones ask for more than that.
    let long = greedy(&"y = 1\n".repeat(40), 40);
    let room = 256 - e.generate(&[greedy(&"y = 1\n".repeat(40), 1)]).unwrap()[0][0].prompt_tokens;
    assert!((1..40).contains(&room), "{room} positions left");
    let short: Vec<Request> = PROMPTS.iter().map(|p| greedy(p, 40)).collect();
    let alone: Vec<_> = short.iter().chain([&long]).map(|r| e.generate(std::slice::from_ref(r)).unwrap()).collect();
    // The first token comes from the prefill, the rest each take a place in the cache.
    assert_eq!(alone[4][0][0].generated_tokens, room + 1, "the long prompt stops where the context ends");
    let together = e.generate(&[&short[..], &[long]].concat()).unwrap();
    for (i, a) in alone.iter().enumerate() {
        assert_eq!(together[i][0], a[0][0], "prompt {i} beside a prompt that fills the context");
    }
    assert!(together[..4].iter().all(|c| c[0].generated_tokens == 40));
}

#[test]
fn concurrent_callers_share_the_model_thread() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 13);
    let e = Arc::new(engine(dir.path(), 4));
    let expected: Vec<_> = PROMPTS.iter().map(|p| e.generate(&[greedy(p, 10)]).unwrap()).collect();
    let handles: Vec<_> = PROMPTS
        .iter()
        .map(|p| {
            let e = e.clone();
            let p = p.to_string();
            std::thread::spawn(move || e.generate(&[greedy(&p, 10), greedy(&p, 10)]).unwrap())
        })
        .collect();
    for (h, want) in handles.into_iter().zip(expected) {
        let got = h.join().unwrap();
        assert_eq!(got[0], want[0]);
        assert_eq!(got[1], want[0]);
    }
}

#[test]
fn zero_max_tokens_is_empty_and_chat_needs_a_template() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 17);
    let e = engine(dir.path(), 16);
    let r = greedy("hello", 0);
    let out = e.generate(&[r]).unwrap();
    assert_eq!(out[0][0].text, "");
    assert_eq!(out[0][0].finish, FinishReason::Length);
    let err = e.generate(&[Request::new(Prompt::Chat(vec![]), 1, SamplingParams::default())]);
    assert!(err.unwrap_err().to_string().contains("chat template"));
    // Longer than the 256-token context, or empty: refused before it joins a batch, saying which.
    for (text, wanted) in
        [("y".repeat(300), "does not fit the model's context of 256"), (String::new(), "the prompt is empty")]
    {
        let err = e.generate(&[greedy(&text, 4)]).unwrap_err().to_string();
        assert!(err.contains(wanted), "{err}");
    }
    assert_eq!(e.generate(&[greedy("ok", 2)]).unwrap()[0][0].generated_tokens, 2);
}

#[test]
fn unsupported_architecture_and_missing_tensor_name_the_file() {
    let dir = common_tempdir();
    write_model(dir.path(), "llama", DType::F32, 1);
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("\"llama\"", "\"mamba\"");
    std::fs::write(&cfg, text).unwrap();
    let codec = TokenizerCodec::from_file(&dir.path().join("tokenizer.json"), &[EOS]).unwrap();
    let err = Engine::with_codec(dir.path(), Arc::new(codec), EngineOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("unsupported architecture `mamba`") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
}

/// The fused CPU forward (plain buffers, the engine's attention kernel) against the candle tensor path
/// it replaced on the CPU: prefill of two left-padded rows, then decode steps, logits within float
/// rounding.
fn fused_matches_tensor_path(arch: &str) {
    use unitcoder::engine::kv_cache::Padding;
    use unitcoder::engine::models::Model;
    use unitcoder::engine::weights::Weights;
    let dir = common_tempdir();
    write_model(dir.path(), arch, DType::F32, 11);
    let model = Model::load(&mut Weights::open(dir.path(), &Device::Cpu).unwrap()).unwrap();
    let (padding, ids, width) = Padding::left_pad(&[vec![5, 9, 33, 200, 17, 4], vec![71, 72]], 0);
    let mut fused = model.new_cache(2, width + 4).unwrap();
    let mut tensors = model.new_cache(2, width + 4).unwrap();
    let mut step = |tokens: &[u32], t: usize| {
        let a: Vec<Vec<f32>> = model.forward(tokens, t, &padding, &mut fused).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f32>> = model.forward_tensors(tokens, t, &padding, &mut tensors).unwrap().to_vec2().unwrap();
        for (ra, rb) in a.iter().zip(&b) {
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{arch}: {x} vs {y}");
            }
        }
    };
    step(&ids, width);
    for next in [[3, 250], [100, 1], [7, 7]] {
        step(&next, 1);
    }
}

#[test]
fn fused_cpu_forward_matches_the_tensor_path_for_llama_and_qwen2() {
    fused_matches_tensor_path("llama");
    fused_matches_tensor_path("qwen2");
}
