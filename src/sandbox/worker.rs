//! One fork server: a warm Python process (harness.py, server.py and their parts, one module
//! embedded in the binary) that sets up its namespaces and Landlock once, then runs one job
//! at a time in a freshly cloned, contained child. This file owns the process, its cgroups and the
//! line-oriented JSON protocol.

use super::boot::{source_key, BOOT, TOO_OLD};
use super::cgroup::WorkerCgroup;
use super::{Limits, SandboxError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The Python side, one module of one file per concern (docs/sandbox.md has the map), compiled
/// under one trusted file name: the harness (which opens the module with the imports all parts
/// use) and its in-child parts, the trusted preparation and its helpers (tautology check,
/// hidden-host root, coverage tracer), then the server's parts, each before its first use at
/// import time (the server's mixins before `Server`).
const SOURCE: &str = concat!(
    include_str!("harness.py"),
    "\n",
    include_str!("prepare.py"),
    "\n",
    include_str!("events.py"),
    "\n",
    include_str!("probe.py"),
    "\n",
    include_str!("markers.py"),
    "\n",
    include_str!("audit.py"),
    "\n",
    include_str!("tautology.py"),
    "\n",
    include_str!("rootfs.py"),
    "\n",
    include_str!("coverage.py"),
    "\n",
    include_str!("linux.py"),
    "\n",
    include_str!("landlock.py"),
    "\n",
    include_str!("protocol.py"),
    "\n",
    include_str!("namespaces.py"),
    "\n",
    include_str!("cgroups.py"),
    "\n",
    include_str!("zygote.py"),
    "\n",
    include_str!("child.py"),
    "\n",
    include_str!("supervise.py"),
    "\n",
    include_str!("jobdir.py"),
    "\n",
    include_str!("server.py")
);
/// What the server reports once it is set up.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Ready {
    pub active: Vec<String>,
    pub missing: Vec<String>,
    pub notes: Vec<String>,
}

/// The server's account of one job: what it observed from outside the child.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Report {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom: bool,
    pub events: Vec<String>,
    pub events_truncated: bool,
    pub expected: Vec<String>,
    pub load_error: Option<LoadError>,
    pub setup_error: Option<String>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub leftover: u64,
    pub wall_ms: u64,
    /// The server lost its zygote during this job (its child died with it), and exits.
    pub lost: Option<String>,
}

/// The program or the tests failed to compile.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LoadError {
    pub w: String,
    pub r: String,
    pub m: String,
}

/// A job as the server reads it.
#[derive(Serialize)]
pub(crate) struct WireJob<'a> {
    pub nonce: &'a str,
    pub code: &'a str,
    pub tests: &'a str,
    pub limits: WireLimits,
    /// [`super::Job::strict_assertions`].
    pub strict: bool,
    /// The top-level function whose coverage the harness traces, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<&'a str>,
}

/// Limits in the server's units.
#[derive(Serialize)]
pub(crate) struct WireLimits {
    timeout: f64,
    memory_mb: u64,
    max_procs: u64,
    max_file_mb: u64,
    max_open_files: u64,
}

impl From<&Limits> for WireLimits {
    fn from(l: &Limits) -> Self {
        WireLimits {
            timeout: l.timeout.as_secs_f64(),
            memory_mb: l.memory_mb,
            max_procs: l.max_procs,
            max_file_mb: l.max_file_mb,
            max_open_files: l.max_open_files,
        }
    }
}

/// Settings every worker of a sandbox shares.
pub(crate) struct WorkerSpec<'a> {
    pub python: &'a Path,
    pub scratch: &'a Path,
    pub preload: &'a [String],
    pub tail_bytes: usize,
    /// [`super::SandboxConfig::cache_dir`].
    pub cache: Option<&'a Path>,
    /// [`super::SandboxConfig::start_timeout`].
    pub start_timeout: std::time::Duration,
}

/// A running fork server.
pub(crate) struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
    pub ready: Ready,
    /// Why the cgroups could not be created, when they could not.
    pub cgroup_error: Option<String>,
    // Dropped after the server is killed (see Drop): a group with live members cannot be removed.
    _cgroup: Option<WorkerCgroup>,
}

