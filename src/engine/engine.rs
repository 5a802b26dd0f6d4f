//! [`Engine`]: the candle-backed [`Generator`]. One thread owns the model and takes jobs from a channel;
//! whatever jobs are waiting when it becomes free are decoded together (up to `max_batch` rows per
//! forward), so the pipeline and the eval harness can submit concurrently and still share batches.
//! Prompts are rendered and tokenized on the caller's thread; text streams back over the job's own
//! channel, so [`Engine::generate_stream`] runs its callback on the caller's thread.

use crate::engine::batch::{self, BatchStats, Detokenizer, RowSpec};
use crate::engine::codec::{BrokenTemplate, ChatRenderer, TokCodec};
use crate::engine::models::linear::Quantize;
use crate::engine::models::lora::{AdapterSource, Lora};
use crate::engine::models::{Config, MatmulKernels, Model};
use crate::engine::resolve::{ModelFiles, ResolvedModel};
use crate::engine::weights::Weights;
use crate::engine::{Completion, EngineError, Generator, Prompt, Request};
use candle_core::Device;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Turns prompts into token ids and generated ids back into text.
pub trait TextCodec: Detokenizer + Send + Sync {
    /// Token ids for a prompt: raw text as is, chat messages through the chat template (with the
    /// generation prompt appended).
    fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError>;
    /// Whether chat prompts can be rendered.
    fn has_chat_template(&self) -> bool;
}

/// How to run the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub device: Device,
    /// The most rows (prompts x samples) decoded together in one forward.
    pub max_batch: usize,
    /// Recorded with every output (card name, path or repo).
    pub model_id: String,
    /// CPU threads for the forward pass (the engine's kernels and candle's matmuls run on a rayon pool
    /// of this size); 0 means one per available core.
    pub threads: usize,
    /// Which code runs the quantized products (candle's can be forced for comparisons) and how it
    /// rounds activations (llama.cpp's way adds `+llama-cpp-acts` to the model id, weights widened to
    /// f32 `+f32`).
    pub kernels: MatmulKernels,
    /// PEFT LoRA adapter directories applied on top of the model, in order; each adds `+lora:NAME@HASH`
    /// to the model id, so outputs and caches of runs with and without it never mix.
    pub lora: Vec<AdapterSource>,
    /// Dense weights quantized at load (`--quantize`); recorded in the model id as `+q8_0`, since the
    /// outputs differ from the unquantized model's.
    pub quantize: Option<Quantize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            max_batch: 16,
            model_id: String::new(),
            threads: 0,
            kernels: MatmulKernels::Auto,
            lora: Vec::new(),
            quantize: None,
        }
    }
}

/// Throughput and memory figures for one or more `generate` calls. Serialises to the `--stats` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct GenerationStats {
    /// Prompt tokens prefilled (padding excluded).
    pub prompt_tokens: usize,
    /// Tokens sampled.
    pub generated_tokens: usize,
    /// Prompt tokens per second of prefill.
    pub prefill_tok_s: f64,
    /// Row-tokens per second of decode steps (all rows of a batch step count).
    pub decode_tok_s: f64,
    /// The process's peak resident set so far.
    pub peak_rss_mb: f64,
    #[serde(skip)]
    batches: BatchStats,
}

impl GenerationStats {
    fn from_batches(b: &BatchStats) -> Self {
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        GenerationStats {
            prompt_tokens: b.prompt_tokens,
            generated_tokens: b.generated_tokens,
            prefill_tok_s: rate(b.prompt_tokens, b.prefill_secs),
            decode_tok_s: rate(b.decode_tokens, b.decode_secs),
            peak_rss_mb: peak_rss_mb().unwrap_or(0.0),
            batches: *b,
        }
    }

    /// Adds another call's figures (rates are recomputed from the summed times).
    pub fn merge(&mut self, other: &GenerationStats) {
        let mut b = self.batches;
        add_stats(&mut b, &other.batches);
        *self = GenerationStats::from_batches(&b);
    }
}

/// The process's peak resident set size in MB (`VmHWM`), where /proc is available.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Messages from the model thread to one waiting caller.
enum Event {
    Text { request: usize, sample: usize, piece: String },
    Done(Result<(Vec<Vec<Completion>>, BatchStats), EngineError>),
}

/// One caller's requests, tokenized.
struct Job {
    prompts: Vec<Vec<u32>>,
    requests: Vec<Request>,
    events: Sender<Event>,
}

