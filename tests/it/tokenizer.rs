//! The tokenizer built from GGUF metadata gives exactly llama.cpp's ids, and the chat template renders
//! exactly what Jinja2 renders (as HF configures it): both checked against
//! `tests/fixtures/tokenizer/smollm2-135m.json`, made by `make_fixture.py` with llama-cpp-python.

use crate::models::tiny_model_path;
use serde_json::Value;
use unitcoder::engine::chat_template::ChatTemplate;
use unitcoder::engine::gguf_info::GgufHeader;
use unitcoder::engine::tokenizer::Tok;
use unitcoder::engine::{fetch, Message};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/smollm2-135m.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn gguf_tokenizer_ids_equal_llama_cpp_and_decoding_round_trips() {
    let fx = fixture();
    let model = tiny_model_path();
    assert_eq!(fx["model_sha256"], fetch::file_digest(&model).unwrap().1, "fixture made from another file");
    let tok = Tok::from_gguf_file(&model).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    let mut mismatches = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let special = c["parse_special"].as_bool().unwrap();
        let want: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.encode(text, special).unwrap();
        if got != want {
            mismatches.push(format!("{}: want {want:?}\n got {got:?}", c["name"]));
        }
        assert_eq!(tok.decode(&got, false).unwrap(), text, "round trip of {}", c["name"]);
        assert_eq!(c["decoded"].as_str().unwrap(), text, "llama.cpp round trip of {}", c["name"]);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn special_tokens_are_parsed_only_when_asked_and_facts_match_the_metadata() {
    let tok = Tok::from_gguf_file(&tiny_model_path()).unwrap();
    let prompt = "<|im_start|>user\nhi<|im_end|>";
    let special = tok.encode(prompt, true).unwrap();
    assert_eq!(special.first(), Some(&1));
    assert!(special.contains(&2));
    let plain = tok.encode(prompt, false).unwrap();
    assert!(!plain.contains(&1) && !plain.contains(&2), "{plain:?}");
    assert_eq!(tok.decode(&special, true).unwrap(), "user\nhi");
    // SmolLM2: bos 1 (<|im_start|>), eos 2 (<|im_end|>), add_bos false; <|endoftext|> also ends generation.
    assert_eq!((tok.bos_id(), tok.add_bos()), (Some(1), false));
    assert_eq!(tok.eos_token(), Some("<|im_end|>"));
    assert!(tok.is_eos(2) && tok.is_eos(0) && !tok.is_eos(1));
    assert_eq!(tok.encode_prompt("def", false).unwrap(), tok.encode("def", false).unwrap());
    assert_eq!(tok.vocab_size(), 49152);
}

/// Plain (user-text) encoding runs the tokenizer's own model through a copy of its added tokens only;
/// it must give what a whole second tokenizer with special tokens treated as text gives.
#[test]
fn plain_encoding_equals_a_tokenizer_that_treats_special_tokens_as_text() {
    let tok = Tok::from_gguf_file(&tiny_model_path()).unwrap();
    let mut twin = tok.inner().clone();
    twin.set_encode_special_tokens(true);
    let texts = [
        "<|im_start|>user\nhi<|im_end|>",
        "def f(x):\n    return x  # <|endoftext|>",
        "  leading spaces, digits 12345 and \u{00e9}t\u{00e9} \u{1F600}",
        "<|im_start|><|im_start|>",
        "",
    ];
    for text in texts {
        let want = twin.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(tok.encode(text, false).unwrap(), want, "{text:?}");
    }
    // Special text stays text there, and is parsed when asked.
    let plain = tok.encode(texts[0], false).unwrap();
    assert!(plain.len() > 4 && !plain.contains(&1), "{plain:?}");
    assert_eq!(tok.encode(texts[0], true).unwrap()[0], 1);
}

#[test]
fn chat_template_from_gguf_renders_exactly_as_jinja2() {
    let fx = fixture();
    let header = GgufHeader::read(&tiny_model_path()).unwrap();
    let tok = Tok::from_gguf(&header).unwrap();
    let tpl = ChatTemplate::from_gguf(&header, &tok).unwrap().expect("SmolLM2 has a chat template");
    let chats = fx["chats"].as_array().unwrap();
    assert!(chats.len() >= 3);
    for c in chats {
        let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
        let got = tpl.render(&msgs, c["add_generation_prompt"].as_bool().unwrap()).unwrap();
        assert_eq!(got, c["text"].as_str().unwrap(), "chat {}", c["name"]);
    }
    // With no system message, SmolLM2's template inserts its default system prompt.
    let first = chats[0]["text"].as_str().unwrap();
    assert!(first.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "{first}");
    assert!(first.ends_with("<|im_start|>assistant\n"), "{first}");
}

/// Writes a tensor-less GGUF with the default model's metadata but `tokenizer.ggml.pre = pre`, as
/// `make_fixture.py` does for llama.cpp.
fn relabelled(pre: &str, dir: &std::path::Path) -> std::path::PathBuf {
    relabel("tokenizer.ggml.pre", pre, dir)
}

/// Writes a tensor-less GGUF with the default model's metadata but string field `key` set to `value`.
fn relabel(key: &str, value: &str, dir: &std::path::Path) -> std::path::PathBuf {
    use candle_core::quantized::gguf_file::{write, Value};
    let header = GgufHeader::read(&tiny_model_path()).unwrap();
    let new_value = Value::String(value.to_string());
    let mut md: Vec<(&str, &Value)> = header
        .content
        .metadata
        .iter()
        .map(|(k, v)| if k == key { (k.as_str(), &new_value) } else { (k.as_str(), v) })
        .collect();
    md.sort_by_key(|(k, _)| *k);
    let path = dir.join(format!("{value}.gguf"));
    write(&mut std::fs::File::create(&path).unwrap(), &md, &[]).unwrap();
    path
}

#[test]
fn every_pre_tokenizer_in_the_fixture_matches_llama_cpp() {
    let fx = fixture();
    let dir = crate::common::tempdir();
    let cases = fx["cases"].as_array().unwrap();
    let variants = fx["pre_variants"].as_object().unwrap();
    assert!(variants.len() >= 6);
    let mut mismatches = Vec::new();
    for (pre, expected) in variants {
        let tok = Tok::from_gguf_file(&relabelled(pre, dir.path())).unwrap();
        for (c, want) in cases.iter().zip(expected.as_array().unwrap()) {
            let want: Vec<u32> = want.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let got = tok.encode(c["text"].as_str().unwrap(), c["parse_special"].as_bool().unwrap()).unwrap();
            if got != want {
                mismatches.push(format!("pre {pre}, case {}:\n want {want:?}\n got  {got:?}", c["name"]));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn an_unknown_pre_tokenizer_is_an_error_listing_the_known_ones() {
    let dir = crate::common::tempdir();
    let e = Tok::from_gguf_file(&relabelled("martian", dir.path())).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.pre") && e.contains("martian") && e.contains("llama-bpe"), "{e}");
    assert!(e.contains("martian.gguf"), "{e}");
}

#[test]
fn an_unsupported_tokenizer_model_is_a_clear_error() {
    let dir = crate::common::tempdir();
    let e = Tok::from_gguf_file(&relabel("tokenizer.ggml.model", "bert", dir.path())).unwrap_err().to_string();
    assert!(e.contains("bert.gguf") && e.contains("unsupported tokenizer model `bert`"), "{e}");
}

#[test]
fn sentencepiece_vocabularies_tokenize_as_llama_cpp() {
    let fx = fixture();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/spm-synthetic.gguf");
    let tok = Tok::from_gguf_file(std::path::Path::new(path)).unwrap();
    assert!(tok.add_bos(), "SentencePiece vocabularies add BOS by default");
    assert_eq!(tok.bos_id(), Some(1));
    let cases = fx["cases"].as_array().unwrap();
    let expected = fx["spm_synthetic"].as_array().unwrap();
    assert_eq!(cases.len(), expected.len());
    let mut mismatches = Vec::new();
    for (c, e) in cases.iter().zip(expected) {
        let text = c["text"].as_str().unwrap();
        let special = c["parse_special"].as_bool().unwrap();
        let want: Vec<u32> = e["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let got = tok.encode(text, special).unwrap();
        if got != want {
            mismatches.push(format!("{}:\n want {want:?}\n got  {got:?}", c["name"]));
        }
        // llama.cpp keeps the space prefix it added; we drop it on decode, as HF's Llama tokenizers do.
        let llama_text = e["decoded"].as_str().unwrap();
        let decoded = tok.decode(&got, false).unwrap();
        assert_eq!(decoded, llama_text.strip_prefix(' ').unwrap_or(llama_text), "decode of {}", c["name"]);
        if !special {
            assert_eq!(decoded, text, "round trip of {}", c["name"]);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(tok.encode_prompt("def", false).unwrap()[0], 1);
}
