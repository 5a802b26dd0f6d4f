//! `unitcoder eval` from the outside: usage errors, bad data named by file and line, and
//! `eval compare` on two output directories.

use crate::common::{benchmarks_dir, tempdir, unitcoder};
use unitcoder::eval::data::Dataset;
use unitcoder::eval::report::{summarize, write_outputs};
use unitcoder::eval::score::{SampleResult, VariantResult};
use unitcoder::eval::Benchmark;

#[test]
fn unknown_benchmark_is_a_usage_error_listing_the_known_ones() {
    let out = unitcoder(&["eval", "check-gt", "--benchmark", "humaneval++", "--data", "x", "--out", "y"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown benchmark") && err.contains("mbpp-plus"), "{err}");
}

#[test]
fn malformed_data_is_reported_with_file_and_line() {
    let dir = tempdir();
    let data = dir.path().join("he.jsonl");
    std::fs::write(&data, "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def f():\\n\"}\n").unwrap();
    let out = unitcoder(&[
        "eval",
        "check-gt",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("he.jsonl line 1") && err.contains("missing field `canonical_solution`"), "{err}");
}

fn result(task: &str, passed: bool) -> SampleResult {
    SampleResult {
        task_id: task.into(),
        sample: 0,
        passed,
        status: if passed { "pass" } else { "fail" }.into(),
        reason: None,
        base: VariantResult { passed, detail: None },
        plus: None,
        duration_ms: 1,
        stderr_tail: String::new(),
        solution: String::new(),
    }
}

#[test]
fn compare_prints_deltas_and_flipped_tasks() {
    let dir = tempdir();
    let ds = Dataset::load(Benchmark::HumanEval, &benchmarks_dir().join(Benchmark::HumanEval.default_file())).unwrap();
    let a = vec![result("HumanEval/0", true), result("HumanEval/1", false), result("HumanEval/2", false)];
    let b = vec![result("HumanEval/0", false), result("HumanEval/1", true), result("HumanEval/2", true)];
    for (name, rs) in [("a", &a), ("b", &b)] {
        let s = summarize(&ds, None, name, serde_json::json!({}), rs, &[1]);
        write_outputs(&dir.path().join(name), &s, rs).unwrap();
    }
    let eval_results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/eval_results.json")).unwrap()).unwrap();
    assert_eq!(eval_results["eval"]["HumanEval/0"][0]["base_status"], "pass");
    let pak: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b/pass_at_k.json")).unwrap()).unwrap();
    assert!((pak["pass@1"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);

    let out =
        unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), dir.path().join("b").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| base | pass@1 | 33.3 | 66.7 | +33.3 |"), "{text}");
    assert!(text.contains("gained (2): HumanEval/1, HumanEval/2") && text.contains("lost (1): HumanEval/0"), "{text}");
}
