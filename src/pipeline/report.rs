//! `unitcoder report RUN_DIR`: the statistics of a run as Markdown (`report.md`), JSON
//! (`report.json`) and SVG bar charts drawn with plotters (`funnel.svg`, `pass_by_round.svg`, and the
//! quality scores' distributions: `mutation_score.svg`, `line_coverage.svg`, `branch_coverage.svg`).
//! The statistics are recomputed from the record files first, so a report always matches the data.

use crate::pipeline::emit;
use crate::pipeline::plot::BarChart;
use crate::pipeline::run_dir::{OutputError, RunDir};
use crate::pipeline::stats::SynthStats;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `chart` as the SVG file `path`.
pub fn write_chart(path: &Path, chart: &BarChart) -> Result<(), OutputError> {
    let svg = chart.to_svg().map_err(|e| OutputError::other(path, e))?;
    std::fs::write(path, svg).map_err(|e| OutputError::Io { path: path.to_path_buf(), cause: e })
}

/// Labelled counts, one bar each.
type Rows = Vec<(String, u64)>;

/// The funnel's stages and, apart, the rejected records: a record rejected at any stage is not one
/// more step after `accepted`.
fn funnel_rows(s: &SynthStats) -> (Rows, Rows) {
    let (stages, rejected): (Vec<_>, Vec<_>) = s.funnel.iter().partition(|f| f.step != REJECTED);
    let rejected = rejected.iter().map(|f| (format!("{REJECTED} (any stage)"), f.count)).collect();
    (stages.iter().map(|f| (f.step.clone(), f.count)).collect(), rejected)
}

const REJECTED: &str = "rejected";

/// A Markdown table, or the sentence `empty` when there are no rows (a header alone reads as broken).
fn table(out: &mut String, head: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(out, "{empty}\n");
        return;
    }
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

