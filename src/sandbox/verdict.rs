//! The data the executor takes and returns. These types are the contract between the sandbox and its
//! users (the eval harness, the pipeline, `unitcoder check --json`), so fields are only ever added.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Resource limits for one run. The defaults suit benchmark-sized programs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock limit for the whole run, tests included.
    #[serde(with = "secs_f64")]
    pub timeout: Duration,
    /// Memory limit for the whole process tree, in MiB.
    pub memory_mb: u64,
    /// Maximum number of processes and threads the candidate may have at once.
    pub max_procs: u64,
    /// Largest file the candidate may write, in MiB.
    pub max_file_mb: u64,
    /// Maximum number of open file descriptors.
    pub max_open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            memory_mb: 2048,
            max_procs: 64,
            max_file_mb: 64,
            max_open_files: 256,
        }
    }
}

/// One unit of work: a program and the tests that judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Caller's identifier, echoed in the verdict.
    pub id: String,
    /// The candidate program (Python source).
    pub program: String,
    /// The tests, written as if they followed the program in the same module.
    pub tests: String,
    /// Per-job limits; the executor's defaults when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Judge the tests themselves as untrusted, as model-written tests are: an assertion that fails
    /// fails its test even when the test catches the error (`try: assert ... except: pass`), and an
    /// assertion that cannot fail (both sides the same expression, constants only, `assertTrue(True)`)
    /// does not count; a suite left with no assertion that counts is `vacuous`. `synth` sets it.
    /// Off for benchmark tests (`eval`): they are the reference, judged as their own harnesses judge
    /// them, and HumanEval's `assert True` lines or a benchmark's own `try`/`except AssertionError`
    /// must not change a verdict the reference harness agrees with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_assertions: bool,
    /// Judge a test that raises nothing as a pass even when it executed no assertion, as `unittest`
    /// and the benchmarks' own harnesses do. `eval` sets it: BigCodeBench has tests such as
    /// `test_no_error` whose only assertion is a `self.fail` in an `except` clause, and its harness
    /// passes a program that does not raise there. Without it, and always under strict rules, such a
    /// test fails with `no assertion executed` (a test that checks nothing proves nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assertions_optional: bool,
}

impl Job {
    /// A job under the executor's default limits, judged as trusted tests are (neither rule below).
    pub fn new(id: impl Into<String>, program: impl Into<String>, tests: impl Into<String>) -> Self {
        Job {
            id: id.into(),
            program: program.into(),
            tests: tests.into(),
            limits: None,
            strict_assertions: false,
            assertions_optional: false,
        }
    }

    /// These limits instead of the executor's defaults (`None` keeps the defaults).
    pub fn with_limits(self, limits: impl Into<Option<Limits>>) -> Self {
        Job { limits: limits.into(), ..self }
    }

    /// Judged as model-written tests are: [`Job::strict_assertions`].
    pub fn with_strict_assertions(self) -> Self {
        Job { strict_assertions: true, ..self }
    }

    /// Judged as benchmark tests are: [`Job::assertions_optional`].
    pub fn with_optional_assertions(self) -> Self {
        Job { assertions_optional: true, ..self }
    }
}

/// Overall outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Tests ran, none failed, and at least one assertion executed in every test (unless
    /// [`Job::assertions_optional`]).
    Pass,
    /// A test failed (assertion or wrong result), or the run proved nothing (no tests, vacuous tests:
    /// reason `no assertion executed`, or `vacuous` when only assertions that cannot fail ran).
    Fail,
    /// The program or the tests raised, could not be loaded, tampered with the harness, or were killed.
    Error,
    /// The wall-clock or CPU limit was hit.
    Timeout,
}

/// Outcome of a single test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Pass,
    Fail,
    Error,
    Skip,
}

/// One test's name, outcome and a trimmed message (what the fix loop feeds back to the model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub name: String,
    pub status: TestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which isolation mechanisms were actually in force for a run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Isolation {
    /// A short name for the overall level, e.g. `full`, `partial`, `none`.
    pub level: String,
    /// Mechanisms in force, e.g. `pid-namespace`, `landlock`, `seccomp`, `uid`.
    pub active: Vec<String>,
    /// Mechanisms requested but unavailable on this machine.
    pub missing: Vec<String>,
}

/// The structured result of running a program with its tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub status: Status,
    /// Why the status is what it is: `assertion`, an exception type, `memory`, `no tests ran`,
    /// `tampering`, ... `None` on pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tests: Vec<TestOutcome>,
    pub duration_ms: u64,
    /// Bounded tail of what the candidate wrote to stdout.
    pub stdout_tail: String,
    /// Bounded tail of what the candidate wrote to stderr.
    pub stderr_tail: String,
    pub isolation: Isolation,
    /// Line and branch counts of the traced function, for a run asked for with
    /// [`crate::sandbox::Sandbox::run_traced`] that got to the end of its tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// The test that was running when a time or memory limit stopped the run (`<module>`: the
    /// tests' top-level code), when it had started one: which input made the program hang or grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
}

/// What the tests executed of one function, counted inside the sandbox. Lines are the function's
/// statements that have code (its docstring, `global` and `nonlocal` do not count); branches are the
/// two outcomes (entered, not entered) of each `if`/`elif`/`while`/`for` whose body starts on a line
/// of its own, read from line hit counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// `sys.monitoring` (Python 3.12 and later) or `sys.settrace`.
    pub tracer: String,
    /// Statements of the function.
    pub lines: u64,
    /// Of them, executed at least once.
    pub lines_hit: u64,
    /// Branch outcomes of the function (twice its branch points).
    pub branches: u64,
    /// Of them, taken at least once.
    pub branches_hit: u64,
}

impl Verdict {
    /// True only for [`Status::Pass`].
    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

mod secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        if !(secs.is_finite() && secs > 0.0) {
            return Err(serde::de::Error::custom("timeout must be a positive number of seconds"));
        }
        Ok(Duration::from_secs_f64(secs))
    }
}
