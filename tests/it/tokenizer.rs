//! The tokenizer built from GGUF metadata gives exactly llama.cpp's ids, and the chat template renders
//! exactly what Jinja2 renders (as HF configures it): both checked against
//! `tests/fixtures/tokenizer/smollm2-135m.json`, made by `make_fixture.py` with llama-cpp-python.

use crate::models::default_model_path;
use serde_json::Value;
use unitcoder::engine::chat_template::ChatTemplate;
use unitcoder::engine::gguf_info::GgufHeader;
use unitcoder::engine::tokenizer::Tok;
use unitcoder::engine::{fetch, Message};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer/smollm2-135m.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn gguf_tokenizer_ids_equal_llama_cpp_and_decoding_round_trips() {
    let fx = fixture();
    let model = default_model_path();
    assert_eq!(
        fx["model_sha256"],
        fetch::file_digest(&model).unwrap().1,
        "fixture made from another file"
    );
    let tok = Tok::from_gguf_file(&model).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    let mut mismatches = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let special = c["parse_special"].as_bool().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, special).unwrap();
        if got != want {
            mismatches.push(format!("{}: want {want:?}\n got {got:?}", c["name"]));
        }
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            text,
            "round trip of {}",
            c["name"]
        );
        assert_eq!(
            c["decoded"].as_str().unwrap(),
            text,
            "llama.cpp round trip of {}",
            c["name"]
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn special_tokens_are_parsed_only_when_asked_and_facts_match_the_metadata() {
    let tok = Tok::from_gguf_file(&default_model_path()).unwrap();
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
    assert_eq!(
        tok.encode_prompt("def", false).unwrap(),
        tok.encode("def", false).unwrap()
    );
    assert_eq!(tok.vocab_size(), 49152);
}

#[test]
fn chat_template_from_gguf_renders_exactly_as_jinja2() {
    let fx = fixture();
    let header = GgufHeader::read(&default_model_path()).unwrap();
    let tok = Tok::from_gguf(&header).unwrap();
    let tpl = ChatTemplate::from_gguf(&header, &tok)
        .unwrap()
        .expect("SmolLM2 has a chat template");
    let chats = fx["chats"].as_array().unwrap();
    assert!(chats.len() >= 3);
    for c in chats {
        let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
        let got = tpl
            .render(&msgs, c["add_generation_prompt"].as_bool().unwrap())
            .unwrap();
        assert_eq!(got, c["text"].as_str().unwrap(), "chat {}", c["name"]);
    }
    // With no system message, SmolLM2's template inserts its default system prompt.
    let first = chats[0]["text"].as_str().unwrap();
    assert!(
        first.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{first}"
    );
    assert!(first.ends_with("<|im_start|>assistant\n"), "{first}");
}
