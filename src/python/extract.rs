//! The one code extractor for model replies, used by eval and by synthesis. A reply's code is its
//! Markdown-fenced blocks (an unterminated last fence runs to the end); [`solution_for`] (eval)
//! takes the block that defines the entry point and keeps only what a solution needs at module
//! level: imports, and the functions, classes and constants the entry point reaches, so top-level
//! demo code (prints, asserts, `if __name__ == "__main__":`) cannot run, and fail, before the tests.
//! [`reply_code`] (synthesis) joins every block, as the tests a model writes may sit in their own.
//! Statements are split with tree-sitter ([`crate::python::parse`]).

use super::{parse, text};
use std::collections::{BTreeSet, HashMap};
use tree_sitter::Node;

/// The contents of every fenced block (```lang ... ```), an unterminated last fence included when
/// it holds a line.
pub fn fenced_blocks(reply: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in reply.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    if let Some(lines) = current {
        if !lines.is_empty() {
            blocks.push(lines.join("\n"));
        }
    }
    blocks
}

/// A runnable solution for `entry_point` from a reply: the fenced block that defines it (else the
/// longest block; the whole reply when there is none), cut to what the entry point needs
/// ([`keep_needed`]).
pub fn solution_for(reply: &str, entry_point: &str) -> String {
    let blocks = fenced_blocks(reply);
    let def = format!("def {entry_point}");
    let chosen = if blocks.is_empty() {
        reply.to_string()
    } else {
        blocks
            .iter()
            .find(|b| b.contains(&def))
            .or_else(|| blocks.iter().max_by_key(|b| b.len()))
            .cloned()
            .unwrap_or_default()
    };
    keep_needed(&chosen, entry_point)
}

/// The code in a reply: its non-blank fenced blocks joined, or, without fences, the reply from its
/// first line that starts like Python code (empty when there is none).
pub fn reply_code(reply: &str) -> String {
    let blocks: Vec<String> = fenced_blocks(reply).into_iter().filter(|b| !b.trim().is_empty()).collect();
    if !blocks.is_empty() {
        return blocks.join("\n\n") + "\n";
    }
    let starts = ["import ", "from ", "def ", "class ", "@"];
    let lines: Vec<&str> = reply.lines().collect();
    match lines.iter().position(|l| starts.iter().any(|s| l.starts_with(s))) {
        Some(i) => lines[i..].join("\n") + "\n",
        None => String::new(),
    }
}

#[derive(Debug, PartialEq)]
enum Kind {
    Import,
    /// A definition (function, class or assignment) of these names.
    Def(Vec<String>),
    Other,
}

/// A top-level statement: its lines (from its first line to the next statement's, so blank lines
/// and trailing comments stay with it; always ending in a newline) and its kind.
struct Statement {
    text: String,
    kind: Kind,
}