impl Worker {
    /// Starts worker number `index`, named `name`, running as `uid`, and waits until it is set up.
    pub(crate) fn start(spec: &WorkerSpec, index: usize, name: &str, uid: u32) -> Result<Worker, SandboxError> {
        let dir = spec.scratch.join(name);
        std::fs::create_dir_all(&dir).map_err(|cause| SandboxError::Io {
            doing: "creating",
            path: dir.clone(),
            cause,
        })?;
        let (cgroup, cgroup_error) = match WorkerCgroup::create(name) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        };
        let cfg = json!({
            "worker_dir": dir,
            "uid": uid,
            "cgroup": cgroup.as_ref().map(|c| c.to_json()),
            "preload": spec.preload,
            "tail_bytes": spec.tail_bytes,
            "index": index,
        });
        let log = spec.scratch.join(format!("{name}.log"));
        let log_file =
            File::create(&log).map_err(|cause| SandboxError::Io { doing: "creating", path: log.clone(), cause })?;
        // -I: ignore PYTHON* variables and user site-packages; the environment is an allow-list.
        let mut child = Command::new(spec.python)
            .args(["-I", "-c", BOOT, SOURCE, &cfg.to_string(), source_key(SOURCE)])
            .arg(spec.cache.map(|c| c.as_os_str()).unwrap_or_default())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            // A process group of its own: a terminal's Ctrl-C goes to the foreground group, and
            // must reach only unitcoder (which stops its run in order), not kill the jobs in flight
            // into verdicts that would look like the programs' own failures.
            .process_group(0)
            .spawn()
            .map_err(|e| SandboxError::PythonNotRunnable { path: spec.python.to_path_buf(), detail: e.to_string() })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SandboxError::Internal("the fork server's pipes are missing"));
        };
        // The ready line is read on a thread so that the wait has a deadline: a read on the pipe
        // cannot be given one, and an interpreter that never answers would hang the whole run.
        let (answered, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            let _ = answered.send((stdout, read, line));
        });
        let (stdout, read, line) = match answer.recv_timeout(spec.start_timeout) {
            Ok(answer) => answer,
            Err(_) => {
                // The whole group: a wrapper's children hold the pipe too, and the reading
                // thread ends once every holder is gone.
                kill_group(&mut child);
                return Err(SandboxError::StartTimeout {
                    python: spec.python.to_path_buf(),
                    secs: spec.start_timeout.as_secs(),
                    log: tail_of(&log),
                });
            }
        };
        let ready = match read {
            Ok(n) if n > 0 => serde_json::from_str::<Ready>(&line).ok(),
            _ => None,
        };
        let Some(ready) = ready else {
            let _ = child.kill();
            let _ = child.wait();
            let tail = tail_of(&log);
            if let Some(at) = tail.find(TOO_OLD) {
                let detail = tail[at + "unitcoder: ".len()..].lines().next().unwrap_or_default().to_string();
                return Err(SandboxError::PythonNotRunnable { path: spec.python.to_path_buf(), detail });
            }
            return Err(SandboxError::ServerStart { python: spec.python.to_path_buf(), log: tail });
        };
        Ok(Worker { child, stdin: Some(stdin), stdout, log, ready, cgroup_error, _cgroup: cgroup })
    }

    /// Sends one job and waits for the server's report. An error means the server is gone.
    pub(crate) fn run(&mut self, job: &WireJob) -> Result<Report, SandboxError> {
        let mut line = serde_json::to_string(job).map_err(SandboxError::Encode)?;
        line.push('\n');
        let dead = |what: &str, log: &Path| SandboxError::ServerDied(format!("{what}; server log: {}", tail_of(log)));
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(dead("the server was shut down", &self.log));
        };
        if stdin.write_all(line.as_bytes()).and_then(|_| stdin.flush()).is_err() {
            return Err(dead("writing the job failed", &self.log));
        }
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(n) if n > 0 => {}
            _ => return Err(dead("no report", &self.log)),
        }
        let report: Report =
            serde_json::from_str(&answer).map_err(|e| SandboxError::ServerDied(format!("unreadable report: {e}")))?;
        match report.lost {
            Some(why) => Err(SandboxError::WorkerLost(why)),
            None => Ok(report),
        }
    }
}

