//! The benchmark files the repository carries (`eval/data`) are the published ones: each file's
//! uncompressed bytes hash to the sha256 its README lists, and every file there is listed.

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
