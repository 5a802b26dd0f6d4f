//! unitcoder turns raw code into verified training data for code models, and measures those models,
//! offline and with the model loaded in-process.
//!
//! Where to find things (one hop from here):
//! - [`sandbox`]: the executor that runs a candidate program with its tests in a contained Python process
//!   and returns a [`sandbox::Verdict`] that the candidate cannot forge.
//! - [`engine`]: in-process inference on candle: model cards and fetching, GGUF/safetensors loading,
//!   tokenizers, chat templates, sampling and batched generation behind the [`engine::Generator`] trait.
//! - [`eval`]: the evaluation harness (HumanEval(+), MBPP(+), BigCodeBench): datasets, prompts, code
//!   extraction, scoring and pass@k.
//! - [`corpus`]: readers for pre-training corpora (JSONL, Parquet, directories of `.py` files, and
//!   Hugging Face datasets of such files).
//! - [`hub`]: the Hugging Face Hub's cache, offline mode and endpoint, shared by models, benchmark
//!   data and corpora.
//! - [`pipeline`]: the UnitCoder synthesis stages (retrieve, tests, run-and-fix, polish, emit).
//! - [`progress`]: the [`progress::Reporter`] trait through which long work reports progress; the CLI
//!   draws it with progress bars, the library never does.

pub mod atomic_file;
pub mod calendar;
pub mod corpus;
pub mod engine;
pub mod eval;
pub mod hub;
pub mod json_line;
pub mod pipeline;
pub mod progress;
pub mod python;
pub mod sandbox;
