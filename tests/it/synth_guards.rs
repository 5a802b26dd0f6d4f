//! The synth guards that keep correct code from being bent to fit wrong tests, with a scripted
//! model and the real sandbox: a test that only misses `import os` is repaired and kept (not cut),
//! no fix rounds start from a one-test suite or from one whose tests only expect exceptions
//! (`thin_suite`: BigCodeBench/471's bent fix came from such a suite), and a fix that passes the suite but
//! fails a test the original passed in another suite is not accepted (`fix_changed_behaviour`),
//! while a real fix that keeps those tests is.

use crate::common::tempdir;
use crate::synth::{math_records, prompt_text, read, sandbox, settings};
use unitcoder::engine::Scripted;
use unitcoder::pipeline::emit;
use unitcoder::pipeline::record::AttemptKind;
use unitcoder::pipeline::run_dir::RunDir;
use unitcoder::pipeline::synth::synthesize;
use unitcoder::pipeline::Record;
use unitcoder::progress::Silent;

const CORPUS: &str = "import math\n\n\n\
def joined(x):\n    y = math.floor(x)\n    return y + 1\n\n\n\
def thin(x):\n    y = math.floor(x)\n    return y + 1\n\n\n\
def kept(x):\n    y = math.floor(x)\n    return y + 1\n\n\n\
def mended(x):\n    y = math.floor(x)\n    return y - 1 if x > 0 else y + 1\n\n\n\
def refused(x):\n    z = math.ceil(x) * 2\n    return z - 1\n";

fn case(body: &str) -> String {
    format!("import unittest\nclass TestCases(unittest.TestCase):\n{body}")
}

/// The tests samples of `name` (greedy, then the two sampled) and its fix reply.
fn script(name: &str) -> ([String; 3], &'static str) {
    let t = |lines: &[&str]| {
        let methods: Vec<String> =
            lines.iter().enumerate().map(|(i, l)| format!("    def test_{i}(self):\n        {l}\n")).collect();
        case(&methods.join(""))
    };
    match name {
        // Two of three tests use `os` without importing it.
        "joined" => {
            let s = t(&[
                "self.assertEqual(joined(2.5), 3)",
                "self.assertEqual(os.path.join('a', str(joined(2.5))), os.path.join('a', '3'))",
                "self.assertEqual(joined(-0.5) + len(os.sep), 1)",
            ]);
            ([s.clone(), s.clone(), s], "")
        }
        // One wrong expectation, and nothing else: a fix to `+ 2` would pass it.
        "thin" => {
            let s = t(&["self.assertEqual(thin(2.5), 4)"]);
            ([s.clone(), s.clone(), s], "```python\nimport math\ndef thin(x):\n    return math.floor(x) + 2\n```")
        }
        // The greedy suite expects `+ 2` throughout; a sampled one shows the original right on 2.5.
        "kept" => (
            [
                t(&["self.assertEqual(kept(2.5), 4)", "self.assertEqual(kept(3.5), 5)"]),
                t(&["self.assertEqual(kept(2.5), 3)", "self.assertEqual(kept(0.2), 5)"]),
                t(&["self.assertEqual(kept(7.5), 10)", "self.assertEqual(kept(1.5), 3)"]),
            ],
            "```python\nimport math\ndef kept(x):\n    return math.floor(x) + 2\n```",
        ),
        // Two tests, both expecting exceptions: the original raises TypeError for a string but returns
        // for a negative number, and a fix that learns to raise would pass both.
        "refused" => {
            let s = t(&[
                "with self.assertRaises(ValueError):\n            refused(-1.5)",
                "with self.assertRaises(TypeError):\n            refused('a')",
            ]);
            let fix = "```python\nimport math\ndef refused(x):\n    if x < 0:\n        raise ValueError(x)\n    return math.ceil(x) * 2 - 1\n```";
            ([s.clone(), s.clone(), s], fix)
        }
        // A real bug for x > 0; the sampled suite shows the original right on a negative number,
        // which the fix keeps.
        _ => (
            [
                t(&["self.assertEqual(mended(2.5), 3)", "self.assertEqual(mended(0.2), 1)"]),
                t(&["self.assertEqual(mended(-1.5), -1)", "self.assertEqual(mended(1.5), 2)"]),
                t(&["self.assertEqual(mended(2.5), 3)", "self.assertEqual(mended(0.2), 1)"]),
            ],
            "```python\nimport math\ndef mended(x):\n    y = math.floor(x)\n    return y + 1\n```",
        ),
    }
}

