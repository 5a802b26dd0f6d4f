//! Statistics of a synthesis run, computed from its record files (so they are the same after a
//! resume or a merge): the funnel per stage and per package, pass-by-round, the failure taxonomy of
//! every failing execution, why records were rejected or outputs set aside, tokens and seconds per
//! accepted program, and where the time went (model waiting on the sandbox and vice versa).

use crate::pipeline::record::{AttemptKind, Record, Stage};
use crate::pipeline::retrieve::Reject;
use crate::pipeline::run_dir::{RunSettings, RunTimings};
use crate::sandbox::{Status, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One step of the funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step's name.
    pub step: String,
    /// Records that reached it.
    pub count: u64,
}

/// The funnel of one package.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageFunnel {
    pub retrieved: u64,
    pub tests_written: u64,
    pub verified: u64,
    pub accepted: u64,
}

/// The statistics written to `stats.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SynthStats {
    /// Records through each stage, in order.
    pub funnel: Vec<Step>,
    /// The funnel per top-level package a function uses.
    pub per_package: BTreeMap<String, PackageFunnel>,
    /// Accepted records by the round that produced the passing program (0: original as written).
    pub pass_by_round: BTreeMap<u32, u64>,
    /// Rejections by `stage/reason`.
    pub rejected: BTreeMap<String, u64>,
    /// Failing executions (original and fixes) by failure class.
    pub failures: BTreeMap<String, u64>,
    /// Model outputs set aside before running, by `kind/reason`.
    pub discarded: BTreeMap<String, u64>,
    /// Test functions cut from the kept suites of accepted records: `broken` (they errored in the
    /// tests' own code) and `disagreeing` (the original failed them while passing the rest), with
    /// `records_with_disagreeing` the accepted records that lost at least one test that way; and,
    /// not cut but kept with the original's value as the expected one, `reconciled` (with
    /// `records_with_reconciled`).
    #[serde(default)]
    pub cut_tests: BTreeMap<String, u64>,
    /// Imports added to model-written tests that failed only for lack of them (`import os`), by
    /// statement, over every record whose last suite got one.
    #[serde(default)]
    pub imports_added: BTreeMap<String, u64>,
    /// Tokens generated for all records (tests, fixes, polish).
    pub tokens: u64,
    /// `tokens` divided by accepted records (none while nothing is accepted).
    pub tokens_per_accepted: Option<f64>,
    /// Wall seconds of all runs divided by accepted records (none while nothing is accepted).
    pub seconds_per_accepted: Option<f64>,
    /// The runs' timings, summed.
    pub timings: RunTimings,
    /// Number of runs (a resume adds one).
    pub runs: u64,
    /// The retrieve stage's own counts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieve: Option<serde_json::Value>,
    /// The settings that shaped the data (model, prompts, sampling, thresholds), when known: the
    /// latest run's (a resume records its own), or the shards' common ones for a merged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<RunSettings>,
    /// The other settings the run was made with before a resume changed them, each distinct set
    /// once, oldest first (none equal to `settings`). Not empty: the records were not all made
    /// alike, which `merge` refuses and `report` says. Absent from files of older versions, which
    /// kept only the latest settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_settings: Vec<RunSettings>,
    /// The records the run had finished when `settings` were recorded: settings a resume finished
    /// no record with are not among those its records were made with.
    #[serde(default)]
    pub settings_since: u64,
    /// What `unitcoder merge` joined and dropped as duplicates across shards, for a merged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<serde_json::Value>,
    /// The tests' quality scores over every scored record (accepted, or rejected by a threshold).
    #[serde(default)]
    pub quality: QualityStats,
    /// The `>>>` examples of accepted records' polished docstrings, checked against the function.
    #[serde(default)]
    pub docstring_examples: ExampleStats,
    /// The `Raises` entries of accepted records' polished docstrings, checked against the
    /// exceptions the function was seen to raise.
    #[serde(default)]
    pub docstring_raises: RaisesStats,
    /// The return types accepted records' polished docstrings claim, checked against what the
    /// function returned.
    #[serde(default)]
    pub docstring_returns: ReturnsStats,
    /// The parameter types accepted records' polished docstrings document, checked against the
    /// values the function took.
    #[serde(default)]
    pub docstring_params: ParamStats,
}

