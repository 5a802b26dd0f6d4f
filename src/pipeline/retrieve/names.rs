//! Name analysis on the tree-sitter syntax tree: which names a top-level function reads from outside
//! itself (its free names, with the attribute chains hung off them), and how the file's module-level
//! imports bind names.
//!
//! Python makes a name local to a function when it is bound anywhere in it (parameter, assignment
//! target, `for`/`with`/`except` target, walrus, `del`, match capture). So the free names are the
//! names read anywhere minus the names bound anywhere. Lambda parameters and comprehension
//! variables are counted as bound for the whole function: a slight over-approximation (a name used
//! both as a comprehension variable and as a global elsewhere would be missed) that is rare in real
//! code and only ever errs towards keeping a function whose tests will then fail in the sandbox.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use tree_sitter::Node;

use crate::python::text;

/// One name a module-level import statement binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `import a.b.c` (binds `a`) or `import a.b as z` (binds `z`).
    Module {
        /// The dotted module imported.
        module: String,
        /// The `as` name, if any.
        alias: Option<String>,
    },
    /// `from m import x` or `from m import x as y`.
    From {
        /// The module imported from.
        module: String,
        /// The imported name.
        item: String,
        /// The `as` name, if any.
        alias: Option<String>,
    },
    /// `from . import x`, `from .m import x`: meaningless outside its package.
    Relative,
}

impl Binding {
    /// The module this binding imports from (`None` for relative imports).
    pub fn module(&self) -> Option<&str> {
        match self {
            Binding::Module { module, .. } | Binding::From { module, .. } => Some(module),
            Binding::Relative => None,
        }
    }
}

/// What a file's module level provides to its functions.
#[derive(Debug, Default)]
pub struct FileScope {
    /// Import bindings by bound name, in file order (a later import of the same name wins).
    pub imports: BTreeMap<String, Vec<Binding>>,
    /// Names the module level defines otherwise (functions, classes, assignments...).
    pub defined: HashSet<String>,
    /// Whether the file has a `from m import *`.
    pub star_import: bool,
}

impl FileScope {
    /// Collects the module-level imports and definitions of a parsed file (`root` is the `module`).
    /// Imports inside a top-level `try:` body count too (the `try: import x except ImportError:`
    /// idiom); other nested imports are conditional and ignored.
    pub fn of(root: Node<'_>, src: &str) -> Self {
        let mut scope = FileScope::default();
        let mut cursor = root.walk();
        for stmt in root.named_children(&mut cursor) {
            scope.statement(stmt, src, true);
        }
        scope
    }

    fn statement(&mut self, stmt: Node<'_>, src: &str, top: bool) {
        match stmt.kind() {
            "import_statement" => self.import(stmt, src),
            "import_from_statement" => self.import_from(stmt, src),
            "function_definition" | "class_definition" => {
                if let Some(name) = stmt.child_by_field_name("name") {
                    self.defined.insert(text(name, src).to_string());
                }
            }
            "decorated_definition" => {
                if let Some(def) = stmt.child_by_field_name("definition") {
                    self.statement(def, src, top);
                }
            }
            "try_statement" if top => {
                // The body and the `except` handlers: `try: import a except ImportError: import b`.
                let mut blocks = Vec::new();
                blocks.extend(stmt.child_by_field_name("body"));
                let mut c = stmt.walk();
                for clause in stmt.named_children(&mut c).filter(|n| n.kind() == "except_clause") {
                    let mut cc = clause.walk();
                    blocks.extend(clause.named_children(&mut cc).filter(|n| n.kind() == "block"));
                }
                for block in blocks {
                    let mut c = block.walk();
                    for inner in block.named_children(&mut c) {
                        self.statement(inner, src, false);
                    }
                }
                self.bound_anywhere(stmt, src);
            }
            _ => self.bound_anywhere(stmt, src),
        }
    }

    /// Every name bound anywhere inside a module-level statement is module-level state.
    fn bound_anywhere(&mut self, node: Node<'_>, src: &str) {
        let mut bound = BTreeSet::new();
        collect_bindings(node, src, &mut bound);
        self.defined.extend(bound);
    }

    fn import(&mut self, stmt: Node<'_>, src: &str) {
        let mut c = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut c) {
            let (module, alias) = dotted_and_alias(name, src);
            let bound = alias.clone().unwrap_or_else(|| module.split('.').next().unwrap_or("").to_string());
            self.imports.entry(bound).or_default().push(Binding::Module { module, alias });
        }
    }

    fn import_from(&mut self, stmt: Node<'_>, src: &str) {
        let Some(module_node) = stmt.child_by_field_name("module_name") else {
            return;
        };
        let relative = module_node.kind() == "relative_import";
        let module = text(module_node, src).to_string();
        let mut c = stmt.walk();
        if stmt.named_children(&mut c).any(|n| n.kind() == "wildcard_import") {
            self.star_import = true;
            return;
        }
        let mut c = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut c) {
            let (item, alias) = dotted_and_alias(name, src);
            let bound = alias.clone().unwrap_or_else(|| item.clone());
            let binding =
                if relative { Binding::Relative } else { Binding::From { module: module.clone(), item, alias } };
            self.imports.entry(bound).or_default().push(binding);
        }
    }
}

