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

/// The source text of a node.
pub fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}