/// The candle inference engine (see the module docs).
pub struct Engine {
    jobs: Option<Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    codec: Arc<dyn TextCodec>,
    config: Config,
    model_id: String,
}

impl Engine {
    /// Loads the model at `path` (a `.gguf` file or an HF checkpoint directory) with `codec` as its
    /// tokenizer, and starts the model thread.
    pub fn with_codec(path: &Path, codec: Arc<dyn TextCodec>, options: EngineOptions) -> Result<Self, EngineError> {
        let weights = Weights::open(path, &options.device)?;
        Self::with_weights(weights, codec, options)
    }

    /// [`Engine::with_codec`] on weights already opened.
    fn with_weights(
        mut weights: Weights,
        codec: Arc<dyn TextCodec>,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // The kernels split each product over the current rayon pool; running the whole forward
        // inside this pool sets their thread count and spares each product a hand-off between pools.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("unitcoder-cpu-{i}"))
            .build()
            .map_err(|e| EngineError::Internal(format!("cannot start {threads} CPU threads: {e}")))?;
        let lora = Lora::open(&options.lora, &options.device)?;
        let adapters: String = lora.ids().iter().map(|id| format!("+lora:{id}")).collect();
        weights.attach_lora(lora);
        weights.set_quantize(options.quantize);
        let model = pool.install(|| Model::load_with(&mut weights, options.kernels))?;
        let path = weights.path().display().to_string();
        drop(weights);
        let config = model.config().clone();
        let (tx, rx) = mpsc::channel::<Job>();
        let worker_codec = codec.clone();
        let max_batch = options.max_batch.max(1);
        let worker = std::thread::Builder::new()
            .name("unitcoder-model".into())
            .spawn(move || serve(model, worker_codec, rx, max_batch, pool))
            .map_err(|e| EngineError::Internal(format!("cannot start the model thread: {e}")))?;
        let base = if options.model_id.is_empty() { path } else { options.model_id };
        let quantized = options.quantize.map(|q| format!("+{}", q.name())).unwrap_or_default();
        // Outputs differ with the rounding, so caches and results of the two never mix.
        let rounding = match options.kernels {
            MatmulKernels::LlamaCppActivations => "+llama-cpp-acts",
            MatmulKernels::Dequantized => "+f32",
            _ => "",
        };
        let model_id = base + &adapters + &quantized + rounding;
        Ok(Engine { jobs: Some(tx), worker: Some(worker), codec, config, model_id })
    }

    /// Loads a resolved model (see [`crate::engine::resolve`]) with its tokenizer, stop tokens and chat
    /// template (the card's override, else the model's own).
    pub fn load(model: &ResolvedModel, mut options: EngineOptions) -> Result<Self, EngineError> {
        let tok = model.tokenizer()?;
        let chat: Option<Box<dyn ChatRenderer>> = match model.chat_template(&tok) {
            Ok(t) => t.map(|t| Box::new(t) as Box<dyn ChatRenderer>),
            // A template that does not compile matters only to chat prompts: plain completion
            // still works, and every chat prompt gets the compile error.
            Err(EngineError::Model { path, problem }) => Some(Box::new(BrokenTemplate { path, problem })),
            Err(e) => return Err(e),
        };
        let weights = match (&model.gguf, &model.files) {
            // The header resolution read: the file is not parsed again.
            (Some(header), _) => Weights::from_gguf(header.clone(), &options.device),
            (None, ModelFiles::Gguf { path }) => Weights::open(path, &options.device)?,
            (None, ModelFiles::Safetensors { dir, .. }) => Weights::open(dir, &options.device)?,
        };
        if options.model_id.is_empty() {
            options.model_id = model.id.clone();
        }
        // The name's own adapters come first, then those asked for on top.
        options.lora.splice(0..0, model.adapters.iter().cloned());
        Self::with_weights(weights, Arc::new(TokCodec::new(tok, chat)), options)
    }

    /// The loaded model's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tokenizer and chat template in use.
    pub fn codec(&self) -> &Arc<dyn TextCodec> {
        &self.codec
    }

