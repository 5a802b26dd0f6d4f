//! Decontamination against evaluation benchmarks: a function is dropped when it shares any n-gram
//! (default 13, the common practice since GPT-3) of word tokens with a benchmark task's prompt or
//! canonical solution. Word tokens (identifier, keyword and number runs) rather than all tokens, so
//! 13 of them span a real stretch of code; and import lines are left out on both sides, because
//! `import numpy as np / import pandas as pd ...` headers are shared by everything and prove nothing.
//!
//! Benchmarks are read from the user's files: JSONL, JSONL.gz, or a JSON array (sanitized MBPP),
//! or a directory of those. The text fields used are whichever of `prompt`, `complete_prompt`,
//! `canonical_solution` and `code` a record has (HumanEval(+), MBPP(+), BigCodeBench).

use super::dedup::fnv1a;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Benchmark data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DecontamError {
    /// A file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The benchmark file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A line or the file is not the JSON we expect.
    #[error("{path} line {line}: {message}")]
    Malformed {
        /// The benchmark file.
        path: PathBuf,
        /// 1-based line (1 for a JSON array file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file had no record with any of the code fields.
    #[error("{0}: no benchmark records with a `prompt`, `complete_prompt`, `canonical_solution` or `code` field")]
    Empty(PathBuf),
}

/// The benchmark fields that hold code or prompts.
const FIELDS: &[&str] = &["prompt", "complete_prompt", "canonical_solution", "code"];

/// An n-gram index over benchmark tasks.
pub struct Decontaminator {
    n: usize,
    /// n-gram hash → index into `sources`.
    grams: HashMap<u64, u32>,
    sources: Vec<String>,
}

impl Decontaminator {
    /// Indexes the benchmark files under `paths` (files, or directories searched recursively for
    /// `.jsonl`, `.jsonl.gz` and `.json`) with `n`-grams of word tokens.
    pub fn load(paths: &[PathBuf], n: usize) -> Result<Self, DecontamError> {
        let mut d = Decontaminator { n: n.max(1), grams: HashMap::new(), sources: Vec::new() };
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
        let io = |source| DecontamError::Io { path: path.to_path_buf(), cause: source };
        let mut raw = Vec::new();
        let file = std::fs::File::open(path).map_err(io)?;
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::MultiGzDecoder::new(file).read_to_end(&mut raw).map_err(io)?;
        } else {
            std::io::BufReader::new(file).read_to_end(&mut raw).map_err(io)?;
        }
        let text = String::from_utf8(raw).map_err(|_| DecontamError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            message: "not valid UTF-8".into(),
        })?;
        let bad = |line: usize, e: serde_json::Error| DecontamError::Malformed {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        };
        let records: Vec<Value> = if text.trim_start().starts_with('[') {
            serde_json::from_str(&text).map_err(|e| bad(1, e))?
        } else {
            let mut v = Vec::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let value = serde_json::from_str(line)
                    .or_else(|e| serde_json::from_str(&strict_json(line)).map_err(|_| e))
                    .map_err(|e| bad(i + 1, e))?;
                v.push(value);
            }
            v
        };
        let source = self.sources.len() as u32;
        let mut any = false;
        for record in &records {
            let texts: Vec<&str> = FIELDS.iter().filter_map(|f| record.get(*f).and_then(Value::as_str)).collect();
            any |= !texts.is_empty();
            // Prompt and solution are joined: HumanEval's solution is only the body of the prompt's def.
            for gram in self.ngrams(&texts.join("\n")) {
                self.grams.entry(gram).or_insert(source);
            }
        }
        if !any {
            return Err(DecontamError::Empty(path.to_path_buf()));
        }
        self.sources
            .push(path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()));
        Ok(())
    }

    /// Hashes of the word-token n-grams of `code`, import lines left out.
    fn ngrams(&self, code: &str) -> Vec<u64> {
        let words: Vec<&str> = code
            .lines()
            .filter(|l| !is_import_line(l))
            .flat_map(|l| l.split(|c: char| !(c.is_alphanumeric() || c == '_')))
            .filter(|w| !w.is_empty())
            .collect();
        words.windows(self.n).map(|w| fnv1a(w.iter().copied())).collect()
    }

    /// The benchmark file `code` overlaps with, if any.
    pub fn contaminated_by(&self, code: &str) -> Option<&str> {
        self.ngrams(code).iter().find_map(|g| self.grams.get(g)).map(|&i| self.sources[i as usize].as_str())
    }

    /// The benchmark files indexed (file names).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The number of distinct n-grams indexed.
    pub fn len(&self) -> usize {
        self.grams.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }
}

/// Python's `json` writes `NaN`, `Infinity` and `-Infinity` (evalplus inputs have them), which
/// strict JSON forbids; outside string literals they become `null` (we only read string fields).
fn strict_json(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["-Infinity", "Infinity", "NaN"].iter().find(|w| rest.starts_with(**w)) {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
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
        if entry.file_type().is_file()
            && (name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".json"))
        {
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
        assert_eq!(d.contaminated_by(copied), Some("bench.jsonl"));
        let header_only = "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\nimport os\n\ndef g(x):\n    return x\n";
        assert_eq!(d.contaminated_by(header_only), None);
        let unrelated = "def g(df, column):\n    return df[column].max() - df[column].min()\n";
        assert_eq!(d.contaminated_by(unrelated), None);
    }

    #[test]
    fn python_json_specials_become_null_outside_strings() {
        assert_eq!(
            strict_json(r#"{"a": [-Infinity, NaN, 1], "s": "NaN \" Infinity"}"#),
            r#"{"a": [null, null, 1], "s": "NaN \" Infinity"}"#
        );
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
