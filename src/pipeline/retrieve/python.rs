//! Parsing Python files with tree-sitter and picking the top-level functions that can stand alone:
//! at least one argument, a `return` with a value, no nested definitions, no imports or
//! `global`/`nonlocal` inside, every free name an import of an allowed package or a builtin, and at
//! least one allowed module used. Each survivor comes with just the import lines it needs.
//!
//! Why tree-sitter-python: it is actively maintained, parses current Python (3.12 type parameters,
//! `match`, PEP 701 f-strings) and is fast; `rustpython-parser` has been frozen since its authors
//! moved to ruff's parser, which is not on crates.io. tree-sitter recovers from errors instead of
//! failing, so a file is treated as unparsable when its tree has any error node, and as Python 2
//! (which this grammar still accepts) when it has a `print`/`exec` statement.
//!
//! `async def` functions are rejected: the generated tests are plain synchronous `unittest` cases.
//! Lambdas and comprehensions inside a function are fine; nested `def`/`class` are not (the paper's
//! rule, and they would need their own tests).

use super::names::{free_names, Binding, FileScope, FreeNames};
use super::packages::{is_builtin, top_level, Packages};
use super::reasons::Reject;
use std::collections::{BTreeMap, BTreeSet};
use tree_sitter::Node;

use crate::python::{parse, text};

/// Size limits on a function, in lines of its source (decorators included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fewer lines than this is too trivial to test (default 3: a `def` and a lone `return` are out).
    pub min_lines: usize,
    /// More lines than this is too long for a small model's context (default 150).
    pub max_lines: usize,
    /// A longer line suggests generated or minified code (default 200 characters).
    pub max_line_chars: usize,
    /// Files larger than this many bytes are skipped unparsed (default 1 MB: generated code).
    pub max_file_bytes: usize,
    /// Keep functions that use no module, only builtins (default false: UnitCoder, like BigCodeBench,
    /// is about code that calls libraries, so these are dropped as `no_module`). Not a size limit, but
    /// the per-function filter's other knob, so it travels with them.
    pub allow_builtin_only: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_lines: 3,
            max_lines: 150,
            max_line_chars: 200,
            max_file_bytes: 1_000_000,
            allow_builtin_only: false,
        }
    }
}

/// A function that passed the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The function's name.
    pub name: String,
    /// `def name(params) -> ret:` as written.
    pub signature: String,
    /// The docstring literal as written (with its quotes), if the body opens with one.
    pub docstring: Option<String>,
    /// The function's source (decorators included), as in the file.
    pub text: String,
    /// The import lines it needs, minimal and sorted (`import numpy as np`, `from os import path`).
    pub imports: Vec<String>,
    /// The dotted modules it uses, sorted.
    pub modules: Vec<String>,
    /// 1-based first and last line in the source file.
    pub lines: (usize, usize),
}

/// A top-level function the filter dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub reason: Reject,
    /// The function's name.
    pub name: String,
    /// Its first line in the file (1-based).
    pub line: usize,
    /// The offending name, module or size.
    pub detail: String,
}

/// One top-level function's fate.
pub type Outcome = Result<Extracted, Rejected>;

/// What became of one file.
#[derive(Debug)]
pub enum FileOutcome {
    /// The file was skipped whole (too large, unparsable, Python 2).
    Skipped(Reject),
    /// Each top-level function, in file order, kept or rejected with a reason and a detail.
    Functions(Vec<Outcome>),
}

/// Parses one file and filters its top-level functions.
pub fn extract(src: &str, packages: &Packages, limits: &Limits) -> FileOutcome {
    if src.len() > limits.max_file_bytes {
        return FileOutcome::Skipped(Reject::FileTooLarge);
    }
    let Some(tree) = parse(src) else {
        return FileOutcome::Skipped(Reject::SyntaxError);
    };
    let root = tree.root_node();
    if root.has_error() {
        return FileOutcome::Skipped(Reject::SyntaxError);
    }
    if contains_kind(root, &["print_statement", "exec_statement"]) {
        return FileOutcome::Skipped(Reject::Python2);
    }
    let scope = FileScope::of(root, src);
    let mut out = Vec::new();
    let mut cursor = root.walk();
    for stmt in root.named_children(&mut cursor) {
        let def = match stmt.kind() {
            "function_definition" => stmt,
            "decorated_definition" => match stmt.child_by_field_name("definition") {
                Some(d) if d.kind() == "function_definition" => d,
                _ => continue,
            },
            _ => continue,
        };
        out.push(function(stmt, def, src, &scope, packages, limits).map_err(|(reason, detail)| Rejected {
            reason,
            name: def.child_by_field_name("name").map(|n| text(n, src)).unwrap_or("").to_string(),
            line: stmt.start_position().row + 1,
            detail,
        }));
    }
    FileOutcome::Functions(out)
}

