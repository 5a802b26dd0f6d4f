//! The variants beside the main benchmarks: MBPP sanitized (its own prompts and `test_imports`) and
//! BigCodeBench's `instruct` split (natural-language instructions instead of a docstring to
//! complete). Prompts are built from the real data, a scripted chat model answers, and the answers
//! are extracted, executed in the sandbox and scored.

use crate::common::benchmarks_dir;
use unitcoder::engine::{Prompt, Scripted};
use unitcoder::eval::data::Dataset;
use unitcoder::eval::groundtruth;
use unitcoder::eval::program::JobSettings;
use unitcoder::eval::prompt::{build_prompt, PromptMode};
use unitcoder::eval::run::{generate, RunSettings};
use unitcoder::eval::score::{score, Sample};
use unitcoder::eval::{Benchmark, Split, Task};
use unitcoder::progress::Silent;
use unitcoder::sandbox::Sandbox;

fn load(b: Benchmark) -> Dataset {
    Dataset::load(b, &benchmarks_dir().join(b.default_file())).unwrap()
}

/// Generates two samples per task with a chat model that answers sample 0 with `right(task)` and
/// sample 1 with `wrong(task)`, each in a fenced block between prose; returns the pass flags.
fn answer_and_score(
    ds: &Dataset,
    split: Split,
    check_prompt: &dyn Fn(&Task, &str),
    right: &dyn Fn(&Task) -> String,
    wrong: &dyn Fn(&Task) -> String,
) -> Vec<bool> {
    // The model recognises each task by its prompt, as built for the split.
    let mut answers = Vec::new();
    for t in &ds.tasks {
        let Prompt::Chat(m) = build_prompt(t, PromptMode::Chat, split) else { panic!("expected a chat prompt") };
        check_prompt(t, &m[0].content);
        answers.push((m[0].content.clone(), right(t), wrong(t)));
    }
    let g = Scripted::new(move |r, i| {
        let Prompt::Chat(m) = &r.prompt else { panic!("expected a chat prompt") };
        let (_, good, bad) = answers.iter().find(|(p, _, _)| *p == m[0].content).expect("a known prompt");
        let code = if i == 0 { good } else { bad };
        format!("Sure. Here is the solution:\n```python\n{code}\n```\nIt handles every case.")
    });
    let settings = RunSettings { n: 2, split, mode: PromptMode::Chat, ..RunSettings::default() };
    let samples: Vec<Sample> = generate(ds, &g, &settings, &Silent).unwrap().into_iter().map(|g| g.sample).collect();
    let gt = groundtruth::load_or_compute(ds, "python3".as_ref(), 1, None, &Silent).unwrap();
    let sandbox = Sandbox::new(crate::common::sandbox_config(2)).unwrap();
    let r = score(ds, &gt, &samples, &sandbox, &JobSettings::default(), &Silent).unwrap();
    r.iter().map(|r| r.passed).collect()
}

#[test]
fn mbpp_sanitized_prompts_show_its_tests_and_its_test_imports_are_run() {
    let mut ds = load(Benchmark::MbppSanitized);
    assert_eq!(ds.tasks.len(), 257, "the sanitized test split");
    // 11: plain asserts; 82: the asserts need `import math` from `test_imports`.
    ds.tasks.retain(|t| t.task_id == "11" || t.task_id == "82");
    let sanitized_11 =
        "Write a python function to remove first and last occurrence of a given character from the string.";
    let check = |t: &Task, text: &str| {
        if t.task_id == "11" {
            assert!(text.contains(sanitized_11), "{text}");
            assert!(text.contains("assert remove_Occ(\"hello\",\"l\") == \"heo\""), "{text}");
        }
    };
    let right = |t: &Task| t.canonical.clone();
    // Same signature, wrong value: the first `return` returns something else.
    let wrong = |t: &Task| t.canonical.replacen("return ", "return 2 * ", 1);
    let passed = answer_and_score(&ds, Split::Complete, &check, &right, &wrong);
    assert_eq!(passed, [true, false, true, false]);
}

#[test]
fn bigcodebench_instruct_split_prompts_with_the_instruction_and_scores_the_program() {
    let mut ds = load(Benchmark::BigCodeBenchHard);
    // Tasks that need only the standard library, so CI's Python runs them.
    ds.tasks.retain(|t| t.task_id == "BigCodeBench/19" || t.task_id == "BigCodeBench/854");
    assert_eq!(ds.tasks.len(), 2);
    let check = |t: &Task, text: &str| {
        let instruct = t.instruct_prompt.as_deref().unwrap();
        assert!(text.contains(instruct.trim_end()), "{text}");
        // Not the complete split's docstring prompt.
        assert!(!text.contains(t.prompt.trim_end()), "{text}");
        if t.task_id == "BigCodeBench/19" {
            assert!(text.contains("Zips all files") && text.contains("def task_func(directory):"), "{text}");
        }
    };
    let right = |t: &Task| t.canonical.clone();
    // Returns None at the end instead of the result.
    let wrong =
        |t: &Task| t.canonical.rsplit_once("    return ").map(|(head, _)| format!("{head}    return None\n")).unwrap();
    let passed = answer_and_score(&ds, Split::Instruct, &check, &right, &wrong);
    assert_eq!(passed, [true, false, true, false]);
}

#[test]
fn bigcodebench_hard_from_the_full_set_is_its_148_hard_tasks_and_other_data_is_refused() {
    let hard = load(Benchmark::BigCodeBenchHard);
    let full_file = benchmarks_dir().join(Benchmark::BigCodeBench.default_file());
    let cut = Dataset::load(Benchmark::BigCodeBenchHard, &full_file).unwrap();
    assert_eq!(cut.tasks.len(), 148);
    let ids = |d: &Dataset| d.tasks.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&cut), ids(&hard));
    // Part of the full set, beyond Hard's size but without all of Hard: not Hard data.
    let dir = crate::common::tempdir();
    let text = String::from_utf8(unitcoder::eval::data::read_maybe_gz(&full_file).unwrap()).unwrap();
    let part = dir.path().join("part.jsonl");
    std::fs::write(&part, text.lines().take(300).collect::<Vec<_>>().join("\n")).unwrap();
    let e = Dataset::load(Benchmark::BigCodeBenchHard, &part).expect_err("refused").to_string();
    assert!(e.contains("part.jsonl") && e.contains("300 tasks") && e.contains("BigCodeBench-Hard's 148"), "{e}");
    // The full set under its own name stays whole.
    assert_eq!(Dataset::load(Benchmark::BigCodeBench, &full_file).unwrap().tasks.len(), 1140);
    // The Hard file is not the full benchmark: scored as one, its figure would carry the wrong name.
    let hard_file = benchmarks_dir().join(Benchmark::BigCodeBenchHard.default_file());
    let e = Dataset::load(Benchmark::BigCodeBench, &hard_file).expect_err("refused").to_string();
    assert!(e.contains("BigCodeBench-Hard's 148 tasks") && e.contains("--benchmark bigcodebench-hard"), "{e}");
}
