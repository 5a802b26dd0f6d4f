//! The executor: runs a candidate program together with its tests in a separate, contained Python
//! process and returns a structured [`Verdict`]. A pass must not be forgeable by the candidate, and
//! nothing the candidate starts may outlive the verdict.
//!
//! Layout: [`Sandbox`] owns a pool of warm fork servers (`worker.rs`, running the embedded
//! Python of `server.py`, `harness.py` and their parts), each in its own network and mount namespaces under Landlock with its
//! own cgroups (`cgroup.rs`); every job runs in a child cloned into a fresh PID namespace as an
//! unprivileged uid. The verdict is decided on the trusted side (`judge.rs`) from what the server
//! observed. [`crate::python::source`] reads program files as Python would (BOM, PEP 263). The threat model and
//! its residual risks are in `docs/sandbox.md`.

mod boot;
mod cgroup;
mod judge;
#[cfg(test)]
mod tracer_tests;
mod verdict;
mod worker;

pub use verdict::{Coverage, Isolation, Job, Limits, Status, TestOutcome, TestStatus, Verdict};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};
use worker::{WireJob, WireLimits, Worker, WorkerSpec};

/// How to run candidates.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The Python interpreter (a venv's `bin/python` works); a bare name is looked up on `PATH`.
    pub python: PathBuf,
    /// Number of fork servers, i.e. jobs run at once.
    pub jobs: usize,
    /// Limits for jobs that carry none of their own.
    pub limits: Limits,
    /// Heavy modules a fork server may import (once, on the first job that imports them) so that
    /// later candidates start with them loaded.
    pub preload: Vec<String>,
    /// How many bytes of the candidate's stdout and stderr the verdict keeps (the tail).
    pub tail_bytes: usize,
    /// Where the sandbox keeps what speeds up its start (`None`: nothing is kept): the harness's
    /// bytecode per interpreter version, and the interpreter a launcher script (pyenv's shim)
    /// named last time, which is asked again on every start all the same. Only files owned by
    /// this user that nobody else may write are used. The CLI uses `<cache>/sandbox`.
    pub cache_dir: Option<PathBuf>,
    /// How long a fork server (or a launcher script asked which interpreter it runs) may take to
    /// answer when it starts, before it is killed and the start fails
    /// ([`SandboxError::StartTimeout`]): an interpreter that never answers (a wrapper waiting on
    /// something) must not hang the run. A real server answers within a second; modules are
    /// preloaded later, on first use.
    pub start_timeout: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: PathBuf::from("python3"),
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            limits: Limits::default(),
            preload: [
                "numpy",
                "pandas",
                "scipy",
                "sklearn",
                "multiprocessing",
                "multiprocessing.pool",
                "subprocess",
                "datetime",
                "statistics",
                "fractions",
                "decimal",
                "hashlib",
                "csv",
                "inspect",
                "traceback",
                "unittest.mock",
                "tempfile",
                "collections.abc",
                "dataclasses",
                "json",
                "logging",
                "pathlib",
                "random",
                "threading",
            ]
            .map(String::from)
            .to_vec(),
            tail_bytes: 4096,
            cache_dir: None,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

/// [`SandboxConfig::start_timeout`]'s default: generous for a loaded machine starting many servers at
/// once from a cold bytecode cache.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);

/// A failed server's log for the message, with what an empty one or Python 2's usage means: a
/// program that is no Python 3 (`/bin/true`) writes nothing.
fn start_log(log: &str) -> String {
    if log.trim().is_empty() {
        return "it wrote nothing: is it a Python >= 3.9 interpreter?".into();
    }
    let hint = if log.contains("Unknown option: -I") {
        " (that is Python 2's answer: unitcoder needs Python >= 3.9)"
    } else {
        ""
    };
    format!("its log ends with{hint}:\n{log}")
}

