//! Loading benchmark data from user paths: JSONL, gzip-compressed JSONL and JSON arrays, as the
//! benchmarks publish them, and Parquet, as the Hugging Face Hub publishes them (read by
//! [`super::parquet`]). Each record becomes a [`Task`] with its oracle.
//!
//! evalplus inputs hold integers beyond 64 bits and `Infinity`, which a JSON number type cannot
//! carry faithfully, so records are split into top-level fields as raw text and the input arrays
//! stay text until Python (whose `json` reads them exactly) parses them.

use super::benchmark::{Benchmark, Oracle, PlusFamily, Task};
use super::EvalError;
use flate2::read::MultiGzDecoder;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A loaded benchmark: its tasks, where they came from and a hash of the data.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub benchmark: Benchmark,
    pub path: PathBuf,
    /// sha256 of the uncompressed data file (first 16 hex digits), recorded with every result.
    pub hash: String,
    pub tasks: Vec<Task>,
}

/// One record: where it is in its file and its top-level fields as raw JSON text.
struct Record {
    loc: Loc,
    fields: Vec<(String, String)>,
}

/// Where a record sits, for error messages: JSONL lines are 1-based, JSON array elements and
/// Parquet rows 0-based (as `jq` and pandas count them).
#[derive(Debug, Clone, Copy)]
enum Loc {
    Line(usize),
    Element(usize),
    Row(usize),
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Element(n) => write!(f, "element {n}"),
            Loc::Row(n) => write!(f, "row {n}"),
        }
    }
}

fn rec_err(path: &Path, rec: &Record, problem: impl Into<String>) -> EvalError {
    EvalError::Record { path: path.display().to_string(), location: rec.loc.to_string(), problem: problem.into() }
}

impl Dataset {
    /// Loads `benchmark` from `path`: JSONL, gzip-compressed JSONL, a JSON array or Parquet (told
    /// apart by content, not by name).
    pub fn load(benchmark: Benchmark, path: &Path) -> Result<Dataset, EvalError> {
        let (records, hash) = read_records(path, &|columns: &[String]| check_columns(benchmark, columns))?;
        let mut tasks: Vec<Task> = Vec::new();
        // Where each task id was first seen: a repeated id would be scored twice under one name.
        let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for rec in &records {
            if let Some(task) = to_task(benchmark, path, rec)? {
                if task.task_id.trim().is_empty() {
                    return Err(rec_err(path, rec, "field `task_id`: empty"));
                }
                if let Some(first) = seen.insert(task.task_id.clone(), rec.loc.to_string()) {
                    return Err(rec_err(path, rec, format!("task_id `{}` again (first on {first})", task.task_id)));
                }
                tasks.push(task);
            }
        }
        if tasks.is_empty() {
            // MBPP keeps only its test split: a train or validation file (the Hub's
            // `full/train-*.parquet`, say) holds records, just none that are scored.
            let why = if records.is_empty() || !matches!(benchmark, Benchmark::Mbpp | Benchmark::MbppSanitized) {
                String::new()
            } else {
                format!(
                    " ({} records, none in MBPP's test split, task ids {} to {}: is this its train, validation or prompt split?)",
                    records.len(),
                    MBPP_TEST_IDS.start(),
                    MBPP_TEST_IDS.end()
                )
            };
            let (path, location) = (path.display().to_string(), "whole file".to_string());
            return Err(EvalError::Record { path, location, problem: format!("no {benchmark} tasks found{why}") });
        }
        match benchmark {
            Benchmark::BigCodeBenchHard => tasks = hard_subset(path, tasks)?,
            Benchmark::BigCodeBench => refuse_hard_as_full(path, &tasks)?,
            _ => {}
        }
        Ok(Dataset { benchmark, path: path.to_path_buf(), hash, tasks })
    }

    /// Keeps only the first `limit` tasks.
    pub fn truncate(&mut self, limit: usize) {
        self.tasks.truncate(limit);
    }
}

/// BigCodeBench-Hard v0.1.4's 148 task ids (the subset bigcodebench's `--subset hard` scores).
const HARD_TASK_IDS: &str = include_str!("../../eval/data/bigcodebench/BigCodeBench-Hard-v0.1.4.task_ids.json");

