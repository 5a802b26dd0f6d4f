//! The types a docstring gives, checked against what its function did. Models document types from
//! the function's name rather than its code: in the README's stdlib run `hex_decode` "Returns: bytes"
//! where it returns a `(bytes, int)` tuple, and `hex_encode` takes "input (str)" where it takes
//! bytes (and raises TypeError on a string). The docstring probe (`examples_probe.py`) records the
//! class of every value the function returns, and of every value passed to each parameter in calls
//! that returned, while its verified tests and its examples run; and it reads each documented type
//! as Python would (`bytes`, `str or None`, `Optional[str]`, `list of int`, `Tuple[bytes, int]`,
//! `datetime.timezone`, a name the module imported). A type that admits every value seen **holds**;
//! one that does not is **corrected** to the names of the types seen (`tuple`; `str or None`). A
//! type the probe cannot read, or one nothing was seen for, stays as written, **unchecked**.
//!
//! Only types are checked, not what the entries say in prose. A parameter's corrected type names
//! what the tests passed and the function took, which may be narrower than all it accepts.
//!
//! The return type is the first entry of a Google `Returns:` section (`bytes: The decoded bytes.`,
//! with or without a leading `- `), the first line of a NumPy `Returns` section (`bytes` or
//! `name : bytes`), or a Sphinx `:rtype:` field. Parameters' types are Google `name (type): ...`
//! entries of an `Args:`/`Parameters:` section, NumPy `name : type` lines under `Parameters`, and
//! Sphinx `:param type name:` or `:type name: type` fields, for names the function has.

use serde::{Deserialize, Serialize};

use super::{code_without_docs, docstring::docstring_literal, docstring::function, parse, text};

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
    let Some(to) = seen_names(&p.returned) else {
        return Some((program.to_string(), Some(unchecked)));
    };
    lines[c.line].replace_range(c.range, &to);
    let out = format!("{}{}{}", &program[..start], lines.join("\n"), &program[end..]);
    let same = code_without_docs(&out).is_some() && code_without_docs(&out) == code_without_docs(program);
    same.then_some((out, Some(ReturnsCheck { outcome: ReturnsOutcome::Corrected, to: Some(to), ..unchecked })))
}

/// What the probe found of one documented parameter type (an empty object in its report when the
/// parameter was never passed in a call that returned).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ParamProbe {
    #[serde(default)]
    pub unread: bool,
    /// The documented type admits every value passed.
    #[serde(default)]
    pub holds: bool,
    /// The names of the types passed, in the order first seen.
    #[serde(default)]
    pub seen: Vec<String>,
}

/// How a docstring's parameter types fared (held + corrected + unchecked = found).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    pub found: u32,
    pub held: u32,
    pub corrected: u32,
    pub unchecked: u32,
}

/// A documented parameter type: the parameter and where its type is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParamClaim {
    name: String,
    line: usize,
    range: std::ops::Range<usize>,
}

/// The names of top-level function `name`'s parameters (not `*args` or `**kwargs`).
fn param_names(program: &str, name: &str) -> Vec<String> {
    let Some(tree) = parse(program) else { return Vec::new() };
    let Some(def) = function(tree.root_node(), program, name) else { return Vec::new() };
    let Some(params) = def.child_by_field_name("parameters") else { return Vec::new() };
    let mut out = Vec::new();
    let mut c = params.walk();
    for p in params.named_children(&mut c) {
        let id = match p.kind() {
            "identifier" => Some(p),
            "typed_parameter" => p.named_child(0).filter(|n| n.kind() == "identifier"),
            "default_parameter" | "typed_default_parameter" => p.child_by_field_name("name"),
            _ => None,
        };
        out.extend(id.map(|n| text(n, program).to_string()));
    }
    out
}

/// `(start, end)` of the type in `inner` (what stands between the parentheses of `name (type):`, or
/// after NumPy's ` : `), without a trailing `, optional` or `, default ...`.
fn type_span(inner: &str) -> Option<(usize, usize)> {
    let lead = inner.len() - inner.trim_start().len();
    let mut t = inner.trim();
    for tail in [", optional", ",optional"] {
        t = t.strip_suffix(tail).unwrap_or(t);
    }
    if let Some(at) = t.find(", default") {
        t = &t[..at];
    }
    let t = t.trim_end();
    is_type_text(t).then_some((lead, lead + t.len()))
}

