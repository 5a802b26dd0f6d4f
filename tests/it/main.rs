//! The integration tests, in one binary because linking candle is slow. One module per concern;
//! `common` gives every test its own temporary directory and a path to the built `unitcoder` binary.

mod chat_templates;
mod cli;
mod common;
mod corpus;
mod done_when;
mod engine_gguf;
mod engine_qwen;
mod engine_tiny;
mod eval_cli;
mod eval_data;
mod eval_gt;
mod eval_parquet;
mod eval_score;
mod eval_splits;
mod generate;
mod lora;
mod models;
mod models_hf;
mod retrieve;
mod sandbox;
mod synth;
mod synth_default;
mod synth_e2e;
mod synth_emit;
mod tokenizer;
