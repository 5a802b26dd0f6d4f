//! The one record type that flows through the synthesis pipeline. Retrieval creates it (a function
//! with its imports and provenance); each later stage fills its own field (tests, attempts, verified,
//! polished) or sets `rejected`, and never re-parses or re-shapes what earlier stages wrote, like
//! datatrove's `Document`. Records serialize as one JSON object per line; empty later-stage fields
//! are omitted, so a retrieve-only file stays small and older files still load.

use crate::corpus::{content_id, Position, SourceFile};
use crate::sandbox::{Status, TestStatus, Verdict};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A pipeline record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable id: the first 16 hex digits of the SHA-256 of `function.code`.
    pub id: String,
    /// Where the function came from.
    pub source: Provenance,
    /// The retrieved function.
    pub function: Function,
    /// The unit tests the model wrote (stage 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
    /// Every execution of code + tests, in order (stage 3), the original function first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The passing program (stage 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// The documented program (stage 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polished: Option<Polished>,
    /// Model outputs set aside before running (no function found, signature changed, special-cased
    /// the tests, a polish that changed code or failed), with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discarded: Vec<Discarded>,
    /// How much the kept tests check (mutation score, coverage), measured after polish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Set when a stage drops the record; later stages skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
}

/// Provenance of a retrieved function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The content id of the source file ([`SourceFile::id`]); also the shard key.
    pub file_id: String,
    /// The corpus file it was read from: its path, or for a file of an HF cache its Hub name
    /// (`hf:ORG/NAME@COMMIT:FILE`).
    pub corpus_file: PathBuf,
    /// The 1-based line of a JSONL corpus file; absent for other corpora. (Records written before
    /// `corpus_row` existed hold a Parquet file's row here.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus_line: Option<u64>,
    /// The 0-based row of a Parquet corpus file (over all its row groups, as pyarrow and
    /// `datasets` number rows); absent for other corpora.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus_row: Option<u64>,
    /// The file's path in its repository or corpus directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The repository's licenses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub license: Vec<String>,
    /// First line of the function in the file (1-based, decorators included).
    pub start_line: usize,
    /// Last line of the function in the file.
    pub end_line: usize,
}

/// The function as retrieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// `def name(params) -> ret:` as written.
    pub signature: String,
    /// The docstring literal as written (quotes included), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docstring: Option<String>,
    /// The program: the needed import lines, two blank lines, the function.
    pub code: String,
    /// The import lines alone.
    pub imports: Vec<String>,
    /// The dotted modules the function uses.
    pub modules: Vec<String>,
    /// Their top-level packages (what the allow-list matched), sorted and unique.
    pub packages: Vec<String>,
}

/// Unit tests written for a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tests {
    /// The `unittest` code (a `TestCases` class).
    pub code: String,
    /// The model that wrote them.
    pub model: String,
    /// Hash of the prompt template used.
    pub prompt_hash: String,
    /// Tokens generated to write them (0 when they were set aside in the end: those tokens are
    /// counted with the [`Discarded`] entry).
    #[serde(default)]
    pub tokens: u64,
    /// Which sample of the tests request they are (several are drawn; the first suite that the
    /// original passes without being vacuous is kept).
    #[serde(default)]
    pub sample: u32,
    /// Test functions cut from the model's suite as broken: they raised an error in the tests' own
    /// code (a call with the wrong arguments, an undefined name), which says nothing about the
    /// function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Test functions cut because the original function failed them while passing the rest: the
    /// function is real code, so a wrong expected value is the likelier fault (the tests are
    /// suspected before the code is "fixed" to fit them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreeing: Vec<String>,
    /// Test functions whose expected value the original contradicted while passing the rest, kept
    /// with that value replaced by what the original returns (see
    /// [`crate::pipeline::code::expected`]): the model's input is kept, its guess of the result is
    /// not. The other contradicted tests are cut (`disagreeing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconciled: Vec<String>,
    /// Import statements added to the model's tests because a test failed only with a `NameError`
    /// for a standard-library module or one the function imports (`os`, `np`): the test is
    /// repaired and kept instead of being cut as broken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports_added: Vec<String>,
}

