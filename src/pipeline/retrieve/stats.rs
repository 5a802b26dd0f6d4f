//! The retrieve funnel: how many files and functions came in, why each dropped one was dropped,
//! and how many records came out per package. Saved as JSON next to the output and printed as text.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counts for one retrieve run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrieveStats {
    /// The corpus paths read.
    pub corpus: Vec<PathBuf>,
    /// The shard processed (`i/N`, or `i/N by file` when whole corpus files were split).
    pub shard: String,
    /// Corpus files (JSONL, Parquet) that went to other shards, not read: split by file only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub corpus_files_other_shards: u64,
    /// Why the run stopped before the end of the corpus, when an error stopped it (a malformed
    /// entry under `--strict`, a broken file); its records so far are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Source files read (all shards, when split by content).
    pub files_read: u64,
    /// Of those, files belonging to other shards (not parsed).
    pub files_other_shards: u64,
    /// Malformed corpus entries skipped.
    pub malformed_entries: u64,
    /// The first few malformed-entry messages (file and line).
    pub malformed_examples: Vec<String>,
    /// Provenance fields left out because their value had another type than expected (a number
    /// as `repo`, an object as `license`), by field name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata_ignored: BTreeMap<String, u64>,
    /// The first few of those, with where they were and what they held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_examples: Vec<String>,
    /// Files skipped whole, by reason (too large, syntax error, Python 2).
    pub files_skipped: BTreeMap<String, u64>,
    /// One such file per reason, with its size: which file to look at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skip_examples: BTreeMap<String, String>,
    /// Files parsed.
    pub files_parsed: u64,
    /// Top-level functions seen in parsed files.
    pub functions_seen: u64,
    /// Functions rejected by the filter, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// One example per rejection reason: the corpus location and the detail (the offending name...).
    pub reject_examples: BTreeMap<String, String>,
    /// Functions that passed the filter.
    pub passed_filter: u64,
    /// Dropped as exact duplicates.
    pub exact_duplicates: u64,
    /// Dropped as near duplicates.
    pub near_duplicates: u64,
    /// Dropped for overlapping a benchmark.
    pub contaminated: u64,
    /// Contamination drops by benchmark file.
    pub contaminated_by: BTreeMap<String, u64>,
    /// Records written.
    pub kept: u64,
    /// Records per top-level package used (a record counts once for each package).
    pub per_package: BTreeMap<String, u64>,
    /// Whether `--limit` ended the run early.
    pub limit_reached: bool,
    /// Whether an interrupt (Ctrl-C, SIGTERM) ended the run early: the counts and the records
    /// cover only the files read before it.
    #[serde(default)]
    pub interrupted: bool,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl RetrieveStats {
    /// The error of a run that read no entry because every one was malformed (the wrong file, or
    /// the wrong format); `None` otherwise (an empty corpus is a warning, not an error).
    pub fn unreadable(&self) -> Option<super::RetrieveError> {
        (self.files_read == 0 && self.malformed_entries > 0).then(|| super::RetrieveError::Unreadable {
            entries: self.malformed_entries,
            first: self.malformed_examples.first().cloned().unwrap_or_else(|| "?".into()),
        })
    }

    /// The funnel as aligned text lines, for the terminal.
    pub fn funnel(&self) -> String {
        let mut s = String::new();
        let mut line = |label: &str, n: u64| {
            let _ = writeln!(s, "{label:<34}{n:>10}");
        };
        if self.corpus_files_other_shards > 0 {
            line("corpus files of other shards", self.corpus_files_other_shards);
        }
        line("files read", self.files_read);
        if self.files_other_shards > 0 {
            line("  in other shards", self.files_other_shards);
        }
        if self.malformed_entries > 0 {
            line("  malformed entries skipped", self.malformed_entries);
        }
        for (field, n) in &self.metadata_ignored {
            line(&format!("  metadata ignored: {field}"), *n);
        }
        for (reason, n) in &self.files_skipped {
            line(&format!("  skipped: {reason}"), *n);
        }
        line("files parsed", self.files_parsed);
        line("functions seen", self.functions_seen);
        let mut reasons: Vec<_> = self.rejected.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in reasons {
            line(&format!("  rejected: {reason}"), *n);
        }
        line("passed filter", self.passed_filter);
        line("  exact duplicates", self.exact_duplicates);
        line("  near duplicates", self.near_duplicates);
        line("  contaminated", self.contaminated);
        line("kept", self.kept);
        let mut packages: Vec<_> = self.per_package.iter().collect();
        packages.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = packages.iter().take(15).map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(s, "packages: {}", top.join(", "));
        let _ = writeln!(s, "time: {:.1} s", self.seconds);
        s
    }
}
