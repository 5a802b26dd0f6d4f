//! The file formats of the derived dataset files: JSONL, gzip'd JSONL and Parquet. Each file is
//! written aside (`NAME.tmp`) and renamed into place when complete, so a kill while writing leaves
//! the previous complete file, never half of one; the files are rebuilt from the record journal on
//! every finalize, so nothing in them can be lost.
//!
//! Parquet is written with the `parquet` crate's column writers (no Arrow): every column is a
//! required UTF-8 string or 64-bit integer, except the instruction format's `messages`, a standard
//! three-level `LIST` of `{role, content}` structs, as Hugging Face datasets expect.

use super::formats::{Cell, Column, Derived, Row};
use crate::pipeline::run_dir::OutputError;
use flate2::write::GzEncoder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A file format of the derived dataset files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line (`.jsonl`).
    Jsonl,
    /// The same, gzip-compressed (`.jsonl.gz`).
    JsonlGz,
    /// Apache Parquet, zstd-compressed (`.parquet`).
    Parquet,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::JsonlGz, Format::Parquet];

    /// The file name extension (without the dot), also the name `--format` takes.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::JsonlGz => "jsonl.gz",
            Format::Parquet => "parquet",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.extension() == s)
            .ok_or_else(|| format!("format `{s}`: expected jsonl, jsonl.gz or parquet"))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Writes `lines` of the derived format `derived` to `dir/NAME.EXT` in `format`, atomically.
pub fn write(dir: &Path, derived: Derived, format: Format, lines: &[Row]) -> Result<PathBuf, OutputError> {
    let stem = derived.name();
    let path = dir.join(format!("{stem}.{}", format.extension()));
    crate::atomic_file::stream(
        &path,
        |p, e| OutputError::io(p)(e),
        |tmp, file| match format {
            Format::Jsonl => {
                let w = write_jsonl(tmp, std::io::BufWriter::new(file), lines)?;
                w.into_inner().map_err(|e| OutputError::io(tmp)(e.into_error()))
            }
            Format::JsonlGz => {
                let gz = GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
                let mut gz = write_jsonl(tmp, gz, lines)?;
                gz.try_finish().map_err(OutputError::io(tmp))?;
                let w = gz.finish().map_err(OutputError::io(tmp))?;
                w.into_inner().map_err(|e| OutputError::io(tmp)(e.into_error()))
            }
            Format::Parquet => write_parquet(tmp, file, derived, lines),
        },
    )?;
    Ok(path)
}

fn write_jsonl<W: Write>(path: &Path, mut w: W, lines: &[Row]) -> Result<W, OutputError> {
    for line in lines {
        serde_json::to_writer(&mut w, &line.to_json().map_err(|e| OutputError::other(path, e))?)
            .map_err(|e| OutputError::other(path, e))?;
        w.write_all(b"\n").map_err(OutputError::io(path))?;
    }
    w.flush().map_err(OutputError::io(path))?;
    Ok(w)
}

/// The Parquet schema of `derived`'s columns.
fn schema(derived: Derived) -> String {
    let mut fields = String::new();
    for c in derived.columns() {
        fields.push_str(&match c {
            Column::Str(n) => format!("  required binary {n} (STRING);\n"),
            Column::Int(n) => format!("  required int64 {n};\n"),
            Column::Score(n) => format!("  optional double {n};\n"),
            Column::Messages(n) => format!(
                "  required group {n} (LIST) {{\n    repeated group list {{\n      required group element {{\n        \
                 required binary role (STRING);\n        required binary content (STRING);\n      }}\n    }}\n  }}\n"
            ),
        });
    }
    format!("message {} {{\n{fields}}}", derived.name())
}

/// Rows per row group: large enough for good compression, small enough to bound memory.
const ROW_GROUP: usize = 2048;

/// Writes the Parquet file and hands it back (to be synced).
fn write_parquet(
    path: &Path,
    file: std::fs::File,
    derived: Derived,
    lines: &[Row],
) -> Result<std::fs::File, OutputError> {
    let pq = |e: parquet::errors::ParquetError| OutputError::other(path, e);
    let schema = Arc::new(parse_message_type(&schema(derived)).map_err(pq)?);
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(pq)?;
    // Leaf columns in schema order: a message list has two (role, content); `k` is the cell.
    let leaves: Vec<(usize, Option<&str>)> = derived
        .columns()
        .iter()
        .enumerate()
        .flat_map(|(k, c)| match c {
            Column::Messages(_) => vec![(k, Some("role")), (k, Some("content"))],
            _ => vec![(k, None)],
        })
        .collect();
    for (g, group) in lines.chunks(ROW_GROUP).enumerate() {
        let cells: Vec<Vec<Cell<'_>>> = group.iter().map(Row::cells).collect();
        let mut rg = writer.next_row_group().map_err(pq)?;
        for &(k, field) in &leaves {
            let mut col =
                rg.next_column().map_err(pq)?.ok_or_else(|| OutputError::other(path, "schema has fewer columns"))?;
            let name = derived.columns()[k];
            let wrong = |i: usize| {
                OutputError::other(path, format!("line {}: column {name:?} of the wrong type", g * ROW_GROUP + i + 1))
            };
            match name {
                Column::Str(_) => {
                    let mut values = Vec::with_capacity(group.len());
                    for (i, row) in cells.iter().enumerate() {
                        let Some(Cell::Str(v)) = row.get(k) else { return Err(wrong(i)) };
                        values.push(ByteArray::from(*v));
                    }
                    col.typed::<ByteArrayType>().write_batch(&values, None, None).map_err(pq)?;
                }
                Column::Int(_) => {
                    let mut values = Vec::with_capacity(group.len());
                    for (i, row) in cells.iter().enumerate() {
                        let Some(Cell::Int(v)) = row.get(k) else { return Err(wrong(i)) };
                        values.push(*v);
                    }
                    col.typed::<Int64Type>().write_batch(&values, None, None).map_err(pq)?;
                }
                Column::Score(_) => {
                    // Null is a definition level of 0 and no value.
                    let (mut values, mut def) = (Vec::new(), Vec::with_capacity(group.len()));
                    for (i, row) in cells.iter().enumerate() {
                        let Some(Cell::Score(v)) = row.get(k) else { return Err(wrong(i)) };
                        match v {
                            Some(v) => {
                                values.push(*v);
                                def.push(1);
                            }
                            None => def.push(0),
                        }
                    }
                    col.typed::<DoubleType>().write_batch(&values, Some(&def), None).map_err(pq)?;
                }
                Column::Messages(_) => {
                    let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
                    for (i, row) in cells.iter().enumerate() {
                        let Some(Cell::Messages(list)) = row.get(k) else { return Err(wrong(i)) };
                        if list.is_empty() {
                            // An empty list: one level entry, no value.
                            def.push(0);
                            rep.push(0);
                        }
                        for (j, m) in list.iter().enumerate() {
                            let v = if field == Some("role") { m.role } else { m.content.as_str() };
                            values.push(ByteArray::from(v));
                            def.push(1);
                            rep.push(if j == 0 { 0 } else { 1 });
                        }
                    }
                    col.typed::<ByteArrayType>().write_batch(&values, Some(&def), Some(&rep)).map_err(pq)?;
                }
            }
            col.close().map_err(pq)?;
        }
        rg.close().map_err(pq)?;
    }
    writer.into_inner().map_err(pq)
}
