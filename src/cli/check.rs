//! `unitcoder check`: run one program with its tests (`--code`/`--tests`) or a JSONL batch
//! (`--batch`/`--out`) in the sandbox and print or write the verdicts.

use super::progress::Bars;
use super::Outcome;
use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;
use unitcoder::progress::Reporter;
use unitcoder::sandbox::{Isolation, Job, Limits, Sandbox, SandboxConfig, Status, TestOutcome, TestStatus, Verdict};

/// Run a program against its tests in the sandbox and report the verdict.
#[derive(Args)]
pub struct CheckArgs {
    /// The candidate program (Python source file).
    #[arg(long, value_name = "PROGRAM.py", conflicts_with = "batch", requires = "tests")]
    code: Option<PathBuf>,
    /// The tests (unittest classes, `def check(candidate)` + call, bare asserts or `test_*` functions).
    #[arg(long, value_name = "TESTS.py", conflicts_with = "batch", requires = "code")]
    tests: Option<PathBuf>,
    /// Wall-clock limit per run, in seconds (a batch line's own "timeout" overrides it).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().timeout.as_secs_f64(),
          value_parser = super::parse::positive_f64)]
    timeout: f64,
    /// Memory limit for the whole process tree, in MiB.
    #[arg(long, value_name = "MB", default_value_t = Limits::default().memory_mb,
          value_parser = clap::value_parser!(u64).range(1..))]
    memory_mb: u64,
    /// Python interpreter to run candidates with (e.g. a venv's bin/python).
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    /// Print the verdict as JSON (the last stdout line).
    #[arg(long)]
    json: bool,
    /// JSONL input: one {"id","code","tests","timeout"?} object per line.
    #[arg(long, value_name = "IN.jsonl", requires = "out")]
    batch: Option<PathBuf>,
    /// JSONL output for --batch: one verdict per input line.
    #[arg(long, value_name = "OUT.jsonl", requires = "batch")]
    out: Option<PathBuf>,
    /// Parallel workers (default: number of cores).
    #[arg(long, value_name = "N", value_parser = super::parse::positive_usize)]
    jobs: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine {
    id: String,
    code: String,
    tests: String,
    #[serde(default)]
    timeout: Option<f64>,
}

/// Runs the `check` subcommand.
pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    let limits =
        Limits { timeout: Duration::from_secs_f64(args.timeout), memory_mb: args.memory_mb, ..Limits::default() };
    let mut config = SandboxConfig { python: args.python.clone(), limits, ..SandboxConfig::default() };
    if let Some(j) = args.jobs {
        config.jobs = j.max(1);
    }
    match (&args.code, &args.tests, &args.batch, &args.out) {
        (Some(code), Some(tests), None, None) => {
            config.jobs = 1;
            single(code, tests, config, args.json)
        }
        (None, None, Some(input), Some(output)) => batch(input, output, config),
        _ => bail!("give either --code and --tests, or --batch and --out"),
    }
}

fn single(code: &PathBuf, tests: &PathBuf, config: SandboxConfig, json: bool) -> anyhow::Result<Outcome> {
    let program = std::fs::read_to_string(code).with_context(|| format!("reading {}", code.display()))?;
    let tests_src = std::fs::read_to_string(tests).with_context(|| format!("reading {}", tests.display()))?;
    let sandbox = Sandbox::new(config)?;
    let job = Job { id: code.display().to_string(), program, tests: tests_src, limits: None };
    let verdict = sandbox.run(&job);
    print_human(&verdict);
    if json {
        println!("{}", serde_json::to_string(&verdict)?);
    }
    Ok(if verdict.passed() { Outcome::Success } else { Outcome::Failures })
}

fn print_human(v: &Verdict) {
    let status = format!("{:?}", v.status).to_lowercase();
    match &v.reason {
        Some(r) => println!("{status}: {r} ({} ms, isolation {})", v.duration_ms, v.isolation.level),
        None => println!("{status} ({} ms, isolation {})", v.duration_ms, v.isolation.level),
    }
    for t in &v.tests {
        let s = format!("{:?}", t.status).to_lowercase();
        match &t.message {
            Some(m) => println!("  {s:5} {}: {m}", t.name),
            None => println!("  {s:5} {}", t.name),
        }
    }
}

fn batch(input: &PathBuf, output: &PathBuf, config: SandboxConfig) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let default_limits = config.limits.clone();
    let mut jobs = Vec::new();
    let mut malformed = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BatchLine>(line) {
            Ok(b) => {
                let limits = match b.timeout {
                    Some(t) if t.is_finite() && t > 0.0 => {
                        Some(Limits { timeout: Duration::from_secs_f64(t), ..default_limits.clone() })
                    }
                    Some(t) => {
                        malformed.push((i + 1, Some(b.id), format!("field `timeout`: must be positive, got {t}")));
                        continue;
                    }
                    None => None,
                };
                jobs.push(Job { id: b.id, program: b.code, tests: b.tests, limits });
            }
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
                malformed.push((i + 1, id, e.to_string()));
            }
        }
    }
    let file = File::create(output).with_context(|| format!("creating {}", output.display()))?;
    let mut out = BufWriter::new(file);
    let mut all_passed = malformed.is_empty();
    for (line, id, err) in &malformed {
        let message = format!("{} line {line}: {err}", input.display());
        eprintln!("error: {message}");
        let verdict = malformed_verdict(id.clone().unwrap_or_else(|| format!("line {line}")), message);
        writeln!(out, "{}", serde_json::to_string(&verdict)?)?;
    }
    out.flush()?;
    let started = std::time::Instant::now();
    let sandbox = Sandbox::new(config)?;
    let setup = started.elapsed().as_secs_f64();
    let bars = Bars::new();
    let total = jobs.len();
    bars.begin("check", Some(total as u64));
    let mut write_error = None;
    let mut passed = 0usize;
    let running = std::time::Instant::now();
    sandbox.run_batch(jobs, &mut |verdict| {
        all_passed &= verdict.passed();
        passed += usize::from(verdict.passed());
        let line = serde_json::to_string(&verdict).map_err(anyhow::Error::from);
        let written = line.and_then(|l| writeln!(out, "{l}").and_then(|_| out.flush()).map_err(anyhow::Error::from));
        if let Err(e) = written {
            write_error.get_or_insert(e);
        }
        bars.advance("check", 1);
    });
    bars.end("check");
    let secs = running.elapsed().as_secs_f64();
    eprintln!(
        "checked {total} programs in {secs:.2} s ({:.1}/s) after {setup:.2} s of sandbox start-up: {passed} passed",
        total as f64 / secs.max(1e-9)
    );
    if let Some(e) = write_error {
        return Err(e.context(format!("writing {}", output.display())));
    }
    Ok(if all_passed { Outcome::Success } else { Outcome::Failures })
}

fn malformed_verdict(id: String, message: String) -> Verdict {
    Verdict {
        id,
        status: Status::Error,
        reason: Some("malformed input".into()),
        tests: vec![TestOutcome { name: "<input>".into(), status: TestStatus::Error, message: Some(message) }],
        duration_ms: 0,
        stdout_tail: String::new(),
        stderr_tail: String::new(),
        isolation: Isolation::default(),
    }
}