fn contains_kind(node: Node<'_>, kinds: &[&str]) -> bool {
    if kinds.contains(&node.kind()) {
        return true;
    }
    let mut c = node.walk();
    let found = node.named_children(&mut c).any(|child| contains_kind(child, kinds));
    found
}

/// What a walk over a function body found.
#[derive(Default)]
struct BodyFacts {
    nested_def: bool,
    import: bool,
    global: bool,
    return_value: bool,
    yields: bool,
}

fn body_facts(node: Node<'_>, facts: &mut BodyFacts) {
    match node.kind() {
        "function_definition" | "class_definition" => facts.nested_def = true,
        "import_statement" | "import_from_statement" | "future_import_statement" => facts.import = true,
        "global_statement" | "nonlocal_statement" => facts.global = true,
        "return_statement" => facts.return_value |= node.named_child_count() > 0,
        "yield" => facts.yields = true,
        _ => {}
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        body_facts(child, facts);
    }
}

fn function(
    outer: Node<'_>,
    def: Node<'_>,
    src: &str,
    scope: &FileScope,
    packages: &Packages,
    limits: &Limits,
) -> Result<Extracted, (Reject, String)> {
    let name = def.child_by_field_name("name").map(|n| text(n, src)).unwrap_or("").to_string();
    let fail = |r: Reject, detail: &str| Err((r, detail.to_string()));
    if def.child(0).is_some_and(|c| c.kind() == "async") {
        return fail(Reject::Async, "");
    }
    let params = def.child_by_field_name("parameters");
    let n_args = params.map_or(0, |p| {
        let mut c = p.walk();
        let n = p
            .named_children(&mut c)
            .filter(|a| !matches!(a.kind(), "keyword_separator" | "positional_separator"))
            .count();
        n
    });
    if n_args == 0 {
        return fail(Reject::NoArguments, "");
    }
    let Some(body) = def.child_by_field_name("body") else {
        return fail(Reject::SyntaxError, "");
    };
    let mut facts = BodyFacts::default();
    body_facts(body, &mut facts);
    if facts.nested_def {
        return fail(Reject::NestedDefinition, "");
    }
    if facts.import {
        return fail(Reject::InnerImport, "");
    }
    if facts.global {
        return fail(Reject::GlobalStatement, "");
    }
    if facts.yields {
        return fail(Reject::Generator, "");
    }
    if !facts.return_value {
        return fail(Reject::NoReturnValue, "");
    }
    let fn_text = text(outer, src);
    let n_lines = fn_text.lines().count();
    if n_lines < limits.min_lines {
        return fail(Reject::TooShort, &format!("{n_lines} lines"));
    }
    if n_lines > limits.max_lines {
        return fail(Reject::TooLong, &format!("{n_lines} lines"));
    }
    if let Some(len) = fn_text.lines().map(|l| l.chars().count()).max().filter(|&m| m > limits.max_line_chars) {
        return fail(Reject::LongLine, &format!("{len} characters"));
    }
    let (imports, modules) = resolve(&free_names(outer, def, &name, src), scope, packages)?;
    if let Some(m) = modules.iter().find(|m| !packages.allows(m)) {
        return fail(Reject::DisallowedModule, top_level(m));
    }
    if modules.is_empty() && !limits.allow_builtin_only {
        return fail(Reject::NoModule, "");
    }
    let sig_end = def.child_by_field_name("return_type").or(params).map_or(body.start_byte(), |n| n.end_byte());
    let signature = format!("{}:", src.get(def.start_byte()..sig_end).unwrap_or(""));
    Ok(Extracted {
        name,
        signature,
        docstring: docstring(body, src),
        text: fn_text.to_string(),
        imports,
        modules: modules.into_iter().collect(),
        lines: (outer.start_position().row + 1, outer.end_position().row + 1),
    })
}

