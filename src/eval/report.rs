//! Outputs of an evaluation and the comparison of two: `results.jsonl` (one line per sample),
//! `summary.json` (pass@k per variant, model, config, dataset hash), evalplus-compatible
//! `eval_results.json`, BigCodeBench-compatible `pass_at_k.json`, and `results.md`.

use super::benchmark::Benchmark;
use super::data::Dataset;
use super::passk::mean_pass_at_k;
use super::score::SampleResult;
use super::EvalError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The headline numbers of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub benchmark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    pub model: String,
    /// The settings that produced the numbers (sampling, limits, prompt mode...).
    pub config: serde_json::Value,
    pub dataset: DatasetInfo,
    /// Tasks with at least one sample and no environment error: the pass@k denominator.
    pub tasks_scored: usize,
    pub samples: usize,
    /// `base` (and `plus` for evalplus benchmarks) -> `pass@k` -> value in [0, 1].
    pub pass_at_k: BTreeMap<String, BTreeMap<String, f64>>,
    /// Tasks failed by the environment (missing libraries), excluded from pass@k.
    pub env_error_tasks: Vec<String>,
    /// Tasks whose every sample failed, per variant.
    pub failing_tasks: BTreeMap<String, Vec<String>>,
}

/// Which data was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub path: String,
    pub sha256_16: String,
    pub tasks: usize,
}

/// Aggregates per-sample results into a summary; `ks` beyond a task's sample count are left out.
pub fn summarize(
    dataset: &Dataset,
    split: Option<String>,
    model: &str,
    config: serde_json::Value,
    results: &[SampleResult],
    ks: &[usize],
) -> Summary {
    let env: BTreeSet<String> = results.iter().filter(|r| r.is_env_error()).map(|r| r.task_id.clone()).collect();
    let variants: &[&str] = if dataset.benchmark.has_plus() { &["base", "plus"] } else { &["base"] };
    let mut pass_at_k = BTreeMap::new();
    let mut failing_tasks = BTreeMap::new();
    let mut tasks_scored = 0;
    for &variant in variants {
        let mut per_task: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in results.iter().filter(|r| !env.contains(&r.task_id)) {
            let ok = match variant {
                "plus" => r.passed,
                _ => r.base.passed,
            };
            let e = per_task.entry(r.task_id.as_str()).or_default();
            e.0 += 1;
            e.1 += usize::from(ok);
        }
        tasks_scored = per_task.len();
        let counts: Vec<(usize, usize)> = per_task.values().copied().collect();
        pass_at_k.insert(variant.to_string(), mean_pass_at_k(&counts, ks));
        failing_tasks.insert(
            variant.to_string(),
            per_task.iter().filter(|(_, (_, c))| *c == 0).map(|(t, _)| t.to_string()).collect(),
        );
    }
    Summary {
        benchmark: dataset.benchmark.name().to_string(),
        split,
        model: model.to_string(),
        config,
        dataset: DatasetInfo {
            path: dataset.path.display().to_string(),
            sha256_16: dataset.hash.clone(),
            tasks: dataset.tasks.len(),
        },
        tasks_scored,
        samples: results.len(),
        pass_at_k,
        env_error_tasks: env.into_iter().collect(),
        failing_tasks,
    }
}

fn write(path: &Path, text: &str) -> Result<(), EvalError> {
    std::fs::write(path, text).map_err(|e| EvalError::io(path, e))
}

fn pretty<T: Serialize>(v: &T) -> Result<String, EvalError> {
    serde_json::to_string_pretty(v).map_err(|e| EvalError::Settings(format!("serializing output: {e}")))
}

/// Writes every output file into `dir` (created if needed).
pub fn write_outputs(dir: &Path, summary: &Summary, results: &[SampleResult]) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut lines = String::new();
    for r in results {
        lines.push_str(&serde_json::to_string(r).map_err(|e| EvalError::Settings(e.to_string()))?);
        lines.push('\n');
    }
    write(&dir.join("results.jsonl"), &lines)?;
    write(&dir.join("summary.json"), &pretty(summary)?)?;
    write(&dir.join("eval_results.json"), &pretty(&evalplus_results(summary, results))?)?;
    write(&dir.join("pass_at_k.json"), &pretty(&bigcodebench_pass_at_k(summary))?)?;
    write(&dir.join("results.md"), &markdown(summary))?;
    Ok(())
}

fn status_word(passed: bool) -> &'static str {
    if passed {
        "pass"
    } else {
        "fail"
    }
}

/// The layout of evalplus' `eval_results.json`: per task, one entry per sample with base/plus status.
fn evalplus_results(summary: &Summary, results: &[SampleResult]) -> serde_json::Value {
    let mut eval: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for r in results {
        eval.entry(r.task_id.as_str()).or_default().push(serde_json::json!({
            "task_id": r.task_id,
            "solution": r.solution,
            "base_status": status_word(r.base.passed),
            "plus_status": r.plus.as_ref().map(|p| status_word(p.passed)),
            "base_fail_tests": r.base.detail.iter().collect::<Vec<_>>(),
            "plus_fail_tests": r.plus.as_ref().and_then(|p| p.detail.as_ref()).into_iter().collect::<Vec<_>>(),
        }));
    }
    serde_json::json!({
        "date": null,
        "hash": summary.dataset.sha256_16,
        "eval": eval,
        "pass_at_k": summary.pass_at_k,
    })
}

