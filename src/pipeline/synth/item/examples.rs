//! The docstring-claims step of a record (see [`crate::pipeline::code::examples`],
//! [`crate::pipeline::code::raises`] and [`crate::pipeline::code::types`]): after the polished
//! program passed its tests, a probe runs its tests and its `>>>` examples in the sandbox; the
//! examples are kept, corrected or dropped, the `Raises` entries kept where the probe saw the
//! exceptions they name, the documented types corrected where the function returned or took
//! something they do not admit, and the rewritten program is checked with doctest and the tests
//! together.
//! When that check fails, the step tries once more with every example dropped; when that fails
//! too, the polish is set aside (`examples_unverified`) and the record goes on with its verified,
//! undocumented program. A plain docstring whose examples doctest could not read line for line (an
//! escaped newline) is made raw and probed again (sample 3) before that. The probes are not kept
//! as attempts; the checks are (kind `examples`,
//! sample 1: the first check, of the examples reconciled with the probe's report, or all dropped
//! where the report could not be used; sample 2: the retry with every example dropped).

use super::{Action, Ctx, Exec, Item};
use crate::pipeline::code::examples::{
    as_raw, check_tests, has_examples, probe_tests, read_probe, reconcile, ExampleCounts, Probe,
};
use crate::pipeline::code::raises::{has_raises, raised_in_code, reconcile_raises, RaisesCounts};
use crate::pipeline::code::types::{
    param_claims_of, reconcile_params, reconcile_returns, returns_claim, ParamCounts, ReturnsCheck,
};
use crate::pipeline::record::{feedback, Attempt, AttemptKind, Polished};
use crate::sandbox::{TestStatus, Verdict};

/// Sample numbers of the step's executions.
const PROBE: u32 = 0;
const RECONCILED: u32 = 1;
const ALL_DROPPED: u32 = 2;
/// The probe of the polished program with its docstring made raw.
const RAW_PROBE: u32 = 3;
/// The probe's test, as the verdict names it (`examples_probe.py`).
const PROBE_TEST: &str = "DocstringExamplesProbe.test_docstring_examples";

/// The step in flight.
#[derive(Debug, Default)]
pub(in crate::pipeline::synth) struct Examples {
    /// The polished program, as it passed its tests.
    polished: String,
    /// The return type and the parameter types the probe was given.
    claimed: Option<String>,
    params_claimed: Vec<(String, String)>,
    /// The probe's report (`None`: none to go on).
    probe: Option<Probe>,
    /// The counts of the rewrite being checked.
    counts: ExampleCounts,
    raises: RaisesCounts,
    returns: Option<ReturnsCheck>,
    params: ParamCounts,
}

/// One of the step's executions: `program` with `tests` instead of the record's suite.
fn run(sample: u32, program: String, tests: String) -> Vec<Action> {
    let kind = AttemptKind::Examples;
    vec![Action::Execute(Exec { kind, round: 0, sample, program, tokens: 0, tests: Some(tests) })]
}

impl Item {
    /// The polished program passed its tests: check its examples, `Raises` entries and types, or
    /// keep it as it is when its docstring has none of them.
    pub(super) fn check_examples(&mut self, ctx: &Ctx, program: String) -> Vec<Action> {
        let name = &self.rec.function.name;
        let claimed = returns_claim(&program, name);
        let params_claimed = param_claims_of(&program, name);
        let claims = has_examples(&program, name) || has_raises(&program, name);
        if !claims && claimed.is_none() && params_claimed.is_empty() {
            return self.keep_polished(ctx, program, Examples::default());
        }
        self.examples = Examples { polished: program.clone(), claimed, params_claimed, ..Examples::default() };
        let tests = self.probe_tests(&program);
        run(PROBE, program, tests)
    }

    /// The probe of `program`, after the record's tests.
    fn probe_tests(&self, program: &str) -> String {
        let name = &self.rec.function.name;
        let tests = self.rec.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
        let step = &self.examples;
        probe_tests(tests, name, &raised_in_code(program, name), step.claimed.as_deref(), &step.params_claimed)
    }

