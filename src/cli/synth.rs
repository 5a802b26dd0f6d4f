//! `unitcoder synth`: the whole pipeline. Takes functions from `retrieve`'s output file as is
//! (`--records`) or retrieves them (stage 1, in memory, deterministic so a rerun sees the same
//! list), drops those that overlap a benchmark (the built-in ones unless `--decontaminate none`),
//! then runs tests, run-and-fix and polish with the in-process model (or a server's) and the
//! sandbox, writing `OUT/dataset/`, `OUT/rejected.jsonl`, `OUT/cache/` and `OUT/stats.json`.
//! Rerunning the same command after a crash resumes it. The first SIGINT/SIGTERM stops the run in
//! order ([`super::interrupt`]): statistics saved, exit 130/143, and a rerun resumes.

use super::parse::DecontamArg;
use super::progress::Bars;
use super::retrieve::{corpus_settings, SplitBy};
use super::Outcome;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use unitcoder::engine::LoadedModel;
use unitcoder::pipeline::emit::{self, Format};
use unitcoder::pipeline::prompts::Prompts;
use unitcoder::pipeline::quality::QualitySettings;
use unitcoder::pipeline::record::{Record, RecordReader, Stage};
use unitcoder::pipeline::retrieve::{
    self, CompileCheck, Decontamination, Reject, RetrieveSettings, RetrieveStats, Shard,
};
use unitcoder::pipeline::run_dir::RunDir;
use unitcoder::pipeline::synth::{synthesize, SynthError, SynthSettings};
use unitcoder::progress::Reporter;
use unitcoder::sandbox::SandboxConfig;

