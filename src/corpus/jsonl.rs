//! JSON Lines corpora (plain, gzip or zstd): one JSON object per line with a `content` string and
//! optional provenance fields (see [`super::PATH_FIELDS`] and friends).

use super::{CorpusError, CorpusKind, Origin, Position, SourceFile, LICENSE_FIELDS, PATH_FIELDS, REPO_FIELDS};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Streams the entries of one JSONL(.gz/.zst) file.
pub struct JsonlReader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlReader {
    /// Opens `path`, choosing the decompressor from its first bytes (gzip and zstd have magic
    /// numbers), so a compressed file named `.jsonl` (or a plain one named `.gz`) reads as what it is.
    pub fn open(path: &Path) -> Result<Self, CorpusError> {
        let io = |source| CorpusError::Io { path: path.to_path_buf(), cause: source };
        CorpusKind::of(path)?;
        let mut file = BufReader::new(File::open(path).map_err(io)?);
        let head = file.fill_buf().map_err(io)?;
        let raw: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            // MultiGzDecoder: concatenated gzip members are common in dataset dumps.
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(io)?)
        } else {
            Box::new(file)
        };
        Ok(JsonlReader {
            path: path.to_path_buf(),
            lines: Box::new(BufReader::with_capacity(1 << 20, raw)),
            line: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn malformed(&self, message: impl Into<String>) -> CorpusError {
        CorpusError::Malformed { path: self.path.clone(), unit: "line", index: self.line, message: message.into() }
    }

    fn parse(&self, bytes: &[u8]) -> Result<SourceFile, CorpusError> {
        // A UTF-8 byte-order mark before the first line (a file saved by a Windows editor) is not
        // part of its JSON.
        let bytes = if self.line == 1 { bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes) } else { bytes };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            if self.line == 1 && bytes.trim_ascii_start().starts_with(b"[") {
                return self.malformed(
                    "the file is a JSON array, not JSON Lines (one object per line): convert it, e.g. \
                     `jq -c '.[]' FILE > FILE.jsonl`",
                );
            }
            // Without serde's "at line 1", which would name a line within the line.
            self.malformed(crate::json_line::problem(&e))
        })?;
        let map = match value {
            Value::Object(map) => map,
            Value::Array(_) if self.line == 1 => {
                return Err(self.malformed("the file is a JSON array, not JSON Lines (one object per line)"))
            }
            _ => return Err(self.malformed("not a JSON object")),
        };
        let content = match map.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(self.malformed("field `content` is not a string")),
            None => return Err(self.malformed("missing field `content`")),
        };
        let mut file =
            SourceFile::new(content, Origin { file: self.path.clone(), at: Some(Position::Line(self.line)) });
        let mut ignored = Vec::new();
        file.path = first_string(&map, PATH_FIELDS, &mut ignored);
        file.repo = first_string(&map, REPO_FIELDS, &mut ignored);
        file.license = licenses(&map, &mut ignored);
        file.ignored = ignored;
        Ok(file)
    }
}

/// The first of `names` that holds a string; the others present with another value (not null)
/// are noted in `ignored`.
fn first_string(
    map: &serde_json::Map<String, Value>,
    names: &[&str],
    ignored: &mut Vec<(String, String)>,
) -> Option<String> {
    for n in names {
        match map.get(*n) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Null) | None => {}
            Some(other) => ignored.push((n.to_string(), other.to_string())),
        }
    }
    None
}

fn licenses(map: &serde_json::Map<String, Value>, ignored: &mut Vec<(String, String)>) -> Vec<String> {
    for name in LICENSE_FIELDS {
        match map.get(*name) {
            Some(Value::String(s)) => return vec![s.clone()],
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                return items.iter().filter_map(Value::as_str).map(str::to_string).collect();
            }
            Some(Value::Null) | None => {}
            Some(other) => ignored.push((name.to_string(), other.to_string())),
        }
    }
    Vec::new()
}

impl Iterator for JsonlReader {
    type Item = Result<SourceFile, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.lines.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue; // blank lines (often a trailing one) are not entries
                    }
                    return Some(self.parse(&self.buf));
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(CorpusError::Io { path: self.path.clone(), cause: source }));
                }
            }
        }
        None
    }
}
