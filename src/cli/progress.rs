//! The CLI's [`Reporter`]: one indicatif progress bar per task, drawn to stderr (hidden when stderr
//! is not a terminal, so logs and CI output stay clean).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use unitcoder::progress::Reporter;

/// Progress bars for every running task.
#[allow(dead_code)]
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

#[allow(dead_code)]
impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Reporter for Bars {
    fn begin(&self, task: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
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
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(task) {
                bar.inc(n);
            }
        }
    }

    fn end(&self, task: &str) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(bar) = bars.remove(task) {
                bar.finish();
            }
        }
    }

    fn note(&self, message: &str) {
        // println through the MultiProgress so the message does not tear a bar.
        if self.multi.println(message).is_err() {
            eprintln!("{message}");
        }
    }
}