/// Arguments of `unitcoder synth`.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Corpus to read (as for `retrieve`: files, directories of .py files, or
    /// `hf:ORG/NAME[@REVISION][:PATTERN]` datasets); repeatable. Default: the local Python's
    /// standard library.
    #[arg(long, value_name = "PATH")]
    pub corpus: Vec<PathBuf>,
    /// Records written by `unitcoder retrieve --out FILE`, taken as they are instead of retrieving
    /// from a corpus (the retrieval flags --corpus, --packages and --allow-builtin-only do not apply).
    /// A function that does not compile as Python 3 is rejected (`retrieve/syntax_error`) before any
    /// model call. An id seen again with the same code is skipped with a warning naming both
    /// lines; with other code (an edited record: ids are hashes of the code) it is an error.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["corpus", "packages", "allow_builtin_only"])]
    pub records: Option<PathBuf>,
    #[arg(long, value_name = "none|PATH", value_parser = super::parse::decontam_arg,
          help = super::parse::DECONTAMINATE_HELP)]
    pub decontaminate: Vec<DecontamArg>,
    /// Model: card name, .gguf path, HF checkpoint directory, hf:ORG/REPO[:FILE], or a server:
    /// openai:BASE_URL#MODEL_NAME (prompted through its chat template unless --no-chat).
    #[arg(long, default_value = unitcoder::engine::cards::DEFAULT_CARD)]
    pub model: String,
    /// Prompt a server model as a base model: plain completions, as for in-process models without
    /// a chat template.
    #[arg(long)]
    pub no_chat: bool,
    #[command(flatten)]
    pub weights: super::generate::WeightArgs,
    /// Allowed top-level modules, one per line. Default: BigCodeBench's 139 libraries.
    #[arg(long, value_name = "FILE")]
    pub packages: Option<PathBuf>,
    /// Keep functions that use no module, only builtins (as `retrieve --allow-builtin-only`).
    #[arg(long)]
    pub allow_builtin_only: bool,
    /// Stop at the first malformed corpus entry instead of skipping and counting it (as `retrieve
    /// --strict`; a malformed line of a `--records` file always stops synth).
    #[arg(long, conflicts_with = "records")]
    pub strict: bool,
    /// Fix rounds after the original function fails its tests.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Fix samples per round.
    #[arg(long, default_value_t = 3, value_parser = super::parse::positive_u32)]
    pub samples: u32,
    /// Process at most N retrieved functions (contaminated ones are not counted).
    #[arg(long, value_name = "N", value_parser = super::parse::positive_u64)]
    pub limit: Option<u64>,
    /// How --limit chooses its N functions: `testable` ranks up to 20·N retrieved functions by how
    /// testable they look (public, plain-data parameters, pure modules, short) and keeps the best N;
    /// `first` keeps the first N in corpus order.
    #[arg(long, value_enum, default_value = "testable", requires = "limit")]
    pub pick: Pick,
    /// Tests suites per function: a greedy one, then the rest sampled if it is not kept; the first
    /// one the original passes without being vacuous is kept (1: the greedy suite only).
    #[arg(long, default_value_t = 3, value_parser = super::parse::positive_u32)]
    pub tests_samples: u32,
    /// When the original function passes at least N tests of a suite (after splitting them to one
    /// assertion each) and no fewer than it fails, the failing ones are taken as wrong expectations:
    /// the retrieved code is trusted over model-written expected values instead of being "fixed" to
    /// fit them. A failing check of the function's value against a literal (held in the check or in
    /// a variable used only there), of its truth or of its being `None`, with no message, keeps its
    /// input and takes the value the function gives, where that value is the same under other hash
    /// seeds; the others are cut. Nor do fix rounds start from a
    /// suite of fewer than N tests, or from one whose tests only expect exceptions (rejected as
    /// `thin_suite`). 0 never cuts or rewrites and sets no floor.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_tests: usize,
    /// Temperature of the tests samples after the first, greedy, one.
    #[arg(long, default_value_t = 0.7, value_parser = super::parse::non_negative_f32)]
    pub tests_temperature: f32,
    /// Seed of the fix sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Process only part i of N (0-based), split by a stable hash of each source file (or by whole
    /// corpus files: --shard-by file).
    #[arg(long, value_name = "i/N")]
    pub shard: Option<Shard>,
    /// How --shard splits the corpus: `content` (every shard reads the whole corpus and takes its
    /// part) or `file` (whole JSONL/Parquet files, round robin in corpus order: a shard reads, and
    /// from the Hub downloads, only its own files; not with --records).
    #[arg(long, value_enum, default_value_t = SplitBy::Content, requires = "shard", conflicts_with = "records")]
    pub shard_by: SplitBy,
    /// Most mutants of each verified function run with its tests to score them (operator, comparison
    /// and constant changes, negated conditions, dropped statements, ...; a mutant the tests fail is
    /// killed). 0 turns the quality step (mutation score, coverage, their thresholds) off.
    #[arg(long, value_name = "N", default_value_t = unitcoder::pipeline::quality::DEFAULT_MUTANTS)]
    pub mutants: usize,
    /// Reject records whose tests kill fewer than this share of the mutants (0 to 1). A suite that
    /// kills none is always rejected (`quality/no_mutant_killed`).
    #[arg(long, value_name = "SCORE", default_value_t = unitcoder::pipeline::quality::DEFAULT_MIN_MUTATION_SCORE,
          value_parser = super::parse::unit_interval)]
    pub min_mutation_score: f64,
    /// Reject records whose tests execute less than this share of the function's statements (0 to 1),
    /// checked after the mutation score.
    #[arg(long, value_name = "SHARE", default_value_t = unitcoder::pipeline::quality::DEFAULT_MIN_COVERAGE,
          value_parser = super::parse::unit_interval)]
    pub min_coverage: f64,
    /// Directory of prompt templates (synth_tests.j2, synth_fix.j2, synth_polish.j2) overriding the
    /// embedded ones. Their variables: code, name and packages (tests); code, tests, feedback and
    /// name (fix); code and name (polish). Each is rendered once with sample values before the model
    /// loads: an undefined variable or filter is an error naming the file. (`--prompts` is an old
    /// name kept as a hidden alias: in `generate` it is a JSONL file.)
    #[arg(long = "prompt-dir", alias = "prompts", value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Programs run in the sandbox at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = super::parse::workers)]
    pub jobs: Option<usize>,
    /// Most new tokens per model answer.
    #[arg(long, default_value_t = 512, value_parser = super::parse::positive_usize)]
    pub max_tokens: usize,
    /// Temperature of fix samples.
    #[arg(long, default_value_t = 0.7, value_parser = super::parse::non_negative_f32)]
    pub temperature: f32,
    /// Repetition penalty on every model answer (1.0 = off).
    #[arg(long, default_value_t = 1.1, value_parser = super::parse::penalty)]
    pub repetition_penalty: f32,
    /// Model requests per generate call (batched across functions; at least --concurrency for a
    /// server model).
    #[arg(long, default_value_t = 8, value_parser = super::parse::positive_usize)]
    pub batch: usize,
    #[command(flatten)]
    pub runtime: super::generate::RuntimeArgs,
    /// The Python that runs the sandbox (and whose standard library is the default corpus).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// File formats of the derived dataset files (comma-separated): jsonl, jsonl.gz, parquet. They
    /// are rebuilt from the record journal at the end of every run and resume.
    #[arg(long, value_delimiter = ',', default_value = "jsonl")]
    pub format: Vec<Format>,
    /// The run directory.
    #[arg(long, value_name = "DIR", value_parser = super::parse::out_dir)]
    pub out: PathBuf,
    #[command(flatten)]
    pub server: super::server::ServerArgs,
}

