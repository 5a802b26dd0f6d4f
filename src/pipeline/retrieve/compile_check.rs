//! Python's own compiler as the last word on whether a retrieved function is Python 3.
//!
//! tree-sitter's grammar still accepts much of Python 2 (`<>`, `0777`, `10L`, `ur''`, tuple
//! parameters, `raise E, "msg"`) and knows nothing of the compiler's own checks (a repeated
//! argument, `break` outside a loop, tabs mixed with spaces, a bad f-string conversion). Such a
//! function cannot run, so every model call spent on it is lost; one `python3` process compiles each
//! function that passed every other filter. `compile()` only: nothing of the corpus is executed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Reads one JSON string per line, answers one JSON string per line: "" when it compiles, else why
/// not. Warnings (invalid escapes and the like) are not errors.
const SCRIPT: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
for line in sys.stdin:
    try:
        compile(json.loads(line), "<function>", "exec", dont_inherit=True)
        why = ""
    except SyntaxError as e:
        why = "line %s: %s" % (e.lineno, e.msg)
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    sys.stdout.write(json.dumps(why) + "\n")
    sys.stdout.flush()
"#;

/// What [`CompileCheck::ask`] says when the process closed its output.
const ENDED: &str = "the process ended";

/// The compiler could not be used.
#[derive(Debug, thiserror::Error)]
#[error("checking functions with `{}` (--python): {problem}", .python.display())]
pub struct CompileCheckError {
    python: PathBuf,
    problem: String,
}

/// A running `python -c SCRIPT`, asked one function at a time.
pub struct CompileCheck {
    python: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CompileCheck {
    /// Starts the compiler process.
    pub fn start(python: &Path) -> Result<Self, CompileCheckError> {
        let fail = |problem: String| CompileCheckError { python: python.to_path_buf(), problem };
        let mut child = Command::new(python)
            .args(["-I", "-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so a terminal's Ctrl-C reaches only unitcoder, which stops
            // retrieval between chunks of files (the helper still ends with its stdin when
            // unitcoder is gone).
            .process_group(0)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, BufReader::new(o)),
            _ => return Err(fail("no pipes to the process".into())),
        };
        let mut check = CompileCheck { python: python.to_path_buf(), child, stdin, stdout };
        // A Python too old or broken to run the script fails here, not halfway through a corpus.
        match check.ask("def f(x):\n    return x\n") {
            Ok(why) if why.is_empty() => Ok(check),
            Ok(why) => Err(fail(format!("a valid function did not compile: {why}"))),
            Err(problem) if problem == ENDED => {
                // `/bin/true`, a shell script or Python 2 ends (or dies on the script) without a
                // word; its exit status is the only clue, and what to do about it is the same.
                let status = check.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                Err(fail(format!(
                    "it ended without answering ({status}) when asked to compile a one-line function; \
                     --python must name a Python 3 interpreter (try `{} --version`)",
                    python.display()
                )))
            }
            Err(problem) => Err(fail(problem)),
        }
    }

    /// `None` when `code` compiles as Python 3, else the compiler's complaint. A function that
    /// crashes the compiler process is rejected with that said, and a fresh process takes the next.
    pub fn check(&mut self, code: &str) -> Result<Option<String>, CompileCheckError> {
        match self.ask(code) {
            Ok(why) => Ok((!why.is_empty()).then_some(why)),
            Err(problem) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                *self = CompileCheck::start(&self.python)?;
                Ok(Some(format!("the compiler stopped on it ({problem})")))
            }
        }
    }

    fn ask(&mut self, code: &str) -> Result<String, String> {
        let line = serde_json::to_string(code).map_err(|e| e.to_string())?;
        // A process that has already ended refuses the write (EPIPE) before its stdout says so: the
        // same end, told the same way, whichever of the two comes first.
        let written = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::BrokenPipe => ENDED.to_string(),
            _ => e.to_string(),
        };
        self.stdin.write_all(line.as_bytes()).map_err(written)?;
        self.stdin.write_all(b"\n").and_then(|()| self.stdin.flush()).map_err(written)?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) => Err(ENDED.into()),
            Ok(_) => serde_json::from_str(&answer).map_err(|e| format!("unreadable answer {answer:?}: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for CompileCheck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_2_and_what_only_the_compiler_checks_are_refused_python_3_passes() {
        let Ok(mut c) = CompileCheck::start(Path::new("python3")) else { panic!("python3 runs") };
        for ok in ["def f(x):\n    return x <= 1\n", "import os\n\ndef f(p):\n    return os.path.join(p, f'{p!r}')\n"] {
            assert_eq!(c.check(ok).unwrap(), None, "{ok}");
        }
        for bad in [
            "def f(a, b):\n    return a <> b\n",
            "def f(x):\n    return 0777 + x\n",
            "def f(x):\n    return 10L\n",
            "def f(a, (b, c)):\n    return a\n",
            "def f(x, x):\n    return x\n",
            "def f(x):\n    break\n    return x\n",
            "def f(x):\n    return f'{x!z}'\n",
            "def f(x):\n    if x:\n        return 1\n\treturn 2\n",
            "def f(x):\n    raise ValueError, 'no'\n    return x\n",
        ] {
            let why = c.check(bad).unwrap();
            assert!(why.as_deref().is_some_and(|w| w.starts_with("line ")), "{bad}: {why:?}");
        }
        assert!(CompileCheck::start(Path::new("/nonexistent/python3")).is_err());
        let not_python = CompileCheck::start(Path::new("/bin/true")).err().expect("/bin/true is refused").to_string();
        assert!(not_python.contains("ended without answering") && not_python.contains("Python 3"), "{not_python}");
    }
}
