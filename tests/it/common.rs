//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh temporary directory for one test, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("unitcoder-it-").tempdir().expect("create temp dir")
}

/// The `unitcoder` binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_unitcoder"))
}

/// Runs `unitcoder` with `args` and returns its output.
pub fn unitcoder(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run unitcoder")
}

/// Runs `command` in a process group of its own and, once `ready()` holds (checked every 2 ms, for at
/// most 5 minutes), sends SIGINT to the whole group, as a terminal's Ctrl-C does; returns its output.
pub fn interrupt_once(command: &mut Command, ready: impl Fn() -> bool) -> Output {
    interrupt_with(command, ready, &[0])
}

/// Like [`interrupt_once`], but SIGINT goes to the process and then at once to its group, as GNU
/// `timeout` sends it: one interrupt, delivered twice.
pub fn interrupt_as_timeout_does(command: &mut Command, ready: impl Fn() -> bool) -> Output {
    interrupt_with(command, ready, &[1, 0])
}

/// Runs `command` in a process group of its own and, once `ready()`, sends SIGINT to each target in
/// turn: 1 the process, 0 its group.
fn interrupt_with(command: &mut Command, ready: impl Fn() -> bool, targets: &[u8]) -> Output {
    use std::os::unix::process::CommandExt;
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run unitcoder");
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed().as_secs() < 300, "not ready to be interrupted in 5 minutes");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for &target in targets {
        let pid = if target == 1 { child.id() as i32 } else { -(child.id() as i32) };
        // SAFETY: a plain kill(2) of our own child or its process group.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    }
    child.wait_with_output().expect("wait for unitcoder")
}

/// The benchmark data the repository carries (`eval/data`), or the path in `UNITCODER_BENCHMARKS`
/// when set (a directory laid out the same way).
pub fn benchmarks_dir() -> PathBuf {
    if let Ok(p) = std::env::var("UNITCODER_BENCHMARKS") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/data")
}

/// Python packages the sandbox tests import (legitimate programs use them, attacks disguise as them).
const TEST_PACKAGES: [&str; 2] = ["numpy", "pandas"];

/// A Python interpreter that can import numpy and pandas, for the sandbox tests ([`python_importing`]).
/// The environment sits under the build directory (an interpreter under the host's `/tmp` works too:
/// the sandbox grafts it into each job's private `/tmp`, see `sandbox::isolation`).
pub fn test_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| python_importing("python-numpy-pandas", &TEST_PACKAGES)).clone()
}

/// A Python interpreter that can import Hugging Face `datasets`, the reference reader of the dataset
/// cards ([`python_importing`]).
pub fn datasets_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| python_importing("python-datasets", &["datasets"])).clone()
}

/// A Python interpreter that can import `packages`: `python3` itself when it already can, otherwise a
/// virtual environment that the tests create once, like the test model, in the shared test cache
/// (`unitcoder-test-cache/NAME`: `python3 -m venv`, then `pip install PACKAGES` from the package
/// index). A fresh clone then passes `cargo test` on a machine without them installed.
fn python_importing(name: &str, packages: &[&str]) -> PathBuf {
    let system = PathBuf::from("python3");
    if imports_packages(&system, packages) {
        return system;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("unitcoder-test-cache").join(name);
    let python = dir.join("bin/python");
    if imports_packages(&python, packages) {
        return python;
    }
    let listed = packages.join(" ");
    eprintln!("python3 cannot import {listed}: installing them into {}", dir.display());
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let partial_python = partial.join("bin/python");
    let (ok, err) = run(Command::new("python3").args(["-m", "venv"]).arg(&partial));
    let installed = if ok {
        run(Command::new(&partial_python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(packages))
    } else {
        // Debian's python3 without python3-venv has no ensurepip: a venv without pip, filled by
        // the system pip (which can install into another interpreter since pip 22.3).
        let _ = std::fs::remove_dir_all(&partial);
        let (ok2, err2) = run(Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&partial));
        assert!(ok2, "cannot create a virtual environment for {listed}:\n{err}\n{err2}");
        run(Command::new("python3")
            .args(["-m", "pip", "--python"])
            .arg(&partial_python)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages))
    };
    assert!(installed.0, "cannot install {listed} for the tests:\n{}", installed.1);
    // Another test run may have finished first: either copy will do.
    if std::fs::rename(&partial, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    assert!(imports_packages(&python, packages), "{} still cannot import {listed}", python.display());
    python
}

fn imports_packages(python: &std::path::Path, packages: &[&str]) -> bool {
    let probe = format!("import {}", packages.join(", "));
    Command::new(python).args(["-I", "-c", &probe]).output().is_ok_and(|o| o.status.success())
}

/// A sandbox configuration whose interpreter can import numpy and pandas ([`test_python`]).
pub fn sandbox_config(jobs: usize) -> unitcoder::sandbox::SandboxConfig {
    unitcoder::sandbox::SandboxConfig { python: test_python(), jobs, ..unitcoder::sandbox::SandboxConfig::default() }
}

/// A virtual environment made in `parent` on [`test_python`] (its packages seen through
/// `--system-site-packages`), with a module `name` written into its own site-packages: library
/// code only that interpreter has. Returns the directory that holds it and its interpreter.
pub fn venv_with_module(parent: &std::path::Path, name: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("unitcoder-venv-").tempdir_in(parent).expect("a directory for a venv");
    let venv = dir.path().join("venv");
    let made = Command::new(test_python())
        .args(["-m", "venv", "--without-pip", "--system-site-packages"])
        .arg(&venv)
        .status()
        .expect("run python -m venv");
    assert!(made.success(), "cannot make a venv in {}", venv.display());
    let lib = std::fs::read_dir(venv.join("lib"))
        .expect("the venv's lib")
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the venv's site-packages");
    std::fs::write(lib.join(format!("{name}.py")), source).expect("writing the module");
    (dir, venv.join("bin/python"))
}

/// The ids of a synth run's records, accepted and rejected, sorted.
pub fn record_ids(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["dataset/records.jsonl", "rejected.jsonl"] {
        for l in std::fs::read_to_string(dir.join(f)).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            out.push(v["id"].as_str().unwrap().to_string());
        }
    }
    out.sort();
    out
}

