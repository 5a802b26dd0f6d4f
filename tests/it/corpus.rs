//! Corpus readers on every format: the same fixture files packed as JSONL, JSONL.gz, JSONL.zst and
//! Parquet (written here with the parquet crate, in several row groups) read back identically with
//! their provenance; malformed entries are reported with file and line; directories skip vendored
//! code.

#![allow(dead_code)]

use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use unitcoder::corpus::{self, CorpusError, Position, SourceFile};

/// The fixture corpus directory.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// One corpus entry: content plus The Stack-style provenance.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub repo: String,
    pub license: Vec<String>,
    pub content: String,
}

/// The fixture `.py` files (outside `site-packages`) as entries, in sorted path order.
pub fn fixture_entries() -> Vec<Entry> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(fixture_dir()).sort_by_file_name() {
        let e = e.expect("walk fixtures");
        let rel = e.path().strip_prefix(fixture_dir()).expect("relative").to_string_lossy().to_string();
        if e.file_type().is_file() && rel.ends_with(".py") && !rel.contains("site-packages") {
            let content = std::fs::read_to_string(e.path()).expect("read fixture");
            let license =
                if rel.contains("text") { vec!["MIT".into(), "Apache-2.0".into()] } else { vec!["MIT".into()] };
            out.push(Entry {
                repo: format!("octo/{}", rel.split('/').next().unwrap_or("x")),
                path: rel,
                license,
                content,
            });
        }
    }
    assert_eq!(out.len(), 5, "fixture files changed?");
    out
}

/// How a JSONL corpus is compressed.
#[derive(Clone, Copy)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The Stack v1 field names (`max_stars_repo_*`).
pub fn jsonl_line(e: &Entry) -> String {
    serde_json::json!({
        "content": e.content,
        "max_stars_repo_path": e.path,
        "max_stars_repo_name": e.repo,
        "max_stars_repo_licenses": e.license,
        "lang": "Python",
    })
    .to_string()
}

/// Writes raw lines as a (possibly compressed) JSONL file.
pub fn write_lines(path: &Path, lines: &[String], c: Compression) {
    let file = std::fs::File::create(path).expect("create corpus");
    let mut w: Box<dyn Write> = match c {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::default())),
        Compression::Zstd => Box::new(zstd::stream::write::Encoder::new(file, 3).expect("zstd").auto_finish()),
    };
    for l in lines {
        writeln!(w, "{l}").expect("write line");
    }
    w.flush().expect("flush");
}

/// Writes entries as a JSONL corpus.
pub fn write_jsonl(path: &Path, entries: &[Entry], c: Compression) {
    write_lines(path, &entries.iter().map(jsonl_line).collect::<Vec<_>>(), c);
}

/// Writes entries as Parquet with The Stack v2-style columns (`content`, `path`, `repo_name`, a
/// `detected_licenses` list), `per_group` rows per row group.
pub fn write_parquet(path: &Path, entries: &[Entry], per_group: usize) {
    let schema = parse_message_type(
        "message schema {
            REQUIRED BYTE_ARRAY blob_id (UTF8);
            REQUIRED BYTE_ARRAY content (UTF8);
            OPTIONAL BYTE_ARRAY path (UTF8);
            OPTIONAL BYTE_ARRAY repo_name (UTF8);
            OPTIONAL group detected_licenses (LIST) {
                REPEATED group list { OPTIONAL BYTE_ARRAY element (UTF8); }
            }
        }",
    )
    .expect("schema");
    let props = Arc::new(WriterProperties::builder().build());
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), props).expect("writer");
    for group in entries.chunks(per_group) {
        let mut rg = writer.next_row_group().expect("row group");
        let mut col = 0;
        while let Some(mut c) = rg.next_column().expect("column") {
            let bytes =
                |f: &dyn Fn(&Entry) -> String| group.iter().map(|e| ByteArray::from(f(e).as_str())).collect::<Vec<_>>();
            let w = c.typed::<ByteArrayType>();
            match col {
                0 => w.write_batch(&bytes(&|e| format!("blob-{}", e.path)), None, None),
                1 => w.write_batch(&bytes(&|e| e.content.clone()), None, None),
                2 => w.write_batch(&bytes(&|e| e.path.clone()), Some(&vec![1; group.len()]), None),
                3 => w.write_batch(&bytes(&|e| e.repo.clone()), Some(&vec![1; group.len()]), None),
                _ => {
                    // A list column: definition level 3 = element present; repetition 0 starts a row.
                    let values: Vec<ByteArray> =
                        group.iter().flat_map(|e| e.license.iter().map(|l| ByteArray::from(l.as_str()))).collect();
                    let defs = vec![3i16; values.len()];
                    let reps: Vec<i16> =
                        group.iter().flat_map(|e| (0..e.license.len()).map(|i| i16::from(i > 0))).collect();
                    w.write_batch(&values, Some(&defs), Some(&reps))
                }
            }
            .expect("write column");
            c.close().expect("close column");
            col += 1;
        }
        rg.close().expect("close row group");
    }
    writer.close().expect("close parquet");
}

