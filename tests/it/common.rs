//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh temporary directory for one test, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("unitcoder-it-")
        .tempdir()
        .expect("create temp dir")
}

/// The `unitcoder` binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_unitcoder"))
}

/// Runs `unitcoder` with `args` and returns its output.
pub fn unitcoder(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run unitcoder")
}

/// The shared benchmark data directory (`../shared/benchmarks` from the repository root), or the
/// path in `UNITCODER_BENCHMARKS` when set.
pub fn benchmarks_dir() -> PathBuf {
    if let Ok(p) = std::env::var("UNITCODER_BENCHMARKS") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks")
}