/// `a.b` or `a.b as c` → ("a.b", Some("c")).
fn dotted_and_alias(node: Node<'_>, src: &str) -> (String, Option<String>) {
    if node.kind() == "aliased_import" {
        let name = node.child_by_field_name("name").map(|n| text(n, src).to_string()).unwrap_or_default();
        let alias = node.child_by_field_name("alias").map(|n| text(n, src).to_string());
        (normalize_dotted(&name), alias)
    } else {
        (normalize_dotted(text(node, src)), None)
    }
}

/// Dotted names may contain whitespace or line continuations (`a . b`); drop it.
fn normalize_dotted(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '\\').collect()
}

/// The free names a function reads, each with the attribute chains read off it
/// (`np.linalg.norm(x)` gives `np` → `["linalg", "norm"]`).
pub type FreeNames = BTreeMap<String, BTreeSet<Vec<String>>>;

/// The free names of a top-level function. `outer` is the `decorated_definition` around `def` when
/// there is one. Python evaluates the header (decorators, parameter defaults and annotations, the
/// return annotation) in the enclosing module scope, so those names are free even when a parameter
/// has the same name (`def dump(data, Dumper=Dumper)`); only the body sees the parameters and its
/// own bindings. PEP 695 type parameters are visible to both. The function's own name counts as
/// bound: recursion needs nothing from the file.
pub fn free_names(outer: Node<'_>, def: Node<'_>, name: &str, src: &str) -> FreeNames {
    let mut type_params = BTreeSet::new();
    if let Some(tp) = def.child_by_field_name("type_parameters") {
        let mut c = tp.walk();
        for t in tp.named_children(&mut c) {
            let mut cc = t.walk();
            for ident in t.named_children(&mut cc).filter(|n| n.kind() == "identifier") {
                type_params.insert(text(ident, src).to_string());
            }
        }
    }
    // Header expressions, each with its own bindings (a lambda default's parameters) subtracted.
    let mut header: Vec<Node<'_>> = Vec::new();
    let mut c = outer.walk();
    header.extend(outer.named_children(&mut c).filter(|n| n.kind() == "decorator"));
    header.extend(def.child_by_field_name("return_type"));
    let params = def.child_by_field_name("parameters");
    if let Some(p) = params {
        let mut c = p.walk();
        for param in p.named_children(&mut c) {
            header.extend(param.child_by_field_name("value"));
            header.extend(param.child_by_field_name("type"));
        }
    }
    let mut used = FreeNames::new();
    for expr in header {
        let mut own = BTreeSet::new();
        collect_bindings(expr, src, &mut own);
        let mut uses = FreeNames::new();
        collect_uses(expr, src, &mut uses);
        uses.retain(|n, _| !own.contains(n) && !type_params.contains(n));
        merge(&mut used, uses);
    }
    if let Some(body) = def.child_by_field_name("body") {
        let mut bound = type_params;
        bound.insert(name.to_string());
        if let Some(p) = params {
            collect_bindings(p, src, &mut bound);
        }
        collect_bindings(body, src, &mut bound);
        let mut uses = FreeNames::new();
        collect_uses(body, src, &mut uses);
        uses.retain(|n, _| !bound.contains(n));
        merge(&mut used, uses);
    }
    used
}

fn merge(into: &mut FreeNames, from: FreeNames) {
    for (name, chains) in from {
        into.entry(name).or_default().extend(chains);
    }
}

/// Adds every name bound inside `node` (not descending into nothing: nested scopes are rejected
/// before this matters).
fn collect_bindings(node: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    match node.kind() {
        "parameters" | "lambda_parameters" => {
            let mut c = node.walk();
            for p in node.named_children(&mut c) {
                parameter_names(p, src, out);
            }
        }
        "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
            if let Some(left) = node.child_by_field_name("left") {
                target_names(left, src, out);
            }
        }
        "named_expression" => {
            if let Some(n) = node.child_by_field_name("name") {
                out.insert(text(n, src).to_string());
            }
        }
        "as_pattern" | "except_clause" => {
            if let Some(alias) = node.child_by_field_name("alias") {
                target_names(alias, src, out);
            }
        }
        "delete_statement" => {
            let mut c = node.walk();
            for t in node.named_children(&mut c) {
                target_names(t, src, out);
            }
        }
        "case_pattern" => capture_names(node, src, out),
        "function_definition" | "class_definition" => {
            // A def binds its name in the enclosing scope (module level for FileScope).
            if let Some(n) = node.child_by_field_name("name") {
                out.insert(text(n, src).to_string());
            }
        }
        _ => {}
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        collect_bindings(child, src, out);
    }
}

