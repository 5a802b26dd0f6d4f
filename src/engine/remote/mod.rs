//! [`Remote`]: a [`Generator`] that asks an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's
//! server, Ollama) instead of running the model in-process, chosen by a model argument of the form
//! `openai:BASE_URL#MODEL_NAME`. A batch of requests becomes HTTP requests run by up to `concurrency`
//! threads (one shared limit however many callers), each request asking for its `n` samples at once
//! until the server shows it ignores `n`, separate requests (seed + sample index) from then on.
//! Everything above sees the same interface as the engine, so synth's journal and model cache and
//! eval's samples work unchanged, keyed by [`Generator::model_id`]: the spec itself.

mod http;
mod wire;

pub use http::RetryPolicy;

use crate::engine::{Completion, EngineError, Generator, Request};
use crate::progress::Reporter;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The prefix that marks a model argument as a server.
pub const SCHEME: &str = "openai:";

/// Where the model is served: `openai:BASE_URL#MODEL_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The OpenAI base URL, without a trailing slash (e.g. `http://127.0.0.1:8000/v1`).
    pub base_url: String,
    /// The model name the server serves.
    pub model: String,
}

impl ServerSpec {
    /// `None` when `arg` is not a server spec (a card, path or hf: name); an error when it starts with
    /// `openai:` but is malformed.
    pub fn parse(arg: &str) -> Option<Result<ServerSpec, EngineError>> {
        let rest = arg.strip_prefix(SCHEME)?;
        let bad = |why: &str| {
            Some(Err(EngineError::Request(format!(
                "model `{arg}`: {why} (expected openai:BASE_URL#MODEL_NAME, e.g. openai:http://127.0.0.1:8000/v1#qwen)"
            ))))
        };
        let Some((url, model)) = rest.rsplit_once('#') else { return bad("no `#MODEL_NAME`") };
        if model.trim().is_empty() {
            return bad("empty model name after `#`");
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad("the base URL must start with http:// or https://");
        }
        Some(Ok(ServerSpec { base_url: url.trim_end_matches('/').to_string(), model: model.to_string() }))
    }
}

/// What a model id stands for where runs are compared, continued or cached: a server model
/// (`openai:URL#NAME`) is the model it serves, `openai:#NAME`, not the address it was asked at
/// (shards of one run ask a server each, and a restarted server may come back on another port);
/// any other id is itself.
pub fn model_identity(model_id: &str) -> String {
    match ServerSpec::parse(model_id) {
        Some(Ok(spec)) => format!("{SCHEME}#{}", spec.model),
        _ => model_id.to_string(),
    }
}

impl std::fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}#{}", self.base_url, self.model)
    }
}

/// An API key. Its `Debug` shows no part of it, so it cannot reach a log through a derived `Debug`.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// How to talk to the server.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// HTTP requests in flight at most.
    pub concurrency: usize,
    /// Limit on one HTTP request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub api_key: Option<ApiKey>,
    /// Whether the served model is prompted through chat (the server's template); false makes it a
    /// base model to everything above, which then sends raw text to `/completions`.
    pub chat: bool,
    /// Where each retry is announced (a down server otherwise looks like a hang for minutes): once
    /// per retry of an outage, however many requests are in flight.
    pub notes: Notes,
}

/// A shared [`Reporter`] for a [`Remote`]'s notes; the default drops them.
#[derive(Clone)]
pub struct Notes(pub Arc<dyn Reporter>);

impl Default for Notes {
    fn default() -> Self {
        Notes(Arc::new(crate::progress::Silent))
    }
}

impl std::fmt::Debug for Notes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notes(..)")
    }
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            concurrency: 16,
            timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            api_key: None,
            chat: true,
            notes: Notes::default(),
        }
    }
}

/// Totals over every call so far. Serialises to `generate --stats`'s line for server models.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RemoteStats {
    /// HTTP requests answered.
    pub requests: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Seconds from the first request sent to the last answer received.
    pub wall_s: f64,
    pub requests_per_s: f64,
    pub generated_tok_s: f64,
}

/// A counting semaphore: the concurrency limit shared by every caller.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    first_sent: Mutex<Option<Instant>>,
    last_answer: Mutex<Option<Instant>>,
}

/// The server-backed generator (see the module docs).
pub struct Remote {
    spec: ServerSpec,
    options: RemoteOptions,
    agent: ureq::Agent,
    slots: Slots,
    /// Cleared the first time the server answers fewer choices than `n` asked for.
    supports_n: AtomicBool,
    counters: Counters,
    /// The outage in progress, if any: every request in flight meets the same one.
    outage: Mutex<Outage>,
}

