//! The CLI's [`Reporter`]: one indicatif progress bar per task, drawn to stderr. When stderr is not a
//! terminal (a log file, a Slurm job, CI) the bars are hidden, and a long command instead writes one
//! plain line every `UNITCODER_PROGRESS_SECS` seconds (30 by default; 0: none) with every running
//! task's count, and a line when each such task ends: a nine-minute synth in a log is not silent.
//! A clock thread writes the lines that fall due while nothing moves (one long model call, one
//! slow program), so a quiet log means a stopped command, not a busy one.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use unitcoder::progress::Reporter;

/// The default time between progress lines when stderr is not a terminal.
const LINE_EVERY_S: f64 = 30.0;

/// Progress bars for every running task.
#[allow(dead_code)]
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Plain progress lines, when the bars are hidden; shared with the clock thread.
    lines: Option<Arc<Mutex<Lines>>>,
}

/// The state of the plain progress lines: the tasks in the order they began.
struct Lines {
    every: Duration,
    /// When the last line was written (at first: when the command's first task began).
    last: Option<Instant>,
    /// Whether any progress line was written: only then does a task's end get its own line.
    said: bool,
    tasks: Vec<LineTask>,
}

struct LineTask {
    name: String,
    total: Option<u64>,
    pos: u64,
    started: Instant,
}

impl Lines {
    fn from_env() -> Option<Lines> {
        let every = match std::env::var("UNITCODER_PROGRESS_SECS") {
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => s,
                Ok(0.0) => return None,
                _ => {
                    eprintln!("warning: UNITCODER_PROGRESS_SECS={v}: not a number of seconds; using {LINE_EVERY_S}");
                    LINE_EVERY_S
                }
            },
            Err(_) => LINE_EVERY_S,
        };
        Some(Lines { every: Duration::from_secs_f64(every), last: None, said: false, tasks: Vec::new() })
    }

    /// The line for the running tasks, when one is due.
    fn due(&mut self, now: Instant) -> Option<String> {
        if self.tasks.is_empty() {
            return None;
        }
        let last = *self.last.get_or_insert(now);
        if now.duration_since(last) < self.every {
            return None;
        }
        self.last = Some(now);
        self.said = true;
        let parts: Vec<String> = self.tasks.iter().map(|t| t.describe(now)).collect();
        Some(format!("progress: {}", parts.join("; ")))
    }
}

impl LineTask {
    fn describe(&self, now: Instant) -> String {
        let took = now.duration_since(self.started);
        match self.total {
            Some(total) if total > 0 => {
                let pct = 100.0 * self.pos as f64 / total as f64;
                let eta = if self.pos > 0 && self.pos < total {
                    let left = took.as_secs_f64() / self.pos as f64 * (total - self.pos) as f64;
                    format!(", eta {}", human(Duration::from_secs_f64(left)))
                } else {
                    String::new()
                };
                format!("{} {}/{total} ({pct:.0}%) in {}{eta}", self.name, self.pos, human(took))
            }
            _ => format!("{} {} in {}", self.name, self.pos, human(took)),
        }
    }
}

/// Writes the lines that fall due between the tasks' own events, until the [`Bars`] are dropped.
/// It looks a few times per interval (at most once a second is enough for any interval): a line is
/// due at most a quarter of an interval late.
fn clock(lines: Weak<Mutex<Lines>>) {
    let spawned = std::thread::Builder::new().name("progress-lines".into()).spawn(move || loop {
        let Some(shared) = lines.upgrade() else { return };
        let nap = match shared.lock() {
            Ok(mut l) => {
                if let Some(text) = l.due(Instant::now()) {
                    eprintln!("{text}");
                }
                (l.every / 4).min(Duration::from_secs(1))
            }
            Err(_) => return,
        };
        drop(shared);
        std::thread::sleep(nap);
    });
    // Without the thread the lines still come with the tasks' events, as they did before it.
    drop(spawned);
}

/// `1h 2m 3s`, `2m 3s` or `3s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, sec) => format!("{h}h {m}m {sec}s"),
    }
}

#[allow(dead_code)]
impl Bars {
    pub fn new() -> Self {
        let multi = MultiProgress::new();
        let lines = if multi.is_hidden() { Lines::from_env().map(|l| Arc::new(Mutex::new(l))) } else { None };
        if let Some(lines) = &lines {
            clock(Arc::downgrade(lines));
        }
        Bars { multi, bars: Mutex::new(HashMap::new()), lines }
    }

    /// Updates the plain lines' state with `change` and writes a line if one is due.
    fn line(&self, change: impl FnOnce(&mut Lines, Instant) -> Option<String>) {
        let Some(lines) = &self.lines else { return };
        let Ok(mut lines) = lines.lock() else { return };
        let now = Instant::now();
        let mut out = change(&mut lines, now);
        if out.is_none() {
            out = lines.due(now);
        }
        if let Some(text) = out {
            eprintln!("{text}");
        }
    }
}

impl Reporter for Bars {
    fn begin(&self, task: &str, total: Option<u64>) {
        self.line(|l, now| {
            l.tasks.retain(|t| t.name != task);
            l.tasks.push(LineTask { name: task.to_string(), total, pos: 0, started: now });
            None
        });
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {pos} {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = self.multi.add(bar.with_prefix(task.to_string()));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(task.to_string(), bar);
        }
    }

    fn advance(&self, task: &str, n: u64) {
        self.line(|l, _| {
            if let Some(t) = l.tasks.iter_mut().find(|t| t.name == task) {
                t.pos += n;
            }
            None
        });
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(task) {
                bar.inc(n);
            }
        }
    }

    fn end(&self, task: &str) {
        self.line(|l, now| {
            let at = l.tasks.iter().position(|t| t.name == task)?;
            let t = l.tasks.remove(at);
            // A task of a command that never wrote a progress line ends without a word.
            l.said.then(|| format!("progress: {} done: {} in {}", t.name, t.pos, human(now.duration_since(t.started))))
        });
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(bar) = bars.remove(task) {
                bar.finish();
            }
        }
    }

    fn note(&self, message: &str) {
        // Through the MultiProgress so the message does not tear a bar; but indicatif drops
        // println when its target is hidden (stderr not a terminal), and notes must never be lost.
        if self.multi.is_hidden() || self.multi.println(message).is_err() {
            eprintln!("{message}");
        }
    }
}