fn model() -> Scripted {
    Scripted::new(|r, sample| {
        let text = prompt_text(r);
        let Some(name) =
            ["joined", "thin", "kept", "mended", "refused"].into_iter().find(|n| text.contains(&format!("def {n}(")))
        else {
            return "I cannot help".into();
        };
        let (tests, fix) = script(name);
        if text.contains("Write unit tests") {
            let k = if r.params.temperature > 0.0 { sample + 1 } else { sample };
            return format!("```python\n{}```\n", tests[k.min(2)]);
        }
        if text.contains("fails its unit tests") {
            return fix.into();
        }
        // Polish: the code as it is, so polish changes nothing.
        "no".into()
    })
}

#[test]
fn missing_imports_thin_suites_and_changed_behaviour_are_guarded() {
    let tmp = tempdir();
    let root = tmp.path();
    let records = math_records(root, "m.py", CORPUS);
    assert_eq!(records.len(), 5);
    let dir = RunDir::new(&root.join("run"));
    synthesize(records, &model(), &sandbox(), &settings(), &dir, &Silent).unwrap();
    let (acc, rej) = read(&dir);
    let by = |v: &[Record], n: &str| v.iter().find(|r| r.function.name == n).cloned();
    let reason = |n: &str| by(&rej, n).and_then(|r| r.rejected).map(|j| j.reason);

    // Repaired, not cut: every test stays, the original passes all three as written.
    let joined = by(&acc, "joined").expect("joined accepted");
    let t = joined.tests.as_ref().unwrap();
    assert_eq!(t.imports_added, ["import os"]);
    assert!(t.dropped.is_empty() && t.disagreeing.is_empty(), "{t:?}");
    assert_eq!(unitcoder::pipeline::code::test_names(&t.code).len(), 3, "{}", t.code);
    assert!(t.code.starts_with("import os\n"), "{}", t.code);
    assert_eq!(joined.verified.as_ref().map(|v| (v.round, v.original_passed)), Some((0, true)));

    // One failing test is no ground to rewrite real code: no fix is even asked for.
    assert_eq!(reason("thin").as_deref(), Some("thin_suite"));
    let thin = by(&rej, "thin").unwrap();
    assert!(!thin.attempts.iter().any(|a| a.kind == AttemptKind::Fix), "no fix round ran");
    assert!(thin.discarded.iter().any(|d| d.kind == AttemptKind::Tests && d.reason == "thin_suite"));

    // Tests that only expect exceptions say nothing about what the function returns: no fix is asked
    // for, though one that raises would pass them all.
    assert_eq!(reason("refused").as_deref(), Some("thin_suite"));
    let refused = by(&rej, "refused").unwrap();
    assert!(!refused.attempts.iter().any(|a| a.kind == AttemptKind::Fix), "no fix round ran");
    assert!(refused.attempts.iter().any(|a| a.kind == AttemptKind::Original && !a.verdict.passed()));

    // The fix passes the greedy suite but breaks `kept(2.5) == 3`, which the original passed in
    // sample 1: it is checked, found changed, and the record rejected.
    assert_eq!(reason("kept").as_deref(), Some("fix_changed_behaviour"));
    let kept = by(&rej, "kept").unwrap();
    let checks: Vec<_> = kept.attempts.iter().filter(|a| a.kind == AttemptKind::Preservation).collect();
    assert!(!checks.is_empty() && checks.iter().all(|a| !a.verdict.passed()), "{checks:?}");
    assert!(kept.attempts.iter().any(|a| a.kind == AttemptKind::Fix && a.verdict.passed()));

    // A real fix keeps what the original did right (`mended(-1.5) == -1`) and is accepted.
    let mended = by(&acc, "mended").expect("mended accepted");
    assert_eq!(mended.verified.as_ref().map(|v| (v.round, v.original_passed)), Some((1, false)));
    let check = mended.attempts.iter().find(|a| a.kind == AttemptKind::Preservation).expect("a preservation check");
    assert!(check.verdict.passed(), "{:?}", check.verdict);

    let stats = emit::finalize(&dir, None).unwrap();
    assert_eq!(stats.imports_added.get("import os"), Some(&1));
    assert_eq!(stats.rejected.get("run_fix/thin_suite"), Some(&2));
    assert_eq!(stats.rejected.get("run_fix/fix_changed_behaviour"), Some(&1));
}