/// The parameter types a docstring's source lines document, for parameters in `params`.
fn param_claims(lines: &[String], params: &[String]) -> Vec<ParamClaim> {
    let close = lines.len().saturating_sub(1);
    let known = |n: &str| params.iter().any(|p| p == n);
    let mut out: Vec<ParamClaim> = Vec::new();
    let mut push = |name: &str, line: usize, range: std::ops::Range<usize>| {
        if known(name) && !out.iter().any(|c| c.name == name) {
            out.push(ParamClaim { name: name.to_string(), line, range });
        }
    };
    let ident = |t: &str| {
        let n = t.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(t.len());
        (n > 0 && !t.starts_with(|c: char| c.is_ascii_digit())).then(|| t[..n].to_string())
    };
    let mut section: Option<(bool, usize)> = None; // (numpy, heading indent)
    for i in 1..close {
        let line = &lines[i];
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        let google = matches!(
            lower.as_str(),
            "args:" | "arguments:" | "parameters:" | "params:" | "keyword args:" | "keyword arguments:"
        );
        let numpy =
            t == "Parameters" && lines[i + 1].trim().len() >= 3 && lines[i + 1].trim().chars().all(|c| c == '-');
        if google || numpy {
            section = Some((numpy, indent(line)));
            continue;
        }
        // Sphinx fields stand anywhere.
        if let Some(rest) = t.strip_prefix(":param ") {
            // `:param type name: ...`: the type is all but the last word before the colon.
            if let Some((head, _)) = rest.split_once(':') {
                if let Some((ty, name)) = head.trim_end().rsplit_once(' ') {
                    let at = line.len() - line.trim_start().len() + ":param ".len();
                    if let Some((a, b)) = type_span(ty) {
                        push(name.trim(), i, at + a..at + b);
                    }
                }
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix(":type ") {
            if let Some((name, ty)) = rest.split_once(':') {
                let at = indent(line) + ":type ".len() + name.len() + 1;
                if let Some((a, b)) = type_span(ty) {
                    push(name.trim(), i, at + a..at + b);
                }
            }
            continue;
        }
        let Some((numpy, h)) = section else { continue };
        if t.is_empty() {
            // A blank line ends a Google section unless its entries go on; NumPy entries may be
            // separated by blank lines, and the section ends at the next heading.
            let next = (i + 1..close).find(|&k| !lines[k].trim().is_empty());
            if !numpy && next.is_none_or(|k| indent(&lines[k]) <= h) {
                section = None;
            }
            continue;
        }
        if indent(line) < h || (indent(line) == h && t.ends_with(':') && !numpy) {
            section = None;
            continue;
        }
        if numpy {
            // The next heading (a line over a rule) ends the section; lines deeper than the
            // heading describe the entry above them.
            let rule = |l: &String| l.trim().len() >= 3 && l.trim().chars().all(|c| c == '-');
            if lines.get(i + 1).is_some_and(rule) {
                section = None;
                continue;
            }
            if indent(line) != h {
                continue;
            }
            let Some((name, ty)) = t.split_once(" : ") else { continue };
            let at = indent(line) + name.len() + 3;
            if let (Some(name), Some((a, b))) = (ident(name.trim()), type_span(ty)) {
                push(&name, i, at + a..at + b);
            }
            continue;
        }
        // Google: `name (type): ...`, after an optional bullet.
        let mut at = indent(line);
        for bullet in ["- ", "* "] {
            if line[at..].starts_with(bullet) {
                at += bullet.len();
            }
        }
        let rest = &line[at..];
        let Some(name) = ident(rest) else { continue };
        let after = &rest[name.len()..];
        let Some(open) = after.strip_prefix(" (").or_else(|| after.strip_prefix('(')) else { continue };
        let Some(close_at) = open.find("):") else { continue };
        let start = at + name.len() + (after.len() - open.len());
        if let Some((a, b)) = type_span(&open[..close_at]) {
            push(&name, i, start + a..start + b);
        }
    }
    out
}

/// The parameter types top-level function `name`'s docstring documents, as (parameter, type).
pub fn param_claims_of(program: &str, name: &str) -> Vec<(String, String)> {
    let Some((_, _, lines)) = lines_of(program, name) else { return Vec::new() };
    let params = param_names(program, name);
    param_claims(&lines, &params).into_iter().map(|c| (c.name, lines[c.line][c.range].to_string())).collect()
}

/// The names of types seen, `None` last, joined as a docstring writes a choice; `None` when one
/// cannot stand in a docstring.
fn seen_names(seen: &[String]) -> Option<String> {
    let mut names: Vec<&str> = seen.iter().map(String::as_str).filter(|n| *n != "None").collect();
    names.extend(seen.iter().map(String::as_str).filter(|n| *n == "None"));
    let bad = names.is_empty() || names.iter().any(|n| n.is_empty() || n.contains(['"', '\'', '\\', '\n']));
    (!bad).then(|| names.join(" or "))
}

/// `program` with `name`'s documented parameter types corrected where the function took values they
/// do not admit, and the counts; `claimed` are the claims the probe was given, in the order of its
/// `probe` entries (a claim not among them now is unchecked). `None` when a correction would change
/// more than documentation.
pub fn reconcile_params(
    program: &str,
    name: &str,
    claimed: &[(String, String)],
    probe: Option<&[ParamProbe]>,
) -> Option<(String, ParamCounts)> {
    let Some((start, end, mut lines)) = lines_of(program, name) else {
        return Some((program.to_string(), ParamCounts::default()));
    };
    let claims = param_claims(&lines, &param_names(program, name));
    let mut counts = ParamCounts::default();
    let mut edits = Vec::new();
    for c in &claims {
        counts.found += 1;
        let written = &lines[c.line][c.range.clone()];
        let at = claimed.iter().position(|(n, t)| *n == c.name && t == written);
        let found = at.and_then(|k| probe.and_then(|p| p.get(k))).filter(|p| !p.unread && !p.seen.is_empty());
        match found {
            Some(p) if p.holds => counts.held += 1,
            Some(p) => match seen_names(&p.seen) {
                Some(to) => {
                    counts.corrected += 1;
                    edits.push((c.line, c.range.clone(), to));
                }
                None => counts.unchecked += 1,
            },
            None => counts.unchecked += 1,
        }
    }
    if edits.is_empty() {
        return Some((program.to_string(), counts));
    }
    // From the end of each line back, so that earlier ranges stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1.start)));
    for (line, range, to) in edits {
        lines[line].replace_range(range, &to);
    }
    let out = format!("{}{}{}", &program[..start], lines.join("\n"), &program[end..]);
    let same = code_without_docs(&out).is_some() && code_without_docs(&out) == code_without_docs(program);
    same.then_some((out, counts))
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

    #[test]
    fn parameter_types_are_read_in_the_three_styles_for_the_functions_own_parameters() {
        let doc = |body: &str| {
            format!(
                "def f(data, n=2, *rest, flag=None, **kw):\n    \"\"\"Doc.\n\n{body}\n    \"\"\"\n    return data\n"
            )
        };
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let google = doc("    Args:\n        data (str): the input.\n        n (int, optional): how many.\n            More text (not an entry): here.\n        other (int): not a parameter.\n        rest (tuple): varargs are not checked.\n\n    Returns:\n        int: x.");
        assert_eq!(param_claims_of(&google, "f"), pairs(&[("data", "str"), ("n", "int")]));
        let flat = doc("    Parameters:\n    - data (bytes): the input.\n    - flag (bool or None): maybe.");
        assert_eq!(param_claims_of(&flat, "f"), pairs(&[("data", "bytes"), ("flag", "bool or None")]));
        let numpy = doc("    Parameters\n    ----------\n    data : list of str\n        The input.\n\n    n : int, default 2\n        How many.\n\n    Returns\n    -------\n    int");
        assert_eq!(param_claims_of(&numpy, "f"), pairs(&[("data", "list of str"), ("n", "int")]));
        let sphinx = doc("    :param str data: the input.\n    :param n: how many.\n    :type n: int");
        assert_eq!(param_claims_of(&sphinx, "f"), pairs(&[("data", "str"), ("n", "int")]));
        assert!(param_claims_of(&doc("    Args:\n        data: the input, a string."), "f").is_empty());
    }

    #[test]
    fn a_parameter_type_that_does_not_admit_what_was_passed_is_corrected_to_it() {
        let p = "def hex_encode(input, errors='strict'):\n    \"\"\"Hex.\n\n    Parameters:\n    - input (str): The string.\n    - errors (str): Mode.\n    \"\"\"\n    return input.hex()\n";
        let claimed = param_claims_of(p, "hex_encode");
        let seen = |holds: bool, seen: &[&str]| ParamProbe {
            unread: false,
            holds,
            seen: seen.iter().map(|s| s.to_string()).collect(),
        };
        // `input` took bytes; `errors` was never passed.
        let probe = [seen(false, &["bytes"]), ParamProbe::default()];
        let (out, c) = reconcile_params(p, "hex_encode", &claimed, Some(&probe)).unwrap();
        assert!(out.contains("    - input (bytes): The string.\n    - errors (str): Mode.\n"), "{out}");
        assert_eq!(c, ParamCounts { found: 2, held: 0, corrected: 1, unchecked: 1 });
        let probe = [seen(true, &["str"]), seen(true, &["str"])];
        let (out, c) = reconcile_params(p, "hex_encode", &claimed, Some(&probe)).unwrap();
        assert_eq!((out.as_str(), c.held), (p, 2));
        // No report: nothing changes, all unchecked.
        let (out, c) = reconcile_params(p, "hex_encode", &claimed, None).unwrap();
        assert_eq!((out.as_str(), c.unchecked), (p, 2));
    }
}
