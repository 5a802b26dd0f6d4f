//! Qwen2.5-Coder, the default model (1.5B-Instruct Q4_K_M) and its small card (0.5B-Instruct), against
//! llama.cpp: our GGUF tokenizer gives llama.cpp's ids on the SmolLM2 string set plus every special token
//! of the vocabulary, our greedy 32 tokens of a ChatML code request equal llama.cpp's and the logits stay
//! close at every step, and on the default a prompt's greedy tokens do not depend on the batch it runs in.
//! Against each file dequantized to f32 (the fixtures' `reference`), our logits are closer than
//! llama.cpp's: both round activations to int8, ours in blocks of 32, llama.cpp's in blocks of 256 against
//! K-quant weights; with llama.cpp's rounding (`--llama-cpp-activations`) ours lands as far from the
//! reference as llama.cpp, so the rounding is what makes the difference.
//!
//! The fixtures are made by `tests/fixtures/tokenizer/make_fixture.py --cases-only` and
//! `tests/fixtures/engine/make_llama_cpp_logits.py --prompt qwen --reference F32.gguf` (llama-cpp-python
//! 0.3.36; F32.gguf from `scripts/dequantize-gguf`), one pair per model file, and name the file's sha256.

use crate::engine_gguf::NoText;
use candle_core::Device;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use unitcoder::engine::batch::{self, RowSpec};
use unitcoder::engine::cards::{self, Source};
use unitcoder::engine::kv_cache::Padding;
use unitcoder::engine::models::{MatmulKernels, Model};
use unitcoder::engine::tokenizer::Tok;
use unitcoder::engine::weights::Weights;
use unitcoder::engine::SamplingParams;

/// The default card and the small one.
const DEFAULT: &str = "qwen2.5-coder-1.5b";
const SMALL: &str = "qwen2.5-coder-0.5b";

/// The card's GGUF file, pulled through the project's resolver into the shared test cache.
fn gguf(card: &str) -> PathBuf {
    crate::models::card_model_path(card)
}

