//! Expected values that the retrieved function contradicts. A code model writing tests guesses the
//! results it cannot compute in its head: `safe_version("1. 2. 3") == "1.2.3"`, a weekday off by
//! one. The function is real code, so the guess is suspected before the code (see the synth stage's
//! `cut_disagreeing_tests`); cutting such a test threw its input away with its wrong value, and
//! suites were left with only the empty and one-element cases a model gets right (three of the 13
//! accepted in the README's stdlib run). Here the input is kept and the expected value is replaced
//! by what the function returns, as the docstring step corrects `>>>` examples.
//!
//! Only a test that calls the function and whose one check, its last statement, has no message
//! qualifies: an equality assertion between a literal and a value computed from the function's
//! (`self.assertEqual(f(x), literal)` either way round, or of a variable assigned from such a call;
//! the literal may be held in a variable assigned once and used nowhere else, `expected = [1, 2]`),
//! a truth assertion of the function's own value (`self.assertFalse(is_prime(9))`; a flipped
//! comparison would check almost nothing), or an assertion that a value computed from the
//! function's is `None` (it becomes an equality check with the value) or is not. The probe
//! (`expected_probe.py`, with the reader `expected_values.py`) runs each such test in the sandbox
//! with its check replaced by a recorder, twice, then again in fresh interpreters under five other
//! hash seeds, and reports the value where every run saw the same one and a literal states it
//! exactly (no unordered sets, no floats inside containers): a list made from a set of strings is
//! the same twice in one interpreter, and would make a flaky test. The literal is replaced by that value (a float is then compared with
//! `assertAlmostEqual` to 7 significant digits), a truth check on a `bool` becomes the other one,
//! the method's comments are dropped, and the rewritten suite runs against the original again, like
//! a suite with tests cut.

use std::collections::BTreeMap;
use std::ops::Range;

use tree_sitter::Node;

use super::{calls, parse, split::asserts, test_functions, text};

/// Where the probe's JSON line starts in its stdout.
pub const PROBE_MARKER: &str = "@@unitcoder-expected@@";
/// The reader, shared by the sandboxed run and the fresh interpreters that confirm its values.
const VALUES: &str = include_str!("expected_values.py");
const PROBE: &str = include_str!("expected_probe.py");
/// The longest value written into a test, in characters: an expected value, not a dump.
const MAX_VALUE_CHARS: usize = 240;
/// The assertions that compare two values for equality.
const EQUALITY_CHECKS: [&str; 6] =
    ["assertEqual", "assertEquals", "assertListEqual", "assertTupleEqual", "assertDictEqual", "assertSequenceEqual"];
/// The assertions of a value's truth: one that fails on a `bool` is the other one.
const TRUTH_CHECKS: [&str; 2] = ["assertTrue", "assertFalse"];
/// The assertions that a value is `None` or is not: one that fails becomes an equality check with
/// the value, or the other one.
const NONE_CHECKS: [&str; 2] = ["assertIsNone", "assertIsNotNone"];

/// A test whose one check the probe can read: an equality check between a value under test and a
/// literal, a truth check of the function's value, or a check that a value is `None` or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// `Class.method`, as the verdict names the test.
    pub test: String,
    class: String,
    method: String,
    /// The assertion method (`assertEqual`) and its name's bytes in the tests.
    check: String,
    check_at: Range<usize>,
    /// Which positional argument of the check is the value under test.
    actual: usize,
    /// What the check states of the value.
    stated: Stated,
    /// Where the check's last argument ends (`, places=N` goes there).
    args_end: usize,
    /// The comments in the test method (one may state the old value: `# Monday`), whole lines where
    /// a comment stands alone on its line.
    comments: Vec<Range<usize>>,
}

/// What a check states of the value under test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stated {
    /// Equality with a literal: its bytes in the tests, in the check or on the right of the one
    /// assignment of a variable used only there (`expected = [1, 2]`).
    Literal(Range<usize>),
    /// Its truth (`assertTrue`/`assertFalse`).
    Truth,
    /// That it is `None`, or is not (`assertIsNone`/`assertIsNotNone`).
    Nothing,
}

