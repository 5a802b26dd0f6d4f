//! check-gt on the real benchmark data through the CLI and the sandbox: every canonical solution
//! must pass its own benchmark's tests, through the same test programs that judge model samples
//! (HumanEval+ HumanEval/32 included, which the PyPI evalplus 0.3.1 always fails).

use crate::common::{benchmarks_dir, tempdir, unitcoder};
use unitcoder::eval::report::read_dir;
use unitcoder::eval::Benchmark;

/// Runs `eval check-gt` and returns the failing task ids, the pass count and the task count.
fn check_gt(b: Benchmark) -> (Vec<String>, usize, usize) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let data = benchmarks_dir().join(b.default_file());
    let o = unitcoder(&[
        "eval",
        "check-gt",
        "--benchmark",
        b.name(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache-dir",
        dir.path().join("cache").to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let (_, results) = read_dir(&out).unwrap();
    let failing: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!("{} {} {:?} {:?}", r.task_id, r.status, r.reason, r.plus.as_ref().and_then(|p| p.detail.clone()))
        })
        .collect();
    let passed = results.iter().filter(|r| r.passed).count();
    assert!(stdout.contains(&format!("{}/{} canonical solutions pass", passed, results.len())), "{stdout}");
    assert_eq!(o.status.code(), Some(if failing.is_empty() { 0 } else { 1 }));
    (failing, passed, results.len())
}

#[test]
fn humaneval_canonical_solutions_all_pass() {
    assert_eq!(check_gt(Benchmark::HumanEval), (vec![], 164, 164));
}

#[test]
fn humaneval_plus_canonical_solutions_pass_base_and_plus() {
    assert_eq!(check_gt(Benchmark::HumanEvalPlus), (vec![], 164, 164));
}

#[test]
fn mbpp_test_split_canonical_solutions_all_pass() {
    assert_eq!(check_gt(Benchmark::Mbpp), (vec![], 500, 500));
}

#[test]
fn mbpp_plus_canonical_solutions_pass_base_and_plus() {
    assert_eq!(check_gt(Benchmark::MbppPlus), (vec![], 378, 378));
}
