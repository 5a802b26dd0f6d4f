//! `unitcoder retrieve`: stage 1 of the synthesis pipeline on its own. Reads corpora, keeps the
//! functions that can stand alone with allowed imports, dedups and decontaminates them, writes the
//! records as JSONL and the funnel as `OUT.stats.json`, and prints the funnel.

use super::parse::DecontamArg;
use super::progress::Bars;
use super::Outcome;
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use unitcoder::pipeline::retrieve::{self, Limits, OnMalformed, Packages, RetrieveSettings, Shard, ShardBy};

/// The rules a function must pass, for `retrieve --help` (the README's "Retrieval rules" says the same).
pub const LONG_ABOUT: &str = "\
Retrieve standalone functions from a code corpus (stage 1 of synth) into a JSONL file.

A top-level function of a file is kept when all of these hold (the reason named after each
rule is its count in OUT.stats.json when it does not):
  - the file parses as Python 3 (syntax_error, python2) and is at most 1 MB
    (file_too_large);
  - it is a plain `def` (async), takes at least one argument (no_arguments) and returns a
    value (no_return_value), with no `yield` (generator), no nested def/class
    (nested_definition), no import (inner_import) and no global/nonlocal (global_statement)
    inside;
  - it has --min-lines to --max-lines lines (too_short, too_long) and no line over 200
    characters (long_line);
  - every name it uses and does not define is a builtin or imported at the top of its file:
    not a module-level variable, function or class of the file (uses_file_local), not a
    relative import (relative_import), not possibly from a `from m import *` (star_import),
    not undefined (undefined_name);
  - every module it uses is in the allow-list, --packages (disallowed_module), and it uses
    at least one (no_module): UnitCoder, like BigCodeBench, is about code that calls
    libraries, so functions using only builtins are dropped unless --allow-builtin-only is
    given. A pure-Python corpus without imports therefore yields nothing by default.

Then exact duplicates (exact_duplicate), near duplicates (--near-dup, near_duplicate) and
functions sharing word n-grams with a benchmark (contaminated: by default HumanEval(+),
MBPP(+) and BigCodeBench, built in; see --decontaminate) are removed. Each record carries
only the import lines its function needs.";

/// Arguments of `unitcoder retrieve`.
#[derive(Args, Debug)]
pub struct RetrieveArgs {
    /// Corpus to read: .jsonl, .jsonl.gz, .jsonl.zst (a `content` field per line), .parquet (a
    /// `content` column), a .py file, a directory of .py files, or a Hugging Face dataset of such
    /// files: `hf:ORG/NAME[@REVISION][:PATTERN]` (PATTERN a path or glob such as
    /// `data/python/*.parquet`; without it every Parquet and JSON Lines file; fetched into the HF
    /// cache, $HF_HOME/hub; HF_HUB_OFFLINE=1 uses only the cache; HF_ENDPOINT for a mirror).
    /// Repeatable. Default: the local Python's standard-library sources.
    #[arg(long, value_name = "PATH")]
    pub corpus: Vec<PathBuf>,
    /// Allowed top-level modules, one per line (`#` comments). Default: BigCodeBench's 139 libraries.
    #[arg(long, value_name = "FILE")]
    pub packages: Option<PathBuf>,
    #[arg(long, value_name = "none|PATH", value_parser = super::parse::decontam_arg,
          help = super::parse::DECONTAMINATE_HELP)]
    pub decontaminate: Vec<DecontamArg>,
    /// Word n-gram length for decontamination with your own benchmark files (the built-in
    /// fingerprints are 13-grams).
    #[arg(long, default_value_t = 13, value_name = "N", value_parser = super::parse::positive_usize)]
    pub ngram: usize,
    /// Jaccard threshold for near-duplicate removal (MinHash over 5-token shingles); 0 turns it off.
    #[arg(long, default_value_t = 0.8, value_name = "J", value_parser = super::parse::unit_interval)]
    pub near_dup: f64,
    /// Minimum function length in lines.
    #[arg(long, default_value_t = Limits::default().min_lines, value_name = "N",
          value_parser = super::parse::positive_usize)]
    pub min_lines: usize,
    /// Maximum function length in lines.
    #[arg(long, default_value_t = Limits::default().max_lines, value_name = "N",
          value_parser = super::parse::positive_usize)]
    pub max_lines: usize,
    /// Stop after N kept functions.
    #[arg(long, value_name = "N", value_parser = super::parse::positive_u64)]
    pub limit: Option<u64>,
    /// Process only part i of N (0-based), split by a stable hash of each source file's content
    /// (or by whole corpus files: --shard-by file).
    #[arg(long, value_name = "i/N")]
    pub shard: Option<Shard>,
    /// How --shard splits the corpus: `content` (every shard reads the whole corpus and parses its
    /// part) or `file` (whole JSONL/Parquet files, round robin in corpus order: a shard reads, and
    /// from the Hub downloads, only its own files).
    #[arg(long, value_enum, default_value_t = SplitBy::Content, requires = "shard")]
    pub shard_by: SplitBy,
    /// Keep functions that use no module at all, only builtins (dropped as `no_module` by default).
    #[arg(long)]
    pub allow_builtin_only: bool,
    /// Stop at the first malformed corpus entry instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
    /// The Python whose standard library is the default corpus, and whose compiler confirms that
    /// every function kept is Python 3 (tree-sitter still parses much of Python 2).
    #[arg(long, default_value = "python3", value_name = "PYTHON")]
    pub python: String,
    /// Output file of records: JSON Lines, plain (.jsonl), gzip (.jsonl.gz) or zstd (.jsonl.zst),
    /// by its name. The funnel goes beside it as NAME.stats.json (x.jsonl.gz → x.stats.json). Written
    /// as OUT.tmp and renamed at the end; a run that reads no entry, or fails before it keeps a
    /// record, leaves an earlier OUT and its counts as they were.
    #[arg(long, value_name = "OUT.jsonl", value_parser = super::parse::out_file)]
    pub out: PathBuf,
}