/// Whether `n` is a literal: numbers, strings without interpolation, `True`/`False`/`None`, and
/// lists, tuples, sets and dicts of them.
fn literal(n: Node<'_>) -> bool {
    fn children(n: Node<'_>) -> Vec<Node<'_>> {
        let mut c = n.walk();
        n.named_children(&mut c).filter(|x| x.kind() != "comment").collect()
    }
    match n.kind() {
        "integer" | "float" | "true" | "false" | "none" => true,
        "string" => !children(n).iter().any(|c| c.kind() == "interpolation"),
        "concatenated_string" | "list" | "tuple" | "set" | "parenthesized_expression" => {
            children(n).into_iter().all(literal)
        }
        "dictionary" => children(n).into_iter().all(|p| {
            p.kind() == "pair"
                && p.child_by_field_name("key").is_some_and(literal)
                && p.child_by_field_name("value").is_some_and(literal)
        }),
        "unary_operator" => n.child_by_field_name("argument").is_some_and(|a| matches!(a.kind(), "integer" | "float")),
        _ => false,
    }
}

/// Whether `arg` computes its value from the function's: it calls `name`, or is a variable that an
/// assignment among `stmts` set from an expression that calls it (`result = f(x)`).
fn from_function(arg: Node<'_>, stmts: &[Node<'_>], name: &str, src: &str) -> bool {
    if calls(arg, name, src) {
        return true;
    }
    arg.kind() == "identifier"
        && stmts.iter().any(|s| {
            let a = s.named_child(0).filter(|a| s.kind() == "expression_statement" && a.kind() == "assignment");
            a.is_some_and(|a| {
                a.child_by_field_name("left").map(|l| text(l, src)) == Some(text(arg, src))
                    && a.child_by_field_name("right").is_some_and(|r| calls(r, name, src))
            })
        })
}

