//! Generation for `eval run`: builds each task's prompt, asks the [`Generator`] for `n` samples in
//! batches of tasks, and turns replies into complete programs (prompt + completion for base models,
//! extracted code for chat models).

use super::benchmark::{Split, Task};
use super::data::Dataset;
use super::prompt::{build_prompt, stops_for, PromptMode};
use super::score::Sample;
use super::EvalError;
use crate::engine::{Generator, Prompt, Request, SamplingParams};
use crate::pipeline::journal::Journal;
use crate::progress::Reporter;
use crate::python::extract::{solution_for, with_prompt_imports};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Generation settings for one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Samples per task.
    pub n: usize,
    pub params: SamplingParams,
    pub mode: PromptMode,
    pub split: Split,
    /// Tasks per generator call (each call decodes `batch_tasks * n` sequences).
    pub batch_tasks: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            n: 1,
            params: SamplingParams::default(),
            mode: PromptMode::Auto,
            split: Split::Complete,
            batch_tasks: 8,
        }
    }
}

/// A generated sample with the model's raw reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    #[serde(flatten)]
    pub sample: Sample,
    /// What the model was asked, as sent: the chat messages (before the model's chat template) or
    /// the text to continue. Kept so that a run can be audited and replayed against another engine.
    pub prompt: Prompt,
    /// The text the model produced, before extraction.
    pub raw: String,
}

/// Generates `settings.n` samples for every task of `dataset`.
pub fn generate(
    dataset: &Dataset,
    generator: &dyn Generator,
    settings: &RunSettings,
    reporter: &dyn Reporter,
) -> Result<Vec<Generated>, EvalError> {
    let mut out = Vec::with_capacity(dataset.tasks.len() * settings.n);
    generate_into(
        dataset,
        generator,
        settings,
        &HashSet::new(),
        &AtomicBool::new(false),
        &mut |g| {
            out.push(g);
            Ok(())
        },
        reporter,
    )?;
    Ok(out)
}

/// Generates `settings.n` samples for every task of `dataset` not in `done`, handing each to `sink`
/// as soon as its batch is answered (so that a caller can write it down before the next batch).
/// When `cancel` is set (by a signal handler, say) no further batch starts and the run ends with
/// [`EvalError::Interrupted`].
/// Puts the first task's prompt to `generator` without generating ([`Generator::check_prompt`]), so
/// that a model that cannot take the prompts (a chat template that does not render) is found before
/// a run directory is bound to it.
pub fn check_first_prompt(
    dataset: &Dataset,
    generator: &dyn Generator,
    settings: &RunSettings,
) -> Result<(), EvalError> {
    let mode = settings.mode.resolve(generator.has_chat_template());
    let Some(task) = dataset.tasks.first() else { return Ok(()) };
    generator
        .check_prompt(&build_prompt(task, mode, settings.split))
        .map_err(|cause| EvalError::TaskGeneration { task_id: task.task_id.clone(), cause })
}

