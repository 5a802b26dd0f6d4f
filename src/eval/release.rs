//! evalplus' release files: the data of HumanEval+ and MBPP+ when `--data` is left out. The Hub's
//! copies of those benchmarks are the OriginFmt release, without the `base_input`/`plus_input` that
//! differential scoring needs (see [`super::hf`]), so the harness reads the files evalplus itself
//! reads, from the GitHub releases it downloads them from.
//!
//! A release file is looked for in evalplus' own cache first (`$XDG_CACHE_HOME/evalplus/NAME-VERSION.jsonl`,
//! what `evalplus.evaluate` leaves after its first download: a user who ran evalplus has it), then
//! in ours (`CACHE/benchmarks/NAME-VERSION.jsonl.gz`), and is downloaded into ours otherwise
//! (unless offline), aside and renamed, so no half file is ever read. Every candidate is checked
//! against the SHA-256 of the release's uncompressed text: the bytes evalplus pins by MD5.

use super::benchmark::Benchmark;
use super::EvalError;
use crate::progress::Reporter;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where evalplus publishes its releases (`{BASE}/{name}_release/releases/download/{version}/...`).
pub const GITHUB: &str = "https://github.com/evalplus";

/// One evalplus release file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The file's stem as evalplus names it: `HumanEvalPlus`, `MbppPlus`.
    pub name: &'static str,
    /// The release tag evalplus pins.
    pub version: &'static str,
    /// SHA-256 of the uncompressed JSONL (its MD5 is the one evalplus checks).
    pub sha256: &'static str,
}

impl Release {
    /// The release `bench` is scored on by default, for the benchmarks whose Hub copy cannot be.
    pub fn of(bench: Benchmark) -> Option<Release> {
        match bench {
            Benchmark::HumanEvalPlus => Some(Release {
                name: "HumanEvalPlus",
                version: "v0.1.10",
                sha256: "42526ec0e7d5f3ee0b06d6ced98f8c8bae3d76519151bfb3d36f79010645bd7f",
            }),
            Benchmark::MbppPlus => Some(Release {
                name: "MbppPlus",
                version: "v0.2.0",
                sha256: "b54e762755248ca411b523c917fa9f93c07b5ff2966bf60b3917b853926a3dad",
            }),
            _ => None,
        }
    }

    /// The download URL under `base` (evalplus' GitHub, or a mirror laid out like it).
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/{}_release/releases/download/{}/{}.jsonl.gz",
            base.trim_end_matches('/'),
            self.name.to_lowercase(),
            self.version,
            self.name
        )
    }

    /// The file evalplus keeps in its cache directory (uncompressed).
    pub fn evalplus_file(&self) -> String {
        format!("{}-{}.jsonl", self.name, self.version)
    }

    /// The file we keep in ours (as downloaded).
    pub fn cached_file(&self) -> String {
        format!("{}-{}.jsonl.gz", self.name, self.version)
    }
}

/// Where release files are looked for and fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePlaces {
    /// evalplus' cache directory (`$XDG_CACHE_HOME/evalplus`), if known.
    pub evalplus_cache: Option<PathBuf>,
    /// Our own directory for them (`CACHE/benchmarks`).
    pub cache_dir: PathBuf,
    /// The releases' base URL ([`GITHUB`], or a mirror).
    pub base_url: String,
    /// Use only what is cached.
    pub offline: bool,
}

/// The local path of `rel`: from evalplus' cache or ours, else downloaded into ours.
pub fn fetch(rel: &Release, places: &ReleasePlaces, reporter: &dyn Reporter) -> Result<PathBuf, EvalError> {
    let theirs = places.evalplus_cache.as_ref().map(|d| d.join(rel.evalplus_file()));
    let ours = places.cache_dir.join(rel.cached_file());
    for path in theirs.iter().chain([&ours]) {
        if path.is_file() {
            check(rel, path)?;
            return Ok(path.clone());
        }
    }
    let url = rel.url(&places.base_url);
    let looked = theirs.iter().chain([&ours]).map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ");
    if places.offline {
        return Err(EvalError::ReleaseNotCached { url, looked });
    }
    reporter.begin(&format!("download {}", rel.cached_file()), None);
    let got = download(&url, &ours).and_then(|()| {
        check(rel, &ours).inspect_err(|_| {
            let _ = std::fs::remove_file(&ours);
        })
    });
    reporter.end(&format!("download {}", rel.cached_file()));
    got.map(|()| ours)
}

/// Downloads `url` to `target`, aside (`.partial-PID`) and renamed into place when whole.
fn download(url: &str, target: &Path) -> Result<(), EvalError> {
    let fail = |cause: String| EvalError::Download { name: url.to_string(), cause };
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    let result = (|| {
        let response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
        let mut file =
            std::fs::File::create(&partial).map_err(|e| fail(format!("creating {}: {e}", partial.display())))?;
        std::io::copy(&mut response.into_reader(), &mut file)
            .map_err(|e| fail(format!("writing {}: {e}", partial.display())))?;
        file.sync_all().map_err(|e| fail(format!("writing {}: {e}", partial.display())))?;
        std::fs::rename(&partial, target).map_err(|e| fail(format!("moving it to {}: {e}", target.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Checks that `path` (gzip'd or not) holds `rel`'s text.
fn check(rel: &Release, path: &Path) -> Result<(), EvalError> {
    let io = |e: std::io::Error| EvalError::io(path, e);
    let mut raw = Vec::new();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut raw)).map_err(io)?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(io)?;
        out
    } else {
        raw
    };
    let got = format!("{:x}", Sha256::digest(&text));
    if got != rel.sha256 {
        return Err(EvalError::ReleaseMismatch {
            path: path.to_path_buf(),
            release: format!("{} {}", rel.name, rel.version),
            expected: rel.sha256.to_string(),
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_urls_and_names_are_evalplus_own() {
        let he = Release::of(Benchmark::HumanEvalPlus).unwrap();
        assert_eq!(
            he.url(GITHUB),
            "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz"
        );
        assert_eq!(he.evalplus_file(), "HumanEvalPlus-v0.1.10.jsonl");
        let mbpp = Release::of(Benchmark::MbppPlus).unwrap();
        assert_eq!(
            mbpp.url("http://mirror/x/"),
            "http://mirror/x/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz"
        );
        assert!(Release::of(Benchmark::HumanEval).is_none() && Release::of(Benchmark::BigCodeBench).is_none());
    }
}
