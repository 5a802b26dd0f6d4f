//! How a fork server's interpreter is found and started, fast: the boot code that loads the
//! embedded harness from a bytecode cache (compiling its ~100 KB took ~20-30 ms of every worker's
//! start and left ~3 MB of free heap that every clone then copied page-table entries for), and
//! launcher scripts such as pyenv's `python3` shim resolved to the interpreter they run. A launcher
//! is asked again on every start (with the user's environment and working directory, which
//! decide what it runs); the answer it gave last time only lets the workers start while it is
//! being asked, and a different answer discards them. The caches trust only files owned by this
//! user that nobody else may write.

use sha2::Digest;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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
/// cost start-up. `Err` carries what it printed on failure.
pub(crate) fn ask_launcher(launcher: &Path) -> Result<PathBuf, String> {
    let out = Command::new(launcher)
        .args(["-I", "-S", "-c", "import sys;sys.stdout.write(sys.executable or '')"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let exe = PathBuf::from(&printed);
    if out.status.success() && exe.is_absolute() && exe.is_file() {
        Ok(exe)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().last().unwrap_or(&printed).trim().to_string())
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
