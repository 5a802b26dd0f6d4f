//! Progress reporting for long work. The library reports through [`Reporter`]; only the binary turns
//! that into progress bars, so library users (and tests) are never forced to draw to a terminal.

/// Receives progress events from long-running library work. Implementations must be cheap and
/// thread-safe: stages call them from worker threads.
pub trait Reporter: Send + Sync {
    /// A task named `task` begins; `total` is the number of units when known.
    fn begin(&self, task: &str, total: Option<u64>);
    /// `n` more units of `task` are done.
    fn advance(&self, task: &str, n: u64);
    /// `task` is finished.
    fn end(&self, task: &str);
    /// A one-line human message (a warning, a degraded mode, a summary).
    fn note(&self, message: &str);
}

/// A reporter that drops every event; the default for library callers that do not care.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn begin(&self, _task: &str, _total: Option<u64>) {}
    fn advance(&self, _task: &str, _n: u64) {}
    fn end(&self, _task: &str) {}
    fn note(&self, _message: &str) {}
}
