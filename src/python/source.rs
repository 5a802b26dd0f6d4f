//! Reading a Python source file the way `python3 prog.py` does: a UTF-8 byte-order mark is
//! dropped, and a PEP 263 coding declaration on the first two lines picks the encoding. Both the
//! sandbox (`unitcoder check`) and the corpus reader (`unitcoder retrieve` on `.py` files) take
//! programs as text, so the bytes are decoded here, once, and the two agree on every file: a BOM
//! left in is a SyntaxError (`invalid non-printable character U+FEFF`) that Python never raises,
//! and a Latin-1 or KOI8-R file that Python runs is not "not UTF-8".
//!
//! The declared name is resolved and decoded as Python would ([`super::codecs`]: the tokenizer's
//! `get_normal_name`, the `encodings` package's aliases, and Python's tables, not the web's, where
//! they differ). Decoded text is plain UTF-8 in memory: a coding line kept in it no longer describes
//! the bytes, which is harmless where the text is compiled as a `str` (the sandbox, `compile()`:
//! Python ignores the declaration then) and must not be written back to a file as is. The retrieve
//! stage keeps only a function and its imports, never the declaration.

use super::codecs::{decode, lookup, Codec};
use std::path::{Path, PathBuf};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a source file could not be read as Python reads it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("{}: {cause}", .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// The bytes are not valid in the file's encoding, or the declared encoding is not one we decode.
    #[error("{}: {problem}", .path.display())]
    Decode { path: PathBuf, problem: DecodeError },
}

/// Why bytes are not Python source text; the message names the byte offset and line at fault, or
/// the line of the declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The byte offset of the first bad byte (`None`: the declaration itself is the problem).
    pub offset: Option<usize>,
    message: String,
}

/// Reads `path` as Python source text.
pub fn read_python_source(path: &Path) -> Result<String, SourceError> {
    let bytes = std::fs::read(path).map_err(|cause| SourceError::Io { path: path.to_path_buf(), cause })?;
    decode_python_source(&bytes).map_err(|problem| SourceError::Decode { path: path.to_path_buf(), problem })
}

/// Decodes Python source bytes as Python would (BOM, PEP 263 declaration, codec).
pub fn decode_python_source(bytes: &[u8]) -> Result<String, DecodeError> {
    let (skip, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    let bad_bytes = |offset: usize, what: String| {
        let offset = skip + offset;
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        DecodeError { offset: Some(offset), message: format!("{what} at byte {offset} (line {line})") }
    };
    let declaration = |message: String| DecodeError { offset: None, message };
    let Some((name, cookie_line)) = coding_cookie(body) else {
        return decode(Codec::Utf8, body)
            .map_err(|at| bad_bytes(at, "not valid UTF-8, and no PEP 263 coding declaration,".into()));
    };
    let Some((_, codec)) = lookup(&name) else {
        return Err(declaration(format!(
            "coding `{name}` (declared on line {cookie_line}) is not one unitcoder decodes: an unknown \
             name, or a rare code page (it reads UTF-8, Latin-1, ASCII, ISO-8859-*, Windows-125x, KOI8-R, \
             CP866, Mac Roman, GBK, GB2312, Shift_JIS, CP932, EUC-JP, EUC-KR, CP949, Big5-HKSCS); save the \
             file as UTF-8"
        )));
    };
    if skip > 0 && !matches!(codec, Codec::Utf8) {
        return Err(declaration(format!(
            "a UTF-8 byte-order mark with coding `{name}` declared on line {cookie_line}"
        )));
    }
    decode(codec, body).map_err(|at| bad_bytes(at, format!("not valid `{name}` (declared on line {cookie_line})")))
}

/// The PEP 263 declaration (`# -*- coding: NAME -*-`, `# vim: set fileencoding=NAME :`) and its
/// line: on line 1, or on line 2 when line 1 is blank or a comment, as Python's tokenizer reads it.
fn coding_cookie(bytes: &[u8]) -> Option<(String, usize)> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let first = lines.next()?;
    if let Some(name) = cookie_in(first) {
        return Some((name, 1));
    }
    let trimmed = first.trim_ascii_start();
    if !(trimmed.is_empty() || trimmed.starts_with(b"#")) {
        return None;
    }
    cookie_in(lines.next()?).map(|name| (name, 2))
}

/// `^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)` on one line.
fn cookie_in(line: &[u8]) -> Option<String> {
    let start = line.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\x0c'))?;
    if line[start] != b'#' {
        return None;
    }
    let comment = &line[start..];
    // The lazy `.*?` takes the first `coding:` or `coding=` that a name follows.
    (0..comment.len().saturating_sub(6)).find_map(|at| {
        let rest = comment[at..].strip_prefix(b"coding:").or_else(|| comment[at..].strip_prefix(b"coding="))?;
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count()..];
        let name: Vec<u8> = rest
            .iter()
            .copied()
            .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .collect();
        (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
    })
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
