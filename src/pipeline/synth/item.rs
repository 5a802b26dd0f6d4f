//! One record's way through stages 2–4 and the quality step, as a state machine driven by model answers and verdicts.
//! It never blocks: each step returns the model calls and executions it needs next, and the run loop
//! ([`super::run`]) batches those across records.

mod examples;
mod imports;
mod preserve;
mod quality;
mod suites;

use super::SynthSettings;
use crate::engine::{Completion, Message, Prompt, Request, SamplingParams};
use crate::pipeline::code;
use crate::pipeline::prompts::{Template, Vars};
use crate::pipeline::record::{feedback, Attempt, AttemptKind, Discarded, Record, Stage, Tests, Verified};
use crate::sandbox::{TestStatus, Verdict};

/// What the run loop must do for an item next.
pub(super) enum Action {
    /// Ask the model (a fix round's samples come as `request.n`).
    Generate { template: Template, round: u32, request: Request },
    /// Run a program with the record's tests.
    Execute(Exec),
    /// The record is finished (accepted, or `rejected` is set).
    Finish,
    /// A prompt template failed to render: the run stops (every later record would meet the same
    /// template), with the work finished so far saved.
    Abort(crate::pipeline::prompts::PromptError),
}

/// An execution an item asked for; it comes back with its verdict.
#[derive(Debug, Clone)]
pub(super) struct Exec {
    pub kind: AttemptKind,
    pub round: u32,
    pub sample: u32,
    pub program: String,
    pub tokens: u64,
    /// Tests to run instead of the record's suite (a preservation check's).
    pub tests: Option<String>,
}

/// What every item needs to know about the run.
pub(super) struct Ctx<'a> {
    pub settings: &'a SynthSettings,
    pub model_id: String,
    pub chat: bool,
}

/// The end of a fenced code block.
const CLOSING_FENCE: &str = "\n```\n";

/// Verdict reasons that mean the tests check nothing.
fn vacuous_reason(v: &Verdict) -> bool {
    matches!(v.reason.as_deref(), Some("no assertion executed" | "no tests ran" | "all tests skipped" | "vacuous"))
}

/// Whether the tests themselves did not compile (`bytes can only contain ASCII literal characters`):
/// the sandbox judged them before running the program, so no fix of the function can make them pass.
fn tests_do_not_compile(v: &Verdict) -> bool {
    matches!(v.tests.as_slice(), [t] if t.name == "<tests>" && t.status == TestStatus::Error)
}

/// A record in flight.
pub(super) struct Item {
    pub rec: Record,
    /// Executions of the current fix round not yet judged.
    outstanding: usize,
    /// The feedback the next fix round is prompted with.
    feedback: String,
    /// The program the next fix round starts from.
    failing: String,
    /// Tests samples not yet tried: (sample, suite, tokens, placeholder tests cut from it).
    candidates: std::collections::VecDeque<(u32, String, u64, Vec<String>)>,
    /// The first tried suite that the original fails with assertions executed, and its feedback:
    /// the fix rounds start from it when no suite passes as written.
    fallback: Option<(Tests, String)>,
    /// Every suite taken as a candidate, so a repeated sample is not run twice.
    seen_tests: Vec<String>,
    /// Whether the sampled tests suites were asked for.
    resampled: bool,
    /// Whether the polish being verified kept only the model's docstring.
    polish_docstring_only: bool,
    /// The docstring-examples step.
    examples: examples::Examples,
    /// The quality step's runs.
    scoring: quality::Scoring,
    /// The tests the original passed, which a fix must still pass.
    preserve: preserve::Preserve,
    /// The tests sample whose failing checks' values were probed (once per suite).
    probed: Option<u32>,
    /// While the probe of their values runs: the tests the original failed, and the checks probed.
    probing: Option<(Vec<String>, Vec<code::expected::Expectation>)>,
}

