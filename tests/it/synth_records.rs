//! `synth --records FILE` and decontamination in synth: the file `retrieve` writes is taken as it
//! is (a record edited in the file arrives edited, and no corpus is read), a bad line is an error
//! naming file and line, a HumanEval canonical solution in the corpus is dropped by default with
//! its reason (and counted in the funnel) and kept with `--decontaminate none`, a user's own
//! benchmark directory drops a matching function, the built-in fingerprints are what the script
//! builds from eval/data, and a malformed corpus line is skipped and counted, or stops synth with
//! `--strict`.

use crate::common::{benchmarks_dir, bin, tempdir};
use crate::models::tiny_model_path;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use unitcoder::pipeline::retrieve::{fingerprints, Fingerprints};

/// HumanEval/0 as its prompt and canonical solution make it: a corpus file with a benchmark task.
fn humaneval_0() -> String {
    let path = benchmarks_dir().join("humaneval/HumanEval.jsonl.gz");
    let bytes = unitcoder::eval::data::read_maybe_gz(&path).expect("read HumanEval");
    let first = String::from_utf8(bytes).expect("utf-8").lines().next().expect("a task").to_string();
    let task: Value = serde_json::from_str(&first).expect("json");
    format!("{}{}", task["prompt"].as_str().expect("prompt"), task["canonical_solution"].as_str().expect("solution"))
}

/// A function of our own that a user's benchmark also holds.
const MINE: &str = "import re\n\n\ndef shout_words(text, marker):\n    words = re.findall(r\"[a-z]+\", text.lower())\n    loud = [w.upper() + marker for w in words if len(w) > 2]\n    return \" \".join(loud) if loud else marker * 3\n";

/// Retrieves the corpus `dir` (with decontamination off, so the file holds the benchmark task) into
/// `root/records.jsonl`.
fn retrieve_records(root: &Path, dir: &Path) -> std::path::PathBuf {
    std::fs::write(root.join("packages.txt"), "typing\nre\n").expect("write");
    let out = root.join("records.jsonl");
    let o = Command::new(bin())
        .args(["retrieve", "--decontaminate", "none", "--allow-builtin-only", "--corpus"])
        .arg(dir)
        .arg("--packages")
        .arg(root.join("packages.txt"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run retrieve");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn synth(root: &Path, records: &Path, out: &str, extra: &[&str]) -> Output {
    Command::new(bin())
        .arg("synth")
        .arg("--records")
        .arg(records)
        .arg("--model")
        .arg(tiny_model_path())
        .args(["--max-tokens", "8", "--rounds", "0", "--tests-samples", "1", "--jobs", "1"])
        .args(extra)
        .arg("--out")
        .arg(root.join(out))
        .output()
        .expect("run synth")
}

fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

fn stats(root: &Path, out: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join(out).join("stats.json")).expect("stats")).expect("json")
}

fn step(stats: &Value, name: &str) -> u64 {
    let funnel = stats["funnel"].as_array().expect("funnel");
    funnel.iter().find(|s| s["step"] == name).and_then(|s| s["count"].as_u64()).expect(name)
}

