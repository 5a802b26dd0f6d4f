//! Stage 5 and the run's bookkeeping, with the scripted model of `synth.rs` and the real sandbox:
//! the dataset formats read back from JSONL.gz and Parquet equal the JSONL lines, also after a run
//! that stopped part-way and resumed; `merge` drops exact and near duplicates that sharding kept
//! apart, ending with the unsharded result, combines the shards' retrieve counts and refuses shards
//! made with other settings; and a run that dies without cleaning up still leaves its timings.

use crate::common::unitcoder;
use crate::synth::{outcome, read, retrieve_all, sandbox, scripted, settings, setup, write_corpus, Crashing, Setup};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use unitcoder::pipeline::emit::{self, Derived, Format};
use unitcoder::pipeline::journal::Journal;
use unitcoder::pipeline::record::{Record, Stage};
use unitcoder::pipeline::retrieve::{self, Packages, RetrieveSettings, RetrieveStats, Shard};
use unitcoder::pipeline::run_dir::{RunDir, RunSettings, RunTimings};
use unitcoder::pipeline::synth::{synthesize, SynthSettings};
use unitcoder::progress::Silent;

fn jsonl(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn field_json(f: &Field) -> Value {
    match f {
        Field::Str(s) => Value::from(s.as_str()),
        Field::Long(n) => Value::from(*n),
        // The quality scores: optional doubles.
        Field::Double(x) => Value::from(*x),
        Field::Null => Value::Null,
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(field_json).collect()),
        Field::Group(row) => {
            Value::Object(row.get_column_iter().map(|(k, v)| (k.clone(), field_json(v))).collect::<Map<_, _>>())
        }
        other => panic!("unexpected Parquet field {other:?}"),
    }
}

fn parquet_rows(path: &Path) -> Vec<Value> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader.get_row_iter(None).unwrap().map(|row| field_json(&Field::Group(row.unwrap()))).collect()
}

/// Every derived file of `dir` in every format, as JSON values, checked equal across formats.
fn formats_agree(dir: &RunDir) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for stem in Derived::ALL.map(Derived::name) {
        let base = dir.dataset().join(stem);
        let plain = jsonl(&std::fs::read_to_string(base.with_extension("jsonl")).unwrap());
        let mut gz = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(base.with_extension("jsonl.gz")).unwrap())
            .read_to_string(&mut gz)
            .unwrap();
        assert_eq!(jsonl(&gz), plain, "{stem}.jsonl.gz");
        assert_eq!(parquet_rows(&base.with_extension("parquet")), plain, "{stem}.parquet");
        all.push(plain);
    }
    all
}

const ALL: [Format; 3] = [Format::Jsonl, Format::JsonlGz, Format::Parquet];

#[test]
fn jsonl_gz_and_parquet_read_back_as_the_jsonl_lines_also_after_a_resume() {
    let s = setup();
    let full = RunDir::new(&s.root.join("full"));
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &full, &Silent).unwrap();
    emit::finalize_as(&full, None, &ALL).unwrap();
    let lines = formats_agree(&full);
    let count = |stem: &str| lines[Derived::ALL.iter().position(|d| d.name() == stem).unwrap()].len();
    // Every format has lines to compare: messages lists, integer rounds and multi-line strings.
    assert!(count("prefix_completion") >= 1 && count("instruction") >= 5 && count("dpo") >= 2, "{lines:?}");
    assert!(count("repair") >= 2);
    unit_tests_pairs_pass_as_the_sandbox_ran_them(
        &full,
        &lines[Derived::ALL.iter().position(|d| d.name() == "unit_tests").unwrap()],
    );

    // A run that stops part-way writes its formats from what is finished (as the CLI does), and the
    // resumed run rewrites them whole: nothing lost, nothing twice.
    let dir = RunDir::new(&s.root.join("resumed"));
    let crashing = Crashing { inner: scripted(), dir: dir.clone() };
    assert!(synthesize(s.records.clone(), &crashing, &sandbox(), &settings(), &dir, &Silent).is_err());
    emit::finalize_as(&dir, None, &ALL).unwrap();
    let partial = formats_agree(&dir);
    assert!(partial[1].len() < lines[1].len(), "the crash came before every record was accepted");
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &dir, &Silent).unwrap();
    // `finalize` keeps the formats the directory already has.
    assert_eq!(emit::formats_present(&dir), ALL);
    emit::finalize(&dir, None).unwrap();
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|x| x.to_string());
        v
    };
    let resumed = formats_agree(&dir);
    for (a, b) in resumed.into_iter().zip(lines) {
        assert_eq!(sorted(a), sorted(b));
    }

    // Asking for Parquet alone removes the other formats' files, which would go stale.
    emit::finalize_as(&dir, None, &[Format::Parquet]).unwrap();
    assert!(!dir.dataset().join("dpo.jsonl").exists() && dir.dataset().join("dpo.parquet").is_file());
    assert_eq!(emit::formats_present(&dir), [Format::Parquet]);
}