fn read_json(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Fails unless the fixture was made from the card's file: the card's sha256, which every pull checks.
fn assert_made_from(fixture: &Value, card: &str) {
    let sha = match cards::find(card, None).unwrap().source {
        Source::PypiParts { sha256, .. } => Some(sha256),
        Source::Pypi { sha256, .. } | Source::Hf { sha256, .. } => sha256,
    };
    let sha = sha.unwrap_or_else(|| panic!("card {card} has no sha256 to tie its fixtures to"));
    assert_eq!(fixture["model_sha256"].as_str(), Some(sha.as_str()), "fixture made from another file than {card}'s");
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn tokenizer_ids_equal_llama_cpp_on_both_cards() {
    for card in [DEFAULT, SMALL] {
        let fx = read_json(&format!("tokenizer/{card}.json"));
        assert_made_from(&fx, card);
        let tok = Tok::from_gguf_file(&gguf(card)).unwrap();
        let cases = fx["cases"].as_array().unwrap();
        // The 14 strings of the SmolLM2 fixture, the vocabulary's special tokens (as specials and as
        // text) and a fill-in-the-middle prompt.
        assert_eq!(cases.len(), 17, "{card}");
        let specials = cases.iter().find(|c| c["name"] == "vocab_specials").unwrap()["text"].as_str().unwrap();
        for t in ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|repo_name|>"] {
            assert!(specials.contains(t), "{card}: {t} missing from {specials}");
        }
        let mut mismatches = Vec::new();
        for c in cases {
            let text = c["text"].as_str().unwrap();
            let want = ids(&c["ids"]);
            let got = tok.encode(text, c["parse_special"].as_bool().unwrap()).unwrap();
            if got != want {
                mismatches.push(format!("{card} {}:\n want {want:?}\n got  {got:?}", c["name"]));
            }
            assert_eq!(tok.decode(&got, false).unwrap(), text, "{card}: round trip of {}", c["name"]);
            assert_eq!(c["decoded"].as_str().unwrap(), text, "{card}: llama.cpp round trip of {}", c["name"]);
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}

/// The real-model tests run one at a time: each already uses every core.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static RUN: Mutex<()> = Mutex::new(());
    RUN.lock().unwrap_or_else(|e| e.into_inner())
}

/// One copy of each card's model for the module's tests.
fn load(card: &str) -> &'static Model {
    static DEFAULT_MODEL: OnceLock<Model> = OnceLock::new();
    static SMALL_MODEL: OnceLock<Model> = OnceLock::new();
    let cell = if card == DEFAULT { &DEFAULT_MODEL } else { &SMALL_MODEL };
    cell.get_or_init(|| {
        let mut w = Weights::open(&gguf(card), &Device::Cpu).unwrap();
        Model::load(&mut w).unwrap()
    })
}

/// Greedy tokens of `rows`, each `(index into prompts, max_tokens)`, run as one batch of the prompts
/// the rows name (prefilled in the order the rows name them); rows naming one prompt twice share its prefill (the fan-out of n samples).
fn greedy(model: &Model, prompts: &[Vec<u32>], rows: &[(usize, usize)]) -> Vec<Vec<u32>> {
    let mut used: Vec<usize> = Vec::new();
    for &(prompt, _) in rows {
        if !used.contains(&prompt) {
            used.push(prompt);
        }
    }
    let batch_prompts: Vec<Vec<u32>> = used.iter().map(|&i| prompts[i].clone()).collect();
    let specs: Vec<RowSpec> = rows
        .iter()
        .map(|&(prompt, max_tokens)| RowSpec {
            prompt: used.iter().position(|&u| u == prompt).unwrap(),
            params: Arc::new(SamplingParams { max_tokens, ignore_eos: true, ..Default::default() }),
            sample: 0,
        })
        .collect();
    let (out, _) = batch::generate(model, &NoText, &batch_prompts, &specs, &mut |_, _| {}).unwrap();
    out.into_iter().map(|o| o.tokens).collect()
}

/// Our logits along llama.cpp's greedy path (prefill, then one decode step per fixture token).
fn forced_logits(model: &Model, prompt: &[u32], path: &[u32]) -> Vec<Vec<f32>> {
    let padding = Padding::new(vec![0]);
    let mut cache = model.new_cache(1, prompt.len() + path.len()).unwrap();
    let mut out = Vec::with_capacity(path.len());
    let mut input = prompt.to_vec();
    for &next in path {
        let logits = model.forward(&input, input.len(), &padding, &mut cache).unwrap();
        out.push(logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap());
        input = vec![next];
    }
    out
}

/// Largest difference allowed between our logit and llama.cpp's for llama.cpp's top-5 tokens, at any
/// of the 32 steps. Both sides quantize activations to int8 before every product and keep an f16 KV
/// cache, but they add in other orders, and a last-bit difference can move an activation by a whole
/// quantization step. Measured: 0.271 on the 1.5B, 0.267 on the 0.5B, for top logits of 16-32; a
/// wrong position, mask or cache column moves logits by whole units.
const LOGIT_TOLERANCE: f32 = 0.5;

fn greedy_and_logits_match_llama_cpp(card: &str, layers: usize, embd: usize) {
    let _one = one_at_a_time();
    let fx = read_json(&format!("engine/{card}.greedy.json"));
    assert_made_from(&fx, card);
    let model = load(card);
    let c = model.config();
    assert_eq!((c.architecture.as_str(), c.n_layer, c.n_embd, c.qkv_bias), ("qwen2", layers, embd, true));
    let prompt = ids(&fx["prompt_ids"]);
    let tok = Tok::from_gguf_file(&gguf(card)).unwrap();
    assert_eq!(tok.encode_prompt(fx["prompt"].as_str().unwrap(), true).unwrap(), prompt, "{card}: prompt ids");
    let steps = fx["steps"].as_array().unwrap();
    let theirs: Vec<u32> = steps.iter().map(|s| s["token"].as_u64().unwrap() as u32).collect();
    assert_eq!(theirs.len(), 32);

    let ours = greedy(model, std::slice::from_ref(&prompt), &[(0, theirs.len())]);
    assert_eq!(ours[0], theirs, "{card}: ours {:?}\nllama.cpp {:?}", tok.decode(&ours[0], false), fx["text"]);

    let mut worst = (0.0f32, 0, 0);
    for (step, (s, logits)) in steps.iter().zip(forced_logits(model, &prompt, &theirs)).enumerate() {
        for pair in s["top5"].as_array().unwrap() {
            let (id, want) = (pair[0].as_u64().unwrap() as usize, pair[1].as_f64().unwrap() as f32);
            let diff = (logits[id] - want).abs();
            if diff > worst.0 {
                worst = (diff, step, id);
            }
        }
    }
    eprintln!("{card}: largest logit difference from llama.cpp {:.4} (step {}, token {})", worst.0, worst.1, worst.2);
    assert!(worst.0 < LOGIT_TOLERANCE, "{card}: logit of token {} at step {} off by {}", worst.2, worst.1, worst.0);
}

#[test]
fn default_greedy_tokens_and_logits_match_llama_cpp() {
    greedy_and_logits_match_llama_cpp(DEFAULT, 28, 1536);
}

#[test]
fn small_greedy_tokens_and_logits_match_llama_cpp() {
    greedy_and_logits_match_llama_cpp(SMALL, 24, 896);
}

/// Root mean square of (ours - reference) and (llama.cpp - reference) over the fixture's 32 steps and
/// top-5 tokens, where the reference is the same file with every tensor dequantized to f32
/// (`scripts/dequantize-gguf`), computed by llama.cpp without rounding activations to int8; printed
/// with the RMS of (ours - llama.cpp).
fn distances_to_the_f32_reference(card: &str, model: &Model) -> (f32, f32) {
    let fx = read_json(&format!("engine/{card}.greedy.json"));
    assert_made_from(&fx, card);
    let steps = fx["steps"].as_array().unwrap();
    let path: Vec<u32> = steps.iter().map(|s| s["token"].as_u64().unwrap() as u32).collect();
    let ours = forced_logits(model, &ids(&fx["prompt_ids"]), &path);
    let (mut sq_ours, mut sq_llama, mut sq_apart, mut n) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (s, logits) in steps.iter().zip(&ours) {
        let reference = s["reference"].as_array().unwrap_or_else(|| panic!("{card}: fixture without `reference`"));
        assert_eq!(s["reference_top"], s["token"], "{card}: the reference leaves the greedy path");
        for (llama, r) in s["top5"].as_array().unwrap().iter().zip(reference) {
            let id = r[0].as_u64().unwrap() as usize;
            assert_eq!(llama[0].as_u64().unwrap() as usize, id);
            let (r, llama) = (r[1].as_f64().unwrap(), llama[1].as_f64().unwrap());
            sq_ours += (logits[id] as f64 - r).powi(2);
            sq_llama += (llama - r).powi(2);
            sq_apart += (logits[id] as f64 - llama).powi(2);
            n += 1;
        }
    }
    let rms = |sq: f64| (sq / n as f64).sqrt() as f32;
    let (ours, llama) = (rms(sq_ours), rms(sq_llama));
    eprintln!(
        "{card}: logits' RMS distance to the f32 reference: ours {ours:.4}, llama.cpp {llama:.4}; ours to llama.cpp's {:.4}",
        rms(sq_apart)
    );
    (ours, llama)
}

/// Measured (3 Dec): 1.5B ours 0.041, llama.cpp 0.080 (its weights are Q4_K and Q6_K, where llama.cpp's
/// activation blocks are 256 wide); 0.5B ours 0.048, llama.cpp 0.066 (mostly Q5_0 and Q8_0, where both
/// use blocks of 32, and 24 K-quant tensors).
#[test]
fn logits_are_closer_to_the_f32_reference_than_llama_cpps() {
    let _one = one_at_a_time();
    let (ours, llama) = distances_to_the_f32_reference(DEFAULT, load(DEFAULT));
    assert!(ours < 0.75 * llama, "{DEFAULT}: ours {ours}, llama.cpp {llama}");
    let (ours, llama) = distances_to_the_f32_reference(SMALL, load(SMALL));
    assert!(ours < llama, "{SMALL}: ours {ours}, llama.cpp {llama}");
}

/// The controlled experiment behind the test above: the same engine with only the activation
/// rounding switched to llama.cpp's (`--llama-cpp-activations`) lands as far from the f32 reference as
/// llama.cpp does, so the rounding granularity is what makes ours closer. (It does not bring the logits
/// to llama.cpp's own: the two engines' hidden states differ by more than a rounding step after a few
/// layers, so the roundings of the two are not the same ones.) Measured (4 Dec): 1.5B ours 0.041,
/// llama.cpp's rounding 0.093, llama.cpp 0.080; 0.5B 0.048, 0.067, 0.066.
#[test]
fn llama_cpp_activation_rounding_is_as_far_from_the_f32_reference_as_llama_cpp() {
    let _one = one_at_a_time();
    for (card, widens) in [(DEFAULT, 1.5), (SMALL, 1.2)] {
        let (ours, llama) = distances_to_the_f32_reference(card, load(card));
        let mut w = Weights::open(&gguf(card), &Device::Cpu).unwrap();
        let llama_like = Model::load_with(&mut w, MatmulKernels::LlamaCppActivations).unwrap();
        let (rounded, _) = distances_to_the_f32_reference(card, &llama_like);
        eprintln!("{card}: with llama.cpp's activation rounding {rounded:.4} (ours {ours:.4}, llama.cpp {llama:.4})");
        assert!(rounded > widens * ours, "{card}: {rounded} with llama.cpp's rounding, {ours} with ours");
        assert!(rounded > 0.75 * llama && rounded < 1.5 * llama, "{card}: {rounded}, llama.cpp {llama}");
    }
}

/// What parts our greedy replies from llama.cpp's on the same file. With activation rounding taken out
/// (every weight widened to f32, `--dequantize`), our forward and llama.cpp's on the file's f32 copy
/// (`scripts/dequantize-gguf`, the fixtures' `reference`) agree to about a thousandth of a logit along
/// the whole greedy path: norms, RoPE, the f16 KV cache, attention and SiLU compute the same model.
/// With the quantized weights, rounding activations to int8 before every product turns last-bit
/// differences (summation order, an `exp` approximation) into whole rounding steps that compound over
/// the layers: two engines with the same rounding formats, candle's kernels and ours with
/// `--llama-cpp-activations`, land as far from each other as from llama.cpp. Measured (6 Dec): f32
/// weights 0.0012 (0.5B) and 0.0010 (1.5B); same formats, candle to ours 0.084 and 0.127; ours to
/// llama.cpp 0.079 and 0.113.
#[test]
fn last_bit_differences_are_what_part_ours_from_llama_cpp() {
    let _one = one_at_a_time();
    for card in [SMALL, DEFAULT] {
        let fx = read_json(&format!("engine/{card}.greedy.json"));
        assert_made_from(&fx, card);
        let steps = fx["steps"].as_array().unwrap();
        let path: Vec<u32> = steps.iter().map(|s| s["token"].as_u64().unwrap() as u32).collect();
        let logits = |kernels: MatmulKernels| {
            let mut w = Weights::open(&gguf(card), &Device::Cpu).unwrap();
            forced_logits(&Model::load_with(&mut w, kernels).unwrap(), &ids(&fx["prompt_ids"]), &path)
        };
        // RMS distance over llama.cpp's top 5 of every step; `other(step, id)` is the other side's logit.
        let apart = |ours: &[Vec<f32>], other: &dyn Fn(usize, usize) -> f64, key: &str| {
            let (mut sq, mut n, mut worst) = (0.0f64, 0usize, 0.0f64);
            for (i, s) in steps.iter().enumerate() {
                for t in s[key].as_array().unwrap() {
                    let id = t[0].as_u64().unwrap() as usize;
                    let gap = (ours[i][id] as f64 - other(i, id)).abs();
                    (sq, n, worst) = (sq + gap * gap, n + 1, worst.max(gap));
                }
            }
            ((sq / n as f64).sqrt(), worst)
        };
        let fixture = |key: &'static str| {
            move |i: usize, id: usize| {
                let found = steps[i][key].as_array().unwrap().iter().find(|t| t[0].as_u64() == Some(id as u64));
                found.unwrap()[1].as_f64().unwrap()
            }
        };
        let (f32_gap, f32_worst) = apart(&logits(MatmulKernels::Dequantized), &fixture("reference"), "reference");
        let ours = logits(MatmulKernels::LlamaCppActivations);
        let candle = logits(MatmulKernels::Candle);
        let (same_formats, _) = apart(&candle, &|i, id| ours[i][id] as f64, "top5");
        let (to_llama, _) = apart(&ours, &fixture("top5"), "top5");
        eprintln!(
            "{card}: f32 weights, ours to llama.cpp's f32 copy {f32_gap:.4} (largest {f32_worst:.4}); \
             llama.cpp's formats, candle's kernels to ours {same_formats:.4}, ours to llama.cpp {to_llama:.4}"
        );
        assert!(f32_gap < 0.005 && f32_worst < 0.02, "{card}: f32 weights {f32_gap}, largest {f32_worst}");
        assert!(same_formats > 10.0 * f32_gap && to_llama > 10.0 * f32_gap, "{card}: {same_formats}, {to_llama}");
        assert!(same_formats > 0.5 * to_llama, "{card}: same formats {same_formats}, to llama.cpp {to_llama}");
    }
}

