//! Chat templates: the Jinja template a model ships (GGUF `tokenizer.chat_template`, or an HF
//! checkpoint's `chat_template.jinja` / `tokenizer_config.json` `chat_template`), rendered with minijinja
//! the way HF `apply_chat_template` renders it: `trim_blocks` and `lstrip_blocks` on, loop controls, the
//! variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token` and `tools`/`documents` (none
//! unless given), the functions `raise_exception` and `strftime_now`, HF's non-escaping `tojson` (Python
//! `json.dumps` layout, see [`crate::engine::pyjson`]), and Python string/dict methods (`.strip()`,
//! `.items()`...) through minijinja-contrib's pycompat layer, since HF templates are written against
//! Python's Jinja2. `tests/it/chat_templates.rs` checks real templates byte for byte against transformers.

use crate::engine::gguf_info::GgufHeader;
use crate::engine::pyjson::{self, DumpOptions};
use crate::engine::tokenizer::{read_json, Tok};
use crate::engine::{EngineError, Message};
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, Value};
use std::collections::BTreeMap;
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
        f.debug_struct("ChatTemplate").field("origin", &self.origin).finish()
    }
}

/// HF's `raise_exception(message)`: templates call it to reject a conversation (e.g. roles that do not
/// alternate); it becomes a render error carrying the message.
fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// HF's `strftime_now(format)` (Llama 3.x templates put today's date in the system prompt), in UTC (HF
/// uses the machine's local time), for the directives those templates use: `%d %m %Y %y %b %B %H %M %S %%`.
/// `fixed` pins the clock, for reproducible prompts and tests.
fn strftime_now(fixed: Option<u64>) -> impl Fn(String) -> Result<Value, Error> + Send + Sync + 'static {
    move |format: String| {
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs());
        let secs = fixed.unwrap_or_else(|| now().unwrap_or(0));
        strftime(secs, &format).map(Value::from)
    }
}

/// HF's `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`
/// with those keyword arguments (Jinja's own `tojson` HTML-escapes and uses other separators).
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let separators = match kwargs.get::<Option<Vec<String>>>("separators")? {
        None => None,
        Some(v) if v.len() == 2 => Some((v[0].clone(), v[1].clone())),
        Some(_) => return Err(Error::new(ErrorKind::InvalidOperation, "tojson: separators must be two strings")),
    };
    let options = DumpOptions {
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        indent: kwargs.get::<Option<usize>>("indent")?,
        separators,
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    pyjson::dumps(value, &options).map(Value::from)
}

fn strftime(unix_secs: u64, format: &str) -> Result<String, Error> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (year, month, day) = crate::calendar::civil_date(unix_secs);
    let sod = unix_secs % 86_400;
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let name = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('H') => out.push_str(&format!("{:02}", sod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", sod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", sod % 60)),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported directive %{}", other.map(String::from).unwrap_or_default()),
                ))
            }
        }
    }
    Ok(out)
}

impl ChatTemplate {
    /// Compiles `source`, taking `bos_token`/`eos_token` from `tok`; `origin` names it in errors.
    pub fn new(source: &str, tok: &Tok, origin: &str) -> Result<ChatTemplate, EngineError> {
        Self::with_tokens(source, tok.bos_token().unwrap_or(""), tok.eos_token().unwrap_or(""), origin)
    }

