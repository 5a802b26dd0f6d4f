//! Whole-file writes that a reader, a crash or a kill never sees half done: the bytes go to a sibling
//! `NAME.tmp`, are synced, and the file is renamed over `path` (atomic on one filesystem).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a synced sibling temporary file and a rename. Errors are the
/// operation's own; callers name `path` in theirs (the temporary name is an implementation detail).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `path` with `.tmp` added to its whole name (`stats.json` → `stats.json.tmp`), so that two files
/// differing only in extension never share a temporary.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("stats.json")]);
        assert_eq!(temporary(&path), dir.path().join("stats.json.tmp"));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write(&path, b"old").unwrap();
        // The temporary's name is taken by a directory: creating it fails before anything is renamed.
        std::fs::create_dir(temporary(&path)).unwrap();
        assert!(write(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