/// Every accepted record gives one `unit_tests` line: its program in the user turn and its kept suite
/// in the assistant's, and the pair passes in the sandbox, run as the line gives it.
fn unit_tests_pairs_pass_as_the_sandbox_ran_them(dir: &RunDir, lines: &[Value]) {
    let (accepted, _) = read(dir);
    assert_eq!(lines.len(), accepted.len());
    let fenced = |text: &str| -> String {
        let body = text.split_once("```python\n").expect("a python fence").1;
        body.rsplit_once("```").expect("a closing fence").0.to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    for (line, record) in lines.iter().zip(&accepted) {
        assert_eq!(line["id"], record.id.as_str());
        let (user, assistant) =
            (line["messages"][0]["content"].as_str().unwrap(), line["messages"][1]["content"].as_str().unwrap());
        assert!(user.contains(&format!("`{}`", record.function.name)), "{user}");
        let suite = fenced(assistant);
        assert_eq!(suite.trim_end(), record.tests.as_ref().unwrap().code.trim_end());
        let (code, tests) = (tmp.path().join("p.py"), tmp.path().join("t.py"));
        std::fs::write(&code, fenced(user)).unwrap();
        std::fs::write(&tests, &suite).unwrap();
        let out = unitcoder(&["check", "--code", code.to_str().unwrap(), "--tests", tests.to_str().unwrap(), "--json"]);
        let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["status"], "pass", "{}: {verdict}", record.id);
    }
}

/// A function that is an exact duplicate (up to whitespace) of the scripted `good`, and a long
/// function with a near duplicate (one constant changed).
fn write_duplicates(corpus: &Path) {
    let good = "import math\n\n\ndef good(x):\n    y = math.floor(x)\n    return y  +  1\n";
    std::fs::write(corpus.join("zz_good_again.py"), good).unwrap();
    let long = |k: u32| {
        format!(
            "import math\n\n\ndef spread(values, scale):\n    total = 0.0\n    for v in values:\n        \
             total += math.fabs(v) * scale\n    mean = total / max(len(values), 1)\n    spread = \
             [math.fabs(v * scale - mean) for v in values]\n    width = max(spread) if spread else 0.0\n    \
             return round(width + mean, {k})\n"
        )
    };
    std::fs::write(corpus.join("near_a.py"), long(3)).unwrap();
    std::fs::write(corpus.join("near_b.py"), long(4)).unwrap();
}

