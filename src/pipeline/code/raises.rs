//! `Raises` sections that hold. Asked to document a function, a code model lists the exceptions it
//! imagines: in the README's stdlib run, 8 of the 13 accepted docstrings had a `Raises:` section,
//! and half of the entries were false (`b16encode` "raises ValueError if the input is not bytes"
//! where it raises TypeError; `hex_encode` "raises ValueError for non-hexadecimal characters" where
//! it takes any bytes; `Raises: None`). Like a wrong example, a wrong entry teaches a wrong fact.
//!
//! The evidence is what the docstring probe (`examples_probe.py`) sees in the sandbox: the
//! exceptions that leave the function while the record's verified tests and the docstring's
//! examples run, and the exception classes the function's own code raises by name
//! ([`raised_in_code`]). An entry is kept when every exception it names is one of those or a base
//! class of one (`ValueError` holds for a function seen raising `binascii.Error`); every other
//! entry is dropped, and a section left empty goes with its heading. What an entry says about
//! *when* the exception comes is prose and is not checked.
//!
//! Sections are read in the three styles models write: Google (`Raises:` then indented entries
//! `ValueError: if ...`, with or without a leading `- `), NumPy (`Raises` over a `------` rule,
//! entries at the heading's indentation) and Sphinx fields (`:raises ValueError: ...`).

use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use super::{code_without_docs, docstring::docstring_literal, docstring::function, parse, text};

/// How a docstring's `Raises` entries fared (kept + dropped = found).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisesCounts {
    pub found: u32,
    /// Every exception they name was seen raised, or is raised by name in the function's code.
    pub kept: u32,
    pub dropped: u32,
}

/// One exception class seen leaving the function: its `__qualname__` and its base classes', up to
/// `Exception` (as the probe reports them).
pub type Seen = Vec<String>;

/// One entry of a `Raises` section: the docstring lines it spans and the exceptions it names
/// (empty when it names none that can be read, such as `None` or prose).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    lines: std::ops::Range<usize>,
    names: Vec<String>,
}

/// A `Raises` section: its heading lines (none for Sphinx fields) and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    heading: std::ops::Range<usize>,
    entries: Vec<Entry>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_google_heading(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "raises:" | "raise:" | "raises::" | "throws:" | "exceptions:")
}

fn is_numpy_heading(lines: &[String], i: usize) -> bool {
    let rule = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
    matches!(lines[i].trim(), "Raises" | "Raise") && rule.len() >= 3 && rule.chars().all(|c| c == '-')
}

/// The field prefix of a Sphinx `:raises X:` line, when it is one.
fn sphinx_field(line: &str) -> Option<&str> {
    let t = line.trim_start();
    ["raises", "raise", "except", "exception"].iter().find_map(|f| {
        let rest = t.strip_prefix(':')?.strip_prefix(f)?;
        rest.starts_with([' ', ':']).then_some(rest)
    })
}

/// The exception names an entry's first line starts with (`ValueError: ...`, `- TypeError, KeyError:
/// ...`, `` `binascii.Error` if ...``, `ValueError` alone), or none when it starts with anything else
/// (`None: ...`, `If the input ...`).
fn entry_names(first: &str) -> Vec<String> {
    let mut t = first.trim();
    for bullet in ["- ", "* ", "• "] {
        t = t.strip_prefix(bullet).unwrap_or(t).trim_start();
    }
    let mut names = Vec::new();
    let mut rest = t;
    loop {
        rest = rest.trim_start_matches(['`', '(', ' ']);
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
        let name = rest[..len].trim_end_matches('.');
        let last = name.rsplit('.').next().unwrap_or("");
        let word = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && last.starts_with(|c: char| c.is_ascii_uppercase())
            && name != "None";
        if !word {
            return Vec::new();
        }
        names.push(name.to_string());
        rest = rest[len..].trim_start_matches(['`', ')']);
        let after = rest.trim_start();
        let joined = [",", "or ", "and ", "/", "|"].iter().find_map(|j| after.strip_prefix(j));
        match joined {
            Some(next) if !next.trim_start().is_empty() => rest = next,
            _ => break,
        }
    }
    let tail = rest.trim_start();
    let ends = tail.is_empty()
        || tail.starts_with([':', '-', '–', '—', ',', ';'])
        || ["if ", "when ", "on ", "for ", "in case", "is raised", "raised"].iter().any(|w| tail.starts_with(w));
    if ends {
        names
    } else {
        Vec::new()
    }
}

