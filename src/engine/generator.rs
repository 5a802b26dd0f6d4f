//! The interface between the engine and its users (eval harness, pipeline, `unitcoder generate`).
//! Requests are submitted in batches so the engine can decode many prompts x samples together.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Errors of the inference engine. Messages name the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model file or directory could not be used (truncated, corrupt, unsupported...).
    #[error("{path}: {problem}")]
    Model { path: String, problem: String },
    /// The request itself is invalid (e.g. a chat prompt for a model without a chat template).
    #[error("invalid request: {0}")]
    Request(String),
    /// A failure inside the tensor library.
    #[error("candle: {0}")]
    Candle(candle_core::Error),
    /// No cache directory could be chosen from the environment.
    #[error("no cache directory: set UNITCODER_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A file is not in the HF cache and offline mode forbids downloading it (`name` says which).
    #[error("{name} is not in the HF cache at {} and offline mode is on (HF_HUB_OFFLINE)", .dir.display())]
    NotCached { name: String, dir: std::path::PathBuf },
    /// Fetching a model file failed (pip, the network, the Hub); `what` names the file or tool.
    #[error("{what}: {problem}")]
    Download { what: String, problem: String },
    /// A server model failed to answer (after the retries); `server` is the URL or `openai:` name.
    #[error("{server}: {problem}")]
    Server { server: String, problem: String },
    /// The tokenizer failed to encode or decode (`op`).
    #[error("{op}: {problem}")]
    Tokenizer { op: &'static str, problem: String },
    /// A stop token (from a card or a flag) is not one token of the model's vocabulary.
    #[error("stop token `{0}` is not a token of this model's vocabulary")]
    UnknownStopToken(String),
    /// A chat template failed to render; `origin` names where the template came from.
    #[error("{origin}: {problem}")]
    Template { origin: String, problem: String },
    /// A failure of another request decoded in the same batch (every request of a failed batch
    /// gets it; the message is the original error's).
    #[error("{0}")]
    Batch(String),
    /// The engine's own machinery failed (its threads could not start or stopped): nothing in the
    /// request or the model to fix.
    #[error("{0}")]
    Internal(String),
}

// The cause is in the message, so it is not also a `source()`: anyhow's `{:#}` would print it twice.
impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Candle(e)
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

/// What to condition on: raw text (base-model completion) or chat messages rendered with the model's
/// chat template (with the generation prompt appended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

/// Decoding settings. `temperature == 0` means greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    pub seed: u64,
    /// Generation stops before the first occurrence of any of these strings (not included in the text).
    pub stop: Vec<String>,
    /// Keep generating past end-of-sequence tokens.
    pub ignore_eos: bool,
    /// Repetition penalty over the tokens this sample has generated (HF semantics: a positive logit is
    /// divided by it, a negative one multiplied). 1.0 turns it off.
    #[serde(default = "no_penalty")]
    pub repetition_penalty: f32,
}

fn no_penalty() -> f32 {
    1.0
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_tokens: 512,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
            ignore_eos: false,
            repetition_penalty: 1.0,
        }
    }
}

/// A prompt with its sampling settings and the number of samples wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: Prompt,
    pub n: usize,
    pub params: SamplingParams,
    /// The index of the first sample asked for: the answer holds samples `first..first + n`. A sample's
    /// text is a function of its index (it picks the random stream), so samples 5..10 asked for later
    /// are the ones a request for 10 would have given: `generate` raises `-n` on a finished run this
    /// way. Left out of the serialized form when 0, so requests (and the cache keys made from them)
    /// read as they did before the field was added.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Request {
    /// A request for samples `0..n`.
    pub fn new(prompt: Prompt, n: usize, params: SamplingParams) -> Self {
        Request { prompt, n, params, first: 0 }
    }
}

/// Why a sample stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// An end-of-sequence / stop token.
    Eos,
    /// A stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub finish: FinishReason,
}

/// Anything that turns batches of requests into completions: the candle engine, or a script in tests.
pub trait Generator: Send + Sync {
    /// Generates `request.n` samples for every request; the outer vector follows `requests`.
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError>;
    /// As [`generate`](Generator::generate), but each request's outcome on its own, so that one
    /// failing request (a prompt a server refuses, say) does not take the others' answers with it:
    /// callers that write results down as they come keep every answer they got. This default tries
    /// the batch, and after a failure each request alone; a generator that answers requests
    /// separately anyway (a server) reports them as they are.
    fn generate_each(&self, requests: &[Request]) -> Vec<Result<Vec<Completion>, EngineError>> {
        match self.generate(requests) {
            Ok(replies) => replies.into_iter().map(Ok).collect(),
            Err(e) if requests.len() == 1 => vec![Err(e)],
            Err(_) => requests
                .iter()
                .map(|r| {
                    let mut one = self.generate(std::slice::from_ref(r))?;
                    one.pop().ok_or_else(|| EngineError::Request("the generator answered no request".into()))
                })
                .collect(),
        }
    }
    /// A stable identifier of the model (card name, path or repo), recorded with every output.
    fn model_id(&self) -> String;
    /// Whether the model has a chat template (decides instruction vs completion prompting).
    fn has_chat_template(&self) -> bool;
    /// Whether `prompt` can be put to the model (a chat prompt through its template), without
    /// generating: a command checks its first prompt before it writes anything. Servers and
    /// scripted models take every prompt here.
    fn check_prompt(&self, _prompt: &Prompt) -> Result<(), EngineError> {
        Ok(())
    }
}

type Script = dyn Fn(&Request, usize) -> String + Send + Sync;

/// A [`Generator`] whose replies come from a closure of (request, sample index): for tests of
/// everything above the engine, and for replaying recorded outputs.
pub struct Scripted {
    script: Box<Script>,
    chat: bool,
    calls: Mutex<Vec<Request>>,
}

impl Scripted {
    /// A scripted chat model.
    pub fn new(script: impl Fn(&Request, usize) -> String + Send + Sync + 'static) -> Self {
        Scripted { script: Box::new(script), chat: true, calls: Mutex::new(Vec::new()) }
    }

    /// Marks the scripted model as a base (completion) model without a chat template.
    pub fn base_model(mut self) -> Self {
        self.chat = false;
        self
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<Request> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Generator for Scripted {
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.extend(requests.iter().cloned());
        }
        Ok(requests
            .iter()
            .map(|r| {
                (0..r.n)
                    .map(|i| {
                        let text = (self.script)(r, r.first + i);
                        Completion {
                            generated_tokens: text.split_whitespace().count(),
                            prompt_tokens: 0,
                            text,
                            finish: FinishReason::Eos,
                        }
                    })
                    .collect()
            })
            .collect())
    }

    fn model_id(&self) -> String {
        "scripted".to_string()
    }

    fn has_chat_template(&self) -> bool {
        self.chat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_returns_n_samples_per_request_in_order() {
        let g = Scripted::new(|r, i| match &r.prompt {
            Prompt::Text(t) => format!("{t}-{i}"),
            Prompt::Chat(m) => format!("chat{}-{i}", m.len()),
        });
        let reqs = vec![
            Request::new(Prompt::Text("a".into()), 2, SamplingParams::default()),
            Request::new(Prompt::Chat(vec![Message::new("user", "x")]), 1, SamplingParams::default()),
        ];
        let out = g.generate(&reqs).unwrap();
        assert_eq!(out[0].iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["a-0", "a-1"]);
        assert_eq!(out[1][0].text, "chat1-0");
        assert_eq!(g.calls().len(), 2);
    }
}
