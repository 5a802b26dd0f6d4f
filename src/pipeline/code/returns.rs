//! The type a docstring says its function returns, checked against what it returned. Models
//! document the return value from the function's name rather than its code: in the README's stdlib
//! run `hex_decode` "Returns: bytes" where it returns a `(bytes, int)` tuple. The docstring probe
//! (`examples_probe.py`) records the class of every value the function returns while its verified
//! tests and its examples run, and reads the claimed type as Python would (`bytes`, `str or None`,
//! `Optional[str]`, `list of int`, `Tuple[bytes, int]`, `datetime.timezone`, a name the module
//! imported): a type that admits every returned value **holds**; one that does not is **corrected**
//! to the names of the types returned (`tuple`; `str or None`). A type the probe cannot read, or a
//! function that returned nothing while watched, leaves the claim **unchecked**, as written.
//!
//! Only the type is checked, not what the entry says in prose; and only the return type: a test
//! calling with `bytes` does not show that a parameter documented as `str` rejects strings.
//!
//! The claim is the first entry of a Google `Returns:` section (`bytes: The decoded bytes.`, with or
//! without a leading `- `), the first line of a NumPy `Returns` section (`bytes` or `name : bytes`), or
//! a Sphinx `:rtype:` field.

use serde::{Deserialize, Serialize};

use super::{code_without_docs, docstring::docstring_literal};

/// What the probe found of the claimed type (absent from its report when the docstring claims none
/// or the function returned nothing while watched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ReturnsProbe {
    /// The probe could not read the claim as a type.
    #[serde(default)]
    pub unread: bool,
    /// The claimed type admits every value returned.
    #[serde(default)]
    pub holds: bool,
    /// The names of the types returned, in the order first seen.
    #[serde(default)]
    pub returned: Vec<String>,
}

/// How a docstring's return type fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnsOutcome {
    Held,
    Corrected,
    /// Not read as a type, or nothing was returned while the function was watched.
    Unchecked,
}

/// The docstring's return type and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnsCheck {
    /// The type as the docstring gave it.
    pub claimed: String,
    pub outcome: ReturnsOutcome,
    /// What it was corrected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Where a docstring's source lines claim a return type: line, byte range in it, text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    line: usize,
    range: std::ops::Range<usize>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether `text` reads as a type written in prose: names joined by `or`, `of` or `|`, each with an
/// optional `[...]`, after an optional article (`a list of str`, `Optional[str]`, `int | None`); not
/// a sentence (`The decoded bytes`).
fn is_type_text(text: &str) -> bool {
    let text = text.trim().trim_matches('`');
    let text = text.strip_suffix(", optional").unwrap_or(text);
    if text.is_empty() || text.contains(['(', ')', ':', '\'', '"']) {
        return false;
    }
    // Brackets' contents are the probe's business; outside them, only names and connectors.
    let mut outside = String::new();
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => outside.push(if c == '|' { ' ' } else { c }),
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    let outside = outside.replace(" | ", " or ").replace('|', " or ");
    let mut tokens: Vec<&str> = outside.split_whitespace().collect();
    if matches!(tokens.first(), Some(&"a" | &"an")) {
        tokens.remove(0);
    }
    let name = |t: &str| {
        t.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && t.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    };
    !tokens.is_empty()
        && depth == 0
        && tokens.iter().enumerate().all(|(i, t)| if i % 2 == 0 { name(t) } else { matches!(*t, "or" | "of") })
        && tokens.len() % 2 == 1
}