/// The `Raises` sections of a docstring's source lines (line 0 holds the opening quotes, the last
/// line the closing ones), in any of the three styles, in order.
fn sections(lines: &[String]) -> Vec<Section> {
    let mut out = Vec::new();
    let close = lines.len().saturating_sub(1);
    let mut i = 1;
    while i < close {
        let found = section_at(lines, i, close);
        i = found.as_ref().map_or(i + 1, |s| s.entries.last().map_or(s.heading.end, |e| e.lines.end).max(i + 1));
        out.extend(found);
    }
    out
}

/// The `Raises` section whose heading (or first Sphinx field) is line `i`, if one is.
fn section_at(lines: &[String], i: usize, close: usize) -> Option<Section> {
    let line = &lines[i];
    if is_google_heading(line) || is_numpy_heading(lines, i) {
        let numpy = !is_google_heading(line);
        let h = indent(line);
        let start = if numpy { i + 2 } else { i + 1 };
        // Google entries are indented under the heading; NumPy's and those of a model that did
        // not indent stand at the heading's indentation (and end at a blank line).
        let first = (start..close).find(|&j| !blank(&lines[j]));
        let e = first.map(|j| indent(&lines[j])).unwrap_or(h);
        let flat = numpy || e <= h;
        let mut entries: Vec<Entry> = Vec::new();
        let mut j = start;
        while j < close {
            let l = &lines[j];
            if blank(l) {
                let next = (j..close).find(|&k| !blank(&lines[k]));
                let goes_on = !flat && next.is_some_and(|k| indent(&lines[k]) >= e && indent(&lines[k]) > h);
                if !goes_on {
                    break;
                }
                j += 1;
                continue;
            }
            let at = indent(l);
            if at < e || (flat && at == h && !entries.is_empty() && is_numpy_heading(lines, j)) {
                break;
            }
            if at == e || entries.is_empty() {
                entries.push(Entry { lines: j..j + 1, names: entry_names(l) });
            } else if let Some(last) = entries.last_mut() {
                last.lines.end = j + 1;
            }
            j += 1;
        }
        let heading = i..start;
        return Some(Section { heading, entries });
    }
    if sphinx_field(line).is_some() {
        // One field per entry: `:raises ValueError: text`, continued on deeper lines.
        let mut entries = Vec::new();
        let mut j = i;
        while j < close {
            let Some(rest) = sphinx_field(&lines[j]) else { break };
            let names = match rest.trim_start().split_once(':') {
                Some((names, _)) if !names.trim().is_empty() => entry_names(&format!("{}:", names.trim())),
                _ => Vec::new(),
            };
            let h = indent(&lines[j]);
            let mut end = j + 1;
            while end < close && !blank(&lines[end]) && indent(&lines[end]) > h {
                end += 1;
            }
            entries.push(Entry { lines: j..end, names });
            j = end;
        }
        return Some(Section { heading: i..i, entries });
    }
    None
}

/// Whether top-level function `name`'s docstring has a `Raises` section with an entry.
pub fn has_raises(program: &str, name: &str) -> bool {
    docstring_literal(program, name).is_some_and(|(start, end)| {
        sections(&program[start..end].split('\n').map(str::to_string).collect::<Vec<_>>())
            .iter()
            .any(|s| !s.entries.is_empty())
    })
}

/// The exceptions top-level function `name` raises by name in its own code (`raise ValueError(...)`,
/// `raise binascii.Error`), as dotted names, in order, once each. A re-raise (`raise`, `raise e`)
/// names a variable, which the probe finds is not a class.
pub fn raised_in_code(program: &str, name: &str) -> Vec<String> {
    fn walk(n: Node<'_>, src: &str, out: &mut Vec<String>) {
        if n.kind() == "raise_statement" {
            let mut target = n.named_child(0);
            if let Some(call) = target.filter(|t| t.kind() == "call") {
                target = call.child_by_field_name("function");
            }
            if let Some(t) = target.filter(|t| matches!(t.kind(), "identifier" | "attribute")) {
                let dotted: String = text(t, src).chars().filter(|c| !c.is_whitespace()).collect();
                if !out.contains(&dotted) {
                    out.push(dotted);
                }
            }
        }
        let mut c = n.walk();
        for child in n.named_children(&mut c) {
            walk(child, src, out);
        }
    }
    let mut out = Vec::new();
    if let Some(tree) = parse(program) {
        if let Some(def) = function(tree.root_node(), program, name) {
            walk(def, program, &mut out);
        }
    }
    out
}

