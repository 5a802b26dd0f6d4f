//! The UnitCoder synthesis pipeline: retrieve functions from a corpus, have the model write unit tests,
//! run and fix, polish, and emit post-training data. One record type flows through the stages.
//!
//! - [`retrieve`]: stage 1 (corpus → standalone functions with their imports);
//! - [`synth`]: stages 2–4 (tests, run and fix, polish) with batching, caching and resume;
//! - [`code`]: reading model replies as Python (extraction, signatures, vacuity stubs, special cases);
//! - [`prompts`]: the prompt templates; [`journal`]: crash-safe JSONL files and caches;
//! - [`quality`]: the tests' mutation score and coverage, scored and gated after polish;
//! - [`emit`]: stage 5 (dataset formats, statistics file, shard merge); [`stats`]: the statistics;
//! - [`run_dir`]: a run directory's layout, timings and file errors;
//! - [`report`]: the run report (Markdown, JSON) with its charts drawn by [`plot`].

pub mod code;
pub mod emit;
pub mod journal;
pub mod plot;
pub mod prompts;
pub mod quality;
pub mod record;
pub mod report;
pub mod retrieve;
pub mod run_dir;
pub mod stats;
pub mod synth;

pub use record::{Record, RecordReader};