    /// Generates like [`Generator::generate`], calling `on_text(request, sample, piece)` on this thread
    /// as text becomes final, and returns the completions with the call's statistics.
    pub fn generate_stream(
        &self,
        requests: &[Request],
        mut on_text: impl FnMut(usize, usize, &str),
    ) -> Result<(Vec<Vec<Completion>>, GenerationStats), EngineError> {
        let prompts = requests.iter().map(|r| self.codec.encode(&r.prompt)).collect::<Result<Vec<_>, _>>()?;
        // Reject what cannot run here, so one bad request does not fail the batch it would join.
        for (i, p) in prompts.iter().enumerate() {
            self.fits(p).map_err(|e| match requests.len() {
                1 => EngineError::Request(e),
                _ => EngineError::Request(format!("request {i}: {e}")),
            })?;
        }
        let (tx, rx) = mpsc::channel();
        let job = Job { prompts, requests: requests.to_vec(), events: tx };
        let jobs = self.jobs.as_ref().ok_or_else(|| EngineError::Internal("the engine is shut down".into()))?;
        jobs.send(job).map_err(|_| EngineError::Internal("the model thread has stopped".into()))?;
        for event in rx {
            match event {
                Event::Text { request, sample, piece } => on_text(request, sample, &piece),
                Event::Done(result) => {
                    let (completions, stats) = result?;
                    return Ok((completions, GenerationStats::from_batches(&stats)));
                }
            }
        }
        Err(EngineError::Internal("the model thread stopped before answering".into()))
    }

    /// [`Generator::generate`] plus the call's statistics.
    pub fn generate_with_stats(
        &self,
        requests: &[Request],
    ) -> Result<(Vec<Vec<Completion>>, GenerationStats), EngineError> {
        self.generate_stream(requests, |_, _, _| {})
    }
}

impl Generator for Engine {
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError> {
        self.generate_with_stats(requests).map(|(c, _)| c)
    }

    fn model_id(&self) -> String {
        self.model_id.clone()
    }

    fn has_chat_template(&self) -> bool {
        self.codec.has_chat_template()
    }

    fn check_prompt(&self, prompt: &Prompt) -> Result<(), EngineError> {
        self.fits(&self.codec.encode(prompt)?).map_err(EngineError::Request)
    }
}