fn parameter_names(p: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    match p.kind() {
        "identifier" => {
            out.insert(text(p, src).to_string());
        }
        "default_parameter" | "typed_default_parameter" => {
            if let Some(n) = p.child_by_field_name("name") {
                target_names(n, src, out);
            }
        }
        "typed_parameter" | "list_splat_pattern" | "dictionary_splat_pattern" | "tuple_pattern" => {
            let mut c = p.walk();
            for child in p.named_children(&mut c) {
                if child.kind() != "type" {
                    parameter_names(child, src, out);
                }
            }
        }
        _ => {}
    }
}

/// Names an assignment-like target binds: identifiers, possibly inside tuple/list/star patterns.
/// Attributes and subscripts bind nothing (`a.x = 1` reads `a`).
fn target_names(t: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    match t.kind() {
        "identifier" | "keyword_identifier" => {
            out.insert(text(t, src).to_string());
        }
        "pattern_list"
        | "tuple_pattern"
        | "list_pattern"
        | "list_splat_pattern"
        | "tuple"
        | "list"
        | "parenthesized_expression"
        | "expression_list"
        | "as_pattern_target" => {
            let mut c = t.walk();
            for child in t.named_children(&mut c) {
                target_names(child, src, out);
            }
        }
        _ => {}
    }
}

/// Capture names of a `case` pattern: a bare name captures; a dotted name (`Color.RED`) and a class
/// pattern's class are reads; a keyword pattern's key is neither.
fn capture_names(p: Node<'_>, src: &str, out: &mut BTreeSet<String>) {
    match p.kind() {
        "dotted_name" => {
            let mut c = p.walk();
            if p.named_children(&mut c).count() == 1 {
                out.insert(text(p, src).to_string());
            }
        }
        "identifier" => {
            if p.parent().is_some_and(|parent| parent.kind() == "splat_pattern" || parent.kind() == "as_pattern_target")
            {
                out.insert(text(p, src).to_string());
            }
        }
        "class_pattern" => {
            let mut c = p.walk();
            for child in p.named_children(&mut c).skip(1) {
                capture_names(child, src, out);
            }
        }
        "keyword_pattern" => {
            let mut c = p.walk();
            for child in p.named_children(&mut c).skip(1) {
                capture_names(child, src, out);
            }
        }
        _ => {
            let mut c = p.walk();
            for child in p.named_children(&mut c) {
                capture_names(child, src, out);
            }
        }
    }
}

/// Adds every name read inside `node`, with its attribute chain. Over-collecting bound names is
/// harmless (they are subtracted); what must be skipped are identifiers that are not variable
/// reads at all: attribute names, keyword-argument names, import names, keyword-pattern keys.
fn collect_uses(node: Node<'_>, src: &str, out: &mut FreeNames) {
    match node.kind() {
        "identifier" | "keyword_identifier" => {
            let name = text(node, src).to_string();
            let chain = attribute_chain(node, src);
            out.entry(name).or_default().insert(chain);
            return;
        }
        "attribute" => {
            // Only the object is a read; the attribute name is not a variable.
            if let Some(obj) = node.child_by_field_name("object") {
                collect_uses(obj, src, out);
            }
            return;
        }
        "keyword_argument" => {
            if let Some(v) = node.child_by_field_name("value") {
                collect_uses(v, src, out);
            }
            return;
        }
        "import_statement"
        | "import_from_statement"
        | "future_import_statement"
        | "global_statement"
        | "nonlocal_statement" => return,
        "keyword_pattern" => {
            let mut c = node.walk();
            for child in node.named_children(&mut c).skip(1) {
                collect_uses(child, src, out);
            }
            return;
        }
        "function_definition" => {
            // Its own name is a binding, not a read.
            let mut c = node.walk();
            for child in node.named_children(&mut c) {
                if node.child_by_field_name("name") != Some(child) {
                    collect_uses(child, src, out);
                }
            }
            return;
        }
        _ => {}
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        collect_uses(child, src, out);
    }
}

/// The attribute names read off an identifier: `np.linalg.norm` from `np` gives `["linalg", "norm"]`.
fn attribute_chain(ident: Node<'_>, src: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur = ident;
    while let Some(parent) = cur.parent() {
        if parent.kind() != "attribute" || parent.child_by_field_name("object") != Some(cur) {
            break;
        }
        match parent.child_by_field_name("attribute") {
            Some(attr) => chain.push(text(attr, src).to_string()),
            None => break,
        }
        cur = parent;
    }
    chain
}
