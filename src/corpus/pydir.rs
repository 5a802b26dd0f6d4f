//! A directory of `.py` files, walked recursively in a fixed (sorted) order; each file's provenance
//! path is its path relative to the directory. A single `.py` file reads as a one-file directory
//! (its provenance path is its file name). Below the root, installed-package and tool directories
//! (`site-packages`, `dist-packages`, `__pycache__`, hidden ones like `.git`, `.venv`) are not
//! entered: inside a corpus they hold vendored third-party code, and the standard library's own
//! directory contains `site-packages` in many installations.
//!
//! Files are decoded as Python decodes them ([`crate::python::source`]): a UTF-8 BOM, or a PEP 263
//! declaration such as `# -*- coding: latin-1 -*-`, so a file that `python3` runs (and `unitcoder
//! check` takes) is read, not skipped as "not UTF-8". One that Python could not read either is a
//! recoverable [`CorpusError::Undecodable`].

use super::{CorpusError, Origin, SourceFile};
use crate::python::source::decode_python_source;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Streams the `.py` files under one directory.
pub struct PyDirReader {
    root: PathBuf,
    walk: Box<dyn Iterator<Item = walkdir::Result<walkdir::DirEntry>> + Send>,
}

/// Whether the walk enters `entry` (always the root; see the module docs for the rest).
fn enter(entry: &walkdir::DirEntry) -> bool {
    if entry.depth() == 0 || !entry.file_type().is_dir() {
        return true;
    }
    let name = entry.file_name().to_string_lossy();
    !(name.starts_with('.') || matches!(name.as_ref(), "site-packages" | "dist-packages" | "__pycache__"))
}

impl PyDirReader {
    /// Starts walking `root` (sorted by file name, so every run sees the same order).
    pub fn open(root: &Path) -> Self {
        let walk = WalkDir::new(root).sort_by_file_name().into_iter().filter_entry(enter);
        PyDirReader { root: root.to_path_buf(), walk: Box::new(walk) }
    }

    fn read(&self, path: &Path) -> Result<SourceFile, CorpusError> {
        if path.to_str().is_none() {
            // Records are JSON and name their file: a path that is not UTF-8 cannot be written. The
            // file is skipped and counted, not the whole run stopped at the first record from it.
            let cause = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "its path is not UTF-8, which a record cannot name",
            );
            return Err(CorpusError::Unreadable { path: path.to_path_buf(), cause });
        }
        let bytes = std::fs::read(path)
            .map_err(|source| CorpusError::Unreadable { path: path.to_path_buf(), cause: source })?;
        let content = decode_python_source(&bytes)
            .map_err(|problem| CorpusError::Undecodable { path: path.to_path_buf(), problem })?;
        let mut file = SourceFile::new(content, Origin { file: path.to_path_buf(), at: None });
        let rel = match path.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        file.path = Some(rel.replace('\\', "/"));
        Ok(file)
    }
}

impl Iterator for PyDirReader {
    type Item = Result<SourceFile, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.walk.next()? {
                Ok(entry) => entry,
                Err(e) => {
                    // An unreadable subdirectory or a symlink loop: report it and go on walking.
                    let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
                    return Some(Err(CorpusError::Malformed {
                        path,
                        unit: "depth",
                        index: e.depth() as u64,
                        message: e.to_string(),
                    }));
                }
            };
            let is_py = entry.path().extension().is_some_and(|ext| ext == "py");
            if entry.file_type().is_file() && is_py {
                return Some(self.read(entry.path()));
            }
        }
    }
}
