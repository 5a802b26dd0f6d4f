//! The batched generation loop: one prefill over the distinct prompts (left-padded), fanned out to every
//! sample, then one forward per step over the rows still running. Rows that finish are dropped from the
//! batch and the KV cache, so they stop costing work. Text is decoded as tokens arrive so stop strings
//! that span tokens are caught, and streamed to a callback without the tail that may become a stop
//! string.

use crate::engine::kv_cache::Padding;
use crate::engine::models::Model;
use crate::engine::sampling::{find_stop, stop_holdback, Sampler};
use crate::engine::{EngineError, FinishReason, SamplingParams};
use candle_core::Tensor;
use std::sync::Arc;
use std::time::Instant;

/// What the loop needs from a tokenizer: turning generated ids back into text and recognising stop
/// (end-of-sequence) tokens.
pub trait Detokenizer {
    /// The text of `ids`, without special tokens.
    fn decode(&self, ids: &[u32]) -> Result<String, EngineError>;
    /// Whether `id` ends a sample (unless `ignore_eos`).
    fn is_stop_token(&self, id: u32) -> bool;
}

/// One sample to generate.
#[derive(Clone)]
pub struct RowSpec {
    /// Index into the distinct prompts passed to [`generate`].
    pub prompt: usize,
    pub params: Arc<SamplingParams>,
    /// The request's index in its caller's call and the sample's index in the request: they seed the RNG.
    pub request: usize,
    pub sample: usize,
}

/// One finished sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOutput {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub finish: FinishReason,
}

/// Work done by one call of [`generate`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchStats {
    /// Real (unpadded) prompt tokens prefilled.
    pub prompt_tokens: usize,
    /// Tokens sampled over all rows.
    pub generated_tokens: usize,
    /// Row-tokens run through decode steps.
    pub decode_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

/// Per-row state while generating.
struct Live {
    row: usize,
    sampler: Sampler,
    params: Arc<SamplingParams>,
    tokens: Vec<u32>,
    text: String,
    streamed: usize,
}