#[test]
fn merge_drops_duplicates_that_shards_kept_apart_and_ends_with_the_unsharded_result() {
    let s = setup();
    let corpus = s.root.join("corpus");
    write_corpus(&corpus);
    write_duplicates(&corpus);
    let packages = s.root.join("packages.txt");
    let all = retrieve_all(&corpus, &packages, Shard::ALL);
    assert_eq!(all.len(), s.records.len() + 1, "unsharded retrieval drops one exact and one near duplicate");
    let full = RunDir::new(&s.root.join("full"));
    synthesize(all, &scripted(), &sandbox(), &settings(), &full, &Silent).unwrap();

    // The smallest shard count that puts each duplicate pair's files apart.
    let (count, parts) = (2..12u64)
        .map(|n| {
            (n, (0..n).map(|i| retrieve_all(&corpus, &packages, Shard { index: i, count: n })).collect::<Vec<_>>())
        })
        .find(|(_, parts)| parts.iter().map(Vec::len).sum::<usize>() == s.records.len() + 3)
        .expect("some shard count splits both pairs");
    let mut shards = Vec::new();
    for (i, recs) in parts.into_iter().enumerate() {
        let dir = RunDir::new(&s.root.join(format!("shard{i}of{count}")));
        synthesize(recs, &scripted(), &sandbox(), &settings(), &dir, &Silent).unwrap();
        shards.push(dir);
    }
    let merged = RunDir::new(&s.root.join("merged"));
    let (stats, c) = emit::merge(&shards, &merged, &[Format::Jsonl, Format::Parquet]).unwrap();
    assert_eq!((c.exact_duplicates, c.near_duplicates), (1, 1), "{c:?}");
    assert_eq!(outcome(&merged), outcome(&full));
    let dropped = jsonl(&std::fs::read_to_string(merged.root.join("merge_duplicates.jsonl")).unwrap());
    let kinds: Vec<&str> = dropped.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"exact") && kinds.contains(&"near"));
    assert_eq!(stats.merge.as_ref().unwrap()["near_duplicates"], 1);
    assert!(merged.dataset().join("instruction.parquet").is_file());

    // Merging again (the output is an input too) changes nothing and counts no run twice.
    let (again, _) = emit::merge(&shards, &merged, &[Format::Jsonl]).unwrap();
    assert_eq!(outcome(&merged), outcome(&full));
    assert_eq!(again.runs, count);
    assert_eq!(read(&merged).0.len(), read(&full).0.len());
}

/// A generator that panics, like a process killed with no chance to write its last timings line.
struct Dying {
    inner: unitcoder::engine::Scripted,
    dir: RunDir,
}

impl unitcoder::engine::Generator for Dying {
    fn generate(
        &self,
        requests: &[unitcoder::engine::Request],
    ) -> Result<Vec<Vec<unitcoder::engine::Completion>>, unitcoder::engine::EngineError> {
        let lines = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default().lines().count();
        if lines(self.dir.rejected()) >= 1 {
            // Killed once the run has taken at least two snapshots (every 50 ms): a faster sandbox
            // once got here within the first 50 ms, with a single snapshot to check.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while lines(self.dir.timings()) < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("simulated kill");
        }
        self.inner.generate(requests)
    }
    fn model_id(&self) -> String {
        self.inner.model_id()
    }
    fn has_chat_template(&self) -> bool {
        true
    }
}

#[test]
fn a_run_that_dies_keeps_its_timings_up_to_the_last_snapshot() {
    let s = setup();
    let dir = RunDir::new(&s.root.join("run"));
    let dying = Dying { inner: scripted(), dir: dir.clone() };
    let every_step = SynthSettings { checkpoint_s: 0.0, ..settings() };
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        synthesize(s.records.clone(), &dying, &sandbox(), &every_step, &dir, &Silent)
    }));
    assert!(died.is_err(), "the generator panicked");
    let lines: Vec<RunTimings> = jsonl(&std::fs::read_to_string(dir.timings()).unwrap())
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert!(!lines.is_empty() && lines.iter().all(|t| !t.ended && t.run == lines[0].run), "{lines:?}");
    assert!(lines.len() >= 2, "a snapshot per step: {lines:?}");
    assert!(lines.last().unwrap().model_calls > 0);

    // The statistics count that run once, with its last snapshot, and say it did not end.
    let stats = emit::write_stats(&dir, None).unwrap();
    assert_eq!(stats.runs, 1);
    assert!(!stats.timings.ended);
    assert_eq!(stats.timings.model_calls, lines.last().unwrap().model_calls);
    // A resume adds a second run that ends.
    synthesize(s.records.clone(), &scripted(), &sandbox(), &every_step, &dir, &Silent).unwrap();
    let stats = emit::write_stats(&dir, None).unwrap();
    assert_eq!(stats.runs, 2);
    assert_eq!(stats.funnel.iter().find(|f| f.step == "retrieved").unwrap().count, s.records.len() as u64);
}

