//! The execution seam: the harness hands jobs to anything implementing [`Execute`] (the sandbox in
//! the binary, a recorded or scripted executor in tests) and receives verdicts as they finish.

use crate::sandbox::{Job, Verdict};

/// Runs jobs and streams their verdicts, in any order; each verdict's `id` is its job's `id`.
pub trait Execute: Send + Sync {
    /// Runs every job, calling `on_verdict` once per job as each finishes.
    fn run_batch(&self, jobs: Vec<Job>, on_verdict: &mut dyn FnMut(Verdict));
}

impl Execute for crate::sandbox::Sandbox {
    fn run_batch(&self, jobs: Vec<Job>, on_verdict: &mut dyn FnMut(Verdict)) {
        crate::sandbox::Sandbox::run_batch(self, jobs, on_verdict)
    }
}
