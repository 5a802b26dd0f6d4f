//! `unitcoder check`: run one program with its tests (`--code`/`--tests`) or a JSONL batch
//! (`--batch`/`--out`) in the sandbox and print or write the verdicts.

use super::progress::Bars;
use super::Outcome;
use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use unitcoder::progress::Reporter;
use unitcoder::python::source::read_python_source;
use unitcoder::sandbox::{Isolation, Job, Limits, SandboxConfig, Status, TestOutcome, TestStatus, Verdict};

/// Run a program against its tests in the sandbox and report the verdict.
#[derive(Args)]
pub struct CheckArgs {
    /// The candidate program (Python source file).
    #[arg(long, value_name = "PROGRAM.py", conflicts_with = "batch", requires = "tests")]
    code: Option<PathBuf>,
    /// The tests (unittest classes, `def check(candidate)` + call, bare asserts or `test_*` functions).
    /// They run in the program's own module, after it, and use its names directly: there is no
    /// module to import the program from (`from solution import f` fails with ModuleNotFoundError).
    #[arg(long, value_name = "TESTS.py", conflicts_with = "batch", requires = "code")]
    tests: Option<PathBuf>,
    /// Wall-clock limit per run, in seconds (a batch line's own "timeout" overrides it).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().timeout.as_secs_f64(),
          value_parser = super::parse::timeout_secs)]
    timeout: f64,
    /// Memory limit for the whole process tree, in MiB; at least 64 (below that the interpreter
    /// itself cannot start, and the limit fails as an OS error rather than as a verdict).
    #[arg(long, value_name = "MB", default_value_t = Limits::default().memory_mb, value_parser = memory_mb)]
    memory_mb: u64,
    /// Python interpreter to run candidates with (e.g. a venv's bin/python).
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    /// Print the verdict as JSON: the only thing on stdout (the human-readable lines go to stderr).
    #[arg(long)]
    json: bool,
    /// JSONL input (gzip-compressed or not): one {"id","code","tests","timeout"?} object per line;
    /// other keys (a benchmark's `task_id`...) are not read, and named once on stderr.
    #[arg(long, value_name = "IN.jsonl", requires = "out")]
    batch: Option<PathBuf>,
    /// JSONL output for --batch: one verdict per input line, in input order, each with the
    /// `input_key` of what it judged (the line, the interpreter and the limits). Plain JSON Lines,
    /// appended as verdicts come (what --resume reads).
    #[arg(long, value_name = "OUT.jsonl", requires = "batch", value_parser = super::parse::out_file)]
    out: Option<PathBuf>,
    /// Continue a batch that was stopped: keep the verdicts already in --out whose `input_key` matches
    /// the same input line (same line text, --python, --timeout and --memory-mb), up to the first that
    /// does not, and check the rest. Without it --out is written afresh. Kept verdicts are not run
    /// again, so a change to the environment (an installed package) does not reach them.
    #[arg(long, requires = "batch")]
    resume: bool,
    /// Parallel workers (default: number of cores).
    #[arg(long, value_name = "N", value_parser = super::parse::workers)]
    jobs: Option<usize>,
}

/// The smallest `--memory-mb`: the limit covers the interpreter's own address space, and below
/// about this Python fails to start with an OS error (`[Errno 22]`) instead of a verdict.
const MIN_MEMORY_MB: u64 = 64;

fn memory_mb(s: &str) -> Result<u64, String> {
    let mb: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if mb < MIN_MEMORY_MB {
        return Err(format!("must be at least {MIN_MEMORY_MB} (MiB): Python itself needs that much to start"));
    }
    Ok(mb)
}

