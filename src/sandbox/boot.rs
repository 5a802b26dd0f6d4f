//! How a fork server's interpreter is found and started, fast: the boot code that loads the
//! embedded harness from a bytecode cache (compiling its ~100 KB took ~20-30 ms of every worker's
//! start and left ~3 MB of free heap that every clone then copied page-table entries for), and
//! launcher scripts such as pyenv's `python3` shim resolved to the interpreter they run. A launcher
//! is asked again on every start (with the user's environment and working directory, which
//! decide what it runs); the answer it gave last time only lets the workers start while it is
//! being asked, and a different answer discards them. The caches trust only files owned by this
//! user that nobody else may write.

use super::worker::Worker;
use super::SandboxError;
use sha2::Digest;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The interpreter's boot code (`python -I -c BOOT SOURCE CONFIG KEY CACHE_DIR`): checks the
/// version, then runs the harness's code object from `CACHE_DIR` when a file there is named after
/// `KEY` (the source's hash) and this interpreter's bytecode version, is ours and writable by no
/// one else; otherwise compiles `SOURCE` under the harness's own file name (which the audit hook
/// trusts) and stores it there. The collector stays off while the modules load: the server
/// freezes what they made and turns it back on (server.py, `serve`). `sys.exit(text)` writes the
/// text to the log (stderr) even on interpreters too old to compile the harness.
pub(crate) const BOOT: &str = r#"import sys,os,gc
gc.disable()
(sys.version_info>=(3,9) and hasattr(os,'pidfd_open')) or sys.exit('unitcoder: needs Python >= 3.9 on Linux (os.pidfd_open)')
def _uc_boot(src, key, cache):
    import marshal
    tag, magic = sys.implementation.cache_tag, getattr(sys.modules.get('_frozen_importlib_external'), 'MAGIC_NUMBER', None)
    name = os.path.join(cache, 'harness-%s-%s-%s.bin' % (key, tag, magic.hex())) if cache and tag and magic else None
    if name:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                st = os.fstat(fd)
                if st.st_uid == os.geteuid() and not st.st_mode & 0o022:
                    with os.fdopen(os.dup(fd), 'rb') as f:
                        return marshal.loads(f.read())
            finally:
                os.close(fd)
        except Exception:
            pass
    code = compile(src, '<unitcoder-harness>', 'exec')
    if name:
        tmp = '%s.%d.tmp' % (name, os.getpid())
        try:
            os.makedirs(cache, 0o700, exist_ok=True)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600), 'wb') as f:
                f.write(marshal.dumps(code))
            os.replace(tmp, name)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return code
_uc_code = _uc_boot(sys.argv[1], sys.argv[3], sys.argv[4])
del _uc_boot
exec(_uc_code)
"#;

/// Starts the workers (`start_all` starts them all with one interpreter) for `given`, an
/// interpreter or a launcher script; returns the interpreter they run and how each start went.
///
/// A launcher such as pyenv's `python3` shim (a shell script that runs `pyenv exec`, ~60 ms) is
/// asked which interpreter it runs, and the workers start that one (every start through the shim
/// would pay for it again). While it answers, workers start with the interpreter it named last
/// time from this directory, if any; they are kept only if it names the same one now, so a changed
/// PYENV_VERSION or .python-version never runs jobs on another interpreter than `python3` means
/// here. A launcher that cannot say is run as given (each worker then pays for it).
pub(crate) fn start_workers(
    given: &Path,
    cache: Option<&Path>,
    timeout: Duration,
    start_all: &dyn Fn(&Path) -> Vec<Result<Worker, SandboxError>>,
) -> (PathBuf, Vec<Result<Worker, SandboxError>>) {
    if is_native_executable(given) {
        return (given.to_path_buf(), start_all(given));
    }
    let guess = cache.and_then(|c| remembered(c, given));
    let (answer, early) = std::thread::scope(|s| {
        let asking = s.spawn(|| ask_launcher(given, timeout));
        let early = guess.as_deref().map(start_all);
        (asking.join().unwrap_or_else(|_| Err(LauncherError::failed("asking the launcher panicked".into()))), early)
    });
    match (answer, early) {
        (Ok(exe), Some(workers)) if guess.as_ref() == Some(&exe) => (exe, workers),
        (Ok(exe), early) => {
            drop(early);
            if let Some(c) = cache {
                remember(c, given, &exe);
            }
            let workers = start_all(&exe);
            (exe, workers)
        }
        // Run as given it would be as silent again: fail now instead of waiting as long once more.
        (Err(LauncherError { timed_out: true, .. }), _) => {
            let log = String::from("(nothing: it was asked which interpreter it runs, and never answered)");
            let err = SandboxError::StartTimeout { python: given.to_path_buf(), secs: timeout.as_secs(), log };
            (given.to_path_buf(), vec![Err(err)])
        }
        (Err(_), early) => {
            drop(early);
            (given.to_path_buf(), start_all(given))
        }
    }
}

