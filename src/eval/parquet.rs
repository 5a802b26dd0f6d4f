//! Benchmark data from Parquet files, as the Hugging Face Hub publishes datasets
//! (`openai/openai_humaneval`, `google-research-datasets/mbpp`, `bigcode/bigcodebench`...).
//!
//! Each row becomes the same `(column, raw JSON text)` pairs a JSONL line gives, so one loader
//! turns both into tasks: strings become JSON strings, `list<string>` columns (MBPP's `test_list`)
//! JSON arrays, integer ids numbers. The columns a benchmark needs are checked against the schema
//! before any row is read, so a wrong file fails once, naming the column, not once per row.

use super::EvalError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use std::fs::File;
use std::path::Path;

/// Whether `bytes` look like a Parquet file (`PAR1` at both ends).
pub fn is_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1")
}

/// One row: its 0-based index and its top-level columns as raw JSON text.
pub type RawRow = (usize, Vec<(String, String)>);

/// Reads every row of the Parquet file at `path`. `check_columns` sees the top-level column names
/// first and may reject the file (a missing column) before any row is decoded.
pub fn read_rows(
    path: &Path,
    check_columns: &dyn Fn(&[String]) -> Result<(), String>,
) -> Result<Vec<RawRow>, EvalError> {
    let bad =
        |location: String, problem: String| EvalError::Record { path: path.display().to_string(), location, problem };
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad("parquet".into(), e.to_string()))?;
    let schema = reader.metadata().file_metadata().schema();
    let columns: Vec<String> = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
    check_columns(&columns).map_err(|p| bad("schema".into(), p))?;
    let rows = reader.get_row_iter(None).map_err(|e| bad("parquet".into(), e.to_string()))?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        // A decoding error leaves the row iterator in an unknown state: stop at the first.
        let row = row.map_err(|e| bad(format!("row {i}"), e.to_string()))?;
        out.push((i, row_fields(&row).map_err(|p| bad(format!("row {i}"), p))?));
    }
    Ok(out)
}

fn row_fields(row: &Row) -> Result<Vec<(String, String)>, String> {
    row.get_column_iter()
        .map(|(name, f)| json_text(f).map(|v| (name.clone(), v)).map_err(|p| format!("column `{name}`: {p}")))
        .collect()
}

/// A Parquet value as JSON text, exactly as the JSONL release would spell it.
fn json_text(f: &Field) -> Result<String, String> {
    let quoted = |s: &str| serde_json::to_string(s).map_err(|e| e.to_string());
    Ok(match f {
        Field::Null => "null".into(),
        Field::Bool(b) => b.to_string(),
        Field::Byte(n) => n.to_string(),
        Field::Short(n) => n.to_string(),
        Field::Int(n) => n.to_string(),
        Field::Long(n) => n.to_string(),
        Field::UByte(n) => n.to_string(),
        Field::UShort(n) => n.to_string(),
        Field::UInt(n) => n.to_string(),
        Field::ULong(n) => n.to_string(),
        Field::Float(x) => float_text(f64::from(*x)),
        Field::Double(x) => float_text(*x),
        Field::Str(s) => quoted(s)?,
        // Binary columns without a UTF-8 annotation (older writers) still hold text here.
        Field::Bytes(b) => quoted(std::str::from_utf8(b.data()).map_err(|_| "binary value is not UTF-8 text")?)?,
        Field::ListInternal(list) => {
            let items: Result<Vec<String>, String> = list.elements().iter().map(json_text).collect();
            format!("[{}]", items?.join(", "))
        }
        Field::Group(row) => {
            let fields = row_fields(row)?;
            let items: Result<Vec<String>, String> =
                fields.iter().map(|(k, v)| Ok(format!("{}: {v}", quoted(k)?))).collect();
            format!("{{{}}}", items?.join(", "))
        }
        other => quoted(&other.to_string())?,
    })
}

/// Floats as Python's `json` reads them (`Infinity`, `NaN` included, as in evalplus inputs).
fn float_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_python_json_spellings() {
        assert_eq!(float_text(f64::INFINITY), "Infinity");
        assert_eq!(float_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float_text(1e-6), "1e-6");
        assert_eq!(float_text(0.5), "0.5");
    }

    #[test]
    fn magic_bytes() {
        assert!(is_parquet(b"PAR1....PAR1"));
        assert!(!is_parquet(b"{\"task_id\": 1}"));
        assert!(!is_parquet(b"PAR1"));
    }
}