/// One line of a `--batch` input; other keys (a benchmark's `task_id`, `entry_point`…) are not read.
#[derive(Deserialize)]
struct BatchLine {
    id: String,
    code: String,
    tests: String,
    #[serde(default)]
    timeout: Option<Seconds>,
    /// The keys not read, to name once.
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A per-line `timeout`, read as a number of seconds (its checks are the flag's).
#[derive(Clone, Copy)]
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl BatchLine {
    /// Parses one line, naming the field whose value is wrong; the line's `id`, when it has a
    /// string one, comes back with the error, for its verdict. Also the keys it does not read.
    fn parse(line: &str) -> Result<(BatchLine, Vec<String>), (Option<String>, String)> {
        use serde_json::Value;
        let value: Value = serde_json::from_str(line).map_err(|e| (None, unitcoder::json_line::problem(&e)))?;
        let Value::Object(fields) = &value else {
            return Err((None, format!("expected a JSON object, got {}", unitcoder::json_line::kind(&value))));
        };
        let id = fields.get("id").and_then(Value::as_str).map(str::to_string);
        let line: BatchLine = unitcoder::json_line::from_object(value).map_err(|e| (id, e))?;
        let ignored = line.other.keys().cloned().collect();
        Ok((line, ignored))
    }
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
        (None, None, Some(input), Some(output)) => batch(input, output, config, args.resume),
        _ => bail!("give either --code and --tests, or --batch and --out"),
    }
}

fn single(code: &Path, tests: &Path, config: SandboxConfig, json: bool) -> anyhow::Result<Outcome> {
    let program = read_python_source(code)?;
    let tests_src = read_python_source(tests)?;
    let sandbox = super::start_sandbox(config)?;
    let job = Job::new(code.display().to_string(), program, tests_src);
    let verdict = sandbox.run(&job);
    // With --json stdout is for a program (`| python3 -m json.tool`): one JSON document, nothing else.
    if json {
        print_human(&mut std::io::stderr().lock(), &verdict)?;
        outln!("{}", serde_json::to_string(&verdict)?)?;
    } else {
        print_human(&mut std::io::stdout().lock(), &verdict)?;
    }
    Ok(if verdict.passed() { Outcome::Success } else { Outcome::Failures })
}

fn print_human(w: &mut dyn Write, v: &Verdict) -> std::io::Result<()> {
    let status = format!("{:?}", v.status).to_lowercase();
    let level = &v.isolation.level;
    match &v.reason {
        // A reason that only repeats the status (`timeout`) is not said twice.
        Some(r) if *r != status => writeln!(w, "{status}: {} ({} ms, isolation {level})", shown(r), v.duration_ms)?,
        _ => writeln!(w, "{status} ({} ms, isolation {level})", v.duration_ms)?,
    }
    if let Some(t) = &v.running {
        writeln!(w, "  stopped while running {}", shown(t))?;
    }
    for t in &v.tests {
        let s = format!("{:?}", t.status).to_lowercase();
        match &t.message {
            Some(m) => writeln!(w, "  {s:5} {}: {}", shown(&t.name), shown(m))?,
            None => writeln!(w, "  {s:5} {}", shown(&t.name))?,
        }
    }
    Ok(())
}

/// Text the program chose (test names, exception messages and class names) as it may be shown on
/// a terminal: control characters (escape sequences that move the cursor, erase lines or hide
/// text; new lines that would draw lines of their own) and bidirectional overrides are written
/// escaped, so a program cannot paint a verdict over the real one.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn batch(input: &Path, output: &Path, config: SandboxConfig, resume: bool) -> anyhow::Result<Outcome> {
    // Bytes, not a string: a line that is not UTF-8 gets its own malformed verdict, as a line that is
    // not JSON does, instead of stopping the whole batch with an error that names no line.
    // Gzip is read as what it is (batches are often kept compressed), as `eval score` reads samples.
    let name = output.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if [".gz", ".zst", ".bz2", ".xz"].iter().any(|x| name.ends_with(x)) {
        bail!(
            "--out {}: verdicts are written as plain JSON Lines, appended as they come (what --resume reads); name \
             it .jsonl and compress it once the batch is done",
            output.display()
        );
    }
    let bytes = unitcoder::eval::data::read_maybe_gz(input).with_context(|| format!("reading {}", input.display()))?;
    let all_lines = batch_lines(&bytes);
    let default_limits = config.limits.clone();
    // One slot per input line, in input order; a malformed line's verdict is known up front.
    let mut slots: Vec<Option<Verdict>> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut user_ids: Vec<String> = Vec::new();
    let mut jobs = Vec::new();
    let mut malformed = 0usize;
    let mut ignored: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut first_malformed: Option<String> = None;
    for (i, (raw, line)) in all_lines.iter().enumerate() {
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        let position = slots.len();
        keys.push(input_key(raw, &config));
        let parsed = match line {
            Ok(line) => BatchLine::parse(line),
            Err(e) => Err((None, e.clone())),
        };
        let job = parsed.and_then(|(b, unread)| {
            let limits = match b.timeout.map(|Seconds(t)| super::parse::check_timeout_secs(t)) {
                Some(Ok(t)) => Some(Limits { timeout: Duration::from_secs_f64(t), ..default_limits.clone() }),
                Some(Err(e)) => return Err((Some(b.id), format!("field `timeout`: {e}"))),
                None => None,
            };
            // The job is named by its position so that its verdict finds its line even when ids
            // repeat; the user's id is put back before writing.
            for key in unread {
                *ignored.entry(key).or_insert(0usize) += 1;
            }
            user_ids.push(b.id);
            Ok(Job::new(position.to_string(), b.code, b.tests).with_limits(limits))
        });
        match job {
            Ok(job) => {
                jobs.push(job);
                slots.push(None);
            }
            Err((id, err)) => {
                let id = id.or_else(|| {
                    let line = line.as_deref().ok()?;
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
                });
                let message = format!("{} line {}: {err}", input.display(), i + 1);
                eprintln!("error: {message}");
                first_malformed.get_or_insert_with(|| message.clone());
                slots.push(Some(malformed_verdict(id.unwrap_or_else(|| format!("line {}", i + 1)), message)));
                user_ids.push(String::new());
                malformed += 1;
            }
        }
    }
    let lines: Vec<&Result<&str, String>> = all_lines.iter().map(|(_, l)| l).collect();
    warn_repeated_ids(input, &lines);
    if unitcoder::atomic_file::same_file(input, output) {
        bail!("--out {} is the input {}: writing it would destroy the input", output.display(), input.display());
    }
    if slots.is_empty() {
        bail!(
            "{} holds no programs to check (no line that is not blank); {} is left as it is",
            input.display(),
            output.display()
        );
    }
    if malformed == slots.len() {
        bail!(
            "none of the {malformed} lines of {} could be read (the first: {}); is it the right file, in JSON Lines \
             of {{\"id\", \"code\", \"tests\"}} objects? {} is left as it is",
            input.display(),
            first_malformed.unwrap_or_default(),
            output.display()
        );
    }
    if !ignored.is_empty() {
        let keys: Vec<String> =
            ignored.iter().map(|(k, n)| format!("`{k}` ({n} line{})", if *n == 1 { "" } else { "s" })).collect();
        eprintln!("note: {} has keys that are not read: {}", input.display(), keys.join(", "));
    }
    // The sandbox starts before --out is touched: a mistyped --python must not cost the verdicts
    // of an earlier run in that file.
    let started = std::time::Instant::now();
    let sandbox = super::start_sandbox(config)?;
    let setup = started.elapsed().as_secs_f64();
    super::create_parent(output)?;
    let continuing = resume && std::fs::metadata(output).is_ok_and(|m| m.is_file());
    let kept = if continuing { earlier_verdicts(output, &keys)? } else { Vec::new() };
    let file = if kept.is_empty() {
        File::create(output).with_context(|| format!("creating {}", output.display()))?
    } else {
        // The kept verdicts are rewritten whole (a line cut short by a kill is dropped), then the
        // rest is appended to them.
        let text: String = kept.iter().map(|(line, _)| format!("{line}\n")).collect();
        unitcoder::atomic_file::write(output, text.as_bytes())
            .with_context(|| format!("writing {}", output.display()))?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(output)
            .with_context(|| format!("opening {}", output.display()))?
    };
    let resumed = kept.len();
    let resumed_passed = kept.iter().filter(|(_, passed)| *passed).count();
    let resumed_malformed = slots[..resumed].iter().filter(|s| s.is_some()).count();
    if continuing {
        eprintln!(
            "{resumed} of {} verdicts kept from {} ({resumed_passed} passed); checking the other {}",
            slots.len(),
            output.display(),
            slots.len() - resumed
        );
    }
    for slot in &mut slots[..resumed] {
        *slot = None;
    }
    jobs.retain(|job| job.id.parse::<usize>().is_ok_and(|p| p >= resumed));
    let mut writer = InOrder { out: BufWriter::new(file), slots, keys, next: resumed };
    let bars = Bars::new();
    let total = jobs.len();
    bars.begin("check", Some(total as u64));
    let mut write_error = writer.flush_ready().err();
    let mut passed = 0usize;
    let running = std::time::Instant::now();
    // Ctrl-C / SIGTERM: the programs in progress finish and every verdict up to the first missing
    // one is written, in input order; then the command stops.
    let interrupt = super::interrupt::Interrupt::install()?;
    let cancel = interrupt.flag();
    let mut done = 0usize;
    sandbox.run_batch_until(jobs, &cancel, &mut |mut verdict| {
        done += 1;
        passed += usize::from(verdict.passed());
        if let Some(position) = verdict.id.parse::<usize>().ok().filter(|&p| p < user_ids.len()) {
            verdict.id = std::mem::take(&mut user_ids[position]);
            writer.slots[position] = Some(verdict);
            if let Err(e) = writer.flush_ready() {
                write_error.get_or_insert(e);
            }
        }
        bars.advance("check", 1);
    });
    bars.end("check");
    let secs = running.elapsed().as_secs_f64();
    let new_malformed = malformed - resumed_malformed;
    let bad = if new_malformed > 0 {
        let lines = if new_malformed == 1 { "line" } else { "lines" };
        format!("; {new_malformed} malformed input {lines} written as errors (\"malformed input\")")
    } else {
        String::new()
    };
    eprintln!(
        "checked {done} program{} in {secs:.2} s ({:.1}/s) after {setup:.2} s of sandbox start-up: {passed} passed{bad}",
        if done == 1 { "" } else { "s" },
        done as f64 / secs.max(1e-9)
    );
    if let Some(e) = write_error {
        return Err(e.context(format!("writing {}", output.display())));
    }
    if let (Some(signal), true) = (interrupt.signal(), writer.next < writer.slots.len()) {
        eprintln!(
            "check interrupted by {}: the verdicts of the first {} of {} input lines are in {}, in input order; \
             the same command with --resume checks the rest",
            super::interrupt::name(signal),
            writer.next,
            writer.slots.len(),
            output.display()
        );
        return Ok(Outcome::Interrupted(signal));
    }
    if writer.next < writer.slots.len() {
        bail!("the sandbox returned no verdict for input {} of {}", writer.next + 1, writer.slots.len());
    }
    let all_passed = resumed_passed + passed == writer.slots.len();
    Ok(if malformed == 0 && all_passed { Outcome::Success } else { Outcome::Failures })
}

