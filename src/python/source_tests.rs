//! Tests of [`decode_python_source`], most of them against the `python3` on the PATH: what Python
//! itself makes of the declared names and of every byte of each code page.

use super::*;
use crate::python::codecs::CODECS;

#[test]
fn a_bom_is_dropped() {
    assert_eq!(decode_python_source(b"\xef\xbb\xbfx = 1\n").unwrap(), "x = 1\n");
    let err = decode_python_source(b"\xef\xbb\xbf# coding: latin-1\nx = 1\n").unwrap_err();
    assert!(err.to_string().contains("byte-order mark with coding `latin-1` declared on line 1"), "{err}");
}

#[test]
fn a_latin1_cookie_decodes_latin1_on_line_one_or_two() {
    let src = b"# -*- coding: latin-1 -*-\ns = '\xe9\x80'\n";
    assert_eq!(decode_python_source(src).unwrap(), "# -*- coding: latin-1 -*-\ns = '\u{e9}\u{80}'\n");
    let src = b"#!/usr/bin/env python3\n# vim: set fileencoding=iso-8859-1 :\ns = '\xe9'\n";
    assert!(decode_python_source(src).unwrap().ends_with("s = '\u{e9}'\n"));
    // Not a comment on line 1: a cookie on line 2 does not count (Python ignores it too).
    let src = b"x = 1\n# coding: latin-1\ns = '\xe9'\n";
    let err = decode_python_source(src).unwrap_err();
    assert!(err.to_string().contains("byte 29 (line 3)") && err.offset == Some(29), "{err}");
}

#[test]
fn other_code_pages_decode_and_bad_bytes_or_names_are_named() {
    let koi8 = b"# vim: set fileencoding=koi8-r :\ns = '\xf0\xd2\xc9\xd7\xc5\xd4'\n";
    assert!(decode_python_source(koi8).unwrap().ends_with("s = 'Привет'\n"));
    let sjis = b"# -*- coding: shift_jis -*-\ns = '\x93\xfa\x96\x7b'\n";
    assert!(decode_python_source(sjis).unwrap().ends_with("s = '日本'\n"));
    let cp1252 = b"# coding=cp1252\ns = '\x80'\n";
    assert!(decode_python_source(cp1252).unwrap().ends_with("s = '\u{20ac}'\n"));
    // 0x81 is undefined in Python's cp1252 (WHATWG's windows-1252 maps it to U+0081).
    let err = decode_python_source(b"# coding=cp1252\ns = '\x81'\n").unwrap_err().to_string();
    assert!(err.contains("not valid `cp1252` (declared on line 1) at byte 21 (line 2)"), "{err}");
    let err = decode_python_source(b"# coding: euc-jp\ns = '\xa4'\n").unwrap_err().to_string();
    assert!(err.contains("at byte 22 (line 2)"), "{err}");
    let err = decode_python_source(b"x = 1\ns = '\xe9'\n").unwrap_err().to_string();
    assert!(err.contains("byte 11 (line 2)") && err.contains("no PEP 263"), "{err}");
    let err = decode_python_source(b"# coding: ascii\ns = '\xe9'\n").unwrap_err().to_string();
    assert!(err.contains("`ascii`") && err.contains("line 2"), "{err}");
    for name in ["klingon", "utf-16", "cp-1252", "utf8-foo"] {
        let src = format!("#!/usr/bin/python\n# coding: {name}\nx = 1\n");
        let err = decode_python_source(src.as_bytes()).unwrap_err();
        assert!(err.offset.is_none() && err.to_string().contains(&format!("`{name}` (declared on line 2)")), "{err}");
    }
}