/// Where an attempt's code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The model's tests reply (only ever a [`Discarded`] entry: a reply with no usable tests, or a
    /// tests sample that was not kept).
    Tests,
    /// The function as retrieved.
    Original,
    /// A model fix of a failing version.
    Fix,
    /// The polished (documented) version.
    Polish,
    /// A check that the tests fail when the body raises `NotImplementedError`.
    Vacuity,
    /// A fix that passes the suite, run against the tests the original passed in the other suites
    /// tried: a fix must not change what the real code already did right.
    Preservation,
    /// The verified program with one mutation (quality step; never stored as an attempt).
    Mutant,
    /// The verified program run with coverage tracing (quality step; never stored as an attempt).
    Coverage,
    /// The polished program with its docstring's examples reconciled with what they do, run with
    /// doctest and the tests (sample 1; sample 2: every example dropped). The probe that ran the
    /// examples first (sample 0) is not stored.
    Examples,
    /// The original run with its tests and a probe that reads the values their failing equality
    /// checks compared with a literal (never stored as an attempt).
    ExpectedValues,
}

/// One execution of a program with the tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// What this attempt is.
    pub kind: AttemptKind,
    /// Fix round (0 for the original).
    pub round: u32,
    /// Sample index within the round; for the original (and its vacuity check) in round 0, the
    /// tests sample it ran against.
    pub sample: u32,
    /// The program run.
    pub code: String,
    /// The sandbox's verdict.
    pub verdict: Verdict,
    /// Tokens generated to produce `code` (0 for the original).
    #[serde(default)]
    pub tokens: u64,
    /// For a failing run: the feedback made of its verdict, cut to the run's `feedback_chars`,
    /// as a fix prompt shows it (the `repair` format emits this text).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feedback: String,
}

/// A model output set aside (see [`Record::discarded`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded {
    /// Fix or polish.
    pub kind: AttemptKind,
    /// Fix round (0 for polish).
    pub round: u32,
    /// Sample index within the round.
    pub sample: u32,
    /// A stable snake_case reason (a statistics key).
    pub reason: String,
    /// The code (or reply, when no code was found).
    pub code: String,
    /// Tokens generated.
    #[serde(default)]
    pub tokens: u64,
}

/// A program that passes its tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The passing program (imports + function).
    pub code: String,
    /// The round that produced it (0: the original passed as written).
    pub round: u32,
    /// Whether the original function passed as written (the tests agree with it).
    pub original_passed: bool,
}

/// The documented program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polished {
    /// The program with docstring and comments, which still passes the tests.
    pub code: String,
    /// The model changed code while documenting it, so only its docstring was kept, placed in the
    /// verified program (which then has no new comments).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub docstring_only: bool,
    /// How the docstring's `>>>` examples fared against the function (absent: it showed none, or
    /// the record is older than the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<crate::pipeline::code::examples::ExampleCounts>,
    /// How the docstring's `Raises` entries fared against the exceptions the function was seen to
    /// raise (absent: it has none, or the record is older than the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raises: Option<crate::pipeline::code::raises::RaisesCounts>,
    /// The return type the docstring claims and whether it held against what the function returned
    /// (absent: it claims none, or the record is older than the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<crate::pipeline::code::types::ReturnsCheck>,
    /// How the parameter types the docstring documents fared against the values the function took
    /// (absent: it documents none, or the record is older than the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<crate::pipeline::code::types::ParamCounts>,
}

/// How much a record's kept tests check, measured on its verified program (see
/// [`crate::pipeline::quality`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// `killed / mutants`; `None` when no mutant could be made.
    pub mutation_score: Option<f64>,
    /// Mutants run with the tests.
    pub mutants: u32,
    /// Mutants the tests failed on (a timeout counts as killed).
    pub killed: u32,
    /// Share of the function's statements the tests executed; `None` when it was not measured (the
    /// traced run did not finish).
    pub line_coverage: Option<f64>,
    /// Share of the outcomes of the function's `if`/`elif`/`while`/`for` the tests took (each has two:
    /// entered and not); `None` when the function has no branch or it was not measured.
    pub branch_coverage: Option<f64>,
    /// How coverage was traced: `sys.monitoring` (Python 3.12 and later) or `sys.settrace`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracer: String,
}

/// The pipeline stages, for rejections and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Stage 1.
    Retrieve,
    /// Stage 2.
    Tests,
    /// Stage 3.
    RunFix,
    /// Stage 4.
    Polish,
    /// The tests' quality (mutation score and coverage), after stage 4.
    Quality,
    /// Stage 5.
    Emit,
}