fn read_all(path: &Path) -> Vec<Result<SourceFile, CorpusError>> {
    corpus::open(path).expect("open corpus").collect()
}

fn ok(items: Vec<Result<SourceFile, CorpusError>>) -> Vec<SourceFile> {
    items.into_iter().map(|r| r.expect("entry reads")).collect()
}

#[test]
fn every_format_reads_the_same_files_with_provenance() {
    let dir = crate::common::tempdir();
    let entries = fixture_entries();
    let mut read = Vec::new();
    for (name, c) in
        [("c.jsonl", Compression::None), ("c.jsonl.gz", Compression::Gzip), ("c.jsonl.zst", Compression::Zstd)]
    {
        let p = dir.path().join(name);
        write_jsonl(&p, &entries, c);
        read.push((p.clone(), ok(read_all(&p))));
    }
    let p = dir.path().join("c.parquet");
    write_parquet(&p, &entries, 2); // three row groups: 2 + 2 + 1
    read.push((p.clone(), ok(read_all(&p))));
    for (path, files) in &read {
        assert_eq!(files.len(), entries.len(), "{}", path.display());
        for (i, (f, e)) in files.iter().zip(&entries).enumerate() {
            assert_eq!(f.content, e.content);
            assert_eq!(f.path.as_deref(), Some(e.path.as_str()), "{}", path.display());
            assert_eq!(f.repo.as_deref(), Some(e.repo.as_str()));
            assert_eq!(f.license, e.license, "{}", path.display());
            assert_eq!(f.id, corpus::content_id(&e.content));
            assert_eq!(&f.origin.file, path);
            // JSONL lines are 1-based, Parquet rows 0-based.
            let expected = match path.extension().is_some_and(|x| x == "parquet") {
                true => Position::Row(i as u64),
                false => Position::Line(i as u64 + 1),
            };
            assert_eq!(f.origin.at, Some(expected));
        }
    }
}

#[test]
fn malformed_jsonl_entries_are_reported_with_line_numbers_and_reading_goes_on() {
    let dir = crate::common::tempdir();
    let entries = fixture_entries();
    let lines = vec![
        jsonl_line(&entries[0]),
        "{\"content\": \"x = 1\", oops".to_string(),
        String::new(), // blank lines are not entries
        "{\"path\": \"a.py\"}".to_string(),
        "{\"content\": 42}".to_string(),
        "[1, 2]".to_string(),
        jsonl_line(&entries[1]),
    ];
    let p = dir.path().join("bad.jsonl.gz");
    write_lines(&p, &lines, Compression::Gzip);
    let items = read_all(&p);
    assert_eq!(items.len(), 6);
    let errors: Vec<String> = items.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    let name = p.display().to_string();
    assert!(errors[0].starts_with(&format!("{name} line 2: invalid JSON")), "{}", errors[0]);
    assert_eq!(errors[1], format!("{name} line 4: missing field `content`"));
    assert_eq!(errors[2], format!("{name} line 5: field `content` is not a string"));
    assert_eq!(errors[3], format!("{name} line 6: not a JSON object"));
    assert!(items.iter().filter_map(|r| r.as_ref().err()).all(CorpusError::is_recoverable));
    let good: Vec<_> = items.into_iter().filter_map(Result::ok).collect();
    assert_eq!(good.len(), 2);
    assert_eq!(good[1].origin.at, Some(Position::Line(7)));
}

