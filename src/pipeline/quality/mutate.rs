//! Mutants of a verified function, generated on tree-sitter-python's syntax tree: each mutant is the
//! program with one small edit inside the function (an operator or comparison swapped, a constant
//! moved by one, a condition negated, a statement dropped, a return value replaced, two call
//! arguments swapped, a method call replaced by its receiver, a string emptied). A suite that still passes on a mutant did not notice the change, so the
//! share of mutants the tests kill measures how much of the function's behaviour they pin down.
//!
//! Why these operators: they are the classic "sufficient" set of mutation testing (Offutt et al.:
//! arithmetic, relational, logical and constant replacement, plus statement deletion), which
//! predicts the score of much larger operator sets. Edits are textual (a byte range and its
//! replacement), so the rest of the program is kept exactly as written. Mutants that do not parse,
//! that equal the original or another mutant once whitespace is ignored (e.g. swapping `f(a, a)`),
//! are dropped; when more than `max` remain, a seeded shuffle picks them round-robin over the
//! operator kinds, so the choice is the same for the same seed and no kind crowds out the others.

use crate::python::parse;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashSet};
use tree_sitter::Node;

/// What kind of edit a mutant makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `+` ↔ `-`, `*` ↔ `/`, ... (also augmented assignments).
    Arithmetic,
    /// `<` → `<=`, `==` → `!=`, `in` → `not in`, ...
    Comparison,
    /// `and` ↔ `or`, `not x` → `x`, `-x` → `x`.
    Logical,
    /// An integer ±1, a float +1, `True` ↔ `False`.
    Constant,
    /// `if c:` → `if not (c):` (also `elif`, `while`).
    NegateCondition,
    /// A statement replaced by `pass`.
    DropStatement,
    /// `return x` → `return None`.
    ReturnValue,
    /// The first two positional arguments of a call swapped.
    SwapArguments,
    /// `break` ↔ `continue`.
    Loop,
    /// A method call replaced by its receiver (`s.strip()` → `s`), a string by `""` (or `"x"`).
    Value,
}

/// One mutant: the whole program with one edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    /// The edit's kind.
    pub operator: Operator,
    /// 1-based line of the edit in the program.
    pub line: usize,
    /// The mutated program.
    pub program: String,
}

/// An edit: replace `range` of the program by `with`.
struct Edit {
    operator: Operator,
    range: std::ops::Range<usize>,
    with: String,
}

fn swap_arithmetic(op: &str) -> Option<&'static str> {
    Some(match op {
        "+" => "-",
        "-" => "+",
        "*" => "/",
        "/" => "*",
        "//" => "*",
        "%" => "//",
        "**" => "*",
        "<<" => ">>",
        ">>" => "<<",
        "&" => "|",
        "|" => "&",
        "^" => "&",
        "@" => return None,
        "+=" => "-=",
        "-=" => "+=",
        "*=" => "/=",
        "/=" => "*=",
        "//=" => "*=",
        "%=" => "//=",
        "|=" => "&=",
        "&=" => "|=",
        _ => return None,
    })
}

fn swap_comparison(op: &str) -> Option<&'static str> {
    Some(match op {
        "<" => "<=",
        "<=" => "<",
        ">" => ">=",
        ">=" => ">",
        "==" => "!=",
        "!=" => "==",
        "in" => "not in",
        "not in" => "in",
        "is" => "is not",
        "is not" => "is",
        _ => return None,
    })
}

/// The function definition named `name` at the top level of `root` (decorated or not).
fn find_function<'t>(root: Node<'t>, src: &str, name: &str) -> Option<Node<'t>> {
    let mut cursor = root.walk();
    let found = root.children(&mut cursor).find_map(|n| {
        let def = if n.kind() == "decorated_definition" { n.child_by_field_name("definition")? } else { n };
        let named = def.kind() == "function_definition"
            && def.child_by_field_name("name").map(|x| &src[x.byte_range()]) == Some(name);
        named.then_some(def)
    });
    found
}

/// The docstring statement of a function body, if the body opens with a string.
fn docstring_id(def: Node) -> Option<usize> {
    let body = def.child_by_field_name("body")?;
    let first = body.named_child(0)?;
    let only_string = first.kind() == "expression_statement"
        && first.named_child_count() == 1
        && first.named_child(0).is_some_and(|s| s.kind() == "string" || s.kind() == "concatenated_string");
    only_string.then_some(first.id())
}