impl Item {
    pub fn new(rec: Record) -> Item {
        let failing = rec.function.code.clone();
        Item {
            rec,
            outstanding: 0,
            feedback: String::new(),
            failing,
            candidates: Default::default(),
            fallback: None,
            seen_tests: Vec::new(),
            resampled: false,
            polish_docstring_only: false,
            examples: Default::default(),
            scoring: Default::default(),
            preserve: Default::default(),
            probed: None,
            probing: None,
        }
    }

    fn request(&self, ctx: &Ctx, t: Template, round: u32, ctx_vars: minijinja::Value) -> Action {
        let text = match ctx.settings.prompts.render(t, ctx_vars) {
            Ok(text) => text,
            Err(e) => return Action::Abort(e),
        };
        let prompt = if ctx.chat {
            Prompt::Chat(vec![Message::new("user", text)])
        } else {
            // A base model continues an opened code block.
            Prompt::Text(format!("{text}\n\n```python\n"))
        };
        let fix = t == Template::Fix;
        // The first tests suite is the greedy one; when it is not kept, round 1 samples the others.
        let resample = t == Template::Tests && round > 0;
        let (n, temperature, top_p) = if fix {
            (ctx.settings.samples.max(1), ctx.settings.temperature, ctx.settings.top_p)
        } else if resample {
            (ctx.settings.tests_samples.saturating_sub(1).max(1), ctx.settings.tests_temperature, ctx.settings.top_p)
        } else {
            (1, 0.0, 1.0)
        };
        let seed = u64::from_str_radix(
            &crate::pipeline::journal::key(&[&ctx.settings.seed.to_string(), &self.rec.id, &round.to_string()])[..15],
            16,
        )
        .unwrap_or(ctx.settings.seed);
        Action::Generate {
            template: t,
            round,
            request: Request {
                prompt,
                n: n as usize,
                first: 0,
                params: SamplingParams {
                    max_tokens: ctx.settings.max_tokens,
                    temperature,
                    top_p,
                    repetition_penalty: ctx.settings.repetition_penalty,
                    // Every prompt asks for one code block: its closing fence ends the answer, so
                    // the model's chatter after it costs no tokens.
                    stop: vec![CLOSING_FENCE.to_string()],
                    seed,
                    ..SamplingParams::default()
                },
            },
        }
    }

    /// The first step: ask for tests.
    pub fn start(&mut self, ctx: &Ctx) -> Vec<Action> {
        let f = &self.rec.function;
        let vars = Template::Tests.vars(&Vars {
            code: f.code.trim(),
            name: &f.name,
            packages: &f.packages,
            ..Vars::default()
        });
        vec![self.request(ctx, Template::Tests, 0, vars)]
    }

    /// The model answered `template`'s request of `round`.
    pub fn on_reply(&mut self, ctx: &Ctx, template: Template, round: u32, replies: &[Completion]) -> Vec<Action> {
        let text = |c: &Completion| {
            if ctx.chat {
                c.text.clone()
            } else {
                format!("```python\n{}", c.text)
            }
        };
        match template {
            Template::Tests => {
                let replies: Vec<(String, u64)> =
                    replies.iter().map(|c| (text(c), c.generated_tokens as u64)).collect();
                // Sample 0 is the greedy suite (round 0); the sampled ones (round 1) follow it.
                self.take_test_samples(replies, if round == 0 { 0 } else { 1 });
                self.next_tests(ctx)
            }
            Template::Fix => {
                let mut actions = Vec::new();
                for (i, c) in replies.iter().enumerate() {
                    match self.check_fix(&text(c)) {
                        Ok(program) => actions.push(Action::Execute(Exec {
                            kind: AttemptKind::Fix,
                            round,
                            sample: i as u32,
                            program,
                            tokens: c.generated_tokens as u64,
                            tests: None,
                        })),
                        Err((reason, code)) => self.rec.discarded.push(Discarded {
                            kind: AttemptKind::Fix,
                            round,
                            sample: i as u32,
                            reason: reason.to_string(),
                            code,
                            tokens: c.generated_tokens as u64,
                        }),
                    }
                }
                self.outstanding = actions.len();
                if actions.is_empty() {
                    return self.round_done(ctx, round);
                }
                actions
            }
            Template::Polish => {
                let reply = replies.first().map(text).unwrap_or_default();
                let tokens = replies.iter().map(|c| c.generated_tokens as u64).sum();
                match self.check_polish(&reply).and_then(|ok| self.check_echo(ctx, ok)) {
                    Ok((program, docstring_only)) => {
                        self.polish_docstring_only = docstring_only;
                        let kind = AttemptKind::Polish;
                        vec![Action::Execute(Exec { kind, round: 0, sample: 0, program, tokens, tests: None })]
                    }
                    Err((reason, code)) => {
                        self.discard_polish(reason, code, tokens);
                        self.score(ctx)
                    }
                }
            }
        }
    }

