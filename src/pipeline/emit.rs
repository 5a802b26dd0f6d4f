//! Stage 5: the post-training formats, derived from a run's accepted records (so they are rebuilt
//! the same after a resume or a merge), the statistics file, and `merge` of shard run directories.
//!
//! Formats, one JSON object per line in `dataset/`:
//! - `prefix_completion.jsonl`: imports + signature + docstring → body (records with a docstring);
//! - `instruction.jsonl`: chat messages (complete this documented function → the program);
//! - `dpo.jsonl`: a failing attempt (rejected) vs the passing fix (chosen), for fixed records;
//! - `repair.jsonl`: code + tests + feedback → fix, one line per failing step that led to the fix.

use crate::pipeline::code;
use crate::pipeline::journal::Journal;
use crate::pipeline::record::{AttemptKind, Record};
use crate::pipeline::stats::SynthStats;
use crate::pipeline::synth::{RunDir, RunTimings, SynthError};
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// The final program of an accepted record: polished when polish succeeded.
pub fn final_code(r: &Record) -> &str {
    r.polished
        .as_ref()
        .map(|p| p.code.as_str())
        .or(r.verified.as_ref().map(|v| v.code.as_str()))
        .unwrap_or(&r.function.code)
}

fn instruction(prefix: &str) -> String {
    format!("Complete the following Python function so that it does what its docstring says.\n\n```python\n{prefix}```")
}

/// The derived format lines of one accepted record: (file stem, line).
pub fn format_lines(r: &Record) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    let code = final_code(r);
    let tests = r.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
    let prefix = code::split_at_docstring(code, &r.function.name);
    let prompt = match &prefix {
        Some((p, _)) => instruction(p),
        None => format!(
            "Write the Python function `{}` with this signature:\n\n```python\n{}\n```",
            r.function.name, r.function.signature
        ),
    };
    if let Some((p, c)) = &prefix {
        out.push(("prefix_completion", json!({"id": r.id, "prompt": p, "completion": c})));
    }
    out.push((
        "instruction",
        json!({"id": r.id, "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": format!("```python\n{code}```")},
        ]}),
    ));
    let Some(v) = &r.verified else {
        return out;
    };
    // Only failures against the kept tests: the original also ran against tests samples that were
    // set aside, and those runs say nothing about the fix.
    let kept = r.tests.as_ref().map_or(0, |t| t.sample);
    let failing: Vec<_> = r
        .attempts
        .iter()
        .filter(|a| match a.kind {
            AttemptKind::Original => a.sample == kept,
            AttemptKind::Fix => true,
            _ => false,
        })
        .filter(|a| !a.verdict.passed())
        .collect();
    if let Some(bad) = failing.last() {
        out.push(("dpo", json!({"id": r.id, "prompt": prompt, "chosen": v.code, "rejected": bad.code})));
    }
    for a in &failing {
        out.push((
            "repair",
            json!({"id": r.id, "round": a.round, "code": a.code, "tests": tests,
                   "feedback": crate::pipeline::synth::feedback(&a.verdict, 1500), "fix": v.code}),
        ));
    }
    out
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io { path: path.to_path_buf(), source }
}

/// Rewrites the derived formats and `stats.json` of `dir` from its record files; `retrieve` is the
/// retrieve stage's counts to keep with them.
pub fn finalize(dir: &RunDir, retrieve: Option<serde_json::Value>) -> Result<SynthStats, SynthError> {
    let (_, accepted) = Journal::open::<Record>(&dir.records())?;
    let (_, rejected) = Journal::open::<Record>(&dir.rejected())?;
    let (_, timings) = Journal::open::<RunTimings>(&dir.timings())?;
    let files = ["prefix_completion", "instruction", "dpo", "repair"];
    let mut writers = Vec::new();
    for f in files {
        let path = dir.dataset().join(format!("{f}.jsonl"));
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        writers.push((path, std::io::BufWriter::new(file)));
    }
    for r in &accepted {
        for (stem, line) in format_lines(r) {
            let Some(k) = files.iter().position(|f| *f == stem) else {
                continue;
            };
            let (path, w) = &mut writers[k];
            writeln!(w, "{line}").map_err(io(path))?;
        }
    }
    for (path, mut w) in writers {
        w.flush().map_err(io(&path))?;
    }
    let mut stats = SynthStats::compute(&accepted, &rejected, &timings);
    stats.retrieve = retrieve.or_else(|| {
        std::fs::read_to_string(dir.stats())
            .ok()
            .and_then(|t| serde_json::from_str::<SynthStats>(&t).ok())
            .and_then(|s| s.retrieve)
    });
    let path = dir.stats();
    let text = serde_json::to_string_pretty(&stats).map_err(|e| io(&path)(e.into()))?;
    std::fs::write(&path, text + "\n").map_err(io(&path))?;
    Ok(stats)
}

/// Joins shard run directories into `out`: records deduplicated by id (first seen wins), timings
/// concatenated; then the formats and statistics are rebuilt.
pub fn merge(shards: &[RunDir], out: &RunDir) -> Result<SynthStats, SynthError> {
    let (mut acc, have_a) = Journal::open::<Record>(&out.records())?;
    let (mut rej, have_r) = Journal::open::<Record>(&out.rejected())?;
    let (mut tim, _) = Journal::open::<RunTimings>(&out.timings())?;
    let mut seen: HashSet<String> = have_a.into_iter().chain(have_r).map(|r| r.id).collect();
    for s in shards {
        let (_, a) = Journal::open::<Record>(&s.records())?;
        let (_, r) = Journal::open::<Record>(&s.rejected())?;
        let (_, t) = Journal::open::<RunTimings>(&s.timings())?;
        for rec in a {
            if seen.insert(rec.id.clone()) {
                acc.append(&rec)?;
            }
        }
        for rec in r {
            if seen.insert(rec.id.clone()) {
                rej.append(&rec)?;
            }
        }
        for x in t {
            tim.append(&x)?;
        }
    }
    finalize(out, None)
}
