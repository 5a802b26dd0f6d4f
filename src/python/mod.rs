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

/// How deep a syntax tree may nest: deeper than code worth keeping (CPython refuses brackets past
/// 200 levels, and its compiler overflows on a chain `1+1+…` of about 2,600 terms), and shallow
/// enough for the crate's recursive tree walks on a 2 MiB worker stack, in a debug build too. One
/// 40 KB corpus file of nested brackets, or a hostile model reply, would otherwise overflow a
/// thread's stack and abort the whole run.
pub const MAX_DEPTH: usize = 1000;

/// Parses Python source with this thread's parser; `None` when tree-sitter could not parse at all,
/// or when the tree nests deeper than [`MAX_DEPTH`] (code not worth keeping), which callers treat
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

/// What interpreter `python` is, for keys and records: its version, its executable and a digest of
/// the distributions it can import (name and version of each), so that installing or upgrading any
/// library changes it. One interpreter start (about 0.1-0.3 s).
pub fn environment(python: &std::path::Path) -> std::io::Result<serde_json::Value> {
    const ASK: &str = "import hashlib, importlib.metadata as m, json, sys\nd = sorted({(x.metadata['Name'] or '').lower(): x.version for x in m.distributions()}.items())\nprint(json.dumps({'version': sys.version.split()[0], 'executable': sys.executable, 'distributions': len(d), 'digest': hashlib.sha256(repr(d).encode()).hexdigest()[:16]}))\n";
    let out = std::process::Command::new(python).args(["-I", "-c", ASK]).output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!("{} could not say what it is: {}", python.display(), err.trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| std::io::Error::other(format!("{}: {e}", python.display())))
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
        // A chain of a few hundred terms (a long concatenation) is shallow enough.
        assert!(parse(&format!("x = 1{}\n", "+1".repeat(500))).is_some());
    }

    /// Every walk the pipeline makes over model output, on code just under the limit, in a thread
    /// with Rust's default 2 MiB stack (as the worker threads have): none may overflow it, or one
    /// hostile reply would abort a whole run.
    #[test]
    fn the_pipelines_tree_walks_survive_the_deepest_tree_parse_allows() {
        use crate::pipeline::code;
        let deep = |n: usize| format!("{}x{}", "[".repeat(n), "]".repeat(n));
        let chain = |n: usize| format!("x{}", " + x".repeat(n));
        for expr in [deep(MAX_DEPTH - 12), chain(MAX_DEPTH - 12)] {
            let program = format!("import os\n\n\ndef f(x):\n    \"\"\"Doc.\n\n    >>> f(1)\n    1\n    \"\"\"\n    if x:\n        raise ValueError(os.sep)\n    return {expr}\n");
            assert!(parse(&program).is_some_and(|t| !t.root_node().has_error()), "within the limit");
            let tests = format!("import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), {expr})\n\n    def test_b(self):\n        with self.assertRaises(ValueError):\n            f(0)\n");
            let reply = format!("```python\n{program}\n{tests}```\n");
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let _ = extract::reply_code(&reply);
                    let _ = extract::solution_for(&reply, "f");
                    let _ = extract::keep_needed(&program, "f");
                    let _ = code::find_function(&program, "f");
                    let _ = code::imports(&program);
                    let _ = code::tests_from_code(&format!("{program}\n{tests}"), "f");
                    let _ = code::test_names(&tests);
                    let _ = code::only_expects_exceptions(&tests);
                    let _ = code::without_tests(&tests, &["test_b".to_string()]);
                    let _ = code::calls_function(&tests, "f");
                    let _ = code::stub_body(&program, "f");
                    let _ = code::special_cased(&program, &program, &tests);
                    let _ = code::code_without_docs(&program);
                    let _ = code::split_at_docstring(&program, "f");
                    let _ = code::docstring_of(&program, "f");
                    let _ = code::examples::has_examples(&program, "f");
                    let _ = code::raises::raised_in_code(&program, "f");
                    let _ = code::split_assertions(&tests);
                    let _ = code::types::returns_claim(&program, "f");
                    let _ = code::types::param_claims_of(&program, "f");
                    let _ = crate::pipeline::quality::mutate::mutants(&program, "f", 1, 50);
                })
                .unwrap()
                .join()
                .unwrap();
        }
    }

    fn parse_unchecked(src: &str) -> Tree {
        let mut parser = Parser::new();
        parser.set_language(&tree_sitter_python::LANGUAGE.into()).unwrap();
        parser.parse(src, None).unwrap()
    }
}
