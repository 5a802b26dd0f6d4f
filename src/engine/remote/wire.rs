//! The OpenAI wire format: the JSON body of a `/completions` or `/chat/completions` request built from
//! a [`Request`], and the choices and `usage` of the answer turned back into [`Completion`]s. Kept apart
//! from the HTTP side so both directions are unit-tested without a server.

use crate::engine::{Completion, FinishReason, Prompt, Request};
use serde_json::{json, Value};

/// The path under the base URL that serves `prompt`: chat messages go through the server's own chat
/// template, raw text is completed as is.
pub fn endpoint(prompt: &Prompt) -> &'static str {
    match prompt {
        Prompt::Chat(_) => "/chat/completions",
        Prompt::Text(_) => "/completions",
    }
}

/// The request body for `n` samples of `request` with `seed`.
///
/// Besides the OpenAI fields, the body carries the sampling knobs the in-process engine has and
/// OpenAI lacks, spelled as the common servers read them (`top_k`, `min_p` and `repetition_penalty` for
/// vLLM/SGLang, `repeat_penalty` for llama.cpp): those servers otherwise apply defaults of their own
/// (llama.cpp: min-p 0.05, repeat penalty 1.1), and a run through them would not sample
/// what the same settings sample in-process. Servers that do not know a field ignore it.
pub fn body(model: &str, request: &Request, n: usize, seed: u64) -> Value {
    let p = &request.params;
    let mut b = json!({
        "model": model,
        "n": n,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "seed": seed,
        "min_p": 0.0,
        "repetition_penalty": p.repetition_penalty,
        "repeat_penalty": p.repetition_penalty,
        "stream": false,
    });
    match &request.prompt {
        Prompt::Chat(messages) => b["messages"] = json!(messages),
        Prompt::Text(text) => b["prompt"] = json!(text),
    }
    if !p.stop.is_empty() {
        b["stop"] = json!(p.stop);
    }
    // "No top-k" is spelled 0 by some servers and -1 by others, each rejecting the other's: left out,
    // the servers' default applies (none, except llama.cpp's 40).
    if p.top_k > 0 {
        b["top_k"] = json!(p.top_k);
    }
    if p.ignore_eos {
        b["ignore_eos"] = json!(true);
    }
    b
}

/// The completions in an answer, in the order of their `index`. Token counts come from `usage`:
/// the prompt's count is every sample's, the completion tokens (a total over the choices) are shared
/// out evenly when there are several.
pub fn parse(answer: &Value) -> Result<Vec<Completion>, String> {
    let choices = answer.get("choices").and_then(Value::as_array).ok_or("the answer has no `choices` array")?;
    let usage = answer.get("usage");
    let count = |field: &str| usage.and_then(|u| u.get(field)).and_then(Value::as_u64).unwrap_or(0) as usize;
    let (prompt_tokens, completion_tokens) = (count("prompt_tokens"), count("completion_tokens"));
    let mut out = Vec::with_capacity(choices.len());
    for (i, c) in choices.iter().enumerate() {
        let index = c.get("index").and_then(Value::as_u64).map_or(i, |x| x as usize);
        // Chat answers carry `message.content` (null when the model said nothing), completions `text`.
        let text = match (c.get("message"), c.get("text")) {
            (Some(m), _) => m.get("content").and_then(Value::as_str).unwrap_or(""),
            (None, Some(t)) => t.as_str().ok_or(format!("choices[{i}].text is not a string"))?,
            (None, None) => return Err(format!("choices[{i}] has neither `message` nor `text`")),
        };
        let finish = match c.get("finish_reason").and_then(Value::as_str) {
            Some("length") => FinishReason::Length,
            // vLLM names the stop string that ended the sample; others say "stop" for both it and EOS.
            _ if c.get("stop_reason").is_some_and(Value::is_string) => FinishReason::Stop,
            _ => FinishReason::Eos,
        };
        out.push((index, text.to_string(), finish));
    }
    out.sort_by_key(|(index, ..)| *index);
    let k = out.len().max(1);
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(j, (_, text, finish))| Completion {
            text,
            prompt_tokens,
            generated_tokens: completion_tokens / k + usize::from(j < completion_tokens % k),
            finish,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Message, SamplingParams};

    #[test]
    fn chat_and_text_prompts_make_their_own_bodies() {
        let params = SamplingParams { stop: vec!["\n```".into()], top_k: 0, ..SamplingParams::default() };
        let chat = Request::new(Prompt::Chat(vec![Message::new("user", "hi")]), 3, params.clone());
        let b = body("qwen", &chat, 3, 7);
        assert_eq!(endpoint(&chat.prompt), "/chat/completions");
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!((b["n"].as_u64(), b["seed"].as_u64(), b["top_k"].as_i64()), (Some(3), Some(7), None));
        assert_eq!(b["stop"][0], "\n```");
        assert!(b.get("prompt").is_none() && b.get("ignore_eos").is_none());
        let text = Request::new(Prompt::Text("def f(".into()), 1, SamplingParams::default());
        let b = body("qwen", &text, 1, 0);
        assert_eq!(endpoint(&text.prompt), "/completions");
        assert_eq!(b["prompt"], "def f(");
        assert!(b.get("stop").is_none() && b.get("messages").is_none());
        let top_k = Request { params: SamplingParams { top_k: 5, ..SamplingParams::default() }, ..text.clone() };
        assert_eq!(body("qwen", &top_k, 1, 0)["top_k"].as_u64(), Some(5));
        assert_eq!(b["repeat_penalty"].as_f64(), Some(1.0));
    }

    #[test]
    fn answers_become_completions_in_index_order_with_usage_shared_out() {
        let answer = json!({
            "choices": [
                {"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
                {"index": 0, "message": {"content": null}, "finish_reason": "stop", "stop_reason": "\n"},
                {"index": 2, "message": {"content": "c"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7}
        });
        let c = parse(&answer).unwrap();
        assert_eq!(c.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["", "b", "c"]);
        assert_eq!(
            c.iter().map(|c| c.finish).collect::<Vec<_>>(),
            [FinishReason::Stop, FinishReason::Length, FinishReason::Eos]
        );
        assert_eq!(c.iter().map(|c| c.generated_tokens).collect::<Vec<_>>(), [3, 2, 2]);
        assert!(c.iter().all(|c| c.prompt_tokens == 5));
        let text = parse(&json!({"choices": [{"text": "x", "finish_reason": "stop"}]})).unwrap();
        assert_eq!((text[0].text.as_str(), text[0].generated_tokens), ("x", 0));
        assert!(parse(&json!({"error": "nope"})).unwrap_err().contains("choices"));
        assert!(parse(&json!({"choices": [{"index": 0}]})).unwrap_err().contains("choices[0]"));
    }
}