/// A reporter that keeps the notes (warnings) it is given, for tests that check them.
#[derive(Default)]
pub struct Notes(pub std::sync::Mutex<Vec<String>>);

impl unitcoder::progress::Reporter for Notes {
    fn begin(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str) {}
    fn note(&self, m: &str) {
        self.0.lock().unwrap().push(m.to_string());
    }
}

/// One HTTP request as [`http_server`] hands it to its handler.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the handler answers: a status, headers and a body (Content-Length is added).
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Serves HTTP/1.1 on a local port with `handler`, one connection at a time, until the test ends;
/// returns the base URL and the paths requested so far, in order.
pub fn http_server(
    handler: impl Fn(&HttpRequest) -> HttpResponse + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_lowercase(), v.trim().to_string()));
                }
            }
            let mut words = line.split_whitespace();
            let method = words.next().unwrap_or("").to_string();
            let path = words.next().unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let r = handler(&HttpRequest { method, path, headers });
            let reason = match r.status {
                200 => "OK",
                206 => "Partial Content",
                404 => "Not Found",
                _ => "Status",
            };
            let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status);
            for (k, v) in &r.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", r.body.len()));
            let mut stream = reader.into_inner();
            let _ = stream.write_all(out.as_bytes()).and_then(|()| stream.write_all(&r.body));
        }
    });
    (url, seen)
}

/// The commit every revision of a [`hub_routes`] repository resolves to.
pub const HUB_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The Hugging Face Hub's routes for one repository at `main`, as hf-hub uses them, for
/// [`http_server`]: the file list (`/api/{kind}/{repo}/revision/main`) and each file
/// (`/{repo}/resolve/main/FILE`, under `/datasets` for datasets) with the headers hf-hub reads
/// (ETag, X-Repo-Commit, Content-Range) and byte ranges. `kind` is `models` or `datasets`.
pub fn hub_routes(kind: &str, repo: &str, files: Vec<(String, Vec<u8>)>) -> impl Fn(&HttpRequest) -> HttpResponse {
    let api = format!("/api/{kind}/{repo}/revision/main");
    let resolve = match kind {
        "datasets" => format!("/datasets/{repo}/resolve/main/"),
        _ => format!("/{repo}/resolve/main/"),
    };
    move |req| {
        let not_found = HttpResponse { status: 404, headers: Vec::new(), body: Vec::new() };
        if req.path == api {
            let siblings: Vec<_> = files.iter().map(|(f, _)| serde_json::json!({ "rfilename": f })).collect();
            let body = serde_json::json!({ "sha": HUB_COMMIT, "siblings": siblings }).to_string().into_bytes();
            return HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body,
            };
        }
        let Some(name) = req.path.strip_prefix(resolve.as_str()) else { return not_found };
        let Some((_, bytes)) = files.iter().find(|(f, _)| f == name) else { return not_found };
        let (start, end) = match req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
            Some(r) => {
                let (a, b) = r.split_once('-').unwrap();
                (a.parse().unwrap(), if b.is_empty() { bytes.len() - 1 } else { b.parse().unwrap() })
            }
            None => (0, bytes.len() - 1),
        };
        // The blob's name in the cache: any stable digest of the content will do.
        let etag = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            format!("\"{:016x}\"", h.finish())
        };
        HttpResponse {
            status: 206,
            headers: vec![
                ("ETag".into(), etag),
                ("X-Repo-Commit".into(), HUB_COMMIT.into()),
                ("Content-Range".into(), format!("bytes {start}-{end}/{}", bytes.len())),
            ],
            body: bytes[start..=end].to_vec(),
        }
    }
}