/// What a verdict judged, as a hex sha256: the input line's bytes, the interpreter and the default
/// limits (a line's own `timeout` is in its bytes). A verdict with the same key can be kept by
/// `--resume` instead of being run again.
fn input_key(line: &[u8], config: &SandboxConfig) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"unitcoder check v1\0");
    h.update(config.python.as_os_str().as_encoded_bytes());
    h.update(format!("\0{}\0{}\0", config.limits.timeout.as_secs_f64(), config.limits.memory_mb).as_bytes());
    h.update(line);
    format!("{:x}", h.finalize())
}

/// The verdicts at the start of `output` (each its line and whether it passed) whose `input_key` is the
/// key of the input line at the same place, up to the first that is not: what `--resume` keeps. A last
/// line without its newline (cut short by a kill) is not kept.
fn earlier_verdicts(output: &Path, keys: &[String]) -> anyhow::Result<Vec<(String, bool)>> {
    let bytes = std::fs::read(output).with_context(|| format!("reading {}", output.display()))?;
    let mut kept = Vec::new();
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    pieces.pop(); // after the last newline: empty, or a line cut short
    for (piece, key) in pieces.into_iter().zip(keys) {
        let Ok(line) = std::str::from_utf8(piece) else { break };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { break };
        if value.get("input_key").and_then(|k| k.as_str()) != Some(key.as_str()) {
            break;
        }
        let Ok(verdict) = serde_json::from_value::<Verdict>(value) else { break };
        kept.push((line.to_string(), verdict.passed()));
    }
    Ok(kept)
}

