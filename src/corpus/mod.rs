//! Readers for pre-training code corpora: JSONL / JSONL.gz / JSONL.zst with a `content` field, Parquet
//! (The Stack v2, HF datasets) and directories of `.py` files. Each yields source files with provenance.
//!
//! Every reader is a streaming iterator of `Result<SourceFile, CorpusError>`: corpora are far larger
//! than memory. A bad entry (a malformed JSON line, a row without `content`, a `.py` file Python could not decode)
//! is a *recoverable* error: the reader reports it with its file and line (or row) and carries on, and
//! the caller decides whether to skip-and-count or stop ([`CorpusError::is_recoverable`]). I/O failures
//! and unreadable containers are fatal and end the iterator.

pub mod hf;
mod jsonl;
mod parquet;
mod pydir;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

pub use jsonl::JsonlReader;
pub use parquet::ParquetReader;
pub use pydir::PyDirReader;

/// Where a source file came from inside the corpus: the corpus file and the place in it, each
/// counted as its own tools count it (editors number lines from 1, `datasets` and pyarrow rows from 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The corpus file (a JSONL/Parquet file, or the `.py` file itself for directories).
    pub file: PathBuf,
    /// The line or row; `None` for a `.py` file of a directory.
    pub at: Option<Position>,
}

/// A place in a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// The 1-based line of a JSONL file.
    Line(u64),
    /// The 0-based row of a Parquet file, counted over the whole file (all row groups).
    Row(u64),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(Position::Line(line)) => write!(f, "{}:{line}", self.file.display()),
            Some(Position::Row(row)) => write!(f, "{} row {row}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One source file of a corpus with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// A stable id: the first 16 hex digits of the SHA-256 of `content`. Independent of where the
    /// corpus lives, so shards are the same on every machine and identical files share a shard.
    pub id: String,
    /// The file's text.
    pub content: String,
    /// The file's path inside its repository (or inside the corpus directory), when known.
    pub path: Option<String>,
    /// The repository name (`owner/name`), when known.
    pub repo: Option<String>,
    /// The licenses recorded for the repository (The Stack lists several), possibly empty.
    pub license: Vec<String>,
    /// Where in the corpus this file was read.
    pub origin: Origin,
    /// Provenance fields present with a value of another type than expected (a number as `repo`,
    /// an object as `license`), left out, each with the value it held as text: counted by the
    /// retrieve stage so that a license is never lost without a word.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<(String, String)>,
}

impl SourceFile {
    /// Builds a source file, computing its content id.
    pub fn new(content: String, origin: Origin) -> Self {
        SourceFile {
            id: content_id(&content),
            content,
            path: None,
            repo: None,
            license: Vec::new(),
            origin,
            ignored: Vec::new(),
        }
    }
}

/// The first 16 hex digits of the SHA-256 of `text`: the ids of source files and records.
pub fn content_id(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Why a corpus could not be read, or an entry of it was bad.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The corpus path does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    /// The path's extension is not one we read.
    #[error(
        "{0}: unsupported corpus format (expected JSON Lines: .jsonl, .json or .ndjson, plain, .gz or .zst; .parquet; .py; or a directory of .py files)"
    )]
    Unsupported(PathBuf),
    /// Reading failed (fatal).
    #[error("{path}: {cause}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A Parquet file could not be opened or decoded (fatal).
    #[error("{path}: {message}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// One file of a directory could not be read; the walk goes on (recoverable).
    #[error("{path}: {cause}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A `.py` file whose bytes Python could not read either: not UTF-8 and no declaration, an
    /// encoding it declares that is unknown, or bytes invalid in it (recoverable).
    #[error("{}: {problem}", .path.display())]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        problem: crate::python::source::DecodeError,
    },
    /// A Hugging Face dataset corpus could not be listed or fetched (fatal).
    #[error("--corpus {spec}: {message}")]
    Hub {
        /// The `hf:` spec as given.
        spec: String,
        /// What went wrong.
        message: String,
    },
    /// Whole corpus files were to be split among shards, and this corpus path is a directory.
    #[error(
        "{0}: a directory of .py files is not split by whole files (--shard-by file takes JSONL, Parquet and Hub \
         dataset files); split it by content (leave --shard-by out)"
    )]
    NotSplitByFile(PathBuf),
    /// One entry is bad; the reader goes on with the next one (recoverable).
    #[error("{path} {unit} {index}: {message}")]
    Malformed {
        /// The corpus file.
        path: PathBuf,
        /// `line` (JSONL, 1-based) or `row` (Parquet, 0-based) or `file`.
        unit: &'static str,
        /// The line or row number.
        index: u64,
        /// What is wrong with it, e.g. "missing field `content`".
        message: String,
    },
}

