//! Moving a docstring from a model's rewrite of a function into the verified function. Asked to
//! document a function without changing it, code models often "improve" the code too; the polish
//! stage then keeps only what it asked for — the docstring — placed in the verified program, whose
//! code is thus unchanged by construction (and re-verified all the same).

use tree_sitter::Node;

use super::{is_docstring, parse, text, top_level};

/// The definition of top-level function `name` in a parsed tree.
pub(super) fn function<'t>(root: Node<'t>, src: &str, name: &str) -> Option<Node<'t>> {
    top_level(root).into_iter().map(|(_, d)| d).find(|d| {
        d.kind() == "function_definition" && d.child_by_field_name("name").map(|n| text(n, src)) == Some(name)
    })
}

/// The docstring of top-level function `name` in `src` with its lines' indentation removed, when it
/// has one that is a complete string.
pub fn docstring_of(src: &str, name: &str) -> Option<String> {
    let tree = parse(src)?;
    let def = function(tree.root_node(), src, name)?;
    let first = def.child_by_field_name("body")?.named_child(0)?;
    if !is_docstring(first) || first.has_error() {
        return None;
    }
    let indent = first.start_position().column;
    let lines: Vec<&str> = text(first, src).lines().collect();
    let mut out = vec![lines.first()?.to_string()];
    for l in &lines[1..] {
        let cut = l.len() - l.trim_start().len();
        out.push(l[cut.min(indent)..].to_string());
    }
    Some(out.join("\n"))
}

/// The byte span of top-level function `name`'s docstring literal (prefix and quotes included), when
/// it has one that is a single complete string.
pub(super) fn docstring_literal(src: &str, name: &str) -> Option<(usize, usize)> {
    let tree = parse(src)?;
    let def = function(tree.root_node(), src, name)?;
    let first = def.child_by_field_name("body")?.named_child(0)?;
    let string = first.named_child(0)?;
    (is_docstring(first) && !first.has_error() && string.kind() == "string")
        .then(|| (string.start_byte(), string.end_byte()))
}

/// `program` with top-level function `name`'s docstring set to `doc` (as [`docstring_of`] gives it),
/// replacing the one it has. `None` when the function is not found or its body starts on the `def`
/// line.
pub fn with_docstring(program: &str, name: &str, doc: &str) -> Option<String> {
    let tree = parse(program)?;
    let def = function(tree.root_node(), program, name)?;
    let first = def.child_by_field_name("body")?.named_child(0)?;
    if first.start_position().row == def.start_position().row {
        return None;
    }
    let pad = " ".repeat(first.start_position().column);
    let indented: Vec<String> = doc
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 || l.trim().is_empty() { l.trim_end().to_string() } else { format!("{pad}{l}") })
        .collect();
    let doc = indented.join("\n");
    let mut out = String::with_capacity(program.len() + doc.len() + 1);
    if is_docstring(first) {
        out.push_str(&program[..first.start_byte()]);
        out.push_str(&doc);
        out.push_str(&program[first.end_byte()..]);
    } else {
        let line_start = program[..first.start_byte()].rfind('\n').map_or(0, |i| i + 1);
        out.push_str(&program[..line_start]);
        out.push_str(&format!("{pad}{doc}\n"));
        out.push_str(&program[line_start..]);
    }
    Some(out)
}

