//! Engine tests on the real tiny GGUF (SmolLM2-135M-Instruct Q4_1): our greedy tokens equal
//! llama.cpp's for 32 steps of a chat prompt (fixture made by
//! `tests/fixtures/engine/make_llama_cpp_logits.py`), logits agree closely, and quantized batched runs are
//! reproducible, the engine's own kernels and candle's give the same greedy tokens, and the engine
//! answers the chat prompt of the issue with a Python function.

use candle_core::Device;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use unitcoder::engine::batch::{self, Detokenizer, RowSpec};
use unitcoder::engine::cards::TINY_CARD;
use unitcoder::engine::gguf_info::GgufHeader;
use unitcoder::engine::models::{MatmulKernels, Model};
use unitcoder::engine::weights::Weights;
use unitcoder::engine::{
    EngineError, FinishReason, Generator, LoadOptions, LoadedModel, Message, Prompt, Request, SamplingParams,
};

/// The tiny model file, pulled through the project's resolver into the shared test cache.
fn default_gguf() -> PathBuf {
    crate::models::tiny_model_path()
}

#[derive(serde::Deserialize)]
struct Fixture {
    prompt_ids: Vec<u32>,
    steps: Vec<Step>,
}

#[derive(serde::Deserialize)]
struct Step {
    token: u32,
    top5: Vec<(u32, f32)>,
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine/llama_cpp_greedy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Token ids only: these tests compare ids, not text (shared with `engine_qwen`).
pub(crate) struct NoText;

impl Detokenizer for NoText {
    fn decode(&self, _: &[u32]) -> Result<String, EngineError> {
        Ok(String::new())
    }
    fn is_stop_token(&self, _: u32) -> bool {
        false
    }
}

/// One copy of the model for the module's tests.
fn load() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut w = Weights::open(&default_gguf(), &Device::Cpu).unwrap();
        Model::load(&mut w).unwrap()
    })
}

/// The real-model tests run one at a time: each already uses every core (candle's CPU pool spins while
/// it waits, so running several at once on 2 cores slows all of them many times over).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static RUN: Mutex<()> = Mutex::new(());
    RUN.lock().unwrap_or_else(|e| e.into_inner())
}

fn greedy_rows(model: &Model, prompts: &[Vec<u32>], max_tokens: usize) -> Vec<Vec<u32>> {
    let params = std::sync::Arc::new(SamplingParams { max_tokens, ignore_eos: true, ..Default::default() });
    let rows: Vec<RowSpec> =
        (0..prompts.len()).map(|p| RowSpec { prompt: p, params: params.clone(), sample: 0 }).collect();
    let (out, _) = batch::generate(model, &NoText, prompts, &rows, &mut |_, _| {}).unwrap();
    out.into_iter().map(|o| o.tokens).collect()
}

#[test]
fn greedy_tokens_and_logits_match_llama_cpp() {
    let _one = one_at_a_time();
    let fx = fixture();
    let model = load();
    let c = model.config();
    assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.context), (30, 576, 9, 3, 8192));
    assert_eq!(c.rope.theta, 100_000.0);
    let ours = greedy_rows(model, std::slice::from_ref(&fx.prompt_ids), fx.steps.len());
    let theirs: Vec<u32> = fx.steps.iter().map(|s| s.token).collect();
    assert_eq!(ours[0], theirs);

    // The prefill logits themselves: llama.cpp's top-5 tokens score within a small margin here too.
    let mut cache = model.new_cache(1, fx.prompt_ids.len() + 1).unwrap();
    let padding = unitcoder::engine::kv_cache::Padding::new(vec![0]);
    let logits = model.forward(&fx.prompt_ids, fx.prompt_ids.len(), &padding, &mut cache).unwrap();
    let logits: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
    for &(id, want) in &fx.steps[0].top5 {
        let got = logits[id as usize];
        assert!((got - want).abs() < 0.5, "token {id}: ours {got}, llama.cpp {want}");
    }
}