    /// A verdict of the step's probe or checks.
    pub(super) fn on_examples_verdict(&mut self, ctx: &Ctx, exec: Exec, verdict: Verdict) -> Vec<Action> {
        if exec.sample == PROBE || exec.sample == RAW_PROBE {
            // The probe's own test decides, not the record's tests run before it: one that fails
            // while the function is watched (it compares the function's identity, say) leaves what
            // the probe saw as true as it is.
            let probed =
                verdict.passed() || verdict.tests.iter().any(|t| t.name == PROBE_TEST && t.status == TestStatus::Pass);
            self.examples.probe = probed.then(|| read_probe(&verdict.stdout_tail)).flatten();
            if exec.sample == RAW_PROBE {
                // The raw docstring is the one reconciled from here on (its text reads the same).
                self.examples.polished = exec.program;
            } else if let Some(raw) = as_raw(&exec.program, &self.rec.function.name, self.examples.probe.as_ref()) {
                let tests = self.probe_tests(&raw);
                return run(RAW_PROBE, raw, tests);
            }
            return self.rewrite(ctx, true);
        }
        let passed = verdict.passed();
        self.rec.attempts.push(Attempt {
            kind: exec.kind,
            round: 0,
            sample: exec.sample,
            code: exec.program.clone(),
            feedback: if passed { String::new() } else { feedback(&verdict, ctx.settings.feedback_chars) },
            verdict,
            tokens: 0,
        });
        if passed {
            let step = std::mem::take(&mut self.examples);
            return self.keep_polished(ctx, exec.program, step);
        }
        if exec.sample == RECONCILED {
            return self.rewrite(ctx, false);
        }
        self.discard_polish("examples_unverified", exec.program, 0);
        self.score(ctx)
    }

    /// Asks for the check of the polished program with its examples reconciled with the probe's
    /// report (every one dropped when there is none, or unless `examples`), and its `Raises`
    /// entries and types with what the probe saw.
    fn rewrite(&mut self, ctx: &Ctx, examples: bool) -> Vec<Action> {
        let name = self.rec.function.name.clone();
        let polished = self.examples.polished.clone();
        let step = &self.examples;
        let probe = step.probe.as_ref();
        let seen = probe.map(|p| p.raised.as_slice());
        let rewritten = reconcile(&polished, &name, probe.filter(|_| examples)).and_then(|r| {
            let (program, raises) = reconcile_raises(&r.program, &name, seen)?;
            let returns_probe = probe.and_then(|p| p.returns.as_ref());
            let (program, returns) = reconcile_returns(&program, &name, step.claimed.as_deref(), returns_probe)?;
            let params_probe = probe.map(|p| p.params.as_slice());
            let (program, params) = reconcile_params(&program, &name, &step.params_claimed, params_probe)?;
            Some((r.remaining(), r.counts, program, raises, returns, params))
        });
        let Some((remaining, counts, program, raises, returns, params)) = rewritten else {
            self.discard_polish("examples_unverified", polished, 0);
            return self.score(ctx);
        };
        let tests = self.rec.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
        let tests = check_tests(tests, &name, remaining);
        let sample = if examples && probe.is_some() { RECONCILED } else { ALL_DROPPED };
        (self.examples.counts, self.examples.raises) = (counts, raises);
        (self.examples.returns, self.examples.params) = (returns, params);
        run(sample, program, tests)
    }

    /// Keeps `code` as the record's polished program, with the counts of the step that checked it
    /// (none for a docstring without examples, `Raises` entries or types).
    fn keep_polished(&mut self, ctx: &Ctx, code: String, step: Examples) -> Vec<Action> {
        let examples = Some(step.counts).filter(|c| c.found > 0);
        let raises = Some(step.raises).filter(|c| c.found > 0);
        let (returns, params) = (step.returns, Some(step.params).filter(|c| c.found > 0));
        let docstring_only = self.polish_docstring_only;
        self.rec.polished = Some(Polished { code, docstring_only, examples, raises, returns, params });
        self.score(ctx)
    }
}
