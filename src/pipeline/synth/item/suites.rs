//! Choosing a record's tests suite: the greedy suite first, then (when it is not kept) sampled
//! ones. A suite is kept when the original function passes it and the body stubbed with
//! `raise NotImplementedError` fails it; test functions that error in the tests' own code are cut
//! as broken first. The first suite the original fails with assertions executed is where the fix
//! rounds start when no suite is kept. Every suite set aside stays in `discarded` with its tokens.

use super::{Action, Ctx, Exec, Item};
use crate::pipeline::code;
use crate::pipeline::prompts::{Template, Vars};
use crate::pipeline::record::{feedback, AttemptKind, Discarded, Stage, Tests};
use crate::sandbox::{TestStatus, Verdict};

impl Item {
    /// Turns the tests replies into candidate suites, setting aside (with their tokens) the ones
    /// with no tests, tests that never call the function, and repeats of an earlier sample.
    pub(super) fn take_test_samples(&mut self, replies: Vec<(String, u64)>, first: u32) {
        let name = self.rec.function.name.clone();
        for (i, (reply, tokens)) in replies.into_iter().enumerate() {
            let sample = first + i as u32;
            // One assertion per test method: the verdict then says which expectations hold.
            let tests = code::tests_from_code(&crate::python::extract::reply_code(&reply), &name)
                .map(|t| code::split_assertions(&t).unwrap_or(t));
            // Tests that keep the prompt's `...` as an argument or an expected value check nothing
            // a fix could meet: cut before running, and a suite of nothing else is set aside.
            let placeholders = tests.as_deref().map(code::placeholder_tests).unwrap_or_default();
            let cut = match (&tests, placeholders.is_empty()) {
                (Some(t), false) => code::without_tests(t, &placeholders),
                (t, _) => t.clone(),
            };
            let (reason, code) = match (tests, cut) {
                (None, _) => ("no_tests_extracted", reply),
                (Some(t), None) => ("placeholder_tests", t),
                (Some(t), Some(_)) if !code::calls_function(&t, &name) => ("tests_do_not_call_function", t),
                (Some(t), Some(_)) if self.seen_tests.contains(&t) => ("repeated_sample", t),
                (Some(t), Some(cut)) if !code::calls_function(&cut, &name) => ("placeholder_tests", t),
                (Some(t), Some(cut)) => {
                    self.seen_tests.push(t);
                    self.candidates.push_back((sample, cut, tokens, placeholders));
                    continue;
                }
            };
            self.set_aside_tests(sample, reason, code, tokens);
        }
    }

    /// Tries the next tests sample on the original function; when none is left, goes to the fix
    /// rounds with the first suite the original failed, or rejects the record.
    pub(super) fn next_tests(&mut self, ctx: &Ctx) -> Vec<Action> {
        if let Some((sample, code, tokens, placeholders)) = self.candidates.pop_front() {
            self.rec.tests = Some(Tests {
                code,
                model: ctx.model_id.clone(),
                prompt_hash: ctx.settings.prompts.hash(Template::Tests),
                tokens,
                sample,
                // Cut before the first run, as broken tests are cut after it.
                dropped: placeholders,
                disagreeing: Vec::new(),
                reconciled: Vec::new(),
                imports_added: Vec::new(),
            });
            return self.run_original(sample);
        }
        if !self.resampled && ctx.settings.tests_samples > 1 {
            self.resampled = true;
            let f = &self.rec.function;
            let vars = Template::Tests.vars(&Vars {
                code: f.code.trim(),
                name: &f.name,
                packages: &f.packages,
                ..Vars::default()
            });
            return vec![self.request(ctx, Template::Tests, 1, vars)];
        }
        if let Some((tests, feedback)) = self.fallback.take() {
            self.start_preserving(tests.sample);
            self.rec.tests = Some(tests);
            self.feedback = feedback;
            if ctx.settings.rounds == 0 {
                self.rec.reject(Stage::RunFix, "not_fixed", "no fix rounds");
                return vec![Action::Finish];
            }
            return vec![self.fix_request(ctx, 1)];
        }
        match self.rec.discarded.iter().rev().find(|d| d.kind == AttemptKind::Tests) {
            Some(d) if self.rec.tests.is_none() => {
                let (reason, code) = (d.reason.clone(), d.code.clone());
                let detail = match reason.as_str() {
                    "tests_do_not_call_function" => format!("no test calls `{}`", self.rec.function.name),
                    _ => code.chars().take(300).collect(),
                };
                self.rec.reject(Stage::Tests, reason, detail);
            }
            _ if self.set_aside("thin_suite") => {
                let detail = format!(
                    "the original failed only suites of fewer than {} tests or of tests that only expect \
                     exceptions: too little to fix real code by",
                    ctx.settings.min_tests
                );
                self.rec.reject(Stage::RunFix, "thin_suite", detail);
            }
            _ if self.set_aside("tests_do_not_compile") && !self.set_aside("vacuous_tests") => {
                let message = self.rec.attempts.iter().rev().find_map(|a| {
                    let uncompiled = a.kind == AttemptKind::Original && super::tests_do_not_compile(&a.verdict);
                    a.verdict.tests.first().filter(|_| uncompiled)?.message.clone()
                });
                let detail = message.unwrap_or_else(|| "the tests do not compile".into());
                self.rec.reject(Stage::Tests, "tests_do_not_compile", detail);
            }
            _ => {
                let stubbed = self.rec.attempts.last().is_some_and(|a| a.kind == AttemptKind::Vacuity);
                let detail = if stubbed {
                    "the tests pass when the body raises NotImplementedError"
                } else {
                    "no assertion executed"
                };
                self.rec.reject(Stage::RunFix, "vacuous_tests", detail);
            }
        }
        vec![Action::Finish]
    }

