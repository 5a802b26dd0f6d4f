//! The derived formats' lines, one list per format, from an accepted record: what a post-training
//! recipe reads.

use crate::pipeline::code;
use crate::pipeline::record::{AttemptKind, Record};
use serde_json::json;

/// The final program of an accepted record: polished when polish succeeded.
pub fn final_code(r: &Record) -> &str {
    r.polished
        .as_ref()
        .map(|p| p.code.as_str())
        .or(r.verified.as_ref().map(|v| v.code.as_str()))
        .unwrap_or(&r.function.code)
}

fn instruction(prefix: &str) -> String {
    format!("Complete the following Python function so that it does what its docstring says.\n\n```python\n{prefix}```")
}

/// The scores every derived line carries (null when not measured), so that a post-training recipe
/// can weight or filter examples by how much their tests check.
pub const SCORES: [&str; 3] = ["mutation_score", "line_coverage", "branch_coverage"];

/// The derived format lines of one accepted record: (file stem, line), each with the record's
/// [`SCORES`].
pub fn format_lines(r: &Record) -> Vec<(&'static str, serde_json::Value)> {
    let q = r.quality.as_ref();
    let scores = [q.and_then(|q| q.mutation_score), q.and_then(|q| q.line_coverage), q.and_then(|q| q.branch_coverage)];
    let mut out = lines_of(r);
    for (_, line) in out.iter_mut() {
        for (name, value) in SCORES.iter().zip(scores) {
            line[*name] = json!(value);
        }
    }
    out
}

fn lines_of(r: &Record) -> Vec<(&'static str, serde_json::Value)> {
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
    if let Some((p, c)) = &prefix {
        out.push(("prefix_completion", json!({"id": r.id, "prompt": p, "completion": c})));
    }
    out.push((
        "instruction",
        json!({"id": r.id, "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": format!("```python\n{code}```")},
        ]}),
    ));
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
        out.push(("dpo", json!({"id": r.id, "prompt": prompt, "chosen": v.code, "rejected": bad.code})));
    }
    for a in &failing {
        out.push((
            "repair",
            json!({"id": r.id, "round": a.round, "code": a.code, "tests": tests,
                   "feedback": repair_feedback(a), "fix": v.code}),
        ));
    }
    out
}

/// The feedback a fix prompt showed for a failing attempt; records written before attempts kept it
/// get it rebuilt from the verdict at the default length.
fn repair_feedback(a: &crate::pipeline::record::Attempt) -> String {
    if a.feedback.is_empty() {
        crate::pipeline::synth::feedback(&a.verdict, crate::pipeline::synth::SynthSettings::default().feedback_chars)
    } else {
        a.feedback.clone()
    }
}
