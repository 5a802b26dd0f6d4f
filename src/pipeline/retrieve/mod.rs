//! Stage 1, retrieve: stream a corpus, parse each Python file, keep the top-level functions that can
//! stand alone with allowed imports ([`python`]), drop exact and near duplicates ([`dedup`]) and
//! benchmark overlaps ([`decontam`]), and hand each survivor on as a [`Record`]. Every drop is
//! counted by reason in [`RetrieveStats`], the funnel that `unitcoder retrieve` prints and saves.
//!
//! Files are parsed in parallel in chunks (rayon) and the results are consumed in corpus order, so
//! the output is the same for any thread count. `--shard i/N` keeps the files whose content id falls
//! in shard i; dedup is per run, so duplicates split across shards survive until a merge dedups again
//! (with [`Dedup`]).

mod compile_check;
mod decontam;
mod dedup;
pub mod fingerprints;
mod names;
mod packages;
mod pick;
pub(crate) mod python;
mod reasons;
mod stats;

#[cfg(test)]
mod filter_tests;

pub use compile_check::{CompileCheck, CompileCheckError};
pub use decontam::{DecontamError, Decontamination, Decontaminator};
pub use dedup::{code_tokens, exact_key, optimal_bands, Dedup, Duplicate, NearDedup};
pub use fingerprints::Fingerprints;
pub use names::{Binding, FileScope};
pub use packages::{is_builtin, top_level, Packages, PackagesError};
pub use pick::{pick, testability};
pub use python::{extract, Extracted, FileOutcome, Limits, Rejected};
pub use reasons::Reject;
pub use stats::RetrieveStats;

use crate::corpus::{self, CorpusError, CorpusKind, SourceFile};
use crate::pipeline::record::{Record, Stage};
use crate::progress::Reporter;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One of N disjoint parts of the input, chosen by the source file's content id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This part, 0-based.
    pub index: u64,
    /// The number of parts.
    pub count: u64,
}

impl Shard {
    /// The whole input.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether the file with content id `file_id` belongs to this shard.
    pub fn contains(&self, file_id: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        // Ids are SHA-256 prefixes, so their leading bits are uniform; anything else is hashed.
        let h = u64::from_str_radix(file_id.get(..16).unwrap_or(file_id), 16)
            .unwrap_or_else(|_| dedup::fnv1a(std::iter::once(file_id)));
        h % self.count == self.index
    }
}

/// How `--shard i/N` splits a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardBy {
    /// Source file by source file, by content id: every shard reads the whole corpus and parses its
    /// own part (the default; identical files share a shard, and any corpus splits evenly).
    #[default]
    Content,
    /// Whole corpus files (JSONL, Parquet, a Hub dataset's files): the caller gives the stage only
    /// this shard's files ([`crate::corpus::hf::resolve_specs`] picks them, and downloads no other),
    /// and `skipped` is how many went to other shards.
    File {
        /// Corpus files of other shards, not read.
        skipped: u64,
    },
}

impl Shard {
    /// How this shard is recorded in a run's counts: `i/N`, or `i/N by file` when whole files
    /// were split.
    pub fn label(&self, by_file: bool) -> String {
        if by_file && self.count > 1 {
            format!("{self} by file")
        } else {
            self.to_string()
        }
    }