impl SynthArgs {
    /// The checks that relate two flags; a failure is a usage error (exit 2).
    pub fn check_usage(&self) {
        super::parse::decontamination("synth", &self.decontaminate, 13);
    }
}

/// How `--limit` picks functions.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The most testable-looking of up to 20·N retrieved functions.
    Testable,
    /// The first N in corpus order.
    First,
}

/// How many retrieved functions per requested one `--pick testable` ranks.
const PICK_WINDOW: u64 = 20;

fn retrieve_settings(args: &SynthArgs) -> anyhow::Result<RetrieveSettings> {
    let shard = args.shard.unwrap_or(Shard::ALL);
    let mut s =
        corpus_settings(&args.corpus, &args.python, args.packages.as_deref(), args.strict, shard, args.shard_by)?;
    // Both picks take from a window of clean records, so contaminated ones do not use up --limit.
    s.limit = args.limit.map(|n| n.saturating_mul(PICK_WINDOW));
    s.limits.allow_builtin_only = args.allow_builtin_only;
    // Decontamination is synth's own step, the same for retrieved records and a records file.
    s.decontaminate = Decontamination::none();
    Ok(s)
}

/// The functions to synthesize from, as records, with the retrieve stage's counts: read from
/// `--records` (its `.stats.json` beside it, when there), or retrieved in memory.
fn take_records(
    args: &SynthArgs,
    decontam: Option<&retrieve::Decontaminator>,
    bars: &Bars,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<(Vec<Record>, Vec<Record>, serde_json::Value)> {
    let window = args.limit.map(|n| match args.pick {
        Pick::Testable => n.saturating_mul(PICK_WINDOW) as usize,
        Pick::First => n as usize,
    });
    let shard = args.shard.unwrap_or(Shard::ALL);
    let mut broken = Vec::new();
    // Functions whose libraries the sandbox's interpreter lacks are set aside before decontamination
    // and the window, so that they do not use up --limit.
    let importable = std::cell::RefCell::new(Importable::new(&args.python));
    let blocked = std::cell::RefCell::new(Vec::new());
    // How many of the set-aside functions each missing library holds back.
    let by_library = std::cell::RefCell::new(std::collections::BTreeMap::<String, u64>::new());
    let mut keep = |mut r: Record| -> Option<Record> {
        let lacks = importable.borrow_mut().lacks(&r.function.packages);
        if lacks.is_empty() {
            return Some(r);
        }
        for l in &lacks {
            *by_library.borrow_mut().entry(l.clone()).or_insert(0) += 1;
        }
        let detail = format!("{} (not importable by {})", lacks.join(", "), args.python);
        r.reject(Stage::Retrieve, Reject::MissingLibrary.as_str(), detail);
        blocked.borrow_mut().push(r);
        None
    };
    let (clean, dirty, mut counts) = match &args.records {
        Some(path) => {
            let mut compiler = CompileCheck::start(Path::new(&args.python))?;
            let mut seen = RepeatedIds::new(path);
            let mut reader = RecordReader::open(path)?;
            let lines = std::iter::from_fn(|| reader.next().map(|r| (reader.line(), r)));
            let mut read = 0usize;
            let mine = lines.filter_map(|(line, r)| -> Option<anyhow::Result<Record>> {
                let mut r = match r {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e.into())),
                };
                read += 1;
                match seen.check(&r, line) {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
                if !shard.contains(&r.source.file_id) {
                    return None;
                }
                // Checked before decontamination, as `retrieve` does: code that cannot run is
                // dropped first, and does not use up --limit.
                match compiler.check(&r.function.code) {
                    Err(e) => Some(Err(e.into())),
                    Ok(None) => keep(r).map(Ok),
                    Ok(Some(why)) => {
                        r.reject(Stage::Retrieve, Reject::SyntaxError.as_str(), format!("does not compile: {why}"));
                        broken.push(r);
                        None
                    }
                }
            });
            let (clean, dirty) = retrieve::decontaminate(mine, decontam, window)?;
            for w in seen.warnings() {
                bars.note(&w);
            }
            if read == 0 {
                bars.note(&format!("warning: {} holds no records: there is nothing to synthesize", path.display()));
            }
            let stats = retrieve::stats_path(path);
            let counts = std::fs::read_to_string(&stats)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            (clean, dirty, counts)
        }
        None => {
            let rs = RetrieveSettings { cancel, ..retrieve_settings(args)? };
            let mut rstats = RetrieveStats::default();
            let mut records = Vec::new();
            retrieve::retrieve(&rs, &mut rstats, bars, &mut |r| {
                records.push(r);
                Ok(())
            })?;
            super::retrieve::nothing_found(&rstats)?;
            // Every library asked about in one interpreter start, not one start per new library.
            let mut names: Vec<String> = records.iter().flat_map(|r| r.function.packages.iter().cloned()).collect();
            names.sort();
            names.dedup();
            importable.borrow_mut().lacks(&names);
            let ok = records.into_iter().filter_map(&mut keep).map(Ok::<Record, std::convert::Infallible>);
            let (clean, dirty) = match retrieve::decontaminate(ok, decontam, window) {
                Ok(split) => split,
                Err(never) => match never {},
            };
            (clean, dirty, serde_json::to_value(&rstats)?)
        }
    };
    if let serde_json::Value::Object(m) = &mut counts {
        if let Some(path) = &args.records {
            m.insert("records_file".into(), serde_json::json!(path));
        }
        // The part of the input this run takes (a records file's own counts may be another's).
        m.insert("synth_shard".into(), serde_json::json!(shard_label(args)));
        if args.records.is_some() {
            m.insert("synth_syntax_errors".into(), serde_json::json!(broken.len()));
        }
        let mut by = std::collections::BTreeMap::<String, u64>::new();
        for r in &dirty {
            *by.entry(r.rejected.as_ref().map_or_else(String::new, |j| j.detail.clone())).or_default() += 1;
        }
        m.insert(
            "synth_decontamination".into(),
            serde_json::json!({
                "against": decontam.map(|d| d.sources()).unwrap_or_default(),
                "checked": clean.len() + dirty.len(),
                "contaminated": dirty.len(),
                "contaminated_by": by,
            }),
        );
    }
    let (blocked, by_library) = (blocked.into_inner(), by_library.into_inner());
    uninstalled_libraries(&args.python, args.records.is_some(), clean.len(), blocked.len(), &by_library)?;
    if let (serde_json::Value::Object(m), false) = (&mut counts, blocked.is_empty()) {
        m.insert("synth_missing_libraries".into(), serde_json::json!(by_library));
    }
    // Rejected records are saved (with their reasons) before the others.
    Ok((clean, broken.into_iter().chain(blocked).chain(dirty).collect(), counts))
}

