//! Scoring semantics on real tasks with hand-made right and wrong solutions: evalplus-style
//! comparison (exact, float tolerance, tuple vs list, special oracles), HumanEval `check`, MBPP
//! asserts, base vs plus, and the samples-file forms.

use crate::common::{benchmarks_dir, tempdir};
use unitcoder::eval::data::Dataset;
use unitcoder::eval::groundtruth;
use unitcoder::eval::program::JobSettings;
use unitcoder::eval::score::{load_samples, score, Sample, SampleResult};
use unitcoder::eval::Benchmark;
use unitcoder::progress::Silent;
use unitcoder::sandbox::Sandbox;

fn sandbox() -> Sandbox {
    Sandbox::new(crate::common::sandbox_config(2)).expect("start the sandbox")
}

fn subset(b: Benchmark, ids: &[&str]) -> Dataset {
    let mut ds = Dataset::load(b, &benchmarks_dir().join(b.default_file())).unwrap();
    ds.tasks.retain(|t| ids.contains(&t.task_id.as_str()));
    assert_eq!(ds.tasks.len(), ids.len());
    ds
}

fn run(ds: &Dataset, samples: &[(&str, String)]) -> Vec<SampleResult> {
    let gt = groundtruth::load_or_compute(ds, "python3".as_ref(), 2, None, &Silent).unwrap();
    let samples: Vec<Sample> = samples
        .iter()
        .enumerate()
        .map(|(i, (id, sol))| Sample { task_id: id.to_string(), index: i, solution: sol.clone() })
        .collect();
    score(ds, &gt, &samples, &sandbox(), &JobSettings::default(), &Silent).unwrap()
}

fn canonical(ds: &Dataset, id: &str) -> String {
    ds.tasks.iter().find(|t| t.task_id == id).unwrap().canonical.clone()
}

#[test]
fn humaneval_plus_oracles_tolerances_and_variants() {
    let ds = subset(Benchmark::HumanEvalPlus, &["HumanEval/2", "HumanEval/32", "HumanEval/0"]);
    let he2 = canonical(&ds, "HumanEval/2");
    let he32 = canonical(&ds, "HumanEval/32");
    let samples = vec![
        // truncate_number with a tiny float error passes (atol 1e-6); a large one fails.
        ("HumanEval/2", format!("{he2}\n_orig = truncate_number\ndef truncate_number(x):\n    return _orig(x) + 1e-9\n")),
        ("HumanEval/2", format!("{he2}\n_orig = truncate_number\ndef truncate_number(x):\n    return _orig(x) + 1e-3\n")),
        // find_zero: any root within |poly(x)| <= atol is right, not only the canonical one's.
        // (one Newton step from the canonical root lands on a slightly different x).
        ("HumanEval/32", format!("{he32}\n_orig = find_zero\ndef find_zero(xs):\n    x = _orig(xs)\n    d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n    return x - poly(xs, x) / d if d else x\n")),
        ("HumanEval/32", format!("{he32}\ndef find_zero(xs):\n    return 0.5\n")),
        // Right on the three-ish base inputs' shapes but wrong on an edge case only plus covers.
        ("HumanEval/0", "def has_close_elements(numbers, threshold):\n    if len(numbers) < 2:\n        return True\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n".to_string()),
    ];
    let r = run(&ds, &samples);
    let verdicts: Vec<(bool, bool)> = r.iter().map(|r| (r.base.passed, r.plus.as_ref().unwrap().passed)).collect();
    assert_eq!(verdicts, [(true, true), (false, false), (true, true), (false, false), (true, false)], "{r:#?}");
    assert!(r[1].base.detail.as_deref().unwrap().contains("input 0"), "{:?}", r[1].base.detail);
}

#[test]
fn mbpp_plus_types_and_special_oracles() {
    let ds = subset(Benchmark::MbppPlus, &["Mbpp/2", "Mbpp/11", "Mbpp/17"]);
    let m2 = canonical(&ds, "Mbpp/2");
    let samples = vec![
        // similar_elements is compared as sets: order does not matter.
        (
            "Mbpp/2",
            format!("{m2}\n_o = similar_elements\ndef similar_elements(a, b):\n    return tuple(reversed(_o(a, b)))\n"),
        ),
        ("Mbpp/11", canonical(&ds, "Mbpp/11")),
        // A list where the canonical returns a str fails (exact equality keeps types).
        (
            "Mbpp/11",
            "def remove_Occ(s, ch):\n    return list(s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1])\n"
                .to_string(),
        ),
        ("Mbpp/17", "def square_perimeter(a):\n    return 4 * a + 1\n".to_string()),
    ];
    let r = run(&ds, &samples);
    let passed: Vec<bool> = r.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, true, false, false], "{r:#?}");
}

