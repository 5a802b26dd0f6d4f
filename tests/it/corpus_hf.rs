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
    retrieve_with(root, corpus, &[], out, env)
}

/// `retrieve` with more arguments.
fn retrieve_with(root: &Path, corpus: &[&str], args: &[&str], out: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("retrieve");
    for c in corpus {
        cmd.args(["--corpus", c]);
    }
    cmd.args(args)
        .arg("--allow-builtin-only")
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
    // Records name their file as the Hub does, not by this machine's cache path.
    let named = format!("hf:acme/stack@{COMMIT}:data/python/train-0000");
    assert!(corpus_files.iter().all(|f| f.starts_with(&named)), "{corpus_files:?}");
    assert!(root
        .join(format!("hf/hub/datasets--acme--stack/snapshots/{COMMIT}/data/python/train-00001.parquet"))
        .is_file());
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

/// The retrieve counts beside `root/out`.
fn counts(root: &Path, out: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root.join(out.replace(".jsonl", ".stats.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn split_by_file_each_shard_downloads_and_reads_only_its_own_files_of_a_hub_dataset() {
    let tmp = tempdir();
    let root = tmp.path();
    let entries = fixture_entries();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let parts: Vec<_> = (0..3).map(|i| src.join(format!("train-0000{i}.parquet"))).collect();
    for (p, e) in parts.iter().zip([&entries[..2], &entries[2..4], &entries[4..]]) {
        write_parquet(p, e, 1);
    }
    let files = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("data/python/train-0000{i}.parquet"), std::fs::read(p).unwrap()))
        .collect();
    let (url, seen) = http_server(hub_routes("datasets", "acme/stack", files));
    let hub = [("HF_ENDPOINT", url.as_str())];
    let paths: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
    let alone = |i: usize, out: &str| records(root, out, &retrieve(root, &[paths[i]], out, &[])).0;

    // Round robin over the dataset's files in path order: shard 1/2 takes the second file alone,
    // shard 0/2 the first and third; each asks the Hub for its own files only.
    let split = ["--shard-by", "file"];
    let mut shards = Vec::new();
    for (i, own) in [(0, vec![0, 2]), (1, vec![1])] {
        let before = seen.lock().unwrap().len();
        let out = format!("shard{i}.jsonl");
        let shard = format!("{i}/2");
        let o = retrieve_with(
            root,
            &["hf:acme/stack:data/python/*.parquet"],
            &[&["--shard", &shard][..], &split].concat(),
            &out,
            &hub,
        );
        let (ids, _) = records(root, &out, &o);
        assert!(
            stderr(&o).contains(&format!(
                "corpus: shard {i}/2 reads {} file{}; {} go to other shards",
                own.len(),
                if own.len() == 1 { "" } else { "s" },
                3 - own.len()
            )),
            "{}",
            stderr(&o)
        );
        let asked: Vec<String> =
            seen.lock().unwrap()[before..].iter().filter(|p| p.contains("/resolve/")).cloned().collect();
        for k in 0..3 {
            let name = format!("train-0000{k}.parquet");
            assert_eq!(asked.iter().any(|p| p.ends_with(&name)), own.contains(&k), "shard {i}, {name}: {asked:?}");
        }
        let mut want: Vec<String> =
            own.iter().enumerate().flat_map(|(j, &k)| alone(k, &format!("alone{i}-{j}.jsonl"))).collect();
        want.sort();
        assert_eq!(ids, want, "shard {i}");
        let c = counts(root, &out);
        assert_eq!(c["shard"], format!("{i}/2 by file"));
        assert_eq!(c["corpus_files_other_shards"], 3 - own.len() as u64);
        assert_eq!(c["files_other_shards"], 0);
        shards.extend(ids);
    }
    let all = records(root, "all.jsonl", &retrieve(root, &paths, "all.jsonl", &[])).0;
    // Each shard dedups only its own files (a merge dedups across them), so together they hold
    // everything the whole run keeps, and near duplicates of it from other files.
    assert!(all.iter().all(|id| shards.contains(id)), "{all:?} vs {shards:?}");

    // Local files split the same way, with no Hub involved, and so do a folder's data files; a
    // directory of .py sources cannot be split by file.
    let one = [&["--shard", "1/2"][..], &split].concat();
    let o = retrieve_with(root, &paths, &one, "local1.jsonl", &[]);
    assert_eq!(records(root, "local1.jsonl", &o).0, alone(1, "alone-l.jsonl"));
    let o = retrieve_with(root, &[src.to_str().unwrap()], &one, "folder1.jsonl", &[]);
    assert_eq!(records(root, "folder1.jsonl", &o).0, alone(1, "alone-f.jsonl"));
    let tree = root.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("m.py"), &entries[0].content).unwrap();
    let o = retrieve_with(root, &[tree.to_str().unwrap()], &one, "dir.jsonl", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a directory of .py files is not split by whole files"), "{}", stderr(&o));
    // Nor is the default corpus, the standard library's source tree.
    let o = retrieve_with(root, &[], &one, "stdlib.jsonl", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not split by whole files"), "{}", stderr(&o));
    assert!(!root.join("dir.jsonl").exists());
    // More shards than files: an empty shard says so instead of writing nothing silently.
    // A mistyped path fails in every shard, not only in the one it would go to.
    let o = retrieve_with(
        root,
        &[paths[0], "no-such.parquet"],
        &[&["--shard", "0/2"][..], &split].concat(),
        "typo.jsonl",
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such.parquet: no such file or directory"), "{}", stderr(&o));
    let o = retrieve_with(root, &[paths[0]], &one, "empty.jsonl", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("this shard has no corpus file"), "{}", stderr(&o));

    // Split by content, every shard reads every file, and is told how to avoid that.
    let o = retrieve_with(root, &["hf:acme/stack:data/python/*.parquet"], &["--shard", "0/2"], "content.jsonl", &hub);
    assert!(
        o.status.success() && stderr(&o).contains("--shard-by file gives each shard its own files"),
        "{}",
        stderr(&o)
    );
}
