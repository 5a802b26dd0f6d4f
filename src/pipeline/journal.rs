//! Crash-safe append-only JSONL files: the output records and the caches of model calls and
//! executions. Every line is written whole and fsync'd before the work it records counts as done, so
//! after a `kill -9` a file holds complete lines plus at most one torn last line, which opening the
//! file cuts off (that piece of work is then simply redone). Any other unreadable line of a record
//! journal is an error naming the file and line: we never silently drop finished work. A [`Cache`]
//! only saves work, so its unreadable lines are skipped and reported ([`Cache::skipped`]): a rerun
//! asks again what they held, where an error would stop every rerun for good.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened, read or written.
    #[error("{}: {cause}", .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// A complete line is not valid JSON of the expected shape.
    #[error("{} line {line}: {problem}", .path.display())]
    Line { path: PathBuf, line: usize, problem: String },
}

/// An append-only JSONL file.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (creating) `path`, cuts a torn last line, and returns the journal with its complete
    /// lines parsed as `T`.
    pub fn open<T: DeserializeOwned>(path: &Path) -> Result<(Journal, Vec<T>), JournalError> {
        let (journal, lines) = Journal::open_with(path, BadLines::Fail)?;
        Ok((journal, lines.items))
    }

    /// Like [`Journal::open`], with `bad` deciding what an unreadable complete line does.
    fn open_with<T: DeserializeOwned>(path: &Path, bad: BadLines) -> Result<(Journal, Lines<T>), JournalError> {
        let io = |source| JournalError::Io { path: path.to_path_buf(), cause: source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let complete = complete_part::<T>(&bytes);
        let mut file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io)?;
        use std::io::Seek;
        if complete < bytes.len() {
            // The tail after the last newline is a write that a crash interrupted.
            file.set_len(complete as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        } else if bytes.last().is_some_and(|&b| b != b'\n') {
            // A whole last line without its newline (an editor or a tool that strips it): kept,
            // and given the newline the next line needs.
            file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        let items = parse_lines(path, &bytes[..complete], bad)?;
        file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        Ok((Journal { path: path.to_path_buf(), file }, items))
    }

    /// The complete lines of `path` parsed as `T`, without opening it for writing: a torn last line
    /// (a write in progress, or one a crash cut) is left alone and not returned. A missing file has
    /// no lines.
    pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JournalError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(JournalError::Io { path: path.to_path_buf(), cause: source }),
        };
        let complete = complete_part::<T>(&bytes);
        parse_lines(path, &bytes[..complete], BadLines::Fail).map(|l| l.items)
    }

    /// Appends `item` as one line and syncs it to disk.
    pub fn append<T: Serialize>(&mut self, item: &T) -> Result<(), JournalError> {
        let io = |source| JournalError::Io { path: self.path.clone(), cause: source };
        let mut line = serde_json::to_vec(item).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What an unreadable complete line does.
#[derive(Clone, Copy)]
enum BadLines {
    /// Stops the reading with an error naming it (a record journal: finished work).
    Fail,
    /// Is left out and listed (a cache: work that is redone).
    Skip,
}

/// The parsed lines of a journal, and the unreadable ones that were skipped.
struct Lines<T> {
    items: Vec<T>,
    skipped: Vec<SkippedLine>,
}

/// An unreadable line that a cache left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// Its 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// How many bytes of `bytes` are complete lines: up to the last newline, or all of them when what
/// follows it is a whole line of `T` that only lacks its newline. Anything else after the last
/// newline is a write a crash cut short.
fn complete_part<T: DeserializeOwned>(bytes: &[u8]) -> usize {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[complete..];
    let whole = std::str::from_utf8(tail).is_ok_and(|t| !t.trim().is_empty() && serde_json::from_str::<T>(t).is_ok());
    if whole {
        bytes.len()
    } else {
        complete
    }
}

/// Parses complete JSONL `bytes` of `path`, naming the line of any bad one.
fn parse_lines<T: DeserializeOwned>(path: &Path, bytes: &[u8], bad: BadLines) -> Result<Lines<T>, JournalError> {
    let mut lines = Lines { items: Vec::new(), skipped: Vec::new() };
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    // A UTF-8 byte-order mark (a records file saved by a Windows editor) is not part of line 1.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        // Bytes that are not UTF-8 are a damaged line, not text to patch up with U+FFFD: the code
        // of a record would change without a word.
        let parsed = match std::str::from_utf8(raw) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => serde_json::from_str(line).map_err(|e| crate::json_line::problem(&e)),
            Err(e) => Err(format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1)),
        };
        match parsed {
            Ok(item) => lines.items.push(item),
            Err(problem) => match bad {
                BadLines::Fail => return Err(JournalError::Line { path: path.to_path_buf(), line: i + 1, problem }),
                BadLines::Skip => lines.skipped.push(SkippedLine { line: i + 1, problem }),
            },
        }
    }
    Ok(lines)
}

