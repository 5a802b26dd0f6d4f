//! Guards against bending correct code to fit wrong tests. The original is retrieved, real code: a
//! fix round may repair it, but not rewrite what it already did right. So the fix rounds never start
//! from a suite thinner than `min_tests` tests (one wrong expectation would then steer the whole
//! loop), nor from one whose tests only expect exceptions (a fix then only learns to raise, and the
//! ground-truth calibration's two bent programs, BigCodeBench/60 and 471, were made so): both are
//! `thin_suite`. A fix that passes the suite is accepted only when it also passes every test the
//! original passed in the other suites tried (`fix_changed_behaviour` when no fix does).

use super::{Action, Ctx, Exec, Item};
use crate::pipeline::code;
use crate::pipeline::record::{AttemptKind, Stage};
use crate::sandbox::TestStatus;

/// What the preservation check of a record knows and has found.
#[derive(Debug, Default)]
pub(in crate::pipeline::synth) struct Preserve {
    /// Per tests sample tried, its suite cut to the tests the original passed (the last run of the
    /// original against that sample wins: it saw the suite after repairs and cuts).
    passed: Vec<(u32, String)>,
    /// The suites a fix must still pass: `passed` without the suite the fix rounds start from.
    suites: Vec<String>,
    /// Fixes (round, sample) that passed the suite but failed one of `suites`.
    pub changed: Vec<(u32, u32)>,
    /// The index in `suites` of the check in flight.
    at: usize,
}

impl Item {
    /// Notes which tests the original passed in the suite it just ran against.
    pub(super) fn note_original_passes(&mut self) {
        let (Some(a), Some(t)) = (self.rec.attempts.last(), &self.rec.tests) else { return };
        let passed = |n: &String| a.verdict.tests.iter().any(|t| &t.name == n && t.status == TestStatus::Pass);
        // Only tests seen passing are kept: a crash or time-out leaves the tests after it unknown.
        let names = code::test_names(&t.code);
        let unknown: Vec<String> = names.iter().filter(|n| !passed(n)).cloned().collect();
        let kept = if unknown.is_empty() { Some(t.code.clone()) } else { code::without_tests(&t.code, &unknown) };
        self.preserve.passed.retain(|(s, _)| *s != t.sample);
        if let Some(kept) = kept.filter(|_| !names.is_empty()) {
            self.preserve.passed.push((t.sample, kept));
        }
    }

    /// Whether the suite the original just failed is too thin to start fix rounds from: fewer than
    /// `min_tests` tests, or tests that only expect exceptions (`min_tests` 0 sets neither floor).
    pub(super) fn thin_suite(&self, ctx: &Ctx) -> bool {
        let min = ctx.settings.min_tests;
        self.rec.tests.as_ref().is_some_and(|t| {
            code::test_names(&t.code).len() < min || (min > 0 && code::only_expects_exceptions(&t.code))
        })
    }

    /// The fix rounds start from the suite of tests sample `sample`: every other suite the original
    /// passed tests of is what a fix must still pass.
    pub(super) fn start_preserving(&mut self, sample: u32) {
        self.preserve.suites =
            self.preserve.passed.iter().filter(|(s, _)| *s != sample).map(|(_, c)| c.clone()).collect();
    }

    /// A fix passed the suite: checks it against the next preserved suite from `at`, or accepts it.
    pub(super) fn check_preserved(&mut self, round: u32, sample: u32, program: String, at: usize) -> Vec<Action> {
        let Some(tests) = self.preserve.suites.get(at).cloned() else {
            return self.verified(program, round, false);
        };
        self.preserve.at = at;
        let kind = AttemptKind::Preservation;
        vec![Action::Execute(Exec { kind, round, sample, program, tokens: 0, tests: Some(tests) })]
    }

    /// The verdict of a preservation check (already stored as an attempt).
    pub(super) fn on_preservation(&mut self, ctx: &Ctx, exec: Exec, passed: bool) -> Vec<Action> {
        if passed {
            return self.check_preserved(exec.round, exec.sample, exec.program, self.preserve.at + 1);
        }
        self.preserve.changed.push((exec.round, exec.sample));
        self.round_done(ctx, exec.round)
    }

    /// The last fix round is over with no fix kept: rejects the record as `fix_changed_behaviour`
    /// (and says so) when some fix passed the suite but broke tests the original passed.
    pub(super) fn changed_behaviour(&mut self) -> bool {
        let n = self.preserve.changed.len();
        if n == 0 {
            return false;
        }
        let detail = format!("{n} fix(es) passed the suite but failed tests the original passed in another suite");
        self.rec.reject(Stage::RunFix, "fix_changed_behaviour", detail);
        true
    }
}