impl RetrieveArgs {
    /// The checks that relate two flags; a failure is a usage error (exit 2).
    pub fn check_usage(&self) {
        super::parse::decontamination("retrieve", &self.decontaminate, self.ngram);
        if self.min_lines > self.max_lines {
            super::parse::usage_error(
                &["retrieve"],
                format!("--min-lines {} is above --max-lines {}", self.min_lines, self.max_lines),
            );
        }
    }
}

/// Resolves the arguments into settings (the default corpus included).
pub fn settings(args: &RetrieveArgs) -> anyhow::Result<RetrieveSettings> {
    out_outside_data_folders(&args.out, &args.corpus)?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let mut s =
        corpus_settings(&args.corpus, &args.python, args.packages.as_deref(), args.strict, shard, args.shard_by)?;
    s.decontaminate = super::parse::decontamination("retrieve", &args.decontaminate, args.ngram);
    s.near_threshold = (args.near_dup > 0.0).then_some(args.near_dup);
    s.limits = Limits {
        min_lines: args.min_lines,
        max_lines: args.max_lines,
        allow_builtin_only: args.allow_builtin_only,
        ..Limits::default()
    };
    s.limit = args.limit;
    // A mistyped path fails here, before anything is written.
    s.check_inputs()?;
    Ok(s)
}

/// Refuses an `--out` inside a corpus directory that is read as data files: the next run would
/// read the output back as corpus.
pub fn out_outside_data_folders(out: &Path, corpus: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(dir) = unitcoder::corpus::data_folder_holding(out, corpus) {
        bail!(
            "--out {} is inside the corpus directory {}, which is read as its data files (Parquet, JSON Lines): \
             the output would be read back as corpus; write it elsewhere",
            out.display(),
            dir.display()
        );
    }
    Ok(())
}

/// How `--shard` splits a corpus.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBy {
    /// By a hash of each source file's content.
    Content,
    /// By whole corpus files (JSONL, Parquet, a Hub dataset's files), round robin.
    File,
}

