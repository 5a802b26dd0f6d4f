//! The batched generation loop: one prefill over the distinct prompts (left-padded), fanned out to every
//! sample, then one forward per step over the rows still running. Rows that finish are dropped from the
//! batch and the KV cache, so they stop costing work. Text is decoded as tokens arrive so stop strings
//! that span tokens are caught, and streamed to a callback without the tail that may become a stop
//! string.

use crate::engine::kv_cache::{KvCache, Padding};
use crate::engine::models::Model;
use crate::engine::sampling::{find_stop, prompt_stream, stop_holdback, Sampler};
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
    /// The sample's index in its request: with the prompt's tokens and the seed it picks the RNG stream.
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
    let logits = prefill(model, prompts, &ids, width, &padding, &mut cache)?;
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
    // One hash per distinct prompt: its samples share it and differ by index.
    let streams: Vec<u64> = prompts.iter().map(|p| prompt_stream(p)).collect();
    let mut live: Vec<Live> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Live {
            row: i,
            sampler: Sampler::new(&r.params, streams[r.prompt], r.sample),
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
        .map(|(i, o)| o.ok_or_else(|| EngineError::Internal(format!("row {i} never finished"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((out, stats))
}

/// Runs the prompts into `cache` (left-padded to `width` columns) and returns the logits of their last
/// tokens, `[prompts, vocab]`.
///
/// With a CPU cache each prompt runs alone, exactly as in a batch of one, and its keys and values are
/// copied into its row after the padding, so its numbers never depend on its neighbours. Run together,
/// a padded row differs in the last bits: the prefill attention's softmax (candle's) sums its terms in
/// SIMD lanes counted from the first column, pads included, so padding regroups the sum; int8
/// activations amplify that to ~0.2 in the logits (Qwen2.5-Coder-1.5B), enough to flip a close greedy
/// choice, so eval scores would move with the batch size. Decode steps are already row-independent
/// (the attention kernel chunks keys from each row's first real column). Alone, a prompt still runs
/// as many rows as it has tokens and no pad columns are computed: 8 chat prompts of 30-86 tokens
/// prefilled in 17 s one by one against 43 s padded together, 8 of 46 tokens in 18 s against 20 s
/// (1.5B, dev build, 2 cores). Other devices keep the padded batch.
fn prefill(
    model: &Model,
    prompts: &[Vec<u32>],
    ids: &[u32],
    width: usize,
    padding: &Padding,
    cache: &mut KvCache,
) -> Result<Tensor, EngineError> {
    if cache.host_mut().is_none() {
        return Ok(model.forward(ids, width, padding, cache)?);
    }
    if prompts.len() == 1 && padding.pads() == [0] {
        return prefill_one(model, ids, cache, PREFILL_CHUNK);
    }
    let mut logits = Vec::with_capacity(prompts.len());
    for (row, (prompt, &pad)) in prompts.iter().zip(padding.pads()).enumerate() {
        let mut own = model.new_cache(1, prompt.len())?;
        logits.push(prefill_one(model, prompt, &mut own, PREFILL_CHUNK)?);
        copy_row(&mut own, cache, row, pad)?;
    }
    cache.advance(width);
    Ok(Tensor::cat(&logits, 0)?)
}

/// Prompt columns per forward when a prompt is prefilled on the CPU. The activations of a forward
/// grow with its columns (~130 KB per column on Qwen2.5-Coder-1.5B) and the prefill attention's
/// scores (soft-capped models) with columns x keys, so a long prompt runs in chunks of this many:
/// peak memory stays about that of a 256-token prompt. Each chunk still has enough rows for the
/// kernels to reuse every weight tile many times, so prefill speed does not change; the attention
/// kernel reads each query's keys from the cache in fixed chunks, so the numbers do not depend on
/// where the prompt was cut.
pub const PREFILL_CHUNK: usize = 256;

/// Runs one unpadded prompt into the one-row CPU `cache`, `chunk` columns per forward, and returns
/// the logits of its last token, `[1, vocab]`.
pub fn prefill_one(model: &Model, prompt: &[u32], cache: &mut KvCache, chunk: usize) -> Result<Tensor, EngineError> {
    let alone = Padding::new(vec![0]);
    let mut logits = None;
    for part in prompt.chunks(chunk.max(1)) {
        logits = Some(model.forward(part, part.len(), &alone, cache)?);
    }
    logits.ok_or_else(|| EngineError::Request("an empty prompt has nothing to prefill".into()))
}

/// Copies the filled columns of the one-row CPU cache `src` into row `row` of `dst`, from column `pad`.
fn copy_row(src: &mut KvCache, dst: &mut KvCache, row: usize, pad: usize) -> Result<(), EngineError> {
    let len = src.len();
    let (Some(s), Some(d)) = (src.host_mut(), dst.host_mut()) else {
        return Err(EngineError::Internal("prefill: copying rows needs CPU caches".into()));
    };
    let hd = d.head_dim;
    if s.batch != 1 || row >= d.batch || pad + len > d.capacity || (s.kv_heads, s.head_dim) != (d.kv_heads, hd) {
        return Err(EngineError::Internal(format!(
            "prefill: cannot copy {len} columns into row {row} of a {}-row cache from column {pad}",
            d.batch
        )));
    }
    let pairs = s.keys.iter().zip(d.keys.iter_mut()).chain(s.values.iter().zip(d.values.iter_mut()));
    for (from, to) in pairs {
        for kv in 0..d.kv_heads {
            let at = ((row * d.kv_heads + kv) * d.capacity + pad) * hd;
            to[at..at + len * hd].copy_from_slice(&from[kv * s.capacity * hd..][..len * hd]);
        }
    }
    Ok(())
}

/// Keeps only rows `keep` of the cache, padding and logits.
fn compact(
    keep: &[u32],
    cache: &mut KvCache,
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
