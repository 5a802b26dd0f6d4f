//! `unitcoder synth` end to end with the real tiny model on a two-function corpus: a run killed
//! with SIGKILL part-way and rerun ends with the same records as an uninterrupted run (none lost, none
//! twice), the rerun of a finished run redoes no model call, and `report` writes its files. Token
//! limits are tiny so this stays within a few minutes on 2 cores.

use crate::common::{bin, record_ids, tempdir};
use crate::models::tiny_model_path;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CORPUS: &str = "import math\n\n\ndef hyp(a, b):\n    s = a * a + b * b\n    return math.sqrt(s)\n\n\ndef ceil_half(x):\n    h = x / 2\n    return math.ceil(h)\n";

fn synth_cmd(root: &Path, out: &str) -> Command {
    let mut c = Command::new(bin());
    c.args(["synth", "--corpus"])
        .arg(root.join("corpus"))
        .arg("--packages")
        .arg(root.join("packages.txt"))
        .arg("--model")
        .arg(tiny_model_path())
        .args(["--max-tokens", "40", "--rounds", "1", "--samples", "1", "--batch", "1", "--jobs", "1"])
        .arg("--out")
        .arg(root.join(out));
    c
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap_or_default().lines().count()
}

#[test]
fn killed_synth_resumes_to_the_uninterrupted_result_and_reports() {
    let tmp = tempdir();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("corpus")).unwrap();
    std::fs::write(root.join("corpus/m.py"), CORPUS).unwrap();
    std::fs::write(root.join("packages.txt"), "math\n").unwrap();

    let full = synth_cmd(root, "full").output().unwrap();
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let want = record_ids(&root.join("full"));
    assert_eq!(want.len(), 2, "both functions end accepted or rejected");

    // Kill as soon as the first model answer is cached, then rerun the same command.
    let mut child = synth_cmd(root, "killed").spawn().unwrap();
    let started = Instant::now();
    while lines(&root.join("killed/cache/model.jsonl")) == 0 && started.elapsed() < Duration::from_secs(300) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished_alone = child.try_wait().unwrap();
    assert!(
        finished_alone.is_none(),
        "the run ended ({finished_alone:?}) before it could be killed: nothing was interrupted"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the run was killed part way, not finished: {status:?}");
    assert!(record_ids(&root.join("killed")).len() < want.len(), "the killed run had not finished every record");
    // The killed run's statistics exist already: written at its start, with the retrieve counts.
    let early: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("killed/stats.json")).unwrap()).unwrap();
    assert_eq!(early["retrieve"]["kept"], 2, "{early}");
    let again = synth_cmd(root, "killed").output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let got = record_ids(&root.join("killed"));
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len(), "no record twice");
    assert_eq!(got, want);

    // A finished run rerun: everything already done, no model call.
    let third = synth_cmd(root, "killed").output().unwrap();
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(stdout.contains("0 records finished, 2 already done"), "{stdout}");

    let rep = Command::new(bin()).arg("report").arg(root.join("full")).output().unwrap();
    assert!(rep.status.success(), "{}", String::from_utf8_lossy(&rep.stderr));
    let charts = ["funnel.svg", "pass_by_round.svg", "mutation_score.svg", "line_coverage.svg", "branch_coverage.svg"];
    for f in ["report.md", "report.json", "stats.json"].into_iter().chain(charts) {
        assert!(root.join("full").join(f).is_file(), "{f}");
    }
    let svg = std::fs::read_to_string(root.join("full/funnel.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("retrieved"));
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("full/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["funnel"][0]["count"], 2);
    assert!(stats["tokens"].as_u64().unwrap() > 0, "the model generated tokens");
}
