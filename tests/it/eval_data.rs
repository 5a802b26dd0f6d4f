//! The benchmark files the repository carries (`eval/data`) are the published ones: each file's
//! uncompressed bytes hash to the sha256 its README lists, and every file there is listed. And
//! benchmark and samples files are read whole, with what is wrong in them named by file and line.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/data")
}

/// (file, first 16 hex digits of the sha256) from the README's table.
fn listed() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).expect("eval/data/README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| file"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[cells.len() - 2].to_string())
        })
        .collect()
}

#[test]
fn benchmark_files_match_the_hashes_their_readme_lists() {
    let rows = listed();
    assert!(rows.len() >= 9, "the README lists {} files", rows.len());
    for (file, want) in &rows {
        let path = data_dir().join(file);
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bytes = if file.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).expect("gunzip");
            out
        } else {
            raw
        };
        let got = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(&got[..16], want, "{file}: sha256 of the uncompressed bytes");
    }
    // Every data file is listed (a file added without provenance fails here).
    for entry in walkdir::WalkDir::new(data_dir()) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(data_dir()).unwrap().to_string_lossy().into_owned();
        if entry.file_type().is_file() && !rel.ends_with(".md") && !rel.starts_with("LICENSES/") {
            assert!(rows.iter().any(|(f, _)| *f == rel), "{rel} is not listed in eval/data/README.md");
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_members_and_a_byte_order_mark_are_read_as_python_reads_them_and_a_truncated_file_is_named() {
    use unitcoder::eval::data::{read_maybe_gz, Dataset};
    use unitcoder::eval::score::load_samples;
    use unitcoder::eval::Benchmark;
    let dir = crate::common::tempdir();
    let he = data_dir().join("humaneval/HumanEval.jsonl.gz");
    let text = read_maybe_gz(&he).unwrap();
    let whole = Dataset::load(Benchmark::HumanEval, &he).unwrap();
    // `cat a.gz b.gz > c.gz` (or `gzip >>`, pigz, bgzip): gzip -d and Python read both members.
    let half = text.len() / 2 + text[text.len() / 2..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let two = dir.path().join("two-members.jsonl.gz");
    std::fs::write(&two, [gzip(&text[..half]), gzip(&text[half..])].concat()).unwrap();
    let ds = Dataset::load(Benchmark::HumanEval, &two).unwrap();
    assert_eq!(ds.tasks.len(), 164, "every task, not only the first member's");
    assert_eq!((ds.hash, ds.tasks), (whole.hash.clone(), whole.tasks.clone()));

    let lines: String = whole
        .tasks
        .iter()
        .map(|t| serde_json::json!({"task_id": t.task_id, "completion": "    pass\n"}).to_string() + "\n")
        .collect();
    let samples = dir.path().join("samples.jsonl.gz");
    let (a, b) = lines.as_bytes().split_at(lines.find("HumanEval/100").unwrap() - "{\"task_id\":\"".len());
    std::fs::write(&samples, [gzip(a), gzip(b)].concat()).unwrap();
    assert_eq!(load_samples(&samples, &whole).unwrap().len(), 164);

    // A byte order mark before the first line (a `utf-8-sig` writer's) is no part of the JSON.
    let bom = dir.path().join("bom.jsonl");
    std::fs::write(&bom, [&b"\xEF\xBB\xBF"[..], &text].concat()).unwrap();
    let ds = Dataset::load(Benchmark::HumanEval, &bom).unwrap();
    assert_eq!((ds.hash, ds.tasks.len()), (whole.hash.clone(), 164), "the same content");
    std::fs::write(&bom, [&b"\xEF\xBB\xBF"[..], lines.as_bytes()].concat()).unwrap();
    assert_eq!(load_samples(&bom, &whole).unwrap().len(), 164);

    // A download cut short: the file is named and the cause said, not only "unexpected end of file".
    let gz = std::fs::read(&he).unwrap();
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let e = Dataset::load(Benchmark::HumanEval, &cut).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: gzip data truncated or corrupt", cut.display())), "{e}");
}

#[test]
fn a_data_field_of_the_wrong_type_names_the_files_line_and_no_line_within_the_field() {
    use unitcoder::eval::data::Dataset;
    use unitcoder::eval::Benchmark;
    let dir = crate::common::tempdir();
    let line = |entry_point: serde_json::Value| {
        serde_json::json!({"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
                           "test": "def check(c):\n    assert c() == 1\n", "entry_point": entry_point})
        .to_string()
            + "\n"
    };
    let data = dir.path().join("he.jsonl");
    std::fs::write(&data, line("f".into()).replace("/0", "/1") + &line(7.into())).unwrap();
    let e = Dataset::load(Benchmark::HumanEval, &data).unwrap_err().to_string();
    assert!(e.ends_with("he.jsonl line 2: field `entry_point`: invalid type: integer `7`, expected a string"), "{e}");
}

#[test]
fn an_mbpp_file_without_test_split_tasks_says_so() {
    use unitcoder::eval::data::Dataset;
    use unitcoder::eval::Benchmark;
    let dir = crate::common::tempdir();
    let record = |id: u32| {
        serde_json::json!({"task_id": id, "text": "t", "code": "def f():\n    return 1\n",
                           "test_list": ["assert f() == 1"], "test_setup_code": ""})
        .to_string()
            + "\n"
    };
    let train = dir.path().join("train.jsonl");
    std::fs::write(&train, record(601) + &record(602)).unwrap();
    let e = Dataset::load(Benchmark::Mbpp, &train).unwrap_err().to_string();
    assert!(e.contains("no mbpp tasks found (2 records, none in MBPP's test split, task ids 11 to 510"), "{e}");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let e = Dataset::load(Benchmark::Mbpp, &empty).unwrap_err().to_string();
    assert!(e.ends_with("no mbpp tasks found"), "{e}");
    // The two releases of MBPP, each given as the other's: named as what they are.
    let releases = data_dir().join("mbpp");
    let (full, sanitized) = (releases.join("mbpp.jsonl"), releases.join("sanitized-mbpp.json"));
    let e = Dataset::load(Benchmark::Mbpp, &sanitized).unwrap_err().to_string();
    assert!(e.contains("missing field `text`") && e.contains("is it --benchmark mbpp-sanitized's?"), "{e}");
    let e = Dataset::load(Benchmark::MbppSanitized, &full).unwrap_err().to_string();
    assert!(e.contains("missing field `prompt`") && e.contains("is it --benchmark mbpp's?"), "{e}");
}