impl CorpusError {
    /// Whether the reader can go on after this error (a bad entry, not a broken file).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, CorpusError::Malformed { .. } | CorpusError::Unreadable { .. } | CorpusError::Undecodable { .. })
    }
}

/// The kind of corpus a path holds, decided from its name (or being a directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusKind {
    /// JSON Lines, plain.
    Jsonl,
    /// JSON Lines, gzip-compressed.
    JsonlGz,
    /// JSON Lines, zstd-compressed.
    JsonlZst,
    /// A Parquet file.
    Parquet,
    /// A directory of `.py` files, walked recursively (or, when it holds none, of data files: see
    /// [`dataset_files`]).
    PyDir,
    /// A single `.py` file.
    PyFile,
}

impl CorpusKind {
    /// Recognizes `path`'s corpus kind, or says it is unsupported or missing.
    pub fn of(path: &Path) -> Result<Self, CorpusError> {
        if path.is_dir() {
            return Ok(CorpusKind::PyDir);
        }
        if !path.exists() {
            return Err(CorpusError::NotFound(path.to_path_buf()));
        }
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        // A file given by the user is also known by its first bytes, whatever its name: Parquet's
        // magic, or JSON Lines (gzip or zstd compressed, which the reader tells by its bytes too).
        let sniffed = sniff(path);
        match (Self::of_name(&name), sniffed) {
            (_, Some(CorpusKind::Parquet)) => Ok(CorpusKind::Parquet),
            (Some(kind), _) => Ok(kind),
            (None, Some(kind)) => Ok(kind),
            (None, None) => Err(CorpusError::Unsupported(path.to_path_buf())),
        }
    }

    /// The kind a file of this name holds, if it is one we read (never [`CorpusKind::PyDir`]).
    pub fn of_name(name: &str) -> Option<Self> {
        let name = name.to_lowercase();
        let json = |stem: &str| stem.ends_with(".jsonl") || stem.ends_with(".json") || stem.ends_with(".ndjson");
        if let Some(stem) = name.strip_suffix(".gz") {
            json(stem).then_some(CorpusKind::JsonlGz)
        } else if let Some(stem) = name.strip_suffix(".zst") {
            json(stem).then_some(CorpusKind::JsonlZst)
        } else if json(&name) {
            Some(CorpusKind::Jsonl)
        } else if name.ends_with(".parquet") {
            Some(CorpusKind::Parquet)
        } else if name.ends_with(".py") {
            Some(CorpusKind::PyFile)
        } else {
            None
        }
    }
}

/// What a regular file's first bytes say it holds: Parquet (`PAR1`), compressed JSON Lines (gzip,
/// zstd) or JSON Lines (a `{` first); `None` when they say none of these, or it cannot be read
/// without consuming it (a pipe).
fn sniff(path: &Path) -> Option<CorpusKind> {
    use std::io::Read;
    if !path.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path).ok()?.take(64).read_to_end(&mut head).ok()?;
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    match head.as_slice() {
        [b'P', b'A', b'R', b'1', ..] => Some(CorpusKind::Parquet),
        [0x1f, 0x8b, ..] => Some(CorpusKind::JsonlGz),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(CorpusKind::JsonlZst),
        _ if text.trim_ascii_start().starts_with(b"{") => Some(CorpusKind::Jsonl),
        _ => None,
    }
}

