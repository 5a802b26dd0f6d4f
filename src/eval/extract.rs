//! Code extraction from chat-model output: take the fenced code block that defines the entry point
//! (or the longest one), then keep only what a solution needs at module level: imports, and the
//! functions, classes and constants the entry point reaches. Top-level demo code (prints, asserts,
//! `if __name__ == "__main__":`) is dropped, as it would run, and could fail, before the tests.

use std::collections::{BTreeSet, HashMap};

/// Extracts a runnable solution for `entry_point` from a model's reply.
pub fn extract_code(reply: &str, entry_point: &str) -> String {
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

/// The contents of every fenced block (```lang ... ```), an unterminated last fence included.
pub fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
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

#[derive(Debug, PartialEq)]
enum Kind {
    Import,
    /// A definition (function, class or assignment) of these names.
    Def(Vec<String>),
    Other,
}

/// Splits source into top-level statements: a statement starts at a non-indented line that is not
/// a continuation (closing bracket) and runs until the next one; decorators stay with their def.
fn statements(code: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut depth: i32 = 0;
    let mut pending_decorator = false;
    for line in code.lines() {
        let starts_new = depth <= 0
            && !line.is_empty()
            && !line.starts_with([' ', '\t', ')', ']', '}'])
            && !pending_decorator
            && !line.starts_with("else")
            && !line.starts_with("elif")
            && !line.starts_with("except")
            && !line.starts_with("finally");
        if starts_new || out.is_empty() {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
        if depth <= 0 && !line.starts_with([' ', '\t']) {
            pending_decorator = line.starts_with('@');
        }
        depth += bracket_delta(line);
    }
    out
}

/// Net bracket depth change of a line, ignoring brackets in strings and comments (roughly: quotes
/// toggle, `#` ends the line).
fn bracket_delta(line: &str) -> i32 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') => break,
            (None, '(' | '[' | '{') => d += 1,
            (None, ')' | ']' | '}') => d -= 1,
            _ => {}
        }
    }
    d
}

fn classify(stmt: &str) -> Kind {
    let head = stmt.lines().find(|l| !l.trim_start().starts_with('@')).unwrap_or("").trim_end();
    if head.starts_with("import ") || head.starts_with("from ") {
        return Kind::Import;
    }
    for kw in ["def ", "async def ", "class "] {
        if let Some(rest) = head.strip_prefix(kw) {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            return Kind::Def(vec![name]);
        }
    }
    // `NAME = ...`, `A, B = ...`, `NAME: T = ...` (but not `==`).
    if let Some(pos) = head.find('=') {
        let (lhs, rhs) = head.split_at(pos);
        if !rhs.starts_with("==") && !lhs.ends_with(['!', '<', '>']) {
            let names: Vec<String> = lhs
                .split([',', ':'])
                .next()
                .into_iter()
                .chain(lhs.split(',').skip(1))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .collect();
            if !names.is_empty() {
                return Kind::Def(names);
            }
        }
    }
    Kind::Other
}

fn identifiers(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// Keeps imports and the definitions reachable from `entry_point`; when the code does not define
/// the entry point, keeps every import and definition.
pub fn keep_needed(code: &str, entry_point: &str) -> String {
    let stmts = statements(code);
    let kinds: Vec<Kind> = stmts.iter().map(|s| classify(s)).collect();
    let mut defs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in kinds.iter().enumerate() {
        if let Kind::Def(names) = k {
            for n in names {
                defs.entry(n.as_str()).or_default().push(i);
            }
        }
    }
    let mut keep = vec![false; stmts.len()];
    if defs.contains_key(entry_point) {
        let mut todo = vec![entry_point.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            for &i in defs.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                keep[i] = true;
                todo.extend(identifiers(&stmts[i]).into_iter().filter(|n| defs.contains_key(n.as_str())));
            }
        }
    } else {
        for (i, k) in kinds.iter().enumerate() {
            keep[i] = matches!(k, Kind::Def(_));
        }
    }
    let mut out = String::new();
    for (i, s) in stmts.iter().enumerate() {
        if keep[i] || kinds[i] == Kind::Import {
            out.push_str(s);
        }
    }
    out
}

/// Import lines of `prompt` that `code` lacks, prepended so that a chat answer which dropped the
/// prompt's `from typing import List` still runs.
pub fn with_prompt_imports(prompt: &str, code: &str) -> String {
    let mut head = String::new();
    for stmt in statements(prompt) {
        if classify(&stmt) == Kind::Import && !code.contains(stmt.trim()) {
            head.push_str(stmt.trim_end());
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
        let code = extract_code(REPLY, "solve");
        assert!(code.starts_with("import math\nfrom typing import List\n"), "{code}");
        assert!(code.contains("LIMIT = 10") && code.contains("def helper(x):") && code.contains("def solve("));
        assert!(!code.contains("UNUSED") && !code.contains("unrelated") && !code.contains("@staticmethod"));
        assert!(!code.contains("print(") && !code.contains("assert") && !code.contains("__main__"));
    }

    #[test]
    fn picks_the_block_that_defines_the_entry_point() {
        let reply = "```\nx = 1\nprint(x)\nprint(x)\nprint(x)\n```\nand\n```py\ndef f(a):\n    return (a +\n1)\n```";
        assert_eq!(extract_code(reply, "f"), "def f(a):\n    return (a +\n1)\n");
    }

    #[test]
    fn unfenced_and_unterminated_replies() {
        assert_eq!(extract_code("def f():\n    return 1\nf()", "f"), "def f():\n    return 1\n");
        assert_eq!(extract_code("```python\ndef f():\n    return 2", "f"), "def f():\n    return 2\n");
    }

    #[test]
    fn multi_line_statements_and_else_branches_stay_whole() {
        let code = "try:\n    import numpy\nexcept ImportError:\n    numpy = None\nTABLE = {\n'a': 1,\n}\ndef f():\n    return TABLE['a']\n";
        let out = keep_needed(code, "f");
        assert!(out.contains("TABLE = {\n'a': 1,\n}\n") && out.contains("def f():"), "{out}");
    }

    #[test]
    fn prompt_imports_are_added_when_missing() {
        let out = with_prompt_imports("from typing import List\n\ndef f(x: List[int]):\n", "def f(x):\n    return x\n");
        assert_eq!(out, "from typing import List\ndef f(x):\n    return x\n");
    }
}
