//! SentencePiece-style vocabularies (`tokenizer.ggml.model = llama`: Llama 2, CodeLlama, Mistral), built
//! to tokenize as llama.cpp does. llama.cpp merges adjacent symbols greedily by the score of the merged
//! token, falling back to `<0xXX>` byte tokens; that is HF BPE with one merge for every way a token splits
//! into two vocabulary tokens, ranked by the merged token's score, plus byte fallback. Text gets a leading
//! `▁` (when `add_space_prefix`, llama.cpp's default) at the start and after every special token, and
//! spaces become `▁`: HF's normalizer runs per segment between added tokens, which gives exactly that.

use super::Tok;
use crate::engine::gguf_info::GgufHeader;
use crate::engine::EngineError;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

const TYPE_NORMAL: i64 = 1;

/// Builds the SentencePiece-style tokenizer described by `h`.
pub fn build(h: &GgufHeader) -> Result<Tok, EngineError> {
    let tokens = h.string_array("tokenizer.ggml.tokens")?;
    let scores = h.float_array("tokenizer.ggml.scores")?;
    let types = h.int_array("tokenizer.ggml.token_type")?;
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        return Err(h.field_err(
            "tokenizer.ggml.scores",
            &format!("{} scores and {} types for {} tokens", scores.len(), types.len(), tokens.len()),
        ));
    }
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges(&tokens, &scores, &types))
        .byte_fallback(true)
        .fuse_unk(true)
        .unk_token(
            h.opt_u64("tokenizer.ggml.unknown_token_id")
                .and_then(|i| tokens.get(i as usize))
                .unwrap_or(&"<unk>")
                .to_string(),
        )
        .build()
        .map_err(|e| h.field_err("tokenizer.ggml.tokens", &format!("cannot build the vocabulary: {e}")))?;
    let mut tk = Tokenizer::new(bpe);
    let space = |e: tokenizers::Error| h.field_err("tokenizer.ggml.model", &e.to_string());
    let mut norm: Vec<NormalizerWrapper> = Vec::new();
    if h.opt_bool("tokenizer.ggml.add_space_prefix").unwrap_or(true) {
        norm.push(Prepend::new("▁".to_string()).into());
    }
    norm.push(Replace::new(" ", "▁").map_err(space)?.into());
    tk.with_normalizer(Some(NormalizerSequence::new(norm))).map_err(space)?;
    let dec: Vec<DecoderWrapper> = vec![
        Replace::new("▁", " ").map_err(space)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
        Strip::new(' ', 1, 0).into(),
    ];
    tk.with_decoder(Some(DecoderSequence::new(dec)));

    let control_ids = super::gguf::add_marked_tokens(h, &mut tk, &tokens, &types)?;
    // SentencePiece models add BOS unless the file says otherwise (llama.cpp's default for this type).
    let add_bos = h.opt_bool("tokenizer.ggml.add_bos_token").unwrap_or(true);
    super::gguf::finish(h, tk, tokens.len(), add_bos, &control_ids)
}

/// Every split of a normal token into two vocabulary tokens, most valuable merged token first.
fn merges(tokens: &[&str], scores: &[f32], types: &[i64]) -> Vec<(String, String)> {
    let index: std::collections::HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut ranked: Vec<(f32, usize, usize, String, String)> = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        if types[id] != TYPE_NORMAL {
            continue;
        }
        for (cut, _) in tok.char_indices().skip(1) {
            let (l, r) = tok.split_at(cut);
            if let (Some(&li), Some(&ri)) = (index.get(l), index.get(r)) {
                ranked.push((scores[id], li, ri, l.to_string(), r.to_string()));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().map(|(_, _, _, l, r)| (l, r)).collect()
}