/// The Markdown report of `s`.
pub fn markdown(s: &SynthStats) -> String {
    let mut out = String::from("# Synthesis run\n\n");
    out.push_str(&unfinished_text(s));
    settings_line(&mut out, s);
    out.push_str("## Funnel\n\n");
    let (stages, rejected) = funnel_rows(s);
    table(
        &mut out,
        &["stage", "records"],
        stages.iter().map(|(step, n)| vec![step.clone(), n.to_string()]).collect(),
        "No record was retrieved.",
    );
    for (_, n) in &rejected {
        let _ = writeln!(out, "Rejected at some stage (not a funnel step; reasons below): {n}\n");
    }
    out.push_str("![funnel](funnel.svg)\n\n## Passing by round\n\n");
    table(
        &mut out,
        &["round", "accepted"],
        s.pass_by_round.iter().map(|(r, c)| vec![r.to_string(), c.to_string()]).collect(),
        "No record was accepted yet, so there is nothing to count by round.",
    );
    out.push_str("![pass by round](pass_by_round.svg)\n\n## Failures of executions\n\n");
    let kv = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| vec![format!("`{k}`"), v.to_string()]).collect()
    };
    table(&mut out, &["class", "executions"], kv(&s.failures), "No execution failed.");
    out.push_str("## Rejected records\n\n");
    table(&mut out, &["stage/reason", "records"], kv(&s.rejected), "No record was rejected.");
    out.push_str("## Outputs set aside before running\n\n");
    table(&mut out, &["kind/reason", "outputs"], kv(&s.discarded), "No output was set aside.");
    out.push_str("## Per package\n\n");
    table(
        &mut out,
        &["package", "retrieved", "tests", "verified", "accepted"],
        s.per_package
            .iter()
            .map(|(p, f)| {
                vec![
                    p.clone(),
                    f.retrieved.to_string(),
                    f.tests_written.to_string(),
                    f.verified.to_string(),
                    f.accepted.to_string(),
                ]
            })
            .collect(),
        "No package (no record retrieved).",
    );
    let t = &s.timings;
    let n = s.funnel.iter().find(|f| f.step == "accepted").map_or(0, |f| f.count);
    let per = |x: f64| if n == 0 { "n/a".to_string() } else { format!("{:.1}", x / n as f64) };
    let pct = |x: f64| if t.wall_s > 0.0 { format!("{:.0}%", 100.0 * x / t.wall_s) } else { "n/a".into() };
    let _ = write!(
        out,
        "## Cost\n\n- runs: {} ({})\n- wall: {:.1} s; model busy {:.1} s ({}); **the model waited on the sandbox \
         {:.1} s ({})**; sandbox workers idle waiting for the model {:.1} s (summed over workers)\n- tokens \
         generated: {}; **per accepted program: {} tokens, {} s wall, {} s of model time**\n- model calls: {} \
         made, {} more answered from the cache; executions: {} run, {} more answered from the cache\n",
        s.runs,
        if t.ended {
            "all ended"
        } else if s.runs == 0 {
            "none has written its timings yet"
        } else {
            "one was killed or is still running: its figures are from its last snapshot"
        },
        t.wall_s,
        t.model_s,
        pct(t.model_s),
        t.model_waited_s,
        pct(t.model_waited_s),
        t.sandbox_idle_s,
        s.tokens,
        per(s.tokens as f64),
        per(t.wall_s),
        per(t.model_s),
        t.model_calls,
        t.model_calls_cached,
        t.executions,
        t.executions_cached
    );
    quality_section(&mut out, s);
    examples_section(&mut out, s);
    raises_section(&mut out, s);
    returns_section(&mut out, s);
    params_section(&mut out, s);
    if let Some(p) = s.retrieve.as_ref().and_then(|r| r.get("picked")) {
        let _ = write!(
            out,
            "\n## Input\n\n{} functions picked as the most testable-looking of {} retrieved (`--pick testable`).",
            p["kept"], p["candidates"]
        );
        // Dropped before picking and saved as rejected: the funnel's first step counts them too.
        let r = s.retrieve.as_ref();
        let n = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_u64()).unwrap_or(0);
        let contaminated = n(r.and_then(|r| r.pointer("/synth_decontamination/contaminated")));
        let broken = n(r.and_then(|r| r.get("synth_syntax_errors")));
        if contaminated + broken > 0 {
            let _ = write!(
                out,
                " Before picking, {contaminated} overlapped a benchmark and {broken} did not compile; they are saved \
                 as rejected."
            );
        }
        out.push('\n');
    }
    if let Some(m) = &s.merge {
        let _ = write!(
            out,
            "\n## Merge\n\n{} shards, {} records read: {} with a repeated id, {} exact and {} near duplicates \
             dropped across shards ([merge_duplicates.jsonl](merge_duplicates.jsonl)), {} kept.\n",
            m["shards"], m["read"], m["same_id"], m["exact_duplicates"], m["near_duplicates"], m["kept"]
        );
    }
    out
}

/// A note when the run has not finished what it set out to do (stopped, killed or still running):
/// its figures are then those of a part. Empty otherwise.
pub(crate) fn unfinished_text(s: &SynthStats) -> String {
    match s.to_do() {
        Some(total) if s.finished() < total => format!(
            "**Not finished:** {} of the {total} functions this run took have a record; the rest are still to do \
             (the run was stopped, or is still running: rerun the same command to finish it).\n\n",
            s.finished()
        ),
        _ => String::new(),
    }
}

/// What made the data: the model and the settings that shape it (absent from runs of versions
/// that did not record them).
fn settings_line(out: &mut String, s: &SynthStats) {
    out.push_str(&settings_text(s));
}

