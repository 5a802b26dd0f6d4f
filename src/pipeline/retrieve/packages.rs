//! The package allow-list (which top-level modules a retrieved function may import) and Python's
//! builtin names (which a function may use without importing anything).
//!
//! The default list is BigCodeBench v0.1.4's 139 libraries, shipped as `src/pipeline/data/
//! bigcodebench_packages.txt` and derived from the benchmark's `libs` field by the script beside it.
//! Those are import names (`sklearn`, `PIL`, `cv2`, `bs4`, `dateutil`, `yaml`, `Crypto`), which is
//! what source code mentions, so no name mapping is needed when matching.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The shipped default allow-list file.
const BIGCODEBENCH: &str = include_str!("../data/bigcodebench_packages.txt");

/// A package allow-list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The list file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A line is not a module name.
    #[error("{path} line {line}: `{text}` is not a module name")]
    BadName {
        /// The list file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// The file names no module.
    #[error("{0}: no module names in the package list")]
    Empty(PathBuf),
}

/// The set of top-level module names a retrieved function may import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    names: BTreeSet<String>,
}

impl Packages {
    /// BigCodeBench's 139 libraries.
    pub fn bigcodebench() -> Self {
        // The shipped file is checked by a unit test, so parsing it cannot fail at run time.
        Self::parse(BIGCODEBENCH, Path::new("bigcodebench_packages.txt")).unwrap_or(Packages { names: BTreeSet::new() })
    }

    /// Reads a list file: one module name per line; `#` starts a comment; blank lines are ignored.
    /// A dotted name (`os.path`) allows its top-level package.
    pub fn load(path: &Path) -> Result<Self, PackagesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PackagesError::Io { path: path.to_path_buf(), cause: source })?;
        Self::parse(&text, path)
    }

    /// Parses list text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PackagesError> {
        let mut names = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let name = line.split('#').next().unwrap_or("").trim();
            if name.is_empty() {
                continue;
            }
            if !name.split('.').all(is_identifier) {
                return Err(PackagesError::BadName { path: path.to_path_buf(), line: i + 1, text: name.to_string() });
            }
            names.insert(top_level(name).to_string());
        }
        if names.is_empty() {
            return Err(PackagesError::Empty(path.to_path_buf()));
        }
        Ok(Packages { names })
    }

    /// Whether the top-level package of `module` is allowed.
    pub fn allows(&self, module: &str) -> bool {
        self.names.contains(top_level(module))
    }

    /// The number of allowed top-level names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the list is empty (never, for a loaded list).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The allowed names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// The first segment of a dotted module name.
pub fn top_level(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Python 3.11's `dir(builtins)`, including the names `site` adds (`exit`, `help`...). A function may
/// use these without imports; a module-level definition of the same name still takes precedence.
const BUILTINS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "Ellipsis",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "False",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "None",
    "NotADirectoryError",
    "NotImplemented",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "True",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
    "__build_class__",
    "__debug__",
    "__doc__",
    "__import__",
    "__loader__",
    "__name__",
    "__package__",
    "__spec__",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "copyright",
    "credits",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "exit",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "help",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
];

/// Whether `name` is a Python builtin.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_has_bigcodebench_139_import_names() {
        let p = Packages::parse(BIGCODEBENCH, Path::new("x")).expect("shipped list parses");
        assert_eq!(p.len(), 139);
        for name in ["sklearn", "PIL", "cv2", "bs4", "dateutil", "yaml", "Crypto", "numpy", "os", "collections"] {
            assert!(p.allows(name), "{name}");
        }
        assert!(p.allows("os.path") && p.allows("matplotlib.pyplot"));
        assert!(!p.allows("torch") && !p.allows("scikit-learn") && !p.allows("pillow"));
        assert_eq!(Packages::bigcodebench(), p);
    }

    #[test]
    fn list_files_take_comments_and_reject_garbage() {
        let p = Packages::parse("# mine\nnumpy  # arrays\n\nos.path\n", Path::new("l.txt")).expect("parses");
        assert_eq!(p.names().collect::<Vec<_>>(), vec!["numpy", "os"]);
        let err = Packages::parse("numpy\nscikit-learn\n", Path::new("l.txt")).unwrap_err();
        assert_eq!(err.to_string(), "l.txt line 2: `scikit-learn` is not a module name");
        assert!(matches!(Packages::parse("# nothing\n", Path::new("l.txt")), Err(PackagesError::Empty(_))));
    }

    #[test]
    fn builtins_table_is_sorted_for_binary_search() {
        assert!(BUILTINS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_builtin("len") && is_builtin("ValueError") && is_builtin("__name__"));
        assert!(!is_builtin("np") && !is_builtin("__file__"));
    }
}
