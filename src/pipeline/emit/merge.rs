//! `merge`: joins the run directories of `synth --shard i/N` runs (and what the output directory
//! already holds) into one. Each shard deduplicated only its own part of the corpus, so the merge
//! deduplicates again across shards with the retrieve stage's [`Dedup`] (exact, then MinHash near
//! duplicates), visiting records in corpus order — the order an unsharded run retrieves them in —
//! so the merged set is the one an unsharded run keeps. Dropped duplicates are listed in
//! `merge_duplicates.jsonl` and counted in `stats.json`.

use super::{finalize_as, save_stats, Format};
use crate::pipeline::journal::Journal;
use crate::pipeline::record::Record;
use crate::pipeline::retrieve::{Dedup, Duplicate};
use crate::pipeline::run_dir::{OutputError, RunDir, RunTimings};
use crate::pipeline::stats::SynthStats;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// Near-duplicate threshold of the merge: the retrieve stage's default.
const NEAR_THRESHOLD: f64 = 0.8;

/// What a merge joined and dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeCounts {
    /// Shard directories read.
    pub shards: u64,
    /// Records read (the output's own included).
    pub read: u64,
    /// Records seen twice with the same id (the same function from two inputs); one is kept.
    pub same_id: u64,
    /// Records dropped as exact duplicates (same code up to whitespace) of an earlier one.
    pub exact_duplicates: u64,
    /// Records dropped as near duplicates (MinHash Jaccard ≥ 0.8) of an earlier one.
    pub near_duplicates: u64,
    /// Records in the merged directory.
    pub kept: u64,
}

#[derive(Serialize)]
struct DroppedLine<'a> {
    id: &'a str,
    kind: &'a str,
    function: &'a str,
    corpus_file: &'a Path,
    start_line: usize,
}

/// The corpus position of a record: file (component-wise, like the sorted directory walk), line or
/// row in the file, first line of the function.
fn position(r: &Record) -> (&Path, u64, usize, &str) {
    let s = &r.source;
    (s.corpus_file.as_path(), s.corpus_line.unwrap_or(0), s.start_line, r.id.as_str())
}

/// Writes `items` as JSONL to `path`, aside and renamed.
fn rewrite<T: Serialize>(path: &Path, items: &[T]) -> Result<(), OutputError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(OutputError::io(d))?;
    }
    crate::atomic_file::stream(
        path,
        |p, e| OutputError::io(p)(e),
        |tmp, file| {
            let mut w = std::io::BufWriter::new(file);
            for item in items {
                serde_json::to_writer(&mut w, item).map_err(|e| OutputError::io(tmp)(e.into()))?;
                w.write_all(b"\n").map_err(OutputError::io(tmp))?;
            }
            w.into_inner().map_err(|e| OutputError::io(tmp)(e.into_error()))
        },
    )
}

/// Joins `shards` into `out` (which may already hold an earlier merge: it is an input too), drops
/// records with a repeated id and exact or near duplicates across shards, concatenates the runs'
/// timings (each run once), then rebuilds the derived files in `formats` and the statistics.
pub fn merge(shards: &[RunDir], out: &RunDir, formats: &[Format]) -> Result<(SynthStats, MergeCounts), OutputError> {
    let mut counts = MergeCounts { shards: shards.len() as u64, ..MergeCounts::default() };
    let mut all: Vec<(Record, bool)> = Vec::new();
    let mut timings: Vec<RunTimings> = Vec::new();
    let mut timing_lines: HashSet<String> = HashSet::new();
    for dir in std::iter::once(out).chain(shards) {
        for (path, accepted) in [(dir.records(), true), (dir.rejected(), false)] {
            all.extend(Journal::read::<Record>(&path)?.into_iter().map(|r| (r, accepted)));
        }
        for t in Journal::read::<RunTimings>(&dir.timings())? {
            // A run's lines are the same in every copy: merging twice must not count them twice.
            if timing_lines.insert(serde_json::to_string(&t).unwrap_or_default()) {
                timings.push(t);
            }
        }
    }
    counts.read = all.len() as u64;
    // Stable sort: among equal positions (the same function twice) the first input wins.
    all.sort_by(|a, b| position(&a.0).cmp(&position(&b.0)));
    let mut ids = HashSet::new();
    let mut dedup = Dedup::new(Some(NEAR_THRESHOLD));
    let (mut accepted, mut rejected, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    for (r, ok) in &all {
        if !ids.insert(r.id.as_str()) {
            counts.same_id += 1;
            continue;
        }
        let kind = match dedup.check_parts(&r.function.code, r.function_text()) {
            Duplicate::New => {
                if *ok {
                    accepted.push(r);
                } else {
                    rejected.push(r);
                }
                continue;
            }
            Duplicate::Exact => {
                counts.exact_duplicates += 1;
                "exact"
            }
            Duplicate::Near => {
                counts.near_duplicates += 1;
                "near"
            }
        };
        dropped.push(DroppedLine {
            id: &r.id,
            kind,
            function: &r.function.name,
            corpus_file: &r.source.corpus_file,
            start_line: r.source.start_line,
        });
    }
    counts.kept = (accepted.len() + rejected.len()) as u64;
    rewrite(&out.records(), &accepted)?;
    rewrite(&out.rejected(), &rejected)?;
    rewrite(&out.timings(), &timings)?;
    rewrite(&out.root.join("merge_duplicates.jsonl"), &dropped)?;
    let mut stats = finalize_as(out, None, formats)?;
    stats.merge = serde_json::to_value(&counts).ok();
    save_stats(out, &stats)?;
    Ok((stats, counts))
}
