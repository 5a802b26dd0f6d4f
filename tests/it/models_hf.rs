//! Hugging Face sources and checkpoint directories, without a network: each test builds a directory laid
//! out like the HF cache (`models--ORG--REPO/refs/main` + `snapshots/<rev>/FILE`) and resolves
//! `hf:` names against it, online (cache hit) and offline (`HF_HUB_OFFLINE`).

use crate::common::{bin, tempdir};
use crate::models::tiny_model_path;
use std::path::{Path, PathBuf};
use std::process::Command;
use unitcoder::engine::chat_template::ChatTemplate;
use unitcoder::engine::fetch::ModelSettings;
use unitcoder::engine::resolve::{self, ModelFiles};
use unitcoder::engine::tokenizer::Tok;
use unitcoder::engine::Message;
use unitcoder::progress::Silent;

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

/// Creates `hub/models--ORG--REPO` with `refs/main` and returns the snapshot directory.
pub fn hf_repo(hub: &Path, repo: &str) -> PathBuf {
    let root = hub.join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::write(root.join("refs/main"), REV).unwrap();
    let snap = root.join("snapshots").join(REV);
    std::fs::create_dir_all(&snap).unwrap();
    snap
}

/// Writes an HF checkpoint whose tokenizer is the default model's (saved as tokenizer.json) and whose
/// chat template is the default model's, plus the given safetensors file names (contents irrelevant here).
fn write_checkpoint(dir: &Path, model_type: &str, shards: &[&str]) {
    let gguf = tiny_model_path();
    let tok = Tok::from_gguf_file(&gguf).unwrap();
    tok.inner().save(dir.join("tokenizer.json"), false).unwrap();
    let header = unitcoder::engine::gguf_info::GgufHeader::read(&gguf).unwrap();
    let template = header.opt_string("tokenizer.chat_template").unwrap();
    let config = serde_json::json!({
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": false, "chat_template": template,
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let cfg = serde_json::json!({"model_type": model_type, "num_hidden_layers": 30, "torch_dtype": "bfloat16"});
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    for s in shards {
        std::fs::write(dir.join(s), b"not read by resolution").unwrap();
    }
}

fn settings(root: &Path, offline: bool) -> ModelSettings {
    let mut s = ModelSettings::in_dir(root);
    s.hf_hub_dir = root.join("hub");
    s.hf_offline = offline;
    s
}

#[test]
fn hf_gguf_file_resolves_from_the_hf_cache_online_and_offline() {
    let root = tempdir();
    let snap = hf_repo(&root.path().join("hub"), "acme/smol-GGUF");
    std::os::unix::fs::symlink(tiny_model_path(), snap.join("smol.gguf")).unwrap();
    for offline in [false, true] {
        let m = resolve::resolve("hf:acme/smol-GGUF:smol.gguf", &settings(root.path(), offline), &Silent).unwrap();
        assert_eq!(m.files, ModelFiles::Gguf { path: snap.join("smol.gguf") });
        assert_eq!((m.id.as_str(), m.architecture.as_str()), ("hf:acme/smol-GGUF:smol.gguf", "llama"));
    }
    let e = resolve::resolve("hf:acme/absent:x.gguf", &settings(root.path(), true), &Silent).unwrap_err().to_string();
    assert!(e.contains("offline") && e.contains("models--acme--absent"), "{e}");
    let e = resolve::resolve("hf:no-slash", &settings(root.path(), true), &Silent).unwrap_err().to_string();
    assert!(e.contains("hf:ORG/REPO"), "{e}");

    // The CLI resolves HF_HOME and HF_HUB_OFFLINE from the environment.
    let run = |name: &str| {
        Command::new(bin())
            .args(["models", "path", name])
            .env("HF_HOME", root.path())
            .env("HF_HUB_OFFLINE", "1")
            .env("UNITCODER_CACHE", root.path().join("uc"))
            .output()
            .unwrap()
    };
    let out = run("hf:acme/smol-GGUF:smol.gguf");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), snap.join("smol.gguf").display().to_string());
    let out = run("hf:acme/absent:x.gguf");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HF_HUB_OFFLINE"));
}

