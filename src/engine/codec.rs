//! The engine's [`TextCodec`] implementations: how prompts become token ids and generated ids become
//! text. [`TokenizerCodec`] wraps a plain `tokenizers` tokenizer (an HF `tokenizer.json`) for raw-text
//! prompts and is what tests with tiny checkpoints use.

use crate::engine::batch::Detokenizer;
use crate::engine::engine::TextCodec;
use crate::engine::{EngineError, Prompt};
use std::path::Path;

/// A `tokenizer.json` tokenizer with explicit stop tokens and no chat template.
pub struct TokenizerCodec {
    tokenizer: tokenizers::Tokenizer,
    stop_ids: Vec<u32>,
}

impl TokenizerCodec {
    /// Reads `tokenizer.json` from `path`; `stop_tokens` are token strings that end a sample.
    pub fn from_file(path: &Path, stop_tokens: &[&str]) -> Result<Self, EngineError> {
        let tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| EngineError::Model {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        let stop_ids = stop_tokens
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(TokenizerCodec {
            tokenizer,
            stop_ids,
        })
    }
}

impl Detokenizer for TokenizerCodec {
    fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| EngineError::Other(format!("decode: {e}")))
    }

    fn is_stop_token(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }
}

impl TextCodec for TokenizerCodec {
    fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        match prompt {
            Prompt::Text(t) => Ok(self
                .tokenizer
                .encode(t.as_str(), false)
                .map_err(|e| EngineError::Other(format!("encode: {e}")))?
                .get_ids()
                .to_vec()),
            Prompt::Chat(_) => Err(EngineError::Request(
                "this tokenizer has no chat template".into(),
            )),
        }
    }

    fn has_chat_template(&self) -> bool {
        false
    }
}
