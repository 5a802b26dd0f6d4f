//! Benchmark data as the Hugging Face Hub publishes it: the shared JSONL releases are rewritten as
//! Parquet with the column names and types of the Hub datasets' cards (openai/openai_humaneval,
//! google-research-datasets/mbpp `full` and `sanitized`, bigcode/bigcodebench), then loaded both
//! ways: the task sets must be identical and check-gt must give the same verdicts. `hf:` names
//! resolve against a hand-built HF cache (`datasets--ORG--NAME`), as the HF tools lay it out.

use crate::common::{benchmarks_dir, tempdir, unitcoder};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use unitcoder::eval::data::{raw_fields, read_maybe_gz, Dataset};
use unitcoder::eval::report::read_dir;
use unitcoder::eval::Benchmark;

/// Column types found on the Hub cards: `string`, `int32`, `float64` and `sequence: string`.
#[derive(Clone, Copy)]
enum Col {
    Str,
    Int,
    Float,
    StrList,
}

/// The Hub's schema for each benchmark, in the cards' column order.
fn hub_columns(b: Benchmark) -> Vec<(&'static str, Col)> {
    use Col::*;
    match b {
        Benchmark::HumanEval => {
            vec![("task_id", Str), ("prompt", Str), ("canonical_solution", Str), ("test", Str), ("entry_point", Str)]
        }
        Benchmark::Mbpp => vec![
            ("task_id", Int),
            ("text", Str),
            ("code", Str),
            ("test_list", StrList),
            ("test_setup_code", Str),
            ("challenge_test_list", StrList),
        ],
        Benchmark::MbppSanitized => vec![
            ("source_file", Str),
            ("task_id", Int),
            ("prompt", Str),
            ("code", Str),
            ("test_imports", StrList),
            ("test_list", StrList),
        ],
        Benchmark::BigCodeBench | Benchmark::BigCodeBenchHard => vec![
            ("task_id", Str),
            ("complete_prompt", Str),
            ("instruct_prompt", Str),
            ("canonical_solution", Str),
            ("code_prompt", Str),
            ("test", Str),
            ("entry_point", Str),
            ("doc_struct", Str),
            ("libs", Str),
        ],
        // No Hub copy has the inputs: a converted copy keeps each input array as JSON text.
        Benchmark::HumanEvalPlus | Benchmark::MbppPlus => vec![
            ("task_id", Str),
            ("prompt", Str),
            ("entry_point", Str),
            ("canonical_solution", Str),
            ("base_input", Str),
            ("plus_input", Str),
            ("atol", Float),
        ],
    }
}

/// The records of a shared data file as `(field, raw JSON text)` pairs.
fn raw_records(path: &Path) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8(read_maybe_gz(path).unwrap()).unwrap();
    if text.trim_start().starts_with('[') {
        let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        return v.iter().map(|o| raw_fields(&o.to_string()).unwrap()).collect();
    }
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| raw_fields(l).unwrap()).collect()
}