/// Generates every row of `rows` over the distinct `prompts` in one batch. `on_text(row, piece)`
/// receives each row's text as it becomes final.
pub fn generate(
    model: &Model,
    tok: &dyn Detokenizer,
    prompts: &[Vec<u32>],
    rows: &[RowSpec],
    on_text: &mut dyn FnMut(usize, &str),
) -> Result<(Vec<RowOutput>, BatchStats), EngineError> {
    let mut stats = BatchStats::default();
    let mut out: Vec<Option<RowOutput>> = vec![None; rows.len()];
    if rows.is_empty() {
        return Ok((Vec::new(), stats));
    }
    if let Some((i, _)) = prompts.iter().enumerate().find(|(_, p)| p.is_empty()) {
        return Err(EngineError::Request(format!("prompt {i} encodes to no tokens")));
    }
    let context = model.config().context;
    let (padding, ids, width) = Padding::left_pad(prompts, 0);
    if width >= context {
        return Err(EngineError::Request(format!(
            "a prompt of {width} tokens leaves no room in the model's context of {context} tokens"
        )));
    }
    let most_new = rows.iter().map(|r| r.params.max_tokens).max().unwrap_or(0);
    let capacity = (width + most_new).min(context);
    let mut cache = model.new_cache(prompts.len(), capacity)?;

    let started = Instant::now();
    let logits = model.forward(&ids, width, &padding, &mut cache)?;
    stats.prefill_secs = started.elapsed().as_secs_f64();
    stats.prompt_tokens = prompts.iter().map(Vec::len).sum();

    // Fan the prefill out to the samples (cache rows are copied only when a prompt has several).
    let fan: Vec<u32> = rows.iter().map(|r| r.prompt as u32).collect();
    let identity = fan.len() == prompts.len() && fan.iter().enumerate().all(|(i, &p)| i as u32 == p);
    let (mut padding, mut logits) = if identity {
        (padding, logits)
    } else {
        cache.select(&fan)?;
        let idx = Tensor::new(fan.as_slice(), logits.device())?;
        (padding.select(&fan), logits.index_select(&idx, 0)?)
    };
    let mut live: Vec<Live> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Live {
            row: i,
            sampler: Sampler::new(&r.params, r.request, r.sample),
            params: r.params.clone(),
            tokens: Vec::new(),
            text: String::new(),
            streamed: 0,
        })
        .collect();
    // Rows asking for nothing are done before the first step.
    live.retain(|l| {
        if l.params.max_tokens > 0 {
            return true;
        }
        let prompt_tokens = prompts[rows[l.row].prompt].len();
        out[l.row] =
            Some(RowOutput { text: String::new(), tokens: Vec::new(), prompt_tokens, finish: FinishReason::Length });
        false
    });
    if live.len() != rows.len() {
        let keep: Vec<u32> = live.iter().map(|l| l.row as u32).collect();
        (padding, logits) = compact(&keep, &mut cache, &padding, &logits)?;
    }

    let started = Instant::now();
    while !live.is_empty() {
        let rows_logits: Vec<Vec<f32>> = logits.to_vec2::<f32>()?;
        let mut keep = Vec::with_capacity(live.len());
        let mut next = Vec::with_capacity(live.len());
        for (i, l) in live.iter_mut().enumerate() {
            let token = l.sampler.sample(&rows_logits[i]);
            stats.generated_tokens += 1;
            let finish = step_row(l, token, tok, cache.len() >= cache.capacity(), on_text)?;
            match finish {
                None => {
                    keep.push(i as u32);
                    next.push(token);
                }
                Some(finish) => {
                    let prompt_tokens = prompts[rows[l.row].prompt].len();
                    out[l.row] = Some(RowOutput {
                        text: std::mem::take(&mut l.text),
                        tokens: std::mem::take(&mut l.tokens),
                        prompt_tokens,
                        finish,
                    });
                }
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() != live.len() {
            let mut idx = 0;
            live.retain(|_| {
                idx += 1;
                keep.contains(&((idx - 1) as u32))
            });
            cache.select(&keep)?;
            padding = padding.select(&keep);
        }
        stats.decode_tokens += next.len();
        logits = model.forward(&next, 1, &padding, &mut cache)?;
    }
    stats.decode_secs = started.elapsed().as_secs_f64();
    let out = out
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.ok_or_else(|| EngineError::Other(format!("row {i} never finished"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((out, stats))
}

/// Keeps only rows `keep` of the cache, padding and logits.
fn compact(
    keep: &[u32],
    cache: &mut crate::engine::kv_cache::KvCache,
    padding: &Padding,
    logits: &Tensor,
) -> Result<(Padding, Tensor), EngineError> {
    cache.select(keep)?;
    let idx = Tensor::new(keep, logits.device())?;
    Ok((padding.select(keep), logits.index_select(&idx, 0)?))
}

/// Appends `token` to a row and decides whether the row is finished.
fn step_row(
    l: &mut Live,
    token: u32,
    tok: &dyn Detokenizer,
    cache_full: bool,
    on_text: &mut dyn FnMut(usize, &str),
) -> Result<Option<FinishReason>, EngineError> {
    if !l.params.ignore_eos && tok.is_stop_token(token) {
        flush(l, l.text.len(), on_text);
        return Ok(Some(FinishReason::Eos));
    }
    l.tokens.push(token);
    l.text = tok.decode(&l.tokens)?;
    if let Some(at) = find_stop(&l.text, &l.params.stop) {
        l.text.truncate(at);
        flush(l, at, on_text);
        return Ok(Some(FinishReason::Stop));
    }
    if l.tokens.len() >= l.params.max_tokens || cache_full {
        flush(l, l.text.len(), on_text);
        return Ok(Some(FinishReason::Length));
    }
    // Hold back what may still change: a partial UTF-8 sequence (decoded as U+FFFD) or a possible
    // beginning of a stop string.
    let settled = l.text.trim_end_matches('\u{FFFD}').len();
    let safe = settled - stop_holdback(&l.text[..settled], &l.params.stop);
    flush(l, safe, on_text);
    Ok(None)
}

/// Streams the row's text up to byte `upto` (if more than already streamed).
fn flush(l: &mut Live, upto: usize, on_text: &mut dyn FnMut(usize, &str)) {
    if upto > l.streamed && l.text.is_char_boundary(upto) && l.text.is_char_boundary(l.streamed) {
        on_text(l.row, &l.text[l.streamed..upto]);
        l.streamed = upto;
    }
}
