//! `merge`: joins the run directories of `synth --shard i/N` runs (and what the output directory
//! already holds) into one. Each shard deduplicated only its own part of the corpus, so the merge
//! deduplicates again across shards with the retrieve stage's [`Dedup`] (exact, then MinHash near
//! duplicates), visiting records in corpus order — the order an unsharded run retrieves them in —
//! so the merged set is the one an unsharded run keeps. Dropped duplicates are listed in
//! `merge_duplicates.jsonl` and counted in `stats.json`.
//!
//! Shards must have been made with the same settings ([`RunSettings`]: model, prompts, sampling,
//! thresholds); a merge refuses inputs whose recorded settings differ, and an input that was itself
//! resumed with other settings (its `earlier_settings`). Their retrieve counts are
//! combined into the merged run's (counts summed, corpora and examples joined).

use super::{read_stats, rebuild, save_stats, Format};
use crate::pipeline::journal::Journal;
use crate::pipeline::record::Record;
use crate::pipeline::retrieve::{Dedup, Duplicate};
use crate::pipeline::run_dir::{OutputError, RunDir, RunSettings, RunTimings};
use crate::pipeline::stats::SynthStats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// For each single run merged (keyed by the digest of its retrieve counts, as its part of the
    /// merged counts is), how many of the functions it set out to do have no record in it: what is
    /// still to do. Duplicates dropped here are done, so the merged run is finished exactly when
    /// every shard is. Absent from merges of versions before it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unfinished: BTreeMap<String, u64>,
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
    (s.corpus_file.as_path(), s.corpus_line.or(s.corpus_row).unwrap_or(0), s.start_line, r.id.as_str())
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
    // Statistics first: a refusal must come before anything is written.
    let mut settings: Option<(PathBuf, RunSettings)> = None;
    let mut retrieve_parts: Vec<Value> = Vec::new();
    let mut part_texts: HashSet<String> = HashSet::new();
    // Each single run's digest and the functions it set out to do, by input position; what earlier
    // merges recorded as still to do.
    let mut to_do: Vec<Option<(String, u64)>> = Vec::new();
    let mut recorded: BTreeMap<String, u64> = BTreeMap::new();
    for dir in std::iter::once(out).chain(shards) {
        let Some(stats) = read_stats(dir)? else {
            to_do.push(None);
            continue;
        };
        match stats.merge.as_ref().map(|m| m.get("unfinished")) {
            Some(earlier) => {
                let earlier: BTreeMap<String, u64> =
                    earlier.and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
                for (k, n) in earlier {
                    recorded.entry(k).or_insert(n);
                }
                to_do.push(None);
            }
            None => to_do.push(stats.to_do().zip(stats.retrieve.as_ref()).map(|(n, r)| (part_digest(r), n))),
        }
        let (made_with, earlier) = stats.made_with();
        if let (Some(now), Some(then)) = (made_with, earlier.first()) {
            // Its own records were made with more than one set of settings: not one data set either.
            return Err(OutputError::other(
                &dir.stats(),
                format!(
                    "its run was resumed with other settings ({} sets; the first vs the latest: {}), so its records \
                     are not one data set and it is not merged; rerun it with one set of settings into a new --out",
                    earlier.len() + 1,
                    then.differences(now).join(", ")
                ),
            ));
        }
        if let Some(theirs) = made_with.cloned() {
            match &settings {
                None => settings = Some((dir.stats(), theirs)),
                Some((first, ours)) => {
                    let differ = theirs.differences(ours);
                    if !differ.is_empty() {
                        return Err(OutputError::other(
                            &dir.stats(),
                            format!(
                                "made with other settings than {} (its value vs that one's): {}; their records are \
                                 not one data set, so they are not merged",
                                first.display(),
                                differ.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        for part in stats.retrieve.map(retrieve_parts_of).unwrap_or_default() {
            // The same shard's counts reached through an earlier merge and again directly count once.
            if part_texts.insert(part.to_string()) {
                retrieve_parts.push(part);
            }
        }
    }
    let mut all: Vec<(Record, bool)> = Vec::new();
    let mut timings: Vec<RunTimings> = Vec::new();
    let mut timing_lines: HashSet<String> = HashSet::new();
    for (dir, to_do) in std::iter::once(out).chain(shards).zip(&to_do) {
        let before = all.len();
        for (path, accepted) in [(dir.records(), true), (dir.rejected(), false)] {
            all.extend(Journal::read::<Record>(&path)?.into_iter().map(|r| (r, accepted)));
        }
        if let Some((digest, n)) = to_do {
            // A single run as it is now: a shard resumed since an earlier merge counts as it stands.
            recorded.insert(digest.clone(), n.saturating_sub((all.len() - before) as u64));
        }
        for t in Journal::read::<RunTimings>(&dir.timings())? {
            // A run's lines are the same in every copy: merging twice must not count them twice.
            if timing_lines.insert(serde_json::to_string(&t).unwrap_or_default()) {
                timings.push(t);
            }
        }
    }
    counts.read = all.len() as u64;
    counts.unfinished = recorded;
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
    let (mut stats, accepted, rows) = rebuild(out, combine_retrieve(retrieve_parts), formats)?;
    stats.settings = settings.map(|(_, s)| s);
    stats.merge = serde_json::to_value(&counts).ok();
    save_stats(out, &stats)?;
    // The card once the statistics say what was merged.
    super::card::write(out, &stats, &accepted, &rows, formats)?;
    Ok((stats, counts))
}

/// The key of a single run's retrieve counts in [`MergeCounts::unfinished`]: the same for the same
/// counts, read directly or through an earlier merge.
fn part_digest(retrieve: &Value) -> String {
    crate::corpus::content_id(&retrieve.to_string())
}

/// The key under which a merged run's retrieve counts keep each input's own counts, so that merging
/// into the same directory again (it is an input too) does not count a shard twice.
const PARTS: &str = "parts";

/// The retrieve counts of single runs that `retrieve` holds: its parts for a merged run, else itself.
fn retrieve_parts_of(retrieve: Value) -> Vec<Value> {
    match retrieve {
        Value::Object(mut m) if m.contains_key(PARTS) => match m.remove(PARTS) {
            Some(Value::Array(parts)) => parts,
            _ => Vec::new(),
        },
        other => vec![other],
    }
}

/// The retrieve counts of the shards `parts` together, with the parts kept under [`PARTS`]; one
/// part is its own combination.
fn combine_retrieve(mut parts: Vec<Value>) -> Option<Value> {
    if parts.len() <= 1 {
        return parts.pop();
    }
    let mut all = parts.iter().skip(1).fold(parts[0].clone(), |a, b| combine("", &a, b));
    if let Value::Object(m) = &mut all {
        let field = |p: &Value, k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        let by_file =
            parts.iter().all(|p| p.get("shard").and_then(Value::as_str).is_some_and(|s| s.ends_with(" by file")));
        if by_file {
            // Split by whole files, each shard read only its own: the counts add up, and the corpus
            // files no merged shard read are the corpus's (any shard's own and others) less theirs.
            for k in WHOLE_CORPUS {
                m.insert(k.into(), Value::from(parts.iter().map(|p| field(p, k)).sum::<u64>()));
            }
            let own = |p: &Value| p.get("corpus").and_then(Value::as_array).map_or(0, |c| c.len() as u64);
            let total = parts.iter().map(|p| own(p) + field(p, "corpus_files_other_shards")).max().unwrap_or(0);
            let read: u64 = parts.iter().map(own).sum();
            m.insert("corpus_files_other_shards".into(), Value::from(total.saturating_sub(read)));
        } else if m.contains_key("files_other_shards") {
            // Every shard reads every file and skips the other shards' ones: the files no merged
            // shard parsed are those read less each shard's own.
            let read = parts.iter().map(|p| field(p, "files_read")).max().unwrap_or(0);
            let own: u64 =
                parts.iter().map(|p| field(p, "files_read").saturating_sub(field(p, "files_other_shards"))).sum();
            m.insert("files_other_shards".into(), Value::from(read.saturating_sub(own)));
        }
        m.insert(PARTS.into(), Value::Array(parts));
    }
    Some(all)
}

/// Counts that every shard makes over the whole corpus (it reads every file to find its own), so
/// the merged count is any one shard's, not their sum (unless whole files were split: then each
/// shard read only its own, and they add up).
const WHOLE_CORPUS: [&str; 2] = ["files_read", "malformed_entries"];

/// Strings that name an input (a shard, a records file): the merged run lists them all.
const LISTED: [&str; 2] = ["shard", "records_file"];

/// `a` and `b`, the values of `key` in two shards' retrieve counts, as one: numbers summed (see
/// [`WHOLE_CORPUS`]), flags or-ed, lists (corpora, benchmarks, examples) joined without repeats,
/// maps merged key by key, names of inputs listed, other strings (one example per reason) the first.
fn combine(key: &str, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut m = x.clone();
            for (k, v) in y {
                let c = x.get(k).map_or_else(|| v.clone(), |u| combine(k, u, v));
                m.insert(k.clone(), c);
            }
            Value::Object(m)
        }
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(p), Some(q)) if WHOLE_CORPUS.contains(&key) => Value::from(p.max(q)),
            (Some(p), Some(q)) => Value::from(p.saturating_add(q)),
            _ => {
                let (p, q) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                Value::from(if WHOLE_CORPUS.contains(&key) { p.max(q) } else { p + q })
            }
        },
        (Value::Bool(p), Value::Bool(q)) => Value::Bool(*p || *q),
        (Value::Array(x), Value::Array(y)) => {
            let mut v = x.clone();
            v.extend(y.iter().filter(|e| !x.contains(e)).cloned());
            Value::Array(v)
        }
        (Value::String(p), Value::String(q)) if LISTED.contains(&key) => {
            if p.split(", ").any(|s| s == q) {
                a.clone()
            } else {
                Value::String(format!("{p}, {q}"))
            }
        }
        _ => a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retrieve_counts_of_shards_split_by_file_add_up_and_by_content_do_not() {
        let part = |shard: &str, corpus: &[&str], other: u64, read: u64, malformed: u64| {
            json!({"corpus": corpus, "shard": shard, "corpus_files_other_shards": other, "files_read": read,
                   "files_other_shards": 0, "malformed_entries": malformed, "records_kept": read / 2})
        };
        // Three corpus files, two shards: the first and third to shard 0, the second to shard 1.
        let parts = vec![part("0/2 by file", &["a", "c"], 1, 10, 1), part("1/2 by file", &["b"], 2, 6, 2)];
        let all = combine_retrieve(parts).unwrap();
        assert_eq!(all["files_read"], 16);
        assert_eq!(all["malformed_entries"], 3);
        assert_eq!(all["corpus_files_other_shards"], 0);
        assert_eq!(all["records_kept"], 8);
        assert_eq!(all["shard"], "0/2 by file, 1/2 by file");
        // Two shards of three: the third's file is one no merged shard read.
        let two = combine_retrieve(vec![part("0/3 by file", &["a"], 2, 6, 2), part("1/3 by file", &["b"], 2, 6, 2)]);
        assert_eq!(two.unwrap()["corpus_files_other_shards"], 1);

        // By content every shard read every file: the whole corpus's counts are any shard's.
        let content = |shard: &str, other: u64| json!({"corpus": ["a"], "shard": shard, "files_read": 10, "files_other_shards": other, "malformed_entries": 1});
        let all = combine_retrieve(vec![content("0/2", 4), content("1/2", 6)]).unwrap();
        assert_eq!((all["files_read"].as_u64(), all["malformed_entries"].as_u64()), (Some(10), Some(1)));
        assert_eq!(all["files_other_shards"], 0);
    }
}