fn chatml(user: &str) -> String {
    format!(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

#[test]
fn default_greedy_tokens_do_not_depend_on_the_batch() {
    let _one = one_at_a_time();
    assert_eq!(DEFAULT, cards::DEFAULT_CARD, "batching is checked on the default model");
    let fx = read_json(&format!("engine/{DEFAULT}.greedy.json"));
    let tok = Tok::from_gguf_file(&gguf(DEFAULT)).unwrap();
    let model = load(DEFAULT);
    // The fixture's code request and neighbours shorter and longer than it, so that across the batches
    // below each runs unpadded and padded, first, in the middle and last, beside rows that end early.
    // The story's greedy choices include near ties (top-2 margins under 0.1): padded by 68 columns it
    // changed at token 9 while the prefill attention of a padded row summed in other lanes.
    let short = "Hi";
    let medium = "def fib(n):\n    # complete this";
    let story = "Write a short story opening about a robot who learns to paint.";
    let long = "Write a Rust function `parse_csv_ints(line: &str) -> Result<Vec<i64>, String>` that splits a \
                line on commas, trims spaces, parses each field as an integer and reports the first field \
                that fails with its index. Then write three unit tests: an empty line, negative numbers, \
                and a field that is not a number. Explain the error handling in two sentences.";
    let prompts: Vec<Vec<u32>> = std::iter::once(ids(&fx["prompt_ids"]))
        .chain([short, medium, story, long].iter().map(|u| tok.encode_prompt(&chatml(u), true).unwrap()))
        .collect();
    let (p, s, m, st, l) = (0, 1, 2, 3, 4);
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    assert!(lens[s] < lens[m] && lens[m] < lens[p] && lens[p] < lens[l] && lens[st] < lens[l], "{lens:?}");
    const N: usize = 32;

    // Each prompt alone.
    let alone: Vec<Vec<u32>> =
        (0..prompts.len()).map(|i| greedy(model, &prompts[i..=i], &[(0, N)]).remove(0)).collect();
    let theirs: Vec<u32> =
        fx["steps"].as_array().unwrap().iter().map(|s| s["token"].as_u64().unwrap() as u32).collect();
    assert_eq!(alone[p], theirs, "alone, the default follows llama.cpp");

    // Rows as (prompt, max_tokens); every row must give its prompt's tokens alone (up to max_tokens).
    let batches: Vec<Vec<(usize, usize)>> = vec![
        vec![(s, N), (p, N)],
        vec![(l, N), (p, N), (st, N)],
        // Two samples of one prompt share its prefill; the short row ends after 3 tokens and leaves the
        // batch (and the KV cache) while the others go on.
        vec![(m, N), (p, N), (p, N), (st, N), (l, N), (s, 3)],
    ];
    let mut differences = Vec::new();
    for (b, rows) in batches.iter().enumerate() {
        let got = greedy(model, &prompts, rows);
        let width = rows.iter().map(|&(q, _)| lens[q]).max().unwrap();
        for (r, (&(prompt, max), tokens)) in rows.iter().zip(&got).enumerate() {
            if tokens[..] != alone[prompt][..max] {
                let at = tokens.iter().zip(&alone[prompt]).position(|(a, b)| a != b).unwrap_or(max);
                differences.push(format!(
                    "batch {b} (size {}), row {r} (prompt {prompt}, {} tokens, padded by {}): first differs at \
                     token {at}\n batched {tokens:?}\n alone   {:?}",
                    rows.len(),
                    lens[prompt],
                    width - lens[prompt],
                    &alone[prompt][..max]
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
