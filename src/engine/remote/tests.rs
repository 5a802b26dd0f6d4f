//! Tests of [`Remote`] without a real server: spec parsing, the key kept out of `Debug` and errors,
//! and a small scripted HTTP server (std only) that ignores `n` and counts requests in flight.

use super::*;
use crate::engine::Prompt;

#[test]
fn specs_parse_or_say_what_is_wrong() {
    let s = ServerSpec::parse("openai:http://127.0.0.1:8000/v1/#qwen").unwrap().unwrap();
    assert_eq!((s.base_url.as_str(), s.model.as_str()), ("http://127.0.0.1:8000/v1", "qwen"));
    assert_eq!(s.to_string(), "openai:http://127.0.0.1:8000/v1#qwen");
    // Model names may hold slashes and colons (org/name, ollama tags); the last `#` splits.
    let s = ServerSpec::parse("openai:https://h/v1#Qwen/Qwen2.5-Coder-7B:q4").unwrap().unwrap();
    assert_eq!(s.model, "Qwen/Qwen2.5-Coder-7B:q4");
    assert!(ServerSpec::parse("qwen2.5-coder-0.5b").is_none());
    let err = |a: &str| ServerSpec::parse(a).unwrap().unwrap_err().to_string();
    assert!(err("openai:http://h/v1").contains("no `#MODEL_NAME`"));
    assert!(err("openai:http://h/v1#").contains("empty model name"));
    assert!(err("openai:h:8000/v1#m").contains("http://"));
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let o = RemoteOptions { api_key: Some(ApiKey::new("sk-secret-123")), ..RemoteOptions::default() };
    let shown = format!("{o:?}");
    assert!(!shown.contains("sk-secret") && shown.contains("[redacted]"), "{shown}");
}

#[test]
fn a_server_that_is_down_fails_after_the_retries_with_the_url_and_no_key() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spec = ServerSpec::parse(&format!("openai:http://127.0.0.1:{port}/v1#m")).unwrap().unwrap();
    let retry = RetryPolicy { retries: 2, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
    let remote = Remote::new(spec, RemoteOptions { retry, api_key: Some(ApiKey::new("k-77")), ..Default::default() });
    let req = Request::new(Prompt::Text("x".into()), 2, Default::default());
    let e = remote.generate(&[req]).unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}/v1/completions")) && e.contains("after 3 attempts"), "{e}");
    assert!(!e.contains("k-77"));
    assert_eq!(remote.stats().retries, 2);
}

/// A scripted OpenAI server on 127.0.0.1: one choice per request whatever `n` asks (as llama.cpp's
/// server does), its text naming the prompt and seed, answered after `delay`; it records the most
/// requests it held at once and every body.
struct FakeServer {
    port: u16,
    most_at_once: std::sync::Arc<AtomicUsize>,
    bodies: std::sync::Arc<Mutex<Vec<serde_json::Value>>>,
}