/// [`settings_line`]'s text: empty for a run that did not record its settings.
pub(crate) fn settings_text(s: &SynthStats) -> String {
    let mut text = String::new();
    let out = &mut text;
    // The settings the records were made with (not those of a resume that finished none yet).
    let (made_with, earlier) = s.made_with();
    let Some(r) = made_with else { return text };
    let against = match r.decontaminated_against.as_slice() {
        [] => "none".to_string(),
        a => a.join(", "),
    };
    let _ = write!(
        out,
        "Model `{}` ({}). {} tests suites (sampled at temperature {}), {} fix rounds x {} samples (temperature {}, \
         top-p {}), repetition penalty {}, at most {} tokens per answer, seed {}; min tests {}, {} mutants, \
         min mutation score {}, min coverage {}; decontaminated against: {}. Prompts: {}.\n\n",
        r.model,
        if r.chat { "chat template" } else { "plain completion" },
        r.tests_samples,
        r.tests_temperature,
        r.rounds,
        r.samples,
        r.temperature,
        r.top_p,
        r.repetition_penalty,
        r.max_tokens,
        r.seed,
        r.min_tests,
        r.mutants,
        r.min_mutation_score,
        r.min_coverage,
        against,
        r.prompts.iter().map(|(f, h)| format!("`{f}` {h}")).collect::<Vec<_>>().join(", ")
    );
    if !earlier.is_empty() {
        // A resume with other settings: the records above were not all made with these.
        let changes: Vec<String> = earlier.iter().map(|e| e.differences(r).join(", ")).collect();
        let _ = write!(
            out,
            "**Mixed settings:** the run was resumed with other settings, so its records were not all made with \
             the ones above. Earlier settings (their value vs the latest): {}.\n\n",
            changes.join("; then ")
        );
    }
    text
}

/// The histogram rows of one score: "0.0–0.1", ... "0.9–1.0".
fn score_rows(hist: &[u64]) -> Rows {
    let n = hist.len().max(1) as f64;
    hist.iter().enumerate().map(|(i, c)| (format!("{:.1}–{:.1}", i as f64 / n, (i + 1) as f64 / n), *c)).collect()
}

/// The charts of the quality scores: (file name, title, histogram).
fn quality_charts(s: &SynthStats) -> [(&'static str, &'static str, &Vec<u64>); 3] {
    let q = &s.quality;
    [
        ("mutation_score.svg", "Records by mutation score (share of mutants the tests kill)", &q.mutation_score),
        ("line_coverage.svg", "Records by line coverage of the function", &q.line_coverage),
        ("branch_coverage.svg", "Records by branch coverage (functions with branches)", &q.branch_coverage),
    ]
}

fn quality_section(out: &mut String, s: &SynthStats) {
    let q = &s.quality;
    out.push_str("\n## Test quality\n\n");
    if q.scored == 0 {
        out.push_str("No record was scored (the quality step is off with `--mutants 0`, or no record reached it).\n");
        return;
    }
    let mean = |m: Option<f64>| m.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let t = &s.timings;
    let share = if t.exec_s > 0.0 { format!("{:.0}%", 100.0 * t.quality_exec_s / t.exec_s) } else { "n/a".into() };
    let _ = writeln!(
        out,
        "{} records scored (accepted, or rejected by a threshold): {} mutants run, {} killed. Means: mutation \
         score {}, line coverage {}, branch coverage {}.\n\nCost: {} quality runs ({:.1} per scored record), \
         {:.1} s of sandbox time, {} of all sandbox time ({:.1} s).\n",
        q.scored,
        q.mutants,
        q.killed,
        mean(q.mean_mutation_score),
        mean(q.mean_line_coverage),
        mean(q.mean_branch_coverage),
        t.quality_executions,
        t.quality_executions as f64 / q.scored as f64,
        t.quality_exec_s,
        share,
        t.exec_s
    );
    let rows: Vec<Vec<String>> = score_rows(&q.mutation_score)
        .into_iter()
        .enumerate()
        .map(|(i, (bin, m))| {
            let at = |h: &Vec<u64>| h.get(i).copied().unwrap_or(0).to_string();
            vec![bin, m.to_string(), at(&q.line_coverage), at(&q.branch_coverage)]
        })
        .collect();
    table(out, &["score", "mutation score", "line coverage", "branch coverage"], rows, "");
    for (file, title, _) in quality_charts(s) {
        let _ = writeln!(out, "![{title}]({file})\n");
    }
}

