//! The executor: runs a candidate program together with its tests in a separate, contained Python
//! process and returns a structured [`Verdict`]. A pass must not be forgeable by the candidate, and
//! nothing the candidate starts may outlive the verdict.

mod verdict;

pub use verdict::{Isolation, Job, Limits, Status, TestOutcome, TestStatus, Verdict};