/// `--dequantize`: a model id of its own, every product on f32 weights (none on the quantized kernels),
/// and refused beside the other activation choices and for a server.
#[test]
fn dequantized_weights_have_their_own_model_id_and_no_quantized_product() {
    let _one = one_at_a_time();
    let mut options = LoadOptions::new(crate::models::test_settings());
    options.engine.kernels = MatmulKernels::Dequantized;
    let loaded = unitcoder::engine::load(TINY_CARD, options, &unitcoder::progress::Silent).unwrap();
    let LoadedModel::Engine(engine) = loaded else { panic!("a card is loaded in-process") };
    assert_eq!(engine.model_id(), "smollm2-135m+f32");
    drop(engine);
    let mut w = Weights::open(&default_gguf(), &Device::Cpu).unwrap();
    let model = Model::load_with(&mut w, MatmulKernels::Dequantized).unwrap();
    assert_eq!(model.fast_layers(), (0, 30 * 7 + 1), "every product widened to f32");
    let fx = fixture();
    let ours = greedy_rows(&model, std::slice::from_ref(&fx.prompt_ids), 4);
    assert_eq!(ours[0].len(), 4);
    for (extra, wanted) in [
        (&["--llama-cpp-activations"][..], "cannot be used with"),
        (&["--candle-kernels"][..], "cannot be used with"),
        (&["--quantize", "q8_0"][..], "cannot be used with"),
    ] {
        let o = crate::common::unitcoder(&[&["generate", "--prompt", "a", "--dequantize"][..], extra].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(wanted), "{extra:?}");
    }
    refused_for_a_server("--dequantize");
}

/// `--llama-cpp-activations`: a model id of its own (so caches never mix the two roundings), and on
/// this model (Q4_1 and Q8_0, where llama.cpp's `q8_1`/`q8_0` differ from our rounding only in their
/// f16 scales) the same greedy tokens as llama.cpp.
#[test]
fn llama_cpp_activations_have_their_own_model_id_and_follow_llama_cpp() {
    let _one = one_at_a_time();
    let mut options = LoadOptions::new(crate::models::test_settings());
    options.engine.kernels = MatmulKernels::LlamaCppActivations;
    let loaded = unitcoder::engine::load(TINY_CARD, options, &unitcoder::progress::Silent).unwrap();
    let LoadedModel::Engine(engine) = loaded else { panic!("a card is loaded in-process") };
    assert_eq!(engine.model_id(), "smollm2-135m+llama-cpp-acts");
    drop(engine);
    let fx = fixture();
    let mut w = Weights::open(&default_gguf(), &Device::Cpu).unwrap();
    let model = Model::load_with(&mut w, MatmulKernels::LlamaCppActivations).unwrap();
    assert_eq!(model.fast_layers(), (30 * 7 + 1, 30 * 7 + 1), "still the engine's kernels");
    let ours = greedy_rows(&model, std::slice::from_ref(&fx.prompt_ids), fx.steps.len());
    let theirs: Vec<u32> = fx.steps.iter().map(|s| s.token).collect();
    assert_eq!(ours[0], theirs);
    // A server rounds as it does: the flag is refused for one, as --quantize is.
    refused_for_a_server("--llama-cpp-activations");
}

