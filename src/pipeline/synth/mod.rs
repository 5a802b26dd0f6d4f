//! Stages 2–4 of the pipeline (tests, run and fix, polish) and the quality step over many records
//! at once, with stage 5's record files written as each record finishes.
//!
//! One thread (the caller's) owns the model: it takes pending model calls from a queue and sends up to
//! [`SynthSettings::batch`] of them per [`Generator::generate`] call. Executions go over a channel to a
//! pool of sandbox threads and their verdicts come back on another; the model thread picks them up
//! between batches and only blocks on the sandbox when it has nothing to generate. Each record is its
//! own small state machine ([`item`]), so no record waits for a slower one.
//!
//! Crash safety: finished records are appended (fsync'd) to `dataset/records.jsonl` or
//! `rejected.jsonl`; every model answer and verdict is appended to `cache/`. A rerun skips finished
//! ids and replays cached calls, so a `kill -9` loses at most the calls in flight.

pub(crate) mod item;
mod run;
mod ticker;

pub use run::synthesize;

use crate::engine::EngineError;
use crate::pipeline::journal::JournalError;
use crate::pipeline::prompts::{PromptError, Prompts};
use crate::pipeline::quality::QualitySettings;
use crate::pipeline::run_dir::{OutputError, RunSettings};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Settings of the synthesis stages.
#[derive(Debug, Clone)]
pub struct SynthSettings {
    /// Fix rounds after the original fails (default 3).
    pub rounds: u32,
    /// Fix samples per round (default 3).
    pub samples: u32,
    /// Tests suites drawn per function: a greedy one, then (when it is not kept) the others sampled
    /// in one request. The first suite the original passes without being vacuous is kept; the first
    /// failing one is the fix rounds' starting point.
    pub tests_samples: u32,
    /// Temperature of the tests samples when more than one is drawn.
    pub tests_temperature: f32,
    /// Seed of the sampling (polish, and tests when one suite is drawn, are greedy).
    pub seed: u64,
    /// Most new tokens per model answer.
    pub max_tokens: usize,
    /// Temperature of fix samples.
    pub temperature: f32,
    /// Top-p of fix samples.
    pub top_p: f32,
    /// Repetition penalty on every model answer (1.0 = off). Greedy small models otherwise loop on
    /// one phrase (`test_x_test_x_...`) until the token limit.
    pub repetition_penalty: f32,
    /// Most model requests per generate call.
    pub batch: usize,
    /// When the original passes at least this many of a suite's tests and fails the others, the
    /// failing ones are cut as wrong expectations instead of "fixing" real code to fit them
    /// (0: never cut; the fix rounds then start from the whole suite). Fix rounds never start from
    /// a suite of fewer than this many tests, one wrong expectation would steer them, nor from one
    /// whose tests only expect exceptions (0: neither floor).
    pub min_tests: usize,
    /// The prompt templates.
    pub prompts: Prompts,
    /// Most characters of failing-test output put in a fix prompt.
    pub feedback_chars: usize,
    /// Seconds between the snapshots of the run's timings in `timings.jsonl` (a killed run keeps
    /// its numbers up to the last one).
    pub checkpoint_s: f64,
    /// The quality step after polish (mutants, coverage, thresholds).
    pub quality: QualitySettings,
    /// What the sandbox's interpreter is (see [`crate::python::environment`]): part of every cached
    /// verdict's key, so that a verdict found under one interpreter or set of library versions is not
    /// reused under another (a resume after `pip install`, or with another `--python`).
    pub environment: String,
    /// Set (by a caller's signal handler, say) to stop the run: no new model call or execution
    /// starts, the call in flight finishes and is cached, and the run returns
    /// [`SynthError::Interrupted`]. What finished is in the record files, as after any stop.
    pub cancel: Arc<AtomicBool>,
}

impl Default for SynthSettings {
    fn default() -> Self {
        SynthSettings {
            rounds: 3,
            samples: 3,
            // A 135M model's greedy suite is often vacuous or wrong; two more sampled suites give the
            // original function more chances to meet meaningful tests.
            tests_samples: 3,
            tests_temperature: 0.7,
            seed: 0,
            // A suite of 4-5 tests and a documented function fit within 512 tokens; a longer
            // answer is nearly always a loop, and decoding it is the run's main cost.
            max_tokens: 512,
            temperature: 0.7,
            top_p: 0.95,
            repetition_penalty: 1.1,
            batch: 8,
            min_tests: 2,
            prompts: Prompts::embedded(),
            feedback_chars: crate::pipeline::record::DEFAULT_FEEDBACK_CHARS,
            checkpoint_s: 10.0,
            quality: QualitySettings::default(),
            environment: String::new(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl SynthSettings {
    /// The settings of a run with these settings on model `model` (chat-prompted when `chat`),
    /// with records decontaminated against `decontaminated_against`, as recorded in `stats.json`.
    pub fn run_settings(&self, model: &str, chat: bool, decontaminated_against: Vec<String>) -> RunSettings {
        RunSettings {
            model: model.to_string(),
            chat,
            prompts: self.prompts.identity(),
            decontaminated_against,
            tests_samples: self.tests_samples,
            tests_temperature: self.tests_temperature,
            rounds: self.rounds,
            samples: self.samples,
            temperature: self.temperature,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            max_tokens: self.max_tokens,
            seed: self.seed,
            min_tests: self.min_tests,
            feedback_chars: self.feedback_chars,
            mutants: self.quality.mutants,
            min_mutation_score: self.quality.min_mutation_score,
            min_coverage: self.quality.min_coverage,
            docstring_examples_checked: true,
            docstring_claims_checked: true,
        }
    }
}

/// Why a synthesis run stopped (failing programs are data, not errors).
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An output or cache file.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The model failed.
    #[error("model: {0}")]
    Engine(EngineError),
    /// A prompt template.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The sandbox workers stopped (each verdict channel closed): no execution can run.
    #[error("sandbox: the sandbox workers stopped")]
    SandboxStopped,
    /// [`SynthSettings::cancel`] was set: the run stopped early, on request.
    #[error("interrupted")]
    Interrupted,
}

impl SynthError {
    /// Whether rerunning the same command can get past this error: not when a file of finished
    /// records has a bad line, nor when a prompt template is broken (both stay as they are).
    pub fn rerun_may_help(&self) -> bool {
        !matches!(self, SynthError::Output(OutputError::Journal(JournalError::Line { .. })) | SynthError::Prompt(_))
    }
}

impl From<JournalError> for SynthError {
    fn from(e: JournalError) -> Self {
        SynthError::Output(e.into())
    }
}

// The cause is in the message, so it is not also a `source()`: anyhow's `{:#}` would print it twice.
impl From<EngineError> for SynthError {
    fn from(e: EngineError) -> Self {
        SynthError::Engine(e)
    }
}