    fn discard_polish(&mut self, reason: &str, code: String, tokens: u64) {
        self.rec.discarded.push(Discarded {
            kind: AttemptKind::Polish,
            round: 0,
            sample: 0,
            reason: reason.to_string(),
            code,
            tokens,
        });
    }

    /// The imports of `base` plus new ones of `reply_code`, then `function`.
    fn program(base_imports: &[String], reply_code: &str, function: &str) -> String {
        let mut imports: Vec<String> = base_imports.to_vec();
        for i in code::imports(reply_code) {
            if !imports.contains(&i) {
                imports.push(i);
            }
        }
        format!("{}\n\n\n{}\n", imports.join("\n"), function.trim_end())
    }

    /// A fix sample as a program, or why it is set aside.
    fn check_fix(&self, reply: &str) -> Result<String, (&'static str, String)> {
        let f = &self.rec.function;
        let code_text = crate::python::extract::reply_code(reply);
        let Some(found) = code::find_function(&code_text, &f.name) else {
            return Err(("no_function", reply.to_string()));
        };
        let original = code::find_function(&f.code, &f.name);
        if original.map(|o| o.signature_key) != Some(found.signature_key.clone()) {
            return Err(("signature_changed", found.text));
        }
        let tests = self.rec.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
        if code::special_cased(self.rec.function_text(), &found.text, tests).is_some() {
            return Err(("special_casing", found.text));
        }
        Ok(Self::program(&f.imports, &code_text, &found.text))
    }

    /// A polish answer as a program (and whether only its docstring was kept), or why it is set aside.
    fn check_polish(&self, reply: &str) -> Result<(String, bool), (&'static str, String)> {
        let f = &self.rec.function;
        let verified = self.rec.verified.as_ref().map(|v| v.code.as_str()).unwrap_or("");
        let code_text = crate::python::extract::reply_code(reply);
        let Some(found) = code::find_function(&code_text, &f.name) else {
            return Err(("no_function", reply.to_string()));
        };
        let before = code::find_function(verified, &f.name);
        if before.as_ref().map(|b| &b.signature_key) != Some(&found.signature_key) {
            return Err(("signature_changed", found.text));
        }
        // Keep the verified program's imports: polish may only add documentation.
        let imports = code::imports(verified);
        let program = format!("{}\n\n\n{}\n", imports.join("\n"), found.text.trim_end());
        if code::code_without_docs(&program) == code::code_without_docs(verified) {
            return Ok((program, false));
        }
        // The model rewrote code while documenting it: keep only what was asked for, its docstring,
        // in the verified program.
        let moved = code::docstring_of(&code_text, &f.name).and_then(|d| code::with_docstring(verified, &f.name, &d));
        match moved {
            Some(p) if code::code_without_docs(&p) == code::code_without_docs(verified) => Ok((p, true)),
            _ => Err(("polish_changed_code", found.text)),
        }
    }

    /// Sets aside a polished program whose docstring copies the prompt's placeholders ("what it is.")
    /// instead of documenting the function: it would become a training prompt, and the docstring
    /// checks would even "correct" the placeholder's type.
    fn check_echo(&self, ctx: &Ctx, (program, only): (String, bool)) -> Result<(String, bool), (&'static str, String)> {
        let f = &self.rec.function;
        let verified = self.rec.verified.as_ref().map(|v| v.code.trim()).unwrap_or("");
        let vars = Template::Polish.vars(&Vars { code: verified, name: &f.name, ..Vars::default() });
        let (Some(doc), Ok(prompt)) =
            (code::docstring_of(&program, &f.name), ctx.settings.prompts.render(Template::Polish, vars))
        else {
            return Ok((program, only));
        };
        match code::template_echo(&doc, &prompt, verified) {
            Some(_) => Err(("template_echo", program)),
            None => Ok((program, only)),
        }
    }