/// The ids of a `--records` file seen so far, to catch one given twice.
struct RepeatedIds<'a> {
    path: &'a Path,
    /// Each id's first line and a hash of its code.
    first: std::collections::HashMap<String, (usize, String)>,
    /// Lines skipped as repeats: (id, first line, this line).
    repeats: Vec<(String, usize, usize)>,
}

impl<'a> RepeatedIds<'a> {
    fn new(path: &'a Path) -> Self {
        RepeatedIds { path, first: Default::default(), repeats: Vec::new() }
    }

    /// Whether the record of `line` is new (false: a repeat of one with the same code, skipped);
    /// an error when its id was seen with other code, since a run keeps one record per id.
    fn check(&mut self, r: &Record, line: usize) -> anyhow::Result<bool> {
        let code = unitcoder::pipeline::journal::key(&[&r.function.code]);
        match self.first.entry(r.id.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((line, code));
                Ok(true)
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let (first, ref theirs) = *o.get();
                if *theirs != code {
                    anyhow::bail!(
                        "{} lines {first} and {line}: two records with id {} but different code (the id is a hash \
                         of the code, so one was edited); a run keeps one record per id: fix or remove one of them",
                        self.path.display(),
                        r.id
                    );
                }
                self.repeats.push((r.id.clone(), first, line));
                Ok(false)
            }
        }
    }

    /// One line per repeated id (at most 10, then a count).
    fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .repeats
            .iter()
            .take(10)
            .map(|(id, first, line)| {
                format!(
                    "warning: {} line {line}: id {id} repeats line {first} (same code): skipped",
                    self.path.display()
                )
            })
            .collect();
        if self.repeats.len() > 10 {
            out.push(format!(
                "warning: {}: {} more repeated ids skipped",
                self.path.display(),
                self.repeats.len() - 10
            ));
        }
        out
    }
}