/// The Hard tasks of a BigCodeBench file: a Hard file as it is; the full set cut to its Hard tasks
/// (scoring all 1140 under the Hard name would report the full set's figure as Hard's).
fn hard_subset(path: &Path, tasks: Vec<Task>) -> Result<Vec<Task>, EvalError> {
    let hard: std::collections::HashSet<String> = serde_json::from_str(HARD_TASK_IDS).unwrap_or_default();
    if tasks.iter().all(|t| hard.contains(&t.task_id)) {
        return Ok(tasks);
    }
    let in_hard = tasks.iter().filter(|t| hard.contains(&t.task_id)).count();
    if in_hard == hard.len() {
        return Ok(tasks.into_iter().filter(|t| hard.contains(&t.task_id)).collect());
    }
    if tasks.len() <= hard.len() {
        return Ok(tasks); // a Hard file of another release, whose ids this one does not list
    }
    Err(EvalError::Record {
        path: path.display().to_string(),
        location: "whole file".into(),
        problem: format!(
            "{} tasks, only {} of them among BigCodeBench-Hard's {}: neither Hard data nor the full set it is drawn from",
            tasks.len(),
            in_hard,
            hard.len()
        ),
    })
}

/// Refuses the Hard file scored as the full benchmark: its figure would be reported under the full
/// set's name, and the two lie far apart (Hard's tasks are the ones models fail most).
fn refuse_hard_as_full(path: &Path, tasks: &[Task]) -> Result<(), EvalError> {
    let hard: std::collections::HashSet<String> = serde_json::from_str(HARD_TASK_IDS).unwrap_or_default();
    if tasks.len() != hard.len() || !tasks.iter().all(|t| hard.contains(&t.task_id)) {
        return Ok(());
    }
    Err(EvalError::Record {
        path: path.display().to_string(),
        location: "whole file".into(),
        problem: format!(
            "these are BigCodeBench-Hard's {} tasks, not the full benchmark's 1140: score them as --benchmark \
             bigcodebench-hard",
            hard.len()
        ),
    })
}

/// Reads the records of a benchmark file (JSONL, gzip-compressed JSONL, a JSON array or Parquet,
/// told apart by content) and the hash of its data; `check` vets a Parquet file's columns.
fn read_records(
    path: &Path,
    check: &dyn Fn(&[String]) -> Result<(), String>,
) -> Result<(Vec<Record>, String), EvalError> {
    let bytes = read_maybe_gz(path)?;
    let hash = hex16(&Sha256::digest(&bytes));
    let records = if super::parquet::is_parquet(&bytes) {
        drop(bytes);
        let rows = super::parquet::read_rows(path, check)?;
        rows.into_iter().map(|(i, fields)| Record { loc: Loc::Row(i), fields }).collect()
    } else {
        let text = String::from_utf8(bytes).map_err(|e| EvalError::data(path, 0, format!("not UTF-8: {e}")))?;
        split_records(path, &text)?
    };
    Ok((records, hash))
}

/// The string fields named in `names` of every record of a benchmark file, in file order (a
/// record without any of them gives an empty list): the same reader as [`Dataset::load`], for
/// users that need only some text of any benchmark, such as decontamination.
pub fn string_fields(path: &Path, names: &[&str]) -> Result<Vec<Vec<String>>, EvalError> {
    let (records, _) = read_records(path, &|_: &[String]| Ok(()))?;
    let mut out = Vec::with_capacity(records.len());
    for rec in &records {
        let mut texts = Vec::new();
        for name in names {
            // Other types (task ids that are numbers, null) are not text to index.
            if let Some(raw) = field(rec, name).filter(|raw| raw.starts_with('"')) {
                texts.push(serde_json::from_str::<String>(raw).map_err(|e| field_err(path, rec, name, &e))?);
            }
        }
        out.push(texts);
    }
    Ok(out)
}

