//! The model's tokenizer: [`Tok`] wraps a HF `tokenizers::Tokenizer` built either from a checkpoint's
//! `tokenizer.json` or from GGUF metadata (byte-level BPE in `gguf` with llama.cpp's pre-tokenizers in
//! `pretok`, SentencePiece-style vocabularies in `spm`), plus what generation needs around it: the
//! beginning-of-sequence token and whether to add it, the set of end-of-generation ids, and the
//! `bos_token`/`eos_token` strings that chat templates use.
//!
//! Special tokens (`<|im_start|>` ...) are recognised in text only when the caller asks (rendered chat
//! templates), never in user text given as a plain prompt, as llama.cpp's `parse_special` does.

mod gguf;
mod hf;
mod pretok;
mod spm;

use crate::engine::EngineError;
use std::path::Path;
use tokenizers::{AddedVocabulary, Model, OffsetType, PreTokenizer, Tokenizer};

pub(crate) use hf::read_json;
pub use pretok::KNOWN as KNOWN_PRE_TOKENIZERS;

/// Token texts that end a turn in common chat formats. llama.cpp treats these as end-of-generation when
/// they are control tokens, because many GGUF files list only one of them as `eos_token_id` (e.g. a
/// ChatML model whose eos is `<|endoftext|>` while turns end with `<|im_end|>`).
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<EOT>",
    "<|end▁of▁sentence|>",
    "<|EOT|>",
];

/// A tokenizer with the special-token facts generation needs.
#[derive(Clone)]
pub struct Tok {
    /// Recognises special tokens in the input text.
    special: Tokenizer,
    /// `special`'s added tokens with special-token text treated as plain text (user input), run with
    /// `special`'s own model: a second whole `Tokenizer` for that held another copy of the
    /// vocabulary and merges (26 MB for Qwen2.5's 151,936 tokens, 5% of the 0.5B model's peak RSS).
    plain_added: AddedVocabulary,
    bos: Option<u32>,
    eos_ids: Vec<u32>,
    add_bos: bool,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl Tok {
    /// Builds from a tokenizer whose added special tokens are set up; the `plain` twin is derived here.
    fn assemble(tokenizer: Tokenizer, bos: Option<u32>, eos: Option<u32>, add_bos: bool, control_ids: &[u32]) -> Tok {
        let mut plain_added = tokenizer.get_added_vocabulary().clone();
        plain_added.set_encode_special_tokens(true);
        let mut eos_ids: Vec<u32> = eos.into_iter().collect();
        for text in END_OF_GENERATION_TEXTS {
            if let Some(id) = tokenizer.token_to_id(text) {
                if control_ids.contains(&id) && !eos_ids.contains(&id) {
                    eos_ids.push(id);
                }
            }
        }
        let bos_token = bos.and_then(|id| tokenizer.id_to_token(id));
        let eos_token = eos.and_then(|id| tokenizer.id_to_token(id));
        Tok { special: tokenizer, plain_added, bos, eos_ids, add_bos, bos_token, eos_token }
    }

    /// Builds the tokenizer stored in a GGUF file's metadata.
    pub fn from_gguf(header: &crate::engine::gguf_info::GgufHeader) -> Result<Tok, EngineError> {
        gguf::build(header)
    }

    /// Reads the GGUF header at `path` and builds its tokenizer.
    pub fn from_gguf_file(path: &Path) -> Result<Tok, EngineError> {
        gguf::build(&crate::engine::gguf_info::GgufHeader::read(path)?)
    }

    /// Loads `tokenizer.json` (and `tokenizer_config.json`, `generation_config.json` when present) from an
    /// HF checkpoint directory.
    pub fn from_hf_dir(dir: &Path) -> Result<Tok, EngineError> {
        hf::load(dir)
    }

    /// Token ids of `text`, without BOS. With `parse_special`, special-token text becomes its token.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, EngineError> {
        let enc = if parse_special { self.special.encode(text, false) } else { self.encode_plain(text) };
        let enc = enc.map_err(|e| EngineError::Tokenizer { op: "tokenizer encode", problem: e.to_string() })?;
        Ok(enc.get_ids().to_vec())
    }

    /// `Tokenizer::encode` step for step (added tokens, normalizer, pre-tokenizer, model, post-processor)
    /// with `plain_added` in place of the tokenizer's own added vocabulary, as the tokenizer itself
    /// does after `set_encode_special_tokens(true)`.
    fn encode_plain(&self, text: &str) -> tokenizers::Result<tokenizers::Encoding> {
        let tk = &self.special;
        let mut pre = self.plain_added.extract_and_normalize(tk.get_normalizer(), text);
        if let Some(p) = tk.get_pre_tokenizer() {
            p.pre_tokenize(&mut pre)?;
        }
        pre.tokenize(|n| tk.get_model().tokenize(n.get()))?;
        tk.post_process(pre.into_encoding(None, 0, OffsetType::None)?, None, false)
    }

    /// Token ids of a prompt: BOS first when the model wants it (and the text did not already start
    /// with it, as rendered chat templates often do). `templated` text (a rendered chat template) has its
    /// special tokens parsed; raw prompt text does not.
    pub fn encode_prompt(&self, text: &str, templated: bool) -> Result<Vec<u32>, EngineError> {
        let mut ids = self.encode(text, templated)?;
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Text of `ids`; `skip_special` drops special tokens (`<|im_end|>` ...).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, EngineError> {
        self.special
            .decode(ids, skip_special)
            .map_err(|e| EngineError::Tokenizer { op: "tokenizer decode", problem: e.to_string() })
    }

    /// The id of a token given by its text (special or not).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.special.token_to_id(token)
    }

    /// The text of token `id` in the vocabulary's own form (e.g. `Ġthe` for byte-level BPE).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.special.id_to_token(id)
    }

    /// Number of ids including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.special.get_vocab_size(true)
    }

    /// The beginning-of-sequence id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// Whether prompts start with BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Every id that ends generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Whether `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }

    /// The BOS token's text, for chat templates.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The EOS token's text, for chat templates.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Adds stop tokens given by text (e.g. from a model card) to the end-of-generation set; a text
    /// that is not a single token in the vocabulary is an error naming it.
    pub fn add_stop_tokens(&mut self, tokens: &[String]) -> Result<(), EngineError> {
        for t in tokens {
            let id = self.token_to_id(t).ok_or_else(|| EngineError::UnknownStopToken(t.clone()))?;
            if !self.eos_ids.contains(&id) {
                self.eos_ids.push(id);
            }
        }
        Ok(())
    }

    /// The underlying HF tokenizer (special tokens parsed), e.g. for incremental decoding.
    pub fn inner(&self) -> &Tokenizer {
        &self.special
    }
}

impl std::fmt::Debug for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tok")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos_ids", &self.eos_ids)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}