    fn fix_request(&self, ctx: &Ctx, round: u32) -> Action {
        let tests = self.rec.tests.as_ref().map(|t| t.code.as_str()).unwrap_or("");
        let vars = Template::Fix.vars(&Vars {
            code: self.failing.trim(),
            tests: tests.trim(),
            feedback: &self.feedback,
            name: &self.rec.function.name,
            ..Vars::default()
        });
        self.request(ctx, Template::Fix, round, vars)
    }

    /// A verdict for one of this item's executions.
    pub fn on_verdict(&mut self, ctx: &Ctx, exec: Exec, verdict: Verdict) -> Vec<Action> {
        if matches!(exec.kind, AttemptKind::Mutant | AttemptKind::Coverage) {
            return self.on_quality_verdict(ctx, &exec, verdict);
        }
        if exec.kind == AttemptKind::Examples {
            return self.on_examples_verdict(ctx, exec, verdict);
        }
        if exec.kind == AttemptKind::ExpectedValues {
            return self.on_expected_values(ctx, &verdict);
        }
        let passed = verdict.passed();
        let vacuous = vacuous_reason(&verdict);
        let uncompiled = tests_do_not_compile(&verdict);
        let feedback = feedback(&verdict, ctx.settings.feedback_chars);
        let attempt = Attempt {
            kind: exec.kind,
            round: exec.round,
            sample: exec.sample,
            code: exec.program.clone(),
            feedback: if passed { String::new() } else { feedback.clone() },
            verdict,
            tokens: exec.tokens,
        };
        self.rec.attempts.push(attempt);
        if exec.kind == AttemptKind::Original {
            self.note_original_passes();
        }
        match exec.kind {
            AttemptKind::Original if passed => self.verified(exec.program, 0, true),
            AttemptKind::Original if vacuous => {
                self.drop_tests("vacuous_tests");
                self.next_tests(ctx)
            }
            // Not a suite to fix towards: set aside, and the next sample tried.
            AttemptKind::Original if uncompiled => {
                self.drop_tests("tests_do_not_compile");
                self.next_tests(ctx)
            }
            AttemptKind::Original => {
                // Repair before cutting: a test that only misses an import still checks something.
                if let Some(actions) = self.add_missing_imports() {
                    return actions;
                }
                if let Some(actions) = self.drop_broken_tests() {
                    return actions;
                }
                if let Some(actions) = self.cut_disagreeing_tests(ctx.settings.min_tests) {
                    return actions;
                }
                self.original_failed(ctx, feedback)
            }
            AttemptKind::Fix => {
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.outstanding > 0 {
                    return Vec::new();
                }
                // The sandbox answers in the order its runs finish; the record lists the round's
                // samples in sample order, so that a rerun writes the same record.
                let start = self
                    .rec
                    .attempts
                    .iter()
                    .rposition(|a| a.kind != AttemptKind::Fix || a.round != exec.round)
                    .map_or(0, |p| p + 1);
                self.rec.attempts[start..].sort_by_key(|a| a.sample);
                self.round_done(ctx, exec.round)
            }
            AttemptKind::Preservation => self.on_preservation(ctx, exec, passed),
            AttemptKind::Vacuity if passed => {
                if self.rec.verified.as_ref().is_some_and(|v| v.original_passed) {
                    // Still choosing among tests samples: this suite checks nothing; try the next.
                    self.rec.verified = None;
                    self.drop_tests("vacuous_tests");
                    return self.next_tests(ctx);
                }
                self.rec.reject(
                    Stage::RunFix,
                    "vacuous_tests",
                    "the tests pass when the body raises NotImplementedError",
                );
                vec![Action::Finish]
            }
            AttemptKind::Vacuity => {
                self.drop_unused_tests();
                let Some(v) = &self.rec.verified else {
                    return vec![Action::Finish];
                };
                let vars = Template::Polish.vars(&Vars {
                    code: v.code.trim(),
                    name: &self.rec.function.name,
                    ..Vars::default()
                });
                vec![self.request(ctx, Template::Polish, 0, vars)]
            }
            AttemptKind::Polish if passed => self.check_examples(ctx, exec.program),
            AttemptKind::Polish => {
                self.discard_polish("polish_regression", exec.program, exec.tokens);
                self.score(ctx)
            }
            // Tests replies are never executed on their own, and quality runs are handled above;
            // nothing is waiting on these.
            AttemptKind::Tests
            | AttemptKind::Mutant
            | AttemptKind::Coverage
            | AttemptKind::Examples
            | AttemptKind::ExpectedValues => {
                vec![Action::Finish]
            }
        }
    }