fn hex16(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads a file, decompressing it when it starts with the gzip magic bytes. Every gzip member is
/// read, as `gzip -d` and Python's `gzip` read them: `cat a.gz b.gz` (or `gzip >>`, pigz, bgzip)
/// makes files of several members, and reading only the first would drop the rest without a word.
/// A UTF-8 byte order mark at the start (Windows editors and `utf-8-sig` writers put one there) is
/// dropped: it is no part of the JSON, and the file hashes as the same content without it.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, EvalError> {
    let raw = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let mut out =
        gunzip_if_gzip(raw).map_err(|e| EvalError::data(path, 0, format!("gzip data truncated or corrupt: {e}")))?;
    if out.starts_with(b"\xEF\xBB\xBF") {
        out.drain(..3);
    }
    Ok(out)
}

/// `raw` itself, or, when it is gzip (by its magic bytes, whatever the file's name), all its members
/// decompressed: the one reader of inputs that may be kept compressed (benchmark data, samples,
/// `check --batch` and `generate --prompts` files).
pub fn gunzip_if_gzip(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
    Ok(out)
}

fn split_records(path: &Path, text: &str) -> Result<Vec<Record>, EvalError> {
    if text.trim_start().starts_with('[') {
        // A JSON array (sanitized MBPP): plain serde is exact enough for its fields.
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| EvalError::data(path, e.line(), e.to_string()))?;
        return values
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                serde_json::Value::Object(map) => Ok(Record {
                    loc: Loc::Element(i),
                    fields: map.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
                }),
                _ => Err(EvalError::data(path, 0, format!("element {i} is not an object"))),
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = raw_fields(line).map_err(|p| EvalError::data(path, i + 1, p))?;
        out.push(Record { loc: Loc::Line(i + 1), fields });
    }
    Ok(out)
}

/// Splits a JSON object into its top-level `(key, raw value)` pairs without interpreting values.
pub fn raw_fields(text: &str) -> Result<Vec<(String, String)>, String> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    i = skip_ws(b, i + 1);
    let mut fields = Vec::new();
    if b.get(i) == Some(&b'}') {
        return Ok(fields);
    }
    loop {
        let key_end = string_end(b, i).ok_or("expected a quoted key")?;
        let key: String = serde_json::from_str(&text[i..key_end]).map_err(|e| format!("bad key: {e}"))?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(format!("expected `:` after key `{key}`"));
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start).ok_or_else(|| format!("unterminated value of `{key}`"))?;
        fields.push((key, text[start..end].trim_end().to_string()));
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(fields),
            _ => return Err("expected `,` or `}` between fields".into()),
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the string literal starting at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Index just past the value starting at `i` (at the `,` or `}` that ends it at depth 0).
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn field<'a>(rec: &'a Record, name: &str) -> Option<&'a str> {
    rec.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn missing(path: &Path, rec: &Record, name: &str) -> EvalError {
    let has = |n: &str| field(rec, n).is_some();
    rec_err(
        path,
        rec,
        format!("missing field `{name}`{}{}", origin_fmt_hint(name, &has), mbpp_release_hint(name, &has)),
    )
}

/// MBPP's two releases name the task text differently: `text` in the full one, `prompt` (with
/// `test_imports`) in the sanitized one. A file of the other release is named as such.
fn mbpp_release_hint(name: &str, has: &dyn Fn(&str) -> bool) -> &'static str {
    match name {
        "text" if has("prompt") && has("test_list") => {
            "; the file has `prompt` and `test_list`, as the sanitized MBPP release does: is it --benchmark \
             mbpp-sanitized's?"
        }
        "prompt" if has("text") && has("test_list") => {
            "; the file has `text` and `test_list`, as the full MBPP release does: is it --benchmark mbpp's?"
        }
        _ => "",
    }
}

fn get<T: DeserializeOwned>(path: &Path, rec: &Record, name: &str) -> Result<T, EvalError> {
    let raw = field(rec, name).ok_or_else(|| missing(path, rec, name))?;
    serde_json::from_str(raw).map_err(|e| field_err(path, rec, name, &e))
}

/// A field's value that does not parse as its type. serde's own "at line 1 column N" counts within
/// the field's value, which a message naming the file's line or row would contradict.
fn field_err(path: &Path, rec: &Record, name: &str, e: &serde_json::Error) -> EvalError {
    rec_err(path, rec, format!("field `{name}`: {}", crate::json_line::message(e)))
}

