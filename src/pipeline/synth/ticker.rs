//! The timings snapshots of a run, written by their own thread every
//! [`SynthSettings::checkpoint_s`](super::SynthSettings::checkpoint_s) seconds. The model thread only
//! publishes its counters (cheaply, between steps) and marks when it enters and leaves a generate
//! call; the ticker adds the time of a call still in progress, so a run killed in the middle of a
//! long batch still has its numbers up to a few seconds before the kill.

use crate::pipeline::journal::{Journal, JournalError};
use crate::pipeline::run_dir::RunTimings;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// What the model thread publishes.
struct Published {
    t: RunTimings,
    generating_since: Option<Instant>,
}

/// Shared between the model thread and the ticker thread.
pub(super) struct Ticker<'a> {
    state: Mutex<Published>,
    journal: Mutex<Journal>,
    started: Instant,
    idle_us: &'a AtomicU64,
}

impl<'a> Ticker<'a> {
    pub fn new(t: RunTimings, journal: Journal, started: Instant, idle_us: &'a AtomicU64) -> Self {
        Ticker {
            state: Mutex::new(Published { t, generating_since: None }),
            journal: Mutex::new(journal),
            started,
            idle_us,
        }
    }

    /// The model thread's counters so far; `generating` says whether it is entering a generate call.
    pub fn publish(&self, t: &RunTimings, generating: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.t = t.clone();
            s.generating_since = generating.then(Instant::now);
        }
    }

    /// Appends the timings as they are now to the journal; `ended` marks the run's last line.
    pub fn write(&self, ended: bool) -> Result<RunTimings, JournalError> {
        let mut t = match self.state.lock() {
            Ok(s) => {
                let mut t = s.t.clone();
                // A generate call in progress counts as model time already.
                t.model_s += s.generating_since.map_or(0.0, |since| since.elapsed().as_secs_f64());
                t
            }
            Err(_) => RunTimings::default(),
        };
        t.ended = ended;
        t.wall_s = self.started.elapsed().as_secs_f64();
        // Workers idle after the last program are not waiting on the model; that tail is small.
        t.sandbox_idle_s = self.idle_us.load(Ordering::Relaxed) as f64 / 1e6;
        if let Ok(mut j) = self.journal.lock() {
            j.append(&t)?;
        }
        Ok(t)
    }

    /// The ticker thread's loop: a snapshot every `every` until `stop` is dropped. Write errors end
    /// the loop; the run's last line reports them.
    pub fn tick(&self, every: Duration, stop: mpsc::Receiver<()>) {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
            if self.write(false).is_err() {
                break;
            }
        }
    }
}
