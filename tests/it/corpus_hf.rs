//! `--corpus hf:ORG/NAME[@REV][:PATTERN]`: a dataset on the Hub (here a local stand-in for the Hub's
//! API and file routes, reached through `HF_ENDPOINT` as a mirror would be) is listed, the files its
//! pattern picks are downloaded into the HF cache, and retrieval finds in them what it finds in the
//! same files given as paths; offline, the cache's snapshot alone serves the same run; errors name
//! the dataset, the pattern and the cache.

use crate::common::{bin, http_server, hub_routes, tempdir};
use crate::corpus::{fixture_entries, write_jsonl, write_parquet, Compression};
use std::path::Path;
use std::process::{Command, Output};

use crate::common::HUB_COMMIT as COMMIT;

fn retrieve(root: &Path, corpus: &[&str], out: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("retrieve");
    for c in corpus {
        cmd.args(["--corpus", c]);
    }
    cmd.arg("--allow-builtin-only")
        .arg("--out")
        .arg(root.join(out))
        .env("HF_HOME", root.join("hf"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The ids of the records in `root/out`, sorted, and their corpus files.
fn records(root: &Path, out: &str, o: &Output) -> (Vec<String>, Vec<String>) {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(root.join(out)).unwrap();
    let mut ids = Vec::new();
    let mut files = Vec::new();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
        files.push(v["source"]["corpus_file"].as_str().unwrap().to_string());
    }
    ids.sort();
    (ids, files)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_hub_dataset_corpus_reads_the_files_its_pattern_picks_online_then_from_the_cache() {
    let tmp = tempdir();
    let root = tmp.path();
    let entries = fixture_entries();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (p0, p1, other) = (src.join("train-00000.parquet"), src.join("train-00001.parquet"), src.join("go.jsonl"));
    write_parquet(&p0, &entries[..3], 2);
    write_parquet(&p1, &entries[3..], 2);
    write_jsonl(&other, &entries, Compression::None);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let files = vec![
        ("README.md".to_string(), b"# a dataset card\n".to_vec()),
        ("data/python/train-00000.parquet".to_string(), read(&p0)),
        ("data/python/train-00001.parquet".to_string(), read(&p1)),
        ("data/go/train-00000.jsonl".to_string(), read(&other)),
    ];
    let (url, seen) = http_server(hub_routes("datasets", "acme/stack", files));

    // The same two files given as paths: what the dataset's pattern must give.
    let local = retrieve(root, &[p0.to_str().unwrap(), p1.to_str().unwrap()], "local.jsonl", &[]);
    let (want, _) = records(root, "local.jsonl", &local);
    assert!(!want.is_empty());

    let spec = "hf:acme/stack:data/python/*.parquet";
    let online = retrieve(root, &[spec], "online.jsonl", &[("HF_ENDPOINT", url.as_str())]);
    let (got, corpus_files) = records(root, "online.jsonl", &online);
    assert_eq!(got, want);
    let snapshot = root.join(format!("hf/hub/datasets--acme--stack/snapshots/{COMMIT}/data/python"));
    assert!(corpus_files.iter().all(|f| f.starts_with(snapshot.to_str().unwrap())), "{corpus_files:?}");
    let asked = seen.lock().unwrap().clone();
    assert!(asked.iter().all(|p| !p.contains("data/go") && !p.contains("README")), "{asked:?}");
    assert!(asked.iter().any(|p| p.ends_with("train-00001.parquet")), "{asked:?}");

    // Offline: the cache's snapshot lists and serves the same files; the Hub is not asked.
    let before = seen.lock().unwrap().len();
    let offline = retrieve(root, &[spec], "offline.jsonl", &[("HF_ENDPOINT", url.as_str()), ("HF_HUB_OFFLINE", "1")]);
    assert_eq!(records(root, "offline.jsonl", &offline).0, want);
    // A commit names its snapshot directly.
    let pinned = format!("hf:acme/stack@{COMMIT}:data/python/*.parquet");
    let by_commit = retrieve(root, &[&pinned], "commit.jsonl", &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(records(root, "commit.jsonl", &by_commit).0, want);
    assert_eq!(seen.lock().unwrap().len(), before);

    // Without a pattern: every Parquet and JSON Lines file (not the card), so the Go file too.
    let all = retrieve(root, &["hf:acme/stack"], "all.jsonl", &[("HF_ENDPOINT", url.as_str())]);
    let (every, _) = records(root, "all.jsonl", &all);
    assert!(every.len() >= want.len(), "{every:?}");
    assert!(seen.lock().unwrap().iter().any(|p| p.contains("data/go")));

    // A pattern that picks nothing lists what the dataset has; a revision never fetched, offline,
    // names the cache; both are usage-level failures (exit 2) that write nothing.
    let none = retrieve(root, &["hf:acme/stack:data/rust/*"], "none.jsonl", &[("HF_ENDPOINT", url.as_str())]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    let e = stderr(&none);
    assert!(
        e.contains("no file of the dataset matches `data/rust/*`") && e.contains("data/go/train-00000.jsonl"),
        "{e}"
    );
    let old = retrieve(root, &["hf:acme/stack@v0"], "old.jsonl", &[("HF_HUB_OFFLINE", "1")]);
    assert_eq!(old.status.code(), Some(2), "{}", stderr(&old));
    let e = stderr(&old);
    assert!(e.contains("hf:acme/stack@v0") && e.contains("datasets--acme--stack") && e.contains("revision v0"), "{e}");
    assert!(!root.join("none.jsonl").exists() && !root.join("old.jsonl").exists());
}
