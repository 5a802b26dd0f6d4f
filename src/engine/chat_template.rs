//! Chat templates: the Jinja template a model ships (GGUF `tokenizer.chat_template`, or an HF
//! checkpoint's `chat_template.jinja` / `tokenizer_config.json` `chat_template`), rendered with minijinja
//! the way HF `apply_chat_template` renders it: `trim_blocks` and `lstrip_blocks` on, the variables
//! `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, the function `raise_exception`, and
//! Python string/dict methods (`.strip()`, `.startswith()`, `.items()`...) through minijinja-contrib's
//! pycompat layer, since HF templates are written against Python's Jinja2.

use crate::engine::gguf_info::GgufHeader;
use crate::engine::tokenizer::{read_json, Tok};
use crate::engine::{EngineError, Message};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use std::path::Path;

const NAME: &str = "chat";

/// A compiled chat template with the token strings it needs.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    /// Where the template came from, for error messages.
    origin: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .finish()
    }
}

/// HF's `raise_exception(message)`: templates call it to reject a conversation (e.g. roles that do not
/// alternate); it becomes a render error carrying the message.
fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    /// Compiles `source`, taking `bos_token`/`eos_token` from `tok`; `origin` names it in errors.
    pub fn new(source: &str, tok: &Tok, origin: &str) -> Result<ChatTemplate, EngineError> {
        Self::with_tokens(
            source,
            tok.bos_token().unwrap_or(""),
            tok.eos_token().unwrap_or(""),
            origin,
        )
    }

    /// Compiles `source` with explicit token strings.
    pub fn with_tokens(
        source: &str,
        bos: &str,
        eos: &str,
        origin: &str,
    ) -> Result<ChatTemplate, EngineError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| EngineError::Model {
                path: origin.to_string(),
                problem: format!("chat template does not compile: {e:#}"),
            })?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos.to_string(),
            eos_token: eos.to_string(),
            origin: origin.to_string(),
        })
    }

    /// The template in a GGUF file's metadata, if it has one.
    pub fn from_gguf(header: &GgufHeader, tok: &Tok) -> Result<Option<ChatTemplate>, EngineError> {
        match header.opt_string("tokenizer.chat_template") {
            Some(src) => {
                let origin = format!(
                    "{} metadata `tokenizer.chat_template`",
                    header.path.display()
                );
                Self::new(src, tok, &origin).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The template of an HF checkpoint directory: `chat_template.jinja`, else `chat_template.json`,
    /// else `tokenizer_config.json` `chat_template` (a string, or a list of `{name, template}` from which
    /// `default` is taken).
    pub fn from_hf_dir(dir: &Path, tok: &Tok) -> Result<Option<ChatTemplate>, EngineError> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let src = std::fs::read_to_string(&jinja).map_err(|e| EngineError::Model {
                path: jinja.display().to_string(),
                problem: e.to_string(),
            })?;
            return Self::new(&src, tok, &jinja.display().to_string()).map(Some);
        }
        for file in ["chat_template.json", "tokenizer_config.json"] {
            let path = dir.join(file);
            let Some(json) = read_json(&path)? else {
                continue;
            };
            let origin = format!("{} field `chat_template`", path.display());
            match json.get("chat_template") {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(s)) => return Self::new(s, tok, &origin).map(Some),
                Some(serde_json::Value::Array(list)) => {
                    let named = |n: &str| {
                        list.iter()
                            .find(|t| t.get("name").and_then(|v| v.as_str()) == Some(n))?
                            .get("template")?
                            .as_str()
                    };
                    let src = named("default").ok_or_else(|| EngineError::Model {
                        path: origin.clone(),
                        problem: "a list of templates without one named `default`".to_string(),
                    })?;
                    return Self::new(src, tok, &origin).map(Some);
                }
                Some(_) => {
                    return Err(EngineError::Model {
                        path: origin,
                        problem: "must be a string or a list of {name, template}".to_string(),
                    })
                }
            }
        }
        Ok(None)
    }

    /// Renders `messages`, appending the assistant turn's opening when `add_generation_prompt` is set.
    /// A template that rejects the conversation (`raise_exception`) gives a request error with its message.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| EngineError::Other(format!("{}: {e}", self.origin)))?;
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        };
        tmpl.render(ctx).map_err(|e| {
            let detail = match e.kind() {
                ErrorKind::InvalidOperation => e.detail().unwrap_or_default().to_string(),
                _ => format!("{e:#}"),
            };
            EngineError::Request(format!("chat template ({}): {detail}", self.origin))
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str) -> ChatTemplate {
        ChatTemplate::with_tokens(src, "<s>", "</s>", "test").unwrap()
    }

    #[test]
    fn hf_style_template_with_loop_first_strip_and_generation_prompt() {
        let tpl = t(
            "{{ bos_token }}{% for m in messages %}{% if loop.first and m['role'] != 'system' %}[default]\n{% endif %}\
                     <{{ m.role }}>{{ m['content'].strip() }}{{ eos_token }}\n{% endfor %}\
                     {% if add_generation_prompt %}<assistant>{% endif %}",
        );
        let msgs = [Message::new("user", "  hi there \n")];
        assert_eq!(
            tpl.render(&msgs, true).unwrap(),
            "<s>[default]\n<user>hi there</s>\n<assistant>"
        );
        assert_eq!(
            tpl.render(&msgs, false).unwrap(),
            "<s>[default]\n<user>hi there</s>\n"
        );
    }

    #[test]
    fn raise_exception_becomes_a_request_error_with_its_message() {
        let tpl = t("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}\
                     {{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}{{ m.content }}{% endfor %}");
        let ok = [Message::new("user", "a"), Message::new("assistant", "b")];
        assert_eq!(tpl.render(&ok, false).unwrap(), "ab");
        let bad = [Message::new("assistant", "b")];
        let e = tpl.render(&bad, false).unwrap_err();
        assert!(matches!(e, EngineError::Request(_)));
        assert!(
            e.to_string().contains("Conversation roles must alternate"),
            "{e}"
        );
    }

    #[test]
    fn python_string_methods_and_absent_tools_work() {
        let tpl = t("{% if tools %}TOOLS{% endif %}{% for m in messages %}{% if m.content.startswith('x') %}\
                     {{ m.content.upper() }}|{{ m.content.split(',') | join(' ') }}{% endif %}{% endfor %}");
        assert_eq!(
            tpl.render(&[Message::new("user", "xa,b")], false).unwrap(),
            "XA,B|xa b"
        );
    }

    #[test]
    fn a_template_that_does_not_compile_is_an_error_naming_its_origin() {
        let e = ChatTemplate::with_tokens("{% for %}", "", "", "card.toml field `chat_template`")
            .unwrap_err();
        assert!(e.to_string().contains("card.toml"), "{e}");
    }
}
