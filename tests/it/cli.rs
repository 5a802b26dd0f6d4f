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

/// An `--out` that names a file where a directory goes (or a directory where a file goes, or lies under
/// a file) is refused before any work, naming that file, for every command that writes one.
#[test]
fn an_out_path_that_cannot_be_made_is_a_usage_error_naming_the_file_in_the_way() {
    let dir = crate::common::tempdir();
    let file = dir.path().join("taken.txt");
    std::fs::write(&file, "mine\n").unwrap();
    let (f, d) = (file.to_str().unwrap(), dir.path().to_str().unwrap());
    let under = format!("{f}/sub");
    let under_file = format!("{f}/x.jsonl");
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["synth", "--corpus", d, "--out", f], "is a file, not a directory"),
        (vec!["synth", "--corpus", d, "--out", &under], "taken.txt is a file, so no directory"),
        (vec!["eval", "run", "--benchmark", "humaneval", "--out", f], "is a file, not a directory"),
        (vec!["eval", "check-gt", "--benchmark", "humaneval", "--out", f], "is a file, not a directory"),
        (vec!["merge", d, "--out", f], "is a file, not a directory"),
        (vec!["retrieve", "--corpus", corpus.to_str().unwrap(), "--out", d], "is a directory"),
        (vec!["retrieve", "--corpus", corpus.to_str().unwrap(), "--out", &under_file], "taken.txt is a file"),
        (vec!["generate", "--prompt", "hi", "--out", d], "is a directory"),
        (vec!["check", "--batch", f, "--out", d], "is a directory"),
    ];
    for (args, wanted) in cases {
        let o = unitcoder(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(wanted) && err.contains("--out"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine\n", "the file in the way is left alone");
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

/// `unitcoder ARGS --help` at a fixed width (clap wraps to the terminal, or to `COLUMNS`).
fn help(path: &[&str]) -> String {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let out = std::process::Command::new(crate::common::bin())
        .args(&args)
        .env("COLUMNS", "100")
        .output()
        .expect("run unitcoder");
    assert!(out.status.success(), "{path:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The names under the "Commands:" heading of a help text (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    let section = text.split("\nCommands:\n").nth(1).unwrap_or("");
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The argument lines of the "Options:" and "Arguments:" sections that have no help text: the
/// argument spec alone on its line, and no more indented continuation line below it (clap puts help on
/// the next line when argument names are long).
fn args_without_help(text: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut in_args = false;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_args = matches!(*line, "Options:" | "Arguments:");
            continue;
        }
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let is_arg = in_args && (2..=6).contains(&indent) && (body.starts_with('-') || body.starts_with(['<', '[']));
        if !is_arg {
            continue;
        }
        let spec_only = !body.trim_end().contains("  ");
        let next_is_help = lines.get(i + 1).is_some_and(|n| {
            let nb = n.trim_start();
            !nb.is_empty() && n.len() - nb.len() > indent && !nb.starts_with('-')
        });
        if spec_only && !next_is_help {
            missing.push(body.trim_end().to_string());
        }
    }
    missing
}

/// Every subcommand, as paths (`[]`, `["eval"]`, `["eval", "run"]`...), found by reading the help.
fn all_commands() -> Vec<Vec<String>> {
    let mut paths = vec![Vec::<String>::new()];
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&help(&refs)) {
            let mut p = path.clone();
            p.push(sub);
            paths.push(p);
        }
        i += 1;
    }
    paths
}

#[test]
fn help_checker_notices_a_missing_help_text() {
    // The checker itself, on clap's two layouts: help beside the spec, and help on the next line.
    let text = "Options:\n      --out <OUT>      \n      --seed <SEED>    Random seed [default: 0]\n  \
                -h, --help           Print help\nArguments:\n  <DIR_A>  \n      --very-long-name <X>\n          \
                Help on its own line\n";
    assert_eq!(args_without_help(text), vec!["--out <OUT>", "<DIR_A>"]);
}

#[test]
fn every_argument_of_every_command_has_help() {
    let commands = all_commands();
    // The walk found the nested commands, so the check below covers them.
    for expected in [vec!["eval", "run"], vec!["eval", "compare"], vec!["models", "pull"], vec!["report"]] {
        assert!(commands.iter().any(|c| *c == expected), "{expected:?} not in {commands:?}");
    }
    let mut missing = Vec::new();
    for c in &commands {
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        for arg in args_without_help(&help(&refs)) {
            missing.push(format!("unitcoder {} {arg}", c.join(" ")));
        }
    }
    assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
}

#[test]
fn help_shows_the_defaults_that_used_to_be_hidden() {
    let check = help(&["check"]);
    assert!(check.contains("[default: 10]") && check.contains("[default: 2048]"), "{check}");
    let run = help(&["eval", "run"]);
    assert!(run.contains(&format!("[default: {}]", unitcoder::engine::cards::DEFAULT_CARD)), "{run}");
    // One meaning per flag name: synth's template directory is --prompt-dir; --prompts is generate's JSONL.
    let synth = help(&["synth"]);
    assert!(synth.contains("--prompt-dir <DIR>") && !synth.contains("--prompts <"), "{synth}");
    assert!(help(&["generate"]).contains("--prompts <IN.jsonl>"));
}

#[test]
fn help_snapshots() {
    for path in [
        &["eval", "run"][..],
        &["eval", "score"],
        &["eval", "check-gt"],
        &["eval", "compare"],
        &["check"],
        &["generate"],
        &["retrieve"],
        &["synth"],
        &["report"],
    ] {
        let name = format!("help_{}", path.join("_"));
        insta::assert_snapshot!(name, help(path));
    }
}

/// Runs `unitcoder args`, expects clap's usage error (exit 2) and returns stderr.
fn usage_error(args: &[&str]) -> String {
    let out = unitcoder(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

#[test]
fn nonsense_numbers_are_usage_errors_naming_the_flag() {
    let eval = ["eval", "run", "--benchmark", "humaneval", "--data", "d.jsonl", "--out", "o"];
    let with =
        |extra: &[&'static str]| -> Vec<&'static str> { eval.iter().copied().chain(extra.iter().copied()).collect() };
    let err = usage_error(&with(&["--top-p", "2"]));
    assert!(err.contains("--top-p") && err.contains("(0, 1]"), "{err}");
    let err = usage_error(&with(&["--temperature=-0.5"]));
    assert!(err.contains("--temperature") && err.contains("0 or more"), "{err}");
    let err = usage_error(&with(&["-k", "1,0"]));
    assert!(err.contains("'0'") && err.contains("at least 1"), "{err}");
    let err = usage_error(&["generate", "--prompt", "x", "--max-batch", "0"]);
    assert!(err.contains("--max-batch"), "{err}");
    let err = usage_error(&["synth", "--out", "o", "--samples", "0"]);
    assert!(err.contains("--samples"), "{err}");
    // --pick says how --limit picks: without --limit it would be ignored, and the whole corpus run.
    let err = usage_error(&["synth", "--out", "o", "--pick", "first"]);
    assert!(err.contains("--limit <N>"), "{err}");
    let err = usage_error(&["check", "--code", "a.py", "--tests", "b.py", "--timeout", "0"]);
    assert!(err.contains("--timeout") && err.contains("positive"), "{err}");
    let err = usage_error(&["retrieve", "--out", "o.jsonl", "--near-dup", "1.5"]);
    assert!(err.contains("--near-dup") && err.contains("between 0 and 1"), "{err}");
}

#[test]
fn min_lines_above_max_lines_is_a_usage_error() {
    let dir = crate::common::tempdir();
    let out = dir.path().join("out.jsonl");
    let err = usage_error(&["retrieve", "--min-lines", "10", "--max-lines", "2", "--out", out.to_str().unwrap()]);
    assert!(
        err.contains("--min-lines 10 is above --max-lines 2") && err.contains("Usage: unitcoder retrieve"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_mistyped_corpus_path_writes_no_output() {
    let dir = crate::common::tempdir();
    let out = dir.path().join("sub").join("out.jsonl");
    let missing = dir.path().join("corpus.jsonl.typo");
    let o = unitcoder(&["retrieve", "--corpus", missing.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("corpus.jsonl.typo: no such corpus file or directory"), "{err}");
    assert!(!out.exists() && !dir.path().join("sub").exists(), "an output was created");
}