    /// The original failed a suite that nothing more can be repaired or cut from: the suite is set
    /// aside when it is too thin to fix towards, kept as where the fix rounds start when it is the
    /// first such suite, and set aside otherwise; then the next tests sample is tried.
    fn original_failed(&mut self, ctx: &Ctx, feedback: String) -> Vec<Action> {
        if self.thin_suite(ctx) {
            self.drop_tests("thin_suite");
        } else if self.fallback.is_none() {
            self.fallback = self.rec.tests.clone().map(|t| (t, feedback));
        } else {
            self.drop_tests("original_failed");
        }
        self.next_tests(ctx)
    }

    fn verified(&mut self, code: String, round: u32, original_passed: bool) -> Vec<Action> {
        let stub = code::stub_body(&code, &self.rec.function.name);
        self.rec.verified = Some(Verified { code, round, original_passed });
        let sample = if round == 0 { self.rec.tests.as_ref().map_or(0, |t| t.sample) } else { 0 };
        match stub {
            Some(program) => {
                let kind = AttemptKind::Vacuity;
                vec![Action::Execute(Exec { kind, round, sample, program, tokens: 0, tests: None })]
            }
            None => {
                self.rec.reject(Stage::RunFix, "unparsable", "cannot stub the body");
                vec![Action::Finish]
            }
        }
    }

    /// Every sample of fix round `round` is judged or set aside: keep the first passing one, or go on.
    fn round_done(&mut self, ctx: &Ctx, round: u32) -> Vec<Action> {
        let mut this_round: Vec<&Attempt> =
            self.rec.attempts.iter().filter(|a| a.kind == AttemptKind::Fix && a.round == round).collect();
        this_round.sort_by_key(|a| a.sample);
        // The first passing fix not yet found to change what the original did right.
        let unchanged = |a: &&&Attempt| !self.preserve.changed.contains(&(round, a.sample));
        if let Some(pass) = this_round.iter().filter(|a| a.verdict.passed()).find(unchanged) {
            let (sample, code) = (pass.sample, pass.code.clone());
            return self.check_preserved(round, sample, code, 0);
        }
        // Fixes that passed the suite are no starting point, even when they broke other tests.
        if let Some(fail) = this_round.iter().find(|a| !a.verdict.passed()) {
            self.feedback = feedback(&fail.verdict, ctx.settings.feedback_chars);
            self.failing = fail.code.clone();
        }
        if round < ctx.settings.rounds {
            return vec![self.fix_request(ctx, round + 1)];
        }
        if self.changed_behaviour() {
            return vec![Action::Finish];
        }
        let ran_any = self.rec.attempts.iter().any(|a| a.kind == AttemptKind::Fix);
        let (reason, detail) = match self.rec.discarded.last() {
            Some(d) if !ran_any => (d.reason.clone(), "every fix sample was set aside".into()),
            _ => ("not_fixed".to_string(), format!("{} rounds of {} samples", round, ctx.settings.samples)),
        };
        self.rec.reject(Stage::RunFix, reason, detail);
        vec![Action::Finish]
    }
}