#[test]
fn humaneval_and_mbpp_samples_in_both_file_forms() {
    let dir = tempdir();
    let he = subset(Benchmark::HumanEval, &["HumanEval/0", "HumanEval/1"]);
    let task = &he.tasks[0];
    let body = task.canonical.strip_prefix(&task.prompt).unwrap();
    let path = dir.path().join("s.jsonl");
    let lines = [
        serde_json::json!({"task_id": "HumanEval/0", "completion": body}),
        serde_json::json!({"task_id": "HumanEval/0", "solution": task.canonical}),
        serde_json::json!({"task_id": "HumanEval/0", "completion": "    return True\n"}),
        serde_json::json!({"task_id": "HumanEval/1", "completion": "    while True:\n        pass\n"}),
    ];
    std::fs::write(&path, lines.iter().map(|l| l.to_string() + "\n").collect::<String>()).unwrap();
    let samples = load_samples(&path, &he).unwrap();
    assert_eq!(samples.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2, 0]);
    let gt = groundtruth::load_or_compute(&he, "python3".as_ref(), 1, None, &Silent).unwrap();
    let r = score(&he, &gt, &samples, &sandbox(), &JobSettings::default(), &Silent).unwrap();
    let st: Vec<&str> = r.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(st, ["pass", "pass", "fail", "timeout"]);

    let mbpp = subset(Benchmark::Mbpp, &["11"]);
    let good = mbpp.tasks[0].canonical.clone();
    let r = run(&mbpp, &[("11", good), ("11", "def remove_Occ(s, ch):\n    return s\n".into())]);
    assert_eq!(r.iter().map(|r| r.passed).collect::<Vec<_>>(), [true, false]);
}

#[test]
fn samples_for_unknown_tasks_are_rejected_with_the_line() {
    let dir = tempdir();
    let he = subset(Benchmark::HumanEval, &["HumanEval/0"]);
    let path = dir.path().join("s.jsonl");
    std::fs::write(&path, "{\"task_id\": \"HumanEval/0\", \"completion\": \"\"}\n{\"task_id\": \"HumanEval/999\", \"completion\": \"\"}\n").unwrap();
    let err = load_samples(&path, &he).unwrap_err().to_string();
    assert!(err.contains("s.jsonl line 2") && err.contains("HumanEval/999"), "{err}");
    std::fs::write(&path, "{\"task_id\": \"HumanEval/0\"}\n").unwrap();
    let err = load_samples(&path, &he).unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("`solution` or `completion`"), "{err}");
}

