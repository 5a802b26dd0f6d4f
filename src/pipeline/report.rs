//! `unitcoder report RUN_DIR`: the statistics of a run as Markdown (`report.md`), JSON
//! (`report.json`) and two SVG bar charts drawn with plotters (`funnel.svg`, `pass_by_round.svg`).
//! The statistics are recomputed from the record files first, so a report always matches the data.

use crate::pipeline::emit;
use crate::pipeline::plot::BarChart;
use crate::pipeline::stats::SynthStats;
use crate::pipeline::synth::{RunDir, SynthError};
use std::fmt::Write as _;
use std::path::Path;

fn other(path: &Path, e: impl std::fmt::Display) -> SynthError {
    SynthError::Io { path: path.to_path_buf(), cause: std::io::Error::other(e.to_string()) }
}

/// Writes `chart` as the SVG file `path`.
pub fn write_chart(path: &Path, chart: &BarChart) -> Result<(), SynthError> {
    let svg = chart.to_svg().map_err(|e| other(path, e))?;
    std::fs::write(path, svg).map_err(|e| SynthError::Io { path: path.to_path_buf(), cause: e })
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
    let mut out = String::from("# Synthesis run\n\n## Funnel\n\n");
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
         ({} from cache); executions: {} ({} from cache)\n",
        s.runs,
        if t.ended {
            "all ended"
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
    if let Some(p) = s.retrieve.as_ref().and_then(|r| r.get("picked")) {
        let _ = write!(
            out,
            "\n## Input\n\n{} functions picked as the most testable-looking of {} retrieved (`--pick testable`).\n",
            p["kept"], p["candidates"]
        );
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

/// Writes the report files into `dir` and returns the statistics.
pub fn write_report(dir: &RunDir) -> Result<SynthStats, SynthError> {
    if !dir.records().is_file() && !dir.rejected().is_file() {
        return Err(other(&dir.root, "not a synth run directory (no dataset/records.jsonl or rejected.jsonl)"));
    }
    let s = emit::finalize(dir, None)?;
    let write = |name: &str, text: String| {
        let p = dir.root.join(name);
        std::fs::write(&p, text).map_err(|e| SynthError::Io { path: p, cause: e })
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
        let md = markdown(&s);
        assert!(md.contains("per accepted program: 150.0 tokens, 5.0 s wall, 3.0 s of model time"), "{md}");
        assert!(md.contains("the model waited on the sandbox 2.0 s (20%)"), "{md}");
        assert!(md.contains("one was killed or is still running"), "{md}");
        assert!(md.contains("1 exact and 1 near duplicates dropped"), "{md}");
        s.timings.ended = true;
        assert!(markdown(&s).contains("(all ended)"));
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