/// Splits source into top-level statements. Statements that share a line (`a = 1; b = 2`) stay one,
/// kind of the first. Code tree-sitter cannot parse at all is one statement.
fn statements(code: &str) -> Vec<Statement> {
    let whole = || vec![Statement { text: with_newline(code), kind: Kind::Other }];
    let Some(tree) = parse(code) else {
        return whole();
    };
    let root = tree.root_node();
    let mut heads: Vec<(usize, Node<'_>)> = Vec::new();
    let mut cursor = root.walk();
    let mut broken = false;
    for node in root.named_children(&mut cursor) {
        let line_start = node.start_byte() - node.start_position().column;
        // Where tree-sitter cannot parse a statement (its grammar ends `return (a +` at the line
        // break that Python joins), the error piece after it belongs to it, as Python would read it.
        let continues_broken = node.is_error() && broken;
        broken = if continues_broken { true } else { node.has_error() };
        if continues_broken {
            continue;
        }
        if heads.last().is_none_or(|(start, _)| *start != line_start) {
            heads.push((line_start, node));
        }
    }
    if heads.is_empty() {
        return whole();
    }
    // Anything before the first statement (blank lines) belongs to it.
    heads[0].0 = 0;
    (0..heads.len())
        .map(|i| {
            let end = heads.get(i + 1).map_or(code.len(), |(start, _)| *start);
            Statement { text: with_newline(&code[heads[i].0..end]), kind: classify(heads[i].1, code) }
        })
        .collect()
}

fn with_newline(s: &str) -> String {
    let mut s: String = s.lines().flat_map(|l| [l, "\n"]).collect();
    if s.is_empty() {
        s.push('\n');
    }
    s
}

fn classify(node: Node<'_>, src: &str) -> Kind {
    let def = if node.kind() == "decorated_definition" { node.child_by_field_name("definition") } else { Some(node) };
    let Some(def) = def else {
        return Kind::Other;
    };
    match def.kind() {
        "import_statement" | "import_from_statement" | "future_import_statement" => Kind::Import,
        "function_definition" | "class_definition" => match def.child_by_field_name("name") {
            Some(name) => Kind::Def(vec![text(name, src).to_string()]),
            None => Kind::Other,
        },
        // `NAME = ...`, `A, B = ...`, `NAME: T = ...`; `a[0] = ...` defines nothing.
        "expression_statement" => {
            let assignment = def.named_child(0).filter(|n| n.kind() == "assignment");
            let Some(left) = assignment.and_then(|a| a.child_by_field_name("left")) else {
                return Kind::Other;
            };
            let names: Vec<String> = if left.kind() == "identifier" {
                vec![text(left, src).to_string()]
            } else {
                let mut c = left.walk();
                left.named_children(&mut c)
                    .filter(|n| n.kind() == "identifier")
                    .map(|n| text(n, src).to_string())
                    .collect()
            };
            if names.is_empty() {
                Kind::Other
            } else {
                Kind::Def(names)
            }
        }
        _ => Kind::Other,
    }
}

fn identifiers(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// Keeps imports and the definitions reachable from `entry_point`; when the code does not define
/// the entry point, keeps every import and definition.
pub fn keep_needed(code: &str, entry_point: &str) -> String {
    let stmts = statements(code);
    let mut defs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in stmts.iter().enumerate() {
        if let Kind::Def(names) = &s.kind {
            for n in names {
                defs.entry(n.as_str()).or_default().push(i);
            }
        }
    }
    let mut keep: Vec<bool> = stmts.iter().map(|s| s.kind == Kind::Import).collect();
    if defs.contains_key(entry_point) {
        let mut todo = vec![entry_point.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            for &i in defs.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                keep[i] = true;
                todo.extend(identifiers(&stmts[i].text).into_iter().filter(|n| defs.contains_key(n.as_str())));
            }
        }
    } else {
        for (k, s) in keep.iter_mut().zip(&stmts) {
            *k |= matches!(s.kind, Kind::Def(_));
        }
    }
    stmts.iter().zip(keep).filter(|(_, k)| *k).map(|(s, _)| s.text.as_str()).collect()
}

/// Import lines of `prompt` that `code` lacks, prepended so that a chat answer which dropped the
/// prompt's `from typing import List` still runs.
pub fn with_prompt_imports(prompt: &str, code: &str) -> String {
    let mut head = String::new();
    for stmt in statements(prompt) {
        if stmt.kind == Kind::Import && !code.contains(stmt.text.trim()) {
            head.push_str(stmt.text.trim_end());
            head.push('\n');
        }
    }
    format!("{head}{code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &str = "Here is the code:\n```python\nimport math\nfrom typing import List\n\nLIMIT = 10\nUNUSED = 3\n\ndef helper(x):\n    return math.sqrt(x) + LIMIT\n\n@staticmethod\ndef unrelated():\n    pass\n\ndef solve(xs: List[int]) -> float:\n    return sum(helper(x) for x in xs)\n\nprint(solve([1, 4]))\nassert solve([]) == 0\nif __name__ == \"__main__\":\n    solve([2])\n```\nThis works because...";

    #[test]
    fn keeps_imports_and_what_the_entry_point_reaches() {
        let code = solution_for(REPLY, "solve");
        assert!(code.starts_with("import math\nfrom typing import List\n"), "{code}");
        assert!(code.contains("LIMIT = 10") && code.contains("def helper(x):") && code.contains("def solve("));
        assert!(!code.contains("UNUSED") && !code.contains("unrelated") && !code.contains("@staticmethod"));
        assert!(!code.contains("print(") && !code.contains("assert") && !code.contains("__main__"));
    }

    #[test]
    fn picks_the_block_that_defines_the_entry_point() {
        let reply = "```\nx = 1\nprint(x)\nprint(x)\nprint(x)\n```\nand\n```py\ndef f(a):\n    return (a +\n1)\n```";
        assert_eq!(solution_for(reply, "f"), "def f(a):\n    return (a +\n1)\n");
    }

    #[test]
    fn unfenced_and_unterminated_replies() {
        assert_eq!(solution_for("def f():\n    return 1\nf()", "f"), "def f():\n    return 1\n");
        assert_eq!(solution_for("```python\ndef f():\n    return 2", "f"), "def f():\n    return 2\n");
    }

    #[test]
    fn a_bare_fence_then_a_language_line_is_dropped() {
        // The 0.5B model's habit: "```" then a line `python`, which alone would be a NameError.
        let reply = "```\npython\ndef f(x):\n    return x\n\n# Test\nassert f(1) == 1\n```";
        assert_eq!(solution_for(reply, "f"), "def f(x):\n    return x\n\n");
    }

    #[test]
    fn multi_line_statements_and_else_branches_stay_whole() {
        let code = "try:\n    import numpy\nexcept ImportError:\n    numpy = None\nTABLE = {\n'a': 1,\n}\ndef f():\n    return TABLE['a']\n";
        let out = keep_needed(code, "f");
        assert!(out.contains("TABLE = {\n'a': 1,\n}\n") && out.contains("def f():"), "{out}");
    }

    #[test]
    fn a_docstring_line_at_column_zero_stays_in_its_function() {
        let code = "def f():\n    \"\"\"Doc\nstill doc\n\"\"\"\n    return 1\nprint(f())\n";
        assert_eq!(keep_needed(code, "f"), "def f():\n    \"\"\"Doc\nstill doc\n\"\"\"\n    return 1\n");
    }

    #[test]
    fn cut_off_demo_code_after_a_whole_function_is_dropped() {
        let code = "def f(a):\n    return a\n\nprint(f(1";
        assert_eq!(keep_needed(code, "f"), "def f(a):\n    return a\n\n");
    }

    #[test]
    fn prompt_imports_are_added_when_missing() {
        let out = with_prompt_imports("from typing import List\n\ndef f(x: List[int]):\n", "def f(x):\n    return x\n");
        assert_eq!(out, "from typing import List\ndef f(x):\n    return x\n");
    }

    #[test]
    fn reply_code_joins_blocks_or_starts_at_the_first_code_line() {
        let fenced = "Sure.\n```python\nimport os\nx = 1\n```\nthen\n```\n\n```\n```\ny = 2\n```";
        assert_eq!(reply_code(fenced), "import os\nx = 1\n\ny = 2\n");
        assert_eq!(reply_code("Here:\n```py\ndef f(a):\n    return a"), "def f(a):\n    return a\n");
        assert_eq!(reply_code("Here you go\nimport re\nclass A: pass"), "import re\nclass A: pass\n");
        assert_eq!(reply_code("no code at all"), "");
    }
}
