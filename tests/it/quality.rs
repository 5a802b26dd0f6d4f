//! The quality step: mutants killed or not by a known suite in the real sandbox, coverage numbers of
//! known functions and suites, and synth runs where a suite that kills no mutant, or scores below a
//! threshold, is rejected with its reason and the threshold named.

use crate::common::tempdir;
use crate::sandbox::sandbox as shared_sandbox;
use crate::synth::{math_records, read, sandbox};
use unitcoder::engine::Scripted;
use unitcoder::pipeline::quality::{mutate, QualitySettings};
use unitcoder::pipeline::record::Stage;
use unitcoder::pipeline::run_dir::RunDir;
use unitcoder::pipeline::synth::{synthesize, SynthSettings};
use unitcoder::progress::Silent;
use unitcoder::sandbox::{Coverage, Job, Verdict};

/// Two mutants: `w / h` and `return None` (the docstring is never mutated).
const AREA: &str = "import math\n\n\ndef area(w, h):\n    \"\"\"Area.\"\"\"\n    return math.fabs(w * h)\n";
const STRONG: &str =
    "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(area(2, 3), 6)\n";
/// Checks only the type of the result: a wrong product passes it.
const WEAK: &str = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertIsInstance(area(2, 3), float)\n";

/// A model-written suite's job: strict rules.
fn job(program: &str, tests: &str) -> Job {
    Job::new("q", program, tests).with_strict_assertions()
}

fn run(program: &str, tests: &str) -> Verdict {
    let job = job(program, tests);
    shared_sandbox().run(&job)
}

fn traced(program: &str, tests: &str, function: &str) -> Coverage {
    let job = job(program, tests);
    let v = shared_sandbox().run_traced(&job, function);
    assert!(v.passed(), "{v:#?}");
    v.coverage.clone().unwrap_or_else(|| panic!("a traced run that passed reports coverage: {v:#?}"))
}

#[test]
fn a_mutant_is_killed_by_a_checking_suite_and_survives_a_type_only_one() {
    let ms = mutate::mutants(AREA, "area", 0, 30);
    let divided = ms.iter().find(|m| m.program.contains("math.fabs(w / h)")).expect("the * → / mutant");
    assert!(run(AREA, STRONG).passed() && run(AREA, WEAK).passed(), "both suites pass the original");
    assert!(!run(&divided.program, STRONG).passed(), "6 != 0.666: killed");
    assert!(run(&divided.program, WEAK).passed(), "still a float: not killed");
    let none = ms.iter().find(|m| m.program.contains("return None")).expect("the return-value mutant");
    assert!(!run(&none.program, WEAK).passed(), "None is not a float: killed");
}

const SIGN: &str =
    "def sign(x):\n    \"\"\"Doc.\"\"\"\n    if x > 0:\n        r = 1\n    else:\n        r = -1\n    return r\n";
const DOUBLE: &str = "def double(x):\n    y = x\n    if x > 0:\n        y = x * 2\n    return y\n";
const TOTAL: &str = "def total(xs):\n    s = 0\n    for x in xs:\n        if x is None:\n            break\n        s += x\n    return s\n";

fn suite(calls: &[&str]) -> String {
    let mut t = String::from("import unittest\nclass TestCases(unittest.TestCase):\n");
    for (i, c) in calls.iter().enumerate() {
        t.push_str(&format!("    def test_{i}(self):\n        self.assertTrue({c})\n"));
    }
    t
}