fn examples_section(out: &mut String, s: &SynthStats) {
    let e = &s.docstring_examples;
    if e.docstrings == 0 && e.polish_set_aside == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Docstring examples\n\nThe `>>>` examples of {} accepted docstrings, run against their function: {} \
         found, {} held as written, {} corrected to what the function gives, {} dropped (they raised, their \
         output was unstable, unordered or too long, or a comment claimed a value). {} records kept their \
         undocumented program because their examples could not be made to hold.",
        e.docstrings, e.found, e.kept, e.corrected, e.dropped, e.polish_set_aside
    );
}

fn returns_section(out: &mut String, s: &SynthStats) {
    let e = &s.docstring_returns;
    if e.claims == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Docstring return types\n\nThe return types {} accepted docstrings claim, against the values their \
         function returned while its tests and examples ran: {} held, {} corrected to the types returned, {} \
         unchecked (not readable as a type, or nothing returned).",
        e.claims, e.held, e.corrected, e.unchecked
    );
}

fn params_section(out: &mut String, s: &SynthStats) {
    let e = &s.docstring_params;
    if e.docstrings == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Docstring parameter types\n\nThe parameter types {} accepted docstrings document, against the values \
         their function took in calls that returned: {} found, {} held, {} corrected to the types passed, {} \
         unchecked (not readable as a type, or never passed).",
        e.docstrings, e.found, e.held, e.corrected, e.unchecked
    );
}

fn raises_section(out: &mut String, s: &SynthStats) {
    let e = &s.docstring_raises;
    if e.docstrings == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Docstring `Raises` entries\n\nThe `Raises` entries of {} accepted docstrings: {} found, {} kept \
         (every exception they name was seen leaving the function while its tests and examples ran, or is \
         raised by name in its code), {} dropped (an exception never seen, or no exception named).",
        e.docstrings, e.found, e.kept, e.dropped
    );
}