fn docstring(body: Node<'_>, src: &str) -> Option<String> {
    let first = body.named_child(0)?;
    if first.kind() != "expression_statement" || first.named_child_count() != 1 {
        return None;
    }
    let lit = first.named_child(0)?;
    matches!(lit.kind(), "string" | "concatenated_string").then(|| text(lit, src).to_string())
}

/// Resolves free names against the file scope: the minimal import lines and the modules used, or
/// the reason the function cannot stand alone.
pub fn resolve(
    free: &FreeNames,
    scope: &FileScope,
    packages: &Packages,
) -> Result<(Vec<String>, BTreeSet<String>), (Reject, String)> {
    let mut plain = BTreeSet::new();
    let mut from: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    for (name, chains) in free {
        let Some(bindings) = scope.imports.get(name) else {
            if scope.defined.contains(name) {
                return Err((Reject::UsesFileLocal, name.clone()));
            }
            if is_builtin(name) {
                continue;
            }
            let reason = if scope.star_import { Reject::StarImport } else { Reject::UndefinedName };
            return Err((reason, name.clone()));
        };
        for binding in choose(bindings, chains, packages) {
            match binding {
                Binding::Relative => return Err((Reject::RelativeImport, name.clone())),
                Binding::Module { module, alias } => {
                    modules.insert(module.clone());
                    plain.insert(match alias {
                        Some(a) => format!("import {module} as {a}"),
                        None => format!("import {module}"),
                    });
                }
                Binding::From { module, item, alias } => {
                    modules.insert(module.clone());
                    let what = match alias {
                        Some(a) => format!("{item} as {a}"),
                        None => item.clone(),
                    };
                    from.entry(module.clone()).or_default().insert(what);
                }
            }
        }
    }
    let mut lines: Vec<String> = plain.into_iter().collect();
    lines.extend(
        from.into_iter()
            .map(|(m, items)| format!("from {m} import {}", items.into_iter().collect::<Vec<_>>().join(", "))),
    );
    Ok((lines, modules))
}

/// Which of the bindings of one name the function needs. Python keeps the last binding, except that
/// several un-aliased `import a.b` / `import a.c` all bind `a` and each makes a submodule available:
/// keep those whose dotted path the function's attribute chains walk (`a.b.f` needs `import a.b`),
/// falling back to the shortest one, which is enough to bind the name. When the file offers
/// alternatives (`try: import simplejson as json except ImportError: import json`), only the allowed
/// ones are considered, if there are any.
fn choose<'b>(all: &'b [Binding], chains: &BTreeSet<Vec<String>>, packages: &Packages) -> Vec<&'b Binding> {
    let is_allowed = |b: &&Binding| b.module().is_some_and(|m| packages.allows(m));
    let n_allowed = all.iter().filter(is_allowed).count();
    let bindings: Vec<&'b Binding> = if n_allowed == 0 || n_allowed == all.len() {
        all.iter().collect()
    } else {
        all.iter().filter(is_allowed).collect()
    };
    let Some(&last) = bindings.last() else {
        return Vec::new();
    };
    let submodules: Vec<&Binding> =
        bindings.iter().copied().filter(|b| matches!(b, Binding::Module { alias: None, .. })).collect();
    if !matches!(last, Binding::Module { alias: None, .. }) || submodules.len() < 2 {
        return vec![last];
    }
    let walked = |b: &Binding| {
        let Binding::Module { module, .. } = b else {
            return false;
        };
        let tail: Vec<&str> = module.split('.').skip(1).collect();
        tail.is_empty() || chains.iter().any(|c| c.len() >= tail.len() && c.iter().zip(&tail).all(|(a, b)| a == b))
    };
    let mut chosen: Vec<&Binding> = submodules.iter().copied().filter(|b| walked(b)).collect();
    // A plain `import a` is redundant next to `import a.b`, which binds `a` too.
    if chosen.len() > 1 {
        chosen.retain(|b| b.module().is_some_and(|m| m.contains('.')));
    }
    if chosen.is_empty() {
        if let Some(shortest) = submodules.iter().min_by_key(|b| b.module().map_or(0, str::len)) {
            chosen.push(shortest);
        }
    }
    chosen
}