#[test]
fn a_sample_line_of_the_wrong_shape_names_the_field_and_the_type_it_has() {
    let dir = tempdir();
    let he = subset(Benchmark::HumanEval, &["HumanEval/0"]);
    let path = dir.path().join("s.jsonl");
    let good = "{\"task_id\": \"HumanEval/0\", \"completion\": \"\"}\n";
    for (line, wanted) in [
        (
            r#"{"task_id": true, "completion": ""}"#,
            "s.jsonl line 2: field `task_id`: expected a string or a number, got a boolean",
        ),
        (
            r#"{"task_id": null, "completion": ""}"#,
            "s.jsonl line 2: field `task_id`: expected a string or a number, got null",
        ),
        (r#"["HumanEval/0", ""]"#, "s.jsonl line 2: expected a JSON object, got an array"),
        // Not passed over for the other field: the file is not what its writer meant.
        (
            r#"{"task_id": "HumanEval/0", "solution": 5, "completion": ""}"#,
            "s.jsonl line 2: field `solution`: expected a string, got a number",
        ),
        (
            r#"{"task_id": "HumanEval/0", "completion": ["    pass"]}"#,
            "s.jsonl line 2: field `completion`: expected a string, got an array",
        ),
    ] {
        std::fs::write(&path, format!("{good}{line}\n")).unwrap();
        let err = load_samples(&path, &he).unwrap_err().to_string();
        assert!(err.ends_with(wanted), "{line}: {err}");
    }
}

#[test]
fn huge_expected_outputs_are_compared_by_digest() {
    // Mbpp/255's plus outputs run to 1.3 GB of source; they are embedded as sha256 digests.
    let ds = subset(Benchmark::MbppPlus, &["Mbpp/255"]);
    let good = canonical(&ds, "Mbpp/255");
    let bad = format!("{good}\n_o = combinations_colors\ndef combinations_colors(l, n):\n    r = _o(l, n)\n    return r[:-1] if len(r) > 50 else r\n");
    let r = run(&ds, &[("Mbpp/255", good), ("Mbpp/255", bad)]);
    let v: Vec<(bool, bool)> = r.iter().map(|r| (r.base.passed, r.passed)).collect();
    assert_eq!(v, [(true, true), (true, false)], "{r:#?}");
}

#[test]
fn generated_samples_are_extracted_scored_and_summarized() {
    use unitcoder::engine::Scripted;
    use unitcoder::eval::report::summarize;
    use unitcoder::eval::run::{generate, RunSettings};
    let ds = subset(Benchmark::HumanEval, &["HumanEval/0", "HumanEval/2"]);
    let canon: Vec<String> = ds.tasks.iter().map(|t| t.canonical.clone()).collect();
    // A chat model answering in fenced blocks: sample 0 right, sample 1 wrong, for every task.
    let g = Scripted::new(move |r, i| {
        let unitcoder::engine::Prompt::Chat(m) = &r.prompt else { panic!("expected a chat prompt") };
        let right = if m[0].content.contains("has_close_elements") { &canon[0] } else { &canon[1] };
        let code = if i == 0 { right.clone() } else { right.replace("return", "return not") };
        format!("Here you go:\n```python\n{code}\nprint('demo')\n```\n")
    });
    let settings = RunSettings { n: 2, ..RunSettings::default() };
    let generated = generate(&ds, &g, &settings, &Silent).unwrap();
    let samples: Vec<Sample> = generated.into_iter().map(|g| g.sample).collect();
    assert!(samples.iter().all(|s| !s.solution.contains("print('demo')")));
    let gt = groundtruth::load_or_compute(&ds, "python3".as_ref(), 1, None, &Silent).unwrap();
    let r = score(&ds, &gt, &samples, &sandbox(), &JobSettings::default(), &Silent).unwrap();
    assert_eq!(r.iter().map(|r| r.passed).collect::<Vec<_>>(), [true, false, true, false]);
    let s = summarize(&ds, None, "scripted", serde_json::json!({}), &r, &[1, 2, 5]);
    assert_eq!(s.pass_at_k["base"]["pass@1"], 0.5);
    assert_eq!(s.pass_at_k["base"]["pass@2"], 1.0);
    assert!(!s.pass_at_k["base"].contains_key("pass@5"));
}

/// BigCodeBench/725's `test_empty_directory` and `test_nonexistent_directory` only call the function:
/// they pass when it raises nothing, as under BigCodeBench's own harness (which passes the
/// canonical solution here). The sandbox's default rule, that every test must execute an
/// assertion, is for tests that may be hostile or vacuous (`check`, model-written suites), not for
/// a benchmark's reference tests: under it this canonical solution could never pass.
#[test]
fn a_bigcodebench_test_that_asserts_nothing_passes_when_the_program_raises_nothing() {
    let id = "BigCodeBench/725";
    let ds = subset(Benchmark::BigCodeBench, &[id]);
    let right = canonical(&ds, id);
    let raising = right.replacen("def task_func(", "def task_func_(", 1)
        + "\n\ndef task_func(directory=DIRECTORY_PATH, from_encoding='cp1251', to_encoding='utf8'):\n    \
           if not os.path.isdir(directory) or not os.listdir(directory):\n        raise ValueError('empty')\n    \
           return task_func_(directory, from_encoding, to_encoding)\n";
    let r = run(&ds, &[(id, right), (id, raising)]);
    assert!(r[0].passed, "{:#?}", r[0]);
    assert!(!r[1].passed, "{:#?}", r[1]);
}

/// Canonical solutions that the full-set check-gt against bigcodebench's harness (4 Dec, session
/// 18) found failing only under ours: programs that load a library that is not one (563, 565:
/// the tests expect dlopen's OSError), inspect a function the test hands them (566), or split a
/// temporary path on "-" (1127). Each passes now, and a wrong variant of each still fails.
#[test]
fn bigcodebench_tasks_that_load_inspect_or_split_temporary_paths_pass_as_under_their_harness() {
    let ids = ["BigCodeBench/563", "BigCodeBench/565", "BigCodeBench/566", "BigCodeBench/1127"];
    let ds = subset(Benchmark::BigCodeBench, &ids);
    let mut samples: Vec<(&str, String)> = ids.iter().map(|id| (*id, canonical(&ds, id))).collect();
    let wrong = |id: &str, from: &str, to: &str| {
        let c = canonical(&ds, id);
        assert!(c.contains(from), "{id}: {from}");
        c.replacen(from, to, 1)
    };
    // No library loaded, so no OSError for a missing one.
    samples.push((ids[0], wrong(ids[0], "lib = ctypes.CDLL(filepath)", "lib = type('L', (), {'_name': filepath})()")));
    samples.push((ids[1], wrong(ids[1], "lib = ctypes.CDLL(filepath)", "lib = type('L', (), {'_name': filepath})()")));
    samples.push((ids[2], wrong(ids[2], "spec.args", "spec.args[::-1]")));
    samples.push((ids[3], wrong(ids[3], "hashlib.sha256(f.read())", "hashlib.md5(f.read())")));
    let r = run(&ds, &samples);
    let passed: Vec<bool> = r.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, true, true, true, false, false, false, false], "{r:#?}");
}
