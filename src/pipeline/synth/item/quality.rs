//! The quality step of a record (see [`crate::pipeline::quality`]): after polish, the verified
//! program's mutants and one traced run go to the sandbox together; when the last verdict is in,
//! the scores are set on the record and the thresholds may reject it. Mutant runs are not kept as
//! attempts: a record would carry dozens of near-copies of its program.

use super::{Action, Ctx, Exec, Item};
use crate::pipeline::journal::key;
use crate::pipeline::quality::{gate, mutate, score};
use crate::pipeline::record::{AttemptKind, Stage};
use crate::sandbox::{Coverage, Verdict};

/// A record's quality runs in flight.
#[derive(Debug, Default)]
pub(in crate::pipeline::synth) struct Scoring {
    /// Verdicts still to come.
    pending: usize,
    mutants: u32,
    killed: u32,
    coverage: Option<Coverage>,
}

impl Item {
    /// After polish: the quality runs of an accepted record, or `Finish` when there is nothing to
    /// score (rejected, or the step is off).
    pub(super) fn score(&mut self, ctx: &Ctx) -> Vec<Action> {
        let q = &ctx.settings.quality;
        let Some(verified) = self.rec.verified.as_ref().filter(|_| !self.rec.is_rejected() && q.mutants > 0) else {
            return vec![Action::Finish];
        };
        let seed = u64::from_str_radix(&key(&[&ctx.settings.seed.to_string(), &self.rec.id, "mutants"])[..15], 16)
            .unwrap_or(ctx.settings.seed);
        let mutants = mutate::mutants(&verified.code, &self.rec.function.name, seed, q.mutants);
        let program = verified.code.clone();
        let run = |kind, sample, program| Exec { kind, round: 0, sample, program, tokens: 0, tests: None };
        let mut actions = vec![Action::Execute(run(AttemptKind::Coverage, 0, program))];
        for (i, m) in mutants.into_iter().enumerate() {
            let exec = run(AttemptKind::Mutant, i as u32, m.program);
            actions.push(Action::Execute(exec));
        }
        self.scoring = Scoring { pending: actions.len(), mutants: (actions.len() - 1) as u32, ..Scoring::default() };
        actions
    }

    /// A verdict of a quality run; the scores (and maybe a rejection) once the last one is in.
    pub(super) fn on_quality_verdict(&mut self, ctx: &Ctx, exec: &Exec, verdict: Verdict) -> Vec<Action> {
        let s = &mut self.scoring;
        match exec.kind {
            AttemptKind::Mutant => s.killed += !verdict.passed() as u32,
            _ => s.coverage = verdict.coverage,
        }
        s.pending = s.pending.saturating_sub(1);
        if s.pending > 0 {
            return Vec::new();
        }
        let q = score(s.mutants, s.killed, s.coverage.as_ref());
        if let Some((reason, detail)) = gate(&q, &ctx.settings.quality) {
            self.rec.reject(Stage::Quality, reason, detail);
        }
        self.rec.quality = Some(q);
        vec![Action::Finish]
    }
}