impl FakeServer {
    fn start(delay: Duration) -> FakeServer {
        use std::io::{Read, Write};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (most, bodies) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let now = Arc::new(AtomicUsize::new(0));
        let (most2, bodies2) = (most.clone(), bodies.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let (most, bodies, now) = (most2.clone(), bodies2.clone(), now.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = stream.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = stream.read(&mut chunk).unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body: serde_json::Value = serde_json::from_slice(&buf[head_end..]).unwrap();
                    let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at_once, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    now.fetch_sub(1, Ordering::SeqCst);
                    if body["prompt"] == "refused" {
                        // As vLLM refuses a prompt too long for its context: a client error, not retried.
                        let answer = r#"{"error": {"message": "prompt too long"}}"#;
                        let reply = format!(
                            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                            answer.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                        return;
                    }
                    let text = format!("{}/{}", body["prompt"].as_str().unwrap_or("?"), body["seed"]);
                    bodies.lock().unwrap().push(body);
                    let answer = serde_json::json!({
                        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2}
                    })
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        FakeServer { port, most_at_once: most, bodies }
    }
}

#[test]
fn a_refused_request_loses_none_of_the_answers_to_the_others() {
    let server = FakeServer::start(Duration::from_millis(10));
    let spec = ServerSpec::parse(&format!("openai:http://127.0.0.1:{}/v1#m", server.port)).unwrap().unwrap();
    let req = |p: &str| Request::new(Prompt::Text(p.into()), 1, Default::default());
    // All three in flight at once: the two others are answered whatever the refused one does.
    let remote = Remote::new(spec.clone(), RemoteOptions { concurrency: 3, chat: false, ..RemoteOptions::default() });
    let out = remote.generate_each(&[req("a"), req("refused"), req("c")]);
    assert_eq!(out[0].as_ref().unwrap()[0].text, "a/0");
    assert!(out[1].as_ref().unwrap_err().to_string().contains("prompt too long"), "{:?}", out[1]);
    assert_eq!(out[2].as_ref().unwrap()[0].text, "c/0");
    assert!(remote.generate(&[req("a"), req("refused")]).is_err());
    // One at a time: what was answered before the refusal is kept, and nothing is sent after it.
    let remote = Remote::new(spec, RemoteOptions { concurrency: 1, chat: false, ..RemoteOptions::default() });
    let before = server.bodies.lock().unwrap().len();
    let out = remote.generate_each(&[req("a"), req("refused"), req("c")]);
    assert_eq!(out[0].as_ref().unwrap()[0].text, "a/0");
    assert!(out[1].is_err());
    assert!(out[2].as_ref().unwrap_err().to_string().contains("not sent"), "{:?}", out[2]);
    assert_eq!(server.bodies.lock().unwrap().len() - before, 1, "only `a` answered: `c` never sent");
}

#[test]
fn samples_come_back_in_order_within_the_concurrency_limit_from_a_server_ignoring_n() {
    let server = FakeServer::start(Duration::from_millis(150));
    let spec = ServerSpec::parse(&format!("openai:http://127.0.0.1:{}/v1#m", server.port)).unwrap().unwrap();
    let remote = Remote::new(spec, RemoteOptions { concurrency: 2, chat: false, ..RemoteOptions::default() });
    assert!(!remote.has_chat_template() && remote.model_id().ends_with("/v1#m"));
    let req = |p: &str, n: usize| {
        Request::new(Prompt::Text(p.into()), n, crate::engine::SamplingParams { seed: 10, ..Default::default() })
    };
    // Samples 1..3 of "c" asked for on their own, as `generate` raising `-n` asks.
    let later = Request { first: 1, ..req("c", 2) };
    let out = remote.generate(&[req("a", 2), req("b", 1), req("c", 3), later]).unwrap();
    let texts: Vec<Vec<&str>> = out.iter().map(|s| s.iter().map(|c| c.text.as_str()).collect()).collect();
    // Sample i is seeded seed + i, whether it was asked for with n or alone.
    assert_eq!(texts, [vec!["a/10", "a/11"], vec!["b/10"], vec!["c/10", "c/11", "c/12"], vec!["c/11", "c/12"]]);
    assert_eq!(server.most_at_once.load(Ordering::SeqCst), 2, "two in flight, never more");
    let s = remote.stats();
    assert_eq!((s.requests, s.generated_tokens, s.prompt_tokens), (8, 16, 24));
    // Once the server has shown it ignores `n`, samples are asked for one by one from the start.
    let before = server.bodies.lock().unwrap().len();
    remote.generate(&[req("d", 2)]).unwrap();
    let bodies = server.bodies.lock().unwrap();
    assert_eq!(bodies.len() - before, 2);
    assert!(bodies[before..].iter().all(|b| b["n"] == 1 && b["model"] == "m"), "{bodies:?}");
}

#[test]
fn a_request_over_the_timeout_is_retried_then_reported() {
    let server = FakeServer::start(Duration::from_millis(1500));
    let spec = ServerSpec::parse(&format!("openai:http://127.0.0.1:{}/v1#m", server.port)).unwrap().unwrap();
    let retry = RetryPolicy { retries: 1, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(1) };
    let options = RemoteOptions { timeout: Duration::from_millis(200), retry, ..RemoteOptions::default() };
    let remote = Remote::new(spec, options);
    let req = Request::new(Prompt::Text("x".into()), 1, Default::default());
    let started = std::time::Instant::now();
    let e = remote.generate(&[req]).unwrap_err().to_string();
    assert!(e.contains("after 2 attempts") && e.to_lowercase().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(1400), "the timeout cut the wait: {:?}", started.elapsed());
    assert_eq!(remote.stats().retries, 1);
}
