//! The ground-truth pass for evalplus-style tasks: runs every canonical solution on its base and
//! plus inputs once, recording the outputs (as Python source expressions that the test programs
//! rebuild; never pickles) and how long each call took, which sets the per-input time limits.
//!
//! Canonical solutions are the benchmark's own published code, not model output, so they run in a
//! plain Python subprocess (as evalplus runs them in-process); results are cached per dataset hash.

use super::benchmark::{Oracle, PlusFamily, Task};
use super::data::Dataset;
use super::EvalError;
use crate::progress::Reporter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const COMMON: &str = include_str!("py/plus_common.py");
const SCRIPT: &str = include_str!("py/groundtruth.py");

/// Expected outputs and canonical timings for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub base: Vec<String>,
    pub base_time: Vec<f64>,
    pub plus: Vec<String>,
    pub plus_time: Vec<f64>,
    /// The same outputs as one base64 marshal string per variant, where marshal holds them exactly.
    #[serde(default)]
    pub base_blob: Option<String>,
    #[serde(default)]
    pub plus_blob: Option<String>,
}

/// Expected outputs for every differential task of a dataset, by task id.
pub type GroundTruth = BTreeMap<String, Expected>;

#[derive(Deserialize)]
struct Line {
    task_id: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(flatten)]
    expected: Option<Expected>,
}

/// Loads the ground truth from `cache_dir` when present, else computes and caches it.
/// Returns an empty map for datasets without differential tasks.
pub fn load_or_compute(
    dataset: &Dataset,
    python: &Path,
    jobs: usize,
    cache_dir: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<GroundTruth, EvalError> {
    let tasks: Vec<&Task> = dataset.tasks.iter().filter(|t| matches!(t.oracle, Oracle::Differential { .. })).collect();
    if tasks.is_empty() {
        return Ok(GroundTruth::new());
    }
    // The version tag changes when the cached form does (v2: marshal blobs). The interpreter is part
    // of the key: outputs and times measured under one Python (its version, its numpy) are not
    // another's.
    let py: String =
        Sha256::digest(python.as_os_str().as_encoded_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let cache = cache_dir.map(|d| d.join(format!("{}-{}-py{py}-v2.json", dataset.benchmark, dataset.hash)));
    if let Some(path) = &cache {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(gt) = serde_json::from_str::<GroundTruth>(&text) {
                if tasks.iter().all(|t| gt.contains_key(&t.task_id)) {
                    return Ok(gt);
                }
            }
        }
    }
    let gt = compute(&tasks, python, jobs, reporter)?;
    if let Some(path) = cache {
        // A cache that cannot be written (a read-only home) costs the next run this computation,
        // not this run its results.
        if let Err(e) = write_cache(&path, &gt) {
            reporter.note(&format!("warning: the ground truth was not cached ({e}); the next run computes it again"));
        }
    }
    Ok(gt)
}

fn oracle_err(python: &Path, problem: String) -> EvalError {
    EvalError::Oracle { python: python.to_path_buf(), problem }
}

fn write_cache(path: &PathBuf, gt: &GroundTruth) -> Result<(), EvalError> {
    if let Some(dir) = path.parent() {
        if dir.exists() && !dir.is_dir() {
            // create_dir_all would say only "File exists".
            return Err(EvalError::io(dir, std::io::Error::other("a file, not a directory")));
        }
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    }
    let text =
        serde_json::to_string(gt).map_err(|cause| EvalError::Serialize { what: "the ground truth cache", cause })?;
    crate::atomic_file::write(path, text.as_bytes()).map_err(|e| EvalError::io(path, e))
}

/// Runs the canonical solutions in `jobs` Python processes, tasks dealt round-robin.
pub fn compute(tasks: &[&Task], python: &Path, jobs: usize, reporter: &dyn Reporter) -> Result<GroundTruth, EvalError> {
    let jobs = jobs.clamp(1, tasks.len().max(1));
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); jobs];
    for (i, t) in tasks.iter().enumerate() {
        lines[i % jobs].push(request_line(t)?);
    }
    reporter.begin("ground truth", Some(tasks.len() as u64));
    let program = format!("{COMMON}\n{SCRIPT}");
    let results: Vec<Result<Vec<Line>, EvalError>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            lines.iter().map(|chunk| s.spawn(|| run_chunk(python, &program, chunk, reporter))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(oracle_err(python, "worker thread panicked".into()))))
            .collect()
    });
    reporter.end("ground truth");
    let mut gt = GroundTruth::new();
    let mut failures = Vec::new();
    for line in results.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
        match (line.error, line.expected) {
            (Some(err), _) => failures.push(format!("{}: {err}", line.task_id)),
            (None, Some(exp)) => {
                gt.insert(line.task_id, exp);
            }
            (None, None) => failures.push(format!("{}: no outputs", line.task_id)),
        }
    }
    if !failures.is_empty() {
        return Err(EvalError::CanonicalFailed(failures));
    }
    Ok(gt)
}

