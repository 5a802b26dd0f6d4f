//! The sandbox as its users meet it: attacks that must not pass, legitimate programs that must,
//! containment (time, memory, processes, output) and isolation (network, files, env, signals), the
//! strict rules for model-written tests, and the `unitcoder check` command. One sandbox is shared
//! by the tests of this binary.

mod attacks;
mod cli;
mod containment;
mod controls;
mod isolation;
mod strict;

use std::sync::OnceLock;
use std::time::Duration;
pub use unitcoder::sandbox::{Job, Limits, Sandbox, Status, TestStatus, Verdict};

/// The shared sandbox (two fork servers, numpy and pandas preloaded).
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(crate::common::sandbox_config(2)).expect("start the sandbox"))
}

/// Runs `program` with `tests` under the default limits.
pub fn check(program: &str, tests: &str) -> Verdict {
    check_with(program, tests, Limits::default())
}

/// Runs `program` with `tests` under `limits`.
pub fn check_with(program: &str, tests: &str, limits: Limits) -> Verdict {
    let job = Job::new("t", program, tests).with_limits(limits);
    sandbox().run(&job)
}

/// Runs `program` with `tests` judged as model-written tests are (`Job::strict_assertions`).
pub fn check_strict(program: &str, tests: &str) -> Verdict {
    let job = Job::new("t", program, tests).with_strict_assertions();
    sandbox().run(&job)
}

/// Limits with a shorter wall clock, for runs expected to hang.
pub fn short(secs: u64) -> Limits {
    Limits { timeout: Duration::from_secs(secs), ..Limits::default() }
}

/// Asserts a pass, showing the verdict otherwise.
pub fn assert_pass(v: &Verdict) {
    assert_eq!(v.status, Status::Pass, "expected pass, got {v:#?}");
}

/// Asserts anything but a pass.
pub fn assert_not_pass(v: &Verdict) {
    assert_ne!(v.status, Status::Pass, "a forged or vacuous run passed: {v:#?}");
}

/// Asserts a non-pass with the given reason.
pub fn assert_reason(v: &Verdict, reason: &str) {
    assert_not_pass(v);
    assert_eq!(v.reason.as_deref(), Some(reason), "{v:#?}");
}

/// A correct program, and one that is wrong, for the attack tests to start from.
pub const ADD: &str = "def add(a, b):\n    return a + b\n";
/// HumanEval style.
pub const ADD_CHECK: &str =
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n\ncheck(add)\n";
/// BigCodeBench style.
pub const ADD_UNITTEST: &str = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_small(self):\n        self.assertEqual(add(1, 2), 3)\n\n    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n";
