//! `unitcoder check` from the command line: exit codes, --json, and --batch with a malformed line.

use crate::common::{tempdir, unitcoder};

/// A batch of `n` passing programs that take 50 ms each, ids `p0`, `p1`, ...
fn sleepy_batch(n: usize) -> String {
    (0..n)
        .map(|i| {
            let code = "import time\ndef add(a, b):\n    time.sleep(0.05)\n    return a + b\n";
            serde_json::json!({"id": format!("p{i}"), "code": code, "tests": super::ADD_CHECK}).to_string() + "\n"
        })
        .collect()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p.display().to_string()
}

#[test]
fn check_exit_codes_and_json() {
    let dir = tempdir();
    let good = write(dir.path(), "good.py", super::ADD);
    let bad = write(dir.path(), "bad.py", "def add(a, b):\n    return 0\n");
    let tests = write(dir.path(), "tests.py", super::ADD_UNITTEST);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--json", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a verdict line");
    let v: serde_json::Value = serde_json::from_str(last).expect("verdict JSON");
    assert_eq!(v["status"], "pass");
    assert_eq!(v["tests"].as_array().map(|a| a.len()), Some(2));

    let out = unitcoder(&["check", "--code", &bad, "--tests", &tests, "--json", "--memory-mb", "512"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("verdict JSON");
    assert_eq!(v["status"], "fail");
    assert_eq!(v["reason"], "assertion");
}

#[test]
fn check_usage_errors_exit_2_naming_the_problem() {
    let dir = tempdir();
    let tests = write(dir.path(), "tests.py", super::ADD_CHECK);
    let missing = dir.path().join("missing.py").display().to_string();
    let out = unitcoder(&["check", "--code", &missing, "--tests", &tests]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.py"));
    let good = write(dir.path(), "good.py", super::ADD);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--python", "/no/such/python3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/python3"));
    let out = unitcoder(&["check", "--code", &good]);
    assert_eq!(out.status.code(), Some(2));
    // A limit past what the sandbox can count (2^31 ms) is a typo: refused, not a failing verdict.
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--timeout", "2147484"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 86400 seconds"));
}

