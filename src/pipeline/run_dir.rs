//! A run directory: its layout ([`RunDir`]), the timings a run appends to it ([`RunTimings`]), and
//! the error of reading and writing its files ([`OutputError`]). Synthesis writes a run directory;
//! emit, merge and report read and rewrite it, so these live here rather than in either.

use crate::pipeline::journal::JournalError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A run directory's file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A JSONL record, cache or timings file.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Statistics, derived files or the report.
    #[error("{}: {cause}", .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
}

impl OutputError {
    /// An I/O error on `path`.
    pub fn io(path: &Path) -> impl Fn(std::io::Error) -> OutputError + '_ {
        move |cause| OutputError::Io { path: path.to_path_buf(), cause }
    }

    /// A failure on `path` that is not an `io::Error` (JSON, Parquet, a missing field).
    pub fn other(path: &Path, e: impl std::fmt::Display) -> OutputError {
        OutputError::Io { path: path.to_path_buf(), cause: std::io::Error::other(e.to_string()) }
    }
}

/// The layout of a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: &Path) -> RunDir {
        RunDir { root: root.to_path_buf() }
    }
    /// Accepted records, one JSON object per line.
    pub fn records(&self) -> PathBuf {
        self.root.join("dataset/records.jsonl")
    }
    /// Rejected records with their reasons.
    pub fn rejected(&self) -> PathBuf {
        self.root.join("rejected.jsonl")
    }
    /// The model-call cache.
    pub fn model_cache(&self) -> PathBuf {
        self.root.join("cache/model.jsonl")
    }
    /// The execution cache.
    pub fn exec_cache(&self) -> PathBuf {
        self.root.join("cache/exec.jsonl")
    }
    /// One line of timings per run (resumes append).
    pub fn timings(&self) -> PathBuf {
        self.root.join("timings.jsonl")
    }
    /// The statistics.
    pub fn stats(&self) -> PathBuf {
        self.root.join("stats.json")
    }
    /// The derived dataset formats' directory.
    pub fn dataset(&self) -> PathBuf {
        self.root.join("dataset")
    }
    /// Whether it holds records (accepted or rejected): a run to report on or merge.
    pub fn has_records(&self) -> bool {
        self.records().is_file() || self.rejected().is_file()
    }
    /// Whether it holds any of a run's own files (its caches alone are enough to resume from).
    pub fn is_run(&self) -> bool {
        self.has_records()
            || [self.stats(), self.timings(), self.model_cache(), self.exec_cache()].iter().any(|p| p.exists())
    }
}

/// Where one run's time went. A run appends a snapshot of its timings to `timings.jsonl` every
/// [`SynthSettings::checkpoint_s`] seconds and a last one when it ends, all with the same `run` id; the statistics
/// take the last line of each run, so a killed run keeps its numbers up to its last snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTimings {
    /// This run's id (start time and process id); empty in files of older versions, whose lines
    /// are each a whole run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    /// Whether this is the run's last line (false: a snapshot taken while it went on).
    #[serde(default = "yes")]
    pub ended: bool,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Seconds inside `Generator::generate`.
    pub model_s: f64,
    /// Seconds the model thread had nothing to generate and waited on the sandbox.
    pub model_waited_s: f64,
    /// Seconds sandbox workers sat idle waiting for programs (summed over workers).
    pub sandbox_idle_s: f64,
    /// Model calls made / answered from the cache.
    pub model_calls: u64,
    pub model_calls_cached: u64,
    /// Executions run / answered from the cache.
    pub executions: u64,
    pub executions_cached: u64,
    /// Sandbox seconds of the executions run (summed over workers, cached ones excluded).
    #[serde(default)]
    pub exec_s: f64,
    /// Of `executions`, the quality step's (mutants and traced runs), and their sandbox seconds.
    #[serde(default)]
    pub quality_executions: u64,
    #[serde(default)]
    pub quality_exec_s: f64,
    /// Tokens generated in this run (cached answers excluded).
    pub tokens: u64,
    /// Records finished in this run / skipped as already finished.
    pub finished: u64,
    pub skipped_done: u64,
}

fn yes() -> bool {
    true
}

