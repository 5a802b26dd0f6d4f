//! The default data of HumanEval+ and MBPP+ (`--data` left out): evalplus' release file, read from
//! evalplus' own cache, else from ours, else downloaded (here from a local mirror, as
//! `UNITCODER_EVALPLUS_URL` allows; this machine has no internet) and checked against the release's
//! sha256 — a corrupt cache or download is named and nothing half-written is left; offline, a
//! missing file names the URL and where it was looked for.

use crate::common::{benchmarks_dir, bin, http_server, tempdir, HttpResponse};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use unitcoder::eval::release::Release;
use unitcoder::eval::report::read_dir;
use unitcoder::eval::Benchmark;

/// Serves `files` (URL path → body) on a local port; 404 otherwise. Returns the base URL and the
/// paths requested.
fn file_server(files: Vec<(String, Vec<u8>)>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    http_server(move |req| match files.iter().find(|(p, _)| *p == req.path) {
        Some((_, body)) => HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: body.clone(),
        },
        None => HttpResponse { status: 404, headers: Vec::new(), body: Vec::new() },
    })
}

/// `eval check-gt --benchmark humaneval-plus --limit 2` without `--data`, in `root`'s caches.
fn check_gt(root: &Path, out: &str, env: &[(&str, &str)]) -> Output {
    Command::new(bin())
        .args(["eval", "check-gt", "--benchmark", "humaneval-plus", "--limit", "2", "--jobs", "2", "--out"])
        .arg(root.join(out))
        .env("XDG_CACHE_HOME", root.join("xdg"))
        .env("UNITCODER_CACHE", root.join("uc"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("UNITCODER_EVALPLUS_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn passed(root: &Path, out: &str, o: &Output) -> Vec<(String, bool)> {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}{err}", String::from_utf8_lossy(&o.stdout));
    read_dir(&root.join(out)).unwrap().1.into_iter().map(|r| (r.task_id, r.passed)).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The release's text, uncompressed, as evalplus keeps it in its cache.
fn release_text(b: Benchmark) -> Vec<u8> {
    let mut text = Vec::new();
    let gz = std::fs::File::open(benchmarks_dir().join(b.default_file())).unwrap();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut text).unwrap();
    text
}

fn ours(root: &Path) -> PathBuf {
    root.join("uc/benchmarks/HumanEvalPlus-v0.1.10.jsonl.gz")
}

const FIRST_TWO: [(&str, bool); 2] = [("HumanEval/0", true), ("HumanEval/1", true)];

fn first_two() -> Vec<(String, bool)> {
    FIRST_TWO.iter().map(|(id, p)| (id.to_string(), *p)).collect()
}

#[test]
fn humaneval_plus_without_data_reads_evalplus_cache_or_ours_and_checks_the_release() {
    let tmp = tempdir();
    let root = tmp.path();
    let rel = Release::of(Benchmark::HumanEvalPlus).unwrap();

    // Offline with nothing cached: the URL and both places are named; nothing is created.
    let o = check_gt(root, "o1", &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&rel.url("https://github.com/evalplus")) && e.contains("offline mode is on"), "{e}");
    assert!(e.contains(&root.join("xdg/evalplus/HumanEvalPlus-v0.1.10.jsonl").display().to_string()), "{e}");
    assert!(e.contains(&ours(root).display().to_string()) && e.contains("--data FILE"), "{e}");
    assert!(!root.join("uc/benchmarks").exists());

    // evalplus' cache, as evalplus leaves it (uncompressed): read in place, offline or not.
    let theirs = root.join("xdg/evalplus/HumanEvalPlus-v0.1.10.jsonl");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, release_text(Benchmark::HumanEvalPlus)).unwrap();
    let o = check_gt(root, "o2", &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(passed(root, "o2", &o), first_two());
    assert!(stderr(&o).contains(&format!("evalplus' release, {}", theirs.display())), "{}", stderr(&o));

    // A file there that is not the release (an edited or cut copy) is named, not scored.
    let mut cut = release_text(Benchmark::HumanEvalPlus);
    cut.truncate(cut.len() / 2);
    std::fs::write(&theirs, &cut).unwrap();
    let o = check_gt(root, "o3", &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&theirs.display().to_string()) && e.contains("not HumanEvalPlus v0.1.10"), "{e}");
    assert!(e.contains(rel.sha256), "{e}");
    std::fs::remove_file(&theirs).unwrap();
}

#[test]
fn humaneval_plus_without_data_downloads_the_release_once_and_refuses_a_wrong_one() {
    let tmp = tempdir();
    let root = tmp.path();
    let rel = Release::of(Benchmark::HumanEvalPlus).unwrap();
    let path = "/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz".to_string();
    let gz = std::fs::read(benchmarks_dir().join(Benchmark::HumanEvalPlus.default_file())).unwrap();

    // A mirror serving something else: refused by its hash, and nothing is left in our cache.
    let (bad, _) = file_server(vec![(path.clone(), b"{\"task_id\": \"HumanEval/0\"}\n".to_vec())]);
    let o = check_gt(root, "o1", &[("UNITCODER_EVALPLUS_URL", bad.as_str())]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not HumanEvalPlus v0.1.10"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(root.join("uc/benchmarks")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // A mirror without the file: the URL and the status are named.
    let (empty, _) = file_server(Vec::new());
    let o = check_gt(root, "o2", &[("UNITCODER_EVALPLUS_URL", empty.as_str())]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("cannot download {}", rel.url(&empty))) && e.contains("404"), "{e}");
    // An offline user is told the way round it.
    assert!(e.contains("benchmark's file can be given with --data FILE"), "{e}");

    // The release: downloaded into our cache, then read from there, offline too, with no request.
    let (good, served) = file_server(vec![(path, gz.clone())]);
    let o = check_gt(root, "o3", &[("UNITCODER_EVALPLUS_URL", good.as_str())]);
    assert_eq!(passed(root, "o3", &o), first_two());
    assert_eq!(std::fs::read(ours(root)).unwrap(), gz);
    assert_eq!(served.lock().unwrap().len(), 1);
    let o = check_gt(root, "o4", &[("UNITCODER_EVALPLUS_URL", good.as_str()), ("HF_HUB_OFFLINE", "1")]);
    assert_eq!(passed(root, "o4", &o), first_two());
    assert_eq!(served.lock().unwrap().len(), 1, "the cached copy is read, not fetched again");
}