/// Runs `unitcoder synth`.
/// The part of the input this run takes, as its counts record it (`i/N`, or `i/N by file`), so a
/// run is continued only as the same part.
fn shard_label(args: &SynthArgs) -> String {
    args.shard.unwrap_or(Shard::ALL).label(args.shard_by == SplitBy::File)
}

/// What a run reads, as its counts record it (`synth_input`) and a continued run must match: the
/// records file, or the corpora (the interpreter's standard library when none is given), each by its
/// absolute path (an `hf:` corpus by its name), so that the same input typed from another directory
/// is the same.
fn input_identity(args: &SynthArgs) -> Vec<String> {
    let path = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    if let Some(r) = &args.records {
        return vec![format!("records {}", path(r))];
    }
    if args.corpus.is_empty() {
        return vec![format!("the standard library of {}", args.python)];
    }
    args.corpus
        .iter()
        .map(|c| match c.to_string_lossy().starts_with("hf:") {
            true => c.display().to_string(),
            false => path(c),
        })
        .collect()
}

/// Which of a record's libraries the sandbox's interpreter cannot import, asked once per library.
struct Importable<'a> {
    python: &'a str,
    known: std::collections::HashMap<String, bool>,
    /// The interpreter could not be asked: everything counts as importable (said once).
    unknown: bool,
}

impl<'a> Importable<'a> {
    fn new(python: &'a str) -> Self {
        Importable { python, known: Default::default(), unknown: false }
    }

    fn lacks(&mut self, packages: &[String]) -> Vec<String> {
        let new: Vec<String> = packages.iter().filter(|p| !self.known.contains_key(*p)).cloned().collect();
        if !new.is_empty() && !self.unknown {
            match unitcoder::python::missing_modules(Path::new(self.python), &new) {
                Ok(missing) => self.known.extend(new.into_iter().map(|n| (n.clone(), !missing.contains(&n)))),
                Err(e) => {
                    eprintln!("warning: could not check which libraries are installed: {e}");
                    self.unknown = true;
                }
            }
        }
        packages.iter().filter(|p| self.known.get(*p) == Some(&false)).cloned().collect()
    }
}