impl Engine {
    /// Why a prompt of these tokens cannot run here (empty, or no room left in the context).
    fn fits(&self, tokens: &[u32]) -> Result<(), String> {
        if tokens.is_empty() {
            return Err("the prompt is empty".into());
        }
        if tokens.len() >= self.config.context {
            return Err(format!(
                "a prompt of {} tokens does not fit the model's context of {} tokens",
                tokens.len(),
                self.config.context
            ));
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Closing the channel ends the model thread's loop.
        self.jobs.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The model thread: takes the first waiting job, adds whatever else is waiting, runs them.
fn serve(model: Model, codec: Arc<dyn TextCodec>, jobs: Receiver<Job>, max_batch: usize, pool: rayon::ThreadPool) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let mut rows: usize = batch[0].requests.iter().map(|r| r.n).sum();
        while rows < max_batch {
            match jobs.try_recv() {
                Ok(job) => {
                    rows += job.requests.iter().map(|r| r.n).sum::<usize>();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        pool.install(|| run_jobs(&model, codec.as_ref(), &batch, max_batch));
    }
}

/// Where one row of a chunk comes from.
#[derive(Clone, Copy)]
struct Origin {
    job: usize,
    request: usize,
    sample: usize,
}

/// Runs a set of jobs in chunks of at most `max_batch` rows (shortest prompts first, so chunks pad
/// little) and answers each job.
fn run_jobs(model: &Model, codec: &dyn TextCodec, jobs: &[Job], max_batch: usize) {
    let mut origins: Vec<Origin> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for (r, req) in job.requests.iter().enumerate() {
            origins.extend((0..req.n).map(|s| Origin { job: j, request: r, sample: s }));
        }
    }
    origins.sort_by_key(|o| jobs[o.job].prompts[o.request].len());
    let mut results: Vec<Vec<Vec<Option<Completion>>>> =
        jobs.iter().map(|j| j.requests.iter().map(|r| vec![None; r.n]).collect()).collect();
    let mut stats = vec![BatchStats::default(); jobs.len()];
    let mut failed: Vec<Option<String>> = vec![None; jobs.len()];
    for chunk in chunks(&origins, jobs, max_batch, model.config().context) {
        match run_chunk(model, codec, jobs, chunk) {
            Ok((outputs, s)) => {
                for (o, c) in chunk.iter().zip(outputs) {
                    results[o.job][o.request][o.sample] = Some(c);
                }
                let mut seen = vec![false; jobs.len()];
                for o in chunk {
                    if !std::mem::replace(&mut seen[o.job], true) {
                        add_stats(&mut stats[o.job], &s);
                    }
                }
            }
            Err(e) => {
                for o in chunk {
                    failed[o.job].get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    for (j, job) in jobs.iter().enumerate() {
        let result = match failed[j].take() {
            Some(e) => Err(EngineError::Batch(e)),
            None => collect(std::mem::take(&mut results[j])).map(|c| (c, stats[j])),
        };
        // A caller that went away no longer needs its answer.
        let _ = job.events.send(Event::Done(result));
    }
}

/// Splits `origins` (sorted by prompt length) into chunks of at most `max_batch` rows. The rows of a
/// chunk share one time axis (shorter prompts are padded on the left), so they all run out of context
/// when its longest prompt does: a row would stop earlier beside a longer prompt than alone, and its
/// text would depend on its neighbours. So a row joins a chunk only where the longest prompt leaves it
/// room for its `max_tokens`, or is no longer than its own.
fn chunks<'a>(origins: &'a [Origin], jobs: &[Job], max_batch: usize, context: usize) -> Vec<&'a [Origin]> {
    let len = |o: &Origin| jobs[o.job].prompts[o.request].len();
    let most = |o: &Origin| jobs[o.job].requests[o.request].params.max_tokens;
    let mut out = Vec::new();
    let mut start = 0;
    for (i, o) in origins.iter().enumerate() {
        let full = i - start >= max_batch;
        // `o` is the longest so far (the rows are sorted by length).
        let cuts = |p: &Origin| len(p) < len(o) && len(o) + most(p) > context;
        if i > start && (full || origins[start..i].iter().any(cuts)) {
            out.push(&origins[start..i]);
            start = i;
        }
    }
    if start < origins.len() {
        out.push(&origins[start..]);
    }
    out
}

/// Generates one chunk of rows, streaming text to the owning jobs.
fn run_chunk(
    model: &Model,
    codec: &dyn TextCodec,
    jobs: &[Job],
    chunk: &[Origin],
) -> Result<(Vec<Completion>, BatchStats), EngineError> {
    // Distinct prompts: the samples of one request share a prefill.
    let mut prompts: Vec<Vec<u32>> = Vec::new();
    let mut prompt_of: Vec<(usize, usize)> = Vec::new();
    let mut rows = Vec::with_capacity(chunk.len());
    for o in chunk {
        let key = (o.job, o.request);
        let p = match prompt_of.iter().position(|k| *k == key) {
            Some(p) => p,
            None => {
                prompt_of.push(key);
                prompts.push(jobs[o.job].prompts[o.request].clone());
                prompts.len() - 1
            }
        };
        let req = &jobs[o.job].requests[o.request];
        // The row's random stream is its index among all the request's samples, not within this call.
        rows.push(RowSpec { prompt: p, params: Arc::new(req.params.clone()), sample: req.first + o.sample });
    }
    let mut on_text = |row: usize, piece: &str| {
        let o = chunk[row];
        let event = Event::Text { request: o.request, sample: o.sample, piece: piece.to_string() };
        let _ = jobs[o.job].events.send(event);
    };
    let (outputs, stats) = batch::generate(model, codec, &prompts, &rows, &mut on_text)?;
    let completions = outputs
        .into_iter()
        .map(|r| Completion {
            text: r.text,
            prompt_tokens: r.prompt_tokens,
            generated_tokens: r.tokens.len(),
            finish: r.finish,
        })
        .collect();
    Ok((completions, stats))
}

fn add_stats(total: &mut BatchStats, s: &BatchStats) {
    total.prompt_tokens += s.prompt_tokens;
    total.generated_tokens += s.generated_tokens;
    total.decode_tokens += s.decode_tokens;
    total.prefill_secs += s.prefill_secs;
    total.decode_secs += s.decode_secs;
}

fn collect(results: Vec<Vec<Option<Completion>>>) -> Result<Vec<Vec<Completion>>, EngineError> {
    results
        .into_iter()
        .map(|req| {
            req.into_iter()
                .map(|c| c.ok_or_else(|| EngineError::Internal("a sample was never generated".into())))
                .collect()
        })
        .collect()
}
