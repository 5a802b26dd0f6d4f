//! The integration tests, in one binary because linking candle is slow. One module per concern;
//! `common` gives every test its own temporary directory and a path to the built `unitcoder` binary.

mod cli;
mod common;
mod sandbox;
mod eval_cli;
mod eval_exec;
mod eval_gt;
mod eval_score;
mod engine_gguf;
mod engine_tiny;
mod generate;
mod models;
mod models_hf;
mod tokenizer;