#[test]
fn hf_checkpoint_resolves_with_tokenizer_json_equal_to_the_gguf_tokenizer_and_its_template() {
    let root = tempdir();
    let snap = hf_repo(&root.path().join("hub"), "acme/smol");
    write_checkpoint(&snap, "llama", &["model.safetensors"]);
    let m = resolve::resolve("hf:acme/smol", &settings(root.path(), true), &Silent).unwrap();
    assert_eq!(m.files, ModelFiles::Safetensors { dir: snap.clone(), files: vec![snap.join("model.safetensors")] });

    let hf_tok = m.tokenizer().unwrap();
    let gguf_tok = Tok::from_gguf_file(&tiny_model_path()).unwrap();
    for text in ["def f(x):\n\treturn x ** 2  # 12345", "<|im_start|>user\nhé 日本<|im_end|>", "   "] {
        for special in [false, true] {
            assert_eq!(hf_tok.encode(text, special).unwrap(), gguf_tok.encode(text, special).unwrap(), "{text:?}");
        }
    }
    assert_eq!(hf_tok.bos_id(), gguf_tok.bos_id());
    assert!(!hf_tok.add_bos());
    assert!(hf_tok.is_eos(hf_tok.token_to_id("<|im_end|>").unwrap()));

    let msgs = [Message::new("user", "Hi")];
    let from_dir = m.chat_template(&hf_tok).unwrap().unwrap().render(&msgs, true).unwrap();
    let header = unitcoder::engine::gguf_info::GgufHeader::read(&tiny_model_path()).unwrap();
    let from_gguf = ChatTemplate::from_gguf(&header, &gguf_tok).unwrap().unwrap().render(&msgs, true).unwrap();
    assert_eq!(from_dir, from_gguf);
}

