//! `unitcoder retrieve` end to end: the funnel on the fixture corpus, identical records from every
//! corpus format, malformed-line handling, shards, decontamination against the real benchmark files,
//! custom allow-lists, `--limit`, and the standard-library default corpus.

use crate::common::{benchmarks_dir, tempdir, unitcoder};
use crate::corpus::{
    fixture_dir, fixture_entries, jsonl_line, write_jsonl, write_lines, write_parquet, Compression, Entry,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Runs `unitcoder retrieve ARGS --out DIR/NAME.jsonl`; returns (exit code, stdout+stderr, records, stats).
fn retrieve(dir: &Path, name: &str, args: &[&str]) -> (i32, String, Vec<Value>, Value) {
    let out = dir.join(format!("{name}.jsonl"));
    let out_s = out.display().to_string();
    let mut all: Vec<&str> = vec!["retrieve"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &out_s]);
    let o = unitcoder(&all);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let records = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("record is JSON"))
        .collect();
    let stats = std::fs::read_to_string(dir.join(format!("{name}.stats.json")))
        .map(|s| serde_json::from_str(&s).expect("stats are JSON"))
        .unwrap_or(Value::Null);
    (o.status.code().unwrap_or(-1), text, records, stats)
}

fn names(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["function"]["name"].as_str().unwrap_or("").to_string()).collect()
}