#[test]
fn a_batch_whose_out_is_its_input_is_refused_and_the_input_kept() {
    let dir = tempdir();
    let line = serde_json::json!({"id": "a", "code": super::ADD, "tests": super::ADD_CHECK}).to_string() + "\n";
    let inp = write(dir.path(), "in.jsonl", &line);
    // The same file under another name: a hard link.
    let other = dir.path().join("other.jsonl");
    std::fs::hard_link(&inp, &other).unwrap();
    for out in [inp.clone(), other.display().to_string()] {
        let o = unitcoder(&["check", "--batch", &inp, "--out", &out]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("would destroy the input"));
        assert_eq!(std::fs::read_to_string(&inp).unwrap(), line);
    }
    // A batch line's own timeout follows the same rule.
    let bad = serde_json::json!({"id": "b", "code": super::ADD, "tests": super::ADD_CHECK, "timeout": 1e7}).to_string();
    let inp = write(dir.path(), "bad.jsonl", &(bad + "\n"));
    let outp = dir.path().join("bad-out.jsonl");
    let o = unitcoder(&["check", "--batch", &inp, "--out", outp.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    // Its only line: nothing to run, so an error (exit 2) that names it, and no --out.
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.jsonl line 1: field `timeout`: must be at most 86400 seconds"), "{err}");
    assert!(!outp.exists());
}

#[test]
fn batch_reports_a_malformed_line_and_runs_the_others() {
    let dir = tempdir();
    let line =
        |id: &str, code: &str| serde_json::json!({"id": id, "code": code, "tests": super::ADD_CHECK}).to_string();
    let input = [
        line("ok-1", super::ADD),
        "{\"id\": \"broken\", \"code\": 3}".to_string(),
        line("wrong", "def add(a, b):\n    return 0\n"),
        "not json at all".to_string(),
        serde_json::json!({"id": "slow", "code": "import time\ndef add(a, b):\n    time.sleep(30)\n", "tests": super::ADD_CHECK, "timeout": 1}).to_string(),
        line("ok-2", super::ADD),
    ]
    .join("\n");
    let inp = write(dir.path(), "in.jsonl", &input);
    let outp = dir.path().join("out.jsonl").display().to_string();
    let out = unitcoder(&["check", "--batch", &inp, "--out", &outp, "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2") && stderr.contains("in.jsonl line 4: invalid JSON: expected ident"), "{stderr}");
    // The run's summary counts the programs that ran and the passes, then the malformed lines.
    assert!(
        stderr.lines().any(|l| l.starts_with("checked 4 programs in ")
            && l.ends_with(": 2 passed; 2 malformed input lines written as errors (\"malformed input\")")),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&outp).expect("output written");
    let verdicts: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(verdicts.len(), 6, "{text}");
    let status = |id: &str| {
        verdicts
            .iter()
            .find(|v| v["id"] == id)
            .map(|v| v["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("ok-1"), "pass");
    assert_eq!(status("ok-2"), "pass");
    assert_eq!(status("wrong"), "fail");
    assert_eq!(status("slow"), "timeout");
    assert_eq!(status("broken"), "error");
    assert_eq!(status("line 4"), "error");
    assert!(verdicts.iter().any(|v| v["tests"][0]["message"].as_str().is_some_and(|m| m.contains("line 4"))));
    // A wrong value is named by its field; keys other than the four are not read, and said once.
    assert!(stderr.contains("in.jsonl line 2: field `code`: invalid type: integer `3`, expected a string"), "{stderr}");
    let extra = [
        serde_json::json!({"id": "a", "task_id": "T/0", "entry_point": "add", "code": super::ADD, "tests": super::ADD_CHECK}),
        serde_json::json!({"id": "b", "task_id": "T/1", "code": super::ADD, "tests": super::ADD_CHECK, "timeout": "5"}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let inp = write(dir.path(), "extra.jsonl", &extra);
    let out = unitcoder(&["check", "--batch", &inp, "--out", &outp]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("extra.jsonl line 2: field `timeout`: invalid type: string \"5\", expected a number of seconds"),
        "{stderr}"
    );
    assert!(stderr.contains("keys that are not read: `entry_point` (1 line), `task_id` (1 line)"), "{stderr}");
    assert!(
        stderr.contains("checked 1 program in") && stderr.contains("1 passed; 1 malformed input line written"),
        "{stderr}"
    );

    // A file none of whose lines can be read is the wrong file: exit 2, and --out is left as it was.
    let before = std::fs::read(&outp).unwrap();
    let wrong = write(dir.path(), "wrong.jsonl", "{\"content\": \"x\"}\nnot json\n");
    let out = unitcoder(&["check", "--batch", &wrong, "--out", &outp]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("none of the 2 lines of") && stderr.contains("missing field `id`"), "{stderr}");
    assert_eq!(std::fs::read(&outp).unwrap(), before);
    // Verdicts are appended as they come: a compressed --out is refused, not written as plain text.
    let gz = dir.path().join("out.jsonl.gz");
    let out = unitcoder(&["check", "--batch", &inp, "--out", gz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain JSON Lines") && !gz.exists());
}

#[test]
fn json_puts_only_the_verdict_on_stdout() {
    let dir = tempdir();
    let good = write(dir.path(), "good.py", super::ADD);
    let tests = write(dir.path(), "tests.py", super::ADD_UNITTEST);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The whole of stdout is one JSON document (`| python3 -m json.tool` works)...
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["status"], "pass");
    // ...and the human-readable lines went to stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pass") && stderr.contains("test_small"), "{stderr}");
}

#[test]
fn batch_writes_verdicts_in_input_order_into_a_new_directory() {
    let dir = tempdir();
    let line =
        |id: &str, code: &str| serde_json::json!({"id": id, "code": code, "tests": super::ADD_CHECK}).to_string();
    // The first job finishes last: it sleeps while the second worker runs all the others.
    let slow = "import time\ntime.sleep(2)\ndef add(a, b):\n    return a + b\n";
    let input = [
        line("slow", slow),
        line("a", super::ADD),
        "not json".to_string(),
        line("b", super::ADD),
        line("c", super::ADD),
    ]
    .join("\n");
    let inp = write(dir.path(), "in.jsonl", &input);
    // The output's directory does not exist yet: check creates it, as retrieve and eval do.
    let outp = dir.path().join("new/sub/out.jsonl");
    let out = unitcoder(&["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&outp).expect("output written");
    let ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line")["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["slow", "a", "line 3", "b", "c"], "{text}");
}

#[test]
fn resume_keeps_the_verdicts_of_unchanged_lines_and_checks_only_the_rest() {
    let dir = tempdir();
    let line =
        |id: &str, code: &str| serde_json::json!({"id": id, "code": code, "tests": super::ADD_CHECK}).to_string();
    let wrong = "def add(a, b):\n    return 0\n";
    let mut lines =
        [line("a", super::ADD), line("b", wrong), "not json".to_string(), line("c", super::ADD), line("d", super::ADD)];
    let inp = write(dir.path(), "in.jsonl", &lines.join("\n"));
    let outp = dir.path().join("out.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec!["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "2"];
        args.extend_from_slice(extra);
        let out = unitcoder(&args);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let read = || std::fs::read_to_string(&outp).expect("output written");
    let field = |l: &str, k: &str| serde_json::from_str::<serde_json::Value>(l).expect("JSON line")[k].clone();
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let first = read();
    let first: Vec<&str> = first.lines().collect();
    let keys: Vec<String> = first.iter().map(|l| field(l, "input_key").as_str().unwrap_or("").to_string()).collect();
    assert!(keys.iter().all(|k| k.len() == 64), "{keys:?}");
    assert_eq!(keys.iter().collect::<std::collections::HashSet<_>>().len(), 5, "one key per line");

    // A kill cut the output: three whole verdicts and the start of the fourth.
    std::fs::write(&outp, format!("{}\n{}", first[..3].join("\n"), &first[3][..20])).unwrap();
    let (code, stderr) = run(&["--resume"]);
    // The kept verdict of `b` failed: the batch as a whole still fails.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("3 of 5 verdicts kept from") && stderr.contains("(1 passed); checking the other 2"),
        "{stderr}"
    );
    assert!(stderr.contains("checked 2 programs") && !stderr.contains("malformed input line"), "{stderr}");
    let second = read();
    let second: Vec<&str> = second.lines().collect();
    assert_eq!(second[..3], first[..3], "kept as they were, not run again");
    let ids: Vec<_> = second.iter().map(|l| field(l, "id")).collect();
    assert_eq!(ids, ["a", "b", "line 3", "c", "d"], "{second:?}");
    assert_eq!(second.iter().map(|l| field(l, "input_key")).collect::<Vec<_>>(), keys);

    // A changed line: its verdict and every later one are checked again.
    lines[1] = line("b", super::ADD);
    write(dir.path(), "in.jsonl", &lines.join("\n"));
    let (code, stderr) = run(&["--resume"]);
    assert_eq!(code, Some(1), "the malformed line still fails the batch: {stderr}");
    assert!(
        stderr.contains("1 of 5 verdicts kept")
            && stderr.contains("checked 3 programs")
            && stderr.contains(": 3 passed"),
        "{stderr}"
    );
    assert_eq!(field(read().lines().nth(1).unwrap(), "status"), "pass");
    // Other limits give other verdicts: nothing is kept.
    let (_, stderr) = run(&["--resume", "--timeout", "7"]);
    assert!(stderr.contains("0 of 5 verdicts kept") && stderr.contains("checked 4 programs"), "{stderr}");
    // Without --resume the output is written afresh.
    let (_, stderr) = run(&[]);
    assert!(!stderr.contains("kept") && stderr.contains("checked 4 programs"), "{stderr}");
    assert_eq!(read().lines().count(), 5);
}

#[test]
fn without_a_terminal_a_long_batch_writes_progress_lines_and_a_short_one_none() {
    let dir = tempdir();
    // 40 programs of 50 ms over two workers: about a second.
    let input = sleepy_batch(40);
    let inp = write(dir.path(), "in.jsonl", &input);
    let outp = dir.path().join("out.jsonl");
    let run = |every: Option<&str>| {
        let mut command = std::process::Command::new(crate::common::bin());
        command.args(["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "2"]);
        command.env_remove("UNITCODER_PROGRESS_SECS");
        if let Some(every) = every {
            command.env("UNITCODER_PROGRESS_SECS", every);
        }
        let out = command.output().expect("run unitcoder");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // stderr is a pipe here, as in a log file: the bars are hidden and lines come instead.
    let stderr = run(Some("0.2"));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("progress: check ")).collect();
    assert!(lines.len() >= 2, "{stderr}");
    assert!(lines[0].contains("/40 (") && lines[0].contains(" in "), "{stderr}");
    assert!(lines.last().is_some_and(|l| l.starts_with("progress: check done: 40 in ")), "{stderr}");
    // The default interval is 30 s: a one-second batch writes no progress line; 0 turns them off.
    assert!(!run(None).contains("progress:"));
    assert!(!run(Some("0")).contains("progress:"));
}

/// A task that does not move for a while (one slow program, one long model call) still gets its
/// lines: a quiet log would look like a hung command.
#[test]
fn without_a_terminal_progress_lines_come_while_nothing_moves() {
    let dir = tempdir();
    let code = "import time\ndef add(a, b):\n    time.sleep(2.5)\n    return a + b\n";
    let line = serde_json::json!({"id": "slow", "code": code, "tests": super::ADD_CHECK}).to_string() + "\n";
    let inp = write(dir.path(), "in.jsonl", &line);
    let outp = dir.path().join("out.jsonl");
    let out = std::process::Command::new(crate::common::bin())
        .args(["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "1"])
        .env("UNITCODER_PROGRESS_SECS", "0.5")
        .output()
        .expect("run unitcoder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let waiting = stderr.lines().filter(|l| l.starts_with("progress: check 0/1 (0%) in ")).count();
    assert!(waiting >= 2, "lines while the one program runs: {stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("progress: check done: 1 in ")), "{stderr}");
}

/// A program's exception text can hold terminal escapes and new lines; `check`'s summary shows them
/// escaped, so the program cannot erase the verdict line or draw `pass` lines of its own.
#[test]
fn the_summary_shows_a_programs_escape_sequences_escaped() {
    let dir = tempdir();
    let code = write(
        dir.path(),
        "p.py",
        "class Shown(Exception):\n    def __str__(self):\n        return '\\x1b[1A\\x1b[2K\\r pass (3 ms)\\n  pass  T.test_b\\x1b[8m'\n\ndef add(a, b):\n    raise Shown()\n",
    );
    let tests = write(dir.path(), "t.py", super::ADD_UNITTEST);
    let out = unitcoder(&["check", "--code", &code, "--tests", &tests]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains('\x1b') && !stdout.contains('\r'), "{stdout:?}");
    assert!(stdout.contains("Shown: \\u{1b}[1A\\u{1b}[2K\\r pass (3 ms)\\n  pass  T.test_b"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.trim_start().starts_with("pass")), "{stdout}");
}

/// A batch that cannot run (a mistyped --python, an empty input) leaves an earlier run's verdicts in
/// --out as they were, with or without --resume.
#[test]
fn a_batch_that_cannot_run_leaves_the_earlier_verdicts_alone() {
    let dir = tempdir();
    let inp = write(dir.path(), "in.jsonl", &sleepy_batch(2));
    let empty = write(dir.path(), "empty.jsonl", "\n\n");
    let outp = dir.path().join("out.jsonl");
    let out = outp.to_str().unwrap();
    let first = unitcoder(&["check", "--batch", &inp, "--out", out]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let verdicts = std::fs::read(&outp).unwrap();
    for args in [
        &["check", "--batch", &inp, "--out", out, "--python", "/nonexistent/python3"][..],
        &["check", "--batch", &inp, "--out", out, "--python", "/nonexistent/python3", "--resume"][..],
        &["check", "--batch", &empty, "--out", out][..],
    ] {
        let o = unitcoder(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(&outp).unwrap(), verdicts, "{args:?}");
    }
}

#[test]
fn a_gzipped_batch_is_read_as_what_it_is() {
    use std::io::Write;
    let dir = tempdir();
    let gz = dir.path().join("in.jsonl.gz");
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    e.write_all(sleepy_batch(3).as_bytes()).unwrap();
    e.finish().unwrap();
    let outp = dir.path().join("out.jsonl");
    let o = unitcoder(&["check", "--batch", gz.to_str().unwrap(), "--out", outp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&outp).unwrap().lines().count(), 3);
}

#[test]
fn a_python_that_is_no_python_is_named_as_such() {
    let dir = tempdir();
    let code = write(dir.path(), "p.py", super::ADD);
    let tests = write(dir.path(), "t.py", super::ADD_CHECK);
    let o = unitcoder(&["check", "--code", &code, "--tests", &tests, "--python", "/bin/true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("/bin/true failed to start; it wrote nothing: is it a Python >= 3.9 interpreter?"), "{err}");
}

#[test]
fn sources_are_decoded_as_python_decodes_them() {
    let dir = tempdir();
    let w = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let tests = w("tests.py", b"assert add(1, 2) == 3\nassert size() == 1\n");
    // A UTF-8 byte-order mark, as some editors write: `python3 prog.py` ignores it.
    let bom = w("bom.py", b"\xef\xbb\xbfdef add(a, b):\n    return a + b\ndef size():\n    return 1\n");
    // PEP 263: Latin-1 declared, and a Latin-1 byte (\xe9, one character) in a string.
    let latin1 = w(
        "latin1.py",
        b"# -*- coding: latin-1 -*-\ndef add(a, b):\n    return a + b\ndef size():\n    return len('\xe9')\n",
    );
    for program in [&bom, &latin1] {
        let out = unitcoder(&["check", "--code", program, "--tests", &tests]);
        assert_eq!(out.status.code(), Some(0), "{program}: {}", String::from_utf8_lossy(&out.stdout));
    }
    // The same byte without a declaration is an error naming the file and where.
    let bad = w("bad.py", b"def add(a, b):\n    return a + b\ndef size():\n    return len('\xe9')\n");
    let out = unitcoder(&["check", "--code", &bad, "--tests", &tests]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.py") && stderr.contains("byte 60 (line 4)"), "{stderr}");
}

#[test]
fn a_memory_limit_too_small_for_python_is_a_usage_error() {
    let dir = tempdir();
    let good = write(dir.path(), "good.py", super::ADD);
    let tests = write(dir.path(), "tests.py", super::ADD_CHECK);
    let out = unitcoder(&["check", "--code", &good, "--tests", &tests, "--memory-mb", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--memory-mb") && stderr.contains("at least 64"), "{stderr}");
    assert!(!stderr.contains("Errno"), "{stderr}");
}

#[test]
fn a_batch_with_a_repeated_id_warns_naming_the_lines_and_checks_every_line() {
    let dir = tempdir();
    let line = |id: &str| serde_json::json!({"id": id, "code": super::ADD, "tests": super::ADD_CHECK}).to_string();
    let inp = write(dir.path(), "in.jsonl", &[line("a"), line("b"), line("a")].join("\n"));
    let outp = dir.path().join("out.jsonl");
    let out = unitcoder(&["check", "--batch", &inp, "--out", outp.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Ids are the user's: a warning, not a failure.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("in.jsonl lines 1, 3: the same id \"a\""), "{stderr}");
    assert!(!stderr.contains("\"b\""), "{stderr}");
    assert_eq!(std::fs::read_to_string(&outp).unwrap().lines().count(), 3);
}

#[test]
fn a_timeout_names_the_test_that_was_running() {
    let dir = tempdir();
    let code = write(dir.path(), "loop.py", "def f(n):\n    while n:\n        pass\n    return 0\n");
    let tests = write(
        dir.path(),
        "tests.py",
        "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(0), 0)\n\
         \n    def test_b(self):\n        self.assertEqual(f(1), 0)\n",
    );
    let out = unitcoder(&["check", "--code", &code, "--tests", &tests, "--json", "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("verdict JSON");
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("timeout"), Some("timeout")), "{v}");
    assert_eq!(v["running"], "T.test_b", "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped while running T.test_b"));
    // The status line says `timeout` once (it said `timeout: timeout`).
    assert!(stderr.lines().next().is_some_and(|l| l.starts_with("timeout (")), "{stderr}");

    // A SyntaxError with no line (a null byte in the source) names no line (it said `line None`).
    let nul = write(dir.path(), "nul.py", "x = 1\0\n");
    let out = unitcoder(&["check", "--code", &nul, "--tests", &tests, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verdict JSON");
    let message = v["tests"][0]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("program: ") && message.contains("null bytes") && !message.contains("None"), "{v}");
}

/// The live processes whose parent chain leads to `root` (zombies count as gone).
fn descendants(root: u32) -> Vec<u32> {
    let parent_and_state = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
        Some((field("PPid:")?.parse::<u32>().ok()?, field("State:")?.starts_with('Z')))
    };
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter_map(|pid| parent_and_state(pid).filter(|(_, zombie)| !zombie).map(|(ppid, _)| (pid, ppid)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(all.iter().filter(|(_, ppid)| *ppid == p).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

#[test]
fn a_job_in_flight_ends_with_unitcoder_not_at_its_time_limit() {
    // The sandbox's servers run in a process group of their own (a terminal's Ctrl-C reaches only
    // unitcoder, which stops its run in order). So when unitcoder dies, the server notices its
    // reader is gone and ends the job at once: before, a job in flight ran on to its time limit.
    let dir = tempdir();
    let code = write(dir.path(), "add.py", super::ADD);
    let tests = write(
        dir.path(),
        "tests.py",
        "import time, unittest\n\nclass T(unittest.TestCase):\n    def test_slow(self):\n        time.sleep(90)\n        self.assertEqual(add(1, 2), 3)\n",
    );
    let mut child = std::process::Command::new(crate::common::bin())
        .args(["check", "--code", &code, "--tests", &tests, "--timeout", "120"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run unitcoder");
    // The server, its zygote and the job's process (at least): the job is running.
    let start = std::time::Instant::now();
    let mut below = descendants(child.id());
    while below.len() < 3 && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        below = descendants(child.id());
    }
    assert!(below.len() >= 3, "the job never started: {below:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().expect("kill unitcoder");
    child.wait().expect("reap unitcoder");
    let gone = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
            .unwrap_or(true)
    };
    let killed = std::time::Instant::now();
    while !below.iter().all(gone) && killed.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left: Vec<&u32> = below.iter().filter(|p| !gone(p)).collect();
    assert!(left.is_empty(), "still running {:?} after unitcoder died: {left:?}", killed.elapsed());
}

#[test]
fn a_batch_line_that_is_not_utf8_is_that_lines_error_and_the_others_run() {
    let dir = tempdir();
    let line = |id: &str| serde_json::json!({"id": id, "code": super::ADD, "tests": super::ADD_CHECK}).to_string();
    // A byte order mark before the first line (as some editors write), CRLF line ends, and a
    // Latin-1 byte in the middle line.
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(format!("{}\r\n", line("first")).as_bytes());
    input.extend_from_slice(b"{\"id\": \"caf\xE9\", \"code\": \"\", \"tests\": \"\"}\r\n");
    input.extend_from_slice(format!("{}\r\n", line("third")).as_bytes());
    let inp = dir.path().join("in.jsonl");
    std::fs::write(&inp, input).unwrap();
    let outp = dir.path().join("out.jsonl");
    let out = unitcoder(&["check", "--batch", inp.to_str().unwrap(), "--out", outp.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in.jsonl line 2: not valid UTF-8 (byte 12 of the line)"), "{stderr}");
    assert!(
        stderr.contains("checked 2 programs") && stderr.contains("2 passed; 1 malformed input line written"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&outp).expect("output written");
    let verdicts: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let got: Vec<(&str, &str)> =
        verdicts.iter().map(|v| (v["id"].as_str().unwrap_or(""), v["status"].as_str().unwrap_or(""))).collect();
    assert_eq!(got, [("first", "pass"), ("line 2", "error"), ("third", "pass")], "{text}");
    assert_eq!(verdicts[1]["reason"], "malformed input");
}

#[test]
fn ctrl_c_stops_a_batch_after_the_programs_in_progress_with_the_verdicts_so_far_in_input_order() {
    let dir = tempdir();
    // 300 programs of 50 ms each: about 8 s over two workers, interrupted once verdicts are written.
    let input = sleepy_batch(300);
    let inp = write(dir.path(), "in.jsonl", &input);
    let outp = dir.path().join("out.jsonl");
    let lines = || std::fs::read_to_string(&outp).map(|t| t.lines().count()).unwrap_or(0);
    let mut command = std::process::Command::new(crate::common::bin());
    command.args(["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "2"]);
    let o = crate::common::interrupt_once(&mut command, || lines() >= 4);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    let text = std::fs::read_to_string(&outp).unwrap();
    let verdicts: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("whole JSON lines")).collect();
    let ids: Vec<String> = verdicts.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    // The programs in progress were not hit by the terminal's signal: they ran to their own end.
    assert!(verdicts.iter().all(|v| v["status"] == "pass"), "{text}");
    assert!(ids.len() >= 4 && ids.len() < 300, "{}", ids.len());
    assert_eq!(ids, (0..ids.len()).map(|i| format!("p{i}")).collect::<Vec<_>>(), "a prefix, in input order");
    let said =
        format!("check interrupted by SIGINT: the verdicts of the first {} of 300 input lines are in", ids.len());
    assert!(stderr.contains(&said) && stderr.contains("the same command with --resume checks the rest"), "{stderr}");

    // GNU `timeout -s INT` sends the signal to the process and then to its group: one interrupt,
    // which still stops in order, not the second one's stop at once.
    std::fs::remove_file(&outp).unwrap();
    let mut command = std::process::Command::new(crate::common::bin());
    command.args(["check", "--batch", &inp, "--out", outp.to_str().unwrap(), "--jobs", "2"]);
    let o = crate::common::interrupt_as_timeout_does(&mut command, || lines() >= 4);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("check interrupted by SIGINT: the verdicts of the first"), "{stderr}");
}