/// BigCodeBench's `pass_at_k.json`: the strictest variant's pass@k plus run metadata.
fn bigcodebench_pass_at_k(summary: &Summary) -> serde_json::Value {
    let strict = summary.pass_at_k.get("plus").or_else(|| summary.pass_at_k.get("base"));
    let mut out = serde_json::Map::new();
    for (k, v) in strict.into_iter().flatten() {
        out.insert(k.clone(), serde_json::json!(v));
    }
    out.insert("model".into(), serde_json::json!(summary.model));
    out.insert("split".into(), serde_json::json!(summary.split));
    out.insert(
        "subset".into(),
        serde_json::json!(if summary.benchmark == Benchmark::BigCodeBenchHard.name() { "hard" } else { "full" }),
    );
    out.insert("calibrated".into(), serde_json::json!(false));
    out.insert("env_error_tasks".into(), serde_json::json!(summary.env_error_tasks));
    serde_json::Value::Object(out)
}

/// A Markdown table of pass@k per variant.
pub fn markdown(summary: &Summary) -> String {
    let ks: BTreeSet<&String> = summary.pass_at_k.values().flat_map(|m| m.keys()).collect();
    let mut s = format!(
        "# {} ({})\n\nmodel: `{}`, dataset sha256 {}, {} of {} tasks scored, {} samples\n\n| variant |",
        summary.benchmark,
        summary.split.as_deref().unwrap_or("-"),
        summary.model,
        summary.dataset.sha256_16,
        summary.tasks_scored,
        summary.dataset.tasks,
        summary.samples
    );
    for k in &ks {
        s.push_str(&format!(" {k} |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(ks.len()));
    s.push('\n');
    for (variant, m) in &summary.pass_at_k {
        s.push_str(&format!("| {variant} |"));
        for k in &ks {
            match m.get(*k) {
                Some(v) => s.push_str(&format!(" {:.1} |", v * 100.0)),
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    if !summary.env_error_tasks.is_empty() {
        s.push_str(&format!(
            "\n{} tasks failed for environment reasons (excluded): {}\n",
            summary.env_error_tasks.len(),
            summary.env_error_tasks.join(", ")
        ));
    }
    s
}

/// Reads a `summary.json` and `results.jsonl` from an output directory.
pub fn read_dir(dir: &Path) -> Result<(Summary, Vec<SampleResult>), EvalError> {
    let sp = dir.join("summary.json");
    let text = std::fs::read_to_string(&sp).map_err(|e| EvalError::io(&sp, e))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| EvalError::data(&sp, e.line(), e.to_string()))?;
    let rp = dir.join("results.jsonl");
    let text = std::fs::read_to_string(&rp).map_err(|e| EvalError::io(&rp, e))?;
    let mut results = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        results.push(serde_json::from_str(line).map_err(|e| EvalError::data(&rp, i + 1, e.to_string()))?);
    }
    Ok((summary, results))
}

/// Differences between two evaluations of the same benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// variant -> pass@k -> (a, b, b - a).
    pub deltas: BTreeMap<String, BTreeMap<String, (f64, f64, f64)>>,
    /// Tasks solved (by any sample, strictest variant) in B but not in A.
    pub gained: Vec<String>,
    /// Tasks solved in A but not in B.
    pub lost: Vec<String>,
}

/// Compares run A with run B; errors when they evaluated different benchmarks, data or tasks.
pub fn compare(a: &(Summary, Vec<SampleResult>), b: &(Summary, Vec<SampleResult>)) -> Result<Comparison, EvalError> {
    if a.0.benchmark != b.0.benchmark || a.0.dataset.sha256_16 != b.0.dataset.sha256_16 {
        return Err(EvalError::Settings(format!(
            "runs are not comparable: {} (data {}) vs {} (data {})",
            a.0.benchmark, a.0.dataset.sha256_16, b.0.benchmark, b.0.dataset.sha256_16
        )));
    }
    let tasks = |rs: &[SampleResult]| -> BTreeSet<String> { rs.iter().map(|r| r.task_id.clone()).collect() };
    let (tasks_a, tasks_b) = (tasks(&a.1), tasks(&b.1));
    if tasks_a != tasks_b {
        // pass@k over different task sets are different measures: a delta between them would
        // read as a model difference.
        let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| x.difference(y).cloned().collect::<Vec<_>>();
        let (only_a, only_b) = (only(&tasks_a, &tasks_b), only(&tasks_b, &tasks_a));
        let few = |ids: &[String]| ids.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        return Err(EvalError::Settings(format!(
            "runs are not comparable: A has results for {} tasks, B for {}; {} only in A ({}), {} only in B ({}). \
             Score both over the same tasks (e.g. the same --limit)",
            tasks_a.len(),
            tasks_b.len(),
            only_a.len(),
            few(&only_a),
            only_b.len(),
            few(&only_b)
        )));
    }
    let mut deltas = BTreeMap::new();
    for (variant, ma) in &a.0.pass_at_k {
        let Some(mb) = b.0.pass_at_k.get(variant) else {
            continue;
        };
        let row: BTreeMap<String, (f64, f64, f64)> =
            ma.iter().filter_map(|(k, &va)| mb.get(k).map(|&vb| (k.clone(), (va, vb, vb - va)))).collect();
        deltas.insert(variant.clone(), row);
    }
    let solved = |rs: &[SampleResult]| -> (BTreeSet<String>, BTreeSet<String>) {
        let all = rs.iter().map(|r| r.task_id.clone()).collect();
        let ok = rs.iter().filter(|r| r.passed).map(|r| r.task_id.clone()).collect();
        (all, ok)
    };
    let (all_a, ok_a) = solved(&a.1);
    let (all_b, ok_b) = solved(&b.1);
    let both: BTreeSet<&String> = all_a.intersection(&all_b).collect();
    let gained = both.iter().filter(|t| ok_b.contains(**t) && !ok_a.contains(**t)).map(|t| t.to_string()).collect();
    let lost = both.iter().filter(|t| ok_a.contains(**t) && !ok_b.contains(**t)).map(|t| t.to_string()).collect();
    Ok(Comparison { deltas, gained, lost })
}
