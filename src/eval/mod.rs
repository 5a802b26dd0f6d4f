//! The evaluation harness: benchmark datasets (HumanEval(+), MBPP(+), BigCodeBench), prompt building,
//! code extraction from model output, execution on the sandbox and pass@k scoring.
//!
//! Flow: [`data`] loads a benchmark file into [`Task`]s; for HumanEval+/MBPP+ [`groundtruth`] runs the
//! canonical solutions once to record expected outputs and timings; [`program`] turns a task and a
//! candidate solution into a sandbox [`crate::sandbox::Job`]; [`score`] runs the jobs through an
//! [`Execute`] implementation and turns verdicts into per-sample results; [`report`] writes the
//! outputs (ours, evalplus- and BigCodeBench-compatible) and compares runs; [`run`] generates the
//! samples with a [`crate::engine::Generator`] first.

pub mod benchmark;
pub mod data;
pub mod exec;
pub mod groundtruth;
pub mod hf;
pub mod parquet;
pub mod passk;
pub mod program;
pub mod prompt;
pub mod release;
pub mod report;
pub mod run;
pub mod score;

pub use benchmark::{Benchmark, Oracle, Split, Task};
pub use exec::Execute;

/// Errors of the evaluation harness. Test failures are not errors (they are results); these are for
/// the harness itself failing: unreadable data, bad samples, a broken Python.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A data or samples file is malformed; names the file, the line (1-based, 0 when the problem
    /// is the whole file's: then no line is named) and the problem.
    #[error("{path}{}: {problem}", at_line(*.line))]
    Data { path: String, line: usize, problem: String },
    /// A benchmark record or file is malformed; `location` is `line N` (JSONL), `element N` (JSON
    /// array), `row N` (Parquet) or `schema` (a missing Parquet column).
    #[error("{path} {location}: {problem}")]
    Record { path: String, location: String, problem: String },
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    /// Some canonical solutions failed, so their expected outputs are unknown (`task: why` each).
    #[error("ground truth: canonical solutions failed: {}", .0.join("; "))]
    CanonicalFailed(Vec<String>),
    /// The Python process computing expected outputs failed (`python` is its interpreter).
    #[error("ground truth: {}: {problem}", .python.display())]
    Oracle { python: std::path::PathBuf, problem: String },
    /// Expected outputs were asked of a task that is not compared against a reference solution.
    #[error("ground truth: {0} is not a differential task")]
    NotDifferential(String),
    /// A differential task has no expected outputs (the ground truth was not computed for it).
    #[error("ground truth: {0}: no expected outputs")]
    NoExpected(String),
    /// A setting is invalid (`setting` names the flag or field).
    #[error("{setting}: {problem}")]
    Setting { setting: String, problem: String },
    /// Two runs cannot be compared (other benchmark, data or tasks).
    #[error("runs are not comparable: {0}")]
    NotComparable(String),
    /// Generation was asked to stop (the `cancel` flag of [`run::generate_into`]); every batch
    /// answered before it was handed on.
    #[error("generation interrupted")]
    Interrupted,
    /// The generator answered fewer requests than it was sent.
    #[error("the generator answered {answered} of {asked} requests")]
    ShortAnswer { answered: usize, asked: usize },
    /// An output could not be serialised (`what` names it).
    #[error("serializing {what}: {cause}")]
    Serialize { what: &'static str, cause: serde_json::Error },
    /// A sample names a task the benchmark does not have (samples of another benchmark?).
    #[error("sample for unknown task `{0}`")]
    UnknownTask(String),
    /// The executor returned no verdict for a sample: its workers stopped.
    #[error("the executor returned no verdict for sample {0}")]
    NoVerdict(usize),
    /// An HF dataset file is not in the cache and offline mode forbids downloading it.
    #[error("{name} is not in the HF cache at {} and offline mode is on (HF_HUB_OFFLINE)", .dir.display())]
    NotCached { name: String, dir: std::path::PathBuf },
    /// An evalplus release file is in neither cache and offline mode forbids downloading it.
    #[error(
        "{url} is not cached (looked for {looked}) and offline mode is on (HF_HUB_OFFLINE); put the release file at one of those, or \
         pass --data FILE"
    )]
    ReleaseNotCached { url: String, looked: String },
    /// A cached or downloaded evalplus release file is not the release's text.
    #[error(
        "{}: not {release} (sha256 of its text {got}, the release's {expected}); delete it to fetch the release \
         again, or pass --data FILE",
        .path.display()
    )]
    ReleaseMismatch { path: std::path::PathBuf, release: String, expected: String, got: String },
    /// Downloading an HF dataset file or an evalplus release failed (network, authentication, no such file).
    #[error(
        "cannot download {name}: {cause}. A local copy of the benchmark's file can be given with --data FILE \
         (unitcoder's repository has them under eval/data)"
    )]
    Download { name: String, cause: String },
    /// A samples file could not be read or written (names the file and the line).
    #[error(transparent)]
    Journal(#[from] crate::pipeline::journal::JournalError),
    /// The generator failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The generator failed on one task's prompt.
    #[error("generating for {task_id}: {cause}")]
    TaskGeneration { task_id: String, cause: crate::engine::EngineError },
}

/// ` line N`, or nothing for line 0 (a problem of the whole file: "line 0" would send a reader
/// looking for a line that does not exist).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" line {line}")
    }
}

impl EvalError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.as_ref().display().to_string(), cause: source }
    }

    pub(crate) fn data(path: impl AsRef<std::path::Path>, line: usize, problem: impl Into<String>) -> Self {
        EvalError::Data { path: path.as_ref().display().to_string(), line, problem: problem.into() }
    }
}