/// How the parameter types of accepted records' docstrings fared (see
/// [`crate::pipeline::code::types`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamStats {
    /// Accepted records whose polished docstring documents a parameter's type.
    pub docstrings: u64,
    /// Documented types: admitting every value passed, corrected to the types passed, or
    /// unchecked (not readable as a type, or the parameter never passed in a call that returned).
    pub found: u64,
    pub held: u64,
    pub corrected: u64,
    pub unchecked: u64,
}

/// How the return types of accepted records' docstrings fared (see
/// [`crate::pipeline::code::returns`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnsStats {
    /// Accepted records whose polished docstring claims a return type.
    pub claims: u64,
    /// It admits every value the function returned while its tests and examples ran.
    pub held: u64,
    /// It did not, and was replaced by the types returned.
    pub corrected: u64,
    /// It could not be read as a type, or nothing was returned to check it on.
    pub unchecked: u64,
}

/// How the `Raises` entries of accepted records fared (see [`crate::pipeline::code::raises`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisesStats {
    /// Accepted records whose polished docstring had a `Raises` section with entries.
    pub docstrings: u64,
    /// Their entries, and how many were kept (every exception they name was seen raised, or is
    /// raised by name in the function's code) or dropped.
    pub found: u64,
    pub kept: u64,
    pub dropped: u64,
}

/// How the docstring examples of accepted records fared (see
/// [`crate::pipeline::code::examples`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleStats {
    /// Accepted records whose polished docstring showed examples.
    pub docstrings: u64,
    /// Their examples, and how many of them held as written, were corrected to what the function
    /// gives, or were dropped.
    pub found: u64,
    pub kept: u64,
    pub corrected: u64,
    pub dropped: u64,
    /// Accepted records whose examples could not be made to hold, so they keep their verified,
    /// undocumented program.
    pub polish_set_aside: u64,
}

/// Bins of the score histograms: [0, 0.1), [0.1, 0.2), ... [0.9, 1].
pub const SCORE_BINS: usize = 10;

/// The distribution of the quality scores (see [`crate::pipeline::quality`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityStats {
    /// Records scored.
    pub scored: u64,
    /// Mutants run, and killed, over those records.
    pub mutants: u64,
    pub killed: u64,
    /// Records per tenth of mutation score, line coverage and branch coverage ([`SCORE_BINS`] each;
    /// a record without the score is not counted in its histogram).
    pub mutation_score: Vec<u64>,
    pub line_coverage: Vec<u64>,
    pub branch_coverage: Vec<u64>,
    /// Means over the records that have the score.
    pub mean_mutation_score: Option<f64>,
    pub mean_line_coverage: Option<f64>,
    pub mean_branch_coverage: Option<f64>,
}

impl QualityStats {
    fn compute<'a>(records: impl Iterator<Item = &'a Record>) -> QualityStats {
        let mut q = QualityStats {
            mutation_score: vec![0; SCORE_BINS],
            line_coverage: vec![0; SCORE_BINS],
            branch_coverage: vec![0; SCORE_BINS],
            ..QualityStats::default()
        };
        let mut sums = [(0.0, 0u64); 3];
        for r in records {
            let Some(x) = &r.quality else { continue };
            q.scored += 1;
            q.mutants += x.mutants as u64;
            q.killed += x.killed as u64;
            let hists = [&mut q.mutation_score, &mut q.line_coverage, &mut q.branch_coverage];
            for ((hist, sum), v) in
                hists.into_iter().zip(sums.iter_mut()).zip([x.mutation_score, x.line_coverage, x.branch_coverage])
            {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    hist[((v * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)] += 1;
                    sum.0 += v;
                    sum.1 += 1;
                }
            }
        }
        let mean = |(s, n): (f64, u64)| (n > 0).then(|| s / n as f64);
        (q.mean_mutation_score, q.mean_line_coverage, q.mean_branch_coverage) =
            (mean(sums[0]), mean(sums[1]), mean(sums[2]));
        q
    }
}

