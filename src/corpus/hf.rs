//! Corpora on the Hugging Face Hub: `--corpus hf:ORG/NAME[@REVISION][:PATTERN]`, as the paper
//! retrieves from a pre-training corpus (The Stack, or any dataset of code files). The dataset's
//! files that PATTERN matches — a path, or a glob such as `data/python/*.parquet` (`*` stays within
//! a folder, `**` crosses folders) — or without one every file of a format the readers take
//! (Parquet, JSON Lines plain or compressed; not `.py`, which in a dataset repository is usually a
//! loading script), in path order, are fetched into the HF cache (downloaded when missing, unless
//! offline) and then read as local files.
//!
//! The file list comes from the Hub (`/api/datasets/ORG/NAME/revision/REV`, through hf-hub, with
//! the token and endpoint the HF tools use), or offline from the cache's snapshot of that revision,
//! so a run that fetched its files once can be repeated without the network.

use super::{CorpusError, CorpusKind};
use crate::hub::{DatasetSpec, HubSettings};
use crate::progress::Reporter;
use std::path::PathBuf;

/// A dataset corpus: `hf:ORG/NAME[@REVISION][:PATTERN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfCorpus {
    /// The spec as given (for messages).
    pub spec: String,
    /// The dataset and revision; its `rest` is the pattern of the files to read (a path or glob;
    /// `None` reads every corpus file of the dataset).
    pub dataset: DatasetSpec,
}

/// Whether a `--corpus` value names a Hugging Face dataset rather than a path.
pub fn is_hf_spec(spec: &str) -> bool {
    spec.starts_with("hf:")
}

impl HfCorpus {
    /// Parses `hf:ORG/NAME[@REVISION][:PATTERN]`.
    pub fn parse(spec: &str) -> Result<HfCorpus, CorpusError> {
        let bad = |message: &str| CorpusError::Hub { spec: spec.to_string(), message: message.to_string() };
        let dataset = DatasetSpec::parse(spec).ok_or_else(|| bad("expected hf:ORG/NAME[@REVISION][:PATTERN]"))?;
        if let Some(p) = &dataset.rest {
            glob(p).map_err(|e| bad(&format!("pattern `{p}`: {e}")))?;
        }
        Ok(HfCorpus { spec: spec.to_string(), dataset })
    }

    fn error(&self, message: impl Into<String>) -> CorpusError {
        CorpusError::Hub { spec: self.spec.clone(), message: message.into() }
    }

    /// The local paths of the corpus's files, in path order: from the HF cache, or downloaded into
    /// it (each reported to `reporter` as `download FILE`).
    pub fn fetch(&self, hub: &HubSettings, reporter: &dyn Reporter) -> Result<Vec<PathBuf>, CorpusError> {
        self.files(hub)?.iter().map(|f| self.local(hub, f, reporter)).collect()
    }

    /// The names of the dataset's files to read, in path order: from the Hub's list, or offline
    /// from the cache's snapshot of the revision. Nothing is downloaded.
    pub fn files(&self, hub: &HubSettings) -> Result<Vec<String>, CorpusError> {
        if hub.offline {
            self.select(&self.cached_files(hub)?)
        } else {
            self.select(&self.hub_files(hub)?)
        }
    }

    /// The local path of the dataset's file `file`: in the HF cache, downloaded into it when
    /// missing (reported to `reporter`), or offline the cache's snapshot alone.
    pub fn local(&self, hub: &HubSettings, file: &str, reporter: &dyn Reporter) -> Result<PathBuf, CorpusError> {
        if hub.offline {
            return Ok(self.snapshot(hub)?.join(file));
        }
        let repo = self.dataset.repo();
        match hub.cached(&repo, file) {
            Some(p) => Ok(p),
            None => hub
                .download(&repo, file, reporter)
                .map_err(|e| self.error(format!("cannot download {file}: {e}{}", crate::hub::advice(&e)))),
        }
    }