/// Why the sandbox could not be set up (failures of a candidate are verdicts, not errors).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The interpreter does not exist.
    #[error("python interpreter not found: {}", .0.display())]
    PythonNotFound(PathBuf),
    /// The interpreter exists but cannot run the sandbox.
    #[error("python interpreter {} is not usable: {detail}", .path.display())]
    PythonNotRunnable { path: PathBuf, detail: String },
    /// A fork server failed during its set-up.
    #[error("sandbox server with {} failed to start; {}", .python.display(), start_log(.log))]
    ServerStart { python: PathBuf, log: String },
    /// An interpreter (or the launcher script that names it) gave no answer within
    /// [`SandboxConfig::start_timeout`] of starting; it was killed.
    #[error("{} gave no answer within {secs} s of starting, and was stopped (is it a Python interpreter?); its log ends with:\n{log}", .python.display())]
    StartTimeout { python: PathBuf, secs: u64, log: String },
    /// A fork server stopped answering.
    #[error("sandbox server died: {0}")]
    ServerDied(String),
    /// A fork server lost its zygote during the job (the job is run again on a fresh server, once).
    #[error("sandbox server lost its zygote: {0}")]
    WorkerLost(String),
    /// Local file-system trouble (the scratch directory, a worker's directory or log): what was
    /// being done, to which path, and the cause.
    #[error("sandbox: {doing} {}: {cause}", .path.display())]
    Io { doing: &'static str, path: PathBuf, cause: std::io::Error },
    /// A job could not be encoded for the fork server.
    #[error("sandbox: cannot encode a job: {0}")]
    Encode(serde_json::Error),
    /// Something that cannot happen did (a thread panicked, a pipe was not created): a bug.
    #[error("sandbox: {0} (a bug in unitcoder)")]
    Internal(&'static str),
}

/// One worker slot: its index (names its directory, cgroups and uid) and its server, if running.
struct Slot {
    index: usize,
    worker: Option<Worker>,
}

/// A pool of warm, contained Python fork servers. `Send + Sync`: share it across threads.
pub struct Sandbox {
    config: SandboxConfig,
    python: PathBuf,
    uid_base: u32,
    isolation: Isolation,
    warnings: Vec<String>,
    idle: Mutex<Vec<Slot>>,
    returned: Condvar,
    // Declared last so it is removed after the servers (in `idle`) are gone.
    scratch: tempfile::TempDir,
}

static SANDBOXES: AtomicU32 = AtomicU32::new(0);

/// Scratch directories and worker cgroups are named `unitcoder-sandbox-<pid>-...` after their owner.
const SCRATCH_PREFIX: &str = "unitcoder-sandbox-";

/// Removes scratch directories and cgroups left by sandboxes whose process is gone (a killed run, or
/// a sandbox kept in a `static`, which is never dropped). Best effort: errors are ignored.
fn sweep_stale() {
    let owner_gone = |name: &str| {
        let pid = name.strip_prefix(SCRATCH_PREFIX).and_then(|rest| rest.split('-').next());
        pid.and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists())
    };
    let tmp = std::env::temp_dir();
    for parent in [
        tmp.clone(),
        PathBuf::from("/sys/fs/cgroup/memory/unitcoder"),
        PathBuf::from("/sys/fs/cgroup/pids/unitcoder"),
        PathBuf::from("/sys/fs/cgroup/unitcoder"),
    ] {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !owner_gone(&name) {
                continue;
            }
            if parent == tmp {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::remove_dir(entry.path()); // an empty cgroup; fails while in use
            }
        }
    }
}