/// The prefix of the line the boot code exits with on an unusable interpreter.
pub(crate) const TOO_OLD: &str = "unitcoder: needs ";

/// The first 16 hex digits of the SHA-256 of `source`: names its bytecode in the cache (computed
/// once per process).
pub(crate) fn source_key(source: &str) -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| hex(&sha2::Sha256::digest(source.as_bytes())[..8]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `path` (links followed) is an ELF binary rather than a script.
pub(crate) fn is_native_executable(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"\x7fELF"
}

/// What `launcher` runs now: it is started (with this process's environment and working
/// directory, as a shell would) to print its interpreter's `sys.executable`. `-I -S`: no
/// environment variables or site packages of Python's own, which cannot change the answer and
/// cost start-up. `Err` carries what it printed on failure, or says that it gave no answer within
/// `timeout` (it is then killed, with its process group: a script that waits on something must not
/// hang the run).
pub(crate) fn ask_launcher(launcher: &Path, timeout: Duration) -> Result<PathBuf, LauncherError> {
    let child = Command::new(launcher)
        .args(["-I", "-S", "-c", "import sys;sys.stdout.write(sys.executable or '')"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| LauncherError::failed(e.to_string()))?;
    let pid = child.id();
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = match answer.recv_timeout(timeout) {
        Ok(out) => out.map_err(|e| LauncherError::failed(e.to_string()))?,
        Err(_) => {
            super::worker::kill_group_of(pid);
            let message = format!("no answer within {} s", timeout.as_secs());
            return Err(LauncherError { message, timed_out: true });
        }
    };
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let exe = PathBuf::from(&printed);
    if out.status.success() && exe.is_absolute() && exe.is_file() {
        Ok(exe)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(LauncherError::failed(err.lines().last().unwrap_or(&printed).trim().to_string()))
    }
}

/// Why [`ask_launcher`] got no interpreter.
#[derive(Debug, PartialEq)]
pub(crate) struct LauncherError {
    /// What it printed, or what went wrong.
    pub message: String,
    /// It never answered (and was killed).
    pub timed_out: bool,
}

impl LauncherError {
    fn failed(message: String) -> Self {
        LauncherError { message, timed_out: false }
    }
}

/// What `launcher` answered last time it was asked from this working directory, when `cache`
/// holds an answer it may trust (our own file, writable by no one else, naming a native executable
/// of ours or root's that nobody else may replace).
pub(crate) fn remembered(cache: &Path, launcher: &Path) -> Option<PathBuf> {
    let file = cache.join(launcher_entry(launcher)?);
    let uid = effective_uid()?;
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.is_file() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return None;
    }
    let exe = PathBuf::from(std::fs::read_to_string(&file).ok()?.trim_end());
    let target = std::fs::metadata(&exe).ok()?;
    let trusted_owner = target.uid() == uid || target.uid() == 0;
    (exe.is_absolute() && trusted_owner && target.mode() & 0o022 == 0 && is_native_executable(&exe)).then_some(exe)
}

/// Notes `exe` as what `launcher` runs from this working directory (best effort: a cache that
/// cannot be written only costs the next start its head start).
pub(crate) fn remember(cache: &Path, launcher: &Path, exe: &Path) {
    let Some(name) = launcher_entry(launcher) else { return };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(cache)?;
        let mut tmp = tempfile::NamedTempFile::new_in(cache)?; // mode 0600
        std::io::Write::write_all(&mut tmp, exe.as_os_str().as_encoded_bytes())?;
        tmp.persist(cache.join(name)).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

/// The cache file for `launcher` run from the current directory: the answer may depend on both
/// (pyenv reads `.python-version` up from there).
fn launcher_entry(launcher: &Path) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let mut h = sha2::Sha256::new();
    h.update(launcher.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(cwd.as_os_str().as_encoded_bytes());
    Some(format!("launcher-{}", hex(&h.finalize()[..8])))
}

/// This process's effective uid, from /proc (no libc binding needed for one number).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Job, Sandbox, SandboxConfig, Status};

    /// The interpreter `python3` runs (a native executable, not pyenv's shim).
    fn real_python() -> PathBuf {
        let out = Command::new("python3").args(["-c", "import sys;print(sys.executable)"]).output().expect("python3");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    fn sandbox(python: &Path, cache: &Path) -> Sandbox {
        let config = SandboxConfig {
            python: python.to_path_buf(),
            jobs: 1,
            preload: Vec::new(),
            cache_dir: Some(cache.to_path_buf()),
            ..SandboxConfig::default()
        };
        Sandbox::new(config).expect("sandbox starts")
    }

    fn passes(sandbox: &Sandbox) -> bool {
        let job = Job::new("j", "def f():\n    return 1\n", "assert f() == 1\n");
        sandbox.run(&job).status == Status::Pass
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn the_harness_runs_from_its_cached_bytecode_only_when_nobody_else_may_write_it() {
        let cache = tempfile::tempdir().expect("tempdir");
        let python = real_python();
        assert!(passes(&sandbox(&python, cache.path())));
        let cached: Vec<PathBuf> = std::fs::read_dir(cache.path())
            .expect("cache dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("harness-")))
            .collect();
        assert_eq!(cached.len(), 1, "{cached:?}");
        let file = &cached[0];
        assert_eq!(std::fs::metadata(file).expect("meta").mode() & 0o777, 0o600);

        // Code planted under that name runs instead of the harness (so the cache is what starts):
        // it answers "ready" with a note of its own.
        let planted = "import sys\nsys.stdout.write('{\"ready\": true, \"active\": [], \"missing\": [], \"notes\": [\"planted\"]}\\n')\n\
                       sys.stdout.flush()\nsys.stdin.read()\n";
        let write =
            format!("import marshal,sys;open(sys.argv[1],'wb').write(marshal.dumps(compile({planted:?},'p','exec')))");
        let status = Command::new(&python).args(["-c", &write]).arg(file).status().expect("plant");
        assert!(status.success());
        set_mode(file, 0o644);
        let fooled = sandbox(&python, cache.path());
        assert!(fooled.warnings().iter().any(|w| w.contains("planted")), "{:?}", fooled.warnings());
        drop(fooled);

        // The same file writable by others is not trusted: the harness is compiled again and
        // stored afresh.
        set_mode(file, 0o666);
        let fresh = sandbox(&python, cache.path());
        assert!(!fresh.warnings().iter().any(|w| w.contains("planted")), "{:?}", fresh.warnings());
        assert!(passes(&fresh));
        assert_eq!(std::fs::metadata(file).expect("meta").mode() & 0o777, 0o600);
    }

    #[test]
    fn a_launcher_is_asked_on_every_start_and_a_stale_answer_is_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        let python = real_python();
        let launcher = dir.path().join("python3");
        std::fs::write(&launcher, format!("#!/bin/sh\nexec '{}' \"$@\"\n", python.display())).expect("write");
        set_mode(&launcher, 0o755);
        assert_eq!(ask_launcher(&launcher, crate::sandbox::DEFAULT_START_TIMEOUT), Ok(python.clone()));

        assert!(passes(&sandbox(&launcher, &cache)));
        assert_eq!(remembered(&cache, &launcher), Some(python.clone()), "the answer is remembered");

        // A remembered answer that is no longer true (here not even a Python) only costs time.
        remember(&cache, &launcher, Path::new("/bin/true"));
        assert_eq!(remembered(&cache, &launcher).as_deref(), Some(Path::new("/bin/true")));
        assert!(passes(&sandbox(&launcher, &cache)));
        assert_eq!(remembered(&cache, &launcher), Some(python), "the new answer replaces it");

        // One that others may write is not read at all.
        let entry = cache.join(launcher_entry(&launcher).expect("entry"));
        set_mode(&entry, 0o666);
        assert_eq!(remembered(&cache, &launcher), None);
    }

    #[test]
    fn a_launcher_that_cannot_say_what_it_runs_is_an_error_with_its_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = dir.path().join("python3");
        std::fs::write(&launcher, "#!/bin/sh\necho 'pyenv: python3: command not found' >&2\nexit 127\n")
            .expect("write");
        set_mode(&launcher, 0o755);
        let err = ask_launcher(&launcher, crate::sandbox::DEFAULT_START_TIMEOUT).expect_err("no interpreter");
        assert!(err.message.contains("command not found") && !err.timed_out, "{err:?}");
    }
}
