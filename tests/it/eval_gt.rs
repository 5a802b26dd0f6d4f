//! check-gt on the real benchmark data: every canonical solution must pass its own benchmark's
//! tests, through the same test programs that judge model samples (HumanEval+ HumanEval/32 included,
//! which the PyPI evalplus 0.3.1 always fails).

use crate::common::benchmarks_dir;
use crate::eval_exec::PlainPython;
use unitcoder::eval::data::Dataset;
use unitcoder::eval::groundtruth;
use unitcoder::eval::program::JobSettings;
use unitcoder::eval::score::{canonical_samples, score, SampleResult};
use unitcoder::eval::Benchmark;
use unitcoder::progress::Silent;

fn check_gt(b: Benchmark) -> (Dataset, Vec<SampleResult>) {
    let ds = Dataset::load(b, &benchmarks_dir().join(b.default_file())).expect("load data");
    let gt = groundtruth::load_or_compute(&ds, "python3".as_ref(), 2, None, &Silent)
        .expect("ground truth");
    let samples = canonical_samples(&ds);
    let results = score(
        &ds,
        &gt,
        &samples,
        &PlainPython { workers: 2 },
        &JobSettings::default(),
        &Silent,
    )
    .unwrap();
    (ds, results)
}

fn failures(results: &[SampleResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{} {} {:?} {:?} {:?}",
                r.task_id,
                r.status,
                r.reason,
                r.base.detail,
                r.plus.as_ref().and_then(|p| p.detail.clone())
            )
        })
        .collect()
}

#[test]
fn humaneval_canonical_solutions_all_pass() {
    let (ds, results) = check_gt(Benchmark::HumanEval);
    assert_eq!(ds.tasks.len(), 164);
    assert_eq!(failures(&results), Vec::<String>::new());
}

#[test]
fn humaneval_plus_canonical_solutions_pass_base_and_plus() {
    let (ds, results) = check_gt(Benchmark::HumanEvalPlus);
    assert_eq!(ds.tasks.len(), 164);
    assert_eq!(failures(&results), Vec::<String>::new());
    let he32 = results
        .iter()
        .find(|r| r.task_id == "HumanEval/32")
        .unwrap();
    assert!(he32.base.passed && he32.plus.as_ref().unwrap().passed);
}

#[test]
fn mbpp_test_split_canonical_solutions_all_pass() {
    let (ds, results) = check_gt(Benchmark::Mbpp);
    assert_eq!(ds.tasks.len(), 500);
    assert_eq!(failures(&results), Vec::<String>::new());
}

#[test]
fn mbpp_plus_canonical_solutions_pass_base_and_plus() {
    let (ds, results) = check_gt(Benchmark::MbppPlus);
    assert_eq!(ds.tasks.len(), 378);
    assert_eq!(failures(&results), Vec::<String>::new());
}
