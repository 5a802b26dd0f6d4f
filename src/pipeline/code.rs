//! Reading model replies as Python (the code itself comes out of a reply through
//! [`crate::python::extract`]): splitting a function from the tests a model wrote around it,
//! comparing signatures, stubbing a body for the vacuity check, spotting fixes that special-case the tests' literals, and comparing programs while
//! ignoring docstrings and comments (for the polish stage). All parsing is tree-sitter: model output
//! is never run outside the sandbox.

mod docstring;
pub mod examples;
pub mod expected;
pub mod raises;
mod split;
pub mod types;

pub use docstring::{docstring_of, template_echo, with_docstring};
pub use split::split_assertions;

use std::collections::BTreeSet;
use tree_sitter::Node;

use crate::python::{parse, text};

/// A top-level function found in a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFunction {
    /// Its source, decorators included.
    pub text: String,
    /// Name, parameters and return annotation with all whitespace removed: equal keys, same signature.
    pub signature_key: String,
}

/// Iterates the top-level statements of `root`, looking through decorators.
fn top_level<'t>(root: Node<'t>) -> Vec<(Node<'t>, Node<'t>)> {
    let mut c = root.walk();
    root.named_children(&mut c)
        .map(|n| {
            let inner =
                if n.kind() == "decorated_definition" { n.child_by_field_name("definition").unwrap_or(n) } else { n };
            (n, inner)
        })
        .collect()
}

fn signature_key(def: Node<'_>, src: &str) -> String {
    let part = |f: &str| def.child_by_field_name(f).map(|n| text(n, src)).unwrap_or("");
    let raw = format!("{}{}->{}", part("name"), part("parameters"), part("return_type"));
    raw.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The top-level function `name` in `src`, if the program parses and defines it.
pub fn find_function(src: &str, name: &str) -> Option<FoundFunction> {
    let tree = parse(src)?;
    top_level(tree.root_node())
        .into_iter()
        .find(|(_, def)| {
            def.kind() == "function_definition" && def.child_by_field_name("name").map(|n| text(n, src)) == Some(name)
        })
        .filter(|(outer, _)| !outer.has_error())
        .map(|(outer, def)| FoundFunction {
            text: text(outer, src).to_string(),
            signature_key: signature_key(def, src),
        })
}

/// The top-level import statements of `src`, as written.
pub fn imports(src: &str) -> Vec<String> {
    let Some(tree) = parse(src) else {
        return Vec::new();
    };
    top_level(tree.root_node())
        .into_iter()
        .filter(|(n, _)| {
            matches!(n.kind(), "import_statement" | "import_from_statement" | "future_import_statement")
                && !n.has_error()
        })
        .map(|(n, _)| text(n, src).to_string())
        .collect()
}

/// The tests in a reply's code: everything at top level except a (re)definition of the function
/// under test and `if __name__ == "__main__":` blocks; `None` unless a class remains whose bases
/// mention `TestCase`. A reply cut off mid-method (the token limit) keeps its complete methods: the
/// code is cut before the last `def` until the class parses.
pub fn tests_from_code(code: &str, function: &str) -> Option<String> {
    let mut code = code;
    loop {
        if let Some(t) = tests_whole(code, function) {
            return Some(t);
        }
        let cut = code.rfind("\n    def ")?;
        if !code[..cut].contains("\n    def ") {
            return None;
        }
        code = &code[..cut + 1];
    }
}

fn tests_whole(code: &str, function: &str) -> Option<String> {
    let tree = parse(code)?;
    let mut kept = Vec::new();
    let mut has_case = false;
    for (outer, def) in top_level(tree.root_node()) {
        let is_fn = def.kind() == "function_definition"
            && def.child_by_field_name("name").map(|n| text(n, code)) == Some(function);
        let is_main = outer.kind() == "if_statement"
            && outer.child_by_field_name("condition").is_some_and(|c| text(c, code).contains("__name__"));
        if is_fn || is_main || outer.kind() == "ERROR" {
            continue;
        }
        if def.kind() == "class_definition"
            && def.child_by_field_name("superclasses").is_some_and(|s| text(s, code).contains("TestCase"))
            && !outer.has_error()
        {
            has_case = true;
        }
        kept.push(text(outer, code));
    }
    if !has_case {
        return None;
    }
    // SmolLM-sized models often call the function as a method (`self.f(...)`): the tests mean `f`.
    let body = (kept.join("\n\n") + "\n").replace(&format!("self.{function}("), &format!("{function}("));
    // Small models often forget the import the class needs; it is never wrong to add it.
    let imported = kept.iter().any(|k| {
        let k = k.trim_start();
        k.starts_with("import unittest") || k.starts_with("from unittest")
    });
    Some(if imported { body } else { format!("import unittest\n\n{body}") })
}

/// The functions of `tests` by name (`Class.method` for methods, `name` at top level), their byte
/// ranges, and whether each is a test (a `test*` method of a `TestCase` class); `None` when the code
/// does not parse.
fn test_functions(tests: &str) -> Option<Vec<(String, std::ops::Range<usize>, bool)>> {
    let tree = parse(tests)?;
    let mut found = Vec::new();
    let def_name = |n: Node<'_>| {
        let inner = if n.kind() == "decorated_definition" { n.child_by_field_name("definition")? } else { n };
        (inner.kind() == "function_definition").then(|| inner.child_by_field_name("name").map(|x| text(x, tests)))?
    };
    for (outer, def) in top_level(tree.root_node()) {
        if let Some(name) = def_name(outer) {
            found.push((name.to_string(), outer.byte_range(), false));
            continue;
        }
        let is_case = def.kind() == "class_definition"
            && def.child_by_field_name("superclasses").is_some_and(|s| text(s, tests).contains("TestCase"));
        let (Some(class), Some(body)) = (def.child_by_field_name("name"), def.child_by_field_name("body")) else {
            continue;
        };
        let mut c = body.walk();
        for m in body.named_children(&mut c) {
            let Some(method) = def_name(m) else { continue };
            found.push((
                format!("{}.{method}", text(class, tests)),
                m.byte_range(),
                is_case && method.starts_with("test"),
            ));
        }
    }
    Some(found)
}

