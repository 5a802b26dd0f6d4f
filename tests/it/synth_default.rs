//! `unitcoder synth` end to end on the real default model (Qwen2.5-Coder-1.5B-Instruct), run as a user
//! runs it (no `--model`): on a small corpus of plain functions it accepts at least one record, and
//! every accepted program, with its kept tests, also passes under plain `python -m unittest`, and its
//! docstring's examples under plain `python -m doctest` (run inside the sandbox, as all
//! model-written code is).

use crate::common::{bin, tempdir};
use crate::models::{default_model_path, test_cache_dir};
use std::process::Command;
use unitcoder::sandbox::{Job, Sandbox, SandboxConfig, Status};

const CORPUS: &str = r#"import math
import re


def round_up(value, step):
    if step <= 0:
        raise ValueError("step must be positive")
    return math.ceil(value / step) * step


def count_words(text):
    words = re.findall(r"[A-Za-z']+", text)
    return len(words)


def hypotenuse(a, b):
    squares = a * a + b * b
    return math.sqrt(squares)
"#;

/// A test suite that runs `program` followed by `tests` as one module under plain `python -m unittest`
/// in a fresh directory and asserts that it ran at least one test and passed; and `program` alone
/// under `python -m doctest`, which must pass every example its docstring shows.
fn plain_unittest_job(id: &str, program: &str, tests: &str) -> Job {
    let module = format!("{program}\n\n{tests}\n");
    let runner = format!(
        "import os, subprocess, sys, tempfile, unittest\n\n\
         MODULE = {module:?}\n\n\
         PROGRAM = {program:?}\n\n\
         class PlainUnittest(unittest.TestCase):\n    \
             def test_module_passes(self):\n        \
                 d = tempfile.mkdtemp()\n        \
                 with open(os.path.join(d, 'test_record.py'), 'w') as f:\n            \
                     f.write(MODULE)\n        \
                 r = subprocess.run([sys.executable, '-m', 'unittest', '-v', 'test_record'], cwd=d,\n                           \
                     capture_output=True, text=True, timeout=60)\n        \
                 self.assertEqual(r.returncode, 0, r.stderr[-2000:])\n        \
                 self.assertIn('OK', r.stderr)\n        \
                 self.assertNotIn('Ran 0 tests', r.stderr)\n    \
             def test_docstring_examples_pass_doctest(self):\n        \
                 d = tempfile.mkdtemp()\n        \
                 with open(os.path.join(d, 'record_program.py'), 'w') as f:\n            \
                     f.write(PROGRAM)\n        \
                 r = subprocess.run([sys.executable, '-m', 'doctest', 'record_program.py'], cwd=d,\n                           \
                     capture_output=True, text=True, timeout=60)\n        \
                 self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])\n"
    );
    // Python string literals from Rust's Debug: both escape \n, \", \\ and \t the same way.
    Job::new(id, String::new(), runner)
}

#[test]
fn synth_on_the_default_model_accepts_records_that_pass_plain_unittest() {
    default_model_path();
    let tmp = tempdir();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("corpus")).unwrap();
    std::fs::write(root.join("corpus/helpers.py"), CORPUS).unwrap();
    std::fs::write(root.join("packages.txt"), "math\nre\n").unwrap();
    let out = Command::new(bin())
        .args(["synth", "--corpus"])
        .arg(root.join("corpus"))
        .arg("--packages")
        .arg(root.join("packages.txt"))
        .arg("--out")
        .arg(root.join("run"))
        .env("UNITCODER_CACHE", test_cache_dir())
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("run unitcoder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("run/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["funnel"][0]["count"], 3, "{stats}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(root.join("run/dataset/records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!records.is_empty(), "nothing accepted: {stats}");
    assert!(records.iter().all(|r| r["tests"]["model"] == "qwen2.5-coder-1.5b"), "{records:?}");

    // The folder is a Hugging Face dataset: `datasets` loads its records through the card, which
    // names the model and settings, and synth says so.
    let data = root.join("run/dataset");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("dataset: {} is a Hugging Face dataset folder", data.display())), "{stdout}");
    let card = std::fs::read_to_string(data.join("README.md")).expect("the dataset card");
    assert!(card.contains("Model `qwen2.5-coder-1.5b` (chat template)") && card.contains("seed 0"), "{card}");
    let loaded = crate::dataset_card::load(&data, &root.join("hf"));
    let ids: Vec<&serde_json::Value> = records.iter().map(|r| &r["id"]).collect();
    assert_eq!(loaded["configs"]["records"]["rows"], serde_json::json!(ids), "{loaded}");

    let sandbox = Sandbox::new(SandboxConfig { jobs: 1, preload: Vec::new(), ..SandboxConfig::default() })
        .expect("start the sandbox");
    for r in &records {
        let program = r["polished"]["code"].as_str().or(r["verified"]["code"].as_str()).unwrap();
        let tests = r["tests"]["code"].as_str().unwrap();
        let job = plain_unittest_job(r["id"].as_str().unwrap(), program, tests);
        let verdict = sandbox.run(&job);
        assert_eq!(verdict.status, Status::Pass, "{verdict:?}\nprogram:\n{program}\ntests:\n{tests}");
    }
}
