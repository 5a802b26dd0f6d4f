//! Repairing a tests suite that fails only for a missing import. Small models often use `os.path`
//! or `np.array` in their tests without importing them; such a test errors in the tests' own code
//! and would be cut as broken, losing the check it makes (and, when most tests go, leaving a suite
//! too thin to judge real code by). When the undefined name is a standard-library module, or a module
//! the function imports (or the usual alias of one: `np`, `pd`), the import is added to the tests
//! and the original runs again before anything is cut.

use super::{Action, Item};
use crate::pipeline::code;
use crate::sandbox::{TestStatus, Verdict};

/// The top-level modules of Python 3.11's standard library (`sys.stdlib_module_names` without the
/// private ones), one per line: fixed in the binary so that the repair does not depend on which
/// interpreter the sandbox runs.
const STDLIB: &str = include_str!("stdlib_modules.txt");

/// Usual aliases of third-party modules: (alias, module). One is only added when the function itself
/// imports that module's package, so `pd` means pandas only in the tests of a pandas function.
const ALIASES: [(&str, &str); 8] = [
    ("np", "numpy"),
    ("pd", "pandas"),
    ("plt", "matplotlib.pyplot"),
    ("sns", "seaborn"),
    ("tf", "tensorflow"),
    ("sp", "scipy"),
    ("nx", "networkx"),
    ("mpl", "matplotlib"),
];

/// The name of a `NameError` raised in the tests' own code (the sandbox's message names the tests
/// line: `NameError: name 'os' is not defined (tests line 7: ...)`).
fn undefined_in_tests(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("NameError: name '")?;
    let (name, tail) = rest.split_once('\'')?;
    (tail.starts_with(" is not defined") && tail.contains(" (tests line ")).then_some(name)
}

/// The import statement that defines `name`, when it is a standard-library module, a package the
/// function's `imports` use, or the usual alias of one.
fn import_for(name: &str, imports: &[String]) -> Option<String> {
    // The top-level packages the function imports: `import numpy as np` and `from numpy.linalg
    // import norm` both give `numpy`.
    let packages: Vec<&str> = imports
        .iter()
        .filter_map(|i| {
            let rest = i.strip_prefix("import ").or_else(|| i.strip_prefix("from "))?;
            rest.split(|c: char| c == '.' || c == ',' || c.is_whitespace()).next()
        })
        .collect();
    if STDLIB.lines().any(|m| m == name) || packages.contains(&name) {
        return Some(format!("import {name}"));
    }
    let (alias, module) = ALIASES.iter().find(|(a, _)| *a == name)?;
    let package = module.split('.').next().unwrap_or(module);
    packages.contains(&package).then(|| format!("import {module} as {alias}"))
}

/// The imports to add to `tests` so that the `NameError`s of `verdict` go away; empty when some
/// undefined name is not a module we can place, or the tests already import it.
pub(super) fn missing_imports(verdict: &Verdict, function_imports: &[String], tests: &str) -> Vec<String> {
    let present = code::imports(tests);
    let mut added: Vec<String> = Vec::new();
    for t in verdict.tests.iter().filter(|t| t.status == TestStatus::Error) {
        let Some(name) = t.message.as_deref().and_then(undefined_in_tests) else { continue };
        let Some(import) = import_for(name, function_imports) else { continue };
        if !present.contains(&import) && !added.contains(&import) {
            added.push(import);
        }
    }
    added
}

impl Item {
    /// When the original's last run failed tests only because the tests miss an import the
    /// function's world defines, adds the imports and runs the original again. `None` when there
    /// is nothing to add.
    pub(super) fn add_missing_imports(&mut self) -> Option<Vec<Action>> {
        let verdict = &self.rec.attempts.last()?.verdict;
        let tests = self.rec.tests.as_mut()?;
        let added = missing_imports(verdict, &self.rec.function.imports, &tests.code);
        if added.is_empty() {
            return None;
        }
        // At the very top: an import runs before the class (and any module-level use of the name).
        tests.code = format!("{}\n{}", added.join("\n"), tests.code);
        tests.imports_added.extend(added);
        let sample = tests.sample;
        Some(self.run_original(sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_modules_get_their_import_and_others_none() {
        let imports = vec!["import json".to_string(), "from numpy.linalg import norm".to_string()];
        assert_eq!(import_for("os", &imports).as_deref(), Some("import os"));
        assert_eq!(import_for("numpy", &imports).as_deref(), Some("import numpy"));
        assert_eq!(import_for("np", &imports).as_deref(), Some("import numpy as np"));
        // pandas is not the function's: `pd` is some other name.
        assert_eq!(import_for("pd", &imports), None);
        assert_eq!(import_for("result", &imports), None);
        assert_eq!(import_for("task_func", &imports), None);
    }

    #[test]
    fn only_name_errors_in_the_tests_code_are_read() {
        assert_eq!(undefined_in_tests("NameError: name 'os' is not defined (tests line 7: os.path)"), Some("os"));
        // Raised inside the function: the function's fault, not the tests'.
        assert_eq!(undefined_in_tests("NameError: name 'os' is not defined (program line 3: os.path)"), None);
        assert_eq!(undefined_in_tests("AssertionError: 1 != 2 (tests line 7: x)"), None);
    }
}
