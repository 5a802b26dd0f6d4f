//! Command-line interface: clap argument structs (one file per subcommand), resolved into the
//! library's settings structs, plus the indicatif-backed [`progress::Bars`] reporter.

/// `println!` that returns the write's error instead of panicking, for use with `?`. stdout is
/// often a pipe to `head` or `less` that closes early: `main` ends quietly on that
/// [`std::io::ErrorKind::BrokenPipe`], as ripgrep does. (Resetting SIGPIPE instead would also kill
/// us when a sandbox server dies while we write its stdin.)
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod check;
mod eval;
mod generate;
mod interrupt;
mod merge;
mod models;
mod parse;
mod progress;
mod report;
mod retrieve;
mod server;
mod synth;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// How a command ended when it did not fail outright.
pub enum Outcome {
    /// Everything ran and everything passed.
    Success,
    /// The work ran but found failures (a verdict that is not pass, a failing task...).
    Failures,
    /// The work was stopped by this signal (SIGINT, SIGTERM) after saving what was finished; the
    /// exit status is 128 + the signal, as for a process the signal killed.
    Interrupted(i32),
}

/// unitcoder: turn raw code into verified training data for code models, and measure those models.
/// Offline, with the model loaded in-process; no API keys.
#[derive(Parser)]
#[command(name = "unitcoder", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // Subcommands, one file each under src/cli/.
    /// Run a program against its tests in the sandbox (one pair, or a JSONL batch).
    Check(check::CheckArgs),
    /// Evaluate code models on HumanEval(+), MBPP(+) and BigCodeBench.
    Eval(eval::EvalArgs),
    /// Generate text with the in-process engine (or an OpenAI-compatible server).
    Generate(generate::GenerateArgs),
    /// Model cards: list, pull, path, info.
    Models(models::ModelsArgs),
    /// Retrieve standalone functions from a code corpus (stage 1 of synth) into a JSONL file.
    #[command(long_about = retrieve::LONG_ABOUT)]
    Retrieve(retrieve::RetrieveArgs),
    /// The synthesis pipeline: retrieve, write tests, run and fix, polish, emit (resumable, shardable).
    Synth(synth::SynthArgs),
    /// Join the run directories of sharded synth runs.
    Merge(merge::MergeArgs),
    /// Write a synth run's report (Markdown, JSON, SVG plots).
    Report(report::ReportArgs),
}

/// `command` and all its subcommands with negative numbers allowed as values: `--temperature -1`
/// then reaches the flag's own check ("must be 0 or more") instead of clap's "unexpected argument
/// '-1'". No command has a digit as a short flag, so nothing else changes meaning.
fn allow_negative_numbers(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let mut command = command.allow_negative_numbers(true);
    for name in names {
        command = command.mut_subcommand(name, allow_negative_numbers);
    }
    command
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> anyhow::Result<Outcome> {
    let matches = allow_negative_numbers(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Models(args) => models::run(args),
        Command::Retrieve(args) => {
            args.check_usage();
            retrieve::run(args)
        }
        Command::Synth(args) => {
            args.check_usage();
            synth::run(args)
        }
        Command::Merge(args) => merge::run(args),
        Command::Report(args) => report::run(args),
        Command::Eval(args) => eval::run(args),
    }
}

/// Refuses an `--out` that holds files but no synth run: the run would write among them (and
/// replace or remove files of the names it uses). `synth` and `merge` write runs.
fn not_someone_elses_directory(out: &std::path::Path) -> anyhow::Result<()> {
    let Ok(mut entries) = std::fs::read_dir(out) else { return Ok(()) };
    if !unitcoder::pipeline::run_dir::RunDir::new(out).is_run() && entries.next().is_some() {
        anyhow::bail!(
            "--out {} holds other files and no synth run (no stats.json, rejected.jsonl, dataset/records.jsonl, \
             cache/model.jsonl or cache/exec.jsonl): give a new or empty directory",
            out.display()
        );
    }
    Ok(())
}

/// Creates the directory an output file goes in, as `retrieve` and `eval` do for theirs: every
/// command takes `--out some/new/dir/file` the same way.
fn create_parent(path: &std::path::Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => {
            use anyhow::Context as _;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        None => Ok(()),
    }
}

/// Starts the sandbox and shows its warnings (isolation below `full`, setup notes) on stderr, where
/// they reach a user even under `--json`. What speeds up its next start is kept in
/// `<cache>/sandbox` (the cache `models` uses); without a cache directory, nothing is kept.
fn start_sandbox(mut config: unitcoder::sandbox::SandboxConfig) -> anyhow::Result<unitcoder::sandbox::Sandbox> {
    if config.cache_dir.is_none() {
        config.cache_dir = models::model_settings(None, None).ok().map(|s| s.cache_dir.join("sandbox"));
    }
    let sandbox = unitcoder::sandbox::Sandbox::new(config).map_err(|e| anyhow::anyhow!("starting the sandbox: {e}"))?;
    for w in sandbox.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(sandbox)
}
