//! Builds a [`Tok`] from GGUF tokenizer metadata the way llama.cpp reads it: `tokenizer.ggml.model`
//! `gpt2` is byte-level BPE over `tokens` + `merges`, pre-tokenized as `tokenizer.ggml.pre` names;
//! control tokens (type 3) become special added tokens and user-defined tokens (type 4) plain added
//! tokens, so both are matched whole in text, control ones only when special parsing is asked for.

use super::{pretok, Tok};
use crate::engine::gguf_info::GgufHeader;
use crate::engine::EngineError;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, Tokenizer};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TYPE_UNKNOWN: i64 = 2;
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;

/// Builds the tokenizer described by `h`'s metadata.
pub fn build(h: &GgufHeader) -> Result<Tok, EngineError> {
    let model = h.string("tokenizer.ggml.model")?;
    match model {
        "gpt2" => build_bpe(h),
        "llama" => super::spm::build(h),
        other => Err(h.field_err(
            "tokenizer.ggml.model",
            &format!("unsupported tokenizer model `{other}` (supported: gpt2 (byte-level BPE), llama (SentencePiece))"),
        )),
    }
}

fn build_bpe(h: &GgufHeader) -> Result<Tok, EngineError> {
    let tokens = h.string_array("tokenizer.ggml.tokens")?;
    let types = match h.get("tokenizer.ggml.token_type") {
        Some(_) => h.int_array("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(h.field_err(
            "tokenizer.ggml.token_type",
            &format!("has {} entries but there are {} tokens", types.len(), tokens.len()),
        ));
    }
    let merges: Vec<(String, String)> = h
        .string_array("tokenizer.ggml.merges")?
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| h.field_err("tokenizer.ggml.merges", &format!("entry {i} `{m}` has no space")))
        })
        .collect::<Result<_, _>>()?;
    // llama.cpp treats a missing `pre` as "default" (with a warning); we do the same.
    let pre_name = h.opt_string("tokenizer.ggml.pre").unwrap_or("default");
    let spec = pretok::spec(pre_name).ok_or_else(|| {
        h.field_err(
            "tokenizer.ggml.pre",
            &format!("unknown pre-tokenizer `{pre_name}` (known: {})", pretok::KNOWN.join(", ")),
        )
    })?;

    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| h.field_err("tokenizer.ggml.merges", &format!("cannot build BPE: {e}")))?;
    let mut tk = Tokenizer::new(bpe);
    let pre = pretok::build(&spec).map_err(|e| h.field_err("tokenizer.ggml.pre", &e))?;
    tk.with_pre_tokenizer(Some(pre));
    tk.with_decoder(Some(ByteLevelDecoder::default()));

    let control_ids = add_marked_tokens(h, &mut tk, &tokens, &types)?;

    // llama.cpp's default for byte-level BPE vocabularies is not to add BOS unless the file says so.
    let add_bos = h.opt_bool("tokenizer.ggml.add_bos_token").unwrap_or(false);
    finish(h, tk, tokens.len(), add_bos, &control_ids)
}

/// Marks the file's control and unknown tokens as special and its user-defined tokens as added tokens,
/// and returns the control ids. The tokens are already in the vocabulary, so adding them only marks them
/// for whole-text matching; the ids stay those of the GGUF file.
pub(super) fn add_marked_tokens(
    h: &GgufHeader,
    tk: &mut Tokenizer,
    tokens: &[&str],
    types: &[i64],
) -> Result<Vec<u32>, EngineError> {
    let mut special = Vec::new();
    let mut user = Vec::new();
    let mut control_ids = Vec::new();
    for (i, (text, ty)) in tokens.iter().zip(types).enumerate() {
        match *ty {
            TYPE_CONTROL | TYPE_UNKNOWN => {
                special.push(AddedToken::from(text.to_string(), true).normalized(false));
                control_ids.push(i as u32);
            }
            TYPE_USER_DEFINED => user.push(AddedToken::from(text.to_string(), false).normalized(false)),
            _ => {}
        }
    }
    tk.add_special_tokens(special).map_err(|e| h.field_err("tokenizer.ggml.tokens", &e.to_string()))?;
    tk.add_tokens(user).map_err(|e| h.field_err("tokenizer.ggml.tokens", &e.to_string()))?;
    Ok(control_ids)
}

/// Reads the special ids (bos, eos, end-of-turn) and assembles the [`Tok`].
pub(super) fn finish(
    h: &GgufHeader,
    tk: Tokenizer,
    n_tokens: usize,
    add_bos: bool,
    control_ids: &[u32],
) -> Result<Tok, EngineError> {
    let id = |key: &str| -> Result<Option<u32>, EngineError> {
        match h.opt_u64(key) {
            Some(v) if (v as usize) < n_tokens => Ok(Some(v as u32)),
            Some(v) => Err(h.field_err(key, &format!("id {v} is outside the vocabulary of {n_tokens}"))),
            None => Ok(None),
        }
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    let mut tok = Tok::assemble(tk, bos, eos, add_bos, control_ids);
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let Some(extra) = id(key)? {
            if !tok.eos_ids.contains(&extra) {
                tok.eos_ids.push(extra);
            }
        }
    }
    Ok(tok)
}
