//! Crash-safe append-only JSONL files: the output records and the caches of model calls and
//! executions. Every line is written whole and fsync'd before the work it records counts as done, so
//! after a `kill -9` a file holds complete lines plus at most one torn last line, which opening the
//! file cuts off (that piece of work is then simply redone). Any other unreadable line is an error
//! naming the file and line: we never silently drop finished work.

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
        let io = |source| JournalError::Io { path: path.to_path_buf(), cause: source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io)?;
        if complete < bytes.len() {
            // The tail after the last newline is a write that a crash interrupted.
            file.set_len(complete as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let items = parse_lines(path, &bytes[..complete])?;
        let mut file = file;
        use std::io::Seek;
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
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        parse_lines(path, &bytes[..complete])
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

/// Parses complete JSONL `bytes` of `path`, naming the line of any bad one.
fn parse_lines<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<T>, JournalError> {
    let mut items = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|e| JournalError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem: crate::json_line::problem(&e),
        })?;
        items.push(item);
    }
    Ok(items)
}

/// A content-addressed cache on top of a [`Journal`]: `{"k": key, "v": value}` lines.
pub struct Cache<V> {
    journal: Journal,
    map: HashMap<String, V>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<V> {
    k: String,
    v: V,
}

impl<V: Serialize + DeserializeOwned + Clone> Cache<V> {
    /// Opens the cache file at `path`.
    pub fn open(path: &Path) -> Result<Cache<V>, JournalError> {
        let (journal, entries) = Journal::open::<Entry<V>>(path)?;
        let map = entries.into_iter().map(|e| (e.k, e.v)).collect();
        Ok(Cache { journal, map })
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
    fn a_bad_complete_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"k\":\"a\",\"v\":1}\nnot json\n").unwrap();
        let e = Cache::<u32>::open(&path).err().unwrap().to_string();
        assert!(e.contains("c.jsonl line 2"), "{e}");
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }
}