fn request_line(t: &Task) -> Result<String, EvalError> {
    let Oracle::Differential { family, base_input, plus_input, atol } = &t.oracle else {
        return Err(EvalError::NotDifferential(t.task_id.clone()));
    };
    let family = match family {
        PlusFamily::HumanEval => "humaneval",
        PlusFamily::Mbpp => "mbpp",
    };
    let v = serde_json::json!({
        "task_id": t.task_id, "family": family, "entry_point": t.entry_point, "code": t.canonical,
        "base_input": base_input, "plus_input": plus_input, "atol": atol,
    });
    Ok(v.to_string())
}

fn run_chunk(python: &Path, program: &str, chunk: &[String], reporter: &dyn Reporter) -> Result<Vec<Line>, EvalError> {
    if chunk.is_empty() {
        return Ok(Vec::new());
    }
    let mut child = Command::new(python)
        .args(["-I", "-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| oracle_err(python, format!("cannot start: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| oracle_err(python, "no stdin".into()))?;
    let input = chunk.join("\n") + "\n";
    // Feed stdin from its own thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let stdout = child.stdout.take().ok_or_else(|| oracle_err(python, "no stdout".into()))?;
    let mut out = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| oracle_err(python, format!("reading its output: {e}")))?;
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| oracle_err(python, format!("bad output line: {e}")))?;
        reporter.advance("ground truth", 1);
        out.push(parsed);
    }
    let _ = writer.join();
    let status = child.wait().map_err(|e| oracle_err(python, e.to_string()))?;
    if out.len() != chunk.len() {
        return Err(oracle_err(python, format!("exited ({status}) after {} of {} tasks", out.len(), chunk.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn task(oracle: Oracle) -> Task {
        Task {
            task_id: "T/1".into(),
            prompt: String::new(),
            instruct_prompt: None,
            entry_point: "f".into(),
            canonical: "def f(x):\n    return x\n".into(),
            prompt_is_code: false,
            examples: Vec::new(),
            oracle,
        }
    }

    #[test]
    fn ground_truth_failures_are_their_own_kinds() {
        let check = task(Oracle::Check { test: String::new() });
        let e = compute(&[&check], Path::new("python3"), 1, &Silent).unwrap_err();
        assert!(matches!(&e, EvalError::NotDifferential(id) if id == "T/1"), "{e}");
        let plus = Oracle::Differential {
            family: PlusFamily::HumanEval,
            base_input: "[[1]]".into(),
            plus_input: "[]".into(),
            atol: 0.0,
        };
        let missing = Path::new("/nonexistent/unitcoder-python");
        let e = compute(&[&task(plus)], missing, 1, &Silent).unwrap_err();
        match &e {
            EvalError::Oracle { python, problem } => {
                assert_eq!(python, missing);
                assert!(problem.starts_with("cannot start"), "{e}");
            }
            other => panic!("expected an Oracle error, got {other}"),
        }
    }
}