#[test]
fn records_file_is_taken_as_is_and_benchmark_tasks_are_dropped_by_default() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("he0.py"), humaneval_0()).expect("write");
    let records = retrieve_records(root, &corpus);
    let retrieved = jsonl(&records);
    assert_eq!(retrieved.len(), 1, "{retrieved:?}");
    // Edited in the file and the corpus removed: synth can only have read the file.
    let mut edited = retrieved[0].clone();
    edited["source"]["path"] = Value::from("edited-by-the-test.py");
    std::fs::write(&records, format!("{edited}\n")).expect("write");
    std::fs::remove_dir_all(&corpus).expect("rm corpus");

    let o = synth(root, &records, "default", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rejected = jsonl(&root.join("default/rejected.jsonl"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["source"]["path"], "edited-by-the-test.py");
    assert_eq!(rejected[0]["rejected"]["stage"], "retrieve");
    assert_eq!(rejected[0]["rejected"]["reason"], "contaminated");
    assert_eq!(rejected[0]["rejected"]["detail"], "HumanEval(+) (built-in)");
    assert!(rejected[0].get("tests").is_none(), "no model call for a dropped record");
    let s = stats(root, "default");
    assert_eq!((step(&s, "retrieved"), step(&s, "decontaminated")), (1, 0), "{s}");
    let names: Vec<&str> = s["funnel"].as_array().expect("funnel").iter().filter_map(|x| x["step"].as_str()).collect();
    assert!(!names.contains(&"compiled"), "every record compiled: no such step: {names:?}");
    assert_eq!(s["rejected"]["retrieve/contaminated"], 1, "{s}");
    assert_eq!(s["retrieve"]["synth_decontamination"]["contaminated_by"]["HumanEval(+) (built-in)"], 1, "{s}");

    let o = synth(root, &records, "off", &["--decontaminate", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = stats(root, "off");
    assert_eq!((step(&s, "retrieved"), step(&s, "decontaminated")), (1, 1), "{s}");
    let all: Vec<Value> = jsonl(&root.join("off/rejected.jsonl"))
        .into_iter()
        .chain(jsonl(&root.join("off/dataset/records.jsonl")))
        .collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["source"]["path"], "edited-by-the-test.py");
    assert_ne!(all[0]["rejected"]["reason"], "contaminated", "{}", all[0]);

    // A bad line is named; `none` with a path is a usage error.
    std::fs::write(&records, format!("{edited}\n{{\"id\": 3}}\n")).expect("write");
    let o = synth(root, &records, "bad", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{} line 2:", records.display())), "{err}");
    let o = synth(root, &records, "both", &["--decontaminate", "none", "--decontaminate", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be combined"));
}

#[test]
fn users_own_benchmark_directory_drops_a_matching_function() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("mine.py"), MINE).expect("write");
    std::fs::write(corpus.join("he0.py"), humaneval_0()).expect("write");
    let records = retrieve_records(root, &corpus);
    assert_eq!(jsonl(&records).len(), 2);
    let bench = root.join("bench");
    std::fs::create_dir(&bench).expect("mkdir");
    // The task as a benchmark publishes it: a prompt and a solution body.
    let (prompt, body) = MINE.split_once("    words").expect("split");
    let task =
        serde_json::json!({"task_id": "Mine/0", "prompt": prompt, "canonical_solution": format!("    words{body}")});
    std::fs::write(bench.join("mine.jsonl"), format!("{task}\n")).expect("write");

    let o = synth(root, &records, "run", &["--decontaminate", &bench.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut details: Vec<String> = jsonl(&root.join("run/rejected.jsonl"))
        .iter()
        .filter(|r| r["rejected"]["reason"] == "contaminated")
        .map(|r| format!("{} {}", r["function"]["name"], r["rejected"]["detail"]))
        .collect();
    details.sort();
    assert_eq!(details, ["\"has_close_elements\" \"HumanEval(+) (built-in)\"", "\"shout_words\" \"mine.jsonl\""]);
    let s = stats(root, "run");
    assert_eq!(s["retrieve"]["synth_decontamination"]["contaminated"], 2, "{s}");
}

#[test]
fn embedded_fingerprints_match_what_the_script_builds_from_eval_data() {
    let built = fingerprints::build(&benchmarks_dir()).expect("build from eval/data");
    // If this fails after a change to eval/data, the tokenization or the format, rebuild the file:
    // `cargo run --release --example decontam_fingerprints`.
    assert!(built == Fingerprints::embedded_bytes(), "eval/fingerprints.bin is stale");
    assert!(built.len() < 600_000, "{} bytes", built.len());
}

#[test]
fn a_malformed_corpus_line_is_skipped_and_counted_or_stops_synth_with_strict() {
    let dir = tempdir();
    let corpus = dir.path().join("corpus.jsonl");
    let good = serde_json::json!({ "content": MINE, "path": "mine.py" }).to_string();
    std::fs::write(&corpus, format!("{good}\n{{\"content\": \"def f(x):\\n    return x\", broken\n")).expect("write");
    std::fs::write(dir.path().join("packages.txt"), "re\n").expect("write");
    let run = |out: &str, extra: &[&str]| {
        Command::new(bin())
            .arg("synth")
            .arg("--corpus")
            .arg(&corpus)
            .arg("--packages")
            .arg(dir.path().join("packages.txt"))
            .arg("--model")
            .arg(tiny_model_path())
            .args(["--max-tokens", "8", "--rounds", "0", "--tests-samples", "1", "--jobs", "1"])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .expect("run synth")
    };
    let where_ = format!("{} line 2: invalid JSON", corpus.display());

    let o = run("skip", &[]);
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(text.contains(&where_), "{text}");
    let s = stats(dir.path(), "skip");
    assert_eq!(s["retrieve"]["malformed_entries"], 1, "{s}");
    assert!(s["retrieve"]["malformed_examples"][0].as_str().unwrap_or("").starts_with(&where_), "{s}");
    assert_eq!(step(&s, "retrieved"), 1, "the good line is still used");

    let o = run("strict", &["--strict"]);
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains(&where_), "{text}");
    assert!(!dir.path().join("strict/dataset/records.jsonl").exists(), "no record from a stopped retrieval");
}

#[test]
fn a_run_directory_is_not_continued_as_another_shard_and_bad_out_or_prompt_dirs_fail_before_the_model() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("he0.py"), humaneval_0()).expect("write");
    let records = retrieve_records(root, &corpus);
    let keep = ["--decontaminate", "none"];
    let o = synth(root, &records, "s", &[&keep[..], &["--shard", "0/1"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stats(root, "s")["retrieve"]["synth_shard"], "0/1");
    let o = synth(root, &records, "s", &[&keep[..], &["--shard", "1/2"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holds a run of shard 0/1; this one is shard 1/2"), "{err}");
    // The same shard continues (here: finds everything done).
    assert!(synth(root, &records, "s", &keep).status.success());
    // Nor as the same part split another way (whole files rather than content), nor with both
    // --records and --shard-by file (a records file is split by content).
    let o = Command::new(bin())
        .args(["synth", "--model", "no-such-model", "--shard", "1/2", "--shard-by", "file", "--corpus"])
        .arg(&records)
        .arg("--out")
        .arg(root.join("s"))
        .output()
        .expect("run synth");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("holds a run of shard 0/1; this one is shard 1/2 by file"), "{err}");
    let o = synth(root, &records, "t", &["--shard", "0/2", "--shard-by", "file"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("--shard-by") && err.contains("--records"), "{err}");

    // Refused before the model loads: a model that does not exist would be the error otherwise.
    std::fs::write(root.join("a-file"), "").expect("write");
    std::fs::create_dir(root.join("notes")).expect("mkdir");
    std::fs::write(root.join("notes/todo.txt"), "mine").expect("write");
    let typo = root.join("prompts");
    std::fs::create_dir(&typo).expect("mkdir");
    std::fs::write(typo.join("synth_test.j2"), "{{ code }}").expect("write");
    for (args, wanted) in [
        (vec!["--out", "a-file"], "a-file is a file, not a directory"),
        (vec!["--out", "o", "--prompt-dir", "no-such-dir"], "--prompt-dir no-such-dir: no such directory"),
        (vec!["--out", "o", "--prompt-dir", "prompts"], "synth_test.j2 is not one of the templates (synth_tests.j2"),
        (vec!["--out", "notes"], "--out notes holds other files and no synth run"),
    ] {
        let o = Command::new(bin())
            .current_dir(root)
            .args(["synth", "--records", "records.jsonl", "--model", "/nonexistent/model.gguf"])
            .args(&args)
            .output()
            .expect("run synth");
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(wanted) && !err.contains("nonexistent"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(root.join("notes")).unwrap().count(), 1, "nothing written among the files");
    // A run directory inside a corpus folder of data files would read its own files back as corpus.
    let data = root.join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::copy(&records, data.join("corpus.jsonl")).expect("copy");
    for (retrieve, out) in [(false, "data/run"), (true, "data/again.jsonl")] {
        let cmd = if retrieve { "retrieve" } else { "synth" };
        let o = Command::new(bin())
            .current_dir(root)
            .args([cmd, "--corpus", "data", "--out", out])
            .args(if retrieve { vec![] } else { vec!["--model", "/nonexistent/model.gguf"] })
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("--out {out} is inside the corpus directory data")), "{err}");
    }
    // A source tree is read as .py files only: a run inside it is no corpus, and is allowed.
    let o = Command::new(bin()).current_dir(root).args(["retrieve", "--corpus", ".", "--out", "here.jsonl"]).output();
    assert_eq!(o.expect("run").status.code(), Some(0));
}

#[test]
fn a_records_line_that_does_not_compile_is_rejected_without_a_model_call_and_repeated_ids_are_named() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("mine.py"), MINE).expect("write");
    let records = retrieve_records(root, &corpus);
    let good = jsonl(&records).remove(0);
    let mut broken = good.clone();
    broken["id"] = Value::from("broken-1");
    broken["function"]["code"] = Value::from("def shout_words(text marker):\n    return text\n");
    // Line 3 repeats line 1 exactly (two files concatenated, say).
    std::fs::write(&records, format!("{good}\n{broken}\n{good}\n")).expect("write");

    let o = synth(root, &records, "run", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let id = good["id"].as_str().expect("id");
    assert!(
        err.contains(&format!("{} line 3: id {id} repeats line 1 (same code): skipped", records.display())),
        "{err}"
    );
    let rejected = jsonl(&root.join("run/rejected.jsonl"));
    let b = rejected.iter().find(|r| r["id"] == "broken-1").expect("the broken record is rejected");
    assert_eq!(
        (&b["rejected"]["stage"], &b["rejected"]["reason"]),
        (&Value::from("retrieve"), &Value::from("syntax_error"))
    );
    assert!(b["rejected"]["detail"].as_str().unwrap_or("").starts_with("does not compile: line 1:"), "{b}");
    assert!(b.get("tests").is_none() && b.get("discarded").is_none(), "no model call for it: {b}");
    let s = stats(root, "run");
    // The broken record is counted where it dropped out, not as contamination.
    let steps = (step(&s, "retrieved"), step(&s, "compiled"), step(&s, "decontaminated"));
    assert_eq!(steps, (2, 1, 1), "{s}");
    assert_eq!(s["rejected"]["retrieve/syntax_error"], 1, "{s}");
    assert_eq!(s["retrieve"]["synth_syntax_errors"], 1, "{s}");

    // The same id with other code: which one is meant cannot be told, so nothing runs.
    let mut edited = good.clone();
    edited["function"]["code"] = Value::from(MINE.replace("> 2", "> 3"));
    std::fs::write(&records, format!("{good}\n{broken}\n{edited}\n")).expect("write");
    let o = synth(root, &records, "clash", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{} lines 1 and 3: two records with id {id} but different code", records.display())),
        "{err}"
    );
    assert!(!root.join("clash/rejected.jsonl").exists(), "nothing written");

    // A corpus file given as --records is named as a corpus, and an empty one is said to be empty.
    let corpus_file = root.join("corpus.jsonl");
    std::fs::write(&corpus_file, format!("{}\n", serde_json::json!({"content": MINE}))).expect("write");
    let o = synth(root, &corpus_file, "corpus-as-records", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("corpus.jsonl line 1: a corpus entry") && err.contains("give the file as --corpus"), "{err}");
    let empty = root.join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let o = synth(root, &empty, "empty", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("empty.jsonl holds no records: there is nothing to synthesize"), "{err}");
}

#[test]
fn a_prompt_template_that_compiles_but_does_not_render_fails_before_the_model_loads() {
    let tmp = tempdir();
    let root = tmp.path();
    std::fs::write(root.join("records.jsonl"), "").expect("write");
    let prompts = root.join("prompts");
    std::fs::create_dir(&prompts).expect("mkdir");
    for (file, source) in
        [("synth_fix.j2", "Fix {{ code | no_such_filter }}"), ("synth_polish.j2", "{{ fucntion.name }}")]
    {
        let _ = std::fs::remove_file(prompts.join("synth_fix.j2"));
        let _ = std::fs::remove_file(prompts.join("synth_polish.j2"));
        std::fs::write(prompts.join(file), source).expect("write");
        let o = Command::new(bin())
            .current_dir(root)
            .args(["synth", "--records", "records.jsonl", "--model", "/nonexistent/model.gguf", "--out", "o"])
            .args(["--prompt-dir", "prompts"])
            .output()
            .expect("run synth");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("prompt template prompts/{file}: it does not render")), "{err}");
        assert!(!err.contains("nonexistent") && !root.join("o").exists(), "{err}");
    }
}

/// Functions whose libraries the interpreter lacks cannot pass any test: all of them is an error
/// before the model loads, naming the library; some of them a warning that says how many.
#[test]
fn functions_whose_libraries_are_not_installed_are_named_before_the_model_loads() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("a.py"), MINE).expect("write");
    let other = "import re\n\n\ndef count_words(text, least):\n    found = re.findall(r\"[a-z]+\", text.lower())\n    kept = [w for w in found if len(w) >= least]\n    return len(kept) if kept else -1\n";
    std::fs::write(corpus.join("b.py"), other).expect("write");
    let records = retrieve_records(root, &corpus);
    let lines: Vec<Value> = jsonl(&records);
    assert_eq!(lines.len(), 2);
    let with_missing = |n: usize| {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = r.clone();
                if i < n {
                    r["function"]["packages"] = serde_json::json!(["re", "unitcoder_no_such_module"]);
                }
                r.to_string() + "\n"
            })
            .collect();
        let path = root.join(format!("missing-{n}.jsonl"));
        std::fs::write(&path, text).expect("write");
        path
    };
    let all = synth(root, &with_missing(2), "all", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&all.stderr);
    assert_eq!(all.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2 of the 2 functions read import libraries that python3 cannot import: unitcoder_no_such_module (2 functions)")
            && err.contains("leave them out of the records file"),
        "{err}"
    );
    assert!(!root.join("all/stats.json").exists(), "nothing started");
    let some = synth(root, &with_missing(1), "some", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&some.stderr);
    assert_eq!(some.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: 1 of the 2 functions") && err.contains("rejected as `missing_library`"), "{err}");
    // Rejected before any model call, naming the library; the funnel says where it went.
    let rejected = jsonl(&root.join("some/rejected.jsonl"));
    let blocked: Vec<&Value> = rejected.iter().filter(|r| r["rejected"]["reason"] == "missing_library").collect();
    assert_eq!(blocked.len(), 1, "{rejected:?}");
    assert_eq!(blocked[0]["rejected"]["stage"], "retrieve");
    assert_eq!(blocked[0]["rejected"]["detail"], "unitcoder_no_such_module (not importable by python3)");
    assert!(blocked[0]["tests"].is_null() && blocked[0]["attempts"].as_array().is_none_or(|a| a.is_empty()));
    let s = stats(root, "some");
    assert_eq!((step(&s, "retrieved"), step(&s, "importable"), step(&s, "decontaminated")), (2, 1, 1), "{s}");
    assert_eq!(s["retrieve"]["synth_missing_libraries"]["unitcoder_no_such_module"], 1, "{s}");
    // The same --out on other input is another run: refused, naming both.
    let other = synth(root, &with_missing(0), "some", &["--decontaminate", "none"]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds a run of records ") && err.contains("missing-1.jsonl; this command reads records "),
        "{err}"
    );
    assert!(err.contains("missing-0.jsonl"), "{err}");
    // --limit counts functions that can run: with one to take, it takes the runnable one.
    let one = synth(root, &with_missing(1), "one", &["--decontaminate", "none", "--limit", "1", "--pick", "first"]);
    assert_eq!(one.status.code(), Some(0), "{}", String::from_utf8_lossy(&one.stderr));
    let taken = jsonl(&root.join("one/dataset/records.jsonl")).len()
        + jsonl(&root.join("one/rejected.jsonl"))
            .iter()
            .filter(|r| r["rejected"]["reason"] != "missing_library")
            .count();
    assert_eq!(taken, 1, "the runnable function was synthesized");
    assert!(step(&s, "tests_written") <= 1, "{s}");
    // A run where every library is there shows no such step.
    let none = synth(root, &with_missing(0), "none", &["--decontaminate", "none"]);
    assert_eq!(none.status.code(), Some(0), "{}", String::from_utf8_lossy(&none.stderr));
    assert!(stats(root, "none")["funnel"].as_array().unwrap().iter().all(|s| s["step"] != "importable"));
}

/// The interpreter a run's verdicts come from is recorded with its counts (and keys its cached
/// verdicts: `synth::cached_verdicts_are_reused_only_under_the_environment_they_were_found_in`).
#[test]
fn the_interpreter_and_its_libraries_are_recorded() {
    let tmp = tempdir();
    let root = tmp.path();
    let corpus = root.join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("a.py"), MINE).expect("write");
    let records = retrieve_records(root, &corpus);
    let first = synth(root, &records, "first", &["--decontaminate", "none"]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let p = &stats(root, "first")["retrieve"]["synth_python"];
    assert!(p["version"].as_str().is_some_and(|v| v.starts_with('3')), "{p}");
    assert!(p["digest"].as_str().is_some_and(|d| d.len() == 16) && p["distributions"].as_u64().is_some(), "{p}");
}
