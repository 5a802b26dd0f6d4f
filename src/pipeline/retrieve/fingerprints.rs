//! The benchmarks every run decontaminates against unless told not to (HumanEval(+), MBPP(+),
//! BigCodeBench), shipped inside the binary as compact n-gram fingerprints so that decontamination
//! needs no data files: per benchmark family, the sorted set of 32-bit hashes of the word 13-grams
//! of its prompts and canonical solutions (tokenized exactly as [`super::decontam`] does), stored
//! as Golomb-Rice coded gaps (~15.5 bits per n-gram instead of 64).
//!
//! A 32-bit hash collides with one of ~250,000 benchmark n-grams with probability ~6e-5 per
//! n-gram, so a function is called contaminated only when at least [`MIN_HITS`] of its distinct
//! n-grams are in one family's set: a copied stretch of 14 or more words (the file-based check
//! needs one shared 13-gram), and a chance match of two becomes ~1e-5 for a 100-word function.
//!
//! The file `eval/fingerprints.bin` is built from `eval/data` by [`build`]
//! (`cargo run --example decontam_fingerprints`); a test checks that it still matches.

use super::decontam::{ngram_hashes, DecontamError, FIELDS};
use std::path::Path;

/// The embedded fingerprints (see the module docs for how to rebuild them).
static EMBEDDED: &[u8] = include_bytes!("../../../eval/fingerprints.bin");

/// The families and, under `eval/data`, the files each is built from. HumanEval+ and MBPP+ keep
/// the original prompts but add and fix canonical solutions, and the OriginFmt copies hold the
/// same text again: every file is read, and the set keeps each n-gram once.
pub const FAMILIES: &[(&str, &[&str])] = &[
    (
        "HumanEval(+)",
        &[
            "humaneval/HumanEval.jsonl.gz",
            "evalplus/HumanEvalPlus-v0.1.10.jsonl.gz",
            "evalplus/HumanEvalPlus-OriginFmt-v0.1.10.jsonl.gz",
        ],
    ),
    (
        "MBPP(+)",
        &[
            "mbpp/mbpp.jsonl",
            "mbpp/sanitized-mbpp.json",
            "evalplus/MbppPlus-v0.2.0.jsonl.gz",
            "evalplus/MbppPlus-OriginFmt-v0.2.0.jsonl.gz",
        ],
    ),
    ("BigCodeBench", &["bigcodebench/BigCodeBench-v0.1.4.reconstructed.jsonl.gz"]),
];

/// The n of the embedded n-grams (the common practice since GPT-3, as for benchmark files).
pub const N: usize = 13;
/// Distinct n-grams of a function that must be in one family's set to drop it.
pub const MIN_HITS: usize = 2;
const MAGIC: &[u8; 4] = b"UCFP";
const VERSION: u8 = 1;

/// The decoded fingerprints: per family, its name and sorted 32-bit n-gram hashes.
pub struct Fingerprints {
    families: Vec<(String, Vec<u32>)>,
}

/// The 32-bit fingerprint of a 64-bit n-gram hash: FNV-1a's high bits are weakly mixed, so they
/// go through the splitmix64 finalizer first.
fn fingerprint(h: u64) -> u32 {
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 32) as u32
}

impl Fingerprints {
    /// The fingerprints built into the binary.
    pub fn embedded() -> Result<Fingerprints, DecontamError> {
        Fingerprints::decode(EMBEDDED)
    }

    /// The embedded file as built by [`build`] (520 KB).
    pub fn embedded_bytes() -> &'static [u8] {
        EMBEDDED
    }

    /// The family `code` shares at least [`MIN_HITS`] distinct n-grams with, if any.
    pub fn contaminated_by(&self, code: &str) -> Option<&str> {
        let mut grams: Vec<u32> = ngram_hashes(code, N).into_iter().map(fingerprint).collect();
        grams.sort_unstable();
        grams.dedup();
        self.families
            .iter()
            .find(|(_, set)| grams.iter().filter(|g| set.binary_search(g).is_ok()).take(MIN_HITS).count() >= MIN_HITS)
            .map(|(name, _)| name.as_str())
    }

    /// Family names and their numbers of distinct n-grams.
    pub fn families(&self) -> impl Iterator<Item = (&str, usize)> {
        self.families.iter().map(|(n, s)| (n.as_str(), s.len()))
    }

    /// Decodes a fingerprints file as [`build`] writes it.
    pub fn decode(bytes: &[u8]) -> Result<Fingerprints, DecontamError> {
        let bad = |at: usize, problem: &'static str| DecontamError::Fingerprints { at, problem };
        let mut r = Bytes { b: bytes, at: 0 };
        if r.take(4)? != MAGIC || r.u8()? != VERSION {
            return Err(bad(0, "not a version-1 fingerprints file"));
        }
        if usize::from(r.u8()?) != N {
            return Err(bad(r.at - 1, "n-gram length differs from this build's"));
        }
        let mut families = Vec::new();
        for _ in 0..r.u8()? {
            let len = usize::from(r.u8()?);
            let name =
                String::from_utf8(r.take(len)?.to_vec()).map_err(|_| bad(r.at - len, "family name is not UTF-8"))?;
            let count = r.u32()? as usize;
            let k = u32::from(r.u8()?);
            let len = r.u32()? as usize;
            let start = r.at;
            let mut bits = BitReader { b: r.take(len)?, at: 0 };
            let mut set = Vec::with_capacity(count);
            let mut prev = 0u64;
            for _ in 0..count {
                let gap = (bits.unary().ok_or_else(|| bad(start + len, "truncated"))? << k)
                    | bits.bits(k).ok_or_else(|| bad(start + len, "truncated"))?;
                prev += gap;
                set.push(u32::try_from(prev).map_err(|_| bad(start + bits.at / 8, "hash out of range"))?);
            }
            families.push((name, set));
        }
        Ok(Fingerprints { families })
    }
}

