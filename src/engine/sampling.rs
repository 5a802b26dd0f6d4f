//! Choosing the next token and deciding when a sample is finished.
//!
//! [`Sampler`] does greedy, temperature, top-k and top-p sampling with its own ChaCha RNG seeded from
//! (seed, request index, sample index), so a sample's tokens never depend on which other requests were
//! batched with it. It also applies a repetition penalty (HF semantics) over the tokens it has
//! picked, which stops small models from looping on one phrase until the token limit. [`find_stop`] and [`stop_holdback`] implement stop strings: the text stops before the
//! first occurrence, and a streaming caller holds back any tail that could still become one (a stop
//! string may span several tokens).

use crate::engine::SamplingParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// Logits this far (in units of temperature-scaled logits) below the best one have probability below
/// e^-25 ≈ 1e-11 relative to it; top-p ignores them instead of sorting the whole vocabulary each step.
const TAIL_CUTOFF: f32 = 25.0;

/// Picks tokens for one sample.
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    top_k: usize,
    rng: ChaCha8Rng,
    repetition_penalty: f32,
    /// The tokens this sample has generated so far (only kept when the penalty is on).
    seen: HashSet<u32>,
}

/// The random stream of a prompt: a hash of its token ids. Seeding from the prompt's content, not its
/// place in a call, keeps sampled text a function of (prompt, parameters, seed, sample index), so it
/// does not change with the batch a request happens to share (synth batches whichever items are ready)
/// and a cached answer is the one the request would get again.
pub fn prompt_stream(tokens: &[u32]) -> u64 {
    // FNV-1a over the ids' bytes, then mixed again by `sample_seed`.
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for t in tokens {
        for b in t.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

/// Mixes the user's seed with the prompt's stream and the sample index (SplitMix64 finaliser), so
/// different samples of one request, and the same sample index of different prompts, get independent
/// streams.
pub fn sample_seed(seed: u64, stream: u64, sample: usize) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (sample as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Sampler {
    /// A sampler for sample `sample` of the prompt whose [`prompt_stream`] is `stream`.
    pub fn new(params: &SamplingParams, stream: u64, sample: usize) -> Self {
        Sampler {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            rng: ChaCha8Rng::seed_from_u64(sample_seed(params.seed, stream, sample)),
            repetition_penalty: params.repetition_penalty,
            seen: HashSet::new(),
        }
    }

    fn penalised(&self) -> bool {
        self.repetition_penalty > 0.0 && self.repetition_penalty != 1.0
    }

    /// Whether this sampler always takes the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }

    /// The next token given one row of logits (the repetition penalty applied first).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if !self.penalised() {
            return self.pick_token(logits);
        }
        let mut adjusted = logits.to_vec();
        apply_repetition_penalty(&mut adjusted, &self.seen, self.repetition_penalty);
        let token = self.pick_token(&adjusted);
        self.seen.insert(token);
        token
    }

    fn pick_token(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() || logits.len() <= 1 {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) * inv_t;
        if self.top_k == 0 && self.top_p >= 1.0 {
            // Plain temperature sampling: one linear pass, no sorting.
            let weights: Vec<f32> = logits.iter().map(|&l| (l * inv_t - max).exp()).collect();
            return self.pick(&weights, |i| i as u32);
        }
        let mut cand: Vec<(f32, u32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (l * inv_t, i as u32))
            .filter(|(l, _)| *l >= max - TAIL_CUTOFF)
            .collect();
        // Highest first; ties go to the lower token id so results are deterministic.
        let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if self.top_k > 0 && cand.len() > self.top_k {
            cand.select_nth_unstable_by(self.top_k - 1, order);
            cand.truncate(self.top_k);
        }
        cand.sort_unstable_by(order);
        let mut weights: Vec<f32> = cand.iter().map(|(l, _)| (l - max).exp()).collect();
        if self.top_p < 1.0 {
            let total: f32 = weights.iter().sum();
            let mut cum = 0.0;
            let mut keep = weights.len();
            for (i, w) in weights.iter().enumerate() {
                cum += w / total;
                if cum >= self.top_p {
                    keep = i + 1;
                    break;
                }
            }
            weights.truncate(keep.max(1));
        }
        self.pick(&weights, |i| cand[i].1)
    }

    /// Draws an index proportionally to `weights` and maps it to a token id.
    fn pick(&mut self, weights: &[f32], id: impl Fn(usize) -> u32) -> u32 {
        let total: f64 = weights.iter().map(|&w| w as f64).sum();
        let mut r = self.rng.random::<f64>() * total;
        for (i, &w) in weights.iter().enumerate() {
            r -= w as f64;
            if r < 0.0 {
                return id(i);
            }
        }
        // Rounding left a sliver: take the last token with non-zero weight.
        let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        id(last)
    }
}

/// Penalises the logits of `seen` tokens as Hugging Face's `RepetitionPenaltyLogitsProcessor` does:
/// a positive logit is divided by `penalty`, a negative one multiplied, so `penalty > 1` always makes
/// a repeat less likely.
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &HashSet<u32>, penalty: f32) {
    for &t in seen {
        if let Some(l) = logits.get_mut(t as usize) {
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// The index of the largest logit (the lowest index among equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The byte offset of the earliest occurrence of any stop string in `text`.
pub fn find_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
}

/// How many trailing bytes of `text` a streaming caller must hold back because they are a prefix of
/// some stop string (they may turn into the stop string with the next token). Always a char boundary.
pub fn stop_holdback(text: &str, stops: &[String]) -> usize {
    let mut hold = 0;
    for s in stops {
        for (i, _) in s.char_indices().skip(1) {
            if text.ends_with(&s[..i]) {
                hold = hold.max(i);
            }
        }
    }
    hold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, top_k: usize, seed: u64) -> SamplingParams {
        SamplingParams { temperature, top_p, top_k, seed, ..SamplingParams::default() }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(&params(0.0, 1.0, 0, 1), 0, 0);
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0]), 1);
    }

    #[test]
    fn same_seed_prompt_and_sample_give_the_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let draw = |prompt: &[u32], sample| {
            let mut s = Sampler::new(&params(1.0, 0.95, 0, 42), prompt_stream(prompt), sample);
            (0..20).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(&[1, 2, 3], 0), draw(&[1, 2, 3], 0));
        assert_ne!(draw(&[1, 2, 3], 0), draw(&[1, 2, 3], 1));
        assert_ne!(draw(&[1, 2, 3], 0), draw(&[1, 2, 4], 0));
        assert_ne!(draw(&[1, 2, 3], 0), draw(&[3, 2, 1], 0));
    }

    #[test]
    fn top_k_only_returns_the_k_best() {
        let logits = [5.0, 4.9, 4.8, 0.0, 4.7];
        let mut s = Sampler::new(&params(10.0, 1.0, 2, 7), 0, 0);
        for _ in 0..200 {
            assert!(s.sample(&logits) <= 1);
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        // probabilities ~ [0.64, 0.24, 0.09, 0.03]: top_p 0.8 keeps the first two only
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let mut s = Sampler::new(&params(1.0, 0.8, 0, 3), 0, 0);
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            seen[s.sample(&logits) as usize] += 1;
        }
        assert_eq!(seen[2] + seen[3], 0);
        assert!(seen[0] > seen[1] && seen[1] > 300, "{seen:?}");
    }

    #[test]
    fn temperature_sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut s = Sampler::new(&params(1.0, 1.0, 0, 9), 0, 0);
        let ones = (0..4000).filter(|_| s.sample(&logits) == 1).count();
        // expected 3000 of 4000
        assert!((2800..3200).contains(&ones), "{ones}");
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
        let mut logits = vec![2.0f32, -1.0, 3.0, 0.5];
        let seen: HashSet<u32> = [0, 1, 7].into_iter().collect();
        apply_repetition_penalty(&mut logits, &seen, 2.0);
        assert_eq!(logits, vec![1.0, -2.0, 3.0, 0.5]);
    }

    #[test]
    fn greedy_with_a_penalty_stops_repeating_the_same_token() {
        // Token 0 is the best by a little: once generated, 3.0 / 1.3 = 2.31 < 2.9 hands the next step
        // to token 1; with both seen, 2.31 > 2.9 / 1.3 = 2.23 gives token 0 back. Without a penalty
        // greedy loops on token 0.
        let logits = [3.0f32, 2.9, 1.0];
        let mut plain = Sampler::new(&params(0.0, 1.0, 0, 1), 0, 0);
        assert_eq!((0..3).map(|_| plain.sample(&logits)).collect::<Vec<_>>(), [0, 0, 0]);
        let mut p = params(0.0, 1.0, 0, 1);
        p.repetition_penalty = 1.3;
        let mut s = Sampler::new(&p, 0, 0);
        assert_eq!((0..3).map(|_| s.sample(&logits)).collect::<Vec<_>>(), [0, 1, 0]);
    }

    #[test]
    fn stop_strings_cut_before_the_earliest_match() {
        let stops = vec!["\nclass".to_string(), "```".to_string()];
        assert_eq!(find_stop("def f():\n  pass\n```\nclass", &stops), Some(16));
        assert_eq!(find_stop("no stop here", &stops), None);
        assert_eq!(find_stop("abc", &[String::new()]), None);
    }

    #[test]
    fn holdback_covers_partial_stop_strings() {
        let stops = vec!["\nclass".to_string(), "```".to_string()];
        assert_eq!(stop_holdback("x = 1\ncl", &stops), 3);
        assert_eq!(stop_holdback("text ``", &stops), 2);
        assert_eq!(stop_holdback("plain", &stops), 0);
        assert_eq!(stop_holdback("é", &["éa".to_string()]), 2);
    }
}