/// A content-addressed cache on top of a [`Journal`]: `{"k": key, "v": value}` lines.
pub struct Cache<V> {
    journal: Journal,
    map: HashMap<String, V>,
    skipped: Vec<SkippedLine>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<V> {
    k: String,
    v: V,
}

impl<V: Serialize + DeserializeOwned + Clone> Cache<V> {
    /// Opens the cache file at `path`. Unreadable complete lines (a disk or an editor that mangled
    /// one) are left out, so their work is redone, and listed in [`Cache::skipped`] for the caller
    /// to report; new entries are appended after them.
    pub fn open(path: &Path) -> Result<Cache<V>, JournalError> {
        let (journal, lines) = Journal::open_with::<Entry<V>>(path, BadLines::Skip)?;
        let map = lines.items.into_iter().map(|e| (e.k, e.v)).collect();
        Ok(Cache { journal, map, skipped: lines.skipped })
    }

    /// The unreadable lines that opening the file left out.
    pub fn skipped(&self) -> &[SkippedLine] {
        &self.skipped
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// The cached value for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// Records `value` for `key` (durably).
    pub fn put(&mut self, key: String, value: V) -> Result<(), JournalError> {
        self.journal.append(&Entry { k: key.clone(), v: value.clone() })?;
        self.map.insert(key, value);
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A cache key: 32 hex digits of SHA-256 over the parts, each length-prefixed so that part
/// boundaries cannot shift.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_appends_continue_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut c: Cache<u32> = Cache::open(&path).unwrap();
        c.put("a".into(), 1).unwrap();
        c.put("b".into(), 2).unwrap();
        drop(c);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"k\":\"c\",\"v\"").unwrap();
        drop(f);
        let mut c: Cache<u32> = Cache::open(&path).unwrap();
        assert_eq!((c.get("a"), c.get("b"), c.get("c")), (Some(&1), Some(&2), None));
        c.put("c".into(), 3).unwrap();
        let c: Cache<u32> = Cache::open(&path).unwrap();
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_bad_complete_line_of_a_journal_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"k\":\"a\",\"v\":1}\nnot json\n{\"k\":\"b\",\"v\":2}\n").unwrap();
        for e in [Journal::open::<Entry<u32>>(&path).err(), Journal::read::<Entry<u32>>(&path).err()] {
            let e = e.expect("a record journal refuses a bad line").to_string();
            assert!(e.contains("c.jsonl line 2"), "{e}");
        }
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }

    #[test]
    fn a_whole_last_line_without_its_newline_is_kept_and_bytes_that_are_not_utf8_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        // An editor stripped the final newline: the record is whole, and stays.
        std::fs::write(&path, "{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\",\"v\":2}").unwrap();
        assert_eq!(Journal::read::<Entry<u32>>(&path).unwrap().len(), 2);
        let (mut j, items) = Journal::open::<Entry<u32>>(&path).unwrap();
        assert_eq!(items.len(), 2);
        j.append(&Entry { k: "c".into(), v: 3 }).unwrap();
        assert_eq!(Journal::read::<Entry<u32>>(&path).unwrap().len(), 3, "appended on a line of its own");
        // A byte that is not UTF-8 inside a record is a damaged line, not a character to replace.
        std::fs::write(&path, b"{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\xff\",\"v\":2}\n").unwrap();
        for e in [Journal::open::<Entry<u32>>(&path).err(), Journal::read::<Entry<u32>>(&path).err()] {
            let e = e.expect("refused").to_string();
            assert!(e.contains("r.jsonl line 2: not valid UTF-8 (byte 8 of the line)"), "{e}");
        }
    }

    #[test]
    fn a_cache_skips_a_bad_complete_line_lists_it_and_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"k\":\"a\",\"v\":1}\nnot json\n{\"k\":\"b\",\"v\":2}\n{\"k\":\"c\"").unwrap();
        let mut c: Cache<u32> = Cache::open(&path).unwrap();
        assert_eq!((c.get("a"), c.get("b"), c.get("c")), (Some(&1), Some(&2), None));
        assert_eq!(c.skipped().iter().map(|s| s.line).collect::<Vec<_>>(), [2]);
        c.put("c".into(), 3).unwrap();
        let c: Cache<u32> = Cache::open(&path).unwrap();
        assert_eq!((c.len(), c.skipped().len()), (3, 1));
    }
}
