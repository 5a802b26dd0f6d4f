//! Generation for `eval run`: builds each task's prompt, asks the [`Generator`] for `n` samples in
//! batches of tasks, and turns replies into complete programs (prompt + completion for base models,
//! extracted code for chat models).

use super::benchmark::{Split, Task};
use super::data::Dataset;
use super::prompt::{build_prompt, stops_for, PromptMode};
use super::score::Sample;
use super::EvalError;
use crate::engine::{Generator, Prompt, Request, SamplingParams};
use crate::progress::Reporter;
use crate::python::extract::{solution_for, with_prompt_imports};
use serde::{Deserialize, Serialize};

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
    if settings.n == 0 {
        return Err(EvalError::Setting { setting: "-n".into(), problem: "must be at least 1".into() });
    }
    let mode = settings.mode.resolve(generator.has_chat_template());
    let mut out = Vec::with_capacity(dataset.tasks.len() * settings.n);
    reporter.begin("generate", Some((dataset.tasks.len() * settings.n) as u64));
    for batch in dataset.tasks.chunks(settings.batch_tasks.max(1)) {
        let requests: Vec<Request> = batch
            .iter()
            .map(|t| {
                let mut params = settings.params.clone();
                params.stop.extend(stops_for(t, mode, settings.split));
                Request { prompt: build_prompt(t, mode, settings.split), n: settings.n, params }
            })
            .collect();
        let replies = generator.generate(&requests)?;
        if replies.len() != batch.len() {
            return Err(EvalError::ShortAnswer { answered: replies.len(), asked: batch.len() });
        }
        for ((task, request), completions) in batch.iter().zip(&requests).zip(replies) {
            for (i, c) in completions.into_iter().enumerate() {
                let solution = to_program(task, &c.text, mode, settings.split);
                out.push(Generated {
                    sample: Sample { task_id: task.task_id.clone(), index: i, solution },
                    prompt: request.prompt.clone(),
                    raw: c.text,
                });
            }
            reporter.advance("generate", settings.n as u64);
        }
    }
    reporter.end("generate");
    Ok(out)
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
    use crate::engine::Scripted;
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
}
