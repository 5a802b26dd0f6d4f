//! Decontamination against evaluation benchmarks: a function is dropped when it shares any n-gram
//! (default 13, the common practice since GPT-3) of word tokens with a benchmark task's prompt or
//! canonical solution. Word tokens (identifier, keyword and number runs) rather than all tokens, so
//! 13 of them span a real stretch of code; and import lines are left out on both sides, because
//! `import numpy as np / import pandas as pd ...` headers are shared by everything and prove nothing.
//!
//! By default the benchmarks are HumanEval(+), MBPP(+) and BigCodeBench as built into the binary
//! ([`super::fingerprints`]); a user adds their own files, read by the benchmark reader of
//! `unitcoder eval` ([`crate::eval::data`]): JSONL, JSONL.gz, a JSON array (sanitized MBPP) or
//! Parquet, or a directory of those. The text fields used are whichever of `prompt`,
//! `complete_prompt`, `canonical_solution` and `code` a record has. [`Decontamination`] is the
//! setting that `retrieve` and `synth` share (`--decontaminate none | PATH...`).

use super::dedup::fnv1a;
use super::fingerprints::Fingerprints;
use crate::eval::EvalError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Benchmark data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DecontamError {
    /// A benchmark file could not be read or is malformed (the error names file and line).
    #[error(transparent)]
    Benchmark(#[from] EvalError),
    /// A directory could not be listed.
    #[error("{path}: {cause}")]
    Io {
        /// The benchmark directory.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A file had no record with any of the code fields.
    #[error("{0}: no benchmark records with a `prompt`, `complete_prompt`, `canonical_solution` or `code` field")]
    Empty(PathBuf),
    /// The built-in fingerprints are damaged (a build problem, not a user error): `at` is the byte
    /// offset where reading stopped, `problem` what was wrong there.
    #[error("built-in benchmark fingerprints: byte {at}: {problem}")]
    Fingerprints { at: usize, problem: &'static str },
}

/// The benchmark fields that hold code or prompts.
pub(crate) const FIELDS: &[&str] = &["prompt", "complete_prompt", "canonical_solution", "code"];

/// What to decontaminate against: the benchmarks built into the binary (unless `--decontaminate
/// none`) and the user's own benchmark files or directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decontamination {
    /// Check HumanEval(+), MBPP(+) and BigCodeBench through the embedded fingerprints.
    pub builtin: bool,
    /// The user's benchmark files or directories.
    pub paths: Vec<PathBuf>,
    /// Word n-gram length for the user's files (the built-in fingerprints are 13-grams).
    pub ngram: usize,
}

impl Default for Decontamination {
    /// The built-in benchmarks only, 13-grams.
    fn default() -> Self {
        Decontamination { builtin: true, paths: Vec::new(), ngram: 13 }
    }
}

impl Decontamination {
    /// No decontamination at all.
    pub fn none() -> Self {
        Decontamination { builtin: false, ..Decontamination::default() }
    }

    /// Whether nothing is checked.
    pub fn is_off(&self) -> bool {
        !self.builtin && self.paths.is_empty()
    }

    /// Loads the index (`None` when decontamination is off).
    pub fn load(&self) -> Result<Option<Decontaminator>, DecontamError> {
        if self.is_off() {
            return Ok(None);
        }
        let mut d = Decontaminator::load(&self.paths, self.ngram)?;
        if self.builtin {
            d.builtin = Some(Fingerprints::embedded()?);
        }
        Ok(Some(d))
    }
}

/// An n-gram index over benchmark tasks.
pub struct Decontaminator {
    n: usize,
    /// n-gram hash → index into `sources`.
    grams: HashMap<u64, u32>,
    sources: Vec<String>,
    builtin: Option<Fingerprints>,
}

impl Decontaminator {
    /// Indexes the benchmark files under `paths` (files, or directories searched recursively for
    /// `.jsonl`, `.jsonl.gz`, `.json` and `.parquet`) with `n`-grams of word tokens.
    pub fn load(paths: &[PathBuf], n: usize) -> Result<Self, DecontamError> {
        let mut d = Decontaminator { n: n.max(1), grams: HashMap::new(), sources: Vec::new(), builtin: None };
        for path in paths {
            if !path.is_dir() {
                d.add_file(path)?;
                continue;
            }
            // In a directory, files without benchmark records (task-id lists, READMEs) are skipped.
            let before = d.sources.len();
            for file in benchmark_files(path)? {
                match d.add_file(&file) {
                    Err(DecontamError::Empty(_)) => {}
                    Err(_) if is_id_list(&file) => {}
                    other => other?,
                }
            }
            if d.sources.len() == before {
                return Err(DecontamError::Empty(path.clone()));
            }
        }
        Ok(d)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), DecontamError> {
        let records = crate::eval::data::string_fields(path, FIELDS)?;
        if records.iter().all(Vec::is_empty) {
            return Err(DecontamError::Empty(path.to_path_buf()));
        }
        let source = self.sources.len() as u32;
        for texts in &records {
            // Prompt and solution are joined: HumanEval's solution is only the body of the prompt's def.
            for gram in ngram_hashes(&texts.join("\n"), self.n) {
                self.grams.entry(gram).or_insert(source);
            }
        }
        self.sources
            .push(path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()));
        Ok(())
    }

    /// The benchmark `code` overlaps with, if any: a user file's name, or a built-in family's name
    /// followed by ` (built-in)`.
    pub fn contaminated_by(&self, code: &str) -> Option<String> {
        if !self.grams.is_empty() {
            let hit = ngram_hashes(code, self.n).iter().find_map(|g| self.grams.get(g));
            if let Some(&i) = hit {
                return Some(self.sources[i as usize].clone());
            }
        }
        self.builtin.as_ref()?.contaminated_by(code).map(|family| format!("{family} (built-in)"))
    }

    /// What is checked, for messages: the user's files, then the built-in families.
    pub fn sources(&self) -> Vec<String> {
        let builtin = self.builtin.iter().flat_map(|b| b.families().map(|(n, _)| format!("{n} (built-in)")));
        self.sources.iter().cloned().chain(builtin).collect()
    }

    /// The number of distinct n-grams indexed from the user's files.
    pub fn len(&self) -> usize {
        self.grams.len()
    }

    /// Whether nothing is indexed (no user file and no built-in fingerprints).
    pub fn is_empty(&self) -> bool {
        self.grams.is_empty() && self.builtin.is_none()
    }
}

/// Hashes of the word-token `n`-grams of `code`, import lines left out.
pub(crate) fn ngram_hashes(code: &str, n: usize) -> Vec<u64> {
    let words: Vec<&str> = code
        .lines()
        .filter(|l| !is_import_line(l))
        .flat_map(|l| l.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(n.max(1)).map(|w| fnv1a(w.iter().copied())).collect()
}

/// A JSON array of strings, such as BigCodeBench-Hard's task-id list: not a benchmark file.
fn is_id_list(path: &Path) -> bool {
    crate::eval::data::read_maybe_gz(path)
        .ok()
        .is_some_and(|bytes| serde_json::from_slice::<Vec<String>>(&bytes).is_ok())
}

fn is_import_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("import ") || (t.starts_with("from ") && t.contains(" import "))
}

fn benchmark_files(path: &Path) -> Result<Vec<PathBuf>, DecontamError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|e| DecontamError::Io { path: path.to_path_buf(), cause: e.into() })?;
        let name = entry.file_name().to_string_lossy();
        let known = [".jsonl", ".jsonl.gz", ".json", ".parquet"].iter().any(|ext| name.ends_with(ext));
        if entry.file_type().is_file() && known {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(records: &str, n: usize) -> (tempfile::TempDir, Decontaminator) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.jsonl");
        std::fs::write(&path, records).expect("write");
        let d = Decontaminator::load(&[path], n).expect("loads");
        (dir, d)
    }

    #[test]
    fn shared_13_gram_is_contamination_and_imports_are_ignored() {
        let task = serde_json::json!({
            "prompt": "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n\ndef task_func(df, column):\n    \"\"\"Return the mean of a column.\"\"\"\n",
            "canonical_solution": "    values = df[column].dropna().to_numpy()\n    return float(np.mean(values)) if len(values) else 0.0\n",
        });
        let (_dir, d) = index(&format!("{task}\n"), 13);
        let copied = "def col_mean(frame, column):\n    values = frame[column].dropna().to_numpy()\n    return float(np.mean(values)) if len(values) else 0.0\n";
        assert_eq!(d.contaminated_by(copied).as_deref(), Some("bench.jsonl"));
        let header_only = "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\nimport os\n\ndef g(x):\n    return x\n";
        assert_eq!(d.contaminated_by(header_only), None);
        let unrelated = "def g(df, column):\n    return df[column].max() - df[column].min()\n";
        assert_eq!(d.contaminated_by(unrelated), None);
    }

    #[test]
    fn reads_json_arrays_and_names_bad_lines() {
        let (_dir, d) = index("[{\"code\": \"def f(a, b):\\n    return a * b + a - b\"}]", 3);
        assert!(d.contaminated_by("y = a * b + a").is_some());
        assert!(d.contaminated_by("x = a * b + 1").is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.jsonl");
        std::fs::write(&path, "{\"prompt\": \"def f(): pass\"}\n{oops\n").expect("write");
        let err = Decontaminator::load(std::slice::from_ref(&path), 13).err().expect("fails").to_string();
        assert!(err.contains("b.jsonl line 2:"), "{err}");
        std::fs::write(&path, "{\"text\": \"no code\"}\n").expect("write");
        assert!(matches!(Decontaminator::load(&[path], 13), Err(DecontamError::Empty(_))));
    }
}
