//! Docstring examples that hold. Asked to document a function, a code model writes `>>>` examples
//! whose results it guesses. In the README's stdlib run (13 accepted programs) 7 docstrings showed
//! results that their own verified function does not give — `b16encode(b'hello')` shown as
//! `b'48656c6c6f'` where it returns `b'68656C6C6F'`, `hex_encode("Hello")` where it takes bytes —
//! and one could not even be parsed by doctest. A docstring is the prompt of the prefix–completion
//! rows, so a wrong example teaches a wrong fact as if it were verified.
//!
//! The polished program's examples are run in the sandbox by doctest's own parser and runner (the
//! probe, `examples_probe.py`). Each example is then kept (it holds), corrected (it ran, printed a
//! short output that is the same in two runs and shows no unordered set, and any comment on it
//! states that output: the shown result becomes what the verified function gives), or dropped
//! (anything else). When the probe's lines cannot be mapped onto the source (doctest could not
//! parse the docstring, or an escaped newline makes its lines differ from the source's), every
//! example is dropped. The rewritten program is checked again, with doctest as `python -m doctest`
//! runs it, together with the record's tests (`examples_check.py`).

use serde::{Deserialize, Serialize};

use super::{code_without_docs, docstring::docstring_literal};

/// Where the probe's JSON line starts in its stdout.
pub const PROBE_MARKER: &str = "@@unitcoder-examples@@";
const PROBE: &str = include_str!("examples_probe.py");
const CHECK: &str = include_str!("examples_check.py");
/// The longest output an example may be corrected to, in characters and lines: a docstring shows
/// a result, not a dump.
const MAX_CORRECTED_CHARS: usize = 240;
const MAX_CORRECTED_LINES: usize = 6;

/// The probe's tests for top-level function `name` (an identifier), after the record's verified
/// `tests`, whose calls it watches; `raised_in_code`: the dotted exception names the function's code
/// raises ([`super::raises::raised_in_code`]); `returns`: the type its docstring says it returns
/// ([`super::types::returns_claim`]); `params`: the (parameter, type) pairs it documents
/// ([`super::types::param_claims_of`]).
pub fn probe_tests(
    tests: &str,
    name: &str,
    raised_in_code: &[String],
    returns: Option<&str>,
    params: &[(String, String)],
) -> String {
    let names = serde_json::to_string(raised_in_code).unwrap_or_else(|_| "[]".into());
    // A JSON string is a Python string literal; no claim is None.
    let returns = returns.and_then(|r| serde_json::to_string(r).ok()).unwrap_or_else(|| "None".into());
    let probe = PROBE
        .replace("__UC_FUNCTION__", name)
        .replace("__UC_NAME__", name)
        .replace("__UC_RAISES_IN_CODE__", &names)
        .replace("__UC_RETURNS_CLAIM__", &returns)
        .replace("__UC_PARAMS_CLAIMS__", &serde_json::to_string(params).unwrap_or_else(|_| "[]".into()));
    format!("{}\n\n{probe}", tests.trim_end())
}

/// `tests` followed by a test that `name`'s docstring examples all hold and number `expected`.
pub fn check_tests(tests: &str, name: &str, expected: u32) -> String {
    let check = CHECK
        .replace("__UC_FUNCTION__", name)
        .replace("__UC_NAME__", name)
        .replace("__UC_EXPECTED__", &expected.to_string());
    format!("{}\n{check}", tests.trim_end())
}

/// What the probe reported.
#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    /// Lines of the docstring as Python holds it.
    pub lines: usize,
    /// Why doctest could not parse the docstring.
    #[serde(default)]
    pub parse_error: Option<String>,
    pub examples: Vec<ProbeExample>,
    /// The exception classes seen leaving the function while the tests and examples ran, and
    /// those its code raises by name, each as its and its base classes' names up to `Exception`.
    #[serde(default)]
    pub raised: Vec<super::raises::Seen>,
    /// Whether the docstring's return type admits what the function returned.
    #[serde(default)]
    pub returns: Option<super::types::ReturnsProbe>,
    /// Whether each documented parameter type admits what was passed, in the order given.
    #[serde(default)]
    pub params: Vec<super::types::ParamProbe>,
}