fn raw(path: &Path, rec: &Record, name: &str) -> Result<String, EvalError> {
    let mut raw = field(rec, name).ok_or_else(|| missing(path, rec, name))?.to_string();
    // A table format has no column type for ragged argument lists: converted copies store the
    // array as JSON text in a string column.
    if raw.starts_with('"') {
        raw = serde_json::from_str::<String>(&raw).map_err(|e| field_err(path, rec, name, &e))?;
    }
    // MBPP+ v0.2.0 has `"plus_input": {}` for Mbpp/793; evalplus iterates it as no inputs.
    if raw.trim() == "{}" {
        return Ok("[]".to_string());
    }
    if !raw.trim_start().starts_with('[') {
        return Err(rec_err(path, rec, format!("field `{name}`: expected an array of argument lists")));
    }
    Ok(raw)
}

/// The fields each benchmark's loader reads (the columns a Parquet file must have).
fn required_fields(bench: Benchmark) -> &'static [&'static str] {
    match bench {
        Benchmark::HumanEval => &["task_id", "prompt", "canonical_solution", "entry_point", "test"],
        Benchmark::HumanEvalPlus | Benchmark::MbppPlus => {
            &["task_id", "prompt", "canonical_solution", "entry_point", "base_input", "plus_input", "atol"]
        }
        Benchmark::Mbpp => &["task_id", "text", "code", "test_list", "test_setup_code"],
        Benchmark::MbppSanitized => &["task_id", "prompt", "code", "test_list", "test_imports"],
        Benchmark::BigCodeBench | Benchmark::BigCodeBenchHard => {
            &["task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "test", "entry_point", "libs"]
        }
    }
}

fn check_columns(bench: Benchmark, columns: &[String]) -> Result<(), String> {
    let has = |n: &str| columns.iter().any(|c| c == n);
    match required_fields(bench).iter().find(|n| !has(n)) {
        None => Ok(()),
        Some(name) => Err(format!(
            "missing column `{name}`, which {bench} needs (the file has: {}){}",
            columns.join(", "),
            origin_fmt_hint(name, &has)
        )),
    }
}

/// A file with `test` but no inputs is in the original benchmarks' format: the original release
/// itself, or evalplus' copy of HumanEval+/MBPP+ with the expected outputs baked into `test`
/// ("OriginFmt"), which is what the Hub's `evalplus/humanevalplus` and `evalplus/mbppplus` hold.
/// The columns do not tell the two apart; differential scoring (base and plus verdicts) needs the
/// inputs either way.
fn origin_fmt_hint(name: &str, has: &dyn Fn(&str) -> bool) -> &'static str {
    if matches!(name, "base_input" | "plus_input" | "atol") && has("test") {
        "; the file has `test` but no test inputs, so it is in the original benchmark's format (the \
         original release, or evalplus' OriginFmt copy with the expected outputs baked into `test`, as the \
         HF datasets evalplus/humanevalplus and evalplus/mbppplus publish it): HumanEval+ and MBPP+ need \
         the evalplus release file (HumanEvalPlus-v0.1.10.jsonl.gz, MbppPlus-v0.2.0.jsonl.gz), and a file \
         in the original format is scored with the original benchmark's --benchmark"
    } else {
        ""
    }
}

/// MBPP's test split is task ids 11-510 in both the full and the sanitized release.
const MBPP_TEST_IDS: std::ops::RangeInclusive<i64> = 11..=510;