/// What the requests in flight share of an outage, so that it is noted once: each retry number by
/// whichever request gets there first, not once per request (`--concurrency N` would print N copies).
#[derive(Default)]
struct Outage {
    /// Requests now between a failed attempt and their answer or giving up.
    retrying: usize,
    /// The highest retry (1-based) noted since the outage began.
    noted: u32,
}

/// One request's part in an outage, from its first retry until it ends however it ends.
struct InOutage<'a>(&'a Mutex<Outage>);

impl<'a> InOutage<'a> {
    fn enter(outage: &'a Mutex<Outage>) -> Self {
        outage.lock().unwrap_or_else(|e| e.into_inner()).retrying += 1;
        InOutage(outage)
    }

    /// Whether retry number `n` (1-based) is still to be noted, marking it noted.
    fn first_to_note(&self, n: u32) -> bool {
        let mut o = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = n > o.noted;
        o.noted = o.noted.max(n);
        first
    }
}

impl Drop for InOutage<'_> {
    fn drop(&mut self) {
        let mut o = self.0.lock().unwrap_or_else(|e| e.into_inner());
        o.retrying = o.retrying.saturating_sub(1);
        if o.retrying == 0 {
            // Nobody is retrying any more (answered, or given up and said so as an error): the
            // next failure is a new outage, noted from its first retry.
            o.noted = 0;
        }
    }
}

/// Samples `first..first + count` of request `request`.
#[derive(Clone, Copy)]
struct Unit {
    request: usize,
    first: usize,
    count: usize,
}

impl Remote {
    pub fn new(spec: ServerSpec, options: RemoteOptions) -> Self {
        let concurrency = options.concurrency.max(1);
        let agent = ureq::AgentBuilder::new()
            .timeout(options.timeout)
            .max_idle_connections_per_host(concurrency)
            .user_agent(concat!("unitcoder/", env!("CARGO_PKG_VERSION")))
            .build();
        Remote {
            spec,
            agent,
            slots: Slots { free: Mutex::new(concurrency), freed: Condvar::new() },
            options,
            supports_n: AtomicBool::new(true),
            counters: Counters::default(),
            outage: Mutex::default(),
        }
    }

    /// The server and model asked.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// Totals so far.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let first = *c.first_sent.lock().unwrap_or_else(|e| e.into_inner());
        let last = *c.last_answer.lock().unwrap_or_else(|e| e.into_inner());
        let wall_s = match (first, last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let rate = |n: u64| if wall_s > 0.0 { n as f64 / wall_s } else { 0.0 };
        let (requests, generated_tokens) =
            (c.requests.load(Ordering::Relaxed), c.generated_tokens.load(Ordering::Relaxed));
        RemoteStats {
            requests,
            retries: c.retries.load(Ordering::Relaxed),
            prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
            generated_tokens,
            wall_s,
            requests_per_s: rate(requests),
            generated_tok_s: rate(generated_tokens),
        }
    }

    fn key(&self) -> Option<&str> {
        self.options.api_key.as_ref().map(|k| k.0.as_str())
    }

