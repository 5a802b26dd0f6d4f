//! `unitcoder generate` end to end on a tiny random checkpoint: streamed text for one prompt, JSONL in
//! and out for many (the same greedy text as one at a time), `--stats` as the last stderr line, and
//! errors that name the file and line (bad prompt lines and sampling overrides, bad model shapes in
//! `config.json` or GGUF metadata).

use crate::common::{tempdir, unitcoder};
use crate::engine_tiny::write_model;
use candle_core::DType;
use std::path::Path;

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
fn prompts_read_from_stdin_with_dash_and_a_repeated_id_is_warned_about() {
    use std::io::Write;
    let m = model();
    let dir = m.path().to_str().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(crate::common::bin())
            .args(["generate", "--model", dir, "--max-tokens", "4", "--ignore-eos"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let alone = unitcoder(&["generate", "--model", dir, "--prompt", "import os", "--max-tokens", "4", "--ignore-eos"]);
    let o = run(&["--prompt-file", "-"], "import os");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, alone.stdout);
    let o = run(&["--prompts", "-"], "{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": \"a\", \"prompt\": \"y\"}\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("warning: - line 2: id \"a\" again (first on line 1)"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
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
    // A value of the wrong type is named by its field.
    std::fs::write(
        &input,
        "{\"prompt\": \"ok\", \"temperature\": \"hot\"}\n{\"prompt\": \"x\", \"stop\": \"return\"}\n",
    )
    .unwrap();
    let out = unitcoder(&["generate", "--model", m.path().to_str().unwrap(), "--prompts", input.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("in.jsonl line 1: field `temperature`: invalid type"),
        "{err}"
    );

    // A prompt too long for the model (a 256-token context) is named by line and id before anything
    // is generated: the run does not write the prompts before it and then stop there.
    let long = "word ".repeat(400);
    let lines =
        [r#"{"id": "a", "prompt": "ok"}"#.to_string(), serde_json::json!({"id": "big", "prompt": long}).to_string()];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let output = t.path().join("out.jsonl");
    let out = unitcoder(&[
        "generate",
        "--model",
        m.path().to_str().unwrap(),
        "--prompts",
        input.to_str().unwrap(),
        "--out",
        output.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in.jsonl line 2 (id \"big\"): invalid request: a prompt of")
            && err.contains("context of 256 tokens"),
        "{err}"
    );
    assert!(!output.exists(), "nothing generated");

    // Prompts kept gzip-compressed are read as what they are, whatever the name.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"{\"id\": \"z\", \"prompt\": \"ok\"}\n").unwrap();
    std::fs::write(&input, gz.finish().unwrap()).unwrap();
    let base =
        ["generate", "--prompts", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--max-tokens", "2"];
    let out = unitcoder(&[&base[..], &["--model", m.path().to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(read(&output).contains("\"id\":\"z\""), "{}", read(&output));
    // A server that cannot be reached leaves no empty --out behind.
    std::fs::remove_file(&output).unwrap();
    let out = unitcoder(&[&base[..], &["--model", "openai:http://127.0.0.1:9/v1#m", "--retries", "0"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!output.exists());

    let missing = t.path().join("nope.gguf");
    let out = unitcoder(&["generate", "--model", missing.to_str().unwrap(), "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.gguf"));
}

/// Runs `generate` on `model` with one short prompt and returns (exit code, stderr).
fn generate_once(model: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let args = ["generate", "--model", model.to_str().unwrap(), "--prompt", "hi", "--max-tokens", "2"];
    let out = unitcoder(&[&args[..], extra].concat());
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_shapes_in_config_json_name_the_file_and_key_and_exit_2() {
    let m = model();
    let config = m.path().join("config.json");
    let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    // The tiny model has hidden 64, 4 heads, 2 KV heads, 2 layers.
    let cases = [
        (r#"{"num_attention_heads": 0}"#, "`num_attention_heads` is 0"),
        (r#"{"num_key_value_heads": 0}"#, "`num_key_value_heads` is 0"),
        (r#"{"head_dim": 0}"#, "`head_dim` is 0"),
        (
            r#"{"num_attention_heads": 3, "num_key_value_heads": 1}"#,
            "`hidden_size` (64) is not a multiple of `num_attention_heads` (3)",
        ),
        (r#"{"num_key_value_heads": 3}"#, "`num_attention_heads` (4) is not a multiple of `num_key_value_heads` (3)"),
        (r#"{"num_key_value_heads": -1}"#, "`num_key_value_heads`"),
        (r#"{"num_hidden_layers": 0}"#, "`num_hidden_layers` is 0"),
        (r#"{"num_hidden_layers": 3}"#, "`num_hidden_layers` is 3, but the weights hold no layer 2"),
        (r#"{"num_hidden_layers": 1}"#, "the weights hold layer 1"),
        (r#"{"rms_norm_eps": 0.0}"#, "`rms_norm_eps` is 0: must be more than 0"),
        (r#"{"rope_theta": -1.0}"#, "`rope_theta` is -1: must be more than 0"),
        (r#"{"max_position_embeddings": 0}"#, "`max_position_embeddings` is 0"),
        // This used to abort building rope tables for the whole declared context.
        (r#"{"max_position_embeddings": 4294967295}"#, "`max_position_embeddings` is 4294967295"),
    ];
    for (edit, want) in cases {
        let mut c = original.clone();
        for (k, v) in serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(edit).unwrap() {
            c[k] = v;
        }
        std::fs::write(&config, c.to_string()).unwrap();
        let (code, err) = generate_once(m.path(), &[]);
        assert_eq!(code, Some(2), "{edit}: {err}");
        assert!(err.contains("config.json") && err.contains(want), "{edit}: want `{want}` in {err}");
        assert!(!err.contains("panicked"), "{err}");
        // `models info` runs the same checks: it says the model would not load.
        let info = unitcoder(&["models", "info", m.path().to_str().unwrap()]);
        let err = String::from_utf8_lossy(&info.stderr);
        assert!(info.status.code() == Some(2) && err.contains(want), "info, {edit}: {err}");
    }
}

#[test]
fn a_tensor_in_two_safetensors_files_is_named_instead_of_one_copy_winning() {
    let m = model();
    let files: Vec<_> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    assert_eq!(files.len(), 1);
    // A full checkpoint left beside a copy of itself (as beside the shards that replaced it).
    std::fs::copy(&files[0], m.path().join("zz-copy.safetensors")).unwrap();
    let (code, err) = generate_once(m.path(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is in both") && err.contains("zz-copy.safetensors"), "{err}");
    std::fs::remove_file(m.path().join("zz-copy.safetensors")).unwrap();
    assert_eq!(generate_once(m.path(), &[]).0, Some(0));
}

/// Writes a copy of the GGUF file `src` to `out` with the numeric metadata `key` set to `value`, in
/// the key's own type, so the rest of the file stays where it was.
fn patch_gguf(src: &Path, key: &str, value: f64, out: &Path) {
    let mut d = std::fs::read(src).unwrap();
    let k = key.as_bytes();
    // A metadata key is stored as its u64 length and its bytes, then the value's u32 type tag.
    let len = (k.len() as u64).to_le_bytes();
    let at = d.windows(8 + k.len()).position(|w| w[..8] == len && &w[8..] == k).expect("key in the file");
    let tag = at + 8 + k.len();
    let v = tag + 4;
    let bytes: Vec<u8> = match u32::from_le_bytes(d[tag..v].try_into().unwrap()) {
        4 => (value as u32).to_le_bytes().into(),
        5 => (value as i32).to_le_bytes().into(),
        6 => (value as f32).to_le_bytes().into(),
        10 => (value as u64).to_le_bytes().into(),
        11 => (value as i64).to_le_bytes().into(),
        other => panic!("{key}: type {other} is not patched here"),
    };
    d[v..v + bytes.len()].copy_from_slice(&bytes);
    std::fs::write(out, d).unwrap();
}

#[test]
fn bad_gguf_metadata_names_the_file_and_key_and_exit_2() {
    let src = crate::models::tiny_model_path();
    let t = tempdir();
    let patched = t.path().join("patched.gguf");
    // SmolLM2-135M has 9 heads and 3 KV heads of 64 dims.
    let cases: &[(&str, f64, &str)] = &[
        ("llama.attention.head_count_kv", 0.0, "`llama.attention.head_count_kv` is 0"),
        ("llama.attention.head_count_kv", 7.0, "`llama.attention.head_count` (9) is not a multiple of"),
        ("llama.attention.head_count", 0.0, "`llama.attention.head_count` is 0"),
        ("llama.block_count", 0.0, "`llama.block_count` is 0"),
        ("llama.attention.layer_norm_rms_epsilon", -1.0, "`llama.attention.layer_norm_rms_epsilon` is -1"),
        ("llama.rope.freq_base", 0.0, "`llama.rope.freq_base` is 0"),
        // These used to abort building rope tables for the whole declared context.
        ("llama.context_length", 4294967295.0, "`llama.context_length` is 4294967295"),
        ("llama.context_length", 100_000_000.0, "`llama.context_length` is 100000000"),
        ("llama.context_length", 0.0, "`llama.context_length` is 0"),
    ];
    for (key, value, want) in cases {
        patch_gguf(&src, key, *value, &patched);
        let (code, err) = generate_once(&patched, &[]);
        assert_eq!(code, Some(2), "{key} = {value}: {err}");
        assert!(err.contains("patched.gguf") && err.contains(want), "{key} = {value}: want `{want}` in {err}");
        assert!(!err.contains("panicked"), "{err}");
        // `models info` describes the file and says, with the same reason and exit 2, that it will
        // not load: a check in a script does not pass what generate refuses.
        let info = crate::common::unitcoder(&["models", "info", patched.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&info.stderr);
        assert_eq!(info.status.code(), Some(2), "info, {key} = {value}: {err}");
        assert!(err.contains("this model will not load") && err.contains(want), "info, {key} = {value}: {err}");
        assert!(String::from_utf8_lossy(&info.stdout).contains("architecture:   llama"));
    }
    // A renamed tensor (the same length, so the header still parses): named by `models info` too.
    let mut bytes = std::fs::read(&src).unwrap();
    let from = b"blk.3.ffn_down.weight";
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the tensor's name in the header");
    bytes[at..at + 3].copy_from_slice(b"blx");
    std::fs::write(&patched, bytes).unwrap();
    let info = crate::common::unitcoder(&["models", "info", patched.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&info.stderr);
    assert_eq!(info.status.code(), Some(2), "{err}");
    assert!(err.contains("tensor `blk.3.ffn_down.weight` is missing"), "{err}");
}

#[test]
fn a_long_declared_context_costs_no_memory_until_used() {
    let src = crate::models::tiny_model_path();
    let t = tempdir();
    let patched = t.path().join("long.gguf");
    // The most positions allowed: whole-context rope tables for it were 4 GiB for this model.
    patch_gguf(&src, "llama.context_length", (1u64 << 24) as f64, &patched);
    let (code, err) = generate_once(&patched, &["--stats"]);
    assert_eq!(code, Some(0), "{err}");
    let stats: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    let rss = stats["peak_rss_mb"].as_f64().unwrap();
    assert!(rss < 1024.0, "peak RSS {rss} MB for a 98 MB model");
}

#[test]
fn sampling_overrides_in_prompt_files_follow_the_flags_rules() {
    let m = model();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    let cases = [
        ("\"temperature\": -1", "field `temperature`: must be 0 or more"),
        ("\"top_p\": 2", "field `top_p`: must be in (0, 1]"),
        ("\"top_p\": 0", "field `top_p`: must be in (0, 1]"),
        ("\"max_tokens\": 0", "field `max_tokens`: must be at least 1"),
        ("\"n\": 0", "field `n`: must be at least 1"),
    ];
    for (field, want) in cases {
        std::fs::write(&input, format!("{{\"prompt\": \"ok\"}}\n{{\"prompt\": \"x\", {field}}}\n")).unwrap();
        let args = ["generate", "--model", m.path().to_str().unwrap(), "--prompts", input.to_str().unwrap()];
        let out = unitcoder(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains("in.jsonl line 2: ") && err.contains(want), "{field}: want `{want}` in {err}");
    }
}

#[test]
fn a_chat_template_that_does_not_compile_fails_only_chat_prompts() {
    let m = model();
    std::fs::write(m.path().join("chat_template.jinja"), "{% if %}").unwrap();
    let (code, err) = generate_once(m.path(), &[]);
    assert_eq!(code, Some(0), "plain completion needs no template: {err}");
    let (code, err) = generate_once(m.path(), &["--chat"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("chat_template.jinja") && err.contains("does not compile"), "{err}");
    // --system implies --chat (a plain completion has no system message): it reaches the template.
    let (code, err) = generate_once(m.path(), &["--system", "be brief"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("chat_template.jinja"), "{err}");
}

#[test]
fn empty_prompts_and_lines_that_are_not_objects_say_so() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let out = unitcoder(&["generate", "--model", dir, "--prompt", ""]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--prompt is empty") && !err.contains("0 tokens"), "{err}");
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    for (line, want) in [
        ("[1, 2]", "in.jsonl line 2: expected a JSON object like {\"prompt\": \"...\"}, found an array"),
        ("\"text\"", "in.jsonl line 2: expected a JSON object like {\"prompt\": \"...\"}, found a string"),
        ("{\"prompt\": \"\"}", "in.jsonl line 2: field `prompt` is empty"),
        ("{\"messages\": []}", "in.jsonl line 2: field `messages` is empty"),
        (
            "{\"messages\": [{\"role\": \"usr\", \"content\": \"hi\"}]}",
            "in.jsonl line 2: field `messages`, message 1: role `usr` is not one of system, user",
        ),
        ("{\"prompt\": \"hi\", \"stop\": [\"\"]}", "in.jsonl line 2: field `stop`: an empty stop string"),
        ("{\"prompt\": ", "in.jsonl line 2: invalid JSON: EOF while parsing a value (column 11)"),
    ] {
        std::fs::write(&input, format!("{{\"prompt\": \"ok\"}}\n{line}\n")).unwrap();
        let out = unitcoder(&["generate", "--model", dir, "--prompts", input.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: {err}");
        assert!(err.contains(want), "{line}: want `{want}` in {err}");
    }
}

#[test]
fn negative_and_infinite_numbers_reach_the_flags_own_checks() {
    let m = model();
    for (flag, value, want) in [
        ("--temperature", "-1", "must be 0 or more, got -1"),
        ("--temperature", "inf", "must be a finite number, got inf"),
        ("--max-tokens", "-5", "must be at least 1, got -5"),
        ("-n", "-2", "must be at least 1, got -2"),
        ("--top-p", "-0.5", "must be in (0, 1], got -0.5"),
        ("--stop", "", "an empty stop string would stop every answer"),
    ] {
        let out = unitcoder(&["generate", "--model", m.path().to_str().unwrap(), "--prompt", "hi", flag, value]);
        let (code, err) = (out.status.code(), String::from_utf8_lossy(&out.stderr));
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(want) && !err.contains("unexpected argument"), "{flag} {value}: want `{want}` in {err}");
    }
}

#[test]
fn an_out_that_is_the_prompt_file_is_refused_and_the_prompts_kept() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    let prompts = "{\"prompt\": \"import os\"}\n";
    std::fs::write(&input, prompts).unwrap();
    // The same file by another name, too: a hard link.
    let link = t.path().join("link.jsonl");
    std::fs::hard_link(&input, &link).unwrap();
    for (flag, out) in [("--prompts", &input), ("--prompts", &link), ("--prompt-file", &input)] {
        let args = ["generate", "--model", dir, flag, input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        let o = unitcoder(&[&args[..], &["--max-tokens", "2"]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {}: {err}", out.display());
        assert!(err.contains("would destroy the input"), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), prompts, "{flag} {}", out.display());
    }
}

#[test]
fn a_prompt_line_that_is_not_utf8_is_named() {
    let m = model();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    std::fs::write(&input, b"{\"prompt\": \"ok\"}\n\n{\"prompt\": \"caf\xE9\"}\n").unwrap();
    let out = unitcoder(&["generate", "--model", m.path().to_str().unwrap(), "--prompts", input.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("in.jsonl line 3: not valid UTF-8"), "{err}");
}

/// `n` prompts whose greedy answers differ (`x = 0`, `x = 1`, ...).
fn numbered_prompts(path: &Path, n: usize) {
    let text: String = (0..n).map(|i| format!("{{\"prompt\": \"x = {i}\"}}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_local_model_is_known_by_its_contents_and_not_by_how_its_path_is_written() {
    let t = tempdir();
    let ckpt = t.path().join("checkpoint-500");
    std::fs::create_dir_all(&ckpt).unwrap();
    write_model(&ckpt, "llama", DType::F32, 21);
    let input = t.path().join("in.jsonl");
    numbered_prompts(&input, 4);
    let out = t.path().join("out.jsonl");
    let run = |model: &str| {
        let args = ["generate", "--model", model, "--prompts", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        let o = unitcoder(&[&args[..], &["--max-tokens", "3", "--ignore-eos"]].concat());
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (code, err) = run(ckpt.to_str().unwrap());
    assert_eq!(code, Some(0), "{err}");
    // The same directory written another way is the same model: its samples are all there.
    let (code, err) = run(&format!("{}/", ckpt.display()));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("4 of 4 prompts already have their samples"), "{err}");
    // A checkpoint retrained in place (same path, same shapes, other weights) is another model: the
    // earlier lines are not taken for its own.
    write_model(&ckpt, "llama", DType::F32, 22);
    let (code, err) = run(ckpt.to_str().unwrap());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("was written for a request this command does not make"), "{err}");
}

#[test]
fn a_stopped_jsonl_run_continues_where_it_stopped_and_refuses_an_out_written_for_other_requests() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    numbered_prompts(&input, 40);
    let run = |out: &Path, extra: &[&str]| {
        let base = ["generate", "--model", dir, "--prompts", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        unitcoder(&[&base[..], &["--max-tokens", "3", "--ignore-eos"], extra].concat())
    };
    let full = t.path().join("full.jsonl");
    let o = run(&full, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = read(&full);
    let lines: Vec<&str> = whole.lines().collect();
    assert_eq!(lines.len(), 40);
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let key = v["request_key"].as_str().unwrap_or_default();
        assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()), "each line carries its key: {l}");
    }

    // As a kill leaves it: ten whole lines, the eleventh cut short.
    let part = t.path().join("part.jsonl");
    std::fs::write(&part, format!("{}\n{}", lines[..10].join("\n"), &lines[10][..20])).unwrap();
    let o = run(&part, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("10 of 40 prompts already have their samples"), "{err}");
    assert_eq!(read(&part), whole, "the same lines as one uninterrupted run");

    // Done already: nothing is generated and nothing changes.
    let o = run(&full, &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("40 of 40 prompts already"));
    assert_eq!(read(&full), whole);

    // Lines as earlier versions wrote them (keyed by the whole request, `n` included, and without
    // `model` and `params`) are continued by the same command.
    let old: String = lines
        .iter()
        .enumerate()
        .map(|(at, l)| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let params: unitcoder::engine::SamplingParams = serde_json::from_value(v["params"].clone()).unwrap();
            let prompt = unitcoder::engine::Prompt::Text(format!("x = {at}"));
            let request = serde_json::to_string(&unitcoder::engine::Request::new(prompt, 1, params)).unwrap();
            let model = v["model"].as_str().unwrap().to_string();
            let key = unitcoder::pipeline::journal::key(&[&model, &at.to_string(), &at.to_string(), &request]);
            let o = v.as_object_mut().unwrap();
            o.remove("model");
            o.remove("params");
            o.insert("request_key".into(), key.into());
            format!("{v}\n")
        })
        .collect();
    let legacy = t.path().join("legacy.jsonl");
    std::fs::write(&legacy, &old).unwrap();
    let o = run(&legacy, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("40 of 40 prompts already have their samples"), "{err}");
    // Kept as they were, but for the key, which is now this version's.
    let keys = |text: &str| {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["request_key"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&read(&legacy)), keys(&whole));
    // Another setting on such a line is refused with what this command asks for, as the line cannot
    // say what it was made with.
    std::fs::write(&legacy, &old).unwrap();
    let o = run(&legacy, &["--repetition-penalty", "1.5"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("than this command's (model ") && err.contains("--seed 0, -n 1"), "{err}");

    // A seed cannot change a greedy sample: the run is done already.
    let o = run(&full, &["--seed", "7", "--top-k", "5"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("40 of 40 prompts already"));
    assert_eq!(read(&full), whole);
    // Lines written for other requests are refused, not overwritten, naming what changed.
    let o = run(&full, &["--repetition-penalty", "1.5"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("full.jsonl line 1 was written for a request this command does not make"), "{err}");
    assert!(err.contains("id 0: `repetition_penalty` 1.0 then, 1.5 now"), "{err}");
    assert_eq!(read(&full), whole);
    let o = run(&full, &["--temperature", "0.5"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("id 0: `temperature` 0.0 then, 0.5 now (") && !err.contains("`seed`"), "{err}");
    // Another prompt at the same place and id.
    let moved = t.path().join("moved.jsonl");
    std::fs::write(&moved, read(&input).replacen("x = 0", "x = 00", 1)).unwrap();
    let args = ["generate", "--model", dir, "--prompts", moved.to_str().unwrap(), "--out", full.to_str().unwrap()];
    let o = unitcoder(&[&args[..], &["--max-tokens", "3", "--ignore-eos"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("the prompt of id 0 (") && err.contains("moved.jsonl line 1) is not the one"), "{err}");
    assert_eq!(read(&full), whole);

    // `-n` raised on a finished run adds the samples it lacks, and they are the ones a run asking for
    // that many from the start writes (a sample is a function of its index).
    let sampled = ["--temperature", "0.9", "--seed", "3"];
    let fresh = t.path().join("fresh.jsonl");
    assert!(run(&fresh, &[&sampled[..], &["-n", "3"]].concat()).status.success());
    let grown = t.path().join("grown.jsonl");
    assert!(run(&grown, &[&sampled[..], &["-n", "1"]].concat()).status.success());
    let o = run(&grown, &[&sampled[..], &["-n", "3"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("0 of 40 prompts already have all their samples in "), "{err}");
    let by_sample = |p: &Path| {
        let mut lines: Vec<(u64, u64, String)> = read(p)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["id"].as_u64().unwrap(), v["index"].as_u64().unwrap(), l.to_string())
            })
            .collect();
        lines.sort();
        lines
    };
    let want = by_sample(&fresh);
    assert_eq!(want.len(), 120);
    assert!(want.iter().enumerate().all(|(k, (id, i, _))| (*id, *i) == ((k / 3) as u64, (k % 3) as u64)));
    assert_eq!(by_sample(&grown), want);
    assert_ne!(want[0].2.split("\"text\"").nth(1), want[1].2.split("\"text\"").nth(1), "sampled, not greedy");
    // Fewer than there are would drop finished samples: refused.
    let o = run(&grown, &[&sampled[..], &["-n", "2"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("holds 3 samples of id 0 and this command asks for 2"), "{err}");
    assert_eq!(by_sample(&grown), want);
    let foreign = t.path().join("foreign.jsonl");
    std::fs::write(&foreign, "{\"a\": 1}\n").unwrap();
    let o = run(&foreign, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("foreign.jsonl line 1: not a line `generate` writes"), "{err}");
    assert_eq!(read(&foreign), "{\"a\": 1}\n");
}

#[test]
fn ctrl_c_writes_the_group_in_flight_and_the_same_command_continues() {
    let m = model();
    let dir = m.path().to_str().unwrap();
    let t = tempdir();
    let input = t.path().join("in.jsonl");
    // Groups of 32 prompts: the signal comes once the first is on disk.
    numbered_prompts(&input, 640);
    let out = t.path().join("out.jsonl");
    let args = ["generate", "--model", dir, "--prompts", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let args = [&args[..], &["--max-tokens", "24", "--ignore-eos"]].concat();
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    // Interrupted once the first group is on disk: whole groups of 32 lines are kept, not all 640.
    let interrupted = |args: &[&str]| {
        let mut command = std::process::Command::new(crate::common::bin());
        command.args(args);
        let o = crate::common::interrupt_once(&mut command, || lines(&out) > 0);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(130), "{err}");
        let kept = lines(&out);
        assert!(kept.is_multiple_of(32) && (32..640).contains(&kept), "{kept} lines on disk: whole groups, not all");
        (kept, err)
    };
    let (kept, err) = interrupted(&args);
    assert!(
        err.contains(&format!("generate interrupted by SIGINT: {kept} of 640 prompts have their samples")),
        "{err}"
    );
    let text = read(&out);
    assert!(text.ends_with('\n') && text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));

    let again = unitcoder(&args);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("{kept} of 640 prompts already have their samples")), "{err}");
    let ids: Vec<u64> = read(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (0..640).collect::<Vec<u64>>(), "every prompt once, in order");

    // Groups are counted in samples: with 16 samples a prompt, two prompts a group, so Ctrl-C takes
    // effect after 32 samples, not 32 prompts (512 samples).
    numbered_prompts(&input, 40);
    std::fs::remove_file(&out).unwrap();
    let (kept, err) = interrupted(&[&args[..], &["-n", "16", "--temperature", "0.8"]].concat());
    assert!(err.contains(&format!("{} of 40 prompts have their samples", kept / 16)), "{err}");
}