#[test]
fn repair_lines_carry_the_feedback_the_fix_prompt_showed_at_the_runs_length() {
    // The feedback length is a run setting; the repair format used to cut at a literal 1500.
    let s = setup();
    let dir = RunDir::new(&s.root.join("short"));
    let short = SynthSettings { feedback_chars: 120, ..settings() };
    synthesize(s.records.clone(), &scripted(), &sandbox(), &short, &dir, &Silent).unwrap();
    emit::finalize_as(&dir, None, &[Format::Jsonl]).unwrap();
    let repair = jsonl(&std::fs::read_to_string(dir.dataset().join("repair.jsonl")).unwrap());
    assert!(repair.len() >= 2, "{repair:?}");
    let records = jsonl(&std::fs::read_to_string(dir.records()).unwrap());
    for line in &repair {
        let fb = line["feedback"].as_str().unwrap();
        assert!(!fb.is_empty() && fb.chars().count() <= 200, "cut near the run's 120 characters: {fb:?}");
        let rec = records.iter().find(|r| r["id"] == line["id"]).unwrap();
        let attempt = rec["attempts"].as_array().unwrap().iter().find(|a| a["code"] == line["code"]).unwrap();
        assert_eq!(attempt["feedback"].as_str(), Some(fb), "the record keeps the text the model saw");
    }
}

/// A shard's run directory as `synth --shard` leaves it, without running the model: its functions
/// saved as rejected, with the retrieve counts and the settings the CLI records in `stats.json`.
fn shard_run(s: &Setup, name: &str, shard: Shard, settings: &SynthSettings) -> (RunDir, RetrieveStats) {
    run_of(s, &s.root.join("corpus"), name, shard, settings)
}

/// A run of `corpus` as [`shard_run`] makes one, its functions all taken (`synth_functions`).
fn run_of(s: &Setup, corpus: &Path, name: &str, shard: Shard, settings: &SynthSettings) -> (RunDir, RetrieveStats) {
    let mut rs = RetrieveSettings::new(vec![corpus.to_path_buf()]);
    rs.packages = Packages::load(&s.root.join("packages.txt")).unwrap();
    rs.shard = shard;
    let mut counts = RetrieveStats::default();
    let mut records: Vec<Record> = Vec::new();
    retrieve::retrieve(&rs, &mut counts, &Silent, &mut |r| {
        records.push(r);
        Ok(())
    })
    .unwrap();
    let dir = RunDir::new(&s.root.join(name));
    let taken = records.len();
    let (mut rejected, _) = Journal::open::<Record>(&dir.rejected()).unwrap();
    for mut r in records {
        r.reject(Stage::Tests, "no_tests_extracted", "");
        rejected.append(&r).unwrap();
    }
    let mut json = serde_json::to_value(&counts).unwrap();
    json["picked"] = serde_json::json!({"by": "testable", "candidates": counts.kept, "kept": counts.kept});
    json["synth_shard"] = serde_json::json!(shard.to_string());
    json["synth_functions"] = serde_json::json!(taken);
    json["synth_python"] = serde_json::json!({"version": "3.11.7", "executable": "/usr/bin/python3", "digest": "aaaa", "distributions": 9});
    emit::write_stats(&dir, Some(json)).unwrap();
    assert_eq!(emit::record_settings(&dir, &settings.run_settings("scripted", true, Vec::new())).unwrap(), None);
    (dir, counts)
}