/// One example as the probe ran it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeExample {
    /// Line of the docstring where its `>>>` is (0: the line of the opening quotes).
    pub line: usize,
    pub source_lines: usize,
    /// Lines of output it shows.
    pub want_lines: usize,
    /// It held, in both runs.
    pub ok: bool,
    /// The exception it raised where its output shows none.
    #[serde(default)]
    pub exception: Option<String>,
    /// Both runs gave the same outcome and output.
    pub stable: bool,
    /// It displayed a set or frozenset of more than one element (its order follows the hash seed).
    pub unordered: bool,
    /// What it printed (absent when it raised or printed more than the probe reports).
    #[serde(default)]
    pub got: Option<String>,
}

/// The probe's report in a verdict's stdout, when it got to the end.
pub fn read_probe(stdout: &str) -> Option<Probe> {
    let at = stdout.rfind(PROBE_MARKER)?;
    let line = stdout[at + PROBE_MARKER.len()..].lines().next()?;
    serde_json::from_str(line).ok()
}

/// How a docstring's examples fared (kept + corrected + dropped = found).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleCounts {
    pub found: u32,
    /// They held as written.
    pub kept: u32,
    /// Their shown output was replaced by what the function gives.
    pub corrected: u32,
    pub dropped: u32,
}

/// A program whose docstring examples were reconciled with what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub program: String,
    pub counts: ExampleCounts,
}

impl Reconciled {
    /// Examples the rewritten docstring holds.
    pub fn remaining(&self) -> u32 {
        self.counts.kept + self.counts.corrected
    }
}

/// Whether top-level function `name`'s docstring has a `>>>` example.
pub fn has_examples(program: &str, name: &str) -> bool {
    docstring_literal(program, name)
        .is_some_and(|(start, end)| rows(&program[start..end]).1.iter().any(|r| is_prompt(r)))
}

/// `program` with `name`'s docstring examples reconciled with the probe's report, or with every
/// example dropped when there is no report or it cannot be mapped onto the source. `None` when the
/// docstring cannot be rewritten (not found, or an example on its opening or closing line).
pub fn reconcile(program: &str, name: &str, probe: Option<&Probe>) -> Option<Reconciled> {
    let (start, end) = docstring_literal(program, name)?;
    let literal = &program[start..end];
    let (raw, mut lines) = rows(literal);
    let last = lines.len().checked_sub(1)?;
    let mapped = probe.filter(|p| p.parse_error.is_none() && p.lines == lines.len() && maps(p, &lines));
    let mut counts = ExampleCounts::default();
    // Whether a kept example shows output: setting-up lines alone (`>>> x = f(1)`) demonstrate
    // nothing, and go once what they set up for is gone.
    let mut shows = false;
    match mapped {
        Some(p) => {
            // From the last example up, so that earlier line numbers stay valid.
            for ex in p.examples.iter().rev() {
                counts.found += 1;
                let at = ex.line;
                let output = at + ex.source_lines;
                let after = output + ex.want_lines;
                if at == 0 || after > last {
                    return None;
                }
                if ex.ok && ex.stable && !ex.unordered {
                    counts.kept += 1;
                    shows |= ex.want_lines > 0;
                    continue;
                }
                // A comment on the example may state a result (`>>> f(2)  # 11`): the example is
                // corrected only where every such comment says what the function gives.
                let agrees = |got: &str| {
                    lines[at..output].iter().all(|l| l.rsplit_once('#').is_none_or(|(_, c)| c.trim() == got.trim_end()))
                };
                let indent: String = lines[at].chars().take_while(|c| c.is_whitespace()).collect();
                let corrected = (!ex.ok && ex.exception.is_none() && ex.stable && !ex.unordered)
                    .then_some(ex.got.as_deref())
                    .flatten()
                    .filter(|got| agrees(got))
                    .and_then(|got| shown(got, raw, &quote(literal)));
                match corrected {
                    Some(out) => {
                        counts.corrected += 1;
                        let out: Vec<String> = out.iter().map(|l| format!("{indent}{l}")).collect();
                        lines.splice(output..after, out);
                    }
                    None => {
                        counts.dropped += 1;
                        lines.drain(at..after);
                    }
                }
            }
        }
        None => {
            let n = drop_all(&mut lines);
            counts.found += n;
            counts.dropped += n;
        }
    }
    if counts.kept > 0 && counts.corrected == 0 && !shows {
        drop_all(&mut lines);
        counts.dropped += counts.kept;
        counts.kept = 0;
    }
    if counts.dropped > 0 {
        tidy(&mut lines);
    }
    let program_out = format!("{}{}{}", &program[..start], lines.join("\n"), &program[end..]);
    // Only documentation may change.
    if code_without_docs(&program_out) != code_without_docs(program) || code_without_docs(program).is_none() {
        return None;
    }
    Some(Reconciled { program: program_out, counts })
}

