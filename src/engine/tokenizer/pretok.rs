//! The pre-tokenizers that GGUF files name in `tokenizer.ggml.pre`, as llama.cpp defines them: each name
//! maps to a list of regexes applied in turn, every match and every gap between matches becoming its own
//! piece (HF `Split` with `Isolated` behaviour), followed by the GPT-2 byte-to-unicode mapping.
//!
//! Why our own table: candle's `TokenizerFromGguf` falls back to a byte-level pre-tokenizer with a prefix
//! space for names it does not know (e.g. `smollm`), which gives different ids than llama.cpp.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

/// GPT-2's word regex (without the final `|\s+`: with isolated splitting the gaps become pieces anyway).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's regex: case-insensitive contractions, numbers in groups of up to three.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's regex: like Llama 3's but digits one at a time.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How one `tokenizer.ggml.pre` name pre-tokenizes.
pub struct PreTokenizerSpec {
    /// Regexes applied in order.
    pub regexes: &'static [&'static str],
    /// Whether BPE takes a whole pre-token that is itself in the vocabulary without merging (Llama 3).
    pub ignore_merges: bool,
}

/// Every `tokenizer.ggml.pre` name we know, with llama.cpp's regexes for it.
pub fn spec(name: &str) -> Option<PreTokenizerSpec> {
    let (regexes, ignore_merges): (&'static [&'static str], bool) = match name {
        "default" => (&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"], false),
        "gpt-2" | "mpt" | "olmo" | "phi-2" => (&[GPT2], false),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" => (&[r"\p{N}", GPT2], false),
        "llama-bpe" | "llama3" | "llama-v3" | "falcon3" => (&[LLAMA3], true),
        "qwen2" | "stablelm2" | "deepseek-r1-qwen" => (&[QWEN2], false),
        "deepseek-coder" => (&[r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"], false),
        "falcon" => (&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"], false),
        _ => return None,
    };
    Some(PreTokenizerSpec { regexes, ignore_merges })
}

/// The names [`spec`] accepts, for error messages.
pub const KNOWN: &[&str] = &[
    "default",
    "gpt-2",
    "mpt",
    "olmo",
    "phi-2",
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "llama-bpe",
    "llama3",
    "llama-v3",
    "falcon3",
    "qwen2",
    "stablelm2",
    "deepseek-r1-qwen",
    "deepseek-coder",
    "falcon",
];

/// Builds the HF pre-tokenizer for `spec`: isolated regex splits, then the byte mapping (no prefix space,
/// no second regex pass).
pub fn build(spec: &PreTokenizerSpec) -> Result<PreTokenizerWrapper, String> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(spec.regexes.len() + 1);
    for re in spec.regexes {
        let split = Split::new(SplitPattern::Regex((*re).to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| format!("pre-tokenizer regex `{re}`: {e}"))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());
    Ok(Sequence::new(steps).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_has_a_spec_that_builds() {
        for name in KNOWN {
            let s = spec(name).unwrap_or_else(|| panic!("{name} has no spec"));
            build(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(spec("no-such-pre").is_none());
    }
}