/// The last line of each run in `timings` (a run writes snapshots as it goes), in order of first
/// appearance; lines without a run id are each a run of their own.
pub fn last_of_each_run(timings: &[RunTimings]) -> Vec<&RunTimings> {
    let mut out: Vec<&RunTimings> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for t in timings {
        match at.get(t.run.as_str()) {
            Some(&i) if !t.run.is_empty() => out[i] = t,
            _ => {
                at.insert(&t.run, out.len());
                out.push(t);
            }
        }
    }
    out
}

/// The failure class of a verdict that is not a pass.
pub fn failure_class(v: &Verdict) -> String {
    if v.status == Status::Timeout {
        return "timeout".into();
    }
    match v.reason.as_deref().unwrap_or("unknown") {
        "assertion" => "assertion".into(),
        "memory" => "memory".into(),
        "ModuleNotFoundError" | "ImportError" => "import_error".into(),
        "no assertion executed" | "no tests ran" | "all tests skipped" | "vacuous" => "vacuous_tests".into(),
        r => format!("exception:{r}"),
    }
}

impl SynthStats {
    /// Statistics of `accepted` and `rejected` records and the runs' `timings`.
    /// The functions the run set out to finish (picked, and those dropped before synthesis), when
    /// known: more than [`SynthStats::finished`] while it is not done.
    pub fn to_do(&self) -> Option<u64> {
        // A merged run: its records and what its shards still have to do (the duplicates the merge
        // dropped are done, though they have no record here).
        if let Some(left) = self.merge.as_ref().and_then(|m| m.get("unfinished")).and_then(|u| u.as_object()) {
            return Some(self.finished() + left.values().filter_map(serde_json::Value::as_u64).sum::<u64>());
        }
        self.retrieve.as_ref()?.get("synth_functions")?.as_u64()
    }

    /// The records on disk (accepted and rejected), as the funnel's first step counts them.
    pub fn finished(&self) -> u64 {
        self.funnel.first().map_or(0, |s| s.count)
    }

    /// The settings the run's records were made with: the latest, and the earlier ones a resume
    /// replaced, oldest first. Settings recorded by a resume that has finished no record yet are
    /// not among them (the records are all the earlier ones').
    pub fn made_with(&self) -> (Option<&RunSettings>, &[RunSettings]) {
        match self.earlier_settings.split_last() {
            Some((last, rest)) if self.finished() == self.settings_since => (Some(last), rest),
            _ => (self.settings.as_ref(), &self.earlier_settings),
        }
    }