    /// Compiles `source` with explicit token strings.
    pub fn with_tokens(source: &str, bos: &str, eos: &str, origin: &str) -> Result<ChatTemplate, EngineError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now(None));
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.to_string()).map_err(|e| EngineError::Model {
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
                let origin = format!("{} metadata `tokenizer.chat_template`", header.path.display());
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
            let src = std::fs::read_to_string(&jinja)
                .map_err(|e| EngineError::Model { path: jinja.display().to_string(), problem: e.to_string() })?;
            return Self::new(&src, tok, &jinja.display().to_string()).map(Some);
        }
        for file in ["chat_template.json", "tokenizer_config.json"] {
            let path = dir.join(file);
            let Some(json) = read_json(&path)? else { continue };
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

    /// Pins `strftime_now` to `unix_secs` (UTC), so prompts that show today's date are reproducible.
    pub fn with_fixed_time(mut self, unix_secs: u64) -> ChatTemplate {
        self.env.add_function("strftime_now", strftime_now(Some(unix_secs)));
        self
    }

    /// Renders `messages`, appending the assistant turn's opening when `add_generation_prompt` is set.
    /// A template that rejects the conversation (`raise_exception`) gives a request error with its message.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, EngineError> {
        self.render_values(Value::from_serialize(messages), add_generation_prompt, BTreeMap::new())
    }

    /// Renders messages given as JSON (so they may carry `tool_calls` and other fields HF templates read),
    /// with extra template variables such as `tools`, `date_string`, `builtin_tools` or
    /// `tools_in_user_message`, as `apply_chat_template(messages, tools=..., **kwargs)` takes them.
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, EngineError> {
        let extra = extra.iter().map(|(k, v)| (k.clone(), Value::from_serialize(v))).collect();
        self.render_values(Value::from_serialize(messages), add_generation_prompt, extra)
    }

    fn render_values(
        &self,
        messages: Value,
        add_generation_prompt: bool,
        extra: BTreeMap<String, Value>,
    ) -> Result<String, EngineError> {
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| EngineError::Template { origin: self.origin.clone(), problem: e.to_string() })?;
        // HF passes `tools=None, documents=None` when not given, so `tools is defined` holds in its templates.
        let mut ctx: BTreeMap<String, Value> = BTreeMap::from([
            ("messages".to_string(), messages),
            ("add_generation_prompt".to_string(), Value::from(add_generation_prompt)),
            ("bos_token".to_string(), Value::from(self.bos_token.as_str())),
            ("eos_token".to_string(), Value::from(self.eos_token.as_str())),
            ("tools".to_string(), Value::from(())),
            ("documents".to_string(), Value::from(())),
        ]);
        ctx.extend(extra);
        tmpl.render(Value::from(ctx)).map_err(|e| {
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
        assert_eq!(tpl.render(&msgs, true).unwrap(), "<s>[default]\n<user>hi there</s>\n<assistant>");
        assert_eq!(tpl.render(&msgs, false).unwrap(), "<s>[default]\n<user>hi there</s>\n");
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
        assert!(e.to_string().contains("Conversation roles must alternate"), "{e}");
    }

    #[test]
    fn python_string_methods_and_absent_tools_work() {
        let tpl = t("{% if tools %}TOOLS{% endif %}{% for m in messages %}{% if m.content.startswith('x') %}\
                     {{ m.content.upper() }}|{{ m.content.split(',') | join(' ') }}{% endif %}{% endfor %}");
        assert_eq!(tpl.render(&[Message::new("user", "xa,b")], false).unwrap(), "XA,B|xa b");
    }

    #[test]
    fn strftime_formats_dates_like_python() {
        // 2024-07-26 13:05:09 UTC, and a leap day.
        assert_eq!(strftime(1_721_999_109, "%d %b %Y").unwrap(), "26 Jul 2024");
        assert_eq!(strftime(1_721_999_109, "%Y-%m-%d %H:%M:%S %B %y %%").unwrap(), "2024-07-26 13:05:09 July 24 %");
        assert_eq!(strftime(951_782_400, "%d %m %Y").unwrap(), "29 02 2000");
        assert!(strftime(0, "%Q").is_err());
        let tpl = t("{% if strftime_now is defined %}{{ strftime_now('%Y') | length }}{% endif %}");
        assert_eq!(tpl.render(&[], false).unwrap(), "4");
    }

    #[test]
    fn loop_controls_tools_none_and_hf_tojson_work_as_in_transformers() {
        // HF enables jinja2.ext.loopcontrols and passes tools=None; its tojson neither escapes HTML nor
        // drops the spaces Python's json.dumps puts after separators.
        let tpl = t("{% for m in messages %}{% if m.role == 'stop' %}{% break %}{% endif %}{{ m.content }},\
                     {% endfor %}|{{ tools is defined }}/{{ tools is none }}|{{ {'b': '<&>', 'a': [1, 2.0]} | tojson }}");
        let msgs = [Message::new("user", "a"), Message::new("stop", "b"), Message::new("user", "c")];
        assert_eq!(tpl.render(&msgs, false).unwrap(), r#"a,|True/True|{"b": "<&>", "a": [1, 2.0]}"#);
        let tools = serde_json::json!([{"name": "f"}]);
        let extra = serde_json::Map::from_iter([("tools".to_string(), tools)]);
        let tpl = t("{{ tools | tojson(indent=2) }}{{ date_string is defined }}");
        assert_eq!(
            tpl.render_json(&serde_json::json!([]), false, &extra).unwrap(),
            "[\n  {\n    \"name\": \"f\"\n  }\n]False"
        );
        let bad = t("{{ 1 | tojson(indnet=2) }}").render(&[], false).unwrap_err().to_string();
        assert!(bad.contains("indnet"), "{bad}");
    }

    #[test]
    fn templates_and_tokenizers_can_move_to_the_model_thread() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<ChatTemplate>();
        send_sync::<crate::engine::tokenizer::Tok>();
    }

    #[test]
    fn a_template_that_does_not_compile_is_an_error_naming_its_origin() {
        let e = ChatTemplate::with_tokens("{% for %}", "", "", "card.toml field `chat_template`").unwrap_err();
        assert!(e.to_string().contains("card.toml"), "{e}");
    }
}
