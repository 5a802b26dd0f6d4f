//! The engine's [`TextCodec`] implementations: how prompts become token ids and generated ids become
//! text. [`TokCodec`] is the real one: the model's tokenizer plus its chat template. [`TokenizerCodec`]
//! wraps a bare `tokenizer.json` with explicit stop tokens for raw-text prompts (tests with tiny
//! checkpoints use it).

use crate::engine::batch::Detokenizer;
use crate::engine::chat_template::ChatTemplate;
use crate::engine::engine::TextCodec;
use crate::engine::tokenizer::Tok;
use crate::engine::{EngineError, Message, Prompt};
use std::path::Path;

/// A `tokenizer.json` tokenizer with explicit stop tokens and no chat template.
pub struct TokenizerCodec {
    tokenizer: tokenizers::Tokenizer,
    stop_ids: Vec<u32>,
}

impl TokenizerCodec {
    /// Reads `tokenizer.json` from `path`; `stop_tokens` are token strings that end a sample.
    pub fn from_file(path: &Path, stop_tokens: &[&str]) -> Result<Self, EngineError> {
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| EngineError::Model { path: path.display().to_string(), problem: e.to_string() })?;
        let stop_ids = stop_tokens.iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        Ok(TokenizerCodec { tokenizer, stop_ids })
    }
}

impl Detokenizer for TokenizerCodec {
    fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tokenizer.decode(ids, true).map_err(|e| EngineError::Tokenizer { op: "decode", problem: e.to_string() })
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
                .map_err(|e| EngineError::Tokenizer { op: "encode", problem: e.to_string() })?
                .get_ids()
                .to_vec()),
            Prompt::Chat(_) => Err(EngineError::Request("this tokenizer has no chat template".into())),
        }
    }

    fn has_chat_template(&self) -> bool {
        false
    }
}

/// Renders chat messages into prompt text (with the generation prompt appended).
pub trait ChatRenderer: Send + Sync {
    /// The prompt text for `messages`.
    fn render(&self, messages: &[Message]) -> Result<String, EngineError>;
}

impl ChatRenderer for ChatTemplate {
    fn render(&self, messages: &[Message]) -> Result<String, EngineError> {
        ChatTemplate::render(self, messages, true)
    }
}

/// A chat template that could not be built (it does not compile, or its file is bad): the model
/// loads anyway, and rendering a chat prompt returns the error, naming the template's origin.
pub struct BrokenTemplate {
    /// Where the template came from.
    pub path: String,
    /// Why it cannot be used.
    pub problem: String,
}

impl ChatRenderer for BrokenTemplate {
    fn render(&self, _messages: &[Message]) -> Result<String, EngineError> {
        Err(EngineError::Model { path: self.path.clone(), problem: self.problem.clone() })
    }
}

/// The model's own tokenizer ([`Tok`]: GGUF metadata or `tokenizer.json`) and chat template.
pub struct TokCodec {
    tok: Tok,
    chat: Option<Box<dyn ChatRenderer>>,
}

impl TokCodec {
    /// A codec over `tok`, rendering chat prompts with `chat` when the model has a template.
    pub fn new(tok: Tok, chat: Option<Box<dyn ChatRenderer>>) -> Self {
        TokCodec { tok, chat }
    }

    /// The tokenizer.
    pub fn tok(&self) -> &Tok {
        &self.tok
    }
}

impl Detokenizer for TokCodec {
    fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tok.decode(ids, true)
    }

    fn is_stop_token(&self, id: u32) -> bool {
        self.tok.is_eos(id)
    }
}

impl TextCodec for TokCodec {
    fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        match prompt {
            // User text never turns into special tokens; a rendered template does.
            Prompt::Text(t) => self.tok.encode_prompt(t, false),
            Prompt::Chat(messages) => {
                let chat =
                    self.chat.as_ref().ok_or_else(|| EngineError::Request("this model has no chat template".into()))?;
                self.tok.encode_prompt(&chat.render(messages)?, true)
            }
        }
    }

    fn has_chat_template(&self) -> bool {
        self.chat.is_some()
    }
}