/// Two finished runs that both did some functions merge into a finished run: the duplicates the merge
/// drops are done, not still to do (the merged report and card said "Not finished" of it). A run
/// that stopped part-way leaves the merge not finished by exactly what it has left.
#[test]
fn a_merge_is_finished_when_its_runs_are_whatever_duplicates_it_drops() {
    let s = setup();
    let (whole, _) = shard_run(&s, "whole", Shard::ALL, &settings());
    let part = s.root.join("part");
    std::fs::create_dir(&part).unwrap();
    for entry in std::fs::read_dir(s.root.join("corpus")).unwrap().take(3) {
        let path = entry.unwrap().path();
        std::fs::copy(&path, part.join(path.file_name().unwrap())).unwrap();
    }
    let (again, counts) = run_of(&s, &part, "again", Shard::ALL, &settings());
    assert!(counts.kept >= 2, "{counts:?}");
    let merged = RunDir::new(&s.root.join("merged"));
    let (stats, c) = emit::merge(&[whole.clone(), again.clone()], &merged, &[Format::Jsonl]).unwrap();
    assert_eq!((c.same_id, c.kept), (counts.kept, s.records.len() as u64), "{c:?}");
    assert_eq!(stats.to_do(), Some(stats.finished()));
    let report = |dir: &RunDir| {
        let o = unitcoder(&["report", dir.root.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let card = std::fs::read_to_string(dir.dataset().join("README.md")).unwrap();
        (std::fs::read_to_string(dir.root.join("report.md")).unwrap(), card)
    };
    let (md, card) = report(&merged);
    assert!(!md.contains("Not finished") && !card.contains("Not finished"), "{md}");

    // The second run stopped before its last function: the merge of it alone has that one to do.
    let lines = std::fs::read_to_string(again.rejected()).unwrap();
    let kept: Vec<&str> = lines.lines().collect();
    std::fs::write(again.rejected(), format!("{}\n", kept[..kept.len() - 1].join("\n"))).unwrap();
    let alone = RunDir::new(&s.root.join("alone"));
    let (stats, _) = emit::merge(&[again], &alone, &[Format::Jsonl]).unwrap();
    assert_eq!(stats.to_do(), Some(counts.kept));
    let (md, _) = report(&alone);
    let note = format!("**Not finished:** {} of the {} functions", counts.kept - 1, counts.kept);
    assert!(md.contains(&note), "{md}");
}

/// The smallest shard count that gives every shard a function of the scripted corpus.
fn shard_count(s: &Setup) -> u64 {
    let packages = s.root.join("packages.txt");
    (2..12u64)
        .find(|&n| {
            (0..n).all(|i| !retrieve_all(&s.root.join("corpus"), &packages, Shard { index: i, count: n }).is_empty())
        })
        .expect("some shard count gives every shard a function")
}

#[test]
fn merge_combines_the_shards_retrieve_counts_and_settings_and_refuses_shards_made_differently() {
    let s = setup();
    let n = shard_count(&s);
    let (mut shards, mut parts) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (dir, counts) = shard_run(&s, &format!("shard{i}"), Shard { index: i, count: n }, &settings());
        shards.push(dir);
        parts.push(counts);
    }
    let merged = RunDir::new(&s.root.join("merged"));
    let (stats, _) = emit::merge(&shards, &merged, &[Format::Jsonl]).unwrap();
    let r = stats.retrieve.as_ref().expect("the merged run keeps the shards' retrieve counts");
    let kept: u64 = parts.iter().map(|p| p.kept).sum();
    assert_eq!(kept, s.records.len() as u64);
    assert_eq!(r["kept"], kept, "{r}");
    assert_eq!(r["files_parsed"], parts.iter().map(|p| p.files_parsed).sum::<u64>(), "{r}");
    // Every shard read every file: the merged run read them once and left none to other shards.
    assert_eq!((r["files_read"].as_u64(), r["files_other_shards"].as_u64()), (Some(parts[0].files_read), Some(0)));
    assert_eq!(r["corpus"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["picked"]["kept"], kept, "{r}");
    assert_eq!(r["shard"], (0..n).map(|i| format!("{i}/{n}")).collect::<Vec<_>>().join(", "));
    assert_eq!(stats.settings, Some(settings().run_settings("scripted", true, Vec::new())));
    // Merging again (the output is an input too) counts no shard twice.
    let (again, _) = emit::merge(&shards, &merged, &[Format::Jsonl]).unwrap();
    assert_eq!(again.retrieve.as_ref().unwrap()["kept"], kept);
    assert_eq!(again.retrieve, stats.retrieve);
    // The report of the merged run has its input section and names the model.
    let report = unitcoder(&["report", merged.root.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    let md = std::fs::read_to_string(merged.root.join("report.md")).unwrap();
    assert!(md.contains("## Input") && md.contains(&format!("{kept} functions picked")), "{md}");
    assert!(md.contains("Model `scripted` (chat template)") && md.contains("at most 512 tokens"), "{md}");
    // All the shards merged: nothing to say. Some: which are missing. Split two ways: a warning.
    let cli_merge = |dirs: &[&RunDir], out: &str| {
        let mut args: Vec<String> = vec!["merge".into()];
        args.extend(dirs.iter().map(|d| d.root.display().to_string()));
        args.extend(["--out".into(), s.root.join(out).display().to_string()]);
        let o = unitcoder(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = cli_merge(&shards.iter().collect::<Vec<_>>(), "all");
    assert!(!err.contains("note:") && !err.contains("warning:"), "{err}");
    let err = cli_merge(&[&shards[0]], "partial");
    let not_yet = (1..n).map(|i| format!("{i}/{n}")).collect::<Vec<_>>().join(", ");
    assert!(err.contains(&format!("note: 1 of the {n} shards is merged; not yet: {not_yet}")), "{err}");
    let (other, _) = shard_run(&s, "other", Shard { index: 0, count: n + 1 }, &settings());
    let err = cli_merge(&[&shards[1], &other], "two-ways");
    assert!(err.contains(&format!("warning: the runs were split different ways (0/{}, 1/{n})", n + 1)), "{err}");
    // A shard whose programs ran under another Python environment: merged, with a warning naming both.
    let (py2, _) = shard_run(&s, "py2", Shard { index: 1, count: n }, &settings());
    let mut st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(py2.stats()).unwrap()).unwrap();
    st["retrieve"]["synth_python"]["digest"] = "bbbb".into();
    std::fs::write(py2.stats(), st.to_string()).unwrap();
    let err = cli_merge(&[&shards[0], &py2], "two-pythons");
    assert!(err.contains("warning: the runs checked their programs under 2 different Python environments"), "{err}");
    assert!(err.contains("(distributions aaaa)") && err.contains("(distributions bbbb)"), "{err}");

    // A shard made with another answer length is refused, naming it and the difference, before
    // anything is written.
    let (short, _) =
        shard_run(&s, "short", Shard { index: 1, count: n }, &SynthSettings { max_tokens: 64, ..settings() });
    let mixed = RunDir::new(&s.root.join("mixed"));
    let err = emit::merge(&[shards[0].clone(), short.clone()], &mixed, &[Format::Jsonl]).unwrap_err().to_string();
    assert!(err.contains(&short.stats().display().to_string()) && err.contains("max_tokens: 64 vs 512"), "{err}");
    assert!(!mixed.root.exists(), "nothing written");
    let o = unitcoder(&[
        "merge",
        shards[0].root.to_str().unwrap(),
        short.root.to_str().unwrap(),
        "--out",
        mixed.root.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("max_tokens: 64 vs 512"));
    // A resume with other settings records them and hands back the ones before.
    let before = emit::record_settings(&short, &settings().run_settings("scripted", true, Vec::new())).unwrap();
    assert_eq!(before.map(|b| b.max_tokens), Some(64));
}

#[test]
fn a_run_resumed_with_other_settings_keeps_every_set_and_merge_and_report_see_it() {
    let s = setup();
    let (a, _) = shard_run(&s, "a", Shard { index: 0, count: 2 }, &settings());
    let (b, _) = shard_run(&s, "b", Shard { index: 1, count: 2 }, &SynthSettings { max_tokens: 64, ..settings() });
    let (first, later) = (
        SynthSettings { max_tokens: 64, ..settings() }.run_settings("scripted", true, Vec::new()),
        settings().run_settings("scripted", true, Vec::new()),
    );
    // b resumed with a's settings, then again with them, then back to its first: each set once, and
    // a set no record was finished with leaves no trace.
    let record = |now: &RunSettings, earlier: Vec<&RunSettings>, made_with: &RunSettings| {
        emit::record_settings(&b, now).unwrap();
        let st = emit::read_stats(&b).unwrap().unwrap();
        assert_eq!((st.settings.as_ref(), st.earlier_settings.iter().collect::<Vec<_>>()), (Some(now), earlier));
        assert_eq!(st.made_with().0, Some(made_with));
    };
    record(&later, vec![&first], &first);
    record(&later, vec![&first], &first);
    // Nothing was finished with `later`: its records are all `first`'s, and merge would take it.
    let alike = RunDir::new(&s.root.join("alike"));
    let err = emit::merge(&[a.clone(), b.clone()], &alike, &[Format::Jsonl]).unwrap_err().to_string();
    assert!(err.contains("max_tokens: 64 vs 512") && !err.contains("resumed"), "{err}");
    // The run ends: its stats.json takes back the settings it finished nothing with.
    emit::settle_settings(&b).unwrap();
    let st = emit::read_stats(&b).unwrap().unwrap();
    assert_eq!((st.settings.as_ref(), st.earlier_settings.len()), (Some(&first), 0));
    record(&first, vec![], &first);
    record(&later, vec![&first], &first);
    // One record finished with `later`: from now on the run was made with both.
    let (mut rejected, _) = Journal::open::<Record>(&b.rejected()).unwrap();
    let mut extra = Journal::read::<Record>(&b.rejected()).unwrap().remove(0);
    extra.id = "made-with-later".into();
    rejected.append(&extra).unwrap();
    drop(rejected);
    emit::write_stats(&b, None).unwrap();
    record(&first, vec![&later], &first);
    record(&later, vec![&first], &later);
    // Rewriting the statistics (a finalize, as every run ends with) keeps them.
    emit::finalize(&b, None).unwrap();
    assert_eq!(emit::read_stats(&b).unwrap().unwrap().earlier_settings, std::slice::from_ref(&first));

    // Its latest settings equal a's, but its records were made with two sets: refused.
    let merged = RunDir::new(&s.root.join("merged"));
    let err = emit::merge(&[a.clone(), b.clone()], &merged, &[Format::Jsonl]).unwrap_err().to_string();
    assert!(err.contains(&b.stats().display().to_string()) && err.contains("resumed with other settings"), "{err}");
    assert!(err.contains("max_tokens: 64 vs 512"), "{err}");
    assert!(!merged.root.exists(), "nothing written");
    let report = unitcoder(&["report", b.root.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    let md = std::fs::read_to_string(b.root.join("report.md")).unwrap();
    assert!(md.contains("**Mixed settings:**") && md.contains("max_tokens: 64 vs 512"), "{md}");

    // A stats.json of an older version (no `earlier_settings`) still reads, as one set.
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(a.stats()).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("earlier_settings");
    std::fs::write(a.stats(), old.to_string()).unwrap();
    assert!(emit::read_stats(&a).unwrap().unwrap().earlier_settings.is_empty());
}

#[test]
fn report_and_merge_name_a_corrupt_stats_file_a_missing_directory_and_a_shard_given_as_out() {
    let s = setup();
    let (a, _) = shard_run(&s, "a", Shard { index: 0, count: 2 }, &settings());
    let (b, _) = shard_run(&s, "b", Shard { index: 1, count: 2 }, &settings());
    let path = |d: &RunDir| d.root.to_str().unwrap().to_string();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    // --out naming one of the shards would rewrite it in place: refused, the shard untouched.
    let before = std::fs::read_to_string(a.rejected()).unwrap();
    let o = unitcoder(&["merge", &path(&a), &path(&b), "--out", &path(&a)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is also one of the shards"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(a.rejected()).unwrap(), before);

    // A shard named twice (here by two spellings), or an --out holding other files and no run, is
    // refused before anything is written (they were merged once, and among the files).
    let notes = s.root.join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "mine").unwrap();
    let twice = format!("{}/../{}", path(&a), a.root.file_name().unwrap().to_str().unwrap());
    let fresh = s.root.join("fresh").display().to_string();
    for (args, says) in [
        (vec!["merge", &path(&a), &twice, "--out", &fresh], "is given twice"),
        (vec!["merge", &path(&a), &path(&b), "--out", notes.to_str().unwrap()], "holds other files and no synth run"),
    ] {
        let o = unitcoder(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    assert!(!s.root.join("fresh").exists());
    assert_eq!(std::fs::read_dir(&notes).unwrap().count(), 1);

    let missing = s.root.join("no_such_run").display().to_string();
    for args in [vec!["report", missing.as_str()], vec!["merge", missing.as_str(), "--out", "x"]] {
        let o = unitcoder(&args);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("no_such_run: no such directory"), "{}", stderr(&o));
    }

    // A stats.json cut short holds the retrieve counts and settings that the records do not: an
    // error naming it, not a report without them.
    std::fs::write(b.stats(), "{\"broken").unwrap();
    let out = s.root.join("merged").display().to_string();
    for args in [vec!["report", &path(&b)], vec!["merge", &path(&a), &path(&b), "--out", &out]] {
        let o = unitcoder(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains(&b.stats().display().to_string()) && stderr(&o).contains("not valid statistics"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read_to_string(b.stats()).unwrap(), "{\"broken", "left as it was");
}