#[test]
fn coverage_counts_statements_and_branch_outcomes_exactly() {
    // The docstring is not a statement; `if`, `r = 1`, `r = -1`, `return r` are. Only the true
    // branch runs: 3 of 4 lines, 1 of 2 outcomes.
    let c = traced(SIGN, &suite(&["sign(5) == 1"]), "sign");
    assert_eq!((c.lines, c.lines_hit, c.branches, c.branches_hit), (4, 3, 2, 1), "{c:?}");
    let c = traced(SIGN, &suite(&["sign(5) == 1", "sign(-2) == -1"]), "sign");
    assert_eq!((c.lines, c.lines_hit, c.branches, c.branches_hit), (4, 4, 2, 2), "{c:?}");
    // An `if` without `else` that is always true: every line runs, the false outcome never.
    let c = traced(DOUBLE, &suite(&["double(3) == 6"]), "double");
    assert_eq!((c.lines, c.lines_hit, c.branches, c.branches_hit), (4, 4, 2, 1), "{c:?}");
    let c = traced(DOUBLE, &suite(&["double(3) == 6", "double(-1) == -1"]), "double");
    assert_eq!((c.branches, c.branches_hit), (2, 2), "{c:?}");
    // A loop ended by exhaustion, never by `break`: 5 of 6 lines; for: 2 of 2, if: 1 of 2.
    let c = traced(TOTAL, &suite(&["total([1, 2]) == 3"]), "total");
    assert_eq!((c.lines, c.lines_hit, c.branches, c.branches_hit), (6, 5, 4, 3), "{c:?}");
    let version = std::process::Command::new(crate::common::test_python())
        .args(["-c", "import sys; print(sys.version_info >= (3, 12))"])
        .output()
        .expect("python runs");
    let tracer =
        if String::from_utf8_lossy(&version.stdout).trim() == "True" { "sys.monitoring" } else { "sys.settrace" };
    assert_eq!(c.tracer, tracer);
}

#[test]
fn a_plain_run_reports_no_coverage() {
    assert_eq!(run(SIGN, &suite(&["sign(5) == 1"])).coverage, None);
}

/// A one-function corpus and a scripted model whose tests reply is `tests`.
fn synth_area(
    tests: &'static str,
    quality: QualitySettings,
) -> (Vec<unitcoder::pipeline::Record>, Vec<unitcoder::pipeline::Record>) {
    let tmp = tempdir();
    let root = tmp.path();
    let records = math_records(root, "area.py", AREA);
    assert_eq!(records.len(), 1);
    let gen = Scripted::new(move |r, _| {
        let text = format!("{r:?}");
        if text.contains("Write unit tests") {
            format!("```python\n{tests}```\n")
        } else {
            "no polish".into()
        }
    });
    let settings = SynthSettings { tests_samples: 1, quality, ..SynthSettings::default() };
    let dir = RunDir::new(&root.join("run"));
    synthesize(records, &gen, &sandbox(), &settings, &dir, &Silent).unwrap();
    read(&dir)
}

#[test]
fn a_suite_that_kills_no_mutant_is_rejected_as_vacuous_with_its_scores() {
    // It fails when the body raises (so the stub check keeps it) but checks nothing of the value.
    const CALLS_ONLY: &str = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertIsInstance(area(2, 3), (float, type(None)))\n";
    let off = QualitySettings { min_mutation_score: 0.0, min_coverage: 0.0, ..QualitySettings::default() };
    let (acc, rej) = synth_area(CALLS_ONLY, off);
    assert!(acc.is_empty(), "{acc:#?}");
    let r = &rej[0];
    let why = r.rejected.as_ref().unwrap();
    assert_eq!((why.stage, why.reason.as_str()), (Stage::Quality, "no_mutant_killed"), "{why:?}");
    let q = r.quality.as_ref().expect("scores kept on the rejected record");
    assert!(q.mutants == 2 && q.killed == 0 && q.mutation_score == Some(0.0), "{q:?}");
    assert_eq!(q.line_coverage, Some(1.0));
}

#[test]
fn thresholds_reject_naming_the_flag_and_a_strong_suite_is_accepted_with_its_scores() {
    let (acc, rej) = synth_area(WEAK, QualitySettings { min_mutation_score: 0.9, ..QualitySettings::default() });
    assert!(acc.is_empty());
    let why = rej[0].rejected.as_ref().unwrap();
    assert_eq!(why.reason, "low_mutation_score");
    assert!(why.detail.contains("--min-mutation-score 0.9"), "{}", why.detail);

    let (acc, _) = synth_area(STRONG, QualitySettings::default());
    let q = acc[0].quality.as_ref().expect("scores");
    assert_eq!((q.mutation_score, q.killed), (Some(1.0), q.mutants), "{q:?}");
    assert_eq!((q.line_coverage, q.branch_coverage), (Some(1.0), None));
    let strict_cov = QualitySettings { min_mutation_score: 0.0, min_coverage: 1.0, ..QualitySettings::default() };
    let (acc, _) = synth_area(STRONG, strict_cov);
    assert_eq!(acc.len(), 1, "full coverage meets --min-coverage 1");
}
