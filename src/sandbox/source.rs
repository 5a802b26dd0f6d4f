//! Reading a Python source file the way `python3 prog.py` does: a UTF-8 byte-order mark is
//! dropped, and a PEP 263 coding declaration on the first two lines picks the encoding. The sandbox
//! takes programs as text, so the bytes must be decoded here: a BOM left in is a SyntaxError
//! (`invalid non-printable character U+FEFF`) that Python itself would never raise.

use std::path::{Path, PathBuf};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a source file could not be read as Python reads it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("{}: {cause}", .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// The bytes are not valid in the file's encoding.
    #[error("{}: {problem}", .path.display())]
    Decode { path: PathBuf, problem: String },
}

/// Reads `path` as Python source text.
pub fn read_python_source(path: &Path) -> Result<String, SourceError> {
    let bytes = std::fs::read(path).map_err(|cause| SourceError::Io { path: path.to_path_buf(), cause })?;
    decode_python_source(&bytes).map_err(|problem| SourceError::Decode { path: path.to_path_buf(), problem })
}

/// Decodes Python source bytes; the error names the byte offset and line at fault.
pub fn decode_python_source(bytes: &[u8]) -> Result<String, String> {
    let (skip, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    let declared = coding_cookie(body);
    let at = |offset: usize| {
        let offset = skip + offset;
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("byte {offset} (line {line})")
    };
    let Some((name, cookie_line)) = declared else {
        return std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|e| format!("not valid UTF-8 at {} and no PEP 263 coding declaration", at(e.valid_up_to())));
    };
    match normal_encoding(&name) {
        Some(Encoding::Utf8) => std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|e| format!("not valid UTF-8 (declared on line {cookie_line}) at {}", at(e.valid_up_to()))),
        _ if skip > 0 => Err(format!("a UTF-8 byte-order mark with coding `{name}` declared on line {cookie_line}")),
        // Latin-1 maps every byte to the code point of the same value.
        Some(Encoding::Latin1) => Ok(body.iter().map(|&b| char::from(b)).collect()),
        Some(Encoding::Ascii) => match body.iter().position(|b| !b.is_ascii()) {
            Some(i) => Err(format!("not ASCII (declared on line {cookie_line}) at {}", at(i))),
            None => Ok(body.iter().map(|&b| char::from(b)).collect()),
        },
        None => Err(format!(
            "coding `{name}` (declared on line {cookie_line}) is not one unitcoder decodes \
             (UTF-8, Latin-1, ASCII); save the file as UTF-8"
        )),
    }
}

enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

/// The encoding Python would use for a declared name (its tokenizer's `_get_normal_name`, plus the
/// codec aliases of the three encodings decoded here).
fn normal_encoding(name: &str) -> Option<Encoding> {
    let n = name.to_ascii_lowercase().replace('_', "-");
    let is = |names: &[&str]| names.iter().any(|m| n == *m || n.starts_with(&format!("{m}-")));
    if is(&["utf-8", "utf8", "u8", "utf"]) {
        Some(Encoding::Utf8)
    } else if is(&["latin-1", "latin1", "iso-8859-1", "iso8859-1", "iso-latin-1", "l1", "cp819", "8859", "latin"]) {
        Some(Encoding::Latin1)
    } else if is(&["ascii", "us-ascii", "646"]) {
        Some(Encoding::Ascii)
    } else {
        None
    }
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
    let at = comment.windows(7).position(|w| w == b"coding:" || w == b"coding=")?;
    let rest = comment[at + 7..].trim_ascii_start();
    let name: Vec<u8> =
        rest.iter().copied().take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')).collect();
    (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped() {
        assert_eq!(decode_python_source(b"\xef\xbb\xbfx = 1\n").unwrap(), "x = 1\n");
    }

    #[test]
    fn a_latin1_cookie_decodes_latin1_on_line_one_or_two() {
        let src = b"# -*- coding: latin-1 -*-\ns = '\xe9'\n";
        assert_eq!(decode_python_source(src).unwrap(), "# -*- coding: latin-1 -*-\ns = '\u{e9}'\n");
        let src = b"#!/usr/bin/env python3\n# vim: set fileencoding=iso-8859-1 :\ns = '\xe9'\n";
        assert!(decode_python_source(src).unwrap().ends_with("s = '\u{e9}'\n"));
        // Not a comment on line 1: a cookie on line 2 does not count (Python ignores it too).
        let src = b"x = 1\n# coding: latin-1\ns = '\xe9'\n";
        assert!(decode_python_source(src).unwrap_err().contains("byte 29 (line 3)"));
    }

    #[test]
    fn undecodable_bytes_are_named_by_offset_and_line() {
        let err = decode_python_source(b"x = 1\ns = '\xe9'\n").unwrap_err();
        assert!(err.contains("byte 11 (line 2)") && err.contains("no PEP 263"), "{err}");
        let err = decode_python_source(b"# coding: ascii\ns = '\xe9'\n").unwrap_err();
        assert!(err.contains("not ASCII") && err.contains("line 2"), "{err}");
        let err = decode_python_source(b"# coding: shift_jis\nx = 1\n").unwrap_err();
        assert!(err.contains("shift_jis") && err.contains("save the file as UTF-8"), "{err}");
    }
}
