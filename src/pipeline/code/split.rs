//! Splitting a model's test methods into one method per assertion. Models write one `test_x` method
//! that checks five things; when one expected value is wrong the whole method fails and says nothing
//! about the other four. Split, each assertion is its own test: the verdict tells which expectations
//! the original function meets, so a wrong one can be cut on its own (see the synth stage's
//! `cut_disagreeing_tests`) and the feedback of a fix round names the exact failing check.
//!
//! Each new method keeps every non-assertion statement that came before its assertion (set-up that
//! later checks may rely on) and drops the other assertions; a statement that contains an assertion
//! anywhere inside it (a loop of checks, a `with self.assertRaises(...)` block) counts as one.

use tree_sitter::Node;

use super::{parse, text, top_level};

/// Whether `n` is, or contains, an assertion: a `self.assert...`/`self.fail...` call or an `assert`
/// statement (nested function definitions are not looked into).
pub(super) fn asserts(n: Node<'_>, src: &str) -> bool {
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        match n.kind() {
            "assert_statement" => return true,
            "call" => {
                let f = n.child_by_field_name("function").map_or("", |f| text(f, src));
                if let Some(m) = f.strip_prefix("self.") {
                    if m.starts_with("assert") || m.starts_with("fail") {
                        return true;
                    }
                }
            }
            "function_definition" | "class_definition" | "lambda" => continue,
            _ => {}
        }
        let mut c = n.walk();
        stack.extend(n.named_children(&mut c));
    }
    false
}

/// The source of statement `n` from the start of its line (its indentation) to its end.
fn with_indent<'a>(n: Node<'_>, src: &'a str) -> &'a str {
    let start = src[..n.start_byte()].rfind('\n').map_or(0, |i| i + 1);
    &src[start..n.end_byte()]
}

/// The methods that replace test method `m` (whose name is `name`), or `None` to keep it as it is.
fn split_method(m: Node<'_>, name: &str, taken: &[String], src: &str) -> Option<String> {
    let body = m.child_by_field_name("body")?;
    let mut c = body.walk();
    let stmts: Vec<Node> = body.named_children(&mut c).filter(|s| s.kind() != "comment").collect();
    let checks: Vec<usize> = (0..stmts.len()).filter(|&i| asserts(stmts[i], src)).collect();
    if checks.len() < 2 {
        return None;
    }
    let names: Vec<String> = (1..=checks.len()).map(|k| format!("{name}_{k}")).collect();
    if names.iter().any(|n| taken.contains(n)) {
        return None;
    }
    let def_indent = with_indent(m, src).len() - text(m, src).len();
    let pad = &with_indent(m, src)[..def_indent];
    let mut out = Vec::new();
    for (k, &at) in checks.iter().enumerate() {
        let mut lines = vec![format!("{pad}def {}(self):", names[k])];
        for (i, s) in stmts.iter().enumerate().take(at + 1) {
            if i == at || !checks.contains(&i) {
                lines.push(with_indent(*s, src).to_string());
            }
        }
        out.push(lines.join("\n"));
    }
    Some(out.join("\n\n"))
}

/// `tests` with every test method of its `TestCase` classes that makes two or more assertions split
/// into one method per assertion (`test_x` becomes `test_x_1`, `test_x_2`, ...). Methods with
/// decorators or parameters besides `self` stay as they are; `None` when the code does not parse.
pub fn split_assertions(tests: &str) -> Option<String> {
    let tree = parse(tests)?;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (_, def) in top_level(tree.root_node()) {
        let is_case = def.kind() == "class_definition"
            && def.child_by_field_name("superclasses").is_some_and(|s| text(s, tests).contains("TestCase"));
        let Some(body) = def.child_by_field_name("body").filter(|_| is_case) else {
            continue;
        };
        let mut c = body.walk();
        let methods: Vec<Node> = body.named_children(&mut c).filter(|m| m.kind() == "function_definition").collect();
        let taken: Vec<String> =
            methods.iter().filter_map(|m| m.child_by_field_name("name")).map(|n| text(n, tests).to_string()).collect();
        for m in methods {
            let name = m.child_by_field_name("name").map_or("", |n| text(n, tests));
            let only_self =
                m.child_by_field_name("parameters").is_some_and(|p| text(p, tests).replace(' ', "") == "(self)");
            if !name.starts_with("test") || !only_self {
                continue;
            }
            if let Some(new) = split_method(m, name, &taken, tests) {
                let start = m.start_byte() - (with_indent(m, tests).len() - text(m, tests).len());
                edits.push((start..m.end_byte(), new));
            }
        }
    }
    let mut out = tests.to_string();
    for (range, new) in edits.into_iter().rev() {
        out.replace_range(range, &new);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_all(self):\n        \
        # typical\n        x = [1, 2]\n        self.assertEqual(total(x), 3)\n        x.append(4)\n        \
        self.assertEqual(total(x), 7)\n        with self.assertRaises(TypeError):\n            total(None)\n\n    \
        def test_one(self):\n        self.assertTrue(total([]) == 0)\n";

    #[test]
    fn each_assertion_becomes_a_method_with_the_setup_before_it() {
        let out = split_assertions(SUITE).unwrap();
        let want = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_all_1(self):\n        \
            x = [1, 2]\n        self.assertEqual(total(x), 3)\n\n    def test_all_2(self):\n        x = [1, 2]\n        \
            x.append(4)\n        self.assertEqual(total(x), 7)\n\n    def test_all_3(self):\n        x = [1, 2]\n        \
            x.append(4)\n        with self.assertRaises(TypeError):\n            total(None)\n\n    \
            def test_one(self):\n        self.assertTrue(total([]) == 0)\n";
        assert_eq!(out, want);
        // Splitting is idempotent, and the result still parses as Python.
        assert_eq!(split_assertions(&out).unwrap(), out);
        assert!(!parse(&out).unwrap().root_node().has_error());
    }

    #[test]
    fn loops_of_checks_bare_asserts_and_odd_methods_are_handled() {
        let src = "class T(unittest.TestCase):\n    def test_a(self):\n        for v in [1, 2]:\n            \
                   self.assertGreater(f(v), 0)\n        assert f(0) == 0\n\n    @unittest.skip('x')\n    \
                   def test_b(self):\n        self.assertTrue(1)\n        self.assertTrue(2)\n\n    \
                   def helper(self):\n        self.assertTrue(1)\n        self.assertTrue(2)\n";
        let out = split_assertions(src).unwrap();
        assert!(out.contains("def test_a_1(self):\n        for v in [1, 2]:\n            self.assertGreater"), "{out}");
        assert!(out.contains("def test_a_2(self):\n        assert f(0) == 0"), "{out}");
        // Decorated tests and helpers are left alone.
        assert!(out.contains("def test_b(self):") && out.contains("def helper(self):"), "{out}");
        // A name that would collide keeps the method whole.
        let clash = "class T(unittest.TestCase):\n    def test_a(self):\n        self.assertTrue(1)\n        \
                     self.assertTrue(2)\n\n    def test_a_1(self):\n        self.assertTrue(3)\n";
        assert_eq!(split_assertions(clash).unwrap(), clash);
    }
}