/// The return type a docstring's source lines claim (line 0 holds the opening quotes, the last one
/// the closing quotes).
fn claim(lines: &[String]) -> Option<Claim> {
    let close = lines.len().checked_sub(1)?;
    let first_after = |i: usize| (i..close).find(|&j| !lines[j].trim().is_empty());
    for i in 1..close {
        let t = lines[i].trim();
        let google = matches!(t.to_ascii_lowercase().as_str(), "returns:" | "return:" | "returns::");
        let numpy = t == "Returns" && lines[i + 1].trim().len() >= 3 && lines[i + 1].trim().chars().all(|c| c == '-');
        let found = if google {
            first_after(i + 1).filter(|&j| indent(&lines[j]) >= indent(&lines[i])).and_then(|j| {
                let l = &lines[j];
                let mut at = indent(l);
                for bullet in ["- ", "* "] {
                    if l[at..].starts_with(bullet) {
                        at += bullet.len();
                    }
                }
                let colon = l[at..].find(':')? + at;
                let text = l[at..colon].trim_end();
                is_type_text(text).then(|| Claim { line: j, range: at..at + text.len() })
            })
        } else if numpy {
            first_after(i + 2).and_then(|j| {
                let l = &lines[j];
                let at = match l.find(" : ") {
                    Some(k) => k + 3,
                    None => indent(l),
                };
                let text = l[at..].trim();
                let at = at + (l[at..].len() - l[at..].trim_start().len());
                is_type_text(text).then(|| Claim { line: j, range: at..at + text.len() })
            })
        } else if let Some(rest) = lines[i].trim_start().strip_prefix(":rtype:") {
            let at = lines[i].len() - rest.len() + (rest.len() - rest.trim_start().len());
            let text = rest.trim();
            is_type_text(text).then(|| Claim { line: i, range: at..at + text.len() })
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn lines_of(program: &str, name: &str) -> Option<(usize, usize, Vec<String>)> {
    let (start, end) = docstring_literal(program, name)?;
    Some((start, end, program[start..end].split('\n').map(str::to_string).collect()))
}

/// The return type top-level function `name`'s docstring claims, as written.
pub fn returns_claim(program: &str, name: &str) -> Option<String> {
    let (_, _, lines) = lines_of(program, name)?;
    let c = claim(&lines)?;
    Some(lines[c.line][c.range].to_string())
}

/// `program` with `name`'s claimed return type corrected where the probe found values it does not
/// admit, and what became of the claim; `claimed` is the claim the probe was given (a claim that
/// differs from it now is left unchecked). The program unchanged and no check when the docstring
/// claims no type; `None` when a correction would change more than documentation.
pub fn reconcile_returns(
    program: &str,
    name: &str,
    claimed: Option<&str>,
    probe: Option<&ReturnsProbe>,
) -> Option<(String, Option<ReturnsCheck>)> {
    let Some((start, end, mut lines)) = lines_of(program, name) else {
        return Some((program.to_string(), None));
    };
    let Some(c) = claim(&lines) else {
        return Some((program.to_string(), None));
    };
    let text = lines[c.line][c.range.clone()].to_string();
    let unchecked = ReturnsCheck { claimed: text.clone(), outcome: ReturnsOutcome::Unchecked, to: None };
    let probe = probe.filter(|p| claimed == Some(text.as_str()) && !p.unread && !p.returned.is_empty());
    let Some(p) = probe else {
        return Some((program.to_string(), Some(unchecked)));
    };
    if p.holds {
        return Some((program.to_string(), Some(ReturnsCheck { outcome: ReturnsOutcome::Held, ..unchecked })));
    }
    // `None` last: `str or None` reads as docstrings write it.
    let mut names: Vec<&str> = p.returned.iter().map(String::as_str).filter(|n| *n != "None").collect();
    names.extend(p.returned.iter().map(String::as_str).filter(|n| *n == "None"));
    if names.iter().any(|n| n.is_empty() || n.contains(['"', '\'', '\\', '\n'])) {
        return Some((program.to_string(), Some(unchecked)));
    }
    let to = names.join(" or ");
    lines[c.line].replace_range(c.range, &to);
    let out = format!("{}{}{}", &program[..start], lines.join("\n"), &program[end..]);
    let same = code_without_docs(&out).is_some() && code_without_docs(&out) == code_without_docs(program);
    same.then_some((out, Some(ReturnsCheck { outcome: ReturnsOutcome::Corrected, to: Some(to), ..unchecked })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "import binascii\n\ndef hex_decode(data):\n    \"\"\"\n    Decodes hex.\n\n    Returns:\n    - bytes: The decoded bytes.\n\n    Raises:\n    - ValueError: bad hex.\n    \"\"\"\n    return (binascii.a2b_hex(data), len(data))\n";

    fn probe(holds: bool, returned: &[&str]) -> ReturnsProbe {
        ReturnsProbe { unread: false, holds, returned: returned.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_type_the_function_does_not_return_is_corrected_to_what_it_returned() {
        assert_eq!(returns_claim(HEX, "hex_decode").as_deref(), Some("bytes"));
        let (out, check) =
            reconcile_returns(HEX, "hex_decode", Some("bytes"), Some(&probe(false, &["tuple"]))).unwrap();
        assert!(out.contains("    Returns:\n    - tuple: The decoded bytes.\n"), "{out}");
        let check = check.unwrap();
        assert_eq!(
            (check.claimed.as_str(), check.outcome, check.to.as_deref()),
            ("bytes", ReturnsOutcome::Corrected, Some("tuple"))
        );
        // None goes last.
        let (out, _) =
            reconcile_returns(HEX, "hex_decode", Some("bytes"), Some(&probe(false, &["None", "str"]))).unwrap();
        assert!(out.contains("- str or None: The decoded"), "{out}");
        // Held: unchanged.
        let (out, check) = reconcile_returns(HEX, "hex_decode", Some("bytes"), Some(&probe(true, &["bytes"]))).unwrap();
        assert_eq!((out.as_str(), check.unwrap().outcome), (HEX, ReturnsOutcome::Held));
    }

    #[test]
    fn without_evidence_or_a_readable_type_the_claim_is_left_unchecked() {
        for p in [None, Some(probe(false, &[])), Some(ReturnsProbe { unread: true, ..probe(false, &["tuple"]) })] {
            let (out, check) = reconcile_returns(HEX, "hex_decode", Some("bytes"), p.as_ref()).unwrap();
            assert_eq!((out.as_str(), check.unwrap().outcome), (HEX, ReturnsOutcome::Unchecked));
        }
        // The probe was given another claim than the docstring makes now.
        let (out, check) = reconcile_returns(HEX, "hex_decode", Some("str"), Some(&probe(false, &["tuple"]))).unwrap();
        assert_eq!((out.as_str(), check.unwrap().outcome), (HEX, ReturnsOutcome::Unchecked));
    }

    #[test]
    fn claims_are_read_in_google_numpy_and_sphinx_styles_and_prose_is_not_a_type() {
        let doc = |body: &str| format!("def f(x):\n    \"\"\"Doc.\n\n{body}\n    \"\"\"\n    return x\n");
        let cases = [
            ("    Returns:\n        Optional[str]: the match.", Some("Optional[str]")),
            ("    Returns:\n        str or None: the match.", Some("str or None")),
            ("    Returns:\n        a list of int: the values.", Some("a list of int")),
            ("    Returns:\n        The decoded bytes.", None),
            ("    Returns:\n        The decoded bytes: all of them.", None),
            ("    Returns\n    -------\n    Tuple[bytes, int]\n        The pair.", Some("Tuple[bytes, int]")),
            ("    Returns\n    -------\n    pair : tuple\n        The pair.", Some("tuple")),
            ("    :param x: a value.\n    :rtype: datetime.timezone", Some("datetime.timezone")),
            ("    Args:\n        x (int): a value.", None),
        ];
        for (body, want) in cases {
            assert_eq!(returns_claim(&doc(body), "f").as_deref(), want, "{body}");
        }
        let p = doc("    Returns\n    -------\n    pair : bytes\n        The pair.");
        let (out, _) = reconcile_returns(&p, "f", Some("bytes"), Some(&probe(false, &["tuple"]))).unwrap();
        assert!(out.contains("    pair : tuple\n"), "{out}");
        let p = doc("    :rtype: bytes");
        let (out, _) = reconcile_returns(&p, "f", Some("bytes"), Some(&probe(false, &["int"]))).unwrap();
        assert!(out.contains("    :rtype: int\n"), "{out}");
    }
}
