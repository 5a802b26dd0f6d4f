//! `unitcoder report RUN_DIR`: the statistics of a run as Markdown (`report.md`), JSON
//! (`report.json`) and two SVG bar charts drawn with plotters (`funnel.svg`, `pass_by_round.svg`).
//! The statistics are recomputed from the record files first, so a report always matches the data.

use crate::pipeline::emit;
use crate::pipeline::stats::SynthStats;
use crate::pipeline::synth::{RunDir, SynthError};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

fn other(path: &Path, e: impl std::fmt::Display) -> SynthError {
    SynthError::Io { path: path.to_path_buf(), cause: std::io::Error::other(e.to_string()) }
}

/// A horizontal bar chart of `bars` (label, value) into the SVG file `path`.
pub fn bar_chart(path: &Path, title: &str, bars: &[(String, u64)]) -> Result<(), SynthError> {
    let height = 80 + 36 * bars.len().max(1) as u32;
    let root = SVGBackend::new(path, (720, height)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        let n = bars.len().max(1) as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(150)
            .build_cartesian_2d(0u64..max + max / 10 + 1, 0i32..n)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len() + 1)
            .y_label_formatter(&|y| {
                let i = n - 1 - *y;
                labels.get(i as usize).cloned().unwrap_or_default()
            })
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let y = n - 1 - i as i32;
            Rectangle::new([(0, y), (*v, y + 1)], BLUE.mix(0.6).filled())
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let y = n - 1 - i as i32;
            Text::new(v.to_string(), (*v, y), ("sans-serif", 14))
        }))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| other(path, e))
}

fn table(out: &mut String, head: &[&str], rows: Vec<Vec<String>>) {
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
    table(
        &mut out,
        &["stage", "records"],
        s.funnel.iter().map(|f| vec![f.step.clone(), f.count.to_string()]).collect(),
    );
    out.push_str("![funnel](funnel.svg)\n\n## Passing by round\n\n");
    table(
        &mut out,
        &["round", "accepted"],
        s.pass_by_round.iter().map(|(r, c)| vec![r.to_string(), c.to_string()]).collect(),
    );
    out.push_str("![pass by round](pass_by_round.svg)\n\n## Failures of executions\n\n");
    let kv = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| vec![format!("`{k}`"), v.to_string()]).collect()
    };
    table(&mut out, &["class", "executions"], kv(&s.failures));
    out.push_str("## Rejected records\n\n");
    table(&mut out, &["stage/reason", "records"], kv(&s.rejected));
    out.push_str("## Outputs set aside before running\n\n");
    table(&mut out, &["kind/reason", "outputs"], kv(&s.discarded));
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
    let funnel: Vec<(String, u64)> = s.funnel.iter().map(|f| (f.step.clone(), f.count)).collect();
    bar_chart(&dir.root.join("funnel.svg"), "Funnel", &funnel)?;
    let rounds: Vec<(String, u64)> = s.pass_by_round.iter().map(|(r, c)| (format!("round {r}"), *c)).collect();
    bar_chart(&dir.root.join("pass_by_round.svg"), "Accepted by round", &rounds)?;
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
}