/// The settings that shape a run's data: the model, the prompts and every number that changes what
/// the model is asked or how its answers are judged. Recorded in `stats.json` so that `merge` can
/// refuse shards made differently (their records would not be one data set) and `report` can name
/// the model. Throughput settings (`--batch`, `--jobs`, the device) are left out: they change how
/// fast a run goes, not what it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The model's identifier (card name, path, repo or server), as in the model-call cache's keys.
    pub model: String,
    /// Whether the model was prompted through a chat template.
    pub chat: bool,
    /// Each prompt template's hash (16 hex digits of SHA-256 of its source), by file name.
    pub prompts: BTreeMap<String, String>,
    /// The benchmarks records were decontaminated against (empty: none).
    #[serde(default)]
    pub decontaminated_against: Vec<String>,
    pub tests_samples: u32,
    pub tests_temperature: f32,
    pub rounds: u32,
    pub samples: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub repetition_penalty: f32,
    pub max_tokens: usize,
    pub seed: u64,
    pub min_tests: usize,
    pub feedback_chars: usize,
    pub mutants: usize,
    pub min_mutation_score: f64,
    pub min_coverage: f64,
    /// Polished docstrings' `>>>` examples were run and reconciled with what the function does
    /// (false in runs of versions before the check).
    #[serde(default)]
    pub docstring_examples_checked: bool,
    /// Polished docstrings' `Raises` entries were kept only where the function was seen to raise
    /// what they name, and their return types checked against what it returned (false in runs of
    /// versions before these checks).
    #[serde(default)]
    pub docstring_claims_checked: bool,
}

impl RunSettings {
    /// The fields whose values differ, as `field: ours vs theirs`, in field order.
    pub fn differences(&self, other: &RunSettings) -> Vec<String> {
        // Field by field through JSON: the list cannot fall behind the struct as fields are added.
        let (a, b) = (serde_json::to_value(self), serde_json::to_value(other));
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (a, b) else {
            return Vec::new();
        };
        a.iter()
            .filter_map(|(k, x)| {
                let y = b.get(k).unwrap_or(&serde_json::Value::Null);
                let same = x == y || (k == "model" && same_served_model(x, y));
                (!same).then(|| format!("{k}: {} vs {}", shown(x), shown(y)))
            })
            .collect()
    }

    /// Whether records made with `self` and with `other` are one data set ([`Self::differences`]
    /// finds nothing).
    pub fn same_as(&self, other: &RunSettings) -> bool {
        self.differences(other).is_empty()
    }
}

/// A setting's value as a user typed it: a number stored as `f32` (a temperature, `top_p`) shows as
/// `0.7`, not as the `f64` it widens to (`0.699999988079071`).
fn shown(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() && f as f32 as f64 == f => format!("{}", f as f32),
        _ => v.to_string(),
    }
}

/// Two server models (`openai:URL#NAME`) that name the same served model: shards of one run often
/// ask a server each (one per node), and a restarted server may come back on another port, so the
/// address alone does not make another data set.
fn same_served_model(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let identity = |v: &serde_json::Value| v.as_str().map(crate::engine::remote::model_identity);
    matches!((identity(a), identity(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::RunSettings;

    fn settings(model: &str) -> RunSettings {
        crate::pipeline::synth::SynthSettings::default().run_settings(model, true, Vec::new())
    }

    #[test]
    fn a_server_model_is_the_served_name_not_the_address() {
        let a = settings("openai:http://10.0.0.1:8000/v1#qwen");
        // Another node's server, or the same one restarted on another port: one data set.
        assert!(a.same_as(&settings("openai:http://10.0.0.2:9000/v1#qwen")));
        // Another served model, or a local model, is not.
        let other = a.differences(&settings("openai:http://10.0.0.1:8000/v1#llama"));
        assert_eq!(other.len(), 1, "{other:?}");
        assert!(other[0].starts_with("model: "), "{other:?}");
        assert!(!a.same_as(&settings("qwen2.5-coder-1.5b")));
        assert!(!settings("qwen2.5-coder-1.5b").same_as(&settings("qwen2.5-coder-0.5b")));
        // Anything else that differs still counts.
        let mut b = settings("openai:http://10.0.0.2:9000/v1#qwen");
        b.rounds += 1;
        assert_eq!(a.differences(&b), vec![format!("rounds: {} vs {}", a.rounds, b.rounds)]);
        // A temperature is shown as typed, not as the f64 its f32 widens to.
        let (mut warm, mut cold) = (settings("m"), settings("m"));
        (warm.temperature, cold.temperature) = (0.7, 0.9);
        assert_eq!(warm.differences(&cold), ["temperature: 0.7 vs 0.9"]);
    }
}