#[test]
fn parquet_without_content_column_is_named() {
    let dir = crate::common::tempdir();
    let p = dir.path().join("nocontent.parquet");
    let schema = parse_message_type("message schema { REQUIRED BYTE_ARRAY text (UTF8); }").expect("schema");
    let file = std::fs::File::create(&p).expect("create");
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(WriterProperties::builder().build()))
        .expect("writer");
    let mut rg = w.next_row_group().expect("rg");
    while let Some(mut c) = rg.next_column().expect("col") {
        c.typed::<ByteArrayType>().write_batch(&[ByteArray::from("x")], None, None).expect("write");
        c.close().expect("close");
    }
    rg.close().expect("close rg");
    w.close().expect("close");
    let err = corpus::open(&p).err().expect("fails");
    assert_eq!(err.to_string(), format!("{}: missing column `content` (the file has: text)", p.display()));
    assert!(!err.is_recoverable());
}

#[test]
fn directories_give_relative_paths_skip_vendored_code_and_report_non_utf8() {
    let files = ok(read_all(&fixture_dir()));
    let paths: Vec<_> = files.iter().map(|f| f.path.clone().unwrap_or_default()).collect();
    assert_eq!(
        paths,
        vec!["nested/copies.py", "pkg/broken.py", "pkg/legacy.py", "pkg/stats_utils.py", "pkg/text_utils.py"]
    );
    assert!(files.iter().all(|f| f.origin.at.is_none() && f.repo.is_none()));

    let dir = crate::common::tempdir();
    std::fs::write(dir.path().join("a.py"), "x = 1\n").expect("write");
    std::fs::write(dir.path().join("b.py"), b"x = '\xff'\n").expect("write");
    std::fs::write(dir.path().join("c.txt"), "not python").expect("write");
    std::fs::create_dir(dir.path().join(".venv")).expect("mkdir");
    std::fs::write(dir.path().join(".venv/d.py"), "x = 1\n").expect("write");
    let items = read_all(dir.path());
    assert_eq!(items.len(), 2);
    let err = items[1].as_ref().expect_err("b.py is not UTF-8");
    assert!(err.is_recoverable());
    let why = "not valid UTF-8, and no PEP 263 coding declaration, at byte 5 (line 1)";
    assert_eq!(err.to_string(), format!("{}: {why}", dir.path().join("b.py").display()));
    // A single .py file is a corpus too.
    let single = ok(read_all(&dir.path().join("a.py")));
    assert_eq!(single[0].path.as_deref(), Some("a.py"));
}

#[test]
fn unknown_and_missing_paths_are_errors() {
    let dir = crate::common::tempdir();
    let p = dir.path().join("corpus.csv");
    std::fs::write(&p, "a,b").expect("write");
    let err = corpus::open(&p).err().expect("unsupported").to_string();
    assert!(err.contains("corpus.csv: unsupported corpus format"), "{err}");
    let err = corpus::open(&dir.path().join("nope.jsonl")).err().expect("missing").to_string();
    assert!(err.ends_with("nope.jsonl: no such file or directory"), "{err}");
    // A file whose name says nothing, or the wrong thing, is read as its first bytes say: JSON Lines
    // (plain or gzip) and Parquet, also a Parquet file named .jsonl.
    let line = "{\"content\": \"def f(x):\\n    return x\\n\"}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, line.as_bytes()).unwrap();
    std::fs::write(dir.path().join("dump.txt"), line).unwrap();
    std::fs::write(dir.path().join("dump.gz"), gz.finish().unwrap()).unwrap();
    let parquet = dir.path().join("real.parquet");
    let entry = Entry {
        path: "f.py".into(),
        repo: "o/r".into(),
        license: vec!["MIT".into()],
        content: "def f(x):\n    return x\n".into(),
    };
    write_parquet(&parquet, &[entry], 1);
    std::fs::copy(&parquet, dir.path().join("misnamed.jsonl")).unwrap();
    for name in ["dump.txt", "dump.gz", "misnamed.jsonl"] {
        let files = ok(read_all(&dir.path().join(name)));
        assert_eq!(files.len(), 1, "{name}");
        assert_eq!(files[0].content, "def f(x):\n    return x\n", "{name}");
    }
}