/// Why and where a record was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The stage that dropped it.
    pub stage: Stage,
    /// A stable snake_case reason (a statistics key).
    pub reason: String,
    /// Free-form detail (the offending name, the failing test...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Record {
    /// A fresh record for a retrieved function of `file`.
    pub fn retrieved(file: &SourceFile, f: crate::pipeline::retrieve::Extracted) -> Self {
        let code = format!("{}\n\n\n{}\n", f.imports.join("\n"), f.text);
        let mut packages: Vec<String> =
            f.modules.iter().map(|m| crate::pipeline::retrieve::top_level(m).to_string()).collect();
        packages.sort();
        packages.dedup();
        Record {
            id: content_id(&code),
            source: Provenance {
                file_id: file.id.clone(),
                // A file of an HF cache by its Hub name: the same on every machine, so provenance
                // means something to others and merges order shards from different caches alike.
                corpus_file: crate::hub::hub_name(&file.origin.file)
                    .map_or_else(|| file.origin.file.clone(), PathBuf::from),
                corpus_line: match file.origin.at {
                    Some(Position::Line(l)) => Some(l),
                    _ => None,
                },
                corpus_row: match file.origin.at {
                    Some(Position::Row(r)) => Some(r),
                    _ => None,
                },
                path: file.path.clone(),
                repo: file.repo.clone(),
                license: file.license.clone(),
                start_line: f.lines.0,
                end_line: f.lines.1,
            },
            function: Function {
                name: f.name,
                signature: f.signature,
                docstring: f.docstring,
                code,
                imports: f.imports,
                modules: f.modules,
                packages,
            },
            tests: None,
            attempts: Vec::new(),
            verified: None,
            polished: None,
            discarded: Vec::new(),
            quality: None,
            rejected: None,
        }
    }

    /// Marks the record as dropped by `stage`.
    pub fn reject(&mut self, stage: Stage, reason: impl Into<String>, detail: impl Into<String>) {
        self.rejected = Some(Rejection { stage, reason: reason.into(), detail: detail.into() });
    }

    /// Whether a stage has dropped the record.
    pub fn is_rejected(&self) -> bool {
        self.rejected.is_some()
    }

    /// The function's source without its import lines.
    pub fn function_text(&self) -> &str {
        let code = &self.function.code;
        match code.find("\n\n\n") {
            Some(i) if !self.function.imports.is_empty() => code[i + 3..].trim_end_matches('\n'),
            _ => code.trim_end_matches('\n'),
        }
    }
}

/// Reading records back failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The records file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A line is not UTF-8 text.
    #[error("{path} line {line}: not valid UTF-8 (byte {byte} of the line)")]
    NotUtf8 {
        /// The records file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based position in the line of the first byte that is not UTF-8.
        byte: usize,
    },
    /// A line is a corpus entry (`{"content": ...}`), not a record: the file is a corpus.
    #[error(
        "{path} line {line}: a corpus entry (a `content` field), not a record written by `unitcoder retrieve`: \
         give the file as --corpus"
    )]
    CorpusEntry {
        /// The records file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A line is not a record.
    #[error("{path} line {line}: {}", crate::json_line::problem(.cause))]
    Parse {
        /// The records file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What serde said.
        cause: serde_json::Error,
    },
}

/// Streams the records of a JSONL (or JSONL.gz) file written by a stage, one per line.
pub struct RecordReader {
    path: PathBuf,
    lines: std::io::Split<BufReader<Box<dyn Read + Send>>>,
    line: usize,
}

impl RecordReader {
    /// Opens `path` (decompressed when it ends in `.gz` or `.zst`, as `retrieve` writes them).
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io { path: path.to_path_buf(), cause: source };
        let file = std::fs::File::open(path).map_err(io)?;
        let raw: Box<dyn Read + Send> = match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Some("zst") => Box::new(zstd::Decoder::new(file).map_err(io)?),
            _ => Box::new(file),
        };
        Ok(RecordReader { path: path.to_path_buf(), lines: BufReader::new(raw).split(b'\n'), line: 0 })
    }

    /// The 1-based line number of the record (or error) [`Iterator::next`] returned last.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl Iterator for RecordReader {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let bytes = match self.lines.next()? {
                Ok(bytes) => bytes,
                Err(source) => return Some(Err(RecordError::Io { path: self.path.clone(), cause: source })),
            };
            self.line += 1;
            // A byte-order mark (a file saved by a Windows editor) is not part of line 1's JSON.
            let bytes = match self.line {
                1 => bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes),
                _ => &bytes[..],
            };
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    let (path, line, byte) = (self.path.clone(), self.line, e.valid_up_to() + 1);
                    return Some(Err(RecordError::NotUtf8 { path, line, byte }));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(serde_json::from_str(text).map_err(|source| {
                let (path, line) = (self.path.clone(), self.line);
                let entry = serde_json::from_str::<serde_json::Value>(text)
                    .is_ok_and(|v| v.get("content").is_some() && v.get("function").is_none());
                match entry {
                    true => RecordError::CorpusEntry { path, line },
                    false => RecordError::Parse { path, line, cause: source },
                }
            }));
        }
    }
}

