//! The Hugging Face Hub as the HF tools configure it: the cache (`$HF_HOME/hub`), offline mode
//! (`HF_HUB_OFFLINE`) and the endpoint (`HF_ENDPOINT`, for a mirror). One place for models
//! ([`crate::engine`]), benchmark data ([`crate::eval::hf`]) and corpora ([`crate::corpus::hf`]);
//! the CLI reads the variables, the library takes them as [`HubSettings`].

use crate::progress::Reporter;
use std::path::PathBuf;

/// Where the HF cache is, whether the network may be used, and which Hub to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The HF hub cache directory (`$HF_HOME/hub`), laid out `{models,datasets}--ORG--NAME/{refs,snapshots,blobs}`.
    pub hub_dir: PathBuf,
    /// Only look in the cache (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// The Hub's URL when not huggingface.co (`HF_ENDPOINT`, e.g. a mirror).
    pub endpoint: Option<String>,
}

impl HubSettings {
    /// A client of the Hub that downloads into the cache (no progress bars of its own: callers
    /// report through their [`crate::progress::Reporter`]).
    pub fn api(&self) -> Result<hf_hub::api::sync::Api, hf_hub::api::sync::ApiError> {
        let mut builder =
            hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(self.hub_dir.clone())).with_progress(false);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        builder.build()
    }
}

impl HubSettings {
    /// The path of `file` of `repo` in the cache, if it is there.
    pub fn cached(&self, repo: &hf_hub::Repo, file: &str) -> Option<PathBuf> {
        hf_hub::Cache::new(self.hub_dir.clone()).repo(repo.clone()).get(file)
    }

    /// The cache directory of `repo` (`datasets--ORG--NAME`), as errors name it.
    pub fn repo_dir(&self, repo: &hf_hub::Repo) -> PathBuf {
        self.hub_dir.join(repo.folder_name())
    }

    /// Downloads `file` of `repo` into the cache (the caller checked it is not there and that the
    /// network may be used), reporting its bytes to `reporter` as task `download FILE`.
    pub fn download(
        &self,
        repo: &hf_hub::Repo,
        file: &str,
        reporter: &dyn Reporter,
    ) -> Result<PathBuf, hf_hub::api::sync::ApiError> {
        let progress = Progress { reporter, task: String::new() };
        self.api()?.repo(repo.clone()).download_with_progress(file, progress)
    }
}

/// What a user can do about a failed Hub request, to end its error message: no network (a DNS
/// failure, a refused connection) or a refusal for want of a token. Empty for the rest: a missing
/// file or revision is named by the error itself. Every Hub error says the same, whichever of
/// models, benchmark data or corpora asked.
pub fn advice(e: &hf_hub::api::sync::ApiError) -> &'static str {
    use hf_hub::api::sync::ApiError;
    match e {
        ApiError::RequestError(e) => match &**e {
            ureq::Error::Status(401 | 403, _) => {
                " (a gated or private repository needs a token: `hf auth login`, or HF_TOKEN)"
            }
            ureq::Error::Status(..) => "",
            ureq::Error::Transport(_) => {
                " (the Hub cannot be reached: without the network, HF_HUB_OFFLINE=1 reads what the HF cache \
                 holds, and HF_ENDPOINT names a mirror)"
            }
        },
        ApiError::TooManyRetries(inner) => advice(inner),
        _ => "",
    }
}

/// hf-hub's progress callbacks forwarded to a [`Reporter`].
struct Progress<'r> {
    reporter: &'r dyn Reporter,
    task: String,
}

impl hf_hub::api::Progress for Progress<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        // A resumed download calls this again: one task, begun once.
        if self.task.is_empty() {
            self.task = format!("download {filename}");
            self.reporter.begin(&self.task, Some(size as u64));
        }
    }
    fn update(&mut self, size: usize) {
        self.reporter.advance(&self.task, size as u64);
    }
    fn finish(&mut self) {
        self.reporter.end(&self.task);
    }
}

/// A dataset named on the command line, `hf:ORG/NAME[@REVISION][:REST]`: the grammar of benchmark
/// data (`:FILE`) and corpora (`:PATTERN`). The revision defaults to `main`; an empty REST is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    pub repo: String,
    pub revision: String,
    pub rest: Option<String>,
}

