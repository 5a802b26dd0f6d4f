//! A real OpenAI-compatible server for the server-backend tests: llama-cpp-python's `llama_cpp.server`
//! on 127.0.0.1 with the test model, and a fault-injecting HTTP proxy to put in front of it.
//!
//! The server's Python comes from `UNITCODER_TEST_LLAMA_VENV` (a venv that already has
//! `llama-cpp-python[server]`), else from a venv these tests build once in the shared test cache, as
//! CI can: build tools from PyPI, then `llama-cpp-python[server]` compiled from source (minutes), for
//! this CPU (`-march=native`) but without AMX on x86-64: on a machine whose CPU reports AMX (a
//! Sapphire Rapids VM here, 5 Dec), llama.cpp's AMX matmul segfaulted on the first request (gdb:
//! `ggml_backend_amx_mul_mat`), and the server died under the tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The llama-cpp-python release the tests run (its server's request fields are what we send).
const LLAMA_CPP_PYTHON: &str = "llama-cpp-python[server]==0.3.36";

/// The name the server serves the model under.
pub const ALIAS: &str = "smollm";

fn serves(python: &Path) -> bool {
    Command::new(python).args(["-c", "import llama_cpp.server.app"]).output().is_ok_and(|o| o.status.success())
}

/// A Python that can run `llama_cpp.server` (see the module docs).
pub fn llama_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(venv) = std::env::var_os("UNITCODER_TEST_LLAMA_VENV") {
                let python = PathBuf::from(venv).join("bin/python");
                assert!(
                    serves(&python),
                    "UNITCODER_TEST_LLAMA_VENV: {} cannot import llama_cpp.server",
                    python.display()
                );
                return python;
            }
            // A new name for the build without AMX, so that a cache holding the old build is not used.
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("unitcoder-test-cache/llama-cpp-server-noamx");
            let python = dir.join("bin/python");
            if serves(&python) {
                return python;
            }
            eprintln!("building {LLAMA_CPP_PYTHON} into {} (a few minutes, once)", dir.display());
            let partial = dir.with_extension(format!("partial-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&partial);
            let run = |cmd: &mut Command| {
                let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
                assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            };
            run(Command::new("python3").args(["-m", "venv"]).arg(&partial));
            let pip = |args: &[&str]| {
                run(Command::new(partial.join("bin/python"))
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                    .args(args))
            };
            pip(&["cmake", "ninja", "scikit-build-core", "numpy"]);
            // ggml's own ISA switches off, so that only these flags choose the instruction sets.
            let flags = "-march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16";
            let cmake_args = format!(
                "-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF \
                 -DGGML_AVX512=OFF -DCMAKE_C_FLAGS='{flags}' -DCMAKE_CXX_FLAGS='{flags}'"
            );
            let mut build = Command::new(partial.join("bin/python"));
            build.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
            // Not a wheel pip built earlier with other flags and kept in its cache.
            build.args(["--no-cache-dir", "--no-build-isolation", LLAMA_CPP_PYTHON]);
            if cfg!(target_arch = "x86_64") {
                build.env("CMAKE_ARGS", cmake_args);
            }
            run(&mut build);
            if std::fs::rename(&partial, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&partial);
            }
            assert!(serves(&python), "{} still cannot import llama_cpp.server", python.display());
            python
        })
        .clone()
}

/// One server test at a time: each starts its own server, and two cores do not serve two well.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `llama_cpp.server`, killed when dropped.
pub struct Server {
    pub port: u16,
    model: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts a server for the GGUF file `model` and waits until it answers.
    pub fn start(model: &Path) -> Server {
        let mut s = Server { port: free_port(), model: model.to_path_buf(), child: None };
        s.launch();
        s
    }

    /// The `--model` argument that reaches this server directly.
    pub fn spec(&self) -> String {
        format!("openai:http://127.0.0.1:{}/v1#{ALIAS}", self.port)
    }

    fn launch(&mut self) {
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("unitcoder-llama-{}.log", self.port))).unwrap();
        let child = Command::new(llama_python())
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&self.model)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--model_alias", ALIAS])
            .args(["--n_ctx", "4096", "--n_threads", "2"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start llama_cpp.server");
        self.child = Some(child);
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/v1/models", self.port);
        while ureq::get(&url).timeout(Duration::from_secs(2)).call().is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("llama_cpp.server exited early ({status}); see {}", std::env::temp_dir().display());
            }
            assert!(started.elapsed() < Duration::from_secs(180), "llama_cpp.server did not answer in 3 minutes");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (SIGKILL: in-flight requests are cut), waits `down`, and starts it again on
    /// the same port.
    pub fn restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        self.launch();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Pass it to the server.
    Forward,
    /// Answer this status with this body (and `Retry-After` seconds when given).
    Status(u16, String, Option<u32>),
    /// Close the connection without answering.
    Close,
}

/// An HTTP proxy on 127.0.0.1 in front of a server port, treating request number `i` (0-based, in
/// arrival order) as `plan(i)` says, and keeping every request it saw (head and body).
pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn start(upstream: u16, plan: impl Fn(usize) -> Fault + Send + Sync + 'static) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, plan) = (seen.clone(), Arc::new(plan));
        let count = Arc::new(AtomicUsize::new(0));
        // The thread ends with the test binary; it holds nothing but the listener.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, plan, count) = (seen2.clone(), plan.clone(), count.clone());
                std::thread::spawn(move || serve(stream, upstream, &seen, &count, plan.as_ref()));
            }
        });
        Proxy { port, seen }
    }

    /// The `--model` argument that reaches the server through the proxy.
    pub fn spec(&self) -> String {
        format!("openai:http://127.0.0.1:{}/v1#{ALIAS}", self.port)
    }

    /// Every request so far, head and body as text.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request (head, then `Content-Length` bytes of body); `None` when the client left.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut byte).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    while buf.len() < head_end + length {
        let n = stream.read(&mut byte).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&byte[..n]);
    }
    Some((head, buf[head_end..].to_vec()))
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    seen: &Mutex<Vec<String>>,
    count: &AtomicUsize,
    plan: &(dyn Fn(usize) -> Fault + Send + Sync),
) {
    // One request per connection: every answer says `Connection: close`.
    let Some((head, body)) = read_request(&mut client) else { return };
    let i = count.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(format!("{head}{}", String::from_utf8_lossy(&body)));
    match plan(i) {
        Fault::Close => {}
        Fault::Status(code, text, after) => {
            let after = after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
            let answer = format!(
                "HTTP/1.1 {code} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{after}\r\n{text}",
                text.len()
            );
            let _ = client.write_all(answer.as_bytes());
        }
        Fault::Forward => {
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
            let head: String = head
                .split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            let _ = server.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
            let _ = server.write_all(&body);
            let mut answer = Vec::new();
            let _ = server.read_to_end(&mut answer);
            let _ = client.write_all(&answer);
        }
    }
}