/// A line of `docstring` copied from the prompt's instructions rather than written: the polish
/// template's placeholders ("One or two sentences on what the function does.", "- name (type): what it
/// is.", "- the modules it uses"), a small model's habit. A line counts when, without its bullet or
/// `>>>` and compared case-blind, it or the text after its `label:` has at least three words and is a
/// line (or a line's text after its label) of `prompt` that is not in `code` (the function as the
/// prompt showed it, whose own docstring may rightly be kept). Checked against the rendered prompt, so
/// an edited template is checked against its own text.
pub fn template_echo(docstring: &str, prompt: &str, code: &str) -> Option<String> {
    fn forms(line: &str) -> Vec<String> {
        let l = line.trim().trim_start_matches(">>>").trim_start_matches(['-', '*']).trim();
        let l = l.trim_end_matches('.').to_lowercase();
        let mut out = vec![l.clone()];
        if let Some((_, after)) = l.split_once(": ") {
            out.push(after.trim().to_string());
        }
        out.retain(|f| f.split_whitespace().count() >= 3);
        out
    }
    let own: std::collections::HashSet<String> = code.lines().flat_map(forms).collect();
    let shown: std::collections::HashSet<String> =
        prompt.lines().flat_map(forms).filter(|f| !own.contains(f)).collect();
    let body = docstring.trim().trim_matches(|c| c == '"' || c == '\'');
    body.lines().find(|l| forms(l).iter().any(|f| shown.contains(f))).map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::code::code_without_docs;

    #[test]
    fn placeholders_copied_from_the_prompt_are_found_and_real_lines_are_not() {
        use crate::pipeline::prompts::{Prompts, Template, Vars};
        let code = "def f(x):\n    \"\"\"Return the value of x as it is.\"\"\"\n    return x\n";
        let vars = Template::Polish.vars(&Vars { code, name: "f", ..Default::default() });
        let prompt = Prompts::embedded().render(Template::Polish, vars).unwrap();
        let echo = |doc: &str| template_echo(doc, &prompt, code);
        assert_eq!(
            echo("\"\"\"\nOne or two sentences on what the function does.\n\"\"\""),
            Some("One or two sentences on what the function does.".into())
        );
        // The label filled in, the placeholder left: still an echo.
        assert_eq!(echo("\"\"\"\nAdds.\n\nReturns:\n- str: what it is.\n\"\"\""), Some("- str: what it is.".into()));
        assert_eq!(
            echo("\"\"\"Adds.\n\n    Requirements:\n    - The modules it uses\n\"\"\""),
            Some("- The modules it uses".into())
        );
        // Written documentation, and the function's own docstring kept, are not.
        let real = "\"\"\"\nReturn the value of x as it is.\n\nParameters:\n- x (int): the value to return.\n\nReturns:\n- int: x unchanged.\n\nRequirements:\n- none\n\nExample:\n>>> f(2)\n2\n\"\"\"";
        assert_eq!(echo(real), None);
    }

    #[test]
    fn a_docstring_moves_into_the_verified_function_and_the_code_stays() {
        let rewrite = "def f(x):\n        \"\"\"\n        Adds one.\n\n        Returns:\n        - int: x + 1\n        \"\"\"\n        # a comment\n        y = int(x)\n        return y + 1\n";
        let doc = docstring_of(rewrite, "f").unwrap();
        assert_eq!(doc, "\"\"\"\nAdds one.\n\nReturns:\n- int: x + 1\n\"\"\"");
        let verified = "import math\n\n\ndef f(x):\n    return math.floor(x) + 1\n";
        let got = with_docstring(verified, "f", &doc).unwrap();
        assert_eq!(
            got,
            "import math\n\n\ndef f(x):\n    \"\"\"\n    Adds one.\n\n    Returns:\n    - int: x + 1\n    \"\"\"\n    return math.floor(x) + 1\n"
        );
        assert_eq!(code_without_docs(&got), code_without_docs(verified));
        // An existing docstring is replaced, not doubled.
        let old = "def f(x):\n    \"\"\"Old.\"\"\"\n    return x\n";
        assert_eq!(
            with_docstring(old, "f", "\"\"\"New.\"\"\"").unwrap(),
            "def f(x):\n    \"\"\"New.\"\"\"\n    return x\n"
        );
        // A body on the def line has no place for one; an unterminated docstring is not taken.
        assert_eq!(with_docstring("def f(x): return x\n", "f", "\"\"\"D.\"\"\""), None);
        assert_eq!(docstring_of("def f(x):\n    \"\"\"Cut off mid", "f"), None);
    }
}