/// `generate --model SERVER FLAG` is a usage error that says the flag is for in-process models.
fn refused_for_a_server(flag: &str) {
    let o = crate::common::unitcoder(&["generate", "--model", "openai:http://127.0.0.1:9#m", "--prompt", "a", flag]);
    assert_eq!(o.status.code(), Some(2), "{flag}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("in-process"), "{flag}");
}

#[test]
fn quantized_batched_runs_are_reproducible() {
    let _one = one_at_a_time();
    let fx = fixture();
    let model = load();
    let prompts = vec![fx.prompt_ids.clone(), fx.prompt_ids[..9].to_vec(), fx.prompt_ids[5..].to_vec()];
    let first = greedy_rows(model, &prompts, 16);
    let second = greedy_rows(model, &prompts, 16);
    assert_eq!(first, second);
    // The full prompt's row still follows llama.cpp while padded next to shorter prompts... at least at
    // the start (quantized activations of padded rows may drift later).
    let theirs: Vec<u32> = fx.steps.iter().take(8).map(|s| s.token).collect();
    assert_eq!(first[0][..8], theirs[..]);
}

#[test]
fn tiny_model_answers_the_chat_prompt_with_a_function() {
    let _one = one_at_a_time();
    // Through the one loader every command uses; it reads the GGUF header once for the tokenizer,
    // the chat template and the weights.
    let parses = GgufHeader::parses_on_this_thread();
    let options = LoadOptions::new(crate::models::test_settings());
    let loaded = unitcoder::engine::load(TINY_CARD, options, &unitcoder::progress::Silent).unwrap();
    assert_eq!(GgufHeader::parses_on_this_thread() - parses, 1, "one load, one parse of the GGUF header");
    let LoadedModel::Engine(engine) = loaded else { panic!("a card is loaded in-process") };
    assert!(engine.has_chat_template());
    assert_eq!(engine.model_id(), "smollm2-135m");
    let ask = Message::new("user", "Write a Python function that returns the sum of a list.");
    let req = Request::new(Prompt::Chat(vec![ask]), 1, SamplingParams { max_tokens: 200, ..Default::default() });
    let c = &engine.generate(&[req]).unwrap()[0][0];
    // done_when.rs runs the same request through the binary and the reply's code in the sandbox.
    assert_eq!(c.finish, FinishReason::Eos, "{c:?}");
    let code = c.text.split("```").nth(1).unwrap_or(&c.text);
    assert!(code.contains("def ") && code.contains("return"), "{}", c.text);
    assert!(code.contains("sum") || code.contains("for "), "{}", c.text);
}

#[test]
fn own_kernels_and_candles_give_the_same_greedy_tokens() {
    let _one = one_at_a_time();
    let fx = fixture();
    let fast = load();
    // Every projection of the tiny model (Q4_1 blocks, the tied Q8_0 table) runs on our kernels.
    let (on_fast, all) = fast.fast_layers();
    assert_eq!((on_fast, all), (30 * 7 + 1, 30 * 7 + 1));
    let mut w = Weights::open(&default_gguf(), &Device::Cpu).unwrap();
    let candle = Model::load_with(&mut w, MatmulKernels::Candle).unwrap();
    assert_eq!(candle.fast_layers().0, 0);
    let prompts = vec![fx.prompt_ids.clone(), fx.prompt_ids[4..].to_vec()];
    let ours = greedy_rows(fast, &prompts, 32);
    let theirs = greedy_rows(&candle, &prompts, 32);
    assert_eq!(ours, theirs);
    // Both quantize activations to int8 blocks the way llama.cpp does, so they also follow it.
    let cpp: Vec<u32> = fx.steps.iter().take(32).map(|s| s.token).collect();
    assert_eq!(ours[0], cpp);
}

#[test]
fn fused_cpu_forward_follows_the_tensor_path() {
    let _one = one_at_a_time();
    let fx = fixture();
    let model = load();
    let padding = unitcoder::engine::kv_cache::Padding::new(vec![0]);
    let n = fx.prompt_ids.len();
    let mut fused = model.new_cache(1, n + 8).unwrap();
    let mut tensors = model.new_cache(1, n + 8).unwrap();
    let mut worst = 0.0f32;
    let mut next_f = 0;
    for step in 0..8 {
        let (ids, t) = if step == 0 { (fx.prompt_ids.clone(), n) } else { (vec![next_f], 1) };
        let a: Vec<f32> = model.forward(&ids, t, &padding, &mut fused).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        let b: Vec<f32> =
            model.forward_tensors(&ids, t, &padding, &mut tensors).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        worst = a.iter().zip(&b).fold(worst, |w, (x, y)| w.max((x - y).abs()));
        let mean: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        assert!(mean < 0.5, "step {step}: mean logit difference {mean}");
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap() as u32;
        next_f = argmax(&a);
        assert_eq!(next_f, argmax(&b), "step {step}");
    }
    // Activations are quantized to int8 before every product, so a last-bit difference upstream (sums
    // taken in another order) can move an activation by a whole quantization step, and 30 layers
    // amplify that: both paths land ~0.3 from llama.cpp's logits (of ~35) and from each other, and agree
    // on every greedy token. A real fault (a wrong position, mask or cache column) moves logits by whole
    // units and changes tokens.
    assert!(worst < 2.5, "largest logit difference {worst}");
}

#[test]
fn a_prompt_prefilled_in_chunks_gives_what_one_pass_gives() {
    // Long prompts are prefilled PREFILL_CHUNK columns at a time (bounded memory); every query reads
    // its keys from the cache in fixed chunks (the attention kernel), so the logits and the cache must
    // not depend, to the last bit, on where the prompt was cut.
    let _one = one_at_a_time();
    let fx = fixture();
    let model = load();
    let prompt: Vec<u32> = fx.prompt_ids.iter().chain(&fx.prompt_ids).chain(&fx.prompt_ids).copied().collect();
    let n = prompt.len();
    assert!(n > 48, "the prompt should span several chunks: {n} tokens");
    let run = |chunk: usize| {
        let mut cache = model.new_cache(1, n).unwrap();
        let logits: Vec<f32> =
            batch::prefill_one(model, &prompt, &mut cache, chunk).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        assert_eq!(cache.len(), n, "chunk {chunk}: the cache holds the whole prompt");
        let kv = cache.host_mut().unwrap();
        (logits, kv.keys.clone(), kv.values.clone())
    };
    let (whole, keys, values) = run(n);
    // Chunks of 1 are decode steps: a prompt prefilled equals the same tokens fed one at a time.
    for chunk in [1, 16, 25, batch::PREFILL_CHUNK] {
        let (logits, k, v) = run(chunk);
        let worst = whole.iter().zip(&logits).fold(0.0f32, |w, (a, b)| w.max((a - b).abs()));
        assert!(logits == whole, "chunk {chunk}: logits differ from one pass by up to {worst}");
        assert!(k == keys && v == values, "chunk {chunk}: the cache differs from one pass");
    }
}