    /// A test function that errors in the tests' own code (the innermost frame is in the tests: a
    /// call with the wrong number of arguments, an undefined name) is a broken test, not evidence
    /// against the function: such functions are cut and the original runs again against the rest.
    /// Failed assertions and errors raised inside the function stay; they are what the fix rounds
    /// are for. `None` when nothing is cut (or nothing would remain).
    pub(super) fn drop_broken_tests(&mut self) -> Option<Vec<Action>> {
        let verdict = &self.rec.attempts.last()?.verdict;
        let broken: Vec<String> = verdict
            .tests
            .iter()
            .filter(|t| {
                t.status == TestStatus::Error && t.message.as_deref().is_some_and(|m| m.contains(" (tests line "))
            })
            .map(|t| t.name.clone())
            .collect();
        if broken.is_empty() {
            return None;
        }
        self.rerun_without(broken, |t| &mut t.dropped)
    }

    /// Cuts the test functions `names` from the suite, lists them in the field `list` picks, and runs
    /// the original again against the rest. `None` when nothing could be cut (the failure came from a
    /// helper or a name we cannot place, or nothing would remain): running the same suite again would
    /// give the same verdict forever.
    fn rerun_without(&mut self, names: Vec<String>, list: fn(&mut Tests) -> &mut Vec<String>) -> Option<Vec<Action>> {
        let tests = self.rec.tests.as_mut()?;
        let cut = code::without_tests(&tests.code, &names)?;
        if cut == tests.code {
            return None;
        }
        tests.code = cut;
        list(tests).extend(names);
        let sample = tests.sample;
        Some(self.run_original(sample))
    }

    /// Runs the original against the record's suite (tests sample `sample`).
    pub(super) fn run_original(&self, sample: u32) -> Vec<Action> {
        let program = self.rec.function.code.clone();
        vec![Action::Execute(Exec { kind: AttemptKind::Original, round: 0, sample, program, tokens: 0, tests: None })]
    }

