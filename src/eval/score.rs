//! Scoring: samples in, per-sample results out. Samples come from a file (human-eval
//! `{task_id, completion}` or evalplus/BigCodeBench `{task_id, solution}`), from the canonical
//! solutions (`check-gt`), or from generation; each becomes one sandbox job whose verdict is read
//! back as pass/fail per variant (`base`, and `plus` for evalplus benchmarks).

use super::benchmark::{Benchmark, Oracle, Task};
use super::data::Dataset;
use super::exec::Execute;
use super::groundtruth::GroundTruth;
use super::program::{build_job, variant_passed, JobSettings};
use super::EvalError;
use crate::progress::Reporter;
use crate::sandbox::{Status, TestStatus, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// One candidate solution of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub task_id: String,
    /// 0-based index among the task's samples.
    pub index: usize,
    /// The complete program to run.
    pub solution: String,
}

/// Pass/fail of one variant (`base` or `plus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub passed: bool,
    /// The first failing input or test, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The judged outcome of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    pub task_id: String,
    pub sample: usize,
    /// The strictest variant: `plus` for evalplus benchmarks, the only one otherwise.
    pub passed: bool,
    /// `pass`, `fail`, `error`, `timeout`, or `env_error` (a library the task needs is missing:
    /// the environment's fault, not the model's).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub base: VariantResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plus: Option<VariantResult>,
    pub duration_ms: u64,
    /// Tails of the program's output, for diagnosis.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    pub solution: String,
}

/// How the reason of an `env_error` result begins; the module's name follows in backquotes.
pub const ENV_REASON: &str = "environment: module ";

impl SampleResult {
    /// The module an `env_error` result found missing.
    pub fn missing_module(&self) -> Option<&str> {
        let rest = self.reason.as_deref()?.strip_prefix(ENV_REASON)?.strip_prefix('`')?;
        rest.split('`').next()
    }

    /// Whether the failure is the environment's (a missing library), not the model's.
    pub fn is_env_error(&self) -> bool {
        self.status == "env_error"
    }
}

/// Why a task id that is not in the data may still look right: MBPP's test split numbers its tasks
/// 11-510, and evalplus spells MBPP ids `Mbpp/N`.
fn unknown_task_hint(task_id: &str, dataset: &Dataset) -> String {
    use super::Benchmark::*;
    let number = task_id.rsplit('/').next().and_then(|n| n.parse::<u64>().ok());
    match (dataset.benchmark, number) {
        (Mbpp, Some(_)) if task_id.starts_with("Mbpp/") => {
            "; MBPP's own ids are numbers (`Mbpp/N` is evalplus' spelling: --benchmark mbpp-plus)".into()
        }
        (Mbpp, Some(n)) if !(11..=510).contains(&n) => {
            "; mbpp is scored on its test split, tasks 11 to 510 (1-10 are its prompt examples, 511-974 train and validation)".into()
        }
        (MbppPlus, Some(_)) if !task_id.contains('/') => "; evalplus' MBPP+ ids are spelled `Mbpp/N`".into(),
        _ => String::new(),
    }
}

/// Reads a samples file: JSONL with `task_id` and either `solution` (a complete program) or
/// `completion` (appended to the task's prompt where the prompt is code). Task ids may be strings
/// or numbers (MBPP). Samples of one task are numbered in file order.
pub fn load_samples(path: &Path, dataset: &Dataset) -> Result<Vec<Sample>, EvalError> {
    parse_samples(path, &read_samples(path)?, dataset)
}

/// The text of a samples file, decompressed. Callers that need the lines again after scoring (for
/// human-eval's `<samples>_results.jsonl`, the `model` field) keep this text rather than read the
/// file twice: a pipe (`--samples /dev/stdin`, `<(zcat ...)`) reads empty the second time, and a
/// file changed during hours of scoring would no longer match its results.
pub fn read_samples(path: &Path) -> Result<String, EvalError> {
    let bytes = super::data::read_maybe_gz(path)?;
    String::from_utf8(bytes).map_err(|e| EvalError::data(path, 0, format!("not UTF-8: {e}")))
}

/// [`load_samples`] on text already read from `path` (which only names it in errors).
pub fn parse_samples(path: &Path, text: &str, dataset: &Dataset) -> Result<Vec<Sample>, EvalError> {
    let by_id: HashMap<&str, &Task> = dataset.tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |p: String| EvalError::data(path, i + 1, p);
        // serde's own "at line 1 column N" would name the line within the line.
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| err(crate::json_line::problem(&e)))?;
        if !v.is_object() {
            return Err(err(format!("expected a JSON object, got {}", crate::json_line::kind(&v))));
        }
        let task_id = match v.get("task_id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            None => return Err(err("missing field `task_id`".into())),
            Some(other) => {
                return Err(err(format!(
                    "field `task_id`: expected a string or a number, got {}",
                    crate::json_line::kind(other)
                )))
            }
        };
        let task = by_id.get(task_id.as_str()).ok_or_else(|| {
            err(format!(
                "task `{task_id}` is not in {} ({}){}",
                dataset.benchmark,
                dataset.path.display(),
                unknown_task_hint(&task_id, dataset)
            ))
        })?;
        // A field of the wrong type is named, rather than passed over for the other one.
        for name in ["solution", "completion"] {
            if let Some(other) = v.get(name).filter(|f| !f.is_string() && !f.is_null()) {
                return Err(err(format!("field `{name}`: expected a string, got {}", crate::json_line::kind(other))));
            }
        }
        let solution = match (v.get("solution").and_then(|s| s.as_str()), v.get("completion").and_then(|s| s.as_str()))
        {
            (Some(s), _) => s.to_string(),
            (None, Some(c)) => task.program_from_completion(c),
            _ => return Err(err("expected a string field `solution` or `completion`".into())),
        };
        let n = counts.entry(task_id.clone()).or_default();
        out.push(Sample { task_id, index: *n, solution });
        *n += 1;
    }
    if out.is_empty() {
        return Err(EvalError::data(
            path,
            0,
            "the file has no samples (expected JSONL lines with `task_id` and `solution` or `completion`)",
        ));
    }
    Ok(out)
}

