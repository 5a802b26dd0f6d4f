//! The quality step of synthesis, after polish: how much a record's kept tests actually check.
//! Model-written tests are the pipeline's oracle, and a weak suite verifies wrong code, so each
//! accepted record is scored twice in the sandbox, on its verified program:
//!
//! - **mutation score**: [`mutate`] makes up to [`QualitySettings::mutants`] small edits of the
//!   function; each mutant runs with the tests, and a mutant is killed when the verdict is not a pass
//!   (a timeout counts as killed). Killed / total is the score. A suite that kills no mutant is
//!   vacuous and the record is rejected (`quality/no_mutant_killed`).
//! - **coverage**: one traced run ([`crate::sandbox::Sandbox::run_traced`]) counts the function's
//!   statements and branch outcomes the tests execute.
//!
//! The scores land in [`Quality`] on the record, the emitted formats carry them, and the thresholds
//! (`--min-mutation-score` first, then `--min-coverage`) reject records with the flag named.

pub mod mutate;

use crate::pipeline::record::Quality;
use crate::sandbox::Coverage;
use std::time::Duration;

/// The quality step's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QualitySettings {
    /// Most mutants per function (0: no quality step, records carry no scores).
    pub mutants: usize,
    /// Records whose mutation score is lower are rejected (`quality/low_mutation_score`).
    pub min_mutation_score: f64,
    /// Records whose line coverage is lower are rejected (`quality/low_coverage`).
    pub min_coverage: f64,
}

/// Mutants per function by default: the issue asks for 10–30; 20 keeps the cost at about twice a
/// record's other executions while a score still moves in steps of 5%.
pub const DEFAULT_MUTANTS: usize = 20;
/// The default `--min-mutation-score` (see the README's "Test quality" section for the measurement
/// it was chosen from).
pub const DEFAULT_MIN_MUTATION_SCORE: f64 = 0.3;
/// The default `--min-coverage` (line coverage).
pub const DEFAULT_MIN_COVERAGE: f64 = 0.5;

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            mutants: DEFAULT_MUTANTS,
            min_mutation_score: DEFAULT_MIN_MUTATION_SCORE,
            min_coverage: DEFAULT_MIN_COVERAGE,
        }
    }
}

/// The time limit of a mutant's run: four times what the verified program took plus a second,
/// within `limit`. A mutant that loops (`i += 1` → `i -= 1`) is killed by this limit, so it should
/// not cost the full limit of an ordinary run.
pub fn mutant_timeout(verified_ms: u64, limit: Duration) -> Duration {
    Duration::from_millis(verified_ms.saturating_mul(4).saturating_add(1000)).min(limit)
}

/// The scores of a record from its mutants' outcomes and its traced run's coverage.
pub fn score(mutants: u32, killed: u32, coverage: Option<&Coverage>) -> Quality {
    let ratio = |hit: u64, all: u64| (all > 0).then(|| hit as f64 / all as f64);
    Quality {
        mutation_score: ratio(killed as u64, mutants as u64),
        mutants,
        killed,
        line_coverage: coverage.and_then(|c| ratio(c.lines_hit, c.lines)),
        branch_coverage: coverage.and_then(|c| ratio(c.branches_hit, c.branches)),
        tracer: coverage.map(|c| c.tracer.clone()).unwrap_or_default(),
    }
}

/// Why a record with these scores is rejected (reason, detail naming the threshold), if it is.
/// The mutation score is checked first: a suite can cover every line and still check nothing.
pub fn gate(q: &Quality, s: &QualitySettings) -> Option<(&'static str, String)> {
    if q.mutants > 0 && q.killed == 0 {
        return Some(("no_mutant_killed", format!("the tests pass on all {} mutants of the function", q.mutants)));
    }
    match q.mutation_score {
        Some(m) if m < s.min_mutation_score => {
            return Some((
                "low_mutation_score",
                format!(
                    "mutation score {m:.2} ({} of {} mutants killed) < --min-mutation-score {}",
                    q.killed, q.mutants, s.min_mutation_score
                ),
            ))
        }
        None if s.min_mutation_score > 0.0 => {
            return Some((
                "low_mutation_score",
                format!(
                    "no mutant could be made of the function, so --min-mutation-score {} is not met",
                    s.min_mutation_score
                ),
            ))
        }
        _ => {}
    }
    match q.line_coverage {
        Some(c) if c < s.min_coverage => {
            Some(("low_coverage", format!("line coverage {c:.2} < --min-coverage {}", s.min_coverage)))
        }
        None if s.min_coverage > 0.0 => Some((
            "low_coverage",
            format!("line coverage could not be measured, so --min-coverage {} is not met", s.min_coverage),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(lines: u64, lines_hit: u64, branches: u64, branches_hit: u64) -> Coverage {
        Coverage { tracer: "sys.settrace".into(), lines, lines_hit, branches, branches_hit }
    }

    #[test]
    fn scores_are_ratios_and_absent_without_a_denominator() {
        let q = score(8, 6, Some(&cov(4, 3, 0, 0)));
        assert_eq!(q.mutation_score, Some(0.75));
        assert_eq!(q.line_coverage, Some(0.75));
        assert_eq!(q.branch_coverage, None, "no branch: no branch coverage");
        assert_eq!(score(0, 0, None).mutation_score, None);
    }

    #[test]
    fn a_suite_that_kills_no_mutant_is_rejected_as_vacuous_before_any_threshold() {
        let off = QualitySettings { mutants: 20, min_mutation_score: 0.0, min_coverage: 0.0 };
        let q = score(12, 0, Some(&cov(4, 4, 2, 2)));
        let (reason, detail) = gate(&q, &off).expect("rejected");
        assert_eq!(reason, "no_mutant_killed");
        assert!(detail.contains("all 12 mutants"), "{detail}");
    }

    #[test]
    fn thresholds_reject_with_the_flag_named_mutation_score_first() {
        let s = QualitySettings { mutants: 20, min_mutation_score: 0.5, min_coverage: 0.9 };
        let (reason, detail) = gate(&score(10, 2, Some(&cov(4, 2, 0, 0))), &s).expect("rejected");
        assert_eq!(reason, "low_mutation_score");
        assert!(detail.contains("--min-mutation-score 0.5") && detail.contains("2 of 10"), "{detail}");
        let (reason, detail) = gate(&score(10, 8, Some(&cov(4, 2, 0, 0))), &s).expect("rejected");
        assert_eq!(reason, "low_coverage");
        assert!(detail.contains("--min-coverage 0.9") && detail.contains("0.50"), "{detail}");
        assert_eq!(gate(&score(10, 8, Some(&cov(10, 9, 2, 1))), &s), None);
    }

    #[test]
    fn a_mutant_timeout_is_a_few_times_the_verified_run_within_the_limit() {
        let limit = Duration::from_secs(10);
        assert_eq!(mutant_timeout(250, limit), Duration::from_millis(2000));
        assert_eq!(mutant_timeout(60_000, limit), limit);
    }
}
