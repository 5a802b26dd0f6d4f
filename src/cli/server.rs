//! The flags of server models (`--model openai:BASE_URL#MODEL_NAME`), shared by `generate`, `synth` and
//! `eval run`, and the one place that turns them into [`RemoteOptions`]. The API key is read here, from the
//! environment variable the user names, and handed to the library, which never reads the environment.

use clap::Args;
use std::time::Duration;
use unitcoder::engine::models::linear::Quantize;
use unitcoder::engine::remote::{ApiKey, Notes, RemoteOptions, RetryPolicy};
use unitcoder::progress::Reporter;

/// Flags of server models.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Server models (--model openai:BASE_URL#MODEL_NAME)")]
pub struct ServerArgs {
    /// HTTP requests in flight at once to a server model. 16 keeps a vLLM or SGLang batch busy;
    /// llama.cpp's `llama-server` decodes as many as it has slots (--parallel) and queues the rest.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = super::parse::positive_usize)]
    pub concurrency: usize,
    /// Seconds one server request may take, from connecting to the last byte of the answer.
    #[arg(long, default_value_t = 600.0, value_name = "SECS", value_parser = super::parse::positive_f64)]
    pub request_timeout: f64,
    /// Retries of a server request after a connection error, a timeout, HTTP 408, 429 or 5xx, with
    /// exponential backoff and jitter (a first wait of 0.25-0.5 s, doubling up to 30 s; longer when
    /// Retry-After asks): the default rides out about two minutes of a server restarting.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub retries: u32,
    /// The environment variable that holds the server's API key, sent as a Bearer token (unset or
    /// empty: no key). The key is never printed or written.
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "NAME")]
    pub api_key_env: String,
}

impl ServerArgs {
    /// How to talk to a server model; `chat: false` makes the served model a base model. The API key
    /// is read here from the variable `--api-key-env` names.
    pub fn options(&self, chat: bool) -> RemoteOptions {
        let api_key = std::env::var(&self.api_key_env).ok().filter(|k| !k.is_empty()).map(ApiKey::new);
        RemoteOptions {
            concurrency: self.concurrency,
            timeout: Duration::from_secs_f64(self.request_timeout),
            retry: RetryPolicy { retries: self.retries, ..RetryPolicy::default() },
            api_key,
            chat,
            notes: Notes(std::sync::Arc::new(StderrNotes)),
        }
    }
}

/// Shows a server model's notes (its retries) on stderr, one line each, also under `--json` or a
/// redirect: a run waiting out a down server must say so.
struct StderrNotes;

impl Reporter for StderrNotes {
    fn begin(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str) {}
    fn note(&self, message: &str) {
        eprintln!("note: {message}");
    }
}

pub use unitcoder::engine::load::is_server;

/// Quantization applies to weights this process loads; a server quantizes its own.
pub fn refuse_quantize(path: &[&str], model: &str, quantize: Option<Quantize>) {
    if quantize.is_some() && is_server(model) {
        super::parse::usage_error(
            path,
            "--quantize applies to models loaded in-process; a server's model is quantized by the server",
        );
    }
}

/// A LoRA adapter is applied to weights this process loads; a server's model is not one of them.
pub fn refuse_lora(path: &[&str], model: &str, lora: &[String]) {
    if !lora.is_empty() && is_server(model) {
        super::parse::usage_error(
            path,
            "--lora applies to models loaded in-process; load the adapter into the server instead \
             (e.g. vLLM's --lora-modules) and name it in --model openai:BASE_URL#NAME",
        );
    }
}