pub fn generate_into(
    dataset: &Dataset,
    generator: &dyn Generator,
    settings: &RunSettings,
    done: &HashSet<String>,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(Generated) -> Result<(), EvalError>,
    reporter: &dyn Reporter,
) -> Result<(), EvalError> {
    if settings.n == 0 {
        return Err(EvalError::Setting { setting: "-n".into(), problem: "must be at least 1".into() });
    }
    let mode = settings.mode.resolve(generator.has_chat_template());
    reporter.begin("generate", Some((dataset.tasks.len() * settings.n) as u64));
    let todo: Vec<&Task> = dataset.tasks.iter().filter(|t| !done.contains(&t.task_id)).collect();
    reporter.advance("generate", ((dataset.tasks.len() - todo.len()) * settings.n) as u64);
    for batch in todo.chunks(settings.batch_tasks.max(1)) {
        if cancel.load(Ordering::SeqCst) {
            reporter.end("generate");
            return Err(EvalError::Interrupted);
        }
        let requests: Vec<Request> = batch
            .iter()
            .map(|t| {
                let mut params = settings.params.clone();
                params.stop.extend(stops_for(t, mode, settings.split));
                Request::new(build_prompt(t, mode, settings.split), settings.n, params)
            })
            .collect();
        let replies = generator.generate_each(&requests);
        if replies.len() != batch.len() {
            return Err(EvalError::ShortAnswer { answered: replies.len(), asked: batch.len() });
        }
        // Every task answered goes to the sink, those after a failed one too: a rerun then asks
        // only for what failed. The first failure ends the run once the batch is written.
        let mut failure = None;
        for ((task, request), reply) in batch.iter().zip(&requests).zip(replies) {
            let completions = match reply {
                Ok(completions) => completions,
                Err(cause) => {
                    failure.get_or_insert(EvalError::TaskGeneration { task_id: task.task_id.clone(), cause });
                    continue;
                }
            };
            for (i, c) in completions.into_iter().enumerate() {
                let solution = to_program(task, &c.text, mode, settings.split);
                sink(Generated {
                    sample: Sample { task_id: task.task_id.clone(), index: i, solution },
                    prompt: request.prompt.clone(),
                    raw: c.text,
                })?;
            }
            reporter.advance("generate", settings.n as u64);
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
    reporter.end("generate");
    Ok(())
}

/// What shapes a run's samples. `eval run` keeps it as `generation.json` beside `samples.jsonl`, and
/// continues the samples already there only when it is unchanged: samples of two models or two
/// temperatures must never be scored as one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The model's id, as outputs record it (adapters included).
    pub model: String,
    /// The benchmark's name.
    pub benchmark: String,
    /// Where the benchmark's tasks came from, as given (for the reader: two paths to the same
    /// content continue one run, whichever was typed).
    pub data: String,
    /// The hash of the benchmark file's content, which a continued run must share.
    #[serde(default)]
    pub data_hash: String,
    /// Samples per task.
    pub n: usize,
    pub params: SamplingParams,
    pub mode: PromptMode,
    pub split: Split,
}

/// An `eval run` output directory's `samples.jsonl`, appended to as samples are generated (each line
/// whole and synced, see [`Journal`]): a run that stops, for whatever reason, keeps every task it
/// finished, and running the same command again generates only the rest.
pub struct SamplesFile {
    journal: Journal,
    /// The tasks that had all their samples in the file when it was opened.
    done: HashSet<String>,
}

impl SamplesFile {
    /// The samples file's name in an output directory.
    pub const NAME: &'static str = "samples.jsonl";
    /// The name of the file that records the run's [`RunIdentity`].
    pub const IDENTITY: &'static str = "generation.json";

    /// Opens (creating) `out/samples.jsonl` for a run of `identity` over `dataset`. Samples already
    /// there are kept when they were made by the same identity; a task with fewer than all its
    /// samples (a run stopped while writing them) is dropped from the file and generated again. A
    /// directory holding another run's samples is refused, naming what differs. Returns the file
    /// and the samples kept, in the benchmark's task order.
    pub fn open(
        out: &Path,
        identity: &RunIdentity,
        dataset: &Dataset,
    ) -> Result<(SamplesFile, Vec<Generated>), EvalError> {
        std::fs::create_dir_all(out).map_err(|e| EvalError::io(out, e))?;
        let path = out.join(Self::NAME);
        let id_path = out.join(Self::IDENTITY);
        let has_samples = std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false);
        let other_run = |problem: String| EvalError::Setting { setting: "--out".into(), problem };
        let now = serde_json::to_string_pretty(identity)
            .map_err(|cause| EvalError::Serialize { what: "the run's identity", cause })?;
        if !has_samples {
            // Nothing to continue (a new directory, or a run that failed before its first sample):
            // this run's identity replaces whatever was recorded.
            write_atomic(&id_path, now.as_bytes())?;
        } else {
            let bytes = match std::fs::read(&id_path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(other_run(format!(
                        "{} exists without {} (written by an older unitcoder or another tool), so what made its samples is unknown; choose another --out, or remove it to start over",
                        path.display(),
                        Self::IDENTITY
                    )))
                }
                Err(e) => return Err(EvalError::io(&id_path, e)),
            };
            let parse = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes);
            let then = parse(&bytes).map_err(|e| EvalError::data(&id_path, 0, e.to_string()))?;
            // Both sides through text: `to_value` would widen an f32 such as top_p 0.95 to
            // 0.949999988079071, which the file's 0.95 does not equal.
            let now =
                parse(now.as_bytes()).map_err(|cause| EvalError::Serialize { what: "the run's identity", cause })?;
            let (mut then, mut now) = (then, now);
            // What the data held decides, not how its path was spelled (a relative path, a copy):
            // the path is compared only for runs recorded before their data's hash was.
            if then.get("data_hash").is_some_and(|h| h.as_str().is_some_and(|h| !h.is_empty())) {
                for side in [&mut then, &mut now] {
                    if let Some(map) = side.as_object_mut() {
                        map.remove("data");
                    }
                }
            } else if let Some(map) = now.as_object_mut() {
                map.remove("data_hash");
            }
            let differs = differing_fields(&then, &now);
            if !differs.is_empty() {
                return Err(other_run(format!(
                    "{} holds samples of another run ({}); choose another --out, or remove the directory to start over",
                    out.display(),
                    differs.join("; ")
                )));
            }
        }

        let (journal, found) = Journal::open::<Generated>(&path)?;
        let known: HashSet<&str> = dataset.tasks.iter().map(|t| t.task_id.as_str()).collect();
        let mut unknown: Vec<&str> =
            found.iter().map(|g| g.sample.task_id.as_str()).filter(|t| !known.contains(t)).collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            return Err(other_run(format!(
                "{} has samples of {} task(s) this run does not have ({}{}): it was made with other data or a larger --limit",
                path.display(),
                unknown.len(),
                unknown.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if unknown.len() > 3 { ", …" } else { "" }
            )));
        }
        // A task counts as done only with each of its n samples exactly once.
        let mut by_task: HashMap<&str, Vec<&Generated>> = HashMap::new();
        for g in &found {
            by_task.entry(g.sample.task_id.as_str()).or_default().push(g);
        }
        let complete = |samples: &Vec<&Generated>| {
            let mut seen = vec![false; identity.n];
            samples.len() == identity.n
                && samples
                    .iter()
                    .all(|g| g.sample.index < identity.n && !std::mem::replace(&mut seen[g.sample.index], true))
        };
        let kept: Vec<Generated> = dataset
            .tasks
            .iter()
            .filter_map(|t| by_task.get(t.task_id.as_str()).filter(|s| complete(s)))
            .flat_map(|s| s.iter().map(|g| (*g).clone()))
            .collect();
        let done = kept.iter().map(|g| g.sample.task_id.clone()).collect();
        if kept.len() == found.len() {
            return Ok((SamplesFile { journal, done }, kept));
        }
        // Rewrite without the partial tasks before appending, so that they are not there twice.
        drop(journal);
        write_atomic(&path, &jsonl(&kept)?)?;
        let (journal, _) = Journal::open::<Generated>(&path)?;
        Ok((SamplesFile { journal, done }, kept))
    }

    /// The tasks that had all their samples when the file was opened.
    pub fn done(&self) -> &HashSet<String> {
        &self.done
    }

    /// Appends one sample, synced to disk.
    pub fn append(&mut self, g: &Generated) -> Result<(), EvalError> {
        Ok(self.journal.append(g)?)
    }

    /// Rewrites the file with `all` in the benchmark's task order (a continued run appends its tasks
    /// after the ones it kept), so that a continued run's file equals one written in one go.
    pub fn finish(self, dataset: &Dataset, mut all: Vec<Generated>) -> Result<Vec<Generated>, EvalError> {
        let order: HashMap<&str, usize> =
            dataset.tasks.iter().enumerate().map(|(i, t)| (t.task_id.as_str(), i)).collect();
        all.sort_by_key(|g| (order.get(g.sample.task_id.as_str()).copied().unwrap_or(usize::MAX), g.sample.index));
        let path = self.journal.path().to_path_buf();
        drop(self.journal);
        write_atomic(&path, &jsonl(&all)?)?;
        Ok(all)
    }
}