    /// Whether corpus file `k` (0-based, in the order the corpus is read) belongs to this shard when
    /// whole files are split: round robin, so files of similar size split evenly.
    pub fn contains_file(&self, k: usize) -> bool {
        self.count <= 1 || k as u64 % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `i/N` with 0 ≤ i < N (0-based, like Slurm array and Kubernetes job indexes).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard `{s}`: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What to do with a malformed corpus entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Skip it, count it and keep the first few messages (the default).
    #[default]
    Skip,
    /// Stop with an error naming the file and line.
    Fail,
}

/// Everything the retrieve stage needs, resolved from the command line by the caller.
#[derive(Debug, Clone)]
pub struct RetrieveSettings {
    /// Corpus paths (JSONL(.gz/.zst), Parquet, directories of `.py` files), read in order.
    pub corpus: Vec<PathBuf>,
    /// Allowed top-level modules.
    pub packages: Packages,
    /// The benchmarks to decontaminate against.
    pub decontaminate: Decontamination,
    /// Near-duplicate Jaccard threshold (`None`: exact dedup only).
    pub near_threshold: Option<f64>,
    /// Function size limits.
    pub limits: Limits,
    /// Stop after this many kept records.
    pub limit: Option<u64>,
    /// The part of the input to process.
    pub shard: Shard,
    /// How the input is split into parts.
    pub shard_by: ShardBy,
    /// Malformed-entry policy.
    pub on_malformed: OnMalformed,
    /// The Python whose compiler confirms that each function that passed the filters is Python 3
    /// (`None`: tree-sitter's word is taken; see [`compile_check`]).
    pub python: Option<PathBuf>,
    /// Set (by a signal handler, say) to stop the run after the chunk of files in progress: the
    /// records kept so far are passed on and the run ends with [`RetrieveError::Interrupted`].
    pub cancel: Arc<AtomicBool>,
}

impl RetrieveSettings {
    /// Defaults for `corpus`: BigCodeBench packages, near-dup threshold 0.8, decontamination
    /// against the built-in benchmarks, no limit, whole input, skip malformed entries.
    pub fn new(corpus: Vec<PathBuf>) -> Self {
        RetrieveSettings {
            corpus,
            packages: Packages::bigcodebench(),
            decontaminate: Decontamination::default(),
            near_threshold: Some(0.8),
            limits: Limits::default(),
            limit: None,
            shard: Shard::ALL,
            shard_by: ShardBy::Content,
            on_malformed: OnMalformed::Skip,
            python: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The retrieve stage failed (as opposed to dropping data, which is counted).
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// The corpus could not be read, or a malformed entry under [`OnMalformed::Fail`].
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// Benchmark files for decontamination could not be loaded.
    #[error(transparent)]
    Decontam(#[from] DecontamError),
    /// The Python compiler that checks functions could not be used.
    #[error(transparent)]
    Compile(#[from] compile_check::CompileCheckError),
    /// The output would overwrite an input.
    #[error("--out {} is the input {}: writing it would destroy the input", .out.display(), .input.display())]
    OutputIsInput { out: PathBuf, input: PathBuf },
    /// The output's name asks for a format this stage does not write.
    #[error("--out {}: records are written as JSON Lines, plain (.jsonl), gzip (.jsonl.gz) or zstd (.jsonl.zst){}", .0.display(), if .0.extension().is_some_and(|e| e == "parquet") { "; `unitcoder merge --format parquet` converts a run's dataset" } else { "" })]
    OutputFormat(PathBuf),
    /// Writing the output failed.
    #[error("{path}: {cause}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The run stopped part-way with `cause`: the records kept before it are in `out` (a whole
    /// file) and counted in `stats` (with the error as `stopped`).
    #[error("retrieve stopped; records so far are in {}, counts in {}: {cause}", .out.display(), .stats.display())]
    Stopped {
        /// The records file.
        out: PathBuf,
        /// The counts beside it.
        stats: PathBuf,
        /// Why it stopped.
        cause: Box<RetrieveError>,
    },
    /// The run failed before it kept a record, or could read no entry: `out` was not replaced.
    #[error("{cause}; {} {}", .out.display(), if *.existed { "was left as it was" } else { "was not written" })]
    Unchanged {
        /// The records file.
        out: PathBuf,
        /// Whether it held an earlier run's records.
        existed: bool,
        /// Why.
        cause: Box<RetrieveError>,
    },
    /// Every entry of the corpus was malformed: the wrong file, or the wrong format.
    #[error(
        "none of the corpus's {entries} entries could be read (the first: {first}); is it the right file, in JSON \
         Lines (one object with a `content` string per line) or Parquet (a `content` column)?"
    )]
    Unreadable {
        /// How many entries there were.
        entries: u64,
        /// The first one's problem, with its file and line.
        first: String,
    },
    /// The record sink failed.
    #[error("writing records: {0}")]
    Sink(std::io::Error),
    /// [`RetrieveSettings::cancel`] was set: the run stopped early, on request, with every record
    /// kept so far passed on and counted.
    #[error("retrieval interrupted")]
    Interrupted,
    /// A corpus path is given twice (maybe spelled two ways).
    #[error("--corpus {} is given twice (also as {}): name each corpus once", .path.display(), .first.display())]
    Repeated {
        /// The second naming.
        path: PathBuf,
        /// The first.
        first: PathBuf,
    },
    /// An input path (corpus or decontamination benchmark) does not exist.
    #[error("{path}: no such {what}")]
    Missing {
        /// The path as given.
        path: PathBuf,
        /// "corpus file or directory" or "benchmark file or directory".
        what: &'static str,
    },
}

impl RetrieveSettings {
    /// Checks that every input path exists, so that a mistyped path fails before any output is
    /// created (an empty output file would look like a corpus with nothing usable in it).
    pub fn check_inputs(&self) -> Result<(), RetrieveError> {
        let corpus = self.corpus.iter().map(|p| (p, "corpus file or directory"));
        let benchmarks = self.decontaminate.paths.iter().map(|p| (p, "benchmark file or directory"));
        if let Some((path, what)) = corpus.chain(benchmarks).find(|(p, _)| !p.exists()) {
            return Err(RetrieveError::Missing { path: path.clone(), what });
        }
        for (k, path) in self.corpus.iter().enumerate() {
            // An unsupported kind fails here, before any output is touched.
            CorpusKind::of(path)?;
            // Read twice, its functions would be counted twice and dropped as duplicates of themselves.
            if let Some(first) = self.corpus[..k].iter().find(|p| crate::atomic_file::same_file(p, path)) {
                return Err(RetrieveError::Repeated { path: path.clone(), first: first.clone() });
            }
        }
        Ok(())
    }

    /// Every file this run reads: corpora and benchmarks (an output must be none of them).
    fn input_paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.corpus.iter().chain(&self.decontaminate.paths)
    }
}

/// How many malformed-entry messages the statistics keep.
const EXAMPLES: usize = 5;
/// Files parsed in parallel per chunk: large enough to keep the pool busy, small enough that a
/// `--limit` run stops soon.
const CHUNK: usize = 64;

/// What a run loads before it reads the corpus: the benchmarks it decontaminates against and the
/// Python compiler that checks functions. Loaded before an output is opened, so that a bad
/// benchmark file or Python stops the run with nothing touched.
pub struct Prepared {
    decontam: Option<Decontaminator>,
    compiler: Option<CompileCheck>,
}

impl RetrieveSettings {
    /// Checks the corpus paths' kinds, loads the benchmarks and starts the compiler.
    pub fn prepare(&self) -> Result<Prepared, RetrieveError> {
        for path in &self.corpus {
            CorpusKind::of(path)?; // fail before any work on a missing or unsupported path
        }
        let decontam = self.decontaminate.load()?;
        let compiler = self.python.as_deref().map(CompileCheck::start).transpose()?;
        Ok(Prepared { decontam, compiler })
    }
}

/// Runs the retrieve stage, passing kept records to `sink` in corpus order and counting everything in
/// `stats` (which stays valid, with the counts so far, when an error ends the run).
pub fn retrieve(
    settings: &RetrieveSettings,
    stats: &mut RetrieveStats,
    reporter: &dyn Reporter,
    sink: &mut dyn FnMut(Record) -> std::io::Result<()>,
) -> Result<(), RetrieveError> {
    let prepared = settings.prepare()?;
    retrieve_prepared(settings, prepared, stats, reporter, sink)
}

/// [`retrieve`] with what it loads first already loaded.
pub fn retrieve_prepared(
    settings: &RetrieveSettings,
    prepared: Prepared,
    stats: &mut RetrieveStats,
    reporter: &dyn Reporter,
    sink: &mut dyn FnMut(Record) -> std::io::Result<()>,
) -> Result<(), RetrieveError> {
    let started = Instant::now();
    stats.corpus = settings.corpus.clone();
    stats.shard = settings.shard.label(matches!(settings.shard_by, ShardBy::File { .. }));
    if let ShardBy::File { skipped } = settings.shard_by {
        stats.corpus_files_other_shards = skipped;
    }
    let Prepared { decontam, mut compiler } = prepared;
    let mut dedup = Dedup::new(settings.near_threshold);
    let mut files = corpus::open_all(&settings.corpus);
    reporter.begin("retrieve", None);
    let result = (|| loop {
        if settings.cancel.load(Ordering::SeqCst) {
            stats.interrupted = true;
            return Err(RetrieveError::Interrupted);
        }
        // A fatal read error still lets the files read before it be processed and written.
        let (chunk, error) = next_chunk(&mut files, settings, stats, reporter);
        let outcomes: Vec<FileOutcome> =
            chunk.par_iter().map(|(f, _)| python::extract(&f.content, &settings.packages, &settings.limits)).collect();
        for ((file, read), outcome) in chunk.iter().zip(outcomes) {
            let dec = decontam.as_ref();
            let checks = Checks { dedup: &mut dedup, decontam: dec, compiler: compiler.as_mut() };
            if consume(file, outcome, settings, stats, checks, sink)? {
                // The chunk was read ahead: count only what came before this file.
                read.restore(stats);
                stats.limit_reached = true;
                return Ok(());
            }
        }
        reporter.advance("retrieve", chunk.len() as u64);
        if let Some(e) = error {
            return Err(e);
        }
        if chunk.is_empty() {
            return Ok(());
        }
    })();
    reporter.end("retrieve");
    stats.seconds = started.elapsed().as_secs_f64();
    if let Err(e) = &result {
        if !matches!(e, RetrieveError::Interrupted) {
            stats.stopped = Some(e.to_string());
        }
    }
    result
}

/// The read counts up to and including one file of a chunk, which is read ahead of the parsing.
struct ReadSoFar {
    files_read: u64,
    files_other_shards: u64,
    malformed_entries: u64,
    malformed_examples: usize,
}

impl ReadSoFar {
    fn of(stats: &RetrieveStats) -> Self {
        ReadSoFar {
            files_read: stats.files_read,
            files_other_shards: stats.files_other_shards,
            malformed_entries: stats.malformed_entries,
            malformed_examples: stats.malformed_examples.len(),
        }
    }

