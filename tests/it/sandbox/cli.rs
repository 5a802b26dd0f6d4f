//! `unitcoder check` from the command line: exit codes, --json, and --batch with a malformed line.

use crate::common::{tempdir, unitcoder};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p.display().to_string()
}

#[test]
fn check_exit_codes_and_json() {
    let dir = tempdir();
    let good = write(dir.path(), "good.py", super::ADD);
    let bad = write(dir.path(), "bad.py", "def add(a, b):\n    return 0\n");
    let tests = write(dir.path(), "tests.py", super::ADD_UNITTEST);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--json", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a verdict line");
    let v: serde_json::Value = serde_json::from_str(last).expect("verdict JSON");
    assert_eq!(v["status"], "pass");
    assert_eq!(v["tests"].as_array().map(|a| a.len()), Some(2));

    let out = unitcoder(&["check", "--code", &bad, "--tests", &tests, "--json", "--memory-mb", "512"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("verdict JSON");
    assert_eq!(v["status"], "fail");
    assert_eq!(v["reason"], "assertion");
}

#[test]
fn check_usage_errors_exit_2_naming_the_problem() {
    let dir = tempdir();
    let tests = write(dir.path(), "tests.py", super::ADD_CHECK);
    let missing = dir.path().join("missing.py").display().to_string();
    let out = unitcoder(&["check", "--code", &missing, "--tests", &tests]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.py"));
    let good = write(dir.path(), "good.py", super::ADD);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--python", "/no/such/python3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/python3"));
    let out = unitcoder(&["check", "--code", &good]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn batch_reports_a_malformed_line_and_runs_the_others() {
    let dir = tempdir();
    let line =
        |id: &str, code: &str| serde_json::json!({"id": id, "code": code, "tests": super::ADD_CHECK}).to_string();
    let input = [
        line("ok-1", super::ADD),
        "{\"id\": \"broken\", \"code\": 3}".to_string(),
        line("wrong", "def add(a, b):\n    return 0\n"),
        "not json at all".to_string(),
        serde_json::json!({"id": "slow", "code": "import time\ndef add(a, b):\n    time.sleep(30)\n", "tests": super::ADD_CHECK, "timeout": 1}).to_string(),
        line("ok-2", super::ADD),
    ]
    .join("\n");
    let inp = write(dir.path(), "in.jsonl", &input);
    let outp = dir.path().join("out.jsonl").display().to_string();
    let out = unitcoder(&["check", "--batch", &inp, "--out", &outp, "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2") && stderr.contains("line 4"), "{stderr}");
    // The run's summary counts the programs that ran (not the malformed lines) and the passes.
    assert!(stderr.lines().any(|l| l.starts_with("checked 4 programs in ") && l.ends_with(": 2 passed")), "{stderr}");
    let text = std::fs::read_to_string(&outp).expect("output written");
    let verdicts: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(verdicts.len(), 6, "{text}");
    let status = |id: &str| {
        verdicts
            .iter()
            .find(|v| v["id"] == id)
            .map(|v| v["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("ok-1"), "pass");
    assert_eq!(status("ok-2"), "pass");
    assert_eq!(status("wrong"), "fail");
    assert_eq!(status("slow"), "timeout");
    assert_eq!(status("broken"), "error");
    assert_eq!(status("line 4"), "error");
    assert!(verdicts.iter().any(|v| v["tests"][0]["message"].as_str().is_some_and(|m| m.contains("line 4"))));
}
