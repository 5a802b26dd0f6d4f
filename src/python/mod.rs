//! Reading Python source: the one tree-sitter parser the crate uses (the retrieve stage, the
//! synthesis pipeline's checks and mutants, and eval's code extraction all parse through
//! [`parse`]), the one code extractor for model replies ([`extract`]), and the one decoder of
//! source files' bytes ([`source`]: BOM and PEP 263 declaration, for `check` and `retrieve` alike).
//! Model output is only ever parsed here, never run: running happens in the sandbox.

mod codecs;
pub mod extract;
pub mod source;

use std::cell::RefCell;
use tree_sitter::{Node, Parser, Tree};

thread_local! {
    // A parser per worker thread: tree-sitter parsers are not Sync, and building one per file wastes time.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

/// How deep a syntax tree may nest. CPython compiles nothing this deep (a chain `1+1+…` of about
/// 2,600 terms already overflows its compiler, and brackets stop at 200 levels), while the crate's
/// tree walks recurse: one 40 KB corpus file of nested brackets, or a hostile model reply, would
/// otherwise overflow a thread's stack and abort the whole run.
pub const MAX_DEPTH: usize = 3000;

/// Parses Python source with this thread's parser; `None` when tree-sitter could not parse at all,
/// or when the tree nests deeper than [`MAX_DEPTH`] (code no Python compiles), which callers treat
/// as unparseable. tree-sitter recovers from errors instead of failing: callers that need valid code
/// check `has_error()` on the nodes they use.
pub fn parse(src: &str) -> Option<Tree> {
    let tree = PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut parser = Parser::new();
            parser.set_language(&tree_sitter_python::LANGUAGE.into()).ok()?;
            *slot = Some(parser);
        }
        slot.as_mut()?.parse(src, None)
    })?;
    (depth(&tree, MAX_DEPTH) <= MAX_DEPTH).then_some(tree)
}

/// The tree's depth (the root alone is 1), counted without recursion and no further than `limit` + 1.
fn depth(tree: &Tree, limit: usize) -> usize {
    let mut cursor = tree.walk();
    let (mut at, mut deepest) = (1, 1);
    loop {
        if cursor.goto_first_child() {
            at += 1;
            deepest = deepest.max(at);
            if deepest > limit {
                return deepest;
            }
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return deepest;
            }
            at -= 1;
        }
    }
}

/// Which of the top-level modules `names` the interpreter `python` cannot import (found by
/// `importlib.util.find_spec`, which imports nothing; `-I`, as the sandbox runs it). A synth run over
/// functions whose libraries are not installed can verify none of them, and says so before the
/// model loads instead of rejecting them one by one as import errors.
pub fn missing_modules(python: &std::path::Path, names: &[String]) -> std::io::Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    const FIND: &str = "import importlib.util, sys\nfor n in sys.argv[1:]:\n    try:\n        found = importlib.util.find_spec(n) is not None\n    except (ImportError, ValueError):\n        found = False\n    if not found:\n        print(n)\n";
    let out = std::process::Command::new(python).args(["-I", "-c", FIND]).args(names).output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!("{} could not look for modules: {}", python.display(), err.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

/// The source text of a node.
pub fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_deeper_than_python_compiles_are_refused_without_recursion() {
        let nested = |n: usize| format!("x = {}{}\n", "[".repeat(n), "]".repeat(n));
        let tree = parse("def f(x):\n    return [x]\n").unwrap();
        // module > function_definition > block > return_statement > list > identifier
        assert_eq!(depth(&tree, MAX_DEPTH), 6);
        // Each bracket is one level: module > expression_statement > assignment > list… > `]`.
        assert!(parse(&nested(MAX_DEPTH - 4)).is_some());
        assert!(parse(&nested(MAX_DEPTH - 3)).is_none());
        // Deep enough to overflow a recursive walk on any thread; the count stops at the limit.
        let deep = parse_unchecked(&nested(200_000));
        assert_eq!(depth(&deep, 100), 101);
        assert!(parse(&nested(200_000)).is_none());
        // A long flat chain, as Python compiles it, is shallow enough.
        assert!(parse(&format!("x = 1{}\n", "+1".repeat(2000))).is_some());
    }

    fn parse_unchecked(src: &str) -> Tree {
        let mut parser = Parser::new();
        parser.set_language(&tree_sitter_python::LANGUAGE.into()).unwrap();
        parser.parse(src, None).unwrap()
    }
}