/// Whether exception `name` (dotted or not) is one of `seen` or a base class of one.
fn holds(name: &str, seen: &[Seen]) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    seen.iter().any(|classes| classes.iter().any(|c| c.rsplit('.').next() == Some(last)))
}

/// `program` with `name`'s `Raises` entries kept where every exception they name was `seen`, and
/// dropped otherwise (all of them when nothing was seen: no evidence, no claim); the heading goes
/// with the last entry. `None` when the docstring cannot be rewritten (no docstring literal, or the
/// rewrite would change more than documentation); the program unchanged, with zero counts, when it
/// has no `Raises` section.
pub fn reconcile_raises(program: &str, name: &str, seen: Option<&[Seen]>) -> Option<(String, RaisesCounts)> {
    let (start, end) = docstring_literal(program, name)?;
    let mut lines: Vec<String> = program[start..end].split('\n').map(str::to_string).collect();
    let seen = seen.unwrap_or(&[]);
    let mut counts = RaisesCounts::default();
    let mut drop = vec![false; lines.len()];
    for s in sections(&lines) {
        let mut kept = 0;
        for e in &s.entries {
            counts.found += 1;
            if !e.names.is_empty() && e.names.iter().all(|n| holds(n, seen)) {
                kept += 1;
            } else {
                counts.dropped += 1;
                drop[e.lines.clone()].iter_mut().for_each(|d| *d = true);
            }
        }
        counts.kept += kept;
        if kept == 0 {
            drop[s.heading.clone()].iter_mut().for_each(|d| *d = true);
        }
    }
    if counts.dropped == 0 {
        return Some((program.to_string(), counts));
    }
    let mut kept: Vec<String> = Vec::with_capacity(lines.len());
    let last = lines.len() - 1;
    for (i, l) in lines.drain(..).enumerate() {
        if drop[i] {
            continue;
        }
        // A run of blank lines left where a section was becomes one, and none stays before the
        // closing quotes' line where the section was the last thing in the docstring.
        let blank_run = blank(&l) && kept.last().is_some_and(|p| blank(p)) && kept.len() > 1;
        if i > 0 && i < last && blank_run {
            continue;
        }
        if i == last && kept.len() > 1 && kept.last().is_some_and(|p| blank(p)) && drop[i - 1] {
            kept.pop();
        }
        kept.push(l);
    }
    let out = format!("{}{}{}", &program[..start], kept.join("\n"), &program[end..]);
    let same = code_without_docs(&out).is_some() && code_without_docs(&out) == code_without_docs(program);
    same.then_some((out, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(names: &[&[&str]]) -> Vec<Seen> {
        names.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect()
    }

    const GOOGLE: &str = "import binascii\n\ndef hex_decode(data):\n    \"\"\"\n    Decodes hex.\n\n    Args:\n        data: hex digits.\n\n    Raises:\n        - ValueError: When the input is not valid hex,\n          for instance odd-length.\n        - TypeError: If data is None.\n\n    Example:\n    >>> hex_decode(b'41')\n    b'A'\n    \"\"\"\n    return binascii.a2b_hex(data)\n";

    #[test]
    fn an_entry_stays_when_its_exception_or_a_subclass_was_seen_and_goes_otherwise() {
        // binascii.Error (a ValueError) was seen; TypeError was not.
        let (out, c) = reconcile_raises(GOOGLE, "hex_decode", Some(&seen(&[&["Error", "ValueError", "Exception"]])))
            .expect("rewritten");
        assert_eq!(c, RaisesCounts { found: 2, kept: 1, dropped: 1 });
        assert!(
            out.contains("    Raises:\n        - ValueError: When the input is not valid hex,\n          for instance odd-length.\n\n    Example:"),
            "{out}"
        );
        assert!(!out.contains("TypeError"), "{out}");
        // Nothing seen: the section goes with its heading, one blank line between what was around it.
        let (out, c) = reconcile_raises(GOOGLE, "hex_decode", None).unwrap();
        assert_eq!(c, RaisesCounts { found: 2, kept: 0, dropped: 2 });
        assert!(out.contains("        data: hex digits.\n\n    Example:\n"), "{out}");
        assert!(!out.contains("Raises"), "{out}");
        // Everything seen: unchanged.
        let all = seen(&[&["Error", "ValueError", "Exception"], &["TypeError", "Exception"]]);
        let (out, c) = reconcile_raises(GOOGLE, "hex_decode", Some(&all)).unwrap();
        assert_eq!((out.as_str(), c.kept), (GOOGLE, 2));
    }

    #[test]
    fn a_claim_of_a_subclass_is_not_shown_by_its_base_class() {
        let p = "def f(x):\n    \"\"\"Doc.\n\n    Raises:\n        binascii.Error: bad.\n    \"\"\"\n    return x\n";
        let (out, c) = reconcile_raises(p, "f", Some(&seen(&[&["ValueError", "Exception"]]))).unwrap();
        assert_eq!(c.dropped, 1);
        assert_eq!(out, "def f(x):\n    \"\"\"Doc.\n    \"\"\"\n    return x\n");
        let (_, c) = reconcile_raises(p, "f", Some(&seen(&[&["Error", "ValueError", "Exception"]]))).unwrap();
        assert_eq!(c.kept, 1);
    }

    #[test]
    fn entries_that_name_no_exception_are_dropped() {
        for entry in ["- None: No exceptions are raised.", "If the input is invalid, ValueError.", "Nothing."] {
            let p = format!("def f(x):\n    \"\"\"Doc.\n\n    Raises:\n        {entry}\n    \"\"\"\n    return x\n");
            let (out, c) = reconcile_raises(&p, "f", Some(&seen(&[&["ValueError", "Exception"]]))).unwrap();
            assert_eq!((c.found, c.dropped), (1, 1), "{entry}");
            assert!(!out.contains("Raises"), "{out}");
        }
        let names = |l: &str| entry_names(l);
        assert_eq!(names("`KeyError` or IndexError if missing"), ["KeyError", "IndexError"]);
        assert_eq!(names("* json.JSONDecodeError: bad"), ["json.JSONDecodeError"]);
        assert_eq!(names("ValueError"), ["ValueError"]);
        assert_eq!(names("ValueError, TypeError: bad"), ["ValueError", "TypeError"]);
        assert!(names("ValueError is what you get").is_empty());
    }

    #[test]
    fn numpy_and_sphinx_sections_are_read_too() {
        let numpy = "def f(x):\n    \"\"\"Doc.\n\n    Raises\n    ------\n    KeyError\n        When missing.\n    TypeError\n        Never.\n\n    Returns\n    -------\n    int\n    \"\"\"\n    return x\n";
        let (out, c) = reconcile_raises(numpy, "f", Some(&seen(&[&["KeyError", "LookupError", "Exception"]]))).unwrap();
        assert_eq!((c.kept, c.dropped), (1, 1));
        assert!(out.contains("    Raises\n    ------\n    KeyError\n        When missing.\n\n    Returns\n"), "{out}");
        let (out, _) = reconcile_raises(numpy, "f", None).unwrap();
        assert!(out.contains("\"\"\"Doc.\n\n    Returns\n    -------\n"), "{out}");

        let sphinx = "def f(x):\n    \"\"\"Doc.\n\n    :param x: a value.\n    :raises ValueError: if negative,\n        or too large.\n    :raises TypeError: if not a number.\n    \"\"\"\n    return x\n";
        let (out, c) = reconcile_raises(sphinx, "f", Some(&seen(&[&["TypeError", "Exception"]]))).unwrap();
        assert_eq!((c.kept, c.dropped), (1, 1));
        assert!(out.contains("    :param x: a value.\n    :raises TypeError: if not a number.\n    \"\"\""), "{out}");
    }

    #[test]
    fn a_docstring_without_a_section_is_left_alone_and_code_raises_are_found() {
        let p = "import binascii\n\ndef f(x):\n    \"\"\"Raises nothing worth saying.\"\"\"\n    if x < 0:\n        raise ValueError('negative')\n    try:\n        return binascii.a2b_hex(x)\n    except TypeError as e:\n        raise binascii.Error(str(e)) from e\n    raise\n";
        assert!(!has_raises(p, "f"));
        assert_eq!(reconcile_raises(p, "f", None), Some((p.to_string(), RaisesCounts::default())));
        assert_eq!(raised_in_code(p, "f"), ["ValueError", "binascii.Error"]);
        assert!(has_raises(GOOGLE, "hex_decode"));
        assert!(raised_in_code(GOOGLE, "hex_decode").is_empty());
    }
}