/// The settings `retrieve` and `synth` share: the corpus (the standard library of `python` when
/// none is given; `hf:` datasets resolved to their files, only this shard's when whole files are
/// split), the shard, the allow-list and what a malformed entry does (`--strict` stops at it).
pub fn corpus_settings(
    corpus: &[PathBuf],
    python: &str,
    packages: Option<&Path>,
    strict: bool,
    shard: Shard,
    split: SplitBy,
) -> anyhow::Result<RetrieveSettings> {
    let by_file = split == SplitBy::File && shard.count > 1;
    let mut skipped = 0;
    let given = if corpus.is_empty() { vec![stdlib_dir(python)?] } else { corpus.to_vec() };
    let corpus = if by_file || unitcoder::corpus::hf::any_spec(&given) {
        // Datasets and models share the HF cache and its environment variables.
        let hub = super::models::model_settings(None, None)?.hub();
        let keep = |k: usize| shard.contains_file(k);
        let keep: Option<&dyn Fn(usize) -> bool> = if by_file { Some(&keep) } else { None };
        let (files, others) = unitcoder::corpus::hf::resolve_specs(&given, &hub, &Bars::new(), keep)?;
        skipped = others;
        if by_file {
            eprintln!(
                "corpus: shard {shard} reads {} file{}; {others} go to other shards",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
        } else {
            eprintln!(
                "corpus: {} file{} ({} given)",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                given.len()
            );
            if shard.count > 1 {
                eprintln!(
                    "note: --shard {shard} splits by content, so every shard reads every file; --shard-by file gives \
                     each shard its own files (and downloads only those)"
                );
            }
        }
        files
    } else {
        given
    };
    if by_file && corpus.is_empty() {
        bail!("--shard {shard} --shard-by file: this shard has no corpus file (there are {skipped}); use fewer shards");
    }
    let mut s = RetrieveSettings::new(corpus);
    s.shard = shard;
    s.shard_by = if by_file { ShardBy::File { skipped } } else { ShardBy::Content };
    s.python = Some(PathBuf::from(python));
    if let Some(path) = packages {
        s.packages = Packages::load(path).with_context(|| format!("--packages {}", path.display()))?;
    }
    s.on_malformed = if strict { OnMalformed::Fail } else { OnMalformed::Skip };
    Ok(s)
}

/// The standard-library source directory of `python`.
pub fn stdlib_dir(python: &str) -> anyhow::Result<PathBuf> {
    let out = std::process::Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
        .output()
        .with_context(|| {
            format!("running `{python}` to find the standard library (pass --corpus to use another corpus)")
        })?;
    if !out.status.success() {
        bail!("`{python}` could not report its standard library: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !dir.join("os.py").is_file() {
        bail!("{}: not a Python standard-library source directory (no os.py)", dir.display());
    }
    Ok(dir)
}

/// Runs `unitcoder retrieve`.
pub fn run(args: RetrieveArgs) -> anyhow::Result<Outcome> {
    let mut settings = settings(&args)?;
    // Caught from here on: the first SIGINT/SIGTERM stops reading after the chunk of files in
    // progress, so the output is a whole file (a gzip or zstd stream closed) with its counts.
    let interrupt = super::interrupt::Interrupt::install()?;
    settings.cancel = interrupt.flag();
    let bars = Bars::new();
    // An error after the output was opened says where the records so far are.
    let stats = retrieve::retrieve_to_file(&settings, &args.out, &bars)?;
    let stats_path = retrieve::stats_path(&args.out);
    if let (true, Some(signal)) = (stats.interrupted, interrupt.signal()) {
        out!("{}", stats.funnel())?;
        outln!(
            "retrieve interrupted by {}: the {} records kept from the {} files read so far are in {} (a whole \
             file), and {} counts them (\"interrupted\": true); rerun to retrieve the whole corpus",
            super::interrupt::name(signal),
            stats.kept,
            stats.files_read,
            args.out.display(),
            stats_path.display()
        )?;
        return Ok(Outcome::Interrupted(signal));
    }
    outln!("corpus: {}", settings.corpus.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))?;
    out!("{}", stats.funnel())?;
    for example in &stats.malformed_examples {
        outln!("malformed: {example}")?;
    }
    for (reason, example) in &stats.skip_examples {
        outln!("skipped ({reason}), the first: {example}")?;
    }
    for example in &stats.metadata_examples {
        eprintln!("warning: metadata ignored: {example}");
    }
    outln!("wrote {} records to {} (funnel: {})", stats.kept, args.out.display(), stats_path.display())?;
    nothing_found(&stats)?;
    Ok(Outcome::Success)
}

/// When a retrieval kept nothing, why (on stderr): a corpus with no entry is a warning, one whose
/// every entry was malformed an error (the wrong file, or the wrong format), and functions dropped
/// only for using no module get a hint.
pub fn nothing_found(stats: &retrieve::RetrieveStats) -> anyhow::Result<()> {
    if let Some(e) = stats.unreadable() {
        return Err(e.into());
    }
    if stats.files_read == 0 {
        eprintln!(
            "warning: the corpus holds no entries (an empty file, or a directory without .py, Parquet or JSON \
             Lines files)"
        );
    }
    let builtin_only = stats.rejected.get("no_module").copied().unwrap_or(0);
    if stats.kept == 0 && builtin_only > 0 {
        eprintln!(
            "hint: {builtin_only} functions used only builtins and no module (no_module); \
             --allow-builtin-only keeps them (see `unitcoder retrieve --help`)"
        );
    }
    Ok(())
}
