//! Stage 5: the post-training formats, derived from a run's accepted records (so they are rebuilt
//! the same after a resume or a merge), the statistics file, and `merge` of shard run directories.
//!
//! Formats ([`formats`]), one file each in `dataset/`, in any of JSONL, JSONL.gz and Parquet
//! ([`files::Format`]):
//! - `prefix_completion`: imports + signature + docstring → body (records with a docstring);
//! - `instruction`: chat messages (complete this documented function → the program);
//! - `dpo`: a failing attempt (rejected) vs the passing fix (chosen), for fixed records;
//! - `repair`: code + tests + feedback → fix, one line per failing step that led to the fix;
//! - `unit_tests`: chat messages (write tests for this program → its kept suite, which it passes).
//!
//! The record journal `dataset/records.jsonl` is the source of truth and stays JSONL (it is
//! appended line by line as records finish); the derived files are rewritten whole from it at the
//! end of every run, resume, merge and report, so a format that can only be written at once
//! (Parquet) never loses a record.
//!
//! With them, `dataset/README.md` ([`card`]): the dataset card that makes the folder loadable with
//! Hugging Face `datasets` (a configuration per file) and says how the data was made.

pub mod card;
pub mod files;
pub mod formats;
mod merge;

pub use files::Format;
pub use formats::{final_code, format_lines, Derived, Row};
pub use merge::{merge, MergeCounts};

use crate::pipeline::journal::Journal;
use crate::pipeline::record::Record;
use crate::pipeline::run_dir::{OutputError, RunDir, RunSettings, RunTimings};
use crate::pipeline::stats::SynthStats;

/// The formats `dir`'s derived files are in now (JSONL when there are none yet).
pub fn formats_present(dir: &RunDir) -> Vec<Format> {
    let found: Vec<Format> = Format::ALL
        .into_iter()
        .filter(|f| {
            Derived::ALL.iter().any(|d| dir.dataset().join(format!("{}.{}", d.name(), f.extension())).is_file())
        })
        .collect();
    if found.is_empty() {
        vec![Format::Jsonl]
    } else {
        found
    }
}

/// Rewrites the derived formats (in the formats already there) and `stats.json` of `dir` from its
/// record files; `retrieve` is the retrieve stage's counts to keep with them.
pub fn finalize(dir: &RunDir, retrieve: Option<serde_json::Value>) -> Result<SynthStats, OutputError> {
    finalize_as(dir, retrieve, &formats_present(dir))
}

/// Like [`finalize`], writing the derived files in `formats` and removing those in other formats
/// (they would be stale).
pub fn finalize_as(
    dir: &RunDir,
    retrieve: Option<serde_json::Value>,
    formats: &[Format],
) -> Result<SynthStats, OutputError> {
    let (stats, accepted, rows) = rebuild(dir, retrieve, formats)?;
    card::write(dir, &stats, &accepted, &rows, formats)?;
    Ok(stats)
}

/// Rewrites the derived files in `formats` (removing those in other formats) and `stats.json`;
/// returns the statistics, the accepted records and the rows of each derived format
/// ([`Derived::ALL`] order), from which the card is written.
fn rebuild(
    dir: &RunDir,
    retrieve: Option<serde_json::Value>,
    formats: &[Format],
) -> Result<(SynthStats, Vec<Record>, Vec<usize>), OutputError> {
    let (_, accepted) = Journal::open::<Record>(&dir.records())?;
    let (_, rejected) = Journal::open::<Record>(&dir.rejected())?;
    let (_, timings) = Journal::open::<RunTimings>(&dir.timings())?;
    let mut lines: Vec<Vec<Row>> = vec![Vec::new(); Derived::ALL.len()];
    for r in &accepted {
        for row in format_lines(r) {
            // `ALL` lists every variant, so the position is always found.
            if let Some(k) = Derived::ALL.iter().position(|d| *d == row.derived()) {
                lines[k].push(row);
            }
        }
    }
    for (derived, lines) in Derived::ALL.into_iter().zip(&lines) {
        for f in Format::ALL {
            if formats.contains(&f) {
                files::write(&dir.dataset(), derived, f, lines)?;
            } else {
                let stale = dir.dataset().join(format!("{}.{}", derived.name(), f.extension()));
                match std::fs::remove_file(&stale) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(OutputError::io(&stale)(e)),
                    _ => {}
                }
            }
        }
    }
    let stats = write_stats_of(dir, &accepted, &rejected, &timings, retrieve)?;
    Ok((stats, accepted, lines.iter().map(Vec::len).collect()))
}

