//! Duplicate removal: exact (hash of the code with whitespace runs collapsed) and near-duplicate
//! (MinHash over token shingles, bucketed by LSH bands, confirmed by the signature's Jaccard
//! estimate). The first occurrence in corpus order is kept, so results are deterministic.
//!
//! Small and self-contained on purpose: the MinHash crates on crates.io either pull in large
//! dependency trees or hash with per-process random seeds, and a run must give the same answer on
//! every machine. Hashes are FNV-1a (stable across Rust versions) and the permutations are
//! `(a·h + b) mod (2^61 − 1)` with coefficients from a fixed-seed SplitMix64.

use std::collections::{HashMap, HashSet};

/// Tokens of code for similarity: identifier/number runs and single punctuation characters;
/// whitespace is dropped.
pub fn code_tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        if word {
            start.get_or_insert(i);
            continue;
        }
        if let Some(st) = start.take() {
            out.push(&s[st..i]);
        }
        if !c.is_whitespace() {
            out.push(&s[i..i + c.len_utf8()]);
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

/// FNV-1a over the tokens, each followed by a separator byte so `ab c` and `a bc` differ.
pub fn fnv1a<'a>(tokens: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in tokens {
        for b in t.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The exact-duplicate key: whitespace runs collapsed to one space, ends trimmed.
pub fn exact_key(code: &str) -> u64 {
    fnv1a(code.split_whitespace())
}

const MERSENNE_61: u64 = (1 << 61) - 1;

/// MinHash near-duplicate detector with LSH banding.
pub struct NearDedup {
    threshold: f64,
    shingle: usize,
    coeffs: Vec<(u64, u64)>,
    bands: usize,
    rows: usize,
    buckets: HashMap<(usize, u64), Vec<usize>>,
    signatures: Vec<Vec<u64>>,
}

impl NearDedup {
    /// A detector for Jaccard similarity ≥ `threshold` over `shingle`-token shingles with
    /// `num_perm` hash functions (128 and 5 are the usual choices for code).
    pub fn new(threshold: f64, num_perm: usize, shingle: usize) -> Self {
        let mut state: u64 = 0x005e_ed0f_u64;
        let mut next = || {
            // SplitMix64: a fixed seed gives the same permutations everywhere.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let coeffs = (0..num_perm).map(|_| (next() % (MERSENNE_61 - 1) + 1, next() % MERSENNE_61)).collect();
        let (bands, rows) = optimal_bands(threshold, num_perm);
        NearDedup {
            threshold,
            shingle: shingle.max(1),
            coeffs,
            bands,
            rows,
            buckets: HashMap::new(),
            signatures: Vec::new(),
        }
    }

    /// The MinHash signature of `code`.
    pub fn signature(&self, code: &str) -> Vec<u64> {
        let tokens = code_tokens(code);
        let k = self.shingle.min(tokens.len()).max(1);
        let shingles: HashSet<u64> = if tokens.is_empty() {
            std::iter::once(0).collect()
        } else {
            tokens.windows(k).map(|w| fnv1a(w.iter().copied()) & MERSENNE_61).collect()
        };
        self.coeffs
            .iter()
            .map(|&(a, b)| {
                shingles
                    .iter()
                    .map(|&h| ((u128::from(a) * u128::from(h) + u128::from(b)) % u128::from(MERSENNE_61)) as u64)
                    .min()
                    .unwrap_or(u64::MAX)
            })
            .collect()
    }

    /// Estimated Jaccard similarity of two signatures.
    pub fn similarity(a: &[u64], b: &[u64]) -> f64 {
        if a.is_empty() {
            return 0.0;
        }
        a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
    }

    /// Whether `code` nearly duplicates something already inserted; if not, inserts it.
    pub fn check_and_insert(&mut self, code: &str) -> bool {
        let sig = self.signature(code);
        let keys: Vec<(usize, u64)> =
            (0..self.bands).map(|band| (band, fnv1a_u64(&sig[band * self.rows..(band + 1) * self.rows]))).collect();
        let mut seen = HashSet::new();
        for key in &keys {
            for &idx in self.buckets.get(key).into_iter().flatten() {
                if seen.insert(idx) && Self::similarity(&sig, &self.signatures[idx]) >= self.threshold {
                    return true;
                }
            }
        }
        let idx = self.signatures.len();
        self.signatures.push(sig);
        for key in keys {
            self.buckets.entry(key).or_default().push(idx);
        }
        false
    }

    /// The (bands, rows) LSH split in use.
    pub fn bands(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }
}

fn fnv1a_u64(values: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The band/row split minimizing the equally weighted false-positive and false-negative areas under
/// the LSH S-curve `1 − (1 − s^r)^b` around `threshold` (the same criterion as datasketch).
pub fn optimal_bands(threshold: f64, num_perm: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        let steps = 200;
        let dx = (hi - lo) / steps as f64;
        (0..steps).map(|i| f(lo + (i as f64 + 0.5) * dx) * dx).sum::<f64>()
    };
    let mut best = (1, num_perm.max(1));
    let mut best_err = f64::INFINITY;
    for b in 1..=num_perm {
        let max_r = num_perm / b;
        for r in 1..=max_r {
            let p = |s: f64| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
            let fp = integrate(&p, 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - p(s), threshold, 1.0);
            if fp + fneg < best_err {
                best_err = fp + fneg;
                best = (b, r);
            }
        }
    }
    best
}

/// Both dedup passes, applied to each function in corpus order.
pub struct Dedup {
    exact: HashSet<u64>,
    near: Option<NearDedup>,
}

/// What [`Dedup::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// Not seen before (now recorded).
    New,
    /// Same code up to whitespace.
    Exact,
    /// A near duplicate.
    Near,
}

impl Dedup {
    /// Exact dedup always; near dedup when `near_threshold` is given (a Jaccard threshold in (0, 1]).
    pub fn new(near_threshold: Option<f64>) -> Self {
        Dedup { exact: HashSet::new(), near: near_threshold.map(|t| NearDedup::new(t, 128, 5)) }
    }

    /// Classifies `code` and remembers it when new.
    pub fn check(&mut self, code: &str) -> Duplicate {
        self.check_parts(code, code)
    }

    /// Like [`Dedup::check`], with the exact key taken from `exact` (the whole program) and the
    /// near-duplicate signature from `near` (the function alone: shared import headers would
    /// otherwise make short unrelated functions look alike).
    pub fn check_parts(&mut self, exact: &str, near: &str) -> Duplicate {
        if !self.exact.insert(exact_key(exact)) {
            return Duplicate::Exact;
        }
        let near_dup = self.near.as_mut().is_some_and(|n| n.check_and_insert(near));
        if near_dup {
            Duplicate::Near
        } else {
            Duplicate::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_words_and_punctuation() {
        assert_eq!(
            code_tokens("x=np.sum(a_1, 2.5)"),
            vec!["x", "=", "np", ".", "sum", "(", "a_1", ",", "2", ".", "5", ")"]
        );
        assert_eq!(code_tokens("  \n"), Vec::<&str>::new());
        assert_eq!(code_tokens("é_ü+1"), vec!["é_ü", "+", "1"]);
    }

    #[test]
    fn exact_key_ignores_whitespace_layout_only() {
        assert_eq!(exact_key("def f(x):\n    return x"), exact_key("def f(x):\n\treturn   x\n"));
        assert_ne!(exact_key("def f(x): return x"), exact_key("def f(y): return y"));
        assert_ne!(exact_key("a b"), exact_key("ab"));
    }

    #[test]
    fn band_split_for_0_8_puts_the_s_curve_near_the_threshold() {
        let (b, r) = optimal_bands(0.8, 128);
        assert!(b * r <= 128);
        let p = |s: f64| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
        assert!(p(0.95) > 0.99 && p(0.5) < 0.01, "b={b} r={r}");
        assert!(p(0.8) > 0.3 && p(0.8) < 0.8, "b={b} r={r}");
    }

    #[test]
    fn minhash_estimate_tracks_true_jaccard() {
        let near = NearDedup::new(0.8, 256, 1);
        // Token sets {t0..t99} and {t20..t119}: Jaccard 80/120.
        let a: String = (0..100).map(|i| format!("t{i} ")).collect();
        let b: String = (20..120).map(|i| format!("t{i} ")).collect();
        let est = NearDedup::similarity(&near.signature(&a), &near.signature(&b));
        assert!((est - 80.0 / 120.0).abs() < 0.1, "{est}");
        assert_eq!(NearDedup::similarity(&near.signature(&a), &near.signature(&a)), 1.0);
    }

    #[test]
    fn dedup_flags_exact_and_near_copies_but_not_different_code() {
        let base = "def mean(values, weights):\n    if len(values) != len(weights):\n        raise ValueError('lengths differ')\n    total = 0.0\n    for v, w in zip(values, weights):\n        if w < 0:\n            raise ValueError('negative weight')\n        total += v * w\n    s = sum(weights)\n    if s == 0:\n        raise ValueError('zero weights')\n    return total / s\n";
        let mut d = Dedup::new(Some(0.8));
        assert_eq!(d.check(base), Duplicate::New);
        assert_eq!(d.check(&base.replace("    ", "\t")), Duplicate::Exact);
        assert_eq!(d.check(&base.replace("'zero weights'", "'weights sum to zero'")), Duplicate::Near);
        let other =
            "def parse(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()\n";
        assert_eq!(d.check(other), Duplicate::New);
        let mut exact_only = Dedup::new(None);
        assert_eq!(exact_only.check(base), Duplicate::New);
        assert_eq!(exact_only.check(&base.replace("'zero weights'", "'weights sum to zero'")), Duplicate::New);
    }
}