    fn restore(&self, stats: &mut RetrieveStats) {
        stats.files_read = self.files_read;
        stats.files_other_shards = self.files_other_shards;
        stats.malformed_entries = self.malformed_entries;
        stats.malformed_examples.truncate(self.malformed_examples);
    }
}

/// Reads up to [`CHUNK`] source files of this shard, each with the read counts up to it, stopping
/// early at a fatal error (returned beside the files read before it). An empty chunk without error
/// means the corpus is done.
fn next_chunk(
    files: &mut corpus::SourceIter,
    settings: &RetrieveSettings,
    stats: &mut RetrieveStats,
    reporter: &dyn Reporter,
) -> (Vec<(SourceFile, ReadSoFar)>, Option<RetrieveError>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() < CHUNK {
        match files.next() {
            None => break,
            Some(Ok(file)) => {
                stats.files_read += 1;
                // By file, the corpus given is already this shard's files.
                if matches!(settings.shard_by, ShardBy::File { .. }) || settings.shard.contains(&file.id) {
                    chunk.push((file, ReadSoFar::of(stats)));
                } else {
                    stats.files_other_shards += 1;
                }
            }
            Some(Err(e)) if e.is_recoverable() && settings.on_malformed == OnMalformed::Skip => {
                stats.malformed_entries += 1;
                if stats.malformed_examples.len() < EXAMPLES {
                    reporter.note(&format!("skipped: {e}"));
                    stats.malformed_examples.push(e.to_string());
                }
            }
            Some(Err(e)) => {
                if e.is_recoverable() {
                    // --strict: the entry that stops the run is counted like a skipped one.
                    stats.malformed_entries += 1;
                    stats.malformed_examples.push(e.to_string());
                }
                return (chunk, Some(e.into()));
            }
        }
    }
    (chunk, None)
}

/// What a function that passed the filters still goes through: Python's compiler, dedup and
/// decontamination.
struct Checks<'a> {
    dedup: &'a mut Dedup,
    decontam: Option<&'a Decontaminator>,
    compiler: Option<&'a mut CompileCheck>,
}

/// Counts one file's outcome and passes its kept functions on; true when the limit is reached.
fn consume(
    file: &SourceFile,
    outcome: FileOutcome,
    settings: &RetrieveSettings,
    stats: &mut RetrieveStats,
    checks: Checks<'_>,
    sink: &mut dyn FnMut(Record) -> std::io::Result<()>,
) -> Result<bool, RetrieveError> {
    let Checks { dedup, decontam, mut compiler } = checks;
    for (field, value) in &file.ignored {
        *stats.metadata_ignored.entry(field.clone()).or_default() += 1;
        if stats.metadata_examples.len() < EXAMPLES {
            // The value as the corpus holds it, cut short (a license list can be long).
            let shown = match value.char_indices().nth(60) {
                Some((at, _)) => format!("{}…", &value[..at]),
                None => value.clone(),
            };
            stats.metadata_examples.push(format!("{}: field `{field}` is {shown}, not a string", file.origin));
        }
    }
    let functions = match outcome {
        FileOutcome::Skipped(reason) => {
            *stats.files_skipped.entry(reason.to_string()).or_default() += 1;
            stats
                .skip_examples
                .entry(reason.to_string())
                .or_insert_with(|| format!("{} ({} bytes)", file.origin, file.content.len()));
            return Ok(false);
        }
        FileOutcome::Functions(functions) => functions,
    };
    stats.files_parsed += 1;
    let reject = |stats: &mut RetrieveStats, reason: String, example: String| {
        *stats.rejected.entry(reason.clone()).or_default() += 1;
        stats.reject_examples.entry(reason).or_insert_with(|| example.trim_end().to_string());
    };
    for f in functions {
        stats.functions_seen += 1;
        let extracted = match f {
            Ok(e) => e,
            Err(r) => {
                let example = format!("{} line {}: {} {}", file.origin, r.line, r.name, r.detail);
                reject(stats, r.reason.to_string(), example);
                continue;
            }
        };
        let (name, line) = (extracted.name.clone(), extracted.lines.0);
        let record = Record::retrieved(file, extracted);
        if let Some(compiler) = compiler.as_deref_mut() {
            if let Some(why) = compiler.check(&record.function.code)? {
                let example = format!("{} line {line}: {name} (compiled alone: {why})", file.origin);
                reject(stats, Reject::SyntaxError.to_string(), example);
                continue;
            }
        }
        stats.passed_filter += 1;
        match dedup.check_parts(&record.function.code, record.function_text()) {
            Duplicate::Exact => stats.exact_duplicates += 1,
            Duplicate::Near => stats.near_duplicates += 1,
            Duplicate::New => {
                if let Some(bench) = decontam.and_then(|d| d.contaminated_by(record.function_text())) {
                    stats.contaminated += 1;
                    *stats.contaminated_by.entry(bench).or_default() += 1;
                    continue;
                }
                stats.kept += 1;
                for p in &record.function.packages {
                    *stats.per_package.entry(p.clone()).or_default() += 1;
                }
                sink(record).map_err(RetrieveError::Sink)?;
                if settings.limit.is_some_and(|l| stats.kept >= l) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Runs the stage into `out` (JSONL, one record per line) and writes the funnel next to it as
/// `<out minus .jsonl>.stats.json`, also when the run fails part-way (records written so far are
/// flushed and kept). An interrupted run ([`RetrieveSettings::cancel`]) is a result, not an
/// error: the statistics of what was read, with [`RetrieveStats::interrupted`] set.
pub fn retrieve_to_file(
    settings: &RetrieveSettings,
    out: &Path,
    reporter: &dyn Reporter,
) -> Result<RetrieveStats, RetrieveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RetrieveError::Output { path, cause: source }
    };
    settings.check_inputs()?;
    if out.is_dir() {
        return Err(RetrieveError::Output {
            path: out.to_path_buf(),
            cause: std::io::Error::other("a directory: --out names a file of records"),
        });
    }
    let compression = OutCompression::of(out)?;
    if let Some(input) = settings.input_paths().find(|input| crate::atomic_file::same_file(input, out)) {
        return Err(RetrieveError::OutputIsInput { out: out.to_path_buf(), input: input.clone() });
    }
    // Everything that can fail without reading the corpus fails here, before an existing output
    // is replaced.
    let prepared = settings.prepare().map_err(|cause| RetrieveError::Unchanged {
        out: out.to_path_buf(),
        existed: out.exists(),
        cause: Box::new(cause),
    })?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Records go to a sibling temporary, renamed over `out` once the run has something to show: a
    // run that fails before keeping a record (the wrong corpus, a truncated file) leaves an earlier
    // output and its counts as they were, and a killed run leaves no half file under the name.
    let tmp = crate::atomic_file::temporary(out);
    let file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io(&tmp))?);
    let mut writer: Box<dyn Write> = match compression {
        OutCompression::None => Box::new(file),
        OutCompression::Gzip => Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::default())),
        // Finished when dropped, below: a run that stops still leaves a whole zstd frame.
        OutCompression::Zstd => Box::new(zstd::Encoder::new(file, 3).map_err(io(out))?.auto_finish()),
    };
    let mut stats = RetrieveStats::default();
    let result = retrieve_prepared(settings, prepared, &mut stats, reporter, &mut |record| {
        serde_json::to_writer(&mut writer, &record)?;
        writer.write_all(b"\n")
    });
    let written = writer.flush().map_err(io(&tmp));
    drop(writer); // gzip's trailer and zstd's frame end are written on drop
    let keep = match &result {
        Ok(()) | Err(RetrieveError::Interrupted) => stats.unreadable().is_none(),
        Err(_) => stats.kept > 0,
    };
    if !keep || written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let cause = match (written, result) {
            (Err(e), _) => e,
            (Ok(()), Err(e)) if !matches!(e, RetrieveError::Interrupted) => e,
            _ => stats.unreadable().unwrap_or(RetrieveError::Interrupted),
        };
        return Err(RetrieveError::Unchanged { out: out.to_path_buf(), existed: out.exists(), cause: Box::new(cause) });
    }
    std::fs::rename(&tmp, out).map_err(io(out))?;
    let stats_path = stats_path(out);
    let json = serde_json::to_string_pretty(&stats).map_err(|e| io(&stats_path)(e.into()))?;
    crate::atomic_file::write(&stats_path, (json + "\n").as_bytes()).map_err(io(&stats_path))?;
    match result {
        // A whole file of what was read before the interrupt: a result, marked as partial.
        Ok(()) | Err(RetrieveError::Interrupted) => Ok(stats),
        Err(e) => Err(RetrieveError::Stopped { out: out.to_path_buf(), stats: stats_path, cause: Box::new(e) }),
    }
}

