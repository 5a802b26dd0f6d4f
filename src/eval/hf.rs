//! Benchmark data from Hugging Face datasets: `--data hf:ORG/NAME[@REVISION][:FILE]`, resolved in
//! the standard HF cache (`$HF_HOME/hub/datasets--ORG--NAME/...`) through the hf-hub crate and
//! downloaded into it when online. Only the cache is consulted in offline mode (`HF_HUB_OFFLINE`).
//! The CLI reads those variables; this module takes them as [`HubSettings`].
//!
//! Without `:FILE`, the benchmark's own Hub repository gets the Parquet file its dataset card lists
//! for the split we evaluate (`test`, or BigCodeBench's `v0.1.4`). evalplus' Hub copies hold the
//! OriginFmt release, without the inputs that differential scoring needs, so HumanEval+ and MBPP+
//! have no default here and say so: their default data is evalplus' release ([`super::release`]).

use super::benchmark::Benchmark;
use super::EvalError;
use crate::progress::Reporter;
use std::path::PathBuf;

use crate::hub::DatasetSpec;
pub use crate::hub::HubSettings;

/// One file of a dataset repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfData {
    pub repo: String,
    pub revision: String,
    pub file: String,
}

/// Whether a `--data` value names an HF dataset rather than a path.
pub fn is_hf_spec(spec: &str) -> bool {
    spec.starts_with("hf:")
}

/// The Parquet file of `bench`'s test data in its own Hub repository (as the dataset cards list
/// them), if the Hub copy is one the harness can score.
pub fn default_file(bench: Benchmark) -> Option<&'static str> {
    match bench {
        Benchmark::HumanEval => Some("openai_humaneval/test-00000-of-00001.parquet"),
        Benchmark::Mbpp => Some("full/test-00000-of-00001.parquet"),
        Benchmark::MbppSanitized => Some("sanitized/test-00000-of-00001.parquet"),
        Benchmark::BigCodeBench | Benchmark::BigCodeBenchHard => Some("data/v0.1.4-00000-of-00001.parquet"),
        Benchmark::HumanEvalPlus | Benchmark::MbppPlus => None,
    }
}

/// Parses `hf:ORG/NAME[@REVISION][:FILE]`; the file defaults as [`default_file`] says when the
/// repository is the benchmark's own.
pub fn parse_spec(spec: &str, bench: Benchmark) -> Result<HfData, EvalError> {
    let bad = |problem: String| EvalError::Setting { setting: format!("--data {spec}"), problem };
    let DatasetSpec { repo, revision, rest: file } =
        DatasetSpec::parse(spec).ok_or_else(|| bad("expected hf:ORG/NAME[@REVISION][:FILE]".into()))?;
    let file = match file {
        Some(f) => f,
        _ if repo != bench.hf_repo() => {
            return Err(bad(format!("name the file (hf:{repo}:FILE); defaults exist only for {}", bench.hf_repo())))
        }
        _ => default_file(bench).map(str::to_string).ok_or_else(|| {
            bad(format!(
                "the Hub's {repo} is evalplus' OriginFmt release, without the base_input/plus_input that \
                 {bench} scoring needs; leave --data out to use evalplus' release, or pass its file ({})",
                bench.default_file()
            ))
        })?,
    };
    Ok(HfData { repo, revision, file })
}

fn hf_repo(d: &HfData) -> hf_hub::Repo {
    DatasetSpec { repo: d.repo.clone(), revision: d.revision.clone(), rest: None }.repo()
}

/// The local path of the file: from the HF cache, else downloaded into it (unless offline).
pub fn fetch(d: &HfData, hub: &HubSettings, reporter: &dyn Reporter) -> Result<PathBuf, EvalError> {
    let repo = hf_repo(d);
    if let Some(p) = hub.cached(&repo, &d.file) {
        return Ok(p);
    }
    let name = format!("hf:{}@{}:{}", d.repo, d.revision, d.file);
    if hub.offline {
        return Err(EvalError::NotCached { name, dir: hub.repo_dir(&repo) });
    }
    hub.download(&repo, &d.file, reporter)
        .map_err(|e| EvalError::Download { name, cause: format!("{e}{}", crate::hub::advice(&e)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_for_the_benchmarks_own_repository() {
        let d = parse_spec("hf:bigcode/bigcodebench", Benchmark::BigCodeBench).unwrap();
        assert_eq!((d.revision.as_str(), d.file.as_str()), ("main", "data/v0.1.4-00000-of-00001.parquet"));
        let d = parse_spec("hf:me/copy@v2:x/y.parquet", Benchmark::HumanEval).unwrap();
        assert_eq!((d.repo.as_str(), d.revision.as_str(), d.file.as_str()), ("me/copy", "v2", "x/y.parquet"));
        let e = parse_spec("hf:me/copy", Benchmark::HumanEval).unwrap_err().to_string();
        assert!(e.contains("name the file"), "{e}");
        let e = parse_spec("hf:evalplus/humanevalplus", Benchmark::HumanEvalPlus).unwrap_err().to_string();
        assert!(e.contains("OriginFmt") && e.contains("HumanEvalPlus-v0.1.10"), "{e}");
        assert!(parse_spec("hf:noslash", Benchmark::HumanEval).is_err());
    }
}
