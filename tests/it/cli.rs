//! The command line as a user meets it: help text and exit codes.

use crate::common::unitcoder;

#[test]
fn help_lists_subcommands_and_exits_zero() {
    let out = unitcoder(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: unitcoder"), "{text}");
}

#[test]
fn unknown_subcommand_is_a_usage_error_with_exit_2() {
    let out = unitcoder(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `unitcoder args` with its stdout a pipe whose reading end is already closed, as when
/// `| head -1` has exited.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    std::process::Command::new(crate::common::bin()).args(args).stdout(writer).output().expect("run unitcoder")
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = crate::common::tempdir();
    let code = dir.path().join("p.py");
    std::fs::write(&code, "def f():\n    return 1\n").unwrap();
    let tests = dir.path().join("t.py");
    std::fs::write(&tests, "assert f() == 1\n").unwrap();
    for args in [
        vec!["models", "list"],
        vec!["check", "--code", code.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--json"],
    ] {
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_io_error_is_named_once() {
    // A directory where a file is expected: the OS's words once, not "...: Is a directory (os
    // error 21): Is a directory (os error 21)".
    let dir = crate::common::tempdir();
    let adir = dir.path().join("adir");
    std::fs::create_dir(&adir).unwrap();
    let data = crate::common::benchmarks_dir().join("humaneval/HumanEval.jsonl.gz");
    let out = unitcoder(&[
        "eval",
        "score",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--samples",
        adir.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("adir: Is a directory"), "{stderr}");
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
}

#[test]
fn the_library_never_prints() {
    // Progress and warnings reach users through the CLI (a Reporter, or values such as
    // `Sandbox::warnings` that it shows): a library that prints breaks `--json` and embedders.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if !rel.ends_with(".rs") || rel.starts_with("cli/") || rel == "main.rs" || rel.ends_with("/tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        // Unit tests may print; they sit after `#[cfg(test)]` at the end of a file.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if !l.starts_with("//") && ["println!", "eprintln!", "print!(", "eprint!("].iter().any(|m| l.contains(m)) {
                offenders.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "the library prints:\n{}", offenders.join("\n"));
}