/// The test methods of the `TestCase` classes of `tests`, as `Class.method` (none when the code
/// does not parse).
pub fn test_names(tests: &str) -> Vec<String> {
    test_functions(tests).unwrap_or_default().into_iter().filter(|(_, _, test)| *test).map(|(n, _, _)| n).collect()
}

/// Assertions that expect an exception (or a warning) rather than check a value.
const EXCEPTION_CHECKS: [&str; 6] =
    ["assertRaises", "assertRaisesRegex", "assertRaisesRegexp", "assertWarns", "assertWarnsRegex", "raises"];

/// Whether the test functions of `tests` assert something and every assertion expects an exception
/// (`assertRaises`, `assertWarns`, `pytest.raises`, ...): such a suite says what a function must
/// refuse, never what it must return. (`self.fail` counts as neither: it is how a test without
/// `assertRaises` expects an exception.)
pub fn only_expects_exceptions(tests: &str) -> bool {
    let (Some(functions), Some(tree)) = (test_functions(tests), parse(tests)) else { return false };
    let ranges: Vec<_> = functions.into_iter().filter(|(_, _, test)| *test).map(|(_, r, _)| r).collect();
    let (mut exceptions, mut values) = (0, 0);
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        let r = n.byte_range();
        // Only what lies in a test function: helpers and setUp assert nothing about the function.
        if !ranges.iter().any(|t| t.start < r.end && r.start < t.end) {
            continue;
        }
        match n.kind() {
            "assert_statement" => values += 1,
            "call" => {
                let name = n.child_by_field_name("function").and_then(|f| match f.kind() {
                    "attribute" => f.child_by_field_name("attribute").map(|a| text(a, tests)),
                    "identifier" => Some(text(f, tests)),
                    _ => None,
                });
                match name {
                    Some(name) if EXCEPTION_CHECKS.contains(&name) => exceptions += 1,
                    Some(name) if name.starts_with("assert") => values += 1,
                    _ => {}
                }
            }
            _ => {}
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    exceptions > 0 && values == 0
}

/// The test functions of `tests` that hold the literal `...` as a value (an argument, an expected
/// result: `assertEqual(f(...), ...)`), the prompt's placeholder left in place of a value; a body of
/// `...` alone is left to the vacuity check. None when the code does not parse.
pub fn placeholder_tests(tests: &str) -> Vec<String> {
    let (Some(functions), Some(tree)) = (test_functions(tests), parse(tests)) else { return Vec::new() };
    let mut at: Vec<usize> = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        if n.kind() == "ellipsis" && n.parent().is_some_and(|p| p.kind() != "expression_statement") {
            at.push(n.start_byte());
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    functions.into_iter().filter(|(_, r, test)| *test && at.iter().any(|b| r.contains(b))).map(|(n, _, _)| n).collect()
}

/// `tests` without the test functions named in `names` (`Class.method` for methods of a
/// `TestCase` class, `name` for top-level functions); `None` when no test method would remain in a
/// `TestCase` class, or the code does not parse.
pub fn without_tests(tests: &str, names: &[String]) -> Option<String> {
    let (cut, kept): (Vec<_>, Vec<_>) = test_functions(tests)?.into_iter().partition(|(n, _, _)| names.contains(n));
    if !kept.iter().any(|(_, _, test)| *test) {
        return None;
    }
    let mut out = String::new();
    let mut at = 0;
    for (_, r, _) in cut {
        // Cut whole lines: from the start of the definition's line to the end of its last line,
        // with the blank lines after it (which set it apart from the next), so that a cut test
        // leaves no gap of its own in the suite.
        let start = tests[..r.start].rfind('\n').map_or(0, |i| i + 1);
        let mut end = tests[r.end..].find('\n').map_or(tests.len(), |i| r.end + i + 1);
        while let Some(blank) = tests[end..].find('\n').filter(|&i| tests[end..end + i].trim().is_empty()) {
            end += blank + 1;
        }
        out.push_str(&tests[at..start.max(at)]);
        at = end.max(at);
    }
    out.push_str(&tests[at..]);
    Some(out)
}

/// Whether `tests` call the function `name` anywhere (tests of some other function, such as a
/// prompt's example copied back, check nothing about it).
pub fn calls_function(tests: &str, name: &str) -> bool {
    parse(tests).is_some_and(|tree| calls(tree.root_node(), name, tests))
}

/// Whether node `n` of `src` calls the function `name` anywhere inside it.
fn calls(n: Node<'_>, name: &str, src: &str) -> bool {
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        if n.kind() == "call" && n.child_by_field_name("function").map(|f| text(f, src)) == Some(name) {
            return true;
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    false
}

/// `program` with the body of its function `name` replaced by `raise NotImplementedError`: tests
/// that still pass against it check nothing about the function.
pub fn stub_body(program: &str, name: &str) -> Option<String> {
    let tree = parse(program)?;
    let (_, def) = top_level(tree.root_node()).into_iter().find(|(_, d)| {
        d.kind() == "function_definition" && d.child_by_field_name("name").map(|n| text(n, program)) == Some(name)
    })?;
    let body = def.child_by_field_name("body")?;
    let mut out = String::with_capacity(program.len());
    out.push_str(program.get(..body.start_byte())?);
    out.push_str("raise NotImplementedError");
    out.push_str(program.get(body.end_byte()..)?);
    Some(out)
}

/// Literals worth matching: numbers and strings that are not trivially common (0, 1, 2, -1, "",
/// one-character strings), as written.
fn literals(node: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    match node.kind() {
        "integer" | "float" => {
            let t = text(node, src);
            if !matches!(t, "0" | "1" | "2" | "0.0" | "1.0") {
                out.insert(t.to_string());
            }
            return;
        }
        "string" => {
            let t = text(node, src);
            let inner = t.trim_matches(|c| c == '"' || c == '\'');
            if inner.chars().count() > 1 {
                out.insert(inner.to_string());
            }
            return;
        }
        _ => {}
    }
    let mut c = node.walk();
    for child in node.children(&mut c) {
        literals(child, src, out);
    }
}

/// Literals inside assertions of `tests`: `assert` statements and `self.assert*(...)` calls.
fn assert_literals(node: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    let is_assert = node.kind() == "assert_statement"
        || (node.kind() == "call"
            && node
                .child_by_field_name("function")
                .is_some_and(|f| text(f, src).rsplit('.').next().unwrap_or("").starts_with("assert")));
    if is_assert {
        literals(node, src, out);
        return;
    }
    let mut c = node.walk();
    for child in node.children(&mut c) {
        assert_literals(child, src, out);
    }
}

/// Whether a fix special-cases the tests: a literal that the fix adds (absent from the original
/// function) and that appears in the tests' assertions. Returns the first such literal.
pub fn special_cased(original: &str, fix: &str, tests: &str) -> Option<String> {
    let lits = |src: &str| {
        let mut s = BTreeSet::new();
        if let Some(t) = parse(src) {
            literals(t.root_node(), src, &mut s);
        }
        s
    };
    let mut asserted = BTreeSet::new();
    if let Some(t) = parse(tests) {
        assert_literals(t.root_node(), tests, &mut asserted);
    }
    let before = lits(original);
    lits(fix).into_iter().find(|l| !before.contains(l) && asserted.contains(l))
}

fn is_docstring(n: Node<'_>) -> bool {
    n.kind() == "expression_statement"
        && n.named_child_count() == 1
        && n.named_child(0).is_some_and(|s| matches!(s.kind(), "string" | "concatenated_string"))
        && n.parent().is_some_and(|p| matches!(p.kind(), "block" | "module") && p.named_child(0) == Some(n))
}

fn code_tokens(n: Node<'_>, src: &str, out: &mut Vec<String>) {
    if n.kind() == "comment" || is_docstring(n) {
        return;
    }
    if n.child_count() == 0 || n.kind() == "string" {
        out.push(text(n, src).to_string());
        return;
    }
    let mut c = n.walk();
    for child in n.children(&mut c) {
        code_tokens(child, src, out);
    }
}

/// The program's tokens without comments and docstrings; `None` when it does not parse cleanly.
/// Two programs with equal results differ only in documentation.
pub fn code_without_docs(src: &str) -> Option<Vec<String>> {
    let tree = parse(src)?;
    if tree.root_node().has_error() {
        return None;
    }
    let mut out = Vec::new();
    code_tokens(tree.root_node(), src, &mut out);
    Some(out)
}

/// Splits a documented function into (everything up to and including its docstring, the rest of
/// the body): the prefix–completion format. `None` without a docstring.
pub fn split_at_docstring(program: &str, name: &str) -> Option<(String, String)> {
    let tree = parse(program)?;
    let (_, def) = top_level(tree.root_node()).into_iter().find(|(_, d)| {
        d.kind() == "function_definition" && d.child_by_field_name("name").map(|n| text(n, program)) == Some(name)
    })?;
    let first = def.child_by_field_name("body")?.named_child(0)?;
    if !is_docstring(first) {
        return None;
    }
    let cut = first.end_byte();
    let rest = program.get(cut..)?;
    let rest = rest.strip_prefix('\n').unwrap_or(rest);
    Some((format!("{}\n", program.get(..cut)?), rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_that_keep_the_prompts_ellipsis_as_a_value_are_found() {
        let tests = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_value(self):\n        self.assertEqual(f([1, 2]), ...)\n    def test_args(self):\n        self.assertTrue(f(...))\n    def test_real(self):\n        self.assertEqual(f([1]), [1])\n    def test_stub(self):\n        ...\n    def helper(self):\n        return f(...)\n";
        assert_eq!(placeholder_tests(tests), ["TestCases.test_value", "TestCases.test_args"]);
        let cut = without_tests(tests, &placeholder_tests(tests)).unwrap();
        assert_eq!(test_names(&cut), ["TestCases.test_real", "TestCases.test_stub"]);
        assert!(placeholder_tests("def f(:\n").is_empty());
    }

    #[test]
    fn tests_drop_the_repeated_function_and_main_block_but_keep_imports() {
        let code = "import unittest\nimport os\n\ndef f(a):\n    return a\n\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n\nif __name__ == '__main__':\n    unittest.main()\n";
        let t = tests_from_code(code, "f").unwrap();
        assert!(t.starts_with("import unittest\n\nimport os\n\nclass TestCases"));
        assert!(!t.contains("def f(") && !t.contains("__main__"));
        assert_eq!(tests_from_code("def f(a):\n    return a\n", "f"), None);
        let cut = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n    def test_b(self):\n        self.assertEqual(f(f(f(";
        let t = tests_from_code(cut, "f").unwrap();
        assert!(t.contains("test_a") && !t.contains("test_b"), "{t}");
    }

    #[test]
    fn tests_without_the_import_get_it_and_other_class_names_are_kept() {
        let code = "class TestF(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n";
        let t = tests_from_code(code, "f").unwrap();
        assert!(t.starts_with("import unittest\n\nclass TestF("), "{t}");
        let method = "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(self.f(1), 1)\n";
        let t = tests_from_code(method, "f").unwrap();
        assert!(t.contains("self.assertEqual(f(1), 1)"), "{t}");
        let with =
            "from unittest import TestCase\nclass T(TestCase):\n    def test_a(self):\n        self.assertTrue(f(1))\n";
        assert!(!tests_from_code(with, "f").unwrap().contains("import unittest\n"));
    }

    #[test]
    fn named_test_functions_are_cut_and_an_empty_case_is_none() {
        let t = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n\n    def test_b(self):\n        self.assertEqual(f(1, 2), 3)\n\ndef test_c():\n    self.assertEqual(x, 1)\n";
        let names = vec!["TestCases.test_b".to_string(), "test_c".to_string()];
        let cut = without_tests(t, &names).unwrap();
        assert_eq!(cut, "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n\n");
        // A cut test takes the blank lines after it: no gap is left where it was.
        let first = without_tests(t, &["TestCases.test_a".to_string()]).unwrap();
        assert!(
            first.starts_with("import unittest\nclass TestCases(unittest.TestCase):\n    def test_b(self):\n"),
            "{first}"
        );
        assert!(first.contains("f(1, 2), 3)\n\ndef test_c():"), "{first}");
        assert!(tests_from_code(&cut, "f").is_some(), "still a test class: {cut}");
        let all = vec!["TestCases.test_a".to_string(), "TestCases.test_b".to_string()];
        assert_eq!(without_tests(t, &all), None);
        // Only the case's `test*` methods count as tests; helpers and top-level functions do not.
        assert_eq!(test_names(t), ["TestCases.test_a", "TestCases.test_b"]);
        assert_eq!(test_names(&cut), ["TestCases.test_a"]);
        assert!(test_names("class T(unittest.TestCase):\n    def setUp(self):\n        pass\n").is_empty());
    }

    #[test]
    fn calls_function_looks_for_a_call_of_that_name() {
        let t = "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(mod.g(f(1)), 1)\n";
        assert!(calls_function(t, "f"));
        assert!(!calls_function(t, "h"));
        // A mention that is not a call does not count.
        assert!(!calls_function("x = f\n", "f"));
    }

    #[test]
    fn signatures_compare_without_whitespace_and_bodies_stub() {
        let a = find_function("import os\n\ndef f(a, b=1) -> int:\n    return a\n", "f").unwrap();
        let b = find_function("def f(a,  b = 1)->int:\n    return b\n", "f").unwrap();
        let c = find_function("def f(a, b=2):\n    return b\n", "f").unwrap();
        assert_eq!(a.signature_key, b.signature_key);
        assert_ne!(a.signature_key, c.signature_key);
        assert_eq!(
            stub_body("import os\n\ndef f(a):\n    x = a\n    return x\n", "f").unwrap(),
            "import os\n\ndef f(a):\n    raise NotImplementedError\n"
        );
    }

    #[test]
    fn special_casing_is_a_new_literal_from_the_tests_asserts() {
        let tests = "class T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(f(17), 'seventeen')\n";
        let orig = "def f(n):\n    return str(n)\n";
        let cheat = "def f(n):\n    if n == 17:\n        return 'seventeen'\n    return str(n)\n";
        assert_eq!(special_cased(orig, cheat, tests).as_deref(), Some("17"));
        assert_eq!(special_cased(orig, "def f(n):\n    return str(n + 0)\n", tests), None);
    }

    #[test]
    fn docs_and_comments_do_not_count_as_code_changes() {
        let a = "def f(a):\n    return a + 1\n";
        let b = "def f(a):\n    \"\"\"Adds one.\"\"\"\n    # why\n    return a + 1  # done\n";
        let c = "def f(a):\n    \"\"\"Adds two.\"\"\"\n    return a + 2\n";
        assert_eq!(code_without_docs(a), code_without_docs(b));
        assert_ne!(code_without_docs(a), code_without_docs(c));
        let (p, r) = split_at_docstring(b, "f").unwrap();
        assert_eq!(p, "def f(a):\n    \"\"\"Adds one.\"\"\"\n");
        assert_eq!(r, "    # why\n    return a + 1  # done\n");
    }

    #[test]
    fn suites_that_only_expect_exceptions_are_told_from_ones_that_check_values() {
        // BigCodeBench/471's suite after its DataFrame comparisons were cut.
        let raises = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_edge_case(self):\n        with self.assertRaises(ValueError):\n            task_func([None])\n    def test_error(self):\n        with self.assertRaises(TypeError):\n            task_func(123)\n";
        assert!(only_expects_exceptions(raises));
        let pytest = "import pytest, unittest\nclass T(unittest.TestCase):\n    def test(self):\n        with pytest.raises(KeyError):\n            f({})\n";
        assert!(only_expects_exceptions(pytest));
        // One value check is enough to say what the function returns.
        let value =
            format!("{raises}    def test_typical(self):\n        self.assertEqual(len(task_func(['a'])), 1)\n");
        assert!(!only_expects_exceptions(&value));
        let bare = format!("{raises}    def test_plain(self):\n        assert task_func(['a']) is not None\n");
        assert!(!only_expects_exceptions(&bare));
        // A helper's assertions, outside the test methods, do not count; no assertion at all is not this.
        let helper = "import unittest\nclass T(unittest.TestCase):\n    def check(self, x):\n        self.assertEqual(x, 1)\n    def test(self):\n        with self.assertRaises(ValueError):\n            f(-1)\n";
        assert!(only_expects_exceptions(helper));
        assert!(!only_expects_exceptions(
            "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        f(1)\n"
        ));
    }
}