/// Writes `records` as Parquet with `columns`, laid out as pyarrow (which `datasets` uses) writes
/// them: nullable columns, lists as `LIST` groups of `element`s. A field holding a JSON string is
/// written as that string; a JSON array into a string column as its JSON text.
fn write_parquet(path: &Path, columns: &[(&str, Col)], records: &[Vec<(String, String)>]) {
    let mut msg = String::from("message schema {\n");
    for (name, col) in columns {
        msg.push_str(&match col {
            Col::Str => format!("optional binary {name} (UTF8);\n"),
            Col::Int => format!("optional int32 {name};\n"),
            Col::Float => format!("optional double {name};\n"),
            Col::StrList => format!(
                "optional group {name} (LIST) {{ repeated group list {{ optional binary element (UTF8); }} }}\n"
            ),
        });
    }
    msg.push('}');
    let schema = Arc::new(parse_message_type(&msg).unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut w) = group.next_column().unwrap() {
        let (name, col) = columns[i];
        let values: Vec<Option<String>> = records
            .iter()
            .map(|r| r.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| v != "null"))
            .collect();
        let text = |raw: &str| serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
        let def = |v: &Option<String>| i16::from(v.is_some());
        match col {
            Col::Str => {
                let data: Vec<ByteArray> = values.iter().flatten().map(|v| ByteArray::from(text(v).as_str())).collect();
                let defs: Vec<i16> = values.iter().map(def).collect();
                w.typed::<ByteArrayType>().write_batch(&data, Some(&defs), None).unwrap();
            }
            Col::Int => {
                let data: Vec<i32> = values.iter().flatten().map(|v| v.parse().unwrap()).collect();
                let defs: Vec<i16> = values.iter().map(def).collect();
                w.typed::<Int32Type>().write_batch(&data, Some(&defs), None).unwrap();
            }
            Col::Float => {
                let data: Vec<f64> = values.iter().flatten().map(|v| v.parse().unwrap()).collect();
                let defs: Vec<i16> = values.iter().map(def).collect();
                w.typed::<DoubleType>().write_batch(&data, Some(&defs), None).unwrap();
            }
            Col::StrList => {
                // Levels: 0 null list, 1 empty list, 3 a present element; repetition 1 continues a list.
                let (mut data, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
                for v in &values {
                    let items: Vec<String> = v.as_deref().map(|v| serde_json::from_str(v).unwrap()).unwrap_or_default();
                    if items.is_empty() {
                        defs.push(i16::from(v.is_some()));
                        reps.push(0);
                    }
                    for (j, item) in items.iter().enumerate() {
                        data.push(ByteArray::from(item.as_str()));
                        defs.push(3);
                        reps.push(i16::from(j > 0));
                    }
                }
                w.typed::<ByteArrayType>().write_batch(&data, Some(&defs), Some(&reps)).unwrap();
            }
        }
        w.close().unwrap();
        i += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

/// One record's `(field, raw JSON text)` pairs.
type Fields = [(String, String)];

/// The shared file of `b` rewritten as Parquet in `dir`, keeping the records `keep` accepts.
fn to_parquet(b: Benchmark, dir: &Path, keep: &dyn Fn(&Fields) -> bool) -> PathBuf {
    let records: Vec<_> =
        raw_records(&benchmarks_dir().join(b.default_file())).into_iter().filter(|r| keep(r)).collect();
    let path = dir.join(format!("{}.parquet", b.name()));
    write_parquet(&path, &hub_columns(b), &records);
    path
}

fn field<'a>(r: &'a [(String, String)], name: &str) -> &'a str {
    r.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

#[test]
fn parquet_copies_load_the_same_tasks_as_the_published_files() {
    let dir = tempdir();
    // BigCodeBench-Hard (a subset of the full file) goes through check-gt on Parquet below.
    for b in Benchmark::ALL.into_iter().filter(|b| *b != Benchmark::BigCodeBenchHard) {
        let pq = to_parquet(b, dir.path(), &|_| true);
        let from_pq = Dataset::load(b, &pq).unwrap_or_else(|e| panic!("{b}: {e}"));
        let published = Dataset::load(b, &benchmarks_dir().join(b.default_file())).unwrap();
        assert!(from_pq.tasks.len() >= 164, "{b}: {}", from_pq.tasks.len());
        assert_eq!(from_pq.tasks.len(), published.tasks.len(), "{b}");
        for (x, y) in from_pq.tasks.iter().zip(&published.tasks) {
            assert_eq!(x, y, "{b} {}", y.task_id);
        }
    }
}

/// `(task_id, passed)` of every result of `eval check-gt` on `data`.
/// `eval check-gt` on `data` (`--data` left out when empty).
fn check_gt(b: Benchmark, data: &str, dir: &Path, env: &[(&str, &Path)]) -> Vec<(String, bool)> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let out = dir.join(format!("out-{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let data: &[&str] = if data.is_empty() { &[] } else { &["--data", data] };
    let o = Command::new(crate::common::bin())
        .args(["eval", "check-gt", "--benchmark", b.name()])
        .args(data)
        .args(["--jobs", "2", "--out"])
        .arg(&out)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    read_dir(&out).unwrap().1.into_iter().map(|r| (r.task_id, r.passed)).collect()
}

#[test]
fn check_gt_on_parquet_agrees_with_the_published_files() {
    let dir = tempdir();
    let he_ids = ["HumanEval/0", "HumanEval/32", "HumanEval/163"];
    let he =
        to_parquet(Benchmark::HumanEval, dir.path(), &|r| he_ids.iter().any(|id| field(r, "task_id").contains(id)));
    let mbpp = to_parquet(Benchmark::MbppSanitized, dir.path(), &|r| ["11", "12"].contains(&field(r, "task_id")));
    // BigCodeBench tasks whose libraries are all in the standard library, so CI's Python runs them.
    let bcb_ids = ["BigCodeBench/19", "BigCodeBench/854"];
    let bcb = to_parquet(Benchmark::BigCodeBenchHard, dir.path(), &|r| {
        bcb_ids.iter().any(|id| field(r, "task_id") == format!("\"{id}\""))
    });
    for (b, pq, n) in
        [(Benchmark::HumanEval, he, 3), (Benchmark::MbppSanitized, mbpp, 2), (Benchmark::BigCodeBenchHard, bcb, 2)]
    {
        let from_pq = check_gt(b, pq.to_str().unwrap(), dir.path(), &[]);
        assert_eq!(from_pq.len(), n, "{b}: {from_pq:?}");
        assert!(from_pq.iter().all(|(_, passed)| *passed), "{b}: {from_pq:?}");
        let published = benchmarks_dir().join(b.default_file());
        let mut ds = Dataset::load(b, &published).unwrap();
        ds.tasks.retain(|t| from_pq.iter().any(|(id, _)| *id == t.task_id));
        assert_eq!(ds.tasks.len(), n, "{b}");
    }
}

#[test]
fn bad_parquet_files_are_named_with_the_column_or_row_at_fault() {
    let dir = tempdir();
    let run = |b: &str, data: &Path| {
        let out = dir.path().join("o");
        let o = unitcoder(&[
            "eval",
            "check-gt",
            "--benchmark",
            b,
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let recs = raw_records(&benchmarks_dir().join(Benchmark::HumanEval.default_file()));
    // A column missing: named once, with the columns the file has.
    let cols: Vec<_> =
        hub_columns(Benchmark::HumanEval).into_iter().filter(|(n, _)| *n != "canonical_solution").collect();
    let p = dir.path().join("no-canonical.parquet");
    write_parquet(&p, &cols, &recs[..3]);
    let e = run("humaneval", &p);
    assert!(e.contains("no-canonical.parquet schema: missing column `canonical_solution`"), "{e}");
    assert!(e.contains("the file has: task_id, prompt, test, entry_point"), "{e}");
    // A null in row 1.
    let mut nulled = recs[..3].to_vec();
    nulled[1].retain(|(k, _)| k != "prompt");
    let p = dir.path().join("null.parquet");
    write_parquet(&p, &hub_columns(Benchmark::HumanEval), &nulled);
    let e = run("humaneval", &p);
    assert!(e.contains("null.parquet row 1: field `prompt`: invalid type: null"), "{e}");
    // Not Parquet inside, though it says so at both ends.
    let p = dir.path().join("broken.parquet");
    std::fs::write(&p, b"PAR1 this is not a parquet file PAR1").unwrap();
    let e = run("humaneval", &p);
    assert!(e.contains("broken.parquet parquet:"), "{e}");
    // evalplus' OriginFmt (what the Hub's evalplus/humanevalplus holds) is told apart from a broken file.
    let p = dir.path().join("originfmt.parquet");
    write_parquet(&p, &hub_columns(Benchmark::HumanEval), &recs[..1]);
    let e = run("humaneval-plus", &p);
    assert!(e.contains("missing column `base_input`") && e.contains("OriginFmt"), "{e}");
    // The original HumanEval file has the same columns: the hint names both and what to do with each.
    let he = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let e = run("humaneval-plus", &he);
    assert!(e.contains("missing field `base_input`") && e.contains("the original release"), "{e}");
    assert!(e.contains("HumanEvalPlus-v0.1.10.jsonl.gz") && e.contains("original benchmark's --benchmark"), "{e}");
    // The two evalplus files have the same fields; their task ids tell them apart.
    let hep = benchmarks_dir().join(Benchmark::HumanEvalPlus.default_file());
    let e = run("mbpp-plus", &hep);
    assert!(
        e.contains("task_id `HumanEval/0` is not a mbpp-plus task: is the file --benchmark humaneval-plus's?"),
        "{e}"
    );
    let mbp = benchmarks_dir().join(Benchmark::MbppPlus.default_file());
    let e = run("humaneval-plus", &mbp);
    assert!(e.contains("is not a humaneval-plus task: is the file --benchmark mbpp-plus's?"), "{e}");
}

const REV: &str = "89abcdef0123456789abcdef0123456789abcdef";

#[test]
fn hf_datasets_resolve_from_the_hf_cache_online_and_offline() {
    let root = tempdir();
    let repo = root.path().join("hub/datasets--openai--openai_humaneval");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), REV).unwrap();
    let snap = repo.join("snapshots").join(REV).join("openai_humaneval");
    std::fs::create_dir_all(&snap).unwrap();
    let ids = ["HumanEval/0", "HumanEval/1"];
    let pq = to_parquet(Benchmark::HumanEval, root.path(), &|r| {
        ids.iter().any(|id| field(r, "task_id") == format!("\"{id}\""))
    });
    std::fs::rename(&pq, snap.join("test-00000-of-00001.parquet")).unwrap();
    let hf_home = root.path();
    for offline in ["1", "0"] {
        // Online, a cache hit never touches the network (which this machine does not have).
        let env: [(&str, &Path); 2] = [("HF_HOME", hf_home), ("HF_HUB_OFFLINE", Path::new(offline))];
        let got = check_gt(Benchmark::HumanEval, "hf:openai/openai_humaneval", root.path(), &env);
        assert_eq!(got, [("HumanEval/0".to_string(), true), ("HumanEval/1".to_string(), true)]);
        let explicit = "hf:openai/openai_humaneval@main:openai_humaneval/test-00000-of-00001.parquet";
        assert_eq!(check_gt(Benchmark::HumanEval, explicit, root.path(), &env).len(), 2);
        // Without --data, the benchmark's own repository is the data.
        assert_eq!(check_gt(Benchmark::HumanEval, "", root.path(), &env), got);
    }
    // Online with an empty cache: downloaded from the Hub (a local stand-in, through HF_ENDPOINT).
    let bytes = std::fs::read(snap.join("test-00000-of-00001.parquet")).unwrap();
    let files = vec![("openai_humaneval/test-00000-of-00001.parquet".to_string(), bytes)];
    let (url, seen) =
        crate::common::http_server(crate::common::hub_routes("datasets", "openai/openai_humaneval", files));
    let fresh = root.path().join("fresh");
    let env: [(&str, &Path); 3] =
        [("HF_HOME", &fresh), ("HF_HUB_OFFLINE", Path::new("0")), ("HF_ENDPOINT", Path::new(&url))];
    let got = check_gt(Benchmark::HumanEval, "", root.path(), &env);
    assert_eq!(got, [("HumanEval/0".to_string(), true), ("HumanEval/1".to_string(), true)]);
    assert!(seen.lock().unwrap().iter().any(|p| p.ends_with("test-00000-of-00001.parquet")));
    assert!(fresh.join("hub/datasets--openai--openai_humaneval/snapshots").is_dir());
    // Named, or left out (BigCodeBench's own repository is its default), offline and not cached.
    for (i, data) in [&["--data", "hf:bigcode/bigcodebench"][..], &[]].into_iter().enumerate() {
        let o = Command::new(crate::common::bin())
            .args(["eval", "check-gt", "--benchmark", "bigcodebench"])
            .args(data)
            .arg("--out")
            .arg(root.path().join(format!("o{i}")))
            .env("HF_HOME", hf_home)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("data/v0.1.4-00000-of-00001.parquet") && e.contains("datasets--bigcode--bigcodebench"),
            "{e}"
        );
        assert!(e.contains("offline mode is on"), "{e}");
    }
    // Online, not cached, and the Hub out of reach (a port nothing listens on, as with no network):
    // the error says both ways round it.
    let o = Command::new(crate::common::bin())
        .args(["eval", "check-gt", "--benchmark", "humaneval", "--out"])
        .arg(root.path().join("unreachable"))
        .env("HF_HOME", root.path().join("empty"))
        .env("HF_HUB_OFFLINE", "0")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("cannot download hf:openai/openai_humaneval"), "{e}");
    assert!(e.contains("HF_HUB_OFFLINE=1") && e.contains("--data FILE"), "{e}");
}