/// Where the literal of `arg` stands when `arg` is a variable that `def` assigns once, among its
/// statements `stmts`, from a literal, and uses nowhere else but in `arg` (`expected = [1, 2]`): a
/// variable the test also passes to the function is its input, which the rewrite must not change.
fn literal_variable(arg: Node<'_>, def: Node<'_>, stmts: &[Node<'_>], src: &str) -> Option<Range<usize>> {
    if arg.kind() != "identifier" {
        return None;
    }
    let name = text(arg, src);
    let assigned: Vec<Node> = stmts
        .iter()
        .filter_map(|s| s.named_child(0).filter(|a| s.kind() == "expression_statement" && a.kind() == "assignment"))
        .filter(|a| a.child_by_field_name("left").is_some_and(|l| l.kind() == "identifier" && text(l, src) == name))
        .collect();
    let [assignment] = assigned.as_slice() else { return None };
    let right = assignment.child_by_field_name("right").filter(|r| literal(*r))?;
    // The name twice in the method: where it is assigned and where it is checked.
    let mut uses = 0;
    let mut stack = vec![def];
    while let Some(n) = stack.pop() {
        uses += usize::from(n.kind() == "identifier" && text(n, src) == name);
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    (uses == 2).then(|| right.byte_range())
}

/// The comments inside `def`: whole lines (with their newline) where a comment stands alone on its
/// line, else from the end of the code before it to its end.
fn comments_in(def: Node<'_>, src: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut stack = vec![def];
    while let Some(n) = stack.pop() {
        if n.kind() == "comment" {
            let line_start = src[..n.start_byte()].rfind('\n').map_or(0, |i| i + 1);
            let before = &src[line_start..n.start_byte()];
            if before.trim().is_empty() {
                let end = src[n.end_byte()..].find('\n').map_or(src.len(), |i| n.end_byte() + i + 1);
                out.push(line_start..end);
            } else {
                out.push(line_start + before.trim_end().len()..n.end_byte());
            }
            continue;
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    out.sort_by_key(|r| r.start);
    out
}

/// The check of test method `def` when it is its last statement and only assertion, in a method
/// that calls `name`, with no message or other argument: an equality check between a literal (or a
/// variable that only holds one) and a value computed from the function's, a truth check of the
/// function's value (`f(x)` itself: the function is the predicate, not a comparison whose flip would
/// check almost nothing), or a check that a value computed from the function's is `None` or not.
fn expectation(def: Node<'_>, test: &str, name: &str, src: &str) -> Option<Expectation> {
    if def.kind() != "function_definition" || !calls(def, name, src) {
        return None;
    }
    let body = def.child_by_field_name("body")?;
    let mut c = body.walk();
    let stmts: Vec<Node> = body.named_children(&mut c).filter(|s| s.kind() != "comment").collect();
    let last = *stmts.last()?;
    if stmts.iter().filter(|s| asserts(**s, src)).count() != 1 || !asserts(last, src) {
        return None;
    }
    let call = last.named_child(0).filter(|c| last.kind() == "expression_statement" && c.kind() == "call")?;
    let function = call.child_by_field_name("function")?;
    let attribute = function.child_by_field_name("attribute")?;
    if function.kind() != "attribute" || function.child_by_field_name("object").map(|o| text(o, src)) != Some("self") {
        return None;
    }
    let check = text(attribute, src);
    let args = call.child_by_field_name("arguments")?;
    let mut c = args.walk();
    let named: Vec<Node> = args.named_children(&mut c).collect();
    // A message (`msg=`, a third argument) may state the old value; a comment among the arguments
    // too: such checks are cut, not rewritten.
    if named.iter().any(|a| a.kind().ends_with("splat") || matches!(a.kind(), "keyword_argument" | "comment")) {
        return None;
    }
    let stated_at = |n: Node<'_>| {
        if literal(n) {
            Some(n.byte_range())
        } else {
            literal_variable(n, def, &stmts, src)
        }
    };
    let (actual, stated) = match named.as_slice() {
        [a, b] if EQUALITY_CHECKS.contains(&check) => match (stated_at(*a), stated_at(*b)) {
            (None, Some(at)) if from_function(*a, &stmts, name, src) => (0, Stated::Literal(at)),
            (Some(at), None) if from_function(*b, &stmts, name, src) => (1, Stated::Literal(at)),
            _ => return None,
        },
        [a] if TRUTH_CHECKS.contains(&check)
            && a.kind() == "call"
            && a.child_by_field_name("function").map(|f| text(f, src)) == Some(name) =>
        {
            (0, Stated::Truth)
        }
        [a] if NONE_CHECKS.contains(&check) && from_function(*a, &stmts, name, src) => (0, Stated::Nothing),
        _ => return None,
    };
    let mut comments = comments_in(def, src);
    // A comment after the method's last line may lie outside its node.
    let line_end = src[last.end_byte()..].find('\n').map_or(src.len(), |i| last.end_byte() + i);
    if src[last.end_byte()..line_end].trim_start().starts_with('#') && !comments.iter().any(|c| c.end > last.end_byte())
    {
        comments.push(last.end_byte()..line_end);
    }
    let (class, method) = test.split_once('.')?;
    Some(Expectation {
        test: test.to_string(),
        class: class.to_string(),
        method: method.to_string(),
        check: check.to_string(),
        check_at: attribute.byte_range(),
        actual,
        stated,
        args_end: named.last()?.end_byte(),
        comments,
    })
}

/// The tests among `failing` (`Class.method`) whose check the probe can read: as the last statement
/// and only assertion of a test method that calls `name`, with no message, an equality check
/// between a literal (or a variable that only holds one) and a value computed from the function's,
/// a truth check of the function's own value, or a check that a value computed from the function's
/// is `None` or not. None when the code does not parse.
pub fn expectations(tests: &str, name: &str, failing: &[String]) -> Vec<Expectation> {
    let (Some(functions), Some(tree)) = (test_functions(tests), parse(tests)) else { return Vec::new() };
    functions
        .into_iter()
        .filter(|(test, _, is_test)| *is_test && test.contains('.') && failing.contains(test))
        .filter_map(|(test, r, _)| {
            let def = tree.root_node().descendant_for_byte_range(r.start, r.end)?;
            expectation(def, &test, name, tests)
        })
        .fold(Vec::new(), |mut found: Vec<Expectation>, e| {
            // A name defined twice (a method, or its class) runs only as its last definition.
            found.retain(|f| f.test != e.test);
            found.push(e);
            found
        })
}

/// `tests` followed by the probe of `targets`' values, for `program` (which the probe runs again,
/// with the tests, in fresh interpreters under other hash seeds).
pub fn probe_tests(tests: &str, program: &str, targets: &[Expectation]) -> String {
    let list: Vec<(&str, &str, &str, usize)> =
        targets.iter().map(|t| (t.class.as_str(), t.method.as_str(), t.check.as_str(), t.actual)).collect();
    // Identifiers and small numbers: the JSON array is a Python literal, and a JSON string is a
    // Python string literal.
    let list = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    let child = format!("{}\n\n\n{}\n\n{VALUES}", program.trim_end(), tests.trim_end());
    let child = serde_json::to_string(&child).unwrap_or_else(|_| "''".into());
    let probe = PROBE
        .replace("__UC_TARGETS__", &list)
        .replace("__UC_MAX_CHARS__", &MAX_VALUE_CHARS.to_string())
        .replace("__UC_CHILD__", &child);
    format!("{}\n{VALUES}{probe}", tests.trim_end())
}

/// The probe's report in a verdict's stdout: per test, the repr of its value.
pub fn read_probe(stdout: &str) -> Option<BTreeMap<String, String>> {
    let at = stdout.rfind(PROBE_MARKER)?;
    let line = stdout[at + PROBE_MARKER.len()..].lines().next()?;
    serde_json::from_str(line).ok()
}

/// The rewrite that makes `t`'s check state `value` (a repr the probe read): the literal replaced by
/// the value (a float compared with `assertAlmostEqual` to 7 significant digits, so the last digits
/// of another build do not matter), a truth check turned into the one the value meets, or a `None`
/// check into an equality check with the value (`assertIsNone` when it is `None`). `None` when the
/// value is not a literal.
fn rewrite(t: &Expectation, value: &str) -> Option<Vec<(Range<usize>, String)>> {
    // `repr` writes control characters escaped; a raw one (a lone `\r`) would read differently to
    // Python than to the parser.
    if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
        return None;
    }
    let literal_at = match (&t.stated, value) {
        (Stated::Literal(at), _) => Some(at.clone()),
        (Stated::Truth, "True") => return Some(vec![(t.check_at.clone(), "assertTrue".to_string())]),
        (Stated::Truth, "False") => return Some(vec![(t.check_at.clone(), "assertFalse".to_string())]),
        (Stated::Nothing, "None") => return Some(vec![(t.check_at.clone(), "assertIsNone".to_string())]),
        (Stated::Nothing, _) => None,
        (Stated::Truth, _) => return None,
    };
    // The value must itself read as one literal (the probe checked that Python reads it back).
    let wrapped = format!("({value})\n");
    let parsed = parse(&wrapped)?;
    let expr = parsed.root_node().named_child(0).and_then(|s| s.named_child(0)).and_then(|p| p.named_child(0));
    let expr = expr.filter(|e| !parsed.root_node().has_error() && literal(*e))?;
    let float = match expr.kind() {
        "float" => true,
        "unary_operator" => expr.child_by_field_name("argument").is_some_and(|a| a.kind() == "float"),
        _ => false,
    };
    // The check's name and what follows its last argument: a value that is not `None` where the
    // check said it was is checked for equality, a float to 7 significant digits.
    let check = match (&literal_at, float) {
        (_, true) => "assertAlmostEqual",
        (Some(_), false) => t.check.as_str(),
        (None, false) => "assertEqual",
    };
    let mut after = if literal_at.is_none() { format!(", {value}") } else { String::new() };
    if float {
        if !matches!(t.check.as_str(), "assertEqual" | "assertEquals" | "assertIsNone") {
            return None;
        }
        // `assertAlmostEqual` rounds the difference to `places` decimals (7 by default): scaled to
        // the value, so a tiny value is not met by 0 and a large one not held to its last bit.
        let v: f64 = value.parse().ok()?;
        let places = if v == 0.0 { 7 } else { 7 - v.abs().log10().floor() as i64 };
        if places != 7 {
            after.push_str(&format!(", places={places}"));
        }
    }
    let mut edits = literal_at.map(|at| vec![(at, value.to_string())]).unwrap_or_default();
    if check != t.check {
        edits.push((t.check_at.clone(), check.to_string()));
    }
    if !after.is_empty() {
        edits.push((t.args_end..t.args_end, after));
    }
    Some(edits)
}

/// `tests` with each target's check rewritten to state the value the probe read (and the comments
/// of its method dropped), and the tests so rewritten; `None` when nothing was, or when the result does
/// not parse.
pub fn reconcile(
    tests: &str,
    targets: &[Expectation],
    values: &BTreeMap<String, String>,
) -> Option<(String, Vec<String>)> {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for t in targets {
        let Some(more) = values.get(&t.test).and_then(|v| rewrite(t, v)) else { continue };
        // A comment inside the replaced literal goes with it.
        let inside = |c: &Range<usize>| more.iter().any(|(at, _)| c.start < at.end && at.start < c.end);
        edits.extend(t.comments.iter().filter(|c| !inside(c)).map(|c| (c.clone(), String::new())));
        edits.extend(more);
        done.push(t.test.clone());
    }
    if done.is_empty() {
        return None;
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = tests.to_string();
    for (r, with) in edits {
        out.replace_range(r, &with);
    }
    let tree = parse(&out)?;
    (!tree.root_node().has_error()).then_some((out, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_typical_1(self):\n        # 2023-01-01 was a Monday\n        self.assertEqual(weekday(2023, 1, 1), 6)  # Monday\n\n    def test_typical_2(self):\n        result = weekday(2023, 1, 2)\n        self.assertEqual(0, result)\n\n    def test_almost(self):\n        self.assertAlmostEqual(weekday(1, 2, 3), 1.5)\n\n    def test_both(self):\n        self.assertEqual(weekday(1, 1, 1), weekday(1, 1, 1))\n\n    def test_fstring(self):\n        self.assertEqual(str(weekday(1, 1, 1)), f\"{1}\")\n\n    def test_loop(self):\n        for y in (1, 2):\n            self.assertEqual(weekday(y, 1, 1), 3)\n\n    def test_other(self):\n        self.assertEqual(len([1]), 2)\n\n    def test_nested(self):\n        self.assertEqual(weekday(1, 1, 1), [(1, -2), {\"a\": b\"x\"}, None])\n\n    def test_truth(self):\n        self.assertFalse(weekday(1, 1, 1))\n\n    def test_comparison(self):\n        self.assertFalse(weekday(1, 1, 1) > 3)\n\n    def test_input_only(self):\n        data = [3, 1]\n        result = weekday(data, 1, 1)\n        self.assertEqual(len(data), 4)\n\n    def test_mean(self):\n        self.assertEqual(weekday(1, 1, 2), 2)\n\n    def test_tiny(self):\n        self.assertEqual(weekday(1, 1, 4), 0)\n\n    def test_message(self):\n        self.assertEqual(weekday(1, 1, 3), 2, \"two\")\n\n    def test_keyword(self):\n        self.assertEqual(weekday(1, 1, 3), 2, msg=\"two\")\n\n    def test_variable(self):\n        expected = [1, 2]  # two\n        self.assertEqual(weekday(1, 1, 5), expected)\n\n    def test_variable_input(self):\n        data = [1, 2]\n        self.assertEqual(weekday(data, 1, 1), data)\n\n    def test_variable_twice(self):\n        expected = 1\n        expected = 2\n        self.assertEqual(weekday(1, 1, 6), expected)\n\n    def test_none(self):\n        result = weekday(1, 1, 7)\n        self.assertIsNone(result)\n\n    def test_none_float(self):\n        self.assertIsNone(weekday(1, 1, 8))\n\n    def test_not_none(self):\n        self.assertIsNotNone(weekday(1, 1, 9))\n\n    def test_twice(self):\n        self.assertEqual(weekday(9, 9, 9), 1)\n\n    def test_twice(self):\n        self.assertEqual(weekday(8, 8, 8), 1)\n";

    fn targets() -> Vec<Expectation> {
        expectations(SUITE, "weekday", &crate::pipeline::code::test_names(SUITE))
    }

    #[test]
    fn only_one_plain_check_of_the_functions_value_against_a_literal_or_its_truth_qualifies() {
        let found: Vec<(String, usize)> = targets().into_iter().map(|e| (e.test, e.actual)).collect();
        let names = [
            "typical_1",
            "typical_2",
            "nested",
            "truth",
            "mean",
            "tiny",
            "variable",
            "none",
            "none_float",
            "not_none",
            "twice",
        ];
        let positions = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let expected: Vec<(String, usize)> =
            names.iter().zip(positions).map(|(n, p)| (format!("TestCases.test_{n}"), p)).collect();
        assert_eq!(found, expected);
        // A name defined twice runs as its last definition.
        assert!(targets()
            .iter()
            .any(|t| t.test.ends_with("test_twice") && t.args_end > SUITE.rfind("(8, 8, 8)").unwrap()));
        // Only the failing tests named are looked at.
        assert_eq!(expectations(SUITE, "weekday", &["TestCases.test_typical_2".to_string()]).len(), 1);
        assert!(expectations("def f(:\n", "weekday", &["TestCases.test_a".to_string()]).is_empty());
    }

    #[test]
    fn the_value_read_replaces_the_literal_and_the_comments_that_may_state_the_old_one() {
        let targets = targets();
        let program = "def weekday(y, m, d):\n    return 0\n";
        let probe = probe_tests(SUITE, program, &targets);
        assert!(probe.starts_with(SUITE.trim_end()) && probe.contains("def _uc_read("));
        assert!(
            probe.contains(
                r#"[["TestCases","test_typical_1","assertEqual",0],["TestCases","test_typical_2","assertEqual",1]"#
            ),
            "{probe}"
        );
        // The fresh interpreters get the program, the tests and the reader as one string literal.
        assert!(probe.contains(r#"_UC_CHILD = "def weekday(y, m, d):\n    return 0\n\n\nimport unittest"#), "{probe}");
        let reported = [
            ("typical_1", "6"),
            ("typical_2", "'x\\n'"),
            ("nested", "__import__('os')"),
            ("truth", "True"),
            ("mean", "2.5"),
            ("tiny", "3.0000000000000004e-09"),
            ("twice", "'a\rb'"),
            ("variable", "[3, 4]"),
            ("none", "'x'"),
            ("none_float", "0.5"),
            ("not_none", "None"),
        ];
        let report: BTreeMap<String, String> =
            reported.iter().map(|(n, v)| (format!("TestCases.test_{n}"), v.to_string())).collect();
        let stdout = format!("noise\n{PROBE_MARKER}{}\n", serde_json::to_string(&report).unwrap());
        let values = read_probe(&stdout).unwrap();
        let (code, done) = reconcile(SUITE, &targets, &values).unwrap();
        let done: Vec<&str> = done.iter().map(|d| d.trim_start_matches("TestCases.test_")).collect();
        assert_eq!(
            done,
            ["typical_1", "typical_2", "truth", "mean", "tiny", "variable", "none", "none_float", "not_none"]
        );
        assert!(
            code.contains("    def test_typical_1(self):\n        self.assertEqual(weekday(2023, 1, 1), 6)\n\n"),
            "{code}"
        );
        assert!(!code.contains("Monday"), "{code}");
        assert!(code.contains("self.assertEqual('x\\n', result)"), "{code}");
        // A value that is not a literal, or holds a raw control character, is never written in.
        assert!(!code.contains("__import__") && code.contains("{\"a\": b\"x\"}"), "{code}");
        assert!(!code.contains('\r') && code.contains("weekday(8, 8, 8), 1)"), "{code}");
        assert!(code.contains("self.assertTrue(weekday(1, 1, 1))"), "{code}");
        // A float is compared to 7 significant digits.
        assert!(code.contains("self.assertAlmostEqual(weekday(1, 1, 2), 2.5)\n"), "{code}");
        assert!(code.contains("self.assertAlmostEqual(weekday(1, 1, 4), 3.0000000000000004e-09, places=16)"), "{code}");
        // A variable assigned a literal once and used only in the check takes the value; one
        // assigned twice, or that is also the function's input, is left as it was.
        assert!(
            code.contains("    def test_variable(self):\n        expected = [3, 4]\n        self.assertEqual(weekday(1, 1, 5), expected)\n"),
            "{code}"
        );
        assert!(
            !code.contains("# two") && code.contains("expected = 2\n") && code.contains("weekday(data, 1, 1), data)")
        );
        // A value where the check said `None` is checked for equality; `None` where it said not.
        assert!(code.contains("self.assertEqual(result, 'x')\n"), "{code}");
        assert!(code.contains("self.assertAlmostEqual(weekday(1, 1, 8), 0.5, places=8)\n"), "{code}");
        assert!(code.contains("self.assertIsNone(weekday(1, 1, 9))\n"), "{code}");
        // Checks with a message, of a comparison or of the input only are left as they were.
        for kept in ["2, \"two\")", "msg=\"two\")", "self.assertFalse(weekday(1, 1, 1) > 3)", "len(data), 4)"] {
            assert!(code.contains(kept), "{kept} in {code}");
        }
        assert_eq!(reconcile(SUITE, &targets, &BTreeMap::new()), None);
        assert_eq!(read_probe("no marker"), None);
    }
}