/// A streaming reader over one corpus path.
pub type SourceIter = Box<dyn Iterator<Item = Result<SourceFile, CorpusError>> + Send>;

/// Opens one corpus path (file or directory) as a stream of source files.
pub fn open(path: &Path) -> Result<SourceIter, CorpusError> {
    Ok(match CorpusKind::of(path)? {
        CorpusKind::Jsonl | CorpusKind::JsonlGz | CorpusKind::JsonlZst => Box::new(JsonlReader::open(path)?),
        CorpusKind::Parquet => Box::new(ParquetReader::open(path)?),
        CorpusKind::PyDir => match dataset_files(path) {
            Some(files) => open_all(&files),
            None => Box::new(PyDirReader::open(path)),
        },
        CorpusKind::PyFile => Box::new(PyDirReader::open(path)),
    })
}

/// Whether `dir` holds a `.py` file (outside hidden directories): then it is read as Python
/// sources, else as its data files ([`dataset_files`]).
pub fn has_python_files(dir: &Path) -> bool {
    visible_files(dir).any(|(_, kind)| kind == CorpusKind::PyFile)
}

/// The files under `dir` of a kind a corpus holds, in path order, hidden directories (`.cache`,
/// `.git`) not entered.
fn visible_files(dir: &Path) -> impl Iterator<Item = (PathBuf, CorpusKind)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| CorpusKind::of_name(&e.file_name().to_string_lossy()).map(|k| (e.into_path(), k)))
}

/// The directory among `corpus` that `out` lies in and that is read as data files (it holds no
/// `.py` file), if any: an output written there would be read back as corpus by the next run.
pub fn data_folder_holding(out: &Path, corpus: &[PathBuf]) -> Option<PathBuf> {
    let out = resolved(out);
    corpus.iter().filter(|d| d.is_dir()).find(|d| out.starts_with(resolved(d)) && !has_python_files(d)).cloned()
}

/// `path` made absolute with its existing part's links resolved, so that two spellings of one
/// place compare equal (the rest, not created yet, is appended as given).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
    let mut out = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    out.extend(rest.iter().rev());
    out
}

/// The data files (Parquet, JSON Lines) under a directory that holds no `.py` file — a dataset
/// downloaded as a folder (`hf download ORG/NAME --repo-type dataset --local-dir DIR`) — in path
/// order; `None` for a directory of Python sources (it has a `.py` file) or one with neither.
/// Hidden directories (`.cache`, `.git`) are not entered.
pub fn dataset_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (path, kind) in visible_files(dir) {
        if kind == CorpusKind::PyFile {
            return None;
        }
        files.push(path);
    }
    (!files.is_empty()).then_some(files)
}

/// Opens several corpus paths one after the other (each is opened when the previous one ends, so a
/// bad later path is reported only when reached; check them first with [`CorpusKind::of`]).
pub fn open_all(paths: &[PathBuf]) -> SourceIter {
    let paths = paths.to_vec();
    Box::new(paths.into_iter().flat_map(|p| match open(&p) {
        Ok(it) => it,
        Err(e) => Box::new(std::iter::once(Err(e))) as SourceIter,
    }))
}

/// Provenance column/field names, in order of preference: The Stack v1 uses the `max_stars_*`
/// names, The Stack v2 and most HF exports the short ones.
pub(crate) const PATH_FIELDS: &[&str] = &["path", "max_stars_repo_path", "file_path", "filepath"];
/// Repository-name fields, in order of preference.
pub(crate) const REPO_FIELDS: &[&str] = &["repo", "repo_name", "max_stars_repo_name"];
/// License fields, in order of preference (a string or a list of strings).
pub(crate) const LICENSE_FIELDS: &[&str] =
    &["license", "licenses", "max_stars_repo_licenses", "detected_licenses", "license_type"];
