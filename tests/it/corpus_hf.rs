//! `--corpus hf:ORG/NAME[@REV][:PATTERN]`: a dataset on the Hub (here a local stand-in for the Hub's
//! API and file routes, reached through `HF_ENDPOINT` as a mirror would be) is listed, the files its
//! pattern picks are downloaded into the HF cache, and retrieval finds in them what it finds in the
//! same files given as paths; offline, the cache's snapshot alone serves the same run; errors name
//! the dataset, the pattern and the cache.

use crate::common::{bin, http_server, tempdir, HttpRequest, HttpResponse};
use crate::corpus::{fixture_entries, write_jsonl, write_parquet, Compression};
use std::path::Path;
use std::process::{Command, Output};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The Hub's routes for dataset `acme/stack` at `main`: its file list, and each file with the
/// headers hf-hub reads (ETag, X-Repo-Commit, Content-Range) and byte ranges.
fn hub(files: Vec<(String, Vec<u8>)>) -> impl Fn(&HttpRequest) -> HttpResponse {
    move |req| {
        let not_found = HttpResponse { status: 404, headers: Vec::new(), body: Vec::new() };
        if req.path == "/api/datasets/acme/stack/revision/main" {
            let siblings: Vec<_> = files.iter().map(|(f, _)| serde_json::json!({ "rfilename": f })).collect();
            let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings }).to_string().into_bytes();
            return HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body,
            };
        }
        let Some(name) = req.path.strip_prefix("/datasets/acme/stack/resolve/main/") else { return not_found };
        let Some((_, bytes)) = files.iter().find(|(f, _)| f == name) else { return not_found };
        let (start, end) = match req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
            Some(r) => {
                let (a, b) = r.split_once('-').unwrap();
                let a: usize = a.parse().unwrap();
                (a, if b.is_empty() { bytes.len() - 1 } else { b.parse().unwrap() })
            }
            None => (0, bytes.len() - 1),
        };
        let etag = format!("\"{:x}\"", md5ish(bytes));
        HttpResponse {
            status: 206,
            headers: vec![
                ("ETag".into(), etag),
                ("X-Repo-Commit".into(), COMMIT.into()),
                ("Content-Range".into(), format!("bytes {start}-{end}/{}", bytes.len())),
            ],
            body: bytes[start..=end].to_vec(),
        }
    }
}

/// A content tag for a file (the blob name in the cache): any stable digest will do.
fn md5ish(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

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
    let (url, seen) = http_server(hub(files));

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
