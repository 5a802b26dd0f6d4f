//! Loads a [`Tok`] from an HF checkpoint directory: `tokenizer.json` holds the tokenizer itself;
//! `tokenizer_config.json` says whether to add BOS and names the bos/eos tokens; `generation_config.json`
//! may list further end-of-generation ids.

use super::Tok;
use crate::engine::EngineError;
use serde_json::Value;
use std::path::Path;
use tokenizers::Tokenizer;

fn model_err(path: &Path, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: problem.into() }
}

/// Reads an optional JSON file; absent is `None`, unreadable or invalid is an error naming it.
pub(crate) fn read_json(path: &Path) -> Result<Option<Value>, EngineError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| model_err(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map(Some).map_err(|e| model_err(path, format!("invalid JSON: {e}")))
}

/// A token named in `tokenizer_config.json`: either a string or an object with `content`.
pub(crate) fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Loads the tokenizer files of `dir`; `tokenizer.json` is required.
pub fn load(dir: &Path) -> Result<Tok, EngineError> {
    let tj = dir.join("tokenizer.json");
    if !tj.exists() {
        return Err(model_err(&tj, "missing: an HF checkpoint directory needs tokenizer.json"));
    }
    let tokenizer = Tokenizer::from_file(&tj).map_err(|e| model_err(&tj, format!("cannot load: {e}")))?;
    let config_path = dir.join("tokenizer_config.json");
    let config = read_json(&config_path)?.unwrap_or(Value::Null);
    let id_of = |field: &str| -> Result<Option<u32>, EngineError> {
        match token_text(config.get(field)) {
            None => Ok(None),
            Some(t) => tokenizer
                .token_to_id(&t)
                .map(Some)
                .ok_or_else(|| model_err(&config_path, format!("`{field}` is `{t}`, which is not in tokenizer.json"))),
        }
    };
    let bos = id_of("bos_token")?;
    let eos = id_of("eos_token")?;
    // Without an explicit `add_bos_token`, the tokenizer.json post-processor decides: see whether it
    // puts BOS in front of an empty input.
    let add_bos = match config.get("add_bos_token").and_then(Value::as_bool) {
        Some(b) => b,
        None => match (bos, tokenizer.encode("", true)) {
            (Some(b), Ok(enc)) => enc.get_ids().first() == Some(&b),
            _ => false,
        },
    };
    let special_ids: Vec<u32> =
        tokenizer.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(id, _)| *id).collect();
    let mut tok = Tok::assemble(tokenizer, bos, eos, add_bos, &special_ids);
    let gen_path = dir.join("generation_config.json");
    if let Some(gen) = read_json(&gen_path)? {
        let ids: Vec<u64> = match gen.get("eos_token_id") {
            Some(Value::Number(n)) => n.as_u64().into_iter().collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).collect(),
            _ => Vec::new(),
        };
        for id in ids {
            let id = u32::try_from(id).map_err(|_| model_err(&gen_path, format!("eos_token_id {id} too large")))?;
            if !tok.eos_ids.contains(&id) {
                tok.eos_ids.push(id);
            }
        }
    }
    Ok(tok)
}