/// Builds the fingerprints file from the benchmark files of [`FAMILIES`] under `data_dir`.
pub fn build(data_dir: &Path) -> Result<Vec<u8>, DecontamError> {
    let mut out = MAGIC.to_vec();
    out.extend([VERSION, N as u8, FAMILIES.len() as u8]);
    for (name, files) in FAMILIES {
        let mut set = Vec::new();
        for file in *files {
            let path = data_dir.join(file);
            for texts in crate::eval::data::string_fields(&path, FIELDS)? {
                // Prompt and solution are joined: HumanEval's solution is only the body of the prompt's def.
                set.extend(ngram_hashes(&texts.join("\n"), N).into_iter().map(fingerprint));
            }
        }
        set.sort_unstable();
        set.dedup();
        // The Rice parameter that suits gaps averaging 2^32 / count.
        let k = (u32::MAX / (set.len().max(1) as u32)).max(1).ilog2();
        let mut bits = BitWriter::default();
        let mut prev = 0u32;
        for &h in &set {
            let gap = h - prev;
            bits.unary(gap >> k);
            bits.bits(gap & ((1u32 << k) - 1), k);
            prev = h;
        }
        out.push(name.len() as u8);
        out.extend(name.as_bytes());
        out.extend((set.len() as u32).to_le_bytes());
        out.push(k as u8);
        out.extend((bits.bytes.len() as u32).to_le_bytes());
        out.extend(bits.bytes);
    }
    Ok(out)
}

struct Bytes<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecontamError> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| DecontamError::Fingerprints { at: self.at, problem: "truncated" })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecontamError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecontamError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Bits packed least significant first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, one: bool) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if one {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (self.used % 8);
            }
        }
        self.used += 1;
    }
    /// `q` ones and a zero.
    fn unary(&mut self, q: u32) {
        for _ in 0..q {
            self.bit(true);
        }
        self.bit(false);
    }
    fn bits(&mut self, v: u32, k: u32) {
        for i in 0..k {
            self.bit(v >> i & 1 == 1);
        }
    }
}

struct BitReader<'a> {
    b: &'a [u8],
    at: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = self.b.get(self.at / 8)?;
        let one = byte >> (self.at % 8) & 1 == 1;
        self.at += 1;
        Some(one)
    }
    fn unary(&mut self) -> Option<u64> {
        let mut q = 0;
        while self.bit()? {
            q += 1;
        }
        Some(q)
    }
    fn bits(&mut self, k: u32) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..k {
            v |= u64::from(self.bit()?) << i;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rice_coding_round_trips() {
        let mut w = BitWriter::default();
        let values = [0u32, 1, 5, 1 << 20, u32::MAX >> 1];
        for &v in &values {
            w.unary(v >> 12);
            w.bits(v & 0xfff, 12);
        }
        let mut r = BitReader { b: &w.bytes, at: 0 };
        for &v in &values {
            let got = (r.unary().expect("bits") << 12) | r.bits(12).expect("bits");
            assert_eq!(got, u64::from(v));
        }
    }

    #[test]
    fn embedded_fingerprints_decode_with_every_family() {
        let fp = Fingerprints::embedded().expect("decodes");
        let names: Vec<&str> = fp.families().map(|(n, _)| n).collect();
        assert_eq!(names, ["HumanEval(+)", "MBPP(+)", "BigCodeBench"]);
        assert!(fp.families().all(|(_, n)| n > 5_000), "{:?}", fp.families().collect::<Vec<_>>());
        // Damage is its own kind, with where reading stopped.
        let damaged = |r: Result<Fingerprints, DecontamError>| match r {
            Err(DecontamError::Fingerprints { at, problem }) => (at, problem),
            other => panic!("expected damaged fingerprints, got {:?}", other.map(|f| f.families.len())),
        };
        assert_eq!(damaged(Fingerprints::decode(b"UCFX")), (0, "not a version-1 fingerprints file"));
        let half = EMBEDDED.len() / 2;
        let (at, problem) = damaged(Fingerprints::decode(&EMBEDDED[..half]));
        assert_eq!(problem, "truncated");
        assert!(at <= half, "byte {at} past the {half} bytes given");
    }
}