/// Every edit the operators can make inside `def`, in source order.
fn edits(def: Node, src: &str, modules: &HashSet<&str>) -> Vec<Edit> {
    let doc = docstring_id(def);
    let body = match def.child_by_field_name("body") {
        Some(b) => b,
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut stack = vec![body];
    let text = |n: Node| src[n.byte_range()].to_string();
    while let Some(n) = stack.pop() {
        let mut cursor = n.walk();
        let children: Vec<Node> = n.children(&mut cursor).collect();
        // Children in reverse so the stack pops them in source order.
        stack.extend(children.iter().rev().copied());
        let mut push = |operator, range: std::ops::Range<usize>, with: String| out.push(Edit { operator, range, with });
        match n.kind() {
            "binary_operator" | "augmented_assignment" => {
                if let Some(op) = n.child_by_field_name("operator") {
                    if let Some(w) = swap_arithmetic(&text(op)) {
                        push(Operator::Arithmetic, op.byte_range(), w.into());
                    }
                }
            }
            "comparison_operator" => {
                // The operator tokens are the unnamed children between the operands.
                for c in children.iter().filter(|c| !c.is_named()) {
                    if let Some(w) = swap_comparison(&text(*c)) {
                        push(Operator::Comparison, c.byte_range(), w.into());
                    }
                }
            }
            "boolean_operator" => {
                if let Some(op) = n.child_by_field_name("operator") {
                    let w = if text(op) == "and" { "or" } else { "and" };
                    push(Operator::Logical, op.byte_range(), w.into());
                }
            }
            "not_operator" => {
                if let Some(arg) = n.child_by_field_name("argument") {
                    push(Operator::Logical, n.byte_range(), format!("({})", text(arg)));
                }
            }
            "unary_operator" => {
                if let (Some(op), Some(arg)) = (n.child_by_field_name("operator"), n.child_by_field_name("argument")) {
                    if text(op) == "-" {
                        push(Operator::Logical, n.byte_range(), format!("({})", text(arg)));
                    }
                }
            }
            "integer" => {
                if let Ok(v) = text(n).replace('_', "").parse::<i64>() {
                    push(Operator::Constant, n.byte_range(), format!("({})", v + 1));
                    push(Operator::Constant, n.byte_range(), format!("({})", v - 1));
                }
            }
            "float" => {
                if let Ok(v) = text(n).replace('_', "").parse::<f64>() {
                    push(Operator::Constant, n.byte_range(), format!("({:?})", v + 1.0));
                }
            }
            "true" => push(Operator::Constant, n.byte_range(), "False".into()),
            "false" => push(Operator::Constant, n.byte_range(), "True".into()),
            "if_statement" | "elif_clause" | "while_statement" => {
                if let Some(c) = n.child_by_field_name("condition") {
                    push(Operator::NegateCondition, c.byte_range(), format!("not ({})", text(c)));
                }
            }
            "return_statement" => {
                if let Some(v) = n.named_child(0) {
                    if v.kind() != "none" {
                        push(Operator::ReturnValue, v.byte_range(), "None".into());
                    }
                }
            }
            "break_statement" => push(Operator::Loop, n.byte_range(), "continue".into()),
            "continue_statement" => push(Operator::Loop, n.byte_range(), "break".into()),
            "string"
                if n.parent().map(|p| p.id()) != doc
                    && n.parent().is_some_and(|p| p.kind() != "concatenated_string") =>
            {
                let empty = n.named_children(&mut n.walk()).all(|c| matches!(c.kind(), "string_start" | "string_end"));
                push(Operator::Value, n.byte_range(), if empty { "'x'".into() } else { "''".into() });
            }
            "call" => {
                // `module.f(...)` → `module` is no mutant worth running; `value.m(...)` → `value` is.
                if let Some(receiver) = n.child_by_field_name("function").and_then(|f| f.child_by_field_name("object"))
                {
                    if !modules.contains(text(receiver).as_str()) {
                        push(Operator::Value, n.byte_range(), format!("({})", text(receiver)));
                    }
                }
                let Some(args) = n.child_by_field_name("arguments") else { continue };
                let mut c = args.walk();
                let positional: Vec<Node> = args
                    .named_children(&mut c)
                    .filter(|a| !matches!(a.kind(), "keyword_argument" | "list_splat" | "dictionary_splat" | "comment"))
                    .take(2)
                    .collect();
                if let [a, b] = positional[..] {
                    if text(a) != text(b) {
                        let between = &src[a.end_byte()..b.start_byte()];
                        push(
                            Operator::SwapArguments,
                            a.start_byte()..b.end_byte(),
                            format!("{}{between}{}", text(b), text(a)),
                        );
                    }
                }
            }
            _ => {}
        }
        if n.kind() == "expression_statement" && Some(n.id()) != doc && n.parent().is_some_and(|p| p.kind() == "block")
        {
            push(Operator::DropStatement, n.byte_range(), "pass".into());
        }
    }
    out
}

/// The program with whitespace removed, for spotting mutants that only differ in layout.
fn squeezed(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Up to `max` mutants of the function `name` in `program`, the same ones for the same `seed`.
/// Empty when the program does not parse or has no such top-level function.
pub fn mutants(program: &str, name: &str, seed: u64, max: usize) -> Vec<Mutant> {
    let Some(tree) = parse(program) else { return Vec::new() };
    let root = tree.root_node();
    let Some(def) = find_function(root, program, name) else { return Vec::new() };
    // Names bound by the program's imports (`import os.path` binds `os`, `import x as y` binds `y`).
    let mut modules: HashSet<&str> = HashSet::new();
    let mut cursor = root.walk();
    for stmt in root.children(&mut cursor).filter(|n| matches!(n.kind(), "import_statement" | "import_from_statement"))
    {
        let mut c = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut c) {
            let bound = name.child_by_field_name("alias").or(name.named_child(0)).unwrap_or(name);
            modules.insert(&program[bound.byte_range()]);
        }
    }
    let mut seen: HashSet<String> = HashSet::from([squeezed(program)]);
    let mut by_kind: BTreeMap<Operator, Vec<Mutant>> = BTreeMap::new();
    for e in edits(def, program, &modules) {
        let mutated = format!("{}{}{}", &program[..e.range.start], e.with, &program[e.range.end..]);
        if !seen.insert(squeezed(&mutated)) {
            continue;
        }
        if parse(&mutated).is_none_or(|t| t.root_node().has_error()) {
            continue;
        }
        let line = program[..e.range.start].matches('\n').count() + 1;
        by_kind.entry(e.operator).or_default().push(Mutant { operator: e.operator, line, program: mutated });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut queues: Vec<std::collections::VecDeque<Mutant>> = by_kind
        .into_values()
        .map(|mut v| {
            v.shuffle(&mut rng);
            v.into()
        })
        .collect();
    let mut picked = Vec::new();
    while picked.len() < max && queues.iter().any(|q| !q.is_empty()) {
        for q in queues.iter_mut() {
            if picked.len() < max {
                if let Some(m) = q.pop_front() {
                    picked.push(m);
                }
            }
        }
    }
    // Source order, so a record's mutants read top to bottom.
    picked.sort_by_key(|m| (m.line, m.operator));
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAMP: &str = "import math\n\n\ndef clamp_scale(values, low, high, factor=2):\n    \"\"\"Scale and clamp.\"\"\"\n    out = []\n    for v in values:\n        if v is None:\n            continue\n        x = v * factor + 1\n        if x < low and low >= 0:\n            x = low\n        elif x > high:\n            x = high\n        out.append(round(x, 2))\n    total = sum(out)\n    if not out:\n        return 0\n    return math.floor(total / len(out))\n";

    #[test]
    fn a_typical_function_gets_between_10_and_30_distinct_parsing_mutants() {
        let ms = mutants(CLAMP, "clamp_scale", 7, 30);
        assert!((10..=30).contains(&ms.len()), "{} mutants", ms.len());
        let distinct: HashSet<String> = ms.iter().map(|m| squeezed(&m.program)).collect();
        assert_eq!(distinct.len(), ms.len());
        for m in &ms {
            assert_ne!(m.program, CLAMP);
            assert!(parse(&m.program).is_some_and(|t| !t.root_node().has_error()), "{}", m.program);
            // The docstring and imports are never touched.
            assert!(m.program.starts_with("import math\n") && m.program.contains("\"\"\"Scale and clamp.\"\"\""));
        }
        let kinds: HashSet<Operator> = ms.iter().map(|m| m.operator).collect();
        assert!(kinds.len() >= 7, "{kinds:?}");
    }

    #[test]
    fn generation_is_deterministic_for_a_seed_and_capped() {
        let a = mutants(CLAMP, "clamp_scale", 3, 12);
        assert_eq!(a, mutants(CLAMP, "clamp_scale", 3, 12));
        assert_eq!(a.len(), 12);
        let other = mutants(CLAMP, "clamp_scale", 4, 12);
        assert_ne!(a, other, "another seed picks another subset");
    }

    #[test]
    fn each_operator_makes_the_expected_edit() {
        let src = "def f(a, b):\n    if a < b:\n        return g(a, b) - 1\n    return True\n";
        let ms = mutants(src, "f", 0, 100);
        let has = |needle: &str| ms.iter().any(|m| m.program.contains(needle));
        assert!(has("if a <= b:"), "comparison");
        assert!(has("if not (a < b):"), "negated condition");
        assert!(has("g(a, b) + 1"), "arithmetic");
        assert!(has("g(a, b) - (2)") && has("g(a, b) - (0)"), "constant");
        assert!(has("g(b, a)"), "swapped arguments");
        assert!(has("return None\n    return True"), "return value");
        assert!(has("return False"), "boolean constant");
        assert!(mutants(src, "missing", 0, 100).is_empty());
        let src = "import os.path as p\nimport re\n\n\ndef g(s):\n    return re.sub('a', '', p.basename(s).strip())\n";
        let ms = mutants(src, "g", 0, 100);
        let has = |needle: &str| ms.iter().any(|m| m.program.contains(needle));
        assert!(has("re.sub('a', '', (p.basename(s)))"), "a method call replaced by its receiver");
        assert!(has("re.sub('', '', ") && has("re.sub('a', 'x', "), "strings");
        assert!(!has("return (re)") && !has("(p)"), "a module is not a receiver worth a mutant: {ms:#?}");
        assert!(mutants("def f(:\n", "f", 0, 100).is_empty());
    }

    #[test]
    fn identical_arguments_are_not_swapped_into_an_equivalent_mutant() {
        let ms = mutants("def f(a):\n    return max(a, a)\n", "f", 0, 100);
        assert!(ms.iter().all(|m| m.operator != Operator::SwapArguments), "{ms:?}");
    }
}
