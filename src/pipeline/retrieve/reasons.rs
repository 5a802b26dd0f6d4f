//! Why the retrieve stage drops a file or a function. Each reason has a stable snake_case name: it
//! is the key in the funnel statistics and the `reason` of a rejected record.

use serde::{Deserialize, Serialize};

/// A reason to drop a file or a function during retrieval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// File: larger than the size limit.
    FileTooLarge,
    /// File: does not parse as Python 3.
    SyntaxError,
    /// File: Python 2 (`print x` / `exec code` statements).
    Python2,
    /// `async def`.
    Async,
    /// No parameters.
    NoArguments,
    /// A nested `def` or `class`.
    NestedDefinition,
    /// An `import` inside the function.
    InnerImport,
    /// A `global` or `nonlocal` statement: it shares state with the file.
    GlobalStatement,
    /// A generator (`yield`).
    Generator,
    /// No `return` with a value.
    NoReturnValue,
    /// Fewer lines than the minimum.
    TooShort,
    /// More lines than the maximum.
    TooLong,
    /// A line longer than the maximum.
    LongLine,
    /// Uses a name from a relative import (`from . import x`).
    RelativeImport,
    /// Uses a module-level name of its file that is not an import (a global, another function, a class).
    UsesFileLocal,
    /// Uses a name that may come from a `from m import *`.
    StarImport,
    /// Uses a name defined nowhere in the file and not a builtin.
    UndefinedName,
    /// Uses a module outside the package allow-list.
    DisallowedModule,
    /// Uses no module at all (only builtins).
    NoModule,
    /// Same code (up to whitespace) as an earlier function.
    ExactDuplicate,
    /// Near-duplicate (MinHash Jaccard estimate at or above the threshold) of an earlier function.
    NearDuplicate,
    /// Shares an n-gram with a benchmark task.
    Contaminated,
    /// Imports a library that the sandbox's interpreter cannot import (synth only: no test could
    /// pass, and a "fix" could only rewrite the function without it).
    MissingLibrary,
}

impl Reject {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::FileTooLarge => "file_too_large",
            Reject::SyntaxError => "syntax_error",
            Reject::Python2 => "python2",
            Reject::Async => "async",
            Reject::NoArguments => "no_arguments",
            Reject::NestedDefinition => "nested_definition",
            Reject::InnerImport => "inner_import",
            Reject::GlobalStatement => "global_statement",
            Reject::Generator => "generator",
            Reject::NoReturnValue => "no_return_value",
            Reject::TooShort => "too_short",
            Reject::TooLong => "too_long",
            Reject::LongLine => "long_line",
            Reject::RelativeImport => "relative_import",
            Reject::UsesFileLocal => "uses_file_local",
            Reject::StarImport => "star_import",
            Reject::UndefinedName => "undefined_name",
            Reject::DisallowedModule => "disallowed_module",
            Reject::NoModule => "no_module",
            Reject::ExactDuplicate => "exact_duplicate",
            Reject::NearDuplicate => "near_duplicate",
            Reject::Contaminated => "contaminated",
            Reject::MissingLibrary => "missing_library",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for r in [
            Reject::FileTooLarge,
            Reject::UsesFileLocal,
            Reject::Python2,
            Reject::NearDuplicate,
            Reject::MissingLibrary,
        ] {
            assert_eq!(serde_json::to_string(&r).expect("serializes"), format!("\"{}\"", r.as_str()));
        }
    }
}
