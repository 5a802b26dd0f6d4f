//! Which retrieved functions a small run (`synth --limit N`) spends its model time on. In corpus
//! order the stdlib starts with private helpers that take files, sockets or compilers
//! (`_read_long(file)`, `_aix_tag(vrtl, bd)`), for which a small model cannot write a meaningful
//! assertion. [`pick`] ranks functions by how testable they look from their signature and imports —
//! public, plain-data parameters, pure modules, short bodies — and keeps the best N, ties in corpus
//! order. It only chooses what to attempt; every later guard (vacuous tests, stubbed body, signature
//! change, special-casing) applies unchanged.

use crate::pipeline::record::Record;

/// Parameter names that usually carry a live object (file, socket, callable, class, module...) that
/// literal test inputs cannot build.
const OBJECT_PARAMS: &[&str] = &[
    "file",
    "f",
    "fp",
    "fd",
    "fileobj",
    "stream",
    "sock",
    "socket",
    "conn",
    "compiler",
    "func",
    "fn",
    "function",
    "callback",
    "cls",
    "klass",
    "module",
    "mod",
    "obj",
    "frame",
    "tb",
    "node",
    "tree",
    "env",
    "self",
    "parser",
    "handler",
    "loop",
    "ctx",
    "context",
    "request",
    "transport",
    "proc",
    "process",
    "p",
    "event",
    "widget",
    "master",
    "root",
    "db",
    "cursor",
    "msg",
    "message",
    "addrinfos",
    "source",
];

/// Parameter names that usually carry plain data (strings, numbers, sequences).
const DATA_PARAMS: &[&str] = &[
    "s", "string", "text", "name", "n", "x", "y", "value", "val", "data", "word", "line", "lines", "number", "num",
    "year", "month", "day", "hour", "minute", "second", "items", "seq", "a", "b", "i", "j", "k", "size", "width",
    "count", "pattern", "sep", "chars", "key", "values", "input", "encoded", "header", "charset", "status", "version",
    "path", "pathname", "filename", "url", "date", "addr", "base", "digits", "prefix", "suffix", "indent", "c", "ch",
    "char",
];

/// Modules whose functions compute on their arguments alone (no files, processes or environment).
const PURE_MODULES: &[&str] = &[
    "re",
    "math",
    "string",
    "base64",
    "binascii",
    "datetime",
    "calendar",
    "collections",
    "itertools",
    "functools",
    "textwrap",
    "json",
    "hashlib",
    "struct",
    "decimal",
    "fractions",
    "statistics",
    "operator",
    "unicodedata",
    "html",
    "colorsys",
    "bisect",
    "heapq",
    "copy",
    "quopri",
    "codecs",
    "keyword",
    "fnmatch",
    "posixpath",
    "ntpath",
    "urllib",
];

/// Modules whose functions depend on the machine they run on.
const ENVIRONMENT_MODULES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "shutil",
    "socket",
    "threading",
    "multiprocessing",
    "signal",
    "select",
    "platform",
    "locale",
    "ctypes",
    "tempfile",
    "glob",
    "asyncio",
    "time",
    "random",
    "io",
    "pwd",
    "grp",
];

/// The parameter names of a `def name(params...):` signature, and whether it has `*args`/`**kw`.
fn params(signature: &str) -> (Vec<String>, bool) {
    let inner = signature.split_once('(').map_or("", |(_, r)| r);
    let inner = inner.rsplit_once(')').map_or(inner, |(l, _)| l);
    let (mut names, mut star) = (Vec::new(), false);
    let mut depth = 0i32;
    let mut part = String::new();
    // Split on top-level commas only: defaults such as `pat=re.compile(r"\s*(?:#)?$")` hold commas.
    for ch in inner.chars().chain(std::iter::once(',')) {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                let p = part.trim();
                if p.starts_with('*') && p != "*" {
                    star = true;
                } else if !p.is_empty() && p != "*" && p != "/" {
                    let name = p.split([':', '=']).next().unwrap_or("").trim();
                    names.push(name.to_string());
                }
                part.clear();
                continue;
            }
            _ => {}
        }
        part.push(ch);
    }
    (names, star)
}

/// How testable a function looks to a small model: higher is better. Deterministic, from the
/// signature, the modules and the body length only.
pub fn testability(r: &Record) -> i32 {
    let f = &r.function;
    let mut score = 0;
    if !f.name.starts_with('_') {
        score += 4;
    }
    let (names, star) = params(&f.signature);
    if star {
        score -= 2;
    }
    if names.len() > 3 {
        score -= 1;
    }
    for n in &names {
        let n = n.to_ascii_lowercase();
        if OBJECT_PARAMS.contains(&n.as_str()) {
            score -= 3;
        } else if DATA_PARAMS.contains(&n.as_str()) {
            score += 1;
        }
    }
    for m in &f.packages {
        if PURE_MODULES.contains(&m.as_str()) {
            score += 2;
        } else if ENVIRONMENT_MODULES.contains(&m.as_str()) {
            score -= 2;
        }
    }
    let lines = r.function_text().lines().filter(|l| !l.trim().is_empty()).count();
    if lines <= 12 {
        score += 1;
    } else if lines > 30 {
        score -= 1;
    }
    score
}

/// The `n` most testable of `records`, in order of decreasing [`testability`], ties in the order
/// given (corpus order), so the choice is the same on every machine.
pub fn pick(records: Vec<Record>, n: usize) -> Vec<Record> {
    let mut scored: Vec<(i32, usize, Record)> =
        records.into_iter().enumerate().map(|(i, r)| (testability(&r), i, r)).collect();
    scored.sort_by_key(|(s, i, _)| (-s, *i));
    scored.into_iter().take(n).map(|(_, _, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Origin, SourceFile};
    use crate::pipeline::retrieve::Extracted;

    fn rec(text: &str, module: &str) -> Record {
        let name = text.trim_start_matches("def ").split('(').next().unwrap_or("").to_string();
        let signature = text.lines().next().unwrap_or("").to_string();
        let file = SourceFile::new(text.into(), Origin { file: "m.py".into(), at: None });
        let f = Extracted {
            name,
            signature,
            docstring: None,
            text: text.into(),
            imports: vec![format!("import {module}")],
            modules: vec![module.into()],
            lines: (1, 2),
        };
        Record::retrieved(&file, f)
    }

    #[test]
    fn parameters_are_split_at_top_level_commas() {
        let (names, star) = params("def IS_LINE_JUNK(line, pat=re.compile(r\"\\s*(?:#\\s*)?$\").match):");
        assert_eq!((names, star), (vec!["line".to_string(), "pat".to_string()], false));
        let (names, star) = params("def f(a: int, *args, b=1, **kw) -> Dict[str, int]:");
        assert_eq!((names, star), (vec!["a".to_string(), "b".to_string()], true));
    }

    #[test]
    fn public_plain_data_functions_come_before_private_object_ones() {
        let io = rec("def _read_long(file):\n    return struct.unpack('>l', file.read(4))[0]", "struct");
        let env = rec("def find_executable(executable, path=None):\n    return os.path.join(path, executable)", "os");
        let pure = rec("def b16encode(s):\n    return binascii.hexlify(s).upper()", "binascii");
        let pure2 =
            rec("def weekday(year, month, day):\n    return datetime.date(year, month, day).weekday()", "datetime");
        assert!(testability(&pure) > testability(&env) && testability(&env) > testability(&io));
        let got: Vec<String> =
            pick(vec![io, env, pure.clone(), pure2], 3).into_iter().map(|r| r.function.name).collect();
        assert_eq!(got, ["weekday", "b16encode", "find_executable"]);
    }
}