#[test]
fn checkpoint_directories_are_checked_with_errors_naming_the_path() {
    let root = tempdir();
    let s = settings(root.path(), true);
    let dir = root.path().join("ckpt");
    std::fs::create_dir_all(&dir).unwrap();
    let name = dir.to_str().unwrap();

    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let e = resolve::resolve(name, &s, &Silent).unwrap_err().to_string();
    assert!(e.contains(&dir.join("tokenizer.json").display().to_string()) && e.contains("missing"), "{e}");

    write_checkpoint(&dir, "llama", &[]);
    let e = resolve::resolve(name, &s, &Silent).unwrap_err().to_string();
    assert!(e.contains(name) && e.contains("no *.safetensors"), "{e}");

    // A sharded checkpoint: every shard in the index must be present; files come back in order.
    let index = serde_json::json!({"weight_map": {
        "a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"
    }});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("model-00001-of-00002.safetensors"), b"x").unwrap();
    let e = resolve::resolve(name, &s, &Silent).unwrap_err().to_string();
    assert!(e.contains("model-00002-of-00002.safetensors") && e.contains("missing"), "{e}");
    std::fs::write(dir.join("model-00002-of-00002.safetensors"), b"x").unwrap();
    let m = resolve::resolve(name, &s, &Silent).unwrap();
    // `models info` reads each file's header: a shard that is not whole is named (exit 2).
    let out = Command::new(bin()).args(["models", "info", name]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("model-00001-of-00002.safetensors: not a whole safetensors file"), "{err}");
    // Whole shards: a [2, 3] tensor in one, a [4] tensor in the other.
    let tensor = |shape: &[usize]| {
        let n = shape.iter().product::<usize>();
        candle_core::Tensor::from_vec(vec![1f32; n], shape, &candle_core::Device::Cpu).unwrap()
    };
    for (file, shape) in
        [("model-00001-of-00002.safetensors", &[2usize, 3][..]), ("model-00002-of-00002.safetensors", &[4])]
    {
        let tensors = std::collections::HashMap::from([(file.to_string(), tensor(shape))]);
        candle_core::safetensors::save(&tensors, dir.join(file)).unwrap();
    }
    // One cut short by a byte: its last tensor would run past the end.
    let cut = dir.join("model-00002-of-00002.safetensors");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let out = Command::new(bin()).args(["models", "info", name]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("model-00002-of-00002.safetensors: not a whole safetensors file"), "{err}");
    std::fs::write(&cut, &bytes).unwrap();
    let want = vec![dir.join("model-00001-of-00002.safetensors"), dir.join("model-00002-of-00002.safetensors")];
    assert_eq!(m.files, ModelFiles::Safetensors { dir: dir.clone(), files: want });

    std::fs::write(dir.join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let e = resolve::resolve(name, &s, &Silent).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("unsupported architecture `mamba`"), "{e}");

    // `models info` describes a checkpoint directory whatever it holds, and exits 2, saying why,
    // when the model would not load (this one's config lacks `hidden_size`, and its tensors are
    // not a model's).
    std::fs::write(dir.join("config.json"), r#"{"model_type": "qwen2", "num_hidden_layers": 24}"#).unwrap();
    let out = Command::new(bin()).args(["models", "info", name]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("this model will not load:") && err.contains("`hidden_size`"), "{err}");
    for want in [
        "architecture:   qwen2",
        "2 file(s)",
        "tensors:        2, 10 parameters",
        "layers:         24",
        "chat template:  yes",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in\n{stdout}");
    }
    // transformers 5 writes `dtype`, older versions `torch_dtype`: both are read, printed plain.
    for key in ["dtype", "torch_dtype"] {
        std::fs::write(dir.join("config.json"), format!(r#"{{"model_type": "qwen2", "{key}": "bfloat16"}}"#)).unwrap();
        let out = Command::new(bin()).args(["models", "info", name]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("dtype:          bfloat16\n"), "{key}: {stdout}");
        assert!(stdout.contains("layers:         unknown\n"), "{key}: {stdout}");
        let out = Command::new(bin()).args(["models", "info", "--json", name]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dtype"], "bfloat16", "{key}");
    }
}

#[test]
fn a_user_card_with_an_hf_source_resolves_from_the_cache() {
    let root = tempdir();
    let snap = hf_repo(&root.path().join("hub"), "acme/smol-GGUF");
    std::os::unix::fs::symlink(tiny_model_path(), snap.join("smol.gguf")).unwrap();
    let cards = root.path().join("cards");
    std::fs::create_dir_all(&cards).unwrap();
    let card = "name = \"acme-smol\"\ndescription = \"d\"\narchitecture = \"llama\"\nformat = \"gguf\"\n\
                stop_tokens = [\"<|im_end|>\"]\nchat_template = \"{% for m in messages %}[{{ m.content }}]{% endfor %}\"\n\
                [source]\nhf = \"acme/smol-GGUF\"\nfile = \"smol.gguf\"\nsize = 98362432\n";
    std::fs::write(cards.join("acme.toml"), card).unwrap();
    let mut s = settings(root.path(), true);
    s.models_dir = Some(cards.clone());
    let m = resolve::resolve("acme-smol", &s, &Silent).unwrap();
    assert_eq!(m.gguf_path(), Some(snap.join("smol.gguf").as_path()));
    let tok = m.tokenizer().unwrap();
    // The card's template override replaces the model's own.
    let out = m.chat_template(&tok).unwrap().unwrap().render(&[Message::new("user", "q")], true).unwrap();
    assert_eq!(out, "[q]");

    // A size that does not match the card is caught.
    std::fs::write(cards.join("acme.toml"), card.replace("98362432", "5")).unwrap();
    let e = resolve::resolve("acme-smol", &s, &Silent).unwrap_err().to_string();
    assert!(e.contains("smol.gguf") && e.contains("acme.toml") && e.contains("size"), "{e}");
}

#[test]
fn embedded_hf_cards_say_how_far_they_were_verified_and_checksummed_ones_reject_other_files() {
    // A stand-in for the hub files (the tiny model, so it is a valid GGUF of the wrong size), offline.
    // Its `general.architecture` reads `qwen2`, as the cards say (resolution checks that they agree):
    // both names are 5 bytes, so the rest of the file stays in place.
    let root = tempdir();
    let hub = root.path().join("hub");
    let small = hf_repo(&hub, "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF").join("qwen2.5-coder-0.5b-instruct-q8_0.gguf");
    let large = hf_repo(&hub, "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF").join("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let mut stand_in = std::fs::read(tiny_model_path()).unwrap();
    let key = b"general.architecture";
    let at = stand_in.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // The value: a u32 type tag (8, string), a u64 length, the bytes.
    assert_eq!(&stand_in[at..at + 4], &8u32.to_le_bytes());
    assert_eq!(&stand_in[at + 12..at + 17], b"llama");
    stand_in[at + 12..at + 17].copy_from_slice(b"qwen2");
    for f in [&small, &large] {
        std::fs::write(f, &stand_in).unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("HF_HOME", root.path())
            .env("HF_HUB_OFFLINE", "1")
            .env("UNITCODER_CACHE", root.path().join("uc"))
            .output()
            .unwrap()
    };
    // The checksummed card refuses a file that is not the published one, naming card and file.
    let out = run(&["models", "path", "qwen2.5-coder-0.5b-hub"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("qwen2.5-coder-0.5b-hub.toml") && stderr.contains("size 98362432"), "{stderr}");
    assert!(stderr.contains("qwen2.5-coder-0.5b-instruct-q8_0.gguf"), "{stderr}");
    // A card verified by name only has nothing to check a download against.
    let out = run(&["models", "path", "qwen2.5-coder-1.5b-hub"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), large.display().to_string());

    let out = run(&["models", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |name: &str| {
        let line = stdout.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{stdout}"));
        line.split_whitespace().take(5).collect::<Vec<_>>()
    };
    assert_eq!(stdout.lines().next().unwrap().split_whitespace().nth(4), Some("VERIFIED"), "{stdout}");
    assert_eq!(row("smollm2-135m")[4], "checksum");
    assert_eq!(row("qwen2.5-coder-0.5b-hub")[3..], ["yes", "checksum"]);
    assert_eq!(row("qwen2.5-coder-1.5b-hub")[3..], ["yes", "name"]);
    // The PyPI cards of the same models are not in this empty cache, and are checksummed.
    assert_eq!(row("qwen2.5-coder-1.5b")[3..], ["no", "checksum"]);
    assert_eq!(row("qwen2.5-coder-0.5b-hf")[4], "name");
}

#[test]
fn an_hf_model_file_downloads_through_hf_endpoint_into_the_hf_cache() {
    let root = tempdir();
    let gguf = std::fs::read(tiny_model_path()).unwrap();
    let files = vec![("smol.gguf".to_string(), gguf.clone())];
    let (url, seen) = crate::common::http_server(crate::common::hub_routes("models", "acme/fresh-GGUF", files));
    let run = |offline: &str| {
        Command::new(bin())
            .args(["models", "path", "hf:acme/fresh-GGUF:smol.gguf"])
            .env("HF_HOME", root.path())
            .env("HF_HUB_OFFLINE", offline)
            .env("HF_ENDPOINT", &url)
            .env("UNITCODER_CACHE", root.path().join("uc"))
            .output()
            .unwrap()
    };
    let out = run("0");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.starts_with(root.path().join("hub/models--acme--fresh-GGUF/snapshots")), "{}", path.display());
    assert!(std::fs::read(&path).unwrap() == gguf, "the downloaded file is the served one");
    // Then the cache answers, offline or not, without a request.
    let asked = seen.lock().unwrap().len();
    for offline in ["1", "0"] {
        let again = run(offline);
        assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), path.display().to_string());
    }
    assert_eq!(seen.lock().unwrap().len(), asked);
}