fn to_task(bench: Benchmark, path: &Path, rec: &Record) -> Result<Option<Task>, EvalError> {
    let s = |name: &str| get::<String>(path, rec, name);
    let task = match bench {
        // HumanEval and the evalplus files share their fields; only the oracle differs.
        Benchmark::HumanEval | Benchmark::HumanEvalPlus | Benchmark::MbppPlus => {
            // Read in file order, so the first missing field is the one named.
            let prompt = s("prompt")?;
            let task_id = s("task_id")?;
            // The two evalplus files have the same fields: the ids tell them apart.
            let other = match bench {
                Benchmark::MbppPlus => task_id.starts_with("HumanEval/").then_some("humaneval-plus"),
                _ => task_id.starts_with("Mbpp/").then_some("mbpp-plus"),
            };
            if let Some(other) = other {
                return Err(rec_err(
                    path,
                    rec,
                    format!("task_id `{task_id}` is not a {bench} task: is the file --benchmark {other}'s?"),
                ));
            }
            let canonical = format!("{prompt}{}", s("canonical_solution")?);
            let entry_point = s("entry_point")?;
            let oracle = match bench {
                Benchmark::HumanEval => Oracle::Check { test: s("test")? },
                _ => Oracle::Differential {
                    family: if bench == Benchmark::HumanEvalPlus { PlusFamily::HumanEval } else { PlusFamily::Mbpp },
                    base_input: raw(path, rec, "base_input")?,
                    plus_input: raw(path, rec, "plus_input")?,
                    atol: get::<f64>(path, rec, "atol")?,
                },
            };
            Task {
                task_id,
                canonical,
                prompt,
                instruct_prompt: None,
                entry_point,
                prompt_is_code: true,
                examples: Vec::new(),
                oracle,
            }
        }
        Benchmark::Mbpp | Benchmark::MbppSanitized => {
            let id: i64 = get(path, rec, "task_id")?;
            if !MBPP_TEST_IDS.contains(&id) {
                return Ok(None);
            }
            let code = s("code")?;
            let asserts: Vec<String> = get(path, rec, "test_list")?;
            let (prompt, setup, imports) = if bench == Benchmark::Mbpp {
                (s("text")?, s("test_setup_code")?, Vec::new())
            } else {
                (s("prompt")?, String::new(), get(path, rec, "test_imports")?)
            };
            let entry_point = mbpp_entry_point(&code, &asserts)
                .ok_or_else(|| rec_err(path, rec, "cannot tell which function the tests call"))?;
            Task {
                task_id: id.to_string(),
                prompt,
                instruct_prompt: None,
                entry_point,
                canonical: code,
                prompt_is_code: false,
                examples: asserts.clone(),
                oracle: Oracle::Asserts { setup, imports, asserts },
            }
        }
        Benchmark::BigCodeBench | Benchmark::BigCodeBenchHard => {
            let prompt = s("complete_prompt")?;
            Task {
                task_id: s("task_id")?,
                canonical: format!("{prompt}\n{}", s("canonical_solution")?),
                prompt,
                instruct_prompt: Some(s("instruct_prompt")?),
                entry_point: s("entry_point")?,
                prompt_is_code: true,
                examples: Vec::new(),
                oracle: Oracle::UnitTest { test: s("test")?, libs: parse_libs(&s("libs")?) },
            }
        }
    };
    Ok(Some(task))
}

/// The first function defined in `code` that the asserts call (`name(` or `name (`).
fn mbpp_entry_point(code: &str, asserts: &[String]) -> Option<String> {
    let names: Vec<&str> = code
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("def "))
        .filter_map(|rest| rest.split('(').next().map(str::trim))
        .collect();
    names.iter().find(|name| asserts.iter().any(|a| calls(a, name))).map(|n| n.to_string())
}

/// Whether `text` calls `name` (as a whole word followed by an opening parenthesis).
fn calls(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before_ok = text[..i].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        before_ok && text[i + name.len()..].trim_start().starts_with('(')
    })
}

/// BigCodeBench stores `libs` as a Python list literal of module names.
fn parse_libs(s: &str) -> Vec<String> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|p| p.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fields_keeps_big_ints_and_infinity_verbatim() {
        let f = raw_fields(r#"{"a": "x,}", "b": [[1e999, -Infinity, 99999999999999999999999]], "c": 0}"#).unwrap();
        assert_eq!(f[0], ("a".into(), "\"x,}\"".into()));
        assert_eq!(f[1].1, "[[1e999, -Infinity, 99999999999999999999999]]");
        assert_eq!(f[2].1, "0");
    }

    #[test]
    fn raw_fields_rejects_truncated_objects() {
        assert!(raw_fields(r#"{"a": [1, 2"#).is_err());
        assert!(raw_fields("[1]").is_err());
    }

    #[test]
    fn libs_and_entry_points() {
        assert_eq!(parse_libs("['subprocess', 'ftplib', 'os']"), ["subprocess", "ftplib", "os"]);
        let asserts = vec!["assert set(similar(1)) == set()".to_string()];
        assert_eq!(
            mbpp_entry_point("def helper(x):\n  pass\ndef similar(a):\n  pass", &asserts).as_deref(),
            Some("similar")
        );
    }
}