    /// The dataset's files, as the Hub lists them.
    fn hub_files(&self, hub: &HubSettings) -> Result<Vec<String>, CorpusError> {
        let api = hub.api().map_err(|e| self.error(format!("hf-hub: {e}")))?;
        let info = api
            .repo(self.dataset.repo())
            .info()
            .map_err(|e| self.error(format!("cannot list the dataset's files: {e}{}", crate::hub::advice(&e))))?;
        Ok(info.siblings.into_iter().map(|s| s.rfilename).collect())
    }

    /// The cache's snapshot directory of the revision (offline): an error when there is none.
    fn snapshot(&self, hub: &HubSettings) -> Result<PathBuf, CorpusError> {
        let dir = hub.repo_dir(&self.dataset.repo());
        let commit = match std::fs::read_to_string(dir.join("refs").join(&self.dataset.revision)) {
            Ok(c) => c.trim().to_string(),
            // A commit hash names its snapshot directly.
            Err(_) => self.dataset.revision.clone(),
        };
        let snapshot = dir.join("snapshots").join(&commit);
        if !snapshot.is_dir() {
            return Err(self.error(format!(
                "the dataset is not in the HF cache at {} (no snapshot of revision {}) and offline mode is on \
                 (HF_HUB_OFFLINE)",
                dir.display(),
                self.dataset.revision
            )));
        }
        Ok(snapshot)
    }