impl Sandbox {
    /// Finds the interpreter and starts `config.jobs` fork servers (each checks the Python version).
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let given = resolve_python(&config.python)?;
        sweep_stale();
        let scratch = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|cause| SandboxError::Io {
                doing: "creating a scratch directory in",
                path: std::env::temp_dir(),
                cause,
            })?;
        // Distinct unprivileged uids per worker and per sandbox, so RLIMIT_NPROC (counted per uid)
        // of one candidate never includes another's processes.
        let serial = SANDBOXES.fetch_add(1, Ordering::Relaxed);
        let uid_base = 200_000 + ((std::process::id() % 5000) * 64 + (serial % 64)) * 64;
        let jobs = config.jobs.max(1);
        let cache = config.cache_dir.as_deref();
        let start_all = |python: &Path| -> Vec<Result<Worker, SandboxError>> {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..jobs)
                    .map(|i| {
                        let spec = WorkerSpec {
                            python,
                            scratch: scratch.path(),
                            preload: &config.preload,
                            tail_bytes: config.tail_bytes,
                            cache,
                            start_timeout: config.start_timeout,
                        };
                        let name = worker_name(scratch_tag(scratch.path()), i);
                        s.spawn(move || Worker::start(&spec, i, &name, uid_base + i as u32))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(SandboxError::Internal("a worker's start panicked"))))
                    .collect()
            })
        };
        let (python, started) = boot::start_workers(&given, cache, config.start_timeout, &start_all);
        let mut slots = Vec::with_capacity(jobs);
        for (index, w) in started.into_iter().enumerate() {
            slots.push(Slot { index, worker: Some(w?) });
        }
        let (isolation, warnings) = slots.first().and_then(|s| s.worker.as_ref()).map(isolation_of).unwrap_or_default();
        Ok(Sandbox {
            config,
            python,
            uid_base,
            isolation,
            warnings,
            idle: Mutex::new(slots),
            returned: Condvar::new(),
            scratch,
        })
    }

    /// What a user should hear about this sandbox before trusting it: isolation below `full` and
    /// why, and the servers' notes (e.g. a cgroup that could not be set up). The library never
    /// prints; the caller shows these.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The isolation mechanisms actually in force.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// The scratch directory: the workers' directories and their server logs (`w<i>.log`).
    pub fn scratch_dir(&self) -> &std::path::Path {
        self.scratch.path()
    }

    /// The configuration this sandbox runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Runs one job on the next free worker, blocking until its verdict.
    pub fn run(&self, job: &Job) -> Verdict {
        self.run_job(job, None)
    }

    /// Runs one job like [`Sandbox::run`], tracing which lines and branches of the program's
    /// top-level function `function` the tests execute: the verdict's `coverage` (absent when the
    /// run did not get to the end of its tests, or the program has no such function).
    pub fn run_traced(&self, job: &Job, function: &str) -> Verdict {
        self.run_job(job, Some(function))
    }

    fn run_job(&self, job: &Job, coverage: Option<&str>) -> Verdict {
        let started = Instant::now();
        let mut slot = self.take_slot();
        let limits = job.limits.as_ref().unwrap_or(&self.config.limits);
        let nonce = nonce();
        let wire = WireJob {
            nonce: &nonce,
            code: &job.program,
            tests: &job.tests,
            limits: WireLimits::from(limits),
            strict: job.strict_assertions,
            coverage,
        };
        let mut outcome = self.run_on(&mut slot, &wire);
        if matches!(outcome, Err(SandboxError::WorkerLost(_))) {
            // The zygote died (not by this job's hand: it cannot signal it): a fresh worker, once.
            outcome = self.run_on(&mut slot, &wire);
        }
        self.give_back(slot);
        let elapsed = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(report) => {
                // Strict rules judge the tests themselves: a test that checks nothing never passes there.
                let optional = job.assertions_optional && !job.strict_assertions;
                judge::judge(&job.id, &report, &nonce, &self.isolation, elapsed, optional)
            }
            Err(e) => Verdict {
                id: job.id.clone(),
                status: Status::Error,
                reason: Some(format!("sandbox: {e}")),
                tests: Vec::new(),
                duration_ms: elapsed,
                stdout_tail: String::new(),
                stderr_tail: String::new(),
                isolation: self.isolation.clone(),
                coverage: None,
                running: None,
            },
        }
    }

    /// Runs `jobs` over `config.jobs` workers and hands each verdict to `on_verdict` (on the calling
    /// thread) as soon as it is ready, in completion order; `verdict.id` is the job's id.
    pub fn run_batch(&self, jobs: Vec<Job>, on_verdict: &mut dyn FnMut(Verdict)) {
        self.run_batch_until(jobs, &std::sync::atomic::AtomicBool::new(false), on_verdict)
    }

    /// [`Sandbox::run_batch`], starting no job once `cancel` is set: the jobs in progress finish
    /// and their verdicts are handed over; the others get none.
    pub fn run_batch_until(
        &self,
        jobs: Vec<Job>,
        cancel: &std::sync::atomic::AtomicBool,
        on_verdict: &mut dyn FnMut(Verdict),
    ) {
        let threads = self.config.jobs.max(1).min(jobs.len());
        let queue = Mutex::new(jobs.into_iter());
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (queue, tx) = (&queue, tx.clone());
                s.spawn(move || loop {
                    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let next = match queue.lock() {
                        Ok(mut q) => q.next(),
                        Err(_) => None,
                    };
                    let Some(job) = next else { break };
                    if tx.send(self.run(&job)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for verdict in rx {
                on_verdict(verdict);
            }
        });
    }

    /// Runs `wire` on the slot's server, starting one if there is none; a server that fails is
    /// dropped from the slot.
    fn run_on(&self, slot: &mut Slot, wire: &WireJob) -> Result<worker::Report, SandboxError> {
        let mut w = match slot.worker.take() {
            Some(w) => w,
            None => self.restart(slot.index)?,
        };
        let report = w.run(wire);
        if report.is_ok() {
            slot.worker = Some(w);
        }
        report
    }

    fn take_slot(&self) -> Slot {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(slot) = idle.pop() {
                return slot;
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, slot: Slot) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(slot);
        self.returned.notify_one();
    }

    fn restart(&self, index: usize) -> Result<Worker, SandboxError> {
        let spec = WorkerSpec {
            python: &self.python,
            scratch: self.scratch.path(),
            preload: &self.config.preload,
            tail_bytes: self.config.tail_bytes,
            cache: self.config.cache_dir.as_deref(),
            start_timeout: self.config.start_timeout,
        };
        Worker::start(&spec, index, &worker_name(scratch_tag(self.scratch.path()), index), self.uid_base + index as u32)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stop the servers (their children die with them) before the cgroups and scratch go: all
        // asked at once, then each awaited.
        let mut slots = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for w in slots.iter_mut().filter_map(|s| s.worker.as_mut()) {
            w.close_input();
        }
        drop(slots);
    }
}