impl Worker {
    /// Asks the server to stop (end of its input) without waiting: a pool closes every worker's
    /// input first, so they all wind down at once, then drops them.
    pub(crate) fn close_input(&mut self) {
        self.stdin = None;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // End of input asks the server to stop its zygote and reap it, so the CPU time of every
        // child is accounted to this process (benchmarks read it); a server that does not exit
        // promptly is killed, and its zygote and children die with it (PR_SET_PDEATHSIG).
        self.close_input();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                // Short naps: a server takes a few ms to stop, and each run ends with this wait.
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `child` and the rest of the process group it leads (it was started with
/// `process_group(0)`), then reaps it.
fn kill_group(child: &mut Child) {
    kill_group_of(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGKILL to the process group that process `pid` leads (started with `process_group(0)`).
pub(crate) fn kill_group_of(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) only sends a signal; a negative pid names the group that `pid` leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// The last lines of a log file, for error messages.
fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::{Path, SandboxError, Worker, WorkerSpec, SOURCE};

    #[test]
    fn a_worker_directory_that_cannot_be_made_is_an_io_error_naming_it() {
        // The scratch "directory" is a file, so the worker's directory inside it cannot be created.
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("not-a-dir");
        std::fs::write(&scratch, b"").unwrap();
        let spec = WorkerSpec {
            python: Path::new("python3"),
            scratch: &scratch,
            preload: &[],
            tail_bytes: 100,
            cache: None,
            start_timeout: crate::sandbox::DEFAULT_START_TIMEOUT,
        };
        match Worker::start(&spec, 0, "w0", 200_000) {
            Err(SandboxError::Io { doing, path, cause }) => {
                assert_eq!((doing, path), ("creating", scratch.join("w0")));
                assert_eq!(cause.kind(), std::io::ErrorKind::NotADirectory);
            }
            Err(other) => panic!("expected an Io error, got {other}"),
            Ok(_) => panic!("a worker started inside a file"),
        }
    }

    #[test]
    fn the_prepared_tests_cache_is_bounded_and_drops_the_least_recent() {
        // Each text is 45 characters; the budget holds two.
        let script = r#"
c = _Prepared(100)
a, b, d = "assert 1\n" * 5, "assert 2\n" * 5, "assert 3\n" * 5
pa, pb = c.get(a), c.get(b)
assert c.get(a) is pa, "a hit is the same prepared code"
c.get(d)
assert list(c.entries) == [a, d], "b, the least recently used, goes first"
assert c.used == 90, c.used
assert c.get(b) is not pb and list(c.entries) == [d, b]
print("ok")
"#;
        run_with_source(script);
    }

    #[test]
    fn assertions_that_cannot_fail_are_told_apart() {
        let script = r#"
def a(src):
    return _cannot_fail_assert(ast.parse(src).body[0])
def c(src):
    call = ast.parse(src).body[0].value
    return _cannot_fail_call(call, _callee_name(call))
import ast
for s in ["assert f(x) == f(x)", "assert True", "assert 1 == 1", "assert f(1) == 2 or True", "assert r is r, 'm'"]:
    assert a(s), s
for s in ["assert f(x) == 1", "assert x", "assert f(x) != f(x)", "assert f(1) == f(2)", "assert f(1) == 2 and True"]:
    assert not a(s), s
for s in ["self.assertTrue(True)", "self.assertEqual(f(1), f(1))", "self.assertEqual(2, 2, 'msg')",
          "np.testing.assert_allclose(y, y)", "self.assertTrue(f(1) == f(1))", "self.assertIsNotNone(3)",
          "self.assertIn('a', 'abc')"]:
    assert c(s), s
for s in ["self.assertEqual(f(1), 2)", "m.assert_called_once()", "m.assert_called_once_with(16)", "self.assertNotEqual(f(1), f(1))",
          "self.assertRaises(ValueError)", "self.assertEqual(*pair)", "self.assertTrue(r)", "self.assertIsInstance(x, x)"]:
    assert not c(s), s
print("ok")
"#;
        run_with_source(script);
    }

    /// Runs `script` in python3 after the sandbox's Python source (as a module that does not
    /// serve), and expects it to print `ok`.
    fn run_with_source(script: &str) {
        let out = std::process::Command::new("python3")
            .args([
                "-I",
                "-c",
                "import sys; g = {'__name__': 't'}; exec(sys.argv[1], g); exec(sys.argv[2], g)",
                SOURCE,
                script,
            ])
            .output()
            .expect("run python3");
        assert!(out.status.success() && out.stdout == b"ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    }
}