/// Recomputes `stats.json` of `dir` from its record files (read-only, so a running synth may be
/// appending to them); `retrieve` replaces the retrieve stage's counts, else those already in the
/// file are kept.
pub fn write_stats(dir: &RunDir, retrieve: Option<serde_json::Value>) -> Result<SynthStats, OutputError> {
    let accepted = Journal::read::<Record>(&dir.records())?;
    let rejected = Journal::read::<Record>(&dir.rejected())?;
    let timings = Journal::read::<RunTimings>(&dir.timings())?;
    write_stats_of(dir, &accepted, &rejected, &timings, retrieve)
}

fn write_stats_of(
    dir: &RunDir,
    accepted: &[Record],
    rejected: &[Record],
    timings: &[RunTimings],
    retrieve: Option<serde_json::Value>,
) -> Result<SynthStats, OutputError> {
    let mut stats = SynthStats::compute(accepted, rejected, timings);
    let previous = read_stats(dir)?;
    stats.retrieve = retrieve.or_else(|| previous.as_ref().and_then(|s| s.retrieve.clone()));
    stats.settings = previous.as_ref().and_then(|s| s.settings.clone());
    stats.earlier_settings = previous.as_ref().map(|s| s.earlier_settings.clone()).unwrap_or_default();
    stats.settings_since = previous.as_ref().map_or(0, |s| s.settings_since);
    stats.merge = previous.and_then(|s| s.merge);
    save_stats(dir, &stats)?;
    Ok(stats)
}

/// `dir`'s `stats.json`, or `None` when there is none. A file that is there but does not parse is
/// an error naming it: its retrieve counts, settings and merge counts are not in the record files,
/// so rewriting it from them would lose those without a word.
pub fn read_stats(dir: &RunDir) -> Result<Option<SynthStats>, OutputError> {
    let path = dir.stats();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OutputError::io(&path)(e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| OutputError::other(&path, format!("not valid statistics: {e}")))
}

/// Records `settings` as those of `dir`'s run in its `stats.json` (created from the record files
/// when missing) and returns the ones recorded before, so that a resume made with other settings
/// can be told apart. Settings replaced by other ones are kept in `earlier_settings` (each distinct
/// set once) when records were finished with them, so the file still shows that the run mixed them.
pub fn record_settings(dir: &RunDir, settings: &RunSettings) -> Result<Option<RunSettings>, OutputError> {
    let mut stats = match read_stats(dir)? {
        Some(s) => s,
        None => write_stats(dir, None)?,
    };
    let done = stats.finished();
    let before = stats.settings.replace(settings.clone());
    match before.as_ref() {
        Some(b) if !b.same_as(settings) => {
            // Settings no record was finished with (a resume that found nothing left, or was
            // stopped at once) are not among those the run was made with.
            if done > stats.settings_since && !stats.earlier_settings.iter().any(|e| e.same_as(b)) {
                stats.earlier_settings.push(b.clone());
            }
            // Settings back from the earlier ones have records already: counted from 0.
            let back = stats.earlier_settings.iter().any(|e| e.same_as(settings));
            stats.settings_since = if back { 0 } else { done };
        }
        Some(_) => {}
        // The first settings recorded: records already there (of a version that recorded none)
        // are taken as theirs.
        None => stats.settings_since = 0,
    }
    // Back to settings used before: they are the current ones now, listed once.
    stats.earlier_settings.retain(|e| !e.same_as(settings));
    save_stats(dir, &stats)?;
    Ok(before)
}

/// At the end of a run: settings a resume recorded and finished no record with are taken back,
/// so `stats.json` names the settings its records were made with (the settings since count from
/// 0 again: they have records).
pub fn settle_settings(dir: &RunDir) -> Result<(), OutputError> {
    let Some(mut stats) = read_stats(dir)? else { return Ok(()) };
    if stats.earlier_settings.is_empty() {
        return Ok(());
    }
    // Counted, not decoded: finalize reads the records right after.
    let count = |p: &std::path::Path| Journal::read::<serde::de::IgnoredAny>(p).map(|v| v.len());
    let finished = count(&dir.records())? + count(&dir.rejected())?;
    if finished as u64 == stats.settings_since {
        stats.settings = stats.earlier_settings.pop();
        stats.settings_since = 0;
        save_stats(dir, &stats)?;
    }
    Ok(())
}

/// Writes `stats` to `dir`'s `stats.json`, aside and renamed, so a reader (or a kill) never sees
/// half a file.
pub fn save_stats(dir: &RunDir, stats: &SynthStats) -> Result<(), OutputError> {
    let path = dir.stats();
    let text = serde_json::to_string_pretty(stats).map_err(|e| OutputError::io(&path)(e.into()))?;
    crate::atomic_file::write(&path, (text + "\n").as_bytes()).map_err(OutputError::io(&path))
}