    pub fn compute(accepted: &[Record], rejected: &[Record], timings: &[RunTimings]) -> SynthStats {
        let mut s = SynthStats::default();
        let all = || accepted.iter().chain(rejected.iter());
        let count = |f: &dyn Fn(&Record) -> bool| all().filter(|r| f(r)).count() as u64;
        // Records the quality step rejected had passed every earlier step.
        let past_vacuity = |r: &Record| r.rejected.as_ref().is_none_or(|j| j.stage == Stage::Quality);
        let scored = count(&|r| r.quality.is_some());
        // Dropped at synth's own retrieve-stage checks: its code did not compile (a records file's
        // function) or it overlaps a benchmark.
        let at_retrieve = |r: &Record| r.rejected.as_ref().is_some_and(|j| j.stage == Stage::Retrieve);
        let not_compiling = |r: &Record| {
            r.rejected.as_ref().is_some_and(|j| j.stage == Stage::Retrieve && j.reason == Reject::SyntaxError.as_str())
        };
        let compiled = count(&|r| !not_compiling(r));
        // Checked after compiling and before decontamination: the libraries the sandbox's
        // interpreter lacks.
        let missing_library = |r: &Record| {
            r.rejected
                .as_ref()
                .is_some_and(|j| j.stage == Stage::Retrieve && j.reason == Reject::MissingLibrary.as_str())
        };
        let importable = count(&|r| !not_compiling(r) && !missing_library(r));
        let steps: [(&str, u64); 12] = [
            ("retrieved", count(&|_| true)),
            // Only a records file can hold code that does not compile (retrieve keeps none), so
            // the step shows only where one did not: `decontaminated` then counts contamination alone.
            ("compiled", compiled),
            // Shown only where a library was missing, as `compiled` is.
            ("importable", importable),
            ("decontaminated", count(&|r| !at_retrieve(r))),
            ("tests_written", count(&|r| r.tests.is_some())),
            ("original_passed", count(&|r| r.verified.as_ref().is_some_and(|v| v.original_passed))),
            ("verified", count(&|r| r.verified.is_some())),
            ("non_vacuous", count(&|r| r.verified.is_some() && past_vacuity(r))),
            ("polished", count(&|r| r.polished.is_some() && past_vacuity(r))),
            // The quality step's records (absent from runs without it): then `accepted` is how
            // many met the thresholds.
            ("tests_scored", scored),
            ("accepted", accepted.len() as u64),
            ("rejected", rejected.len() as u64),
        ];
        s.funnel = steps
            .iter()
            .filter(|(n, c)| match *n {
                "tests_scored" => scored > 0,
                "compiled" => *c < accepted.len() as u64 + rejected.len() as u64,
                "importable" => *c < compiled,
                _ => true,
            })
            .map(|(n, c)| Step { step: n.to_string(), count: *c })
            .collect();
        s.quality = QualityStats::compute(all());
        for (r, ok) in accepted.iter().map(|r| (r, true)).chain(rejected.iter().map(|r| (r, false))) {
            for p in &r.function.packages {
                let e = s.per_package.entry(p.clone()).or_default();
                e.retrieved += 1;
                e.tests_written += r.tests.is_some() as u64;
                e.verified += r.verified.is_some() as u64;
                e.accepted += ok as u64;
            }
            for i in r.tests.iter().flat_map(|t| &t.imports_added) {
                *s.imports_added.entry(i.clone()).or_default() += 1;
            }
            if let (true, Some(t)) = (ok, &r.tests) {
                *s.cut_tests.entry("broken".into()).or_default() += t.dropped.len() as u64;
                *s.cut_tests.entry("disagreeing".into()).or_default() += t.disagreeing.len() as u64;
                *s.cut_tests.entry("records_with_disagreeing".into()).or_default() += !t.disagreeing.is_empty() as u64;
                *s.cut_tests.entry("reconciled".into()).or_default() += t.reconciled.len() as u64;
                *s.cut_tests.entry("records_with_reconciled".into()).or_default() += !t.reconciled.is_empty() as u64;
            }
            if ok {
                let e = &mut s.docstring_examples;
                if let Some(c) = r.polished.as_ref().and_then(|p| p.examples.as_ref()) {
                    e.docstrings += 1;
                    (e.found, e.kept) = (e.found + c.found as u64, e.kept + c.kept as u64);
                    (e.corrected, e.dropped) = (e.corrected + c.corrected as u64, e.dropped + c.dropped as u64);
                }
                e.polish_set_aside += r.discarded.iter().any(|d| d.reason == "examples_unverified") as u64;
                if let Some(c) = r.polished.as_ref().and_then(|p| p.returns.as_ref()) {
                    use crate::pipeline::code::types::ReturnsOutcome;
                    let e = &mut s.docstring_returns;
                    e.claims += 1;
                    match c.outcome {
                        ReturnsOutcome::Held => e.held += 1,
                        ReturnsOutcome::Corrected => e.corrected += 1,
                        ReturnsOutcome::Unchecked => e.unchecked += 1,
                    }
                }
                if let Some(c) = r.polished.as_ref().and_then(|p| p.params.as_ref()) {
                    let e = &mut s.docstring_params;
                    e.docstrings += 1;
                    (e.found, e.held) = (e.found + c.found as u64, e.held + c.held as u64);
                    (e.corrected, e.unchecked) = (e.corrected + c.corrected as u64, e.unchecked + c.unchecked as u64);
                }
                if let Some(c) = r.polished.as_ref().and_then(|p| p.raises.as_ref()) {
                    let e = &mut s.docstring_raises;
                    e.docstrings += 1;
                    (e.found, e.kept, e.dropped) =
                        (e.found + c.found as u64, e.kept + c.kept as u64, e.dropped + c.dropped as u64);
                }
            }
            if let (true, Some(v)) = (ok, &r.verified) {
                *s.pass_by_round.entry(v.round).or_default() += 1;
            }
            if let Some(j) = &r.rejected {
                let stage =
                    serde_json::to_value(j.stage).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                *s.rejected.entry(format!("{stage}/{}", j.reason)).or_default() += 1;
            }
            for a in &r.attempts {
                let counted = matches!(a.kind, AttemptKind::Original | AttemptKind::Fix);
                if counted && !a.verdict.passed() {
                    *s.failures.entry(failure_class(&a.verdict)).or_default() += 1;
                }
                s.tokens += a.tokens;
            }
            for d in &r.discarded {
                let kind =
                    serde_json::to_value(d.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                *s.discarded.entry(format!("{kind}/{}", d.reason)).or_default() += 1;
                s.tokens += d.tokens;
            }
            s.tokens += r.tests.as_ref().map_or(0, |t| t.tokens);
        }
        for t in last_of_each_run(timings) {
            let s = &mut s.timings;
            s.wall_s += t.wall_s;
            s.model_s += t.model_s;
            s.model_waited_s += t.model_waited_s;
            s.sandbox_idle_s += t.sandbox_idle_s;
            s.model_calls += t.model_calls;
            s.model_calls_cached += t.model_calls_cached;
            s.executions += t.executions;
            s.executions_cached += t.executions_cached;
            s.exec_s += t.exec_s;
            s.quality_executions += t.quality_executions;
            s.quality_exec_s += t.quality_exec_s;
            s.tokens += t.tokens;
            s.finished += t.finished;
            s.skipped_done += t.skipped_done;
        }
        s.runs = last_of_each_run(timings).len() as u64;
        // In the sum, `ended` says whether every run ended (false: one was killed or is running,
        // or none has written its timings yet).
        let runs = last_of_each_run(timings);
        s.timings.ended = !runs.is_empty() && runs.iter().all(|t| t.ended);
        let n = accepted.len() as f64;
        s.tokens_per_accepted = (n > 0.0).then(|| s.tokens as f64 / n);
        s.seconds_per_accepted = (n > 0.0).then(|| s.timings.wall_s / n);
        s
    }

    /// The funnel as aligned text lines.
    pub fn funnel_text(&self) -> String {
        let mut out = String::new();
        for st in &self.funnel {
            out.push_str(&format!("{:<16} {:>7}\n", st.step, st.count));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_per_accepted_are_absent_until_something_is_accepted() {
        let timing = RunTimings { wall_s: 10.0, tokens: 500, ..RunTimings::default() };
        let s = SynthStats::compute(&[], &[], std::slice::from_ref(&timing));
        assert_eq!((s.tokens_per_accepted, s.seconds_per_accepted), (None, None));
        let json = serde_json::to_value(&s).expect("serializes");
        assert!(json["tokens_per_accepted"].is_null(), "{json}");
    }
}