/// The `blocked` functions set aside because `python` cannot import a library they use (rejected
/// as `retrieve/missing_library` before any model call: no test of theirs could pass, and a fix
/// could only rewrite them without the library). Where no function is left to synthesize, an error
/// before the model loads; otherwise a warning naming the libraries and how many functions each
/// holds back (`by_library`). They are set aside before `--limit` takes its functions, so it counts
/// runnable ones; `clean` functions are left to synthesize.
fn uninstalled_libraries(
    python: &str,
    from_records: bool,
    clean: usize,
    blocked: usize,
    by_library: &std::collections::BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    if blocked == 0 {
        return Ok(());
    }
    let list: Vec<String> =
        by_library.iter().map(|(m, n)| format!("{m} ({n} function{})", if *n == 1 { "" } else { "s" })).collect();
    let what = format!(
        "{blocked} of the {} functions read import libraries that {python} cannot import: {}",
        blocked + clean,
        list.join(", ")
    );
    let narrow = match from_records {
        true => "or leave them out of the records file (`unitcoder retrieve --packages` writes one without them)",
        false => "or narrow the allow-list with --packages",
    };
    let fix = format!("install them into that interpreter, pass --python with one that has them, {narrow}");
    if clean == 0 {
        anyhow::bail!("{what}; none of them could pass its tests: {fix}");
    }
    eprintln!(
        "warning: {what}; those are rejected as `missing_library` before any model call, and --limit takes the \
         others (a resumed run keeps them so: give another --out once they are installed): {fix}"
    );
    Ok(())
}

