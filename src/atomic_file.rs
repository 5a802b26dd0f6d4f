//! Whole-file writes that a reader, a crash or a kill never sees half done: the bytes go to a sibling
//! `NAME.tmp`, are synced, and the file is renamed over `path` (atomic on one filesystem).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a synced sibling temporary file and a rename. Errors are the
/// operation's own; callers name `path` in theirs (the temporary name is an implementation detail).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stream(
        path,
        |_, e| e,
        |_, mut f| {
            f.write_all(bytes)?;
            Ok(f)
        },
    )
}

/// Streams a file into place: `fill` writes the sibling temporary file (whose path it gets, to name
/// in its own errors) and hands the file back; it is then synced and renamed over `path`. `io` turns
/// an I/O error on a path into the caller's error. If any step fails, `path` is left as it was and
/// the temporary is removed.
pub fn stream<E>(
    path: &Path,
    io: impl Fn(&Path, std::io::Error) -> E,
    fill: impl FnOnce(&Path, File) -> Result<File, E>,
) -> Result<(), E> {
    let tmp = temporary(path);
    let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let done = fill(&tmp, file).and_then(|f| f.sync_all().map_err(|e| io(&tmp, e)));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path, e)
    })
}

/// `path` with `.tmp` added to its whole name (`stats.json` → `stats.json.tmp`), so that two files
/// differing only in extension never share a temporary.
pub fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Whether `a` and `b` name the same existing file (hard links and other spellings included): an
/// output that is an input would be emptied before the input is read.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
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
    fn a_failed_stream_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(&path, b"old\n").unwrap();
        let err = stream(
            &path,
            |p, e| format!("{}: {e}", p.display()),
            |tmp, mut f| {
                f.write_all(b"half a line").map_err(|e| e.to_string())?;
                Err(format!("{}: serializer failed", tmp.display()))
            },
        )
        .unwrap_err();
        assert!(err.ends_with("records.jsonl.tmp: serializer failed"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("records.jsonl")]);
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