/// How `retrieve --out` is compressed, from its name.
enum OutCompression {
    None,
    Gzip,
    Zstd,
}

impl OutCompression {
    fn of(out: &Path) -> Result<Self, RetrieveError> {
        let name = out.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        // Named as what it is, so that a mistyped --out (a source file, a .json) is not replaced.
        let (stem, compression) = match name.rsplit_once('.') {
            Some((stem, "gz")) => (stem, OutCompression::Gzip),
            Some((stem, "zst")) => (stem, OutCompression::Zstd),
            _ => (name.as_str(), OutCompression::None),
        };
        match stem.rsplit_once('.') {
            Some((_, "jsonl" | "ndjson")) => Ok(compression),
            _ => Err(RetrieveError::OutputFormat(out.to_path_buf())),
        }
    }
}

/// Where the statistics of output `out` go: `OUT.jsonl` (or `.jsonl.gz`, `.jsonl.zst`) →
/// `OUT.stats.json`.
pub fn stats_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(&name);
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    out.with_file_name(format!("{stem}.stats.json"))
}

/// Checks records against `decontam` in order until `keep` clean ones are found (all of them when
/// `None`): returns the clean ones and those that overlap a benchmark, marked as rejected by the
/// retrieve stage (reason `contaminated`, the benchmark as the detail), so that a run can count
/// them. For records that come from a file or an earlier stage, so that every record `synth`
/// takes is checked the same way; the first error of `records` stops the check.
pub fn decontaminate<E>(
    records: impl IntoIterator<Item = Result<Record, E>>,
    decontam: Option<&Decontaminator>,
    keep: Option<usize>,
) -> Result<(Vec<Record>, Vec<Record>), E> {
    let (mut clean, mut dirty) = (Vec::new(), Vec::new());
    for r in records {
        if keep.is_some_and(|k| clean.len() >= k) {
            break;
        }
        let mut r = r?;
        match decontam.and_then(|d| d.contaminated_by(r.function_text())) {
            Some(bench) => {
                r.reject(Stage::Retrieve, "contaminated", bench);
                dirty.push(r);
            }
            None => clean.push(r),
        }
    }
    Ok((clean, dirty))
}
