//! The derived formats ([`Derived`]) and their typed lines ([`Row`]) from an accepted record: what a
//! post-training recipe reads. A line's fields are its format's columns, in order, for JSONL and
//! Parquet alike.

use crate::pipeline::code;
use crate::pipeline::record::{feedback, AttemptKind, Record, DEFAULT_FEEDBACK_CHARS};
use serde::Serialize;

/// The final program of an accepted record: polished when polish succeeded.
pub fn final_code(r: &Record) -> &str {
    r.polished
        .as_ref()
        .map(|p| p.code.as_str())
        .or(r.verified.as_ref().map(|v| v.code.as_str()))
        .unwrap_or(&r.function.code)
}

/// The user turn of the `unit_tests` format. The suite it answers defines only `TestCases`: a trainer
/// that runs the pair concatenates the program and the suite, as the sandbox did.
fn unit_tests_request(program: &str, name: &str) -> String {
    format!(
        "Write a `unittest` test suite for the function `{name}` below: a class \
         `TestCases(unittest.TestCase)` whose test methods call `{name}`, which is already defined.\n\n\
         ```python\n{}```",
        with_newline(program)
    )
}

fn with_newline(code: &str) -> String {
    if code.ends_with('\n') {
        code.to_string()
    } else {
        format!("{code}\n")
    }
}

fn instruction(prefix: &str) -> String {
    format!("Complete the following Python function so that it does what its docstring says.\n\n```python\n{prefix}```")
}

/// A derived dataset format: one file `NAME.EXT` in `dataset/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    /// Imports + signature + docstring → body (records with a docstring).
    PrefixCompletion,
    /// Chat messages: complete this documented function → the program.
    Instruction,
    /// A failing attempt (rejected) vs the passing fix (chosen), for fixed records.
    Dpo,
    /// Code + tests + feedback → fix, one line per failing step that led to the fix.
    Repair,
    /// Chat messages: write tests for this program → its kept suite, which the program passes (data
    /// for a model that writes unit tests, the step small models fail at; filter by the scores).
    UnitTests,
}

/// A column of a derived format.
#[derive(Debug, Clone, Copy)]
pub enum Column {
    /// A UTF-8 string field.
    Str(&'static str),
    /// An integer field.
    Int(&'static str),
    /// A list of `{role, content}` chat messages.
    Messages(&'static str),
    /// A number that may be null (the quality scores).
    Score(&'static str),
}

impl Column {
    /// The field's name.
    pub fn name(self) -> &'static str {
        match self {
            Column::Str(n) | Column::Int(n) | Column::Messages(n) | Column::Score(n) => n,
        }
    }
}

/// The scores every derived line carries (null when not measured), so that a post-training recipe
/// can weight or filter examples by how much their tests check.
const SCORES: [Column; 3] =
    [Column::Score("mutation_score"), Column::Score("line_coverage"), Column::Score("branch_coverage")];

impl Derived {
    /// Every derived format, in file order.
    pub const ALL: [Derived; 5] =
        [Derived::PrefixCompletion, Derived::Instruction, Derived::Dpo, Derived::Repair, Derived::UnitTests];

    /// The file stem.
    pub fn name(self) -> &'static str {
        match self {
            Derived::PrefixCompletion => "prefix_completion",
            Derived::Instruction => "instruction",
            Derived::Dpo => "dpo",
            Derived::Repair => "repair",
            Derived::UnitTests => "unit_tests",
        }
    }

    /// The columns (the keys of its JSON lines, in order).
    pub fn columns(self) -> Vec<Column> {
        use Column::*;
        let own: &[Column] = match self {
            Derived::PrefixCompletion => &[Str("id"), Str("prompt"), Str("completion")],
            Derived::Instruction | Derived::UnitTests => &[Str("id"), Messages("messages")],
            Derived::Dpo => &[Str("id"), Str("prompt"), Str("chosen"), Str("rejected")],
            Derived::Repair => &[Str("id"), Int("round"), Str("code"), Str("tests"), Str("feedback"), Str("fix")],
        };
        own.iter().chain(&SCORES).copied().collect()
    }
}

/// A chat message of the instruction format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// The fields of one line, by format (in [`Derived::columns`] order).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Line {
    PrefixCompletion { id: String, prompt: String, completion: String },
    Instruction { id: String, messages: Vec<Message> },
    Dpo { id: String, prompt: String, chosen: String, rejected: String },
    Repair { id: String, round: u32, code: String, tests: String, feedback: String, fix: String },
    UnitTests { id: String, messages: Vec<Message> },
}

/// One value of a line, in column order (what the Parquet writer takes).
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Str(&'a str),
    Int(i64),
    Messages(&'a [Message]),
    Score(Option<f64>),
}

/// One line of a derived format: its fields, then the record's quality scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub line: Line,
    pub mutation_score: Option<f64>,
    pub line_coverage: Option<f64>,
    pub branch_coverage: Option<f64>,
}

impl Row {
    /// The JSON line. Built as a `serde_json::Value`, like the lines were before rows were typed,
    /// so its key order (insertion or sorted, as serde_json is built) and bytes stay the same.
    pub fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }

    /// The format this line belongs to.
    pub fn derived(&self) -> Derived {
        match self.line {
            Line::PrefixCompletion { .. } => Derived::PrefixCompletion,
            Line::Instruction { .. } => Derived::Instruction,
            Line::Dpo { .. } => Derived::Dpo,
            Line::Repair { .. } => Derived::Repair,
            Line::UnitTests { .. } => Derived::UnitTests,
        }
    }