/// Writes the report files into `dir` and returns the statistics.
pub fn write_report(dir: &RunDir) -> Result<SynthStats, OutputError> {
    if !dir.root.exists() {
        return Err(OutputError::other(&dir.root, "no such directory"));
    }
    if !dir.has_records() {
        return Err(OutputError::other(
            &dir.root,
            "not a synth run directory (no dataset/records.jsonl or rejected.jsonl)",
        ));
    }
    let s = emit::finalize(dir, None)?;
    let write = |name: &str, text: String| {
        let p = dir.root.join(name);
        std::fs::write(&p, text).map_err(|e| OutputError::Io { path: p, cause: e })
    };
    write("report.md", markdown(&s))?;
    write("report.json", serde_json::to_string_pretty(&s).unwrap_or_default() + "\n")?;
    let (stages, rejected) = funnel_rows(&s);
    let funnel = BarChart {
        title: "Records at each stage",
        rows: &stages,
        aside: &rejected,
        empty_note: "no record was retrieved",
    };
    write_chart(&dir.root.join("funnel.svg"), &funnel)?;
    let rounds: Vec<(String, u64)> = s.pass_by_round.iter().map(|(r, c)| (format!("round {r}"), *c)).collect();
    let by_round = BarChart {
        title: "Accepted records by passing round (0: the original code)",
        rows: &rounds,
        aside: &[],
        empty_note: "no record was accepted",
    };
    write_chart(&dir.root.join("pass_by_round.svg"), &by_round)?;
    for (file, title, hist) in quality_charts(&s) {
        let rows = score_rows(hist);
        let chart = BarChart { title, rows: &rows, aside: &[], empty_note: "no record was scored" };
        write_chart(&dir.root.join(file), &chart)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stats::Step;

    #[test]
    fn cost_section_gives_per_accepted_figures_and_the_model_wait() {
        let mut s = SynthStats {
            funnel: vec![Step { step: "accepted".into(), count: 2 }],
            tokens: 300,
            runs: 2,
            merge: Some(serde_json::json!({"shards": 3, "read": 9, "same_id": 0, "exact_duplicates": 1,
                                           "near_duplicates": 1, "kept": 7})),
            ..SynthStats::default()
        };
        s.timings.wall_s = 10.0;
        s.timings.model_s = 6.0;
        s.timings.model_waited_s = 2.0;
        (s.timings.model_calls, s.timings.model_calls_cached, s.timings.executions, s.timings.executions_cached) =
            (14, 14, 8, 3);
        let md = markdown(&s);
        // Calls made and calls the cache answered are apart (a resume answers from the cache).
        assert!(
            md.contains("model calls: 14 made, 14 more answered from the cache; executions: 8 run, 3 more"),
            "{md}"
        );
        assert!(md.contains("per accepted program: 150.0 tokens, 5.0 s wall, 3.0 s of model time"), "{md}");
        assert!(md.contains("the model waited on the sandbox 2.0 s (20%)"), "{md}");
        assert!(md.contains("one was killed or is still running"), "{md}");
        assert!(md.contains("1 exact and 1 near duplicates dropped"), "{md}");
        s.timings.ended = true;
        assert!(markdown(&s).contains("(all ended)"));
    }

    #[test]
    fn the_quality_section_gives_the_distributions_and_the_cost() {
        let mut s = SynthStats::default();
        assert!(markdown(&s).contains("No record was scored"));
        s.quality = crate::pipeline::stats::QualityStats {
            scored: 2,
            mutants: 30,
            killed: 21,
            mutation_score: vec![0, 0, 0, 0, 0, 0, 1, 0, 1, 0],
            line_coverage: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            branch_coverage: vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            mean_mutation_score: Some(0.7),
            mean_line_coverage: Some(1.0),
            mean_branch_coverage: Some(0.5),
        };
        s.timings.quality_executions = 32;
        s.timings.quality_exec_s = 8.0;
        s.timings.exec_s = 10.0;
        let md = markdown(&s);
        assert!(md.contains("mutation score 0.70, line coverage 1.00, branch coverage 0.50"), "{md}");
        assert!(md.contains("32 quality runs (16.0 per scored record), 8.0 s of sandbox time, 80%"), "{md}");
        assert!(md.contains("| 0.6–0.7 | 1 | 0 | 0 |") && md.contains("| 0.9–1.0 | 0 | 2 | 0 |"), "{md}");
        assert!(md.contains("](mutation_score.svg)"), "{md}");
    }

    #[test]
    fn with_nothing_accepted_the_report_says_so_instead_of_an_empty_table() {
        let steps = [("retrieved", 3), ("tests_written", 2), ("accepted", 0), ("rejected", 3)];
        let s = SynthStats {
            funnel: steps.iter().map(|(n, c)| Step { step: n.to_string(), count: *c }).collect(),
            rejected: [("tests/no_tests".to_string(), 3)].into(),
            ..SynthStats::default()
        };
        let md = markdown(&s);
        assert!(md.contains("No record was accepted yet"), "{md}");
        assert!(!md.contains("| round | accepted |"), "{md}");
        // Rejected is not a row of the stage table, but stated apart.
        assert!(!md.contains("| rejected | 3 |") && md.contains("not a funnel step; reasons below): 3"), "{md}");
        assert!(md.contains("| `tests/no_tests` | 3 |") && md.contains("No execution failed."), "{md}");
        let (stages, rejected) = funnel_rows(&s);
        assert_eq!(stages.len(), 3);
        assert_eq!(rejected, vec![("rejected (any stage)".to_string(), 3)]);
    }
}