/// `program` with `name`'s docstring made raw (`r"""`), when the probe could not read its examples
/// line for line and the docstring is a plain literal with a backslash: models write
/// `>>> f('a\n')` in a plain docstring, where Python turns `\n` into a newline that splits the
/// example (doctest then refuses the whole docstring). Made raw, the example reads as written; the
/// raw program is probed again.
pub fn as_raw(program: &str, name: &str, probe: Option<&Probe>) -> Option<String> {
    let (start, end) = docstring_literal(program, name)?;
    let literal = &program[start..end];
    let (raw, lines) = rows(literal);
    let plain = !raw && literal.starts_with(['"', '\'']);
    let unread = probe.is_some_and(|p| p.parse_error.is_some() || p.lines != lines.len() || !maps(p, &lines));
    if !(plain && unread && literal.contains('\\')) {
        return None;
    }
    let out = format!("{}r{}", &program[..start], &program[start..]);
    let same = docstring_literal(&out, name) == Some((start, end + 1))
        && code_without_docs(&out) == code_without_docs(program);
    same.then_some(out)
}

/// Removes every example from a docstring's source lines, read as doctest reads them: `...` lines
/// continue the source, and the output runs to a blank line or the next `>>>`. Returns how many.
fn drop_all(lines: &mut Vec<String>) -> u32 {
    let mut n = 0;
    let mut i = 1;
    while i < lines.len().saturating_sub(1) {
        if !is_prompt(&lines[i]) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() - 1 && lines[j].trim_start().starts_with("...") {
            j += 1;
        }
        while j < lines.len() - 1 && !lines[j].trim().is_empty() && !is_prompt(&lines[j]) {
            j += 1;
        }
        n += 1;
        lines.drain(i..j);
    }
    n
}

/// The literal's prefix says raw (`r"""`), and its source lines.
fn rows(literal: &str) -> (bool, Vec<String>) {
    let prefix: String = literal.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    (prefix.contains(['r', 'R']), literal.split('\n').map(str::to_string).collect())
}

/// The literal's quotes (`"""`, `'''`, `"` or `'`).
fn quote(literal: &str) -> String {
    let body = literal.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let q = body.chars().next().unwrap_or('"');
    if body.starts_with(&q.to_string().repeat(3)) {
        q.to_string().repeat(3)
    } else {
        q.to_string()
    }
}

fn is_prompt(line: &str) -> bool {
    let t = line.trim_start();
    t == ">>>" || t.starts_with(">>> ")
}

/// Every example the probe reports starts on a source line with `>>>`.
fn maps(p: &Probe, lines: &[String]) -> bool {
    p.examples.iter().all(|ex| lines.get(ex.line).is_some_and(|l| is_prompt(l)))
}