/// `field: `then` then, `now` now` for each top-level field of two JSON objects that differs.
fn differing_fields(then: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (then.as_object().unwrap_or(&empty), now.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    // A server model is the model it serves, wherever it was asked (see `model_identity`).
    let identity =
        |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(crate::engine::remote::model_identity);
    keys.into_iter()
        .filter(|k| {
            a.get(*k) != b.get(*k)
                && !(*k == "model" && identity(a.get(*k)).is_some() && identity(a.get(*k)) == identity(b.get(*k)))
        })
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("nothing".to_string(), |v| v.to_string());
            format!("{k}: {} then, {} now", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

fn jsonl(samples: &[Generated]) -> Result<Vec<u8>, EvalError> {
    let mut out = Vec::new();
    for g in samples {
        out.extend(serde_json::to_vec(g).map_err(|cause| EvalError::Serialize { what: "a sample", cause })?);
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes `path` whole or not at all (a temporary file beside it, then a rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    crate::atomic_file::write(path, bytes).map_err(|e| EvalError::io(path, e))
}

/// The program a reply stands for.
pub fn to_program(task: &Task, reply: &str, mode: PromptMode, split: Split) -> String {
    match mode {
        PromptMode::Chat => {
            let code = solution_for(reply, &task.entry_point);
            if task.prompt_is_code {
                with_prompt_imports(&task.prompt, &code)
            } else {
                code
            }
        }
        _ if task.prompt_is_code && split == Split::Complete => task.program_from_completion(reply),
        // MBPP's format: the code between [BEGIN] and [DONE]; the stop string ends it.
        _ => reply.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Completion, Scripted};
    use crate::eval::benchmark::{Benchmark, Oracle};

    fn dataset() -> Dataset {
        let task = |id: &str| Task {
            task_id: id.into(),
            prompt: "from typing import List\n\ndef f(x: List[int]) -> int:\n".into(),
            instruct_prompt: None,
            entry_point: "f".into(),
            canonical: String::new(),
            prompt_is_code: true,
            examples: Vec::new(),
            oracle: Oracle::Check { test: String::new() },
        };
        Dataset {
            benchmark: Benchmark::HumanEval,
            path: "x".into(),
            hash: "h".into(),
            tasks: vec![task("a"), task("b"), task("c")],
        }
    }

    #[test]
    fn chat_models_get_instructions_and_their_code_is_extracted() {
        let g = Scripted::new(|_, i| format!("Sure!\n```python\ndef f(x):\n    return {i}\nprint(f(1))\n```"));
        let s = RunSettings { n: 2, batch_tasks: 2, ..RunSettings::default() };
        let out = generate(&dataset(), &g, &s, &crate::progress::Silent).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out[1].sample.index, 1);
        assert_eq!(out[1].sample.solution, "from typing import List\ndef f(x):\n    return 1\n");
        let calls = g.calls();
        assert_eq!(calls.len(), 3);
        assert!(matches!(&calls[0].prompt, Prompt::Chat(m) if m[0].content.contains("def f(x: List[int])")));
        // Every sample records the prompt its task was sent, and it serializes as the messages.
        assert_eq!(out[1].prompt, calls[0].prompt);
        assert_eq!(out[2].prompt, calls[0].prompt);
        let line: serde_json::Value = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(line["prompt"]["chat"][0]["role"], "user");
        assert!(line["prompt"]["chat"][0]["content"].as_str().unwrap().contains("markdown code block"));
        assert_eq!(line["task_id"], "a");
    }

    #[test]
    fn base_models_continue_the_prompt_with_stop_strings() {
        let g = Scripted::new(|_, _| "    return sum(x)\n".into()).base_model();
        let out = generate(&dataset(), &g, &RunSettings::default(), &crate::progress::Silent).unwrap();
        assert!(out[0].sample.solution.ends_with("-> int:\n    return sum(x)\n"));
        let calls = g.calls();
        assert!(matches!(&calls[0].prompt, Prompt::Text(t) if t.ends_with("-> int:\n")));
        assert!(calls[0].params.stop.contains(&"\ndef ".to_string()));
        let line: serde_json::Value = serde_json::to_value(&out[2]).unwrap();
        assert!(line["prompt"]["text"].as_str().unwrap().ends_with("-> int:\n"));
        assert_eq!(line["task_id"], "c");
    }

    fn identity(model: &str) -> RunIdentity {
        RunIdentity {
            model: model.into(),
            benchmark: "humaneval".into(),
            data: "x".into(),
            data_hash: "h".into(),
            n: 2,
            params: SamplingParams::default(),
            mode: PromptMode::Auto,
            split: Split::Complete,
        }
    }

    fn reply(r: &Request, i: usize) -> String {
        let Prompt::Chat(m) = &r.prompt else { panic!("a chat prompt") };
        format!("```python\ndef f(x):\n    return {}\n```", m[0].content.len() + i)
    }

    /// A scripted model that fails every call holding task `b`'s prompt.
    struct FailingOnB(Scripted);

    impl Generator for FailingOnB {
        fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, crate::engine::EngineError> {
            if requests.iter().any(|r| matches!(&r.prompt, Prompt::Chat(m) if m[0].content.contains("def b("))) {
                return Err(crate::engine::EngineError::Request("refused".into()));
            }
            self.0.generate(requests)
        }
        fn model_id(&self) -> String {
            "failing".into()
        }
        fn has_chat_template(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_task_the_model_fails_on_is_named_and_the_others_of_its_batch_are_kept() {
        let mut ds = dataset();
        for t in &mut ds.tasks {
            t.prompt = format!("def {}(x):\n", t.task_id);
        }
        let s = RunSettings { n: 2, batch_tasks: 3, ..RunSettings::default() };
        let mut kept = Vec::new();
        let g = FailingOnB(Scripted::new(reply));
        let result = generate_into(
            &ds,
            &g,
            &s,
            &HashSet::new(),
            &AtomicBool::new(false),
            &mut |g| {
                kept.push((g.sample.task_id, g.sample.index));
                Ok(())
            },
            &crate::progress::Silent,
        );
        let err = result.unwrap_err().to_string();
        assert!(err.starts_with("generating for b: ") && err.contains("refused"), "{err}");
        assert_eq!(kept, [("a".to_string(), 0), ("a".to_string(), 1), ("c".to_string(), 0), ("c".to_string(), 1)]);
    }

    #[test]
    fn a_stopped_run_keeps_its_finished_tasks_and_the_same_command_generates_only_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (ds, id) = (dataset(), identity("m"));
        let s = RunSettings { n: 2, batch_tasks: 1, ..RunSettings::default() };
        let whole = generate(&ds, &Scripted::new(reply), &s, &crate::progress::Silent).unwrap();

        // The first run stops after task a's two samples and one of task b's.
        let (mut file, kept) = SamplesFile::open(dir.path(), &id, &ds).unwrap();
        assert!(kept.is_empty());
        let mut written = 0;
        let stop = generate_into(
            &ds,
            &Scripted::new(reply),
            &s,
            &HashSet::new(),
            &AtomicBool::new(false),
            &mut |g| {
                if written == 3 {
                    return Err(EvalError::ShortAnswer { answered: 0, asked: 1 });
                }
                written += 1;
                file.append(&g)
            },
            &crate::progress::Silent,
        );
        assert!(stop.is_err());
        drop(file);
        assert_eq!(std::fs::read_to_string(dir.path().join("samples.jsonl")).unwrap().lines().count(), 3);

        // Rerun: task a is kept, b's lone sample is dropped, and only b and c are asked for.
        let (mut file, mut all) = SamplesFile::open(dir.path(), &id, &ds).unwrap();
        assert_eq!(all, whole[..2].to_vec());
        let done = file.done().clone();
        assert_eq!(done, HashSet::from(["a".to_string()]));
        assert_eq!(std::fs::read_to_string(dir.path().join("samples.jsonl")).unwrap().lines().count(), 2);
        let g = Scripted::new(reply);
        let sink = &mut |x: Generated| -> Result<(), EvalError> {
            file.append(&x)?;
            all.push(x);
            Ok(())
        };
        generate_into(&ds, &g, &s, &done, &AtomicBool::new(false), sink, &crate::progress::Silent).unwrap();
        assert_eq!(g.calls().len(), 2);
        let all = file.finish(&ds, all).unwrap();
        assert_eq!(all, whole);
        let text = std::fs::read(dir.path().join("samples.jsonl")).unwrap();
        assert_eq!(text, jsonl(&whole).unwrap(), "a continued run's file equals one written in one go");
    }

    #[test]
    fn a_cancel_set_during_a_batch_lets_it_be_written_and_starts_no_other() {
        let ds = dataset();
        let s = RunSettings { n: 2, batch_tasks: 1, ..RunSettings::default() };
        let cancel = AtomicBool::new(false);
        let g = Scripted::new(reply);
        let mut kept = Vec::new();
        let result = generate_into(
            &ds,
            &g,
            &s,
            &HashSet::new(),
            &cancel,
            &mut |g| {
                // Set while the first batch's samples are handed on, as a signal arriving then.
                cancel.store(true, Ordering::SeqCst);
                kept.push(g.sample.task_id);
                Ok(())
            },
            &crate::progress::Silent,
        );
        assert!(matches!(result, Err(EvalError::Interrupted)), "{result:?}");
        assert_eq!(kept, ["a", "a"], "the batch in flight is whole");
        assert_eq!(g.calls().len(), 1, "no batch after the cancel");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_its_task_generated_again() {
        let dir = tempfile::tempdir().unwrap();
        let (ds, id) = (dataset(), identity("m"));
        let s = RunSettings { n: 2, ..RunSettings::default() };
        let whole = generate(&ds, &Scripted::new(reply), &s, &crate::progress::Silent).unwrap();
        drop(SamplesFile::open(dir.path(), &id, &ds).unwrap());
        let mut bytes = jsonl(&whole[..3]).unwrap();
        bytes.extend_from_slice(&serde_json::to_vec(&whole[3]).unwrap()[..20]);
        std::fs::write(dir.path().join("samples.jsonl"), bytes).unwrap();
        let (file, kept) = SamplesFile::open(dir.path(), &id, &ds).unwrap();
        assert_eq!(kept, whole[..2].to_vec());
        assert_eq!(file.done().len(), 1);
    }

    /// A run of model `model` in `dir` stopped after its first `written` samples (of task a's two);
    /// returns every sample a whole run makes.
    fn started_run(dir: &Path, model: &str, written: usize) -> Vec<Generated> {
        let ds = dataset();
        let (mut file, _) = SamplesFile::open(dir, &identity(model), &ds).unwrap();
        let settings = RunSettings { n: 2, ..RunSettings::default() };
        let whole = generate(&ds, &Scripted::new(reply), &settings, &crate::progress::Silent).unwrap();
        for g in &whole[..written] {
            file.append(g).unwrap();
        }
        whole
    }

    #[test]
    fn a_run_continues_on_the_same_data_under_another_path_and_not_on_other_data() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset();
        started_run(dir.path(), "m", 2);
        let moved = RunIdentity { data: "/elsewhere/x".into(), ..identity("m") };
        let (_, kept) = SamplesFile::open(dir.path(), &moved, &ds).expect("the same content, spelled otherwise");
        assert_eq!(kept.len(), 2);
        let edited = RunIdentity { data_hash: "other".into(), ..identity("m") };
        let e = SamplesFile::open(dir.path(), &edited, &ds).err().expect("other content is refused").to_string();
        assert!(e.contains("data_hash: \"h\" then, \"other\" now") && !e.contains("data:"), "{e}");
        // A run recorded before the hash was: its path still decides.
        let id_path = dir.path().join(SamplesFile::IDENTITY);
        let mut old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&id_path).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("data_hash");
        std::fs::write(&id_path, old.to_string()).unwrap();
        assert!(SamplesFile::open(dir.path(), &identity("m"), &ds).is_ok());
        let e = SamplesFile::open(dir.path(), &moved, &ds).err().expect("another path, no hash to tell").to_string();
        assert!(e.contains("data: \"x\" then"), "{e}");
    }

    #[test]
    fn a_server_run_continues_at_another_address_of_the_same_served_model() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset();
        started_run(dir.path(), "openai:http://10.0.0.1:8000/v1#qwen", 2);
        // The server restarted on another port, or asked on another node: the same run.
        let (_, kept) = SamplesFile::open(dir.path(), &identity("openai:http://127.0.0.1:9001/v1#qwen"), &ds).unwrap();
        assert_eq!(kept.len(), 2, "the first task's two samples are kept");
        // Another served model is another run.
        let e = SamplesFile::open(dir.path(), &identity("openai:http://10.0.0.1:8000/v1#llama"), &ds)
            .err()
            .expect("another served model is refused")
            .to_string();
        assert!(e.contains("model: \"openai:http://10.0.0.1:8000/v1#qwen\" then"), "{e}");
    }

    #[test]
    fn samples_of_another_run_are_refused_naming_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset();
        let whole = started_run(dir.path(), "small", 1);
        let e =
            SamplesFile::open(dir.path(), &identity("large"), &ds).err().expect("another model is refused").to_string();
        assert!(e.contains("--out") && e.contains("model: \"small\" then, \"large\" now"), "{e}");
        // The refused directory is left as it was.
        assert_eq!(std::fs::read_to_string(dir.path().join("samples.jsonl")).unwrap().lines().count(), 1);

        // Samples with no record of what made them (an older unitcoder's output) are refused too.
        std::fs::remove_file(dir.path().join(SamplesFile::IDENTITY)).unwrap();
        let e = SamplesFile::open(dir.path(), &identity("small"), &ds)
            .err()
            .expect("unknown origin is refused")
            .to_string();
        assert!(e.contains("without generation.json"), "{e}");

        // A run that failed before its first sample leaves nothing to protect: another run may use
        // the directory.
        let empty = tempfile::tempdir().unwrap();
        drop(SamplesFile::open(empty.path(), &identity("typo"), &ds).unwrap());
        let (_, kept) = SamplesFile::open(empty.path(), &identity("fixed"), &ds).unwrap();
        assert!(kept.is_empty());
        let recorded = std::fs::read_to_string(empty.path().join(SamplesFile::IDENTITY)).unwrap();
        assert!(recorded.contains("\"fixed\""), "{recorded}");

        // And samples of tasks this run does not have (other data, or a smaller --limit).
        let dir = tempfile::tempdir().unwrap();
        let (mut file, _) = SamplesFile::open(dir.path(), &identity("m"), &ds).unwrap();
        file.append(&whole[5]).unwrap();
        drop(file);
        let fewer = Dataset { tasks: ds.tasks[..2].to_vec(), ..dataset() };
        let e =
            SamplesFile::open(dir.path(), &identity("m"), &fewer).err().expect("unknown tasks are refused").to_string();
        assert!(e.contains("1 task(s) this run does not have (c)"), "{e}");
    }
}
