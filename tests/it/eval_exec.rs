//! A plain-subprocess executor for tests that run trusted code only (canonical solutions and their
//! hand-made mutations), standing in for the sandbox where the tests check the harness's own logic:
//! test programs, expected outputs, oracles and verdict reading. It runs the program and tests in
//! one Python process and reports one outcome per `test_*` function / `unittest` method.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use unitcoder::eval::Execute;
use unitcoder::sandbox::{Isolation, Job, Status, TestOutcome, TestStatus, Verdict};

const DRIVER: &str = r#"
import json, sys, unittest
prog, tests, out = sys.argv[1], sys.argv[2], sys.argv[3]
ns = {"__name__": "__uc_test__"}
res = []
def outcome(name, fn):
    try:
        fn()
        res.append([name, "pass", None])
    except AssertionError as e:
        res.append([name, "fail", str(e)[:300]])
    except BaseException as e:
        res.append([name, "error", (type(e).__name__ + ": " + str(e))[:300]])
def load():
    exec(compile(open(prog).read(), "candidate.py", "exec"), ns)
    exec(compile(open(tests).read(), "tests.py", "exec"), ns)
outcome("module", load)
if res[0][1] == "pass":
    for name, obj in list(ns.items()):
        # Only test functions the tests define: MBPP solutions have functions named test_*.
        if name.startswith("test_") and getattr(getattr(obj, "__code__", None), "co_filename", "") == "tests.py":
            outcome(name, obj)
        elif isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj is not unittest.TestCase:
            r = unittest.TestResult()
            unittest.defaultTestLoader.loadTestsFromTestCase(obj).run(r)
            bad = {t.id(): ("fail", m) for t, m in r.failures}
            bad.update({t.id(): ("error", m) for t, m in r.errors})
            bad.update({t.id(): ("skip", m) for t, m in r.skipped})
            for t in unittest.defaultTestLoader.loadTestsFromTestCase(obj):
                s, m = bad.get(t.id(), ("pass", None))
                res.append([t.id(), s, m[-300:] if m else None])
json.dump(res, open(out, "w"))
"#;

/// Runs jobs as plain `python3` processes, `workers` at a time.
pub struct PlainPython {
    pub workers: usize,
}

impl Execute for PlainPython {
    fn run_batch(&self, jobs: Vec<Job>, on_verdict: &mut dyn FnMut(Verdict)) {
        let queue = Mutex::new(jobs.into_iter());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            for _ in 0..self.workers.max(1) {
                let tx = tx.clone();
                let queue = &queue;
                s.spawn(move || loop {
                    let job = match queue.lock().unwrap().next() {
                        Some(j) => j,
                        None => break,
                    };
                    tx.send(run_one(&job)).unwrap();
                });
            }
            drop(tx);
            for v in rx {
                on_verdict(v);
            }
        });
    }
}

fn run_one(job: &Job) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let (prog, tests, out, driver) = (
        dir.path().join("p.py"),
        dir.path().join("t.py"),
        dir.path().join("r.json"),
        dir.path().join("d.py"),
    );
    std::fs::write(&prog, &job.program).unwrap();
    std::fs::write(&tests, &job.tests).unwrap();
    std::fs::File::create(&driver)
        .unwrap()
        .write_all(DRIVER.as_bytes())
        .unwrap();
    let limit = job
        .limits
        .as_ref()
        .map_or(Duration::from_secs(10), |l| l.timeout);
    let start = Instant::now();
    let mut child = Command::new("python3")
        .arg(&driver)
        .args([&prog, &tests, &out])
        .current_dir(dir.path())
        .env("TZ", "UTC")
        .env("MPLBACKEND", "Agg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let timed_out = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let raw: Vec<(String, String, Option<String>)> = std::fs::read_to_string(&out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let tests: Vec<TestOutcome> = raw
        .into_iter()
        .map(|(name, s, message)| TestOutcome {
            name,
            status: match s.as_str() {
                "pass" => TestStatus::Pass,
                "fail" => TestStatus::Fail,
                "skip" => TestStatus::Skip,
                _ => TestStatus::Error,
            },
            message,
        })
        .collect();
    let status = if timed_out {
        Status::Timeout
    } else if tests.is_empty() {
        Status::Error
    } else if tests.iter().all(|t| t.status == TestStatus::Pass) {
        Status::Pass
    } else if tests.iter().any(|t| t.status == TestStatus::Error) {
        Status::Error
    } else {
        Status::Fail
    };
    let reason = tests
        .iter()
        .find(|t| t.status != TestStatus::Pass)
        .and_then(|t| t.message.clone());
    Verdict {
        id: job.id.clone(),
        status,
        reason: if status == Status::Pass {
            None
        } else {
            reason.or(Some("timeout".into()))
        },
        tests,
        duration_ms: start.elapsed().as_millis() as u64,
        stdout_tail: String::new(),
        stderr_tail: stderr
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        isolation: Isolation {
            level: "none".into(),
            active: vec![],
            missing: vec![],
        },
    }
}