/// `got` as docstring lines (without indentation), when it can be shown there and read back by
/// doctest as the same text: one to six short lines, none blank (doctest would end the output
/// there), none starting a new example, no tabs (doctest expands them) or trailing spaces (editors
/// strip them), no closing quotes; backslashes doubled unless the docstring is raw.
fn shown(got: &str, raw: bool, quote: &str) -> Option<Vec<String>> {
    let body = got.strip_suffix('\n')?;
    let lines: Vec<&str> = body.split('\n').collect();
    let fits = !body.is_empty() && body.chars().count() <= MAX_CORRECTED_CHARS && lines.len() <= MAX_CORRECTED_LINES;
    let plain = lines.iter().all(|l| {
        !l.trim().is_empty()
            && l.trim_end() == *l
            && !l.contains('\t')
            && !l.contains('\r')
            && !is_prompt(l)
            && !l.trim_start().starts_with("...")
            && !l.contains(quote)
            && !(raw && l.ends_with('\\'))
    });
    if !fits || !plain {
        return None;
    }
    Some(lines.iter().map(|l| if raw { l.to_string() } else { l.replace('\\', "\\\\") }).collect())
}

/// After examples were dropped: runs of blank lines become one, and an `Example:` heading left
/// with nothing under it goes, with the blank lines before it.
fn tidy(lines: &mut Vec<String>) {
    let last = lines.len() - 1;
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let blank = l.trim().is_empty();
        if i > 0 && i < last && blank && out.last().is_some_and(|p: &String| p.trim().is_empty()) {
            continue;
        }
        out.push(l.clone());
    }
    let still = out.iter().any(|l| is_prompt(l));
    if !still {
        let heading = |l: &str| {
            matches!(l.trim().to_ascii_lowercase().as_str(), "example:" | "examples:" | "example::" | "examples::")
        };
        let close = out.len() - 1;
        if let Some(h) = (1..close).rev().find(|&i| heading(&out[i])) {
            if out[h + 1..close].iter().all(|l| l.trim().is_empty()) {
                let mut from = h;
                while from > 1 && out[from - 1].trim().is_empty() {
                    from -= 1;
                }
                out.drain(from..close);
            }
        }
    }
    *lines = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe's report of `examples` on a docstring of `lines` lines.
    fn report(lines: usize, examples: Vec<ProbeExample>) -> Probe {
        Probe { lines, parse_error: None, examples, raised: vec![], returns: None, params: vec![] }
    }

    /// The report of a probe whose doctest refused the docstring.
    fn refused(lines: usize) -> Probe {
        Probe { parse_error: Some("inconsistent leading whitespace".into()), ..report(lines, vec![]) }
    }

    fn example(line: usize, want_lines: usize, ok: bool, got: Option<&str>) -> ProbeExample {
        ProbeExample {
            line,
            source_lines: 1,
            want_lines,
            ok,
            exception: None,
            stable: true,
            unordered: false,
            got: got.map(str::to_string),
        }
    }

    const PROGRAM: &str = "import binascii\n\n\ndef b16encode(s):\n    \"\"\"\n    Hex, upper case.\n\n    Example:\n    >>> b16encode(b'hello')\n    b'48656c6c6f'\n    >>> b16encode(b'')\n    b''\n    \"\"\"\n    return binascii.hexlify(s).upper()\n";

    #[test]
    fn a_wrong_result_is_corrected_and_a_right_one_kept() {
        assert!(has_examples(PROGRAM, "b16encode"));
        let probe = report(9, vec![example(4, 1, false, Some("b'68656C6C6F'\n")), example(6, 1, true, Some("b''\n"))]);
        let r = reconcile(PROGRAM, "b16encode", Some(&probe)).unwrap();
        assert_eq!(r.counts, ExampleCounts { found: 2, kept: 1, corrected: 1, dropped: 0 });
        assert_eq!(r.program, PROGRAM.replace("b'48656c6c6f'", "b'68656C6C6F'"));
        assert_eq!(r.remaining(), 2);
    }

    #[test]
    fn an_example_that_raises_or_is_unstable_or_commented_is_dropped_and_an_empty_heading_goes() {
        let program = "def f(x):\n    \"\"\"\n    Doubles.\n\n    Example:\n    >>> f('a')  # 'ab'\n    'ab'\n    >>> f(None)\n    0\n    \"\"\"\n    return x * 2\n";
        let mut raised = example(6, 1, false, None);
        raised.exception = Some("TypeError".into());
        let probe = report(9, vec![example(4, 1, false, Some("'aa'\n")), raised]);
        // The first example's comment claims another value: it goes rather than be half corrected.
        let r = reconcile(program, "f", Some(&probe)).unwrap();
        assert_eq!(r.counts, ExampleCounts { found: 2, kept: 0, corrected: 0, dropped: 2 });
        assert_eq!(r.program, "def f(x):\n    \"\"\"\n    Doubles.\n    \"\"\"\n    return x * 2\n");
        assert_eq!(r.remaining(), 0);
        assert!(!has_examples(&r.program, "f"));
        // A set's order follows the hash seed, and output that changed between runs is no example.
        let tweaks: [fn(&mut ProbeExample); 2] = [|e| e.unordered = true, |e| e.stable = false];
        for tweak in tweaks {
            let mut e = example(3, 1, true, Some("{'a', 'b'}\n"));
            tweak(&mut e);
            let p = report(6, vec![e]);
            let prog = "def g():\n    \"\"\"\n    Letters.\n\n    >>> g()\n    {'a', 'b'}\n    \"\"\"\n    return {'a', 'b'}\n";
            let r = reconcile(prog, "g", Some(&p)).unwrap();
            assert_eq!(r.counts.dropped, 1);
            assert_eq!(r.program, "def g():\n    \"\"\"\n    Letters.\n\n    \"\"\"\n    return {'a', 'b'}\n");
        }
    }

    #[test]
    fn a_setting_up_line_left_alone_goes_too() {
        let program = "def first(xs):\n    \"\"\"\n    The first.\n\n    Example:\n    >>> xs = [1, 2]\n    >>> first(xs)\n    2\n    \"\"\"\n    return xs[0]\n";
        let mut raised = example(5, 1, false, None);
        raised.exception = Some("IndexError".into());
        let probe = // The call's shown result is wrong, and it is corrected: the set-up line stays.
            report(8, vec![example(4, 0, true, Some("")), example(5, 1, false, Some("1\n"))]);
        let r = reconcile(program, "first", Some(&probe)).unwrap();
        assert_eq!(r.counts, ExampleCounts { found: 2, kept: 1, corrected: 1, dropped: 0 });
        assert_eq!(r.program, program.replace("    2\n", "    1\n"));
        // The call raised: the set-up line alone would show nothing.
        let probe = report(8, vec![example(4, 0, true, Some("")), raised]);
        let r = reconcile(program, "first", Some(&probe)).unwrap();
        assert_eq!(r.counts, ExampleCounts { found: 2, kept: 0, corrected: 0, dropped: 2 });
        assert_eq!(r.program, "def first(xs):\n    \"\"\"\n    The first.\n    \"\"\"\n    return xs[0]\n");
    }

    #[test]
    fn a_comment_that_states_the_result_the_function_gives_lets_the_example_be_corrected() {
        let program = "def pair(x):\n    \"\"\"\n    Pair.\n\n    >>> r = pair(b'ab')  # (b'ab', 2)\n    >>> r[0]  # b'ab'\n    >>> r[1]  # 11\n    \"\"\"\n    return (x, len(x))\n";
        let probe = report(
            7,
            vec![
                example(3, 0, true, Some("")),
                example(4, 0, false, Some("b'ab'\n")),
                example(5, 0, false, Some("2\n")),
            ],
        );
        let r = reconcile(program, "pair", Some(&probe)).unwrap();
        assert_eq!(r.counts, ExampleCounts { found: 3, kept: 1, corrected: 1, dropped: 1 });
        assert_eq!(
            r.program,
            "def pair(x):\n    \"\"\"\n    Pair.\n\n    >>> r = pair(b'ab')  # (b'ab', 2)\n    >>> r[0]  # b'ab'\n    b'ab'\n    \"\"\"\n    return (x, len(x))\n"
        );
    }

    #[test]
    fn a_plain_docstring_that_doctest_cannot_read_is_made_raw_to_be_probed_again() {
        let program = "def junk(line):\n    \"\"\"\n    Blank.\n\n    >>> junk('\\n')\n    True\n    \"\"\"\n    return not line.strip()\n";
        let refused = refused(7);
        let raw = as_raw(program, "junk", Some(&refused)).unwrap();
        assert_eq!(raw, program.replacen("    \"\"\"\n    Blank", "    r\"\"\"\n    Blank", 1));
        // Read line for line already, raw already, or no backslash: nothing to do.
        let read = report(6, vec![example(3, 1, true, Some("True\n"))]);
        assert_eq!(as_raw(program, "junk", Some(&read)), None);
        assert_eq!(as_raw(&raw, "junk", Some(&refused)), None);
        assert_eq!(as_raw(&program.replace("\\n", "x"), "junk", Some(&refused)), None);
        assert_eq!(as_raw(program, "junk", None), None);
        // The raw docstring's examples map line for line.
        let again = report(6, vec![example(3, 1, true, Some("True\n"))]);
        let r = reconcile(&raw, "junk", Some(&again)).unwrap();
        assert_eq!((r.counts.kept, r.program), (1, raw));
    }

    #[test]
    fn corrected_output_is_escaped_for_the_literal_and_refused_where_doctest_would_read_it_otherwise() {
        assert_eq!(shown("'a\\nb'\n", false, "\"\"\""), Some(vec!["'a\\\\nb'".to_string()]));
        assert_eq!(shown("'a\\nb'\n", true, "\"\"\""), Some(vec!["'a\\nb'".to_string()]));
        assert_eq!(shown("1\n\n2\n", false, "\"\"\""), None, "a blank line ends doctest's output");
        assert_eq!(shown("x\t\n", false, "\"\"\""), None);
        assert_eq!(shown("'\"\"\"'\n", false, "\"\"\""), None);
        assert_eq!(shown(&format!("{}\n", "9".repeat(300)), false, "\"\"\""), None);
        assert_eq!(shown("", false, "\"\"\""), None, "a call that shows nothing demonstrates nothing");
        assert_eq!(shown(">>> x\n", false, "\"\"\""), None);
    }

    #[test]
    fn an_unparsable_or_unmappable_docstring_loses_every_example_and_nothing_else() {
        // doctest refused it: an escaped newline in a plain docstring splits the example.
        let program = "import re\n\n\ndef junk(line):\n    \"\"\"\n    Blank or a lone '#'.\n\n    Example:\n    >>> junk('\\n')\n    True\n    >>> junk('x')\n    False\n    \"\"\"\n    return re.match(r'\\s*#?\\s*$', line) is not None\n";
        let probe = refused(11);
        let want = "import re\n\n\ndef junk(line):\n    \"\"\"\n    Blank or a lone '#'.\n    \"\"\"\n    return re.match(r'\\s*#?\\s*$', line) is not None\n";
        for p in [Some(&probe), None] {
            let r = reconcile(program, "junk", p).unwrap();
            assert_eq!(r.counts, ExampleCounts { found: 2, kept: 0, corrected: 0, dropped: 2 });
            assert_eq!(r.program, want);
        }
        // A report whose lines do not fall on `>>>` lines is not trusted line by line.
        let off = report(9, vec![example(5, 1, true, Some("True\n"))]);
        assert_eq!(reconcile(program, "junk", Some(&off)).unwrap().program, want);
    }

    #[test]
    fn the_probe_report_is_read_from_the_last_marker_and_the_check_names_the_count() {
        let out = format!("noise {PROBE_MARKER}{{}}\n{PROBE_MARKER}{{\"lines\": 3, \"examples\": []}}\n");
        assert_eq!(read_probe(&out).unwrap().lines, 3);
        assert!(read_probe("no report").is_none());
        let t = check_tests("import unittest\n", "f", 2);
        assert!(t.starts_with("import unittest\n"));
        assert!(t.contains("finder.find(f, \"f\"") && t.contains("(0, 2)"));
        assert!(probe_tests("", "f", &[], None, &[]).contains("doc = f.__doc__"));
    }
}