fn ids(records: &[Value]) -> BTreeSet<String> {
    records.iter().map(|r| r["id"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn fixture_funnel_counts_every_reason_and_keeps_standalone_functions() {
    let dir = tempdir();
    let corpus = fixture_dir().display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "out", &["--corpus", &corpus]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(stats["files_read"], 5);
    assert_eq!(stats["files_parsed"], 3);
    assert_eq!(stats["files_skipped"], serde_json::json!({"syntax_error": 1, "python2": 1}));
    // Each reason names its first file, on stdout and in the counts.
    for reason in ["syntax_error", "python2"] {
        let example = stats["skip_examples"][reason].as_str().unwrap_or_default();
        assert!(
            example.ends_with(" bytes)") && text.contains(&format!("skipped ({reason}), the first: {example}")),
            "{text}"
        );
    }
    assert_eq!(stats["functions_seen"], 17);
    let expected_rejects = serde_json::json!({
        "async": 1, "disallowed_module": 1, "inner_import": 1, "nested_definition": 1, "no_arguments": 1,
        "no_module": 1, "no_return_value": 1, "uses_file_local": 1,
    });
    assert_eq!(stats["rejected"], expected_rejects);
    assert_eq!(stats["passed_filter"], 9);
    assert_eq!(stats["exact_duplicates"], 1);
    assert_eq!(stats["near_duplicates"], 1);
    assert_eq!(stats["kept"], 7);
    assert_eq!(
        stats["per_package"],
        serde_json::json!({"collections": 2, "math": 1, "numpy": 1, "os": 1, "re": 1, "string": 1})
    );
    assert!(stats["reject_examples"]["uses_file_local"]
        .as_str()
        .unwrap_or("")
        .ends_with("stats_utils.py line 35: scaled SCALE"));
    assert_eq!(
        names(&records),
        vec![
            "weighted_mean",
            "most_common_words",
            "group_by_length",
            "hypot_all",
            "slugify",
            "strip_punctuation",
            "file_stem"
        ]
    );
    // The first copy in corpus order is kept (nested/ sorts before pkg/).
    assert_eq!(records[0]["source"]["path"], "nested/copies.py");
    let stem = &records[6];
    assert_eq!(stem["function"]["imports"], serde_json::json!(["from os import path as osp"]));
    assert_eq!(stem["function"]["packages"], serde_json::json!(["os"]));
    assert_eq!(stem["source"]["start_line"], 21);
    assert!(stem["function"]["code"]
        .as_str()
        .unwrap_or("")
        .starts_with("from os import path as osp\n\n\ndef file_stem(p):\n"));
    assert!(text.contains("rejected: uses_file_local"), "{text}");
    assert!(text.contains("wrote 7 records"), "{text}");
}

#[test]
fn every_corpus_format_gives_the_same_records_with_provenance() {
    let dir = tempdir();
    let (_, _, from_dir, _) = retrieve(dir.path(), "dir", &["--corpus", &fixture_dir().display().to_string()]);
    let entries = fixture_entries();
    let corpora = [
        ("c.jsonl", Some(Compression::None)),
        ("c.jsonl.gz", Some(Compression::Gzip)),
        ("c.jsonl.zst", Some(Compression::Zstd)),
        ("c.parquet", None),
    ];
    for (name, compression) in corpora {
        let p = dir.path().join(name);
        match compression {
            Some(c) => write_jsonl(&p, &entries, c),
            None => write_parquet(&p, &entries, 2),
        }
        let (code, text, records, stats) = retrieve(dir.path(), name, &["--corpus", &p.display().to_string()]);
        assert_eq!(code, 0, "{name}: {text}");
        assert_eq!(ids(&records), ids(&from_dir), "{name}");
        assert_eq!(stats["kept"], 7, "{name}");
        let slug = records.iter().find(|r| r["function"]["name"] == "slugify").expect("slugify kept");
        assert_eq!(slug["source"]["path"], "pkg/text_utils.py", "{name}");
        assert_eq!(slug["source"]["repo"], "octo/pkg", "{name}");
        assert_eq!(slug["source"]["license"], serde_json::json!(["MIT", "Apache-2.0"]), "{name}");
        assert_eq!(slug["source"]["corpus_file"], p.display().to_string());
        // Each counted as its own tools count: pyarrow's row 4 is the JSONL file's line 5.
        let (key, absent, at) =
            if name.ends_with("parquet") { ("corpus_row", "corpus_line", 4) } else { ("corpus_line", "corpus_row", 5) };
        assert_eq!(slug["source"][key], at, "{name}");
        assert!(slug["source"].get(absent).is_none(), "{name}: {}", slug["source"]);
    }
}

#[test]
fn out_is_written_as_its_name_says_and_never_over_an_input() {
    let dir = tempdir();
    let corpus = dir.path().join("c.jsonl");
    write_jsonl(&corpus, &fixture_entries(), Compression::None);
    let corpus_s = corpus.display().to_string();
    let before = std::fs::read(&corpus).unwrap();
    // The output named as the corpus, directly or through a hard link: refused, the corpus kept.
    let link = dir.path().join("link.jsonl");
    std::fs::hard_link(&corpus, &link).unwrap();
    for out in [&corpus, &link] {
        let o = unitcoder(&["retrieve", "--corpus", &corpus_s, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("would destroy the input"));
        assert_eq!(std::fs::read(&corpus).unwrap(), before);
    }
    // .jsonl.gz and .jsonl.zst are compressed as named, and synth's reader takes them back.
    let (_, _, plain, _) = retrieve(dir.path(), "plain", &["--corpus", &corpus_s]);
    for name in ["r.jsonl.gz", "r.jsonl.zst"] {
        let out = dir.path().join(name);
        let o = unitcoder(&["retrieve", "--corpus", &corpus_s, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let raw = std::fs::read(&out).unwrap();
        assert!(raw.starts_with(&[0x1f, 0x8b]) || raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "{name} is compressed");
        let back: Vec<Value> = unitcoder::pipeline::record::RecordReader::open(&out)
            .unwrap()
            .map(|r| serde_json::to_value(r.unwrap()).unwrap())
            .collect();
        assert_eq!(ids(&back), ids(&plain), "{name}");
        assert!(dir.path().join("r.stats.json").exists());
    }
    // A format it does not write, or a corpus it cannot read, leaves an existing output untouched.
    let keep = dir.path().join("keep.jsonl");
    std::fs::write(&keep, "kept\n").unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "x").unwrap();
    let o = unitcoder(&["retrieve", "--corpus", &corpus_s, "--out", dir.path().join("r.parquet").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("merge --format parquet"));
    let o = unitcoder(&[
        "retrieve",
        "--corpus",
        &corpus_s,
        "--corpus",
        txt.to_str().unwrap(),
        "--out",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "kept\n");
}

#[test]
fn functions_python_3_does_not_compile_are_rejected_as_syntax_errors() {
    // tree-sitter parses each of these; Python 3's compiler refuses them.
    let dir = tempdir();
    let corpus = dir.path().join("src");
    std::fs::create_dir(&corpus).unwrap();
    let bodies = [
        ("ne", "def ne(a, b):\n    x = os.sep\n    return a <> b\n"),
        ("octal", "def octal(p):\n    os.chmod(p, 0777)\n    return p\n"),
        ("long", "def long_(p):\n    n = len(os.listdir(p))\n    return n + 10L\n"),
        ("twice", "def twice(p, p):\n    q = os.path.join(p, 'x')\n    return q\n"),
        ("fine", "def fine(p):\n    q = os.path.join(p, 'x')\n    return q\n"),
    ];
    for (name, body) in bodies {
        std::fs::write(corpus.join(format!("{name}.py")), format!("import os\n\n\n{body}")).unwrap();
    }
    let args = ["--corpus", corpus.to_str().unwrap(), "--decontaminate", "none", "--near-dup", "0"];
    let (code, text, records, stats) = retrieve(dir.path(), "out", &args);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), ["fine"], "{text}");
    assert_eq!(stats["rejected"]["syntax_error"], 4, "{stats}");
    let example = stats["reject_examples"]["syntax_error"].as_str().unwrap();
    assert!(example.contains("compiled alone: line "), "{example}");
    // A Python that cannot run is named, before anything is written.
    let o = unitcoder(&[
        "retrieve",
        "--corpus",
        corpus.to_str().unwrap(),
        "--python",
        "/nonexistent/python3",
        "--out",
        dir.path().join("x.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/python3"));
}

/// A file nested deeper than any code worth keeping is one skipped file, not a stack overflow that
/// aborts the run (it did, at 20,000 brackets: 40 KB); one just under the limit is walked on every
/// thread.
#[test]
fn a_file_nested_deeper_than_code_worth_keeping_is_skipped_not_a_crash() {
    let dir = tempdir();
    let corpus = dir.path().join("src");
    std::fs::create_dir(&corpus).unwrap();
    let nested = |n: usize, name: &str| {
        format!(
            "import os\n\nX = {}{}\n\n\ndef {name}(p):\n    q = os.path.join(p, 'x')\n    return q\n",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let files = [("deep", nested(20_000, "deep")), ("nearly", nested(990, "nearly")), ("flat", nested(1, "flat"))];
    let mut jsonl = String::new();
    for (name, text) in &files {
        std::fs::write(corpus.join(format!("{name}.py")), text).unwrap();
        jsonl.push_str(&serde_json::json!({"content": text, "path": format!("{name}.py")}).to_string());
        jsonl.push('\n');
    }
    let lines = dir.path().join("c.jsonl");
    std::fs::write(&lines, jsonl).unwrap();
    for (name, source) in [("dir", &corpus), ("lines", &lines)] {
        let args = ["--corpus", source.to_str().unwrap(), "--decontaminate", "none", "--near-dup", "0"];
        let (code, text, records, stats) = retrieve(dir.path(), name, &args);
        assert_eq!(code, 0, "{name}: {text}");
        let mut kept = names(&records);
        kept.sort();
        assert_eq!(kept, ["flat", "nearly"], "{name}: {text}");
        assert_eq!(stats["files_skipped"]["syntax_error"], 1, "{name}: {stats}");
    }
}

/// A file whose name is not UTF-8 cannot be named by a record: it is skipped and counted, and the
/// run goes on with the other files (it used to stop the whole run).
#[test]
fn a_file_whose_name_is_not_utf8_is_skipped_and_counted() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempdir();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let code = "import re\n\n\ndef shout(text, mark):\n    words = re.findall(r\"[a-z]+\", text.lower())\n    loud = [w.upper() + mark for w in words]\n    return \" \".join(loud)\n";
    std::fs::write(corpus.join("a.py"), code).unwrap();
    std::fs::write(corpus.join(std::ffi::OsStr::from_bytes(b"m\xff.py")), code.replace("shout", "yell")).unwrap();
    let (code, text, records, stats) =
        retrieve(dir.path(), "out", &["--corpus", corpus.to_str().unwrap(), "--decontaminate", "none"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), ["shout"], "{text}");
    assert_eq!(stats["malformed_entries"], 1, "{stats}");
}

#[test]
fn malformed_lines_are_skipped_and_counted_or_fatal_with_strict() {
    let dir = tempdir();
    let entries = fixture_entries();
    let mut lines: Vec<String> = entries.iter().map(jsonl_line).collect();
    lines.insert(4, "{\"content\": \"def f(x):\\n    return x\", broken".into());
    lines.insert(2, "{\"max_stars_repo_path\": \"a.py\"}".into());
    let p = dir.path().join("bad.jsonl");
    write_lines(&p, &lines, Compression::None);
    let corpus = p.display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "skip", &["--corpus", &corpus]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(stats["malformed_entries"], 2);
    assert_eq!(stats["malformed_examples"][0], format!("{corpus} line 3: missing field `content`"));
    assert!(stats["malformed_examples"][1]
        .as_str()
        .unwrap_or("")
        .starts_with(&format!("{corpus} line 6: invalid JSON")));
    assert!(text.contains(&format!("{corpus} line 3: missing field `content`")), "{text}");
    assert_eq!(records.len(), 7);

    let (code, text, records, stats) = retrieve(dir.path(), "strict", &["--corpus", &corpus, "--strict"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&format!("{corpus} line 3: missing field `content`")), "{text}");
    // Work finished before the bad line is kept: lines 1-2 (copies.py, broken.py) were processed.
    assert_eq!(names(&records), vec!["weighted_mean", "most_common_words"]);
    assert_eq!(stats["files_read"], 2);
}

#[test]
fn shards_are_disjoint_and_their_union_is_the_unsharded_output() {
    let dir = tempdir();
    // Many distinct files, so every shard gets some. Dedup runs per shard, so a function duplicated
    // across files in different shards survives in both (a merge dedups again): the copies file is
    // left out here.
    let mut entries: Vec<Entry> = fixture_entries().into_iter().filter(|e| !e.path.contains("copies")).collect();
    for i in 0..40 {
        let content = format!(
            "import math\n\n\ndef f{i}(x, y):\n    z = math.pow(x, {i}) + y * {}\n    if z > {}:\n        return math.log(z + {i})\n    return z - {i}\n",
            i * 7 + 1,
            i * 13
        );
        entries.push(Entry { path: format!("gen/f{i}.py"), repo: "gen/gen".into(), license: vec![], content });
    }
    let p = dir.path().join("c.jsonl.zst");
    write_jsonl(&p, &entries, Compression::Zstd);
    let corpus = p.display().to_string();
    // Exact dedup only: near-duplicates across shards would be removed only in the unsharded run.
    let base = ["--corpus", corpus.as_str(), "--near-dup", "0"];
    let (code, text, all, _) = retrieve(dir.path(), "all", &base);
    assert_eq!(code, 0, "{text}");
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), all.len());
    let mut union = BTreeSet::new();
    let mut total = 0;
    for i in 0..3 {
        let shard = format!("{i}/3");
        let mut args = base.to_vec();
        args.extend_from_slice(&["--shard", &shard]);
        let (code, text, part, stats) = retrieve(dir.path(), &format!("s{i}"), &args);
        assert_eq!(code, 0, "{text}");
        assert!(!part.is_empty(), "shard {shard} is empty");
        assert_eq!(stats["shard"], shard);
        assert_eq!(stats["files_read"], entries.len());
        total += part.len();
        union.extend(ids(&part));
    }
    assert_eq!(total, all.len(), "shards overlap");
    assert_eq!(union, all_ids);
    let (code, text, _, _) = retrieve(dir.path(), "bad", &["--corpus", &corpus, "--shard", "3/3"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("0 <= i < N"), "{text}");
}

/// BigCodeBench tasks whose reference program passes the function filter, as `.py` sources.
fn bigcodebench_programs(n: usize) -> Vec<(String, String)> {
    use std::io::BufRead;
    use unitcoder::pipeline::retrieve::{extract, FileOutcome, Limits, Packages};
    let path = benchmarks_dir().join("bigcodebench/BigCodeBench-v0.1.4.reconstructed.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let task: Value = serde_json::from_str(&line.expect("line")).expect("task");
        let program = format!(
            "{}{}",
            task["complete_prompt"].as_str().unwrap_or(""),
            task["canonical_solution"].as_str().unwrap_or("")
        );
        if let FileOutcome::Functions(f) = extract(&program, &Packages::bigcodebench(), &Limits::default()) {
            if f.len() == 1 && f[0].is_ok() {
                out.push((task["task_id"].as_str().unwrap_or("").replace('/', "_"), program));
            }
        }
        if out.len() == n {
            break;
        }
    }
    assert_eq!(out.len(), n, "not enough BigCodeBench programs pass the filter");
    out
}

#[test]
fn decontamination_removes_benchmark_solutions_and_counts_them() {
    let dir = tempdir();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    for (id, program) in bigcodebench_programs(3) {
        // Renamed and reformatted a little: still the benchmark's code.
        let program = program.replace("def task_func(", "def solve(").replace("    \"\"\"", "    # copied\n    \"\"\"");
        std::fs::write(corpus.join(format!("{id}.py")), program).expect("write");
    }
    std::fs::copy(fixture_dir().join("pkg/text_utils.py"), corpus.join("text_utils.py")).expect("copy");
    let c = corpus.display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "plain", &["--corpus", &c, "--decontaminate", "none"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(records.len(), 6);
    assert_eq!(stats["contaminated"], 0);

    // By default, against the built-in fingerprints: no data file needed.
    let (code, text, records, stats) = retrieve(dir.path(), "default", &["--corpus", &c]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), vec!["slugify", "strip_punctuation", "file_stem"]);
    assert_eq!(stats["contaminated_by"]["BigCodeBench (built-in)"], 3, "{stats}");

    let bench = benchmarks_dir().display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "clean", &["--corpus", &c, "--decontaminate", &bench]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(stats["contaminated"], 3, "{stats}");
    assert_eq!(names(&records), vec!["slugify", "strip_punctuation", "file_stem"]);
    let by: u64 = stats["contaminated_by"].as_object().expect("map").values().filter_map(Value::as_u64).sum();
    assert_eq!(by, 3);
    assert!(
        stats["contaminated_by"].as_object().expect("map").keys().any(|k| k.starts_with("BigCodeBench")),
        "{stats}"
    );

    let missing = dir.path().join("nope.jsonl").display().to_string();
    let (code, text, _, _) = retrieve(dir.path(), "missing", &["--corpus", &c, "--decontaminate", &missing]);
    assert_eq!(code, 2);
    assert!(text.contains("nope.jsonl"), "{text}");
    let (code, text, _, _) =
        retrieve(dir.path(), "both", &["--corpus", &c, "--decontaminate", "none", "--decontaminate", &bench]);
    assert_eq!(code, 2);
    assert!(text.contains("cannot be combined"), "{text}");
}

#[test]
fn custom_package_list_and_limit() {
    let dir = tempdir();
    let corpus = fixture_dir().display().to_string();
    let list = dir.path().join("pkgs.txt");
    std::fs::write(&list, "# just regular expressions\nre\n").expect("write");
    let l = list.display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "re", &["--corpus", &corpus, "--packages", &l]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), vec!["slugify"]);
    // Everything that uses a module other than `re`, duplicates included (dedup comes after the filter).
    assert_eq!(stats["rejected"]["disallowed_module"], 9);

    std::fs::write(&list, "re\nscikit-learn\n").expect("write");
    let (code, text, _, _) = retrieve(dir.path(), "bad", &["--corpus", &corpus, "--packages", &l]);
    assert_eq!(code, 2);
    assert!(text.contains(&format!("{l} line 2: `scikit-learn` is not a module name")), "{text}");

    let (code, text, records, stats) = retrieve(dir.path(), "lim", &["--corpus", &corpus, "--limit", "3"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(records.len(), 3);
    assert_eq!(stats["limit_reached"], true);
}

#[test]
fn default_corpus_is_the_python_standard_library() {
    let dir = tempdir();
    let (code, text, records, stats) = retrieve(dir.path(), "std", &["--limit", "20"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(records.len(), 20);
    let corpus = stats["corpus"][0].as_str().unwrap_or("");
    assert!(Path::new(corpus).join("os.py").is_file(), "{corpus}");
    for r in &records {
        // Every record carries only import lines, then the function.
        let code = r["function"]["code"].as_str().unwrap_or("");
        let (head, body) = code.split_once("\n\n\n").expect("imports, blank lines, function");
        assert!(head.lines().all(|l| l.starts_with("import ") || l.starts_with("from ")), "{code}");
        assert!(body.starts_with("def ") || body.starts_with('@'), "{code}");
    }
    let (code, text, _, _) = retrieve(dir.path(), "nopy", &["--python", "/nonexistent/python3"]);
    assert_eq!(code, 2);
    assert!(text.contains("--corpus"), "{text}");
}

#[test]
fn builtin_only_functions_need_the_flag_and_the_help_says_so() {
    let dir = tempdir();
    let corpus = dir.path().join("pure");
    std::fs::create_dir(&corpus).unwrap();
    let src = "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    return min(x, hi)\n\n\
               def mean(xs):\n    total = sum(xs)\n    return total / len(xs)\n";
    std::fs::write(corpus.join("util.py"), src).unwrap();
    let c = corpus.display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "default", &["--corpus", &c, "--near-dup", "0"]);
    assert_eq!(code, 0, "{text}");
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(stats["rejected"]["no_module"], 2, "{stats}");
    assert!(text.contains("hint: 2 functions used only builtins") && text.contains("--allow-builtin-only"), "{text}");
    let (code, text, records, _) =
        retrieve(dir.path(), "allowed", &["--corpus", &c, "--near-dup", "0", "--allow-builtin-only"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), ["clamp", "mean"]);
    assert!(!text.contains("hint:"), "{text}");
    let help = unitcoder(&["retrieve", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("no_module") && help.contains("uses_file_local") && help.contains("--allow-builtin-only"));
    // synth, retrieving the same corpus, gives the same hint.
    let model = crate::models::tiny_model_path();
    let out = dir.path().join("run").display().to_string();
    let o =
        unitcoder(&["synth", "--corpus", &c, "--model", model.to_str().unwrap(), "--max-tokens", "8", "--out", &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("hint: 2 functions used only builtins"), "{err}");
}

#[test]
fn a_bad_json_line_names_its_column_and_an_empty_corpus_is_said_to_be_empty() {
    let dir = tempdir();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(&corpus, "{\"content\": \"x = 1\\n\"}\n{bad\n").unwrap();
    let (code, text, _, stats) = retrieve(dir.path(), "o", &["--corpus", corpus.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let example = stats["malformed_examples"][0].as_str().unwrap();
    assert!(example.ends_with("c.jsonl line 2: invalid JSON: key must be a string (column 2)"), "{example}");
    std::fs::write(&corpus, "").unwrap();
    let (code, text, _, _) = retrieve(dir.path(), "o", &["--corpus", corpus.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning: the corpus holds no entries"), "{text}");
}

#[test]
fn py_files_in_a_declared_encoding_are_read_as_python_reads_them() {
    let dir = tempdir();
    let corpus = dir.path().join("src");
    std::fs::create_dir(&corpus).unwrap();
    let files: [(&str, &[u8]); 7] = [
        // A UTF-8 byte-order mark, then UTF-8.
        ("a_bom.py", b"\xef\xbb\xbfimport os\n\n\ndef home(p):\n    q = os.path.join(p, '\xc3\xa9t\xc3\xa9')\n    return q\n"),
        // Latin-1 on line 1 (\xe9 is one byte, `é`), KOI8-R on line 2 after a shebang, Shift_JIS.
        (
            "b_latin1.py",
            b"# -*- coding: latin-1 -*-\nimport re\n\n\ndef plain(s):\n    t = re.sub('[\xe9\xe8]', 'e', s)\n    return t\n",
        ),
        (
            "c_koi8.py",
            b"#!/usr/bin/env python\n# vim: set fileencoding=koi8-r :\nimport re\n\n\n\
              def greet(name):\n    n = re.sub(r'\\s+', ' ', name)\n    return '\xf0\xd2\xc9\xd7\xc5\xd4, ' + n\n",
        ),
        ("d_sjis.py", b"# coding: shift_jis\nimport os\n\n\ndef label(p):\n    b = os.path.basename(p)\n    return '\x93\xfa\x96\x7b' + b\n"),
        // Refused, as Python refuses them: an unknown codec, bytes not in the declared one, none declared.
        ("e_unknown.py", b"# coding: klingon\nimport os\n\n\ndef f(p):\n    return os.path.basename(p)\n"),
        ("f_bad.py", b"# coding: euc-jp\nimport os\n\n\ndef g(p):\n    return os.sep + '\xa4'\n"),
        ("g_none.py", b"import os\n\n\ndef h(p):\n    return os.sep + '\xe9'\n"),
    ];
    for (name, bytes) in files {
        std::fs::write(corpus.join(name), bytes).unwrap();
    }
    let args = ["--corpus", corpus.to_str().unwrap(), "--decontaminate", "none", "--near-dup", "0"];
    let (code, text, records, stats) = retrieve(dir.path(), "out", &args);
    assert_eq!(code, 0, "{text}");
    assert_eq!(names(&records), ["home", "plain", "greet", "label"], "{text}");
    assert_eq!(stats["files_read"], 4, "{stats}");
    assert_eq!(stats["malformed_entries"], 3, "{stats}");
    let examples = stats["malformed_examples"].to_string();
    for why in [
        "e_unknown.py: coding `klingon` (declared on line 1) is not one unitcoder decodes",
        "f_bad.py: not valid `euc-jp` (declared on line 1) at byte 60 (line 6)",
        "g_none.py: not valid UTF-8, and no PEP 263 coding declaration, at byte 43 (line 5)",
    ] {
        assert!(examples.contains(why), "{why}: {examples}");
    }
    // The code is kept as text: no coding line comes with it, so the stored program (UTF-8, as
    // written to a file) means what the original meant.
    for (record, text) in records.iter().zip(["'été'", "'[éè]'", "'Привет, '", "'日本'"]) {
        let code = record["function"]["code"].as_str().unwrap();
        assert!(code.contains(text) && !code.contains("coding"), "{code}");
        let file = dir.path().join("program.py");
        std::fs::write(&file, code).unwrap();
        let compiled = std::process::Command::new("python3")
            .args(["-c", "import sys; compile(open(sys.argv[1], 'rb').read(), 'p', 'exec')"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(compiled.status.success(), "{code}: {}", String::from_utf8_lossy(&compiled.stderr));
    }
    // `check` reads the same file the same way.
    let tests = dir.path().join("tests.py");
    std::fs::write(&tests, "assert greet('Ann  Lee') == '\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}, Ann Lee'\n")
        .unwrap();
    let program = corpus.join("c_koi8.py");
    let o = unitcoder(&["check", "--code", program.to_str().unwrap(), "--tests", tests.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Ctrl-C as a terminal sends it (to the whole process group) stops a long retrieval after the
/// chunk of files in progress: exit 130, a whole gzip file holding exactly the records the
/// statistics count, and the statistics marked as interrupted.
#[test]
fn an_interrupt_leaves_a_whole_output_and_statistics_that_count_it() {
    use std::io::{BufRead, Write};
    use std::os::unix::process::CommandExt;
    let tmp = tempdir();
    let dir = tmp.path();
    // 100,000 one-function files: tens of seconds of work, where the interrupt comes after 1.5 s.
    const FILES: u64 = 100_000;
    let corpus = dir.join("corpus.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&corpus).expect("create"), Default::default());
    for i in 0..FILES {
        let src = format!(
            "import re\n\ndef split_{i}(text, n):\n    kept = [p for p in re.split(\"{i}\", text) if len(p) > n]\n    \
             return \"-\".join(kept) + \"{i}\"\n"
        );
        writeln!(gz, "{}", serde_json::json!({ "content": src })).expect("write");
    }
    gz.finish().expect("finish gzip");
    std::fs::write(dir.join("packages.txt"), "re\n").expect("write");
    let out = dir.join("out.jsonl.gz");
    let child = std::process::Command::new(crate::common::bin())
        .arg("retrieve")
        .arg("--corpus")
        .arg(&corpus)
        .arg("--packages")
        .arg(dir.join("packages.txt"))
        .args(["--decontaminate", "none", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A group of its own, as a terminal's foreground job: the signal goes to the whole group,
        // the compile check's Python included, and not to this test.
        .process_group(0)
        .spawn()
        .expect("start retrieve");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::time::Instant::now();
    // SAFETY: a plain kill(2) of the process group of our own child.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) }, 0);
    let o = child.wait_with_output().expect("wait for retrieve");
    let waited = sent.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(130), "{text}");
    assert!(waited < std::time::Duration::from_secs(20), "stopped {waited:?} after the signal");
    assert!(text.contains("retrieve interrupted by SIGINT") && text.contains("(a whole file)"), "{text}");
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.stats.json")).expect("stats")).expect("json");
    assert_eq!(stats["interrupted"], true, "{stats}");
    let read = stats["files_read"].as_u64().expect("files_read");
    assert!(read > 0 && read < FILES, "{read} of {FILES} files read");
    // The compile check's helper outlived the signal: no function was refused for its death.
    assert_eq!(stats["rejected"].as_object().map_or(0, |r| r.len()), 0, "{stats}");
    // Every line decodes, and the stream ends with gzip's trailer (read_line errors otherwise).
    let mut lines = 0u64;
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(&out).expect("open"))).lines()
    {
        let record: Value = serde_json::from_str(&line.expect("a whole gzip stream")).expect("a whole record");
        assert!(record["function"]["name"].as_str().is_some_and(|n| n.starts_with("split_")));
        lines += 1;
    }
    assert_eq!(Some(lines), stats["kept"].as_u64(), "{stats}");
    assert!(lines > 0);
}

#[test]
fn a_bad_out_or_option_replaces_no_file_and_a_stopped_run_says_so_in_its_counts() {
    let dir = tempdir();
    let root = dir.path();
    let src = root.join("src");
    std::fs::create_dir(&src).unwrap();
    let code = "import os\n\n\ndef base(p):\n    name = os.path.basename(p)\n    stem = name.split('.')[0]\n    return stem.lower()\n";
    std::fs::write(src.join("a.py"), code).unwrap();
    let c = src.display().to_string();
    // An --out that is not named as records (here a source file of the corpus) is refused.
    let out = src.join("a.py").display().to_string();
    let o = unitcoder(&["retrieve", "--corpus", &c, "--out", &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("records are written as JSON Lines") && !err.contains("records so far"), "{err}");
    assert_eq!(std::fs::read_to_string(src.join("a.py")).unwrap(), code);

    // A finished output survives a rerun that fails before reading the corpus.
    let (status, text, kept, _) = retrieve(root, "keep", &["--corpus", &c]);
    assert_eq!((status, kept.len()), (0, 1), "{text}");
    let before = std::fs::read(root.join("keep.jsonl")).unwrap();
    let stats_before = std::fs::read(root.join("keep.stats.json")).unwrap();
    std::fs::write(root.join("bench.txt"), "not a benchmark\n").unwrap();
    let bench = root.join("bench.txt").display().to_string();
    for bad in [vec!["--decontaminate", bench.as_str()], vec!["--python", "/nonexistent/python3"]] {
        let (status, text, _, _) = retrieve(root, "keep", &[&["--corpus", c.as_str()][..], &bad].concat());
        assert_eq!(status, 2, "{text}");
        assert!(!text.contains("records so far") && text.contains("keep.jsonl was left as it was"), "{text}");
        assert_eq!(std::fs::read(root.join("keep.jsonl")).unwrap(), before, "{bad:?}");
        assert_eq!(std::fs::read(root.join("keep.stats.json")).unwrap(), stats_before, "{bad:?}");
    }
    let (status, text, _, _) = retrieve(root, "keep", &["--corpus", &c, "--corpus", &format!("{c}/.")]);
    assert!(status == 2 && text.contains("is given twice"), "{text}");
    assert_eq!(std::fs::read(root.join("keep.jsonl")).unwrap(), before);
    let o = unitcoder(&["retrieve", "--corpus", &c, "--out", root.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("a directory") && !err.contains("so far"), "{err}");

    // --strict: the entry that stops the run is counted, and the counts say it stopped.
    let line = |name: &str| format!("{{\"content\": {}}}\n", serde_json::json!(code.replace("base", name)));
    let corpus = root.join("c.jsonl");
    std::fs::write(&corpus, format!("{}{{bad\n{}", line("one"), line("two"))).unwrap();
    let strict = ["--corpus", corpus.to_str().unwrap(), "--strict", "--near-dup", "0"];
    let (status, text, records, stats) = retrieve(root, "strict", &strict);
    assert_eq!(status, 2, "{text}");
    assert!(text.contains("records so far are in") && text.contains("c.jsonl line 2"), "{text}");
    assert_eq!(names(&records), ["one"]);
    assert_eq!(stats["malformed_entries"], 1, "{stats}");
    assert!(stats["stopped"].as_str().is_some_and(|s| s.contains("c.jsonl line 2")), "{stats}");
    let (_, _, _, whole) = retrieve(root, "whole", &["--corpus", corpus.to_str().unwrap(), "--near-dup", "0"]);
    assert!(whole.get("stopped").is_none(), "{whole}");

    // Compression is read from the bytes: gzip named .jsonl reads as the .jsonl.gz it is.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, format!("{}{}", line("one"), line("two")).as_bytes()).unwrap();
    std::fs::write(root.join("packed.jsonl"), gz.finish().unwrap()).unwrap();
    let (status, text, records, _) = retrieve(root, "gz", &["--corpus", root.join("packed.jsonl").to_str().unwrap()]);
    assert_eq!((status, names(&records)), (0, vec!["one".to_string(), "two".to_string()]), "{text}");

    // A corpus none of whose entries can be read is an error, and a JSON array is named as one.
    let array = root.join("array.json");
    std::fs::write(&array, format!("[\n{}]\n", line("one").trim_end())).unwrap();
    let (status, text, _, _) = retrieve(root, "array", &["--corpus", array.to_str().unwrap()]);
    assert_eq!(status, 2, "{text}");
    assert!(text.contains("array.json line 1: the file is a JSON array, not JSON Lines"), "{text}");
    assert!(text.contains("none of the corpus's 2 entries could be read"), "{text}");
    assert!(text.contains("array.jsonl was not written") && !text.contains("wrote 0"), "{text}");
    assert!(!root.join("array.jsonl").exists() && !root.join("array.jsonl.tmp").exists());
    // Nor does a run that keeps nothing replace an earlier output and its counts: the wrong corpus
    // given by mistake, or one whose first entry stops a --strict run.
    let (before, stats_before) =
        (std::fs::read(root.join("keep.jsonl")).unwrap(), std::fs::read(root.join("keep.stats.json")).unwrap());
    let bad_first = root.join("bad-first.jsonl");
    std::fs::write(&bad_first, format!("{{bad\n{}", line("two"))).unwrap();
    let wrong: [&[&str]; 2] =
        [&["--corpus", array.to_str().unwrap()], &["--corpus", bad_first.to_str().unwrap(), "--strict"]];
    for args in wrong {
        let (status, text, _, _) = retrieve(root, "keep", args);
        assert_eq!(status, 2, "{text}");
        assert!(text.contains("keep.jsonl was left as it was") && !text.contains("records so far"), "{text}");
        assert_eq!(std::fs::read(root.join("keep.jsonl")).unwrap(), before, "{args:?}");
        assert_eq!(std::fs::read(root.join("keep.stats.json")).unwrap(), stats_before, "{args:?}");
    }

    // A folder of data files (a dataset downloaded as a folder) reads as its files.
    let folder = root.join("dataset");
    std::fs::create_dir_all(folder.join("data")).unwrap();
    std::fs::create_dir_all(folder.join(".cache")).unwrap();
    std::fs::write(folder.join(".cache/x.jsonl"), "not read\n").unwrap();
    std::fs::copy(&corpus, folder.join("data/c.jsonl")).unwrap();
    std::fs::write(folder.join("README.md"), "# a card\n").unwrap();
    let (status, text, records, stats) = retrieve(root, "folder", &["--corpus", folder.to_str().unwrap()]);
    assert_eq!((status, names(&records)), (0, vec!["one".to_string(), "two".to_string()]), "{text}");
    assert_eq!(stats["malformed_entries"], 1, "{stats}");
}

#[test]
fn a_limited_run_counts_only_the_files_it_got_to() {
    let dir = tempdir();
    let corpus = fixture_dir().display().to_string();
    let (code, text, records, stats) = retrieve(dir.path(), "one", &["--corpus", &corpus, "--limit", "1"]);
    assert_eq!((code, records.len()), (0, 1), "{text}");
    assert_eq!(stats["limit_reached"], true);
    let skipped: u64 = stats["files_skipped"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    let read = stats["files_read"].as_u64().unwrap();
    assert_eq!(read, stats["files_parsed"].as_u64().unwrap() + skipped, "{stats}");
    assert!(read < 5, "the run stopped before the last of the 5 files: {stats}");
}

#[test]
fn provenance_of_an_unexpected_type_is_counted_and_named_not_dropped_silently() {
    let dir = tempdir();
    let root = dir.path();
    let code = |name: &str| {
        format!("import os\n\n\ndef {name}(p):\n    name = os.path.basename(p)\n    stem = name.split('.')[0]\n    return stem.lower()\n")
    };
    let lines = [
        serde_json::json!({"content": code("one"), "repo": 42, "license": {"spdx": "MIT"}}),
        serde_json::json!({"content": code("two"), "repo": "o/r", "licenses": ["MIT", 3], "max_stars_repo_licenses": ["BSD-3-Clause"]}),
        serde_json::json!({"content": code("three"), "repo": null, "license": ["Apache-2.0"]}),
    ];
    let corpus = root.join("c.jsonl");
    std::fs::write(&corpus, lines.iter().map(|l| l.to_string() + "\n").collect::<String>()).unwrap();
    let (status, text, records, stats) =
        retrieve(root, "o", &["--corpus", corpus.to_str().unwrap(), "--near-dup", "0"]);
    assert_eq!(status, 0, "{text}");
    assert_eq!(names(&records), ["one", "two", "three"]);
    assert_eq!(stats["metadata_ignored"], serde_json::json!({"repo": 1, "license": 1, "licenses": 1}), "{stats}");
    assert!(text.contains("c.jsonl:1: field `license` is {\"spdx\":\"MIT\"}, not a string"), "{text}");
    assert!(text.contains("c.jsonl:2: field `licenses` is [\"MIT\",3]"), "{text}");
    let license = |r: &Value| r["source"]["license"].clone();
    // The next license field is still read when one is of the wrong type.
    assert_eq!(
        records.iter().map(license).collect::<Vec<_>>(),
        [Value::Null, serde_json::json!(["BSD-3-Clause"]), serde_json::json!(["Apache-2.0"])]
    );
    assert!(records[0]["source"].get("repo").is_none() && records[1]["source"]["repo"] == "o/r");
}

#[test]
fn a_missing_path_is_named_with_its_flag_or_variable() {
    let dir = tempdir();
    let out = dir.path().join("o.jsonl").display().to_string();
    let corpus = fixture_dir().display().to_string();
    let o = unitcoder(&["retrieve", "--corpus", &corpus, "--packages", "/no/such/list.txt", "--out", &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("--packages /no/such/list.txt:"), "{err}");
    let o = std::process::Command::new(crate::common::bin())
        .args(["models", "list"])
        .env("UNITCODER_MODELS_DIR", "/no/such/cards")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(2) && err.contains("UNITCODER_MODELS_DIR=/no/such/cards: no such directory"),
        "{err}"
    );
    let o = unitcoder(&["models", "list", "--models-dir", &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--models-dir") && err.contains("no such directory"), "{err}");
}