    /// The original passed some of the suite's tests and failed the others (assertion failures, or
    /// errors raised inside the function): it is retrieved, real code, so the failing tests' expected
    /// values are suspected before the code. When at least `min_tests` tests pass, and no fewer than
    /// fail, the failing ones are cut (kept in `disagreeing`) and the original runs again against the
    /// rest; the vacuity check that follows still rejects a remainder that checks nothing. `None`
    /// when nothing is cut.
    pub(super) fn cut_disagreeing_tests(&mut self, min_tests: usize) -> Option<Vec<Action>> {
        if min_tests == 0 {
            return None;
        }
        let verdict = &self.rec.attempts.last()?.verdict;
        let passing = verdict.tests.iter().filter(|t| t.status == TestStatus::Pass).count();
        let failing: Vec<String> = verdict
            .tests
            .iter()
            .filter(|t| matches!(t.status, TestStatus::Fail | TestStatus::Error))
            .map(|t| t.name.clone())
            .collect();
        // A crash or timeout of the whole program is not a per-test disagreement; and when most
        // checks fail, the code is as suspect as the tests: the fix rounds decide.
        if passing < min_tests.max(failing.len()) || failing.is_empty() {
            return None;
        }
        // Checks that compared a value with a literal keep their input: the probe reads what the
        // original returns, once per suite, and `on_expected_values` writes it in.
        let tests = self.rec.tests.as_ref()?;
        if self.probed != Some(tests.sample) {
            let asserted: Vec<String> =
                verdict.tests.iter().filter(|t| t.status == TestStatus::Fail).map(|t| t.name.clone()).collect();
            let targets = code::expected::expectations(&tests.code, &self.rec.function.name, &asserted);
            if !targets.is_empty() {
                let probe = code::expected::probe_tests(&tests.code, &self.rec.function.code, &targets);
                let sample = tests.sample;
                self.probed = Some(sample);
                self.probing = Some((failing, targets));
                let program = self.rec.function.code.clone();
                let kind = AttemptKind::ExpectedValues;
                return Some(vec![Action::Execute(Exec {
                    kind,
                    round: 0,
                    sample,
                    program,
                    tokens: 0,
                    tests: Some(probe),
                })]);
            }
        }
        let actions = self.rerun_without(failing.clone(), |t| &mut t.disagreeing)?;
        // A rewritten check the original still fails (a value that changes from run to run) is cut.
        if let Some(t) = self.rec.tests.as_mut() {
            t.reconciled.retain(|n| !failing.contains(n));
        }
        Some(actions)
    }

    /// The probe of the failing checks' values came back: the checks it could read get the
    /// original's value in place of their literal, the other failing tests are cut, and the
    /// original runs again against the suite.
    pub(super) fn on_expected_values(&mut self, ctx: &Ctx, verdict: &Verdict) -> Vec<Action> {
        let (Some((failing, targets)), Some(tests)) = (self.probing.take(), self.rec.tests.as_mut()) else {
            return vec![Action::Finish];
        };
        let values = code::expected::read_probe(&verdict.stdout_tail).unwrap_or_default();
        let mut reconciled = Vec::new();
        let sample = tests.sample;
        if let Some((code, done)) = code::expected::reconcile(&tests.code, &targets, &values) {
            tests.code = code;
            tests.reconciled.extend(done.iter().cloned());
            reconciled = done;
        }
        let rest: Vec<String> = failing.into_iter().filter(|n| !reconciled.contains(n)).collect();
        match self.rerun_without(rest, |t| &mut t.disagreeing) {
            Some(actions) => actions,
            None if !reconciled.is_empty() => self.run_original(sample),
            None => {
                // Nothing could be rewritten or cut: the suite fails as it did.
                let last = self.rec.attempts.last().map(|a| feedback(&a.verdict, ctx.settings.feedback_chars));
                self.original_failed(ctx, last.unwrap_or_default())
            }
        }
    }

    /// Sets the tests suite just tried aside for `reason`, keeping its tokens in the statistics. The
    /// record keeps it as `tests` until another is tried, so a record rejected for vacuous tests
    /// shows the last suite.
    pub(super) fn drop_tests(&mut self, reason: &str) {
        if let Some(t) = &mut self.rec.tests {
            self.rec.discarded.push(Discarded {
                kind: AttemptKind::Tests,
                round: 0,
                sample: t.sample,
                reason: reason.into(),
                code: t.code.clone(),
                tokens: t.tokens,
            });
            // Counted once, with the set-aside entry.
            t.tokens = 0;
        }
    }

    /// Whether a tests sample was set aside for `reason`.
    fn set_aside(&self, reason: &str) -> bool {
        self.rec.discarded.iter().any(|d| d.kind == AttemptKind::Tests && d.reason == reason)
    }

    /// Records a tests sample that is not used, with its tokens and why.
    fn set_aside_tests(&mut self, sample: u32, reason: &str, code: String, tokens: u64) {
        let entry = Discarded { kind: AttemptKind::Tests, round: 0, sample, reason: reason.into(), code, tokens };
        self.rec.discarded.push(entry);
    }

    /// A suite was kept: the samples not needed (a failing fallback, untried ones) are set aside.
    pub(super) fn drop_unused_tests(&mut self) {
        let unused = self.fallback.take().map(|(t, _)| (t.sample, t.code, t.tokens, "original_failed"));
        let untried = self.candidates.drain(..).map(|(s, c, k, _)| (s, c, k, "not_tried"));
        for (sample, code, tokens, reason) in unused.into_iter().chain(untried).collect::<Vec<_>>() {
            self.set_aside_tests(sample, reason, code, tokens);
        }
    }
}