/// One sample per task: its canonical solution.
pub fn canonical_samples(dataset: &Dataset) -> Vec<Sample> {
    dataset
        .tasks
        .iter()
        .map(|t| Sample { task_id: t.task_id.clone(), index: 0, solution: t.canonical.clone() })
        .collect()
}

/// Runs every sample through `exec` and returns the results in sample order.
pub fn score(
    dataset: &Dataset,
    gt: &GroundTruth,
    samples: &[Sample],
    exec: &dyn Execute,
    settings: &JobSettings,
    reporter: &dyn Reporter,
) -> Result<Vec<SampleResult>, EvalError> {
    let by_id: HashMap<&str, &Task> = dataset.tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let mut jobs = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let task = by_id.get(s.task_id.as_str()).ok_or_else(|| EvalError::UnknownTask(s.task_id.clone()))?;
        jobs.push(build_job(i.to_string(), task, &s.solution, gt.get(&s.task_id), settings)?);
    }
    let mut results: Vec<Option<SampleResult>> = vec![None; samples.len()];
    reporter.begin("execute", Some(samples.len() as u64));
    exec.run_batch(jobs, &mut |v: Verdict| {
        if let Some(i) = v.id.parse::<usize>().ok().filter(|&i| i < samples.len()) {
            let s = &samples[i];
            if let Some(task) = by_id.get(s.task_id.as_str()) {
                results[i] = Some(judge(dataset.benchmark, task, s, &v));
            }
        }
        reporter.advance("execute", 1);
    });
    reporter.end("execute");
    results.into_iter().enumerate().map(|(i, r)| r.ok_or(EvalError::NoVerdict(i))).collect()
}

/// Reads a verdict as a sample result.
pub fn judge(benchmark: Benchmark, task: &Task, sample: &Sample, v: &Verdict) -> SampleResult {
    let first_failure = v
        .tests
        .iter()
        .find(|t| t.status != TestStatus::Pass)
        .map(|t| format!("{}: {}", t.name, t.message.clone().unwrap_or_default()));
    let variant = |name: &str| {
        let passed = variant_passed(v, name);
        let detail = if passed {
            None
        } else {
            v.tests
                .iter()
                .find(|t| t.name.ends_with(&format!("test_{name}")) && t.status != TestStatus::Pass)
                .and_then(|t| t.message.clone())
                .or_else(|| first_failure.clone())
                .or_else(|| v.reason.clone())
        };
        VariantResult { passed, detail }
    };
    let (base, plus) = if benchmark.has_plus() {
        let base = variant("base");
        let has_plus_test =
            matches!(&task.oracle, Oracle::Differential { plus_input, .. } if plus_input.trim() != "[]");
        let plus = if has_plus_test { variant("plus") } else { base.clone() };
        (base, Some(plus))
    } else {
        (
            VariantResult {
                passed: v.passed(),
                detail: if v.passed() { None } else { first_failure.or_else(|| v.reason.clone()) },
            },
            None,
        )
    };
    let passed = plus.as_ref().map_or(base.passed, |p| p.passed && base.passed);
    let status = if passed {
        "pass"
    } else if missing_task_library(task, v).is_some() {
        "env_error"
    } else {
        match v.status {
            Status::Pass | Status::Fail => "fail",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    };
    let reason = match missing_task_library(task, v) {
        Some(m) if !passed => Some(format!("{ENV_REASON}`{m}` is not installed")),
        _ => v.reason.clone(),
    };
    SampleResult {
        task_id: sample.task_id.clone(),
        sample: sample.index,
        passed,
        status: status.to_string(),
        reason,
        base,
        plus,
        duration_ms: v.duration_ms,
        stderr_tail: v.stderr_tail.clone(),
        solution: sample.solution.clone(),
    }
}

/// The module whose import failed, when the task itself needs it (listed in its libraries or
/// imported by its tests): then the environment, not the solution, is at fault.
fn missing_task_library(task: &Task, v: &Verdict) -> Option<String> {
    let Oracle::UnitTest { test, libs } = &task.oracle else {
        return None;
    };
    let texts = std::iter::once(v.stderr_tail.as_str())
        .chain(v.reason.as_deref())
        .chain(v.tests.iter().filter_map(|t| t.message.as_deref()));
    for text in texts {
        let Some(pos) = text.find("No module named '") else {
            continue;
        };
        let rest = &text[pos + "No module named '".len()..];
        let module = rest.split('\'').next().unwrap_or("");
        let top = module.split('.').next().unwrap_or("");
        let imported = test.contains(&format!("import {top}")) || test.contains(&format!("from {top}"));
        if !top.is_empty() && (libs.iter().any(|l| l == top) || imported) {
            return Some(module.to_string());
        }
    }
    None
}