    /// The values in [`Derived::columns`] order.
    pub fn cells(&self) -> Vec<Cell<'_>> {
        use Cell::*;
        let mut out = match &self.line {
            Line::PrefixCompletion { id, prompt, completion } => vec![Str(id), Str(prompt), Str(completion)],
            Line::Instruction { id, messages } | Line::UnitTests { id, messages } => vec![Str(id), Messages(messages)],
            Line::Dpo { id, prompt, chosen, rejected } => vec![Str(id), Str(prompt), Str(chosen), Str(rejected)],
            Line::Repair { id, round, code, tests, feedback, fix } => {
                vec![Str(id), Int(i64::from(*round)), Str(code), Str(tests), Str(feedback), Str(fix)]
            }
        };
        out.extend([Score(self.mutation_score), Score(self.line_coverage), Score(self.branch_coverage)]);
        out
    }
}

/// The derived format lines of one accepted record, each with the record's scores.
pub fn format_lines(r: &Record) -> Vec<Row> {
    let q = r.quality.as_ref();
    lines_of(r)
        .into_iter()
        .map(|line| Row {
            line,
            mutation_score: q.and_then(|q| q.mutation_score),
            line_coverage: q.and_then(|q| q.line_coverage),
            branch_coverage: q.and_then(|q| q.branch_coverage),
        })
        .collect()
}

fn lines_of(r: &Record) -> Vec<Line> {
    let mut out = Vec::new();
    let code = final_code(r);
    let tests = r.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
    let prefix = code::split_at_docstring(code, &r.function.name);
    let prompt = match &prefix {
        Some((p, _)) => instruction(p),
        None => format!(
            "Write the Python function `{}` with this signature:\n\n```python\n{}\n```",
            r.function.name, r.function.signature
        ),
    };
    let id = || r.id.clone();
    if let Some((p, c)) = &prefix {
        out.push(Line::PrefixCompletion { id: id(), prompt: p.to_string(), completion: c.to_string() });
    }
    out.push(Line::Instruction {
        id: id(),
        messages: vec![
            Message { role: "user", content: prompt.clone() },
            Message { role: "assistant", content: format!("```python\n{code}```") },
        ],
    });
    if let Some(t) = &r.tests {
        out.push(Line::UnitTests {
            id: id(),
            messages: vec![
                Message { role: "user", content: unit_tests_request(code, &r.function.name) },
                Message { role: "assistant", content: format!("```python\n{}```", with_newline(&t.code)) },
            ],
        });
    }
    let Some(v) = &r.verified else {
        return out;
    };
    if v.original_passed {
        return out;
    }
    // Only failures against the kept tests as they finally are: the original also ran against tests
    // samples that were set aside, and against its suite before broken test functions were cut.
    let kept = r.tests.as_ref().map_or(0, |t| t.sample);
    let original = r.attempts.iter().rfind(|a| a.kind == AttemptKind::Original && a.sample == kept);
    let failing: Vec<_> = original
        .into_iter()
        .chain(r.attempts.iter().filter(|a| a.kind == AttemptKind::Fix))
        .filter(|a| !a.verdict.passed())
        .collect();
    if let Some(bad) = failing.last() {
        out.push(Line::Dpo { id: id(), prompt, chosen: v.code.clone(), rejected: bad.code.clone() });
    }
    for a in &failing {
        out.push(Line::Repair {
            id: id(),
            round: a.round,
            code: a.code.clone(),
            tests: tests.to_string(),
            feedback: repair_feedback(a),
            fix: v.code.clone(),
        });
    }
    out
}

/// The feedback a fix prompt showed for a failing attempt; records written before attempts kept it
/// get it rebuilt from the verdict at the default length.
fn repair_feedback(a: &crate::pipeline::record::Attempt) -> String {
    if a.feedback.is_empty() {
        feedback(&a.verdict, DEFAULT_FEEDBACK_CHARS)
    } else {
        a.feedback.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The typed rows serialize to the bytes the `serde_json::Value` lines they replaced had: the
    /// same keys in the same order, scores last, numbers and nulls alike.
    #[test]
    fn rows_serialize_as_the_json_lines_did() {
        let messages = vec![
            Message { role: "user", content: "p \"q\"\n".into() },
            Message { role: "assistant", content: "```python\nx```".into() },
        ];
        let cases = [
            (
                Line::Repair {
                    id: "r1".into(),
                    round: 2,
                    code: "c\n".into(),
                    tests: "t".into(),
                    feedback: "f".into(),
                    fix: "g".into(),
                },
                json!({"id": "r1", "round": 2u32, "code": "c\n", "tests": "t", "feedback": "f", "fix": "g"}),
            ),
            (
                Line::Instruction { id: "r2".into(), messages: messages.clone() },
                json!({"id": "r2", "messages": [
                    {"role": "user", "content": "p \"q\"\n"},
                    {"role": "assistant", "content": "```python\nx```"},
                ]}),
            ),
            (
                Line::Dpo { id: "r3".into(), prompt: "p".into(), chosen: "a".into(), rejected: "b".into() },
                json!({"id": "r3", "prompt": "p", "chosen": "a", "rejected": "b"}),
            ),
            (
                Line::PrefixCompletion { id: "r4".into(), prompt: "p".into(), completion: "c".into() },
                json!({"id": "r4", "prompt": "p", "completion": "c"}),
            ),
        ];
        for (line, mut old) in cases {
            let row = Row { line, mutation_score: Some(0.75), line_coverage: None, branch_coverage: Some(1.0) };
            for (name, value) in
                ["mutation_score", "line_coverage", "branch_coverage"].iter().zip([Some(0.75), None, Some(1.0)])
            {
                old[*name] = json!(value);
            }
            assert_eq!(serde_json::to_string(&row.to_json().unwrap()).unwrap(), serde_json::to_string(&old).unwrap());
            assert_eq!(row.cells().len(), row.derived().columns().len(), "{:?}", row.derived());
        }
    }
}
