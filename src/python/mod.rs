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

/// Parses Python source with this thread's parser; `None` when tree-sitter could not parse at all.
/// tree-sitter recovers from errors instead of failing: callers that need valid code check
/// `has_error()` on the nodes they use.
pub fn parse(src: &str) -> Option<Tree> {
    PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut parser = Parser::new();
            parser.set_language(&tree_sitter_python::LANGUAGE.into()).ok()?;
            *slot = Some(parser);
        }
        slot.as_mut()?.parse(src, None)
    })
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