pub fn run(args: SynthArgs) -> anyhow::Result<Outcome> {
    let server = super::server::is_server(&args.model);
    args.weights.refuse_for_server(&["synth"], &args.model);
    if args.no_chat && !server {
        super::parse::usage_error(
            &["synth"],
            "--no-chat applies to server models (--model openai:BASE_URL#MODEL_NAME)",
        );
    }
    // Before the model loads (minutes for a large one; `--out` naming a file is refused by its
    // parser): a run of one shard is not continued as another (its records would mix under one
    // shard's counts).
    super::retrieve::out_outside_data_folders(&args.out, &args.corpus)?;
    super::not_someone_elses_directory(&args.out)?;
    let shard = shard_label(&args);
    if let Some(Some(then)) = emit::read_stats(&RunDir::new(&args.out))?
        .map(|s| s.retrieve.as_ref().and_then(|r| r.get("synth_shard")).and_then(|v| v.as_str()).map(str::to_string))
    {
        if then != shard {
            anyhow::bail!(
                "--out {} holds a run of shard {then}; this one is shard {shard}: give each shard its own --out, then `unitcoder merge` them",
                args.out.display()
            );
        }
    }
    // Nor is a run continued on other input: its records and counts would mix two corpora under
    // the second's name.
    let input = input_identity(&args);
    if let Some(Some(then)) = emit::read_stats(&RunDir::new(&args.out))?
        .map(|s| s.retrieve.as_ref().and_then(|r| r.get("synth_input")).cloned())
    {
        if then != serde_json::json!(input) {
            let then: Vec<String> = serde_json::from_value(then).unwrap_or_default();
            anyhow::bail!(
                "--out {} holds a run of {}; this command reads {}: give another --out (and `unitcoder merge` the \
                 runs), or the same input to resume",
                args.out.display(),
                then.join(", "),
                input.join(", ")
            );
        }
    }
    // Caught from here on: the first SIGINT/SIGTERM stops the run in order (see `interrupt`).
    let interrupt = super::interrupt::Interrupt::install()?;
    let settings = SynthSettings {
        rounds: args.rounds,
        samples: args.samples,
        tests_samples: args.tests_samples,
        tests_temperature: args.tests_temperature,
        min_tests: args.min_tests,
        seed: args.seed,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        repetition_penalty: args.repetition_penalty,
        // A server answers as many requests at once as it is sent: one call must hold enough.
        batch: if server { args.batch.max(args.server.concurrency) } else { args.batch },
        prompts: Prompts::load(args.prompts.as_deref())?,
        quality: QualitySettings {
            mutants: args.mutants,
            min_mutation_score: args.min_mutation_score,
            min_coverage: args.min_coverage,
        },
        cancel: interrupt.flag(),
        environment: String::new(),
        ..SynthSettings::default()
    };
    // The interpreter and its libraries, in every cached verdict's key and in stats.json.
    let environment = match unitcoder::python::environment(Path::new(&args.python)) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("warning: {e}; cached verdicts are not told apart by interpreter");
            None
        }
    };
    let settings =
        SynthSettings { environment: environment.as_ref().map_or_else(String::new, |e| e.to_string()), ..settings };
    let bars = Bars::new();
    let decontam = super::parse::decontamination("synth", &args.decontaminate, 13).load().context("--decontaminate")?;
    let (mut records, contaminated, mut counts) = match take_records(&args, decontam.as_ref(), &bars, interrupt.flag())
    {
        Ok(taken) => taken,
        // Retrieval stops between chunks of files on an interrupt (`RetrieveError::Interrupted`).
        Err(e) => match interrupt.signal() {
            Some(signal) => return Ok(stopped_before_start(&args.out, signal)),
            None => return Err(e),
        },
    };
    if let (Pick::Testable, Some(n)) = (args.pick, args.limit) {
        let candidates = records.len();
        records = retrieve::pick(records, n as usize);
        if let serde_json::Value::Object(m) = &mut counts {
            m.insert(
                "picked".into(),
                serde_json::json!({"by": "testable", "candidates": candidates, "kept": records.len()}),
            );
        }
    }
    // Contaminated records are saved as rejected (with the benchmark they overlap) before the rest.
    let records: Vec<Record> = contaminated.into_iter().chain(records).collect();
    if let serde_json::Value::Object(m) = &mut counts {
        // What this run sets out to finish: a stopped run's report and card say how much is left.
        m.insert("synth_functions".into(), serde_json::json!(records.len()));
    }
    if let serde_json::Value::Object(m) = &mut counts {
        // What the run reads, as its resume is checked against (computed once, above).
        m.insert("synth_input".into(), serde_json::json!(input));
        if let Some(e) = &environment {
            m.insert("synth_python".into(), e.clone());
        }
    }
    let rjson = Some(counts);
    let mut config = SandboxConfig { python: PathBuf::from(&args.python), ..SandboxConfig::default() };
    if let Some(j) = args.jobs {
        config.jobs = j.max(1);
    }
    if let Some(signal) = interrupt.signal() {
        return Ok(stopped_before_start(&args.out, signal));
    }
    let sandbox = super::start_sandbox(config)?;
    args.runtime.size_thread_pools();
    let load = args.runtime.load(&args.weights);
    let model = super::generate::load_model(&args.model, &load, &args.server, !args.no_chat, &bars)?;
    let engine = model.generator();
    if let Some(signal) = interrupt.signal() {
        return Ok(stopped_before_start(&args.out, signal));
    }
    let dir = RunDir::new(&args.out);
    // Statistics exist from the start (with the retrieve counts) and are refreshed as the run goes.
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    emit::write_stats(&dir, rjson.clone())?;
    let against = decontam.as_ref().map(|d| d.sources()).unwrap_or_default();
    let recorded = settings.run_settings(&engine.model_id(), engine.has_chat_template(), against);
    if let Some(before) = emit::record_settings(&dir, &recorded)? {
        let differ = before.differences(&recorded);
        if !differ.is_empty() {
            // A resume with other settings is allowed (fewer tries after a slow start, say), but the
            // run's records are then not all made alike: stats.json lists every set, and merge
            // refuses such a run.
            eprintln!(
                "warning: {} was run before with other settings (then vs now): {}; records finished then keep \
                 theirs, and once this run finishes one, stats.json records both sets (`settings`, \
                 `earlier_settings`) and `unitcoder merge` refuses the run",
                args.out.display(),
                differ.join(", ")
            );
        }
    }
    let result = synthesize(records, engine, &sandbox, &settings, &dir, &bars);
    // Settings this run finished nothing with are not the run's; then statistics and formats are
    // rebuilt from what is on disk, also after a failure.
    let settled = emit::settle_settings(&dir);
    let stats = emit::finalize_as(&dir, rjson, &args.format);
    settled?;
    if let (Err(SynthError::Interrupted), Some(signal)) = (&result, interrupt.signal()) {
        let stats = stats?;
        // The funnel counts finished records only: said so, with what the unfinished ones cost, so
        // that a run stopped before its first record does not read as one that did nothing.
        outln!("finished records:")?;
        out!("{}", stats.funnel_text())?;
        let of = stats.to_do().map_or(String::new(), |n| format!(" of the {n} functions this run took"));
        eprintln!(
            "synth interrupted by {}: {}{of} have a record, kept in {} and counted by stats.json; the model \
             generated {} tokens over all runs, its answers cached in {}, so a resume does not pay for them again; \
             rerun the same command to resume",
            super::interrupt::name(signal),
            stats.finished(),
            args.out.display(),
            stats.timings.tokens,
            RunDir::new(&args.out).root.join("cache").display()
        );
        return Ok(Outcome::Interrupted(signal));
    }
    let timings = result.map_err(|e| {
        let advice = if e.rerun_may_help() { "rerun the same command to resume" } else { "fix the cause, then rerun" };
        anyhow::Error::new(e)
            .context(format!("synth stopped; finished records are kept in {} ({advice})", args.out.display()))
    })?;
    let stats = stats?;
    out!("{}", stats.funnel_text())?;
    let per_accepted = match (stats.tokens_per_accepted, stats.seconds_per_accepted) {
        (Some(tokens), Some(secs)) => format!("{tokens:.0} tokens and {secs:.1} s per accepted program"),
        _ => "no program accepted".to_string(),
    };
    outln!(
        "all runs: {} tokens, {per_accepted}; the model waited on the sandbox {:.1} s of {:.1} s",
        stats.tokens,
        stats.timings.model_waited_s,
        stats.timings.wall_s
    )?;
    let e = &stats.docstring_examples;
    if e.docstrings > 0 {
        outln!(
            "docstring examples: {} in {} accepted docstrings, run against their function: {} held as written, {} \
             corrected, {} dropped",
            e.found,
            e.docstrings,
            e.kept,
            e.corrected,
            e.dropped
        )?;
    }
    let r = &stats.docstring_raises;
    if r.docstrings > 0 {
        outln!(
            "docstring Raises entries: {} in {} accepted docstrings: {} kept (seen raised), {} dropped",
            r.found,
            r.docstrings,
            r.kept,
            r.dropped
        )?;
    }
    let t = &stats.docstring_returns;
    if t.claims > 0 {
        outln!(
            "docstring return types: {} claimed: {} held, {} corrected to what the function returned, {} unchecked",
            t.claims,
            t.held,
            t.corrected,
            t.unchecked
        )?;
    }
    let p = &stats.docstring_params;
    if p.docstrings > 0 {
        outln!(
            "docstring parameter types: {} in {} accepted docstrings: {} held, {} corrected to what the function took, \
             {} unchecked",
            p.found,
            p.docstrings,
            p.held,
            p.corrected,
            p.unchecked
        )?;
    }
    outln!(
        "this run: {:.1} s, {} records finished, {} already done; model {:.1} s, waited on the sandbox {:.1} s",
        timings.wall_s,
        timings.finished,
        timings.skipped_done,
        timings.model_s,
        timings.model_waited_s
    )?;
    if let LoadedModel::Server(r) = &model {
        let s = r.stats();
        outln!(
            "server: {} requests ({} retried attempts), {} prompt and {} generated tokens, {:.2} requests/s",
            s.requests,
            s.retries,
            s.prompt_tokens,
            s.generated_tokens,
            s.requests_per_s
        )?;
    }
    outln!("wrote {}", show(&args.out))?;
    if stats.funnel.iter().any(|s| s.step == "accepted" && s.count > 0) {
        let data = args.out.join("dataset");
        let card = std::fs::read_to_string(data.join("README.md")).unwrap_or_default();
        if card.contains(unitcoder::pipeline::emit::card::MARKER) {
            outln!(
                "dataset: {} is a Hugging Face dataset folder; its README.md lists the configurations for \
                 datasets.load_dataset",
                show(&data)
            )?;
        } else {
            outln!(
                "dataset: {}/README.md is not the dataset card unitcoder writes (it lacks its marker line), so it \
                 was left as it is; remove it for a card that lists the configurations",
                show(&data)
            )?;
        }
    }
    Ok(Outcome::Success)
}

/// A run stopped by `signal` before synthesis began: nothing of it was written.
fn stopped_before_start(out: &Path, signal: i32) -> Outcome {
    eprintln!(
        "synth interrupted by {} before synthesis began: {} is as the last run left it; rerun the same command to \
         resume",
        super::interrupt::name(signal),
        out.display()
    );
    Outcome::Interrupted(signal)
}

fn show(p: &Path) -> String {
    p.display().to_string()
}