    /// One server request for `n` samples, retried as [`RetryPolicy`] says.
    fn call(&self, request: &Request, n: usize, seed: u64) -> Result<Vec<Completion>, EngineError> {
        let url = format!("{}{}", self.spec.base_url, wire::endpoint(&request.prompt));
        let body = wire::body(&self.spec.model, request, n, seed);
        let policy = self.options.retry;
        let fail = |why: String| EngineError::Server {
            server: http::scrub(&url, self.key()),
            problem: http::scrub(&why, self.key()),
        };
        let mut in_outage: Option<InOutage<'_>> = None;
        for attempt in 0..=policy.retries {
            let outcome = {
                let _slot = self.slots.acquire();
                self.counters.first_sent.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now);
                http::attempt(&self.agent, &url, self.key(), &body)
            };
            match outcome {
                http::Attempt::Answer(v) => {
                    // The server answers again: a failure after this is a new outage.
                    self.outage.lock().unwrap_or_else(|e| e.into_inner()).noted = 0;
                    let completions = wire::parse(&v).map_err(|e| fail(format!("unexpected answer: {e}")))?;
                    let c = &self.counters;
                    *c.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    c.requests.fetch_add(1, Ordering::Relaxed);
                    let prompt = completions.first().map_or(0, |c| c.prompt_tokens);
                    c.prompt_tokens.fetch_add(prompt as u64, Ordering::Relaxed);
                    let generated: usize = completions.iter().map(|c| c.generated_tokens).sum();
                    c.generated_tokens.fetch_add(generated as u64, Ordering::Relaxed);
                    return Ok(completions);
                }
                http::Attempt::Fail(why) => return Err(fail(why)),
                http::Attempt::Retry { why, .. } if attempt == policy.retries => {
                    let attempts = match attempt + 1 {
                        1 => "1 attempt".to_string(),
                        n => format!("{n} attempts"),
                    };
                    return Err(fail(format!("gave up after {attempts}; the last: {why}")));
                }
                http::Attempt::Retry { why, after } => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = policy.delay(attempt, after);
                    let (n, of) = (attempt + 1, policy.retries);
                    // Transport errors already start with the URL; HTTP statuses do not.
                    let why = if why.contains(&url) { why } else { format!("{url}: {why}") };
                    let outage = in_outage.get_or_insert_with(|| InOutage::enter(&self.outage));
                    if outage.first_to_note(n) {
                        let note = format!("retrying in {:.1}s ({n} of {of}): {why}", delay.as_secs_f64());
                        self.options.notes.0.note(&http::scrub(&note, self.key()));
                    }
                    std::thread::sleep(delay);
                }
            }
        }
        Err(fail("no attempt made".into()))
    }

    /// Samples `unit.first..` of one request: as many per server request as the server gives.
    fn run_unit(&self, request: &Request, unit: Unit) -> Result<Vec<Completion>, EngineError> {
        let mut got: Vec<Completion> = Vec::with_capacity(unit.count);
        while got.len() < unit.count {
            let index = unit.first + got.len();
            let left = unit.count - got.len();
            let ask = if left > 1 && self.supports_n.load(Ordering::Relaxed) { left } else { 1 };
            // Sample i is seeded seed + i, however the samples were grouped into requests.
            let answer = self.call(request, ask, request.params.seed.wrapping_add((request.first + index) as u64))?;
            if answer.is_empty() {
                return Err(EngineError::Server {
                    server: self.spec.to_string(),
                    problem: "the server answered no choices".into(),
                });
            }
            if answer.len() < ask {
                self.supports_n.store(false, Ordering::Relaxed);
            }
            got.extend(answer.into_iter().take(left));
        }
        Ok(got)
    }
}

impl Generator for Remote {
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError> {
        self.generate_each(requests).into_iter().collect()
    }

    /// Every request's samples, or its error. Requests go to the server `concurrency` at a time;
    /// after a failure nothing new is sent (the server may be down: each request would retry for
    /// minutes), and the requests not sent say so.
    fn generate_each(&self, requests: &[Request]) -> Vec<Result<Vec<Completion>, EngineError>> {
        let split = !self.supports_n.load(Ordering::Relaxed);
        let units: Vec<Unit> = requests
            .iter()
            .enumerate()
            .flat_map(|(request, r)| match split {
                true => (0..r.n).map(|first| Unit { request, first, count: 1 }).collect::<Vec<_>>(),
                false => vec![Unit { request, first: 0, count: r.n }],
            })
            .collect();
        let results: Mutex<Vec<Vec<Option<Completion>>>> =
            Mutex::new(requests.iter().map(|r| vec![None; r.n]).collect());
        let errors: Mutex<Vec<Option<EngineError>>> = Mutex::new(requests.iter().map(|_| None).collect());
        let failed = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let workers = self.options.concurrency.max(1).min(units.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(&unit) = units.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    match self.run_unit(&requests[unit.request], unit) {
                        Ok(samples) => {
                            let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                            for (i, c) in samples.into_iter().enumerate() {
                                r[unit.request][unit.first + i] = Some(c);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            errors.lock().unwrap_or_else(|e| e.into_inner())[unit.request].get_or_insert(e);
                        }
                    }
                });
            }
        });
        let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let server = || self.spec.to_string();
        results
            .into_iter()
            .zip(errors)
            .map(|(samples, error)| match error {
                Some(e) => Err(e),
                None => samples.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| EngineError::Server {
                    server: server(),
                    problem: match failed.load(Ordering::Relaxed) {
                        true => "not sent: another request of the batch failed first".into(),
                        false => "a sample is missing from the answers".into(),
                    },
                }),
            })
            .collect()
    }

    fn model_id(&self) -> String {
        self.spec.to_string()
    }

    fn has_chat_template(&self) -> bool {
        self.options.chat
    }
}

#[cfg(test)]
mod tests;