/// The default of a run's `feedback_chars`: how much of a failing verdict a fix prompt shows.
pub const DEFAULT_FEEDBACK_CHARS: usize = 1500;

/// The failing tests' names and trimmed messages, what the fix prompt shows the model.
pub fn feedback(v: &Verdict, max_chars: usize) -> String {
    let mut out = String::new();
    for t in &v.tests {
        if matches!(t.status, TestStatus::Fail | TestStatus::Error) {
            out.push_str(&format!("{}: {}\n", t.name, t.message.as_deref().unwrap_or("").trim()));
        }
    }
    if out.is_empty() {
        let reason = v.reason.as_deref().unwrap_or(match v.status {
            Status::Timeout => "timeout",
            _ => "failed",
        });
        out = format!("{reason}\n{}", v.stderr_tail.trim());
    }
    if out.chars().count() > max_chars {
        // Keep the end: the exception line closes a traceback.
        let skip = out.chars().count() - max_chars;
        out = format!("...{}", out.chars().skip(skip).collect::<String>());
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Origin;
    use crate::pipeline::retrieve::Extracted;

    fn sample() -> Record {
        let file = SourceFile::new(
            "import re\n\ndef f(s):\n    return re.escape(s)\n".into(),
            Origin { file: "c.jsonl".into(), at: Some(Position::Line(3)) },
        );
        let f = Extracted {
            name: "f".into(),
            signature: "def f(s):".into(),
            docstring: None,
            text: "def f(s):\n    return re.escape(s)".into(),
            imports: vec!["import re".into()],
            modules: vec!["re".into()],
            lines: (3, 4),
        };
        Record::retrieved(&file, f)
    }

    #[test]
    fn retrieved_record_has_code_id_and_omits_empty_later_fields() {
        let r = sample();
        assert_eq!(r.function.code, "import re\n\n\ndef f(s):\n    return re.escape(s)\n");
        assert_eq!(r.id, content_id(&r.function.code));
        assert_eq!(r.function_text(), "def f(s):\n    return re.escape(s)");
        assert_eq!(r.function.packages, vec!["re"]);
        let json = serde_json::to_string(&r).expect("serializes");
        for absent in ["tests", "attempts", "verified", "polished", "rejected", "docstring"] {
            assert!(!json.contains(&format!("\"{absent}\"")), "{absent} in {json}");
        }
    }

    #[test]
    fn records_round_trip_through_jsonl_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.jsonl");
        let mut r = sample();
        r.verified = Some(Verified { code: r.function.code.clone(), round: 0, original_passed: true });
        r.reject(Stage::Polish, "regressed", "test_x failed");
        let line = serde_json::to_string(&r).expect("serializes");
        std::fs::write(&path, format!("{line}\n\n{line}\n{{\"id\": 1}}\n")).expect("write");
        let items: Vec<_> = RecordReader::open(&path).expect("opens").collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().expect("record"), &r);
        assert_eq!(items[1].as_ref().expect("record").rejected.as_ref().map(|x| x.stage), Some(Stage::Polish));
        let err = items[2].as_ref().expect_err("bad line").to_string();
        assert!(err.starts_with(&format!("{} line 4:", path.display())), "{err}");
        // A Windows editor's byte-order mark before line 1 is no obstacle; a byte that is not UTF-8
        // is named with its line, not as a stream that "did not contain valid UTF-8".
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(format!("{line}\n").as_bytes());
        bytes.extend_from_slice(&line.as_bytes()[..20]);
        bytes.extend_from_slice(b"\xff\n");
        std::fs::write(&path, bytes).expect("write");
        let items: Vec<_> = RecordReader::open(&path).expect("opens").collect();
        assert_eq!(items[0].as_ref().expect("record"), &r);
        let err = items[1].as_ref().expect_err("not UTF-8").to_string();
        assert_eq!(err, format!("{} line 2: not valid UTF-8 (byte 21 of the line)", path.display()));
    }
}
