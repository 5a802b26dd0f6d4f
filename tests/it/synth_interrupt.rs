//! `synth` stopped by SIGINT or SIGTERM, as a real subprocess on the tiny model: it stops starting
//! work, rewrites `stats.json` for what finished, says that rerunning resumes, and exits 130 or 143;
//! the same command run again finishes the rest, nothing lost or done twice.

use crate::common::{bin, record_ids, tempdir};
use crate::models::tiny_model_path;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Functions enough that a run takes a while; every name differs, so none is a near duplicate.
const FUNCTIONS: usize = 40;

fn write_corpus(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let words = ["alpha", "bravo", "carol", "delta", "eagle", "fjord", "gamma", "hotel"];
    for i in 0..FUNCTIONS {
        let w = words[i % words.len()];
        let src = format!(
            "def {w}_join_{i}(text_{i}, count_{i}):\n    parts_{i} = text_{i}.split(\"{w}\")\n    kept_{i} = \
             [p.strip() + \"{i}\" for p in parts_{i} if len(p) > {k}]\n    return \"-{w}-\".join(kept_{i}[:count_{i}]) \
             if kept_{i} else \"{w}\" * {n}\n",
            k = i % 5,
            n = i + 1
        );
        std::fs::write(dir.join(format!("m{i}.py")), src).expect("write");
    }
}

fn start(root: &Path) -> Child {
    Command::new(bin())
        .arg("synth")
        .arg("--corpus")
        .arg(root.join("corpus"))
        .arg("--packages")
        .arg(root.join("packages.txt"))
        .arg("--model")
        .arg(tiny_model_path())
        .args(["--allow-builtin-only", "--decontaminate", "none", "--max-tokens", "16", "--rounds", "0"])
        .args(["--tests-samples", "1", "--mutants", "0", "--jobs", "1", "--batch", "2"])
        .arg("--out")
        .arg(root.join("run"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start synth")
}

/// Records finished so far (accepted and rejected lines).
fn finished(root: &Path) -> usize {
    ["run/dataset/records.jsonl", "run/rejected.jsonl"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap_or_default().lines().count())
        .sum()
}

/// Sends `signal` to `child` once more than `after` records are finished, and waits for its exit.
fn interrupt(root: &Path, mut child: Child, after: usize, signal: i32) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while finished(root) <= after {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("synth ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "no record finished in 10 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().expect("wait for synth");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn stats(root: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join("run/stats.json")).expect("stats")).expect("json")
}

fn retrieved(stats: &Value) -> u64 {
    stats["funnel"].as_array().and_then(|f| f.iter().find(|s| s["step"] == "retrieved")).expect("funnel")["count"]
        .as_u64()
        .expect("count")
}

#[test]
fn sigint_and_sigterm_stop_synth_with_fresh_statistics_and_a_rerun_resumes() {
    let tmp = tempdir();
    let root = tmp.path();
    write_corpus(&root.join("corpus"));
    std::fs::write(root.join("packages.txt"), "re\n").expect("write");

    let (code, err) = interrupt(root, start(root), 0, libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("synth interrupted by SIGINT") && err.contains("rerun the same command to resume"), "{err}");
    let first = finished(root);
    assert!(first > 0 && first < FUNCTIONS, "{first} of {FUNCTIONS} finished");
    // It says how far it got against what it took, and that the unfinished work's tokens are cached.
    assert!(err.contains(&format!("{first} of the {FUNCTIONS} functions this run took have a record")), "{err}");
    assert!(err.contains("tokens over all runs, its answers cached in"), "{err}");
    // stats.json counts what finished (the run's own refresh is a minute apart: this is the stop's).
    let s = stats(root);
    assert_eq!(retrieved(&s), first as u64, "{s}");
    assert_eq!(s["runs"], 1, "{s}");
    // The card (and the report) say the run is a part, and how much is left.
    assert_eq!(s["retrieve"]["synth_functions"], FUNCTIONS as u64, "{s}");
    let card = std::fs::read_to_string(root.join("run/dataset/README.md")).expect("card");
    let note = format!("**Not finished:** {first} of the {FUNCTIONS} functions this run took have a record");
    assert!(card.contains(&note), "{card}");

    let (code, err) = interrupt(root, start(root), first, libc::SIGTERM);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("synth interrupted by SIGTERM"), "{err}");
    let second = finished(root);
    assert!(second > first && second < FUNCTIONS, "{first}, then {second} of {FUNCTIONS} finished");
    assert_eq!(retrieved(&stats(root)), second as u64);

    let out = start(root).wait_with_output().expect("wait for synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ids = record_ids(&root.join("run"));
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (FUNCTIONS, FUNCTIONS), "every function once");
    let s = stats(root);
    assert_eq!((retrieved(&s), s["runs"].as_u64()), (FUNCTIONS as u64, Some(3)), "{s}");
    // The second run skipped what the first finished, the third what both did.
    assert_eq!(s["timings"]["skipped_done"], (first + second) as u64, "{s}");
    let card = std::fs::read_to_string(root.join("run/dataset/README.md")).expect("card");
    assert!(!card.contains("Not finished"), "{card}");
}