/// Warns on stderr about ids that more than one of `lines` (of the batch file `input`) gives, naming
/// the lines. Not an error: ids are the user's, and each line still gets its own verdict in its place,
/// but a reader joining verdicts to inputs by id would pair them wrongly.
fn warn_repeated_ids(input: &Path, lines: &[&Result<&str, String>]) {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let mut by_id: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, line) in lines.iter().enumerate() {
        if let Some(Id { id }) = line.as_deref().ok().and_then(|l| serde_json::from_str::<Id>(l).ok()) {
            by_id.entry(id).or_default().push(i + 1);
        }
    }
    for (id, at) in by_id.iter().filter(|(_, at)| at.len() > 1) {
        let at: Vec<String> = at.iter().map(usize::to_string).collect();
        eprintln!(
            "warning: {} lines {}: the same id {id:?}; their verdicts are written in input order, under the same id",
            input.display(),
            at.join(", ")
        );
    }
}

/// The lines of a batch file, as `str::lines` splits them (`\n` or `\r\n`), each its bytes and its
/// text or, when it is not UTF-8, why not. A UTF-8 byte order mark before the first line is dropped:
/// editors that write one mean it as no part of the JSON.
fn batch_lines(bytes: &[u8]) -> Vec<(&[u8], Result<&str, String>)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = std::str::from_utf8(line)
                .map_err(|e| format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1));
            (line, text)
        })
        .collect()
}

/// Writes verdicts in input order as they complete: a verdict waits in its slot until every line
/// before it is written, and each written line is flushed, so an interrupted batch leaves a
/// complete prefix of the input's verdicts.
struct InOrder {
    out: BufWriter<File>,
    slots: Vec<Option<Verdict>>,
    /// Each position's `input_key`, written with its verdict.
    keys: Vec<String>,
    /// The first position not yet written.
    next: usize,
}

impl InOrder {
    fn flush_ready(&mut self) -> anyhow::Result<()> {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            verdict: &'a Verdict,
            input_key: &'a str,
        }
        while let Some(v) = self.slots.get_mut(self.next).and_then(Option::take) {
            let line = Line { verdict: &v, input_key: &self.keys[self.next] };
            writeln!(self.out, "{}", serde_json::to_string(&line)?)?;
            self.next += 1;
        }
        self.out.flush()?;
        Ok(())
    }
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
        coverage: None,
        running: None,
    }
}
