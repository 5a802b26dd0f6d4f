//! Prompt building: a base model continues the benchmark's code prompt; a chat model gets an
//! instruction asking for a self-contained solution in a fenced block (the evalplus wording), whose
//! code [`super::extract`] recovers. The mode follows the model's chat template unless overridden.

use super::benchmark::{Split, Task};
use crate::engine::{Message, Prompt};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How to prompt the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// Chat when the model has a chat template, completion otherwise.
    #[default]
    Auto,
    Completion,
    Chat,
}

impl FromStr for PromptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(PromptMode::Auto),
            "completion" | "base" => Ok(PromptMode::Completion),
            "chat" | "instruct" => Ok(PromptMode::Chat),
            other => Err(format!("unknown prompt mode `{other}` (auto, completion, chat)")),
        }
    }
}

impl PromptMode {
    /// Resolves `Auto` against the model.
    pub fn resolve(self, has_chat_template: bool) -> PromptMode {
        match self {
            PromptMode::Auto if has_chat_template => PromptMode::Chat,
            PromptMode::Auto => PromptMode::Completion,
            other => other,
        }
    }
}

/// Stop strings for base-model completion of a function body: the next top-level statement ends it.
pub const COMPLETION_STOPS: [&str; 6] = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "];

/// Stop string of the MBPP completion format.
pub const MBPP_DONE: &str = "[DONE]";

const INSTRUCTION: &str =
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:";

/// The prompt for `task` under a resolved mode (`Completion` or `Chat`).
pub fn build_prompt(task: &Task, mode: PromptMode, split: Split) -> Prompt {
    let problem = problem_text(task, split);
    match mode {
        PromptMode::Chat => {
            Prompt::Chat(vec![Message::new("user", format!("{INSTRUCTION}\n```\n{}\n```\n", problem.trim_end()))])
        }
        _ if task.prompt_is_code && split == Split::Complete => Prompt::Text(task.prompt.clone()),
        _ => Prompt::Text(format!("{problem}\n[BEGIN]\n")),
    }
}

/// The problem as shown to the model: the code prompt, the BigCodeBench instruction, or MBPP's text
/// with its tests (the MBPP paper's format).
fn problem_text(task: &Task, split: Split) -> String {
    if split == Split::Instruct {
        if let Some(p) = &task.instruct_prompt {
            return p.clone();
        }
    }
    if task.prompt_is_code {
        return task.prompt.clone();
    }
    format!(
        "You are an expert Python programmer, and here is your task: {} Your code should pass these tests:\n\n{}\n",
        task.prompt.trim(),
        task.examples.join("\n")
    )
}

/// Stop strings for a prompt built by [`build_prompt`].
pub fn stops_for(task: &Task, mode: PromptMode, split: Split) -> Vec<String> {
    match mode {
        PromptMode::Chat => Vec::new(),
        _ if task.prompt_is_code && split == Split::Complete => {
            COMPLETION_STOPS.iter().map(|s| s.to_string()).collect()
        }
        _ => vec![MBPP_DONE.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::benchmark::Oracle;

    fn task(prompt_is_code: bool) -> Task {
        Task {
            task_id: "t".into(),
            prompt: if prompt_is_code {
                "def f(x):\n    \"\"\"Double x.\"\"\"\n".into()
            } else {
                "Double a number.".into()
            },
            instruct_prompt: None,
            entry_point: "f".into(),
            canonical: String::new(),
            prompt_is_code,
            examples: vec!["assert f(2) == 4".into()],
            oracle: Oracle::Check { test: String::new() },
        }
    }

    #[test]
    fn auto_mode_follows_the_chat_template() {
        assert_eq!(PromptMode::Auto.resolve(true), PromptMode::Chat);
        assert_eq!(PromptMode::Auto.resolve(false), PromptMode::Completion);
        assert_eq!(PromptMode::Completion.resolve(true), PromptMode::Completion);
    }

    #[test]
    fn completion_prompts_are_the_code_itself() {
        let t = task(true);
        assert_eq!(build_prompt(&t, PromptMode::Completion, Split::Complete), Prompt::Text(t.prompt.clone()));
        assert!(stops_for(&t, PromptMode::Completion, Split::Complete).contains(&"\ndef ".to_string()));
    }

    #[test]
    fn chat_prompts_fence_the_problem_and_mbpp_shows_its_tests() {
        let Prompt::Chat(m) = build_prompt(&task(false), PromptMode::Chat, Split::Complete) else { panic!() };
        assert_eq!(m.len(), 1);
        assert!(m[0].content.starts_with(INSTRUCTION));
        assert!(m[0].content.contains("Double a number.") && m[0].content.contains("assert f(2) == 4"));
        let Prompt::Text(t) = build_prompt(&task(false), PromptMode::Completion, Split::Complete) else { panic!() };
        assert!(t.ends_with("[BEGIN]\n"));
    }
}