/// Runs `script` in `python3` with `input` on stdin and returns its stdout as JSON.
fn python(script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .args(["-I", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn declared_names_resolve_as_python_resolves_them() {
    // For each name: the codec Python's tokenizer settles on, or None when it refuses the file.
    let script = r##"
import codecs, io, json, sys, tokenize
out = {}
for name in json.load(sys.stdin):
    src = b"# coding: " + name.encode() + b"\nx = 1\n"
    try:
        compile(src, "f", "exec")
        enc = tokenize.detect_encoding(io.BytesIO(src).readline)[0]
        out[name] = codecs.lookup(enc).name
    except (SyntaxError, LookupError):
        out[name] = None
json.dump(out, sys.stdout)
"##;
    let mut names: Vec<String> =
        CODECS.iter().flat_map(|(_, aliases, _)| aliases.iter().map(|a| a.to_string())).collect();
    for extra in [
        "Latin-1",
        "latin-1-unix",
        "ISO-8859-1",
        "iso-latin-1",
        "UTF-8",
        "utf-8-sig",
        "utf8-foo",
        "utf-16",
        "utf_32",
        "KOI8-R",
        "koi8_u",
        "ISO-8859-15",
        "iso8859-9",
        "Shift_JIS",
        "shift-jis",
        "EUC-JP",
        "cp-1252",
        "WINDOWS-1251",
        "GBK",
        "gb2312",
        "big5",
        "ansi_x3.4_1968",
        "iso_646.irv_1991",
        "cp437",
        "mbcs",
        "rot13",
        "hex",
        "klingon",
        "iso-8859-1-windows-3.1-latin-1",
        "l1",
        "..latin1..",
        "latin__1",
    ] {
        names.push(extra.to_string());
    }
    let theirs = python(script, &serde_json::json!(names));
    for name in &names {
        let ours = lookup(name).map(|(canonical, _)| canonical);
        let python = theirs[name].as_str();
        // Python knows codecs we do not decode (cp437, koi8_u, mbcs, ...): those are refused with
        // a reason; everything we accept, Python accepts as the same codec.
        assert!(ours.is_none() || ours == python, "{name}: ours {ours:?}, Python's {python:?}");
    }
    for known in ["Latin-1", "KOI8-R", "Shift_JIS", "cp1252", "utf-8-sig", "ISO-8859-15", "l1", "latin__1"] {
        assert!(lookup(known).is_some(), "{known}");
    }
}

#[test]
fn every_byte_of_each_single_byte_code_page_decodes_as_python_decodes_it() {
    let single: Vec<&str> = CODECS
        .iter()
        .filter(|(_, _, c)| matches!(c, Codec::Single(..) | Codec::Latin1 | Codec::Ascii))
        .map(|(name, _, _)| *name)
        .collect();
    let script = r#"
import json, sys
out = {}
for codec in json.load(sys.stdin):
    row = []
    for b in range(256):
        try:
            row.append(ord(bytes([b]).decode(codec)))
        except UnicodeDecodeError:
            row.append(None)
    out[codec] = row
json.dump(out, sys.stdout)
"#;
    let theirs = python(script, &serde_json::json!(single));
    let mut differ = Vec::new();
    for name in single {
        let (_, codec) = lookup(name).expect("known");
        for b in 0..=255u8 {
            let ours = decode(codec, &[b]).ok().map(|s| s.chars().next().map_or(0, u32::from));
            let python = theirs[name][usize::from(b)].as_u64().map(|c| c as u32);
            if ours != python {
                differ.push(format!("{name} {b:#04x}: ours {ours:?}, Python's {python:?}"));
            }
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

#[test]
fn every_character_of_each_multi_byte_code_page_decodes_as_python_decodes_it() {
    // Every byte, two-byte sequence (and three-byte one after EUC-JP's 0x8F) that Python's codec decodes
    // decodes the same here; the WHATWG decoders accept more (the Windows extensions), which only
    // reads files that Python would refuse.
    let multi: Vec<&str> =
        CODECS.iter().filter(|(_, _, c)| matches!(c, Codec::Multi(_))).map(|(name, _, _)| *name).collect();
    let script = r#"
import json, sys
out = {}
for codec in json.load(sys.stdin):
    seqs = [bytes([a]) for a in range(256)] + [bytes([a, b]) for a in range(0x81, 0xff) for b in range(0x40, 0xff)]
    if codec == "euc_jp":
        seqs += [bytes([0x8f, a, b]) for a in range(0xa1, 0xff) for b in range(0xa1, 0xff)]
    row = []
    for s in seqs:
        try:
            row.append([s.hex(), s.decode(codec)])
        except UnicodeDecodeError:
            pass
    out[codec] = row
json.dump(out, sys.stdout)
"#;
    let theirs = python(script, &serde_json::json!(multi));
    let mut differ = Vec::new();
    for name in multi {
        let (_, codec) = lookup(name).expect("known");
        let rows = theirs[name].as_array().expect("rows");
        assert!(rows.len() > 5000, "{name}: {} characters", rows.len());
        for row in rows {
            let hex = row[0].as_str().expect("hex");
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
            let ours = decode(codec, &bytes).ok();
            if ours.as_deref() != row[1].as_str() {
                differ.push(format!("{name} {hex}: ours {ours:?}, Python's {}", row[1]));
            }
        }
    }
    assert!(differ.is_empty(), "{} differ: {differ:#?}", differ.len());
}
