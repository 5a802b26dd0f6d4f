//! Real chat templates (SmolLM2, Qwen2.5(-Coder)-Instruct, Llama 3.1 and 3.2 Instruct with their date and
//! tool variables, DeepSeek-Coder-Instruct, CodeLlama-Instruct) render byte for byte as HF transformers
//! renders them: `tests/fixtures/chat_templates/expected.json`, made by `make_fixture.py` with transformers'
//! own `render_jinja_template`. Templates that reject a conversation give the same message.
//!
//! JSON reaches the engine through serde_json, whose maps are ordered by key, so the fixture's tool schemas
//! are written with sorted keys (HF would keep a Python dict's insertion order).

use serde_json::Value;
use std::path::PathBuf;
use unitcoder::engine::chat_template::ChatTemplate;
use unitcoder::engine::{EngineError, Message};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat_templates")
}

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn template(name: &str, case: &Value, fixed_time: u64) -> ChatTemplate {
    let path = dir().join(format!("{name}.jinja"));
    let source = std::fs::read_to_string(&path).unwrap();
    let token = |k: &str| case[k].as_str().unwrap_or("").to_string();
    ChatTemplate::with_tokens(&source, &token("bos_token"), &token("eos_token"), &path.display().to_string())
        .unwrap()
        .with_fixed_time(fixed_time)
}

#[test]
fn real_templates_render_exactly_as_transformers_renders_them() {
    let fx = fixture();
    let now = fx["strftime_now_unix"].as_u64().unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 70, "{}", cases.len());
    let mut failures = Vec::new();
    let mut templates = std::collections::BTreeSet::new();
    for c in cases {
        let name = c["template"].as_str().unwrap();
        templates.insert(name.to_string());
        let label = format!("{name} / {} / add_generation_prompt={}", c["name"], c["add_generation_prompt"]);
        let tpl = template(name, c, now);
        let got = tpl.render_json(
            &c["messages"],
            c["add_generation_prompt"].as_bool().unwrap(),
            c["extra"].as_object().unwrap(),
        );
        match (got, c.get("text"), c.get("error")) {
            (Ok(text), Some(want), None) if want.as_str() == Some(text.as_str()) => {}
            (Err(EngineError::Request(e)), None, Some(want)) if e.ends_with(want.as_str().unwrap()) => {}
            (got, want_text, want_error) => {
                failures.push(format!("{label}\n  want {:?}\n  got  {got:?}", want_text.or(want_error).unwrap()))
            }
        }
    }
    assert_eq!(templates.len(), 6, "{templates:?}");
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn message_structs_render_like_their_json() {
    // `render` (the engine's path) and `render_json` (tool calls, extra variables) agree on plain chats.
    let fx = fixture();
    let now = fx["strftime_now_unix"].as_u64().unwrap();
    let plain = fx["cases"].as_array().unwrap().iter().filter(|c| c["extra"].as_object().unwrap().is_empty());
    let mut n = 0;
    for c in plain.filter(|c| c.get("text").is_some()) {
        let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
        let tpl = template(c["template"].as_str().unwrap(), c, now);
        let got = tpl.render(&msgs, c["add_generation_prompt"].as_bool().unwrap()).unwrap();
        assert_eq!(got, c["text"].as_str().unwrap(), "{} / {}", c["template"], c["name"]);
        n += 1;
    }
    assert!(n >= 60, "{n}");
}

#[test]
fn llama_3_2_shows_the_pinned_date_and_llama_3_1_its_default() {
    let fx = fixture();
    let now = fx["strftime_now_unix"].as_u64().unwrap();
    let user = [Message::new("user", "hi")];
    let c = serde_json::json!({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"});
    let out = template("llama-3.2-instruct", &c, now).render(&user, true).unwrap();
    assert!(out.contains("Today Date: 05 Mar 2025\n"), "{out}");
    let out = template("llama-3.1-instruct", &c, now).render(&user, true).unwrap();
    assert!(out.contains("Today Date: 26 Jul 2024\n"), "{out}");
}