impl DatasetSpec {
    /// Splits `spec`; `None` when it is not of that form.
    pub fn parse(spec: &str) -> Option<DatasetSpec> {
        let rest = spec.strip_prefix("hf:")?;
        let (repo_rev, tail) = match rest.split_once(':') {
            Some((r, t)) => (r, Some(t.to_string()).filter(|t| !t.is_empty())),
            None => (rest, None),
        };
        let (repo, revision) = repo_rev.split_once('@').unwrap_or((repo_rev, "main"));
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) || revision.is_empty() {
            return None;
        }
        Some(DatasetSpec { repo: repo.to_string(), revision: revision.to_string(), rest: tail })
    }

    /// The dataset repository at the revision, as hf-hub addresses it.
    pub fn repo(&self) -> hf_hub::Repo {
        hf_hub::Repo::with_revision(self.repo.clone(), hf_hub::RepoType::Dataset, self.revision.clone())
    }
}

/// `path` as the Hub names it when it lies in an HF cache's snapshot
/// (`…/{models,datasets}--ORG--NAME/snapshots/COMMIT/FILE` → `hf:ORG/NAME@COMMIT:FILE`), so
/// provenance reads the same on every machine; `None` for any other path.
pub fn hub_name(path: &std::path::Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    let at = parts.iter().position(|p| *p == "snapshots")?;
    let repo = parts.get(at.checked_sub(1)?)?;
    let repo = repo.strip_prefix("datasets--").or_else(|| repo.strip_prefix("models--"))?;
    let (org, name) = repo.split_once("--")?;
    let commit = parts.get(at + 1)?;
    let file = parts.get(at + 2..).filter(|f| !f.is_empty())?.join("/");
    Some(format!("hf:{org}/{name}@{commit}:{file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_specs_split_into_repo_revision_and_rest() {
        let d = DatasetSpec::parse("hf:o/n@v2:a/b:c").unwrap();
        assert_eq!((d.repo.as_str(), d.revision.as_str(), d.rest.as_deref()), ("o/n", "v2", Some("a/b:c")));
        let d = DatasetSpec::parse("hf:o/n:").unwrap();
        assert_eq!((d.revision.as_str(), d.rest), ("main", None));
        for bad in ["o/n", "hf:noslash", "hf:/n", "hf:o/n@", "hf:a/b/c", "hf:o/@x"] {
            assert_eq!(DatasetSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn hub_failures_say_what_a_user_can_do() {
        use hf_hub::api::sync::ApiError;
        let status = |code| {
            let response = ureq::Response::new(code, "status", "").unwrap();
            ApiError::RequestError(Box::new(ureq::Error::Status(code, response)))
        };
        assert!(advice(&status(401)).contains("HF_TOKEN"));
        assert!(advice(&status(403)).contains("hf auth login"));
        assert_eq!(advice(&status(404)), "", "a missing file is named by the error itself");
        // A port nothing listens on: the connection is refused, as with no network.
        let refused = ureq::get("http://127.0.0.1:9/x").call().unwrap_err();
        let refused = ApiError::RequestError(Box::new(refused));
        assert!(advice(&refused).contains("HF_HUB_OFFLINE=1"), "{}", advice(&refused));
        assert!(advice(&ApiError::TooManyRetries(Box::new(refused))).contains("cannot be reached"));
    }

    #[test]
    fn cache_snapshot_paths_read_as_hub_names() {
        let p = std::path::Path::new("/h/hub/datasets--bigcode--the-stack/snapshots/abc123/data/python/x.parquet");
        assert_eq!(hub_name(p).as_deref(), Some("hf:bigcode/the-stack@abc123:data/python/x.parquet"));
        let m = std::path::Path::new("/h/hub/models--Qwen--Q-GGUF/snapshots/c0/q.gguf");
        assert_eq!(hub_name(m).as_deref(), Some("hf:Qwen/Q-GGUF@c0:q.gguf"));
        for other in ["/usr/lib/python3.11", "/h/snapshots/x", "/h/hub/datasets--a--b/snapshots/c0"] {
            assert_eq!(hub_name(std::path::Path::new(other)), None, "{other}");
        }
    }
}