    /// The files in the cache's snapshot of the revision (offline).
    fn cached_files(&self, hub: &HubSettings) -> Result<Vec<String>, CorpusError> {
        let snapshot = self.snapshot(hub)?;
        let mut files = Vec::new();
        // The snapshot's files are links into the blobs: followed, so they read as files.
        for entry in walkdir::WalkDir::new(&snapshot).follow_links(true) {
            let entry = entry.map_err(|e| self.error(format!("reading {}: {e}", snapshot.display())))?;
            if entry.file_type().is_file() {
                if let Ok(rel) = entry.path().strip_prefix(&snapshot) {
                    files.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        Ok(files)
    }

    /// The listed files to read, sorted: those the pattern matches, or every corpus file.
    fn select(&self, listed: &[String]) -> Result<Vec<String>, CorpusError> {
        let matcher = match &self.dataset.rest {
            Some(p) => Some(glob(p).map_err(|e| self.error(format!("pattern `{p}`: {e}")))?),
            None => None,
        };
        let mut files: Vec<String> = listed
            .iter()
            .filter(|f| match &matcher {
                Some(m) => m.is_match(f.as_str()),
                None => CorpusKind::of_name(f).is_some_and(|k| k != CorpusKind::PyFile),
            })
            .cloned()
            .collect();
        files.sort();
        if files.is_empty() {
            let what = match &self.dataset.rest {
                Some(p) => format!("no file of the dataset matches `{p}`"),
                None => "the dataset has no Parquet or JSON Lines file".to_string(),
            };
            let mut some: Vec<&String> = listed.iter().collect();
            some.sort();
            let shown: Vec<&str> = some.iter().take(8).map(|s| s.as_str()).collect();
            let more = if listed.len() > shown.len() {
                format!(", and {} more", listed.len() - shown.len())
            } else {
                String::new()
            };
            return Err(self.error(format!(
                "{what}; it has: {}{more}",
                if shown.is_empty() { "no files".into() } else { shown.join(", ") }
            )));
        }
        for f in &files {
            if CorpusKind::of_name(f).is_none() {
                return Err(self.error(format!(
                    "{f}: not a corpus format unitcoder reads (.parquet, .jsonl, .json, .ndjson, optionally .gz or \
                     .zst, .py)"
                )));
            }
        }
        Ok(files)
    }
}

/// A file pattern: `*` and `?` stay within a folder, `**` crosses folders.
fn glob(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
    Ok(globset::GlobBuilder::new(pattern).literal_separator(true).build()?.compile_matcher())
}

/// The local files of `corpus` paths, with every `hf:` spec among them replaced by its dataset's
/// files (fetched as [`HfCorpus::fetch`] does), in order.
///
/// When whole files are split among shards, `keep` says whether the file at position k of that
/// list (each dataset's files counted one by one) is this shard's: only those are returned, and only
/// they are downloaded; the second value counts the others. A dataset folder's files are split
/// one by one; a directory of `.py` sources cannot be split that way
/// ([`CorpusError::NotSplitByFile`]). A local path that does not exist is an error in every shard,
/// not only in the one it would go to.
pub fn resolve_specs(
    corpus: &[PathBuf],
    hub: &HubSettings,
    reporter: &dyn Reporter,
    keep: Option<&dyn Fn(usize) -> bool>,
) -> Result<(Vec<PathBuf>, u64), CorpusError> {
    let (mut out, mut k, mut skipped) = (Vec::new(), 0usize, 0u64);
    let mut mine = || {
        let m = keep.is_none_or(|keep| keep(k));
        k += 1;
        skipped += u64::from(!m);
        m
    };
    for path in corpus {
        match path.to_str().filter(|s| is_hf_spec(s)) {
            Some(spec) => {
                let dataset = HfCorpus::parse(spec)?;
                for file in dataset.files(hub)? {
                    if mine() {
                        out.push(dataset.local(hub, &file, reporter)?);
                    }
                }
            }
            None if !path.exists() => return Err(CorpusError::NotFound(path.clone())),
            None if keep.is_some() && path.is_dir() => {
                // A dataset folder's files are split one by one; a source tree is not split by file.
                for file in super::dataset_files(path).ok_or_else(|| CorpusError::NotSplitByFile(path.clone()))? {
                    if mine() {
                        out.push(file);
                    }
                }
            }
            None => {
                if mine() {
                    out.push(path.clone());
                }
            }
        }
    }
    Ok((out, skipped))
}

/// Whether any of `corpus` is an `hf:` spec.
pub fn any_spec(corpus: &[PathBuf]) -> bool {
    corpus.iter().any(|p| p.to_str().is_some_and(is_hf_spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Vec<String> {
        [
            "README.md",
            "the-stack-smol.py",
            "data/python/data.json",
            "data/python/train-00001.parquet",
            "data/python/train-00000.parquet",
            "data/rust/train-00000.parquet",
            "data/python/sub/x.parquet",
        ]
        .map(str::to_string)
        .to_vec()
    }

    #[test]
    fn specs_parse_with_revision_and_pattern() {
        let c = HfCorpus::parse("hf:bigcode/the-stack-smol").unwrap().dataset;
        assert_eq!((c.repo.as_str(), c.revision.as_str(), c.rest.as_deref()), ("bigcode/the-stack-smol", "main", None));
        let c = HfCorpus::parse("hf:o/n@v1.0:data/python/*.parquet").unwrap().dataset;
        assert_eq!((c.revision.as_str(), c.rest.as_deref()), ("v1.0", Some("data/python/*.parquet")));
        for bad in ["hf:noslash", "hf:/n", "hf:o/n@", "hf:o/n:data/[", "hf:a/b/c"] {
            let e = HfCorpus::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--corpus {bad}:")), "{e}");
        }
    }

    #[test]
    fn patterns_pick_files_in_path_order_and_stay_within_a_folder() {
        let pick = |spec: &str| HfCorpus::parse(spec).unwrap().select(&listed());
        assert_eq!(
            pick("hf:o/n:data/python/*.parquet").unwrap(),
            ["data/python/train-00000.parquet", "data/python/train-00001.parquet"]
        );
        assert_eq!(pick("hf:o/n:data/**/*.parquet").unwrap().len(), 4);
        // Every corpus file, not the loading script nor the card.
        assert_eq!(
            pick("hf:o/n").unwrap(),
            [
                "data/python/data.json",
                "data/python/sub/x.parquet",
                "data/python/train-00000.parquet",
                "data/python/train-00001.parquet",
                "data/rust/train-00000.parquet"
            ]
        );
        let e = pick("hf:o/n:data/go/*.parquet").unwrap_err().to_string();
        assert!(e.contains("no file of the dataset matches `data/go/*.parquet`") && e.contains("README.md"), "{e}");
        let e = pick("hf:o/n:README.md").unwrap_err().to_string();
        assert!(e.contains("README.md: not a corpus format"), "{e}");
    }
}