fn scratch_tag(scratch: &Path) -> String {
    scratch.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn worker_name(tag: String, index: usize) -> String {
    format!("{tag}-w{index}")
}

/// The isolation a worker reports, and the warnings it calls for.
fn isolation_of(w: &Worker) -> (Isolation, Vec<String>) {
    let mut missing = w.ready.missing.clone();
    missing.sort();
    let active = w.ready.active.clone();
    let level = if missing.is_empty() {
        "full"
    } else if active.iter().any(|a| a.ends_with("namespace") || a == "landlock") {
        "partial"
    } else {
        "none"
    };
    let mut warnings = Vec::new();
    if !missing.is_empty() {
        warnings.push(format!("sandbox isolation is {level}: missing {}", missing.join(", ")));
    }
    warnings.extend(w.ready.notes.iter().map(|note| format!("sandbox: {note}")));
    if let Some(e) = &w.cgroup_error {
        warnings.push(format!("sandbox: cgroups: {e}"));
    }
    (Isolation { level: level.to_string(), active, missing }, warnings)
}

fn resolve_python(python: &Path) -> Result<PathBuf, SandboxError> {
    if python.components().count() > 1 {
        return if python.is_file() {
            Ok(python.to_path_buf())
        } else {
            Err(SandboxError::PythonNotFound(python.into()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(python))
        .find(|p| p.is_file())
        .ok_or_else(|| SandboxError::PythonNotFound(python.into()))
}

/// A fresh per-run secret: events that do not carry it are forgeries.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok();
    if !ok {
        use sha2::Digest;
        let seed = format!("{:?}{:?}{}", Instant::now(), std::time::SystemTime::now(), std::process::id());
        bytes.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes())[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sandbox>();
    }

    #[test]
    fn a_missing_interpreter_is_named_in_the_error() {
        let config = SandboxConfig { python: PathBuf::from("/no/such/python3"), ..SandboxConfig::default() };
        let err = Sandbox::new(config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/no/such/python3"), "{err}");
    }

    #[test]
    fn launcher_scripts_are_told_from_native_interpreters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = dir.path().join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write");
        assert!(!boot::is_native_executable(&shim));
        assert!(boot::is_native_executable(&std::env::current_exe().expect("exe")));
    }

    #[test]
    fn a_native_program_that_is_no_python_fails_to_start_with_its_name() {
        // No probe runs for a native executable: the failure shows when the server starts.
        let config = SandboxConfig { python: PathBuf::from("/bin/true"), jobs: 1, ..SandboxConfig::default() };
        let err = Sandbox::new(config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/bin/true") && err.contains("failed to start"), "{err}");
    }

    #[test]
    fn nonces_are_fresh() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
