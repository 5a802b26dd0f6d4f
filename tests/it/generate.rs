//! `unitcoder generate` end to end on a tiny random checkpoint: streamed text for one prompt, JSONL in
//! and out for many (the same greedy text as one at a time), `--stats` as the last stderr line, and
//! errors that name the file and line.

use crate::common::{tempdir, unitcoder};
use crate::engine_tiny::write_model;
use candle_core::DType;

fn model() -> tempfile::TempDir {
    let dir = tempdir();
    write_model(dir.path(), "llama", DType::F32, 21);
    dir
}

#[test]
fn one_prompt_streams_text_and_stats_is_the_last_stderr_line() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let out = unitcoder(&[
        "generate",
        "--model",
        dir,
        "--prompt",
        "def f():",
        "--max-tokens",
        "12",
        "--ignore-eos",
        "--stats",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["prompt_tokens"], 8);
    assert_eq!(v["generated_tokens"], 12);
    for key in ["prefill_tok_s", "decode_tok_s", "peak_rss_mb"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
}

#[test]
fn jsonl_prompts_give_one_line_per_sample_equal_to_single_runs() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    let output = t.path().join("out.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"prompt\": \"import os\"}\n\n{\"prompt\": \"x = 1\", \"max_tokens\": 5, \"n\": 2}\n",
    )
    .unwrap();
    let args = ["generate", "--model", dir, "--prompts", input.to_str().unwrap(), "--out", output.to_str().unwrap()];
    let out = unitcoder(&[&args[..], &["--max-tokens", "9", "--ignore-eos"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!((lines[0]["id"].as_str(), lines[0]["generated_tokens"].as_u64()), (Some("a"), Some(9)));
    assert_eq!((lines[1]["id"].as_u64(), lines[1]["index"].as_u64()), (Some(1), Some(0)));
    assert_eq!((lines[2]["index"].as_u64(), lines[2]["generated_tokens"].as_u64()), (Some(1), Some(5)));
    // Greedy: both samples equal, and equal to a run of that prompt alone.
    assert_eq!(lines[1]["text"], lines[2]["text"]);
    let single = unitcoder(&["generate", "--model", dir, "--prompt", "import os", "--max-tokens", "9", "--ignore-eos"]);
    let single = String::from_utf8(single.stdout).unwrap();
    assert_eq!(single.strip_suffix('\n').unwrap(), lines[0]["text"].as_str().unwrap());
}

#[test]
fn bad_input_names_the_file_and_line_and_exits_2() {
    let m = model();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    std::fs::write(&input, "{\"prompt\": \"ok\"}\n{\"promt\": \"typo\"}\n").unwrap();
    let out = unitcoder(&["generate", "--model", m.path().to_str().unwrap(), "--prompts", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl line 2") && err.contains("promt"), "{err}");

    let missing = t.path().join("nope.gguf");
    let out = unitcoder(&["generate", "--model", missing.to_str().unwrap(), "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.gguf"));
}
