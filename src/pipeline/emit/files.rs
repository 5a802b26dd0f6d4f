//! The file formats of the derived dataset files: JSONL, gzip'd JSONL and Parquet. Each file is
//! written aside (`NAME.tmp`) and renamed into place when complete, so a kill while writing leaves
//! the previous complete file, never half of one; the files are rebuilt from the record journal on
//! every finalize, so nothing in them can be lost.
//!
//! Parquet is written with the `parquet` crate's column writers (no Arrow): every column is a
//! required UTF-8 string or 64-bit integer, except the instruction format's `messages`, a standard
//! three-level `LIST` of `{role, content}` structs, as Hugging Face datasets expect.

use crate::pipeline::synth::SynthError;
use flate2::write::GzEncoder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;
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

/// A column of a derived format.
#[derive(Debug, Clone, Copy)]
pub enum Column {
    /// A UTF-8 string field.
    Str(&'static str),
    /// An integer field.
    Int(&'static str),
    /// A list of `{role, content}` chat messages.
    Messages(&'static str),
    /// A number that may be null (the quality scores).
    Score(&'static str),
}

/// The columns of each derived format (the keys of its JSON lines, in order).
pub fn columns(stem: &str) -> &'static [Column] {
    use Column::*;
    const Q: [Column; 3] = [Score("mutation_score"), Score("line_coverage"), Score("branch_coverage")];
    match stem {
        "prefix_completion" => &[Str("id"), Str("prompt"), Str("completion"), Q[0], Q[1], Q[2]],
        "instruction" => &[Str("id"), Messages("messages"), Q[0], Q[1], Q[2]],
        "dpo" => &[Str("id"), Str("prompt"), Str("chosen"), Str("rejected"), Q[0], Q[1], Q[2]],
        "repair" => {
            &[Str("id"), Int("round"), Str("code"), Str("tests"), Str("feedback"), Str("fix"), Q[0], Q[1], Q[2]]
        }
        _ => &[],
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io { path: path.to_path_buf(), cause: source }
}

fn other(path: &Path, e: impl std::fmt::Display) -> SynthError {
    SynthError::Io { path: path.to_path_buf(), cause: std::io::Error::other(e.to_string()) }
}

/// Writes `lines` of the derived format `stem` to `dir/STEM.EXT` in `format`, atomically.
pub fn write(dir: &Path, stem: &str, format: Format, lines: &[Value]) -> Result<PathBuf, SynthError> {
    let path = dir.join(format!("{stem}.{}", format.extension()));
    let tmp = dir.join(format!("{stem}.{}.tmp", format.extension()));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    match format {
        Format::Jsonl => {
            let w = write_jsonl(&tmp, std::io::BufWriter::new(file), lines)?;
            w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?.sync_all().map_err(io(&tmp))?;
        }
        Format::JsonlGz => {
            let gz = GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::default());
            let mut gz = write_jsonl(&tmp, gz, lines)?;
            gz.try_finish().map_err(io(&tmp))?;
            let w = gz.finish().map_err(io(&tmp))?;
            w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?.sync_all().map_err(io(&tmp))?;
        }
        Format::Parquet => write_parquet(&tmp, file, stem, lines)?,
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

fn write_jsonl<W: Write>(path: &Path, mut w: W, lines: &[Value]) -> Result<W, SynthError> {
    for line in lines {
        serde_json::to_writer(&mut w, line).map_err(|e| other(path, e))?;
        w.write_all(b"\n").map_err(io(path))?;
    }
    w.flush().map_err(io(path))?;
    Ok(w)
}

/// The Parquet schema of `stem`'s columns.
fn schema(stem: &str) -> String {
    let mut fields = String::new();
    for c in columns(stem) {
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
    format!("message {stem} {{\n{fields}}}")
}

/// Rows per row group: large enough for good compression, small enough to bound memory.
const ROW_GROUP: usize = 2048;

fn write_parquet(path: &Path, file: std::fs::File, stem: &str, lines: &[Value]) -> Result<(), SynthError> {
    let pq = |e: parquet::errors::ParquetError| other(path, e);
    let schema = Arc::new(parse_message_type(&schema(stem)).map_err(pq)?);
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(pq)?;
    // Leaf columns in schema order: a message list has two (role, content).
    let leaves: Vec<(Column, Option<&str>)> = columns(stem)
        .iter()
        .flat_map(|&c| match c {
            Column::Messages(_) => vec![(c, Some("role")), (c, Some("content"))],
            _ => vec![(c, None)],
        })
        .collect();
    for (g, group) in lines.chunks(ROW_GROUP).enumerate() {
        let mut rg = writer.next_row_group().map_err(pq)?;
        for (column, field) in &leaves {
            let mut col = rg.next_column().map_err(pq)?.ok_or_else(|| other(path, "schema has fewer columns"))?;
            let at = |i: usize| g * ROW_GROUP + i + 1;
            match column {
                Column::Str(name) => {
                    let mut values = Vec::with_capacity(group.len());
                    for (i, line) in group.iter().enumerate() {
                        let v = line[*name].as_str().ok_or_else(|| missing(path, at(i), name))?;
                        values.push(ByteArray::from(v));
                    }
                    col.typed::<ByteArrayType>().write_batch(&values, None, None).map_err(pq)?;
                }
                Column::Int(name) => {
                    let mut values = Vec::with_capacity(group.len());
                    for (i, line) in group.iter().enumerate() {
                        values.push(line[*name].as_i64().ok_or_else(|| missing(path, at(i), name))?);
                    }
                    col.typed::<Int64Type>().write_batch(&values, None, None).map_err(pq)?;
                }
                Column::Score(name) => {
                    // Null is a definition level of 0 and no value.
                    let (mut values, mut def) = (Vec::new(), Vec::with_capacity(group.len()));
                    for line in group {
                        match line[*name].as_f64() {
                            Some(v) => {
                                values.push(v);
                                def.push(1);
                            }
                            None => def.push(0),
                        }
                    }
                    col.typed::<DoubleType>().write_batch(&values, Some(&def), None).map_err(pq)?;
                }
                Column::Messages(name) => {
                    let key = field.unwrap_or("content");
                    let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
                    for (i, line) in group.iter().enumerate() {
                        let list = line[*name].as_array().ok_or_else(|| missing(path, at(i), name))?;
                        if list.is_empty() {
                            // An empty list: one level entry, no value.
                            def.push(0);
                            rep.push(0);
                        }
                        for (k, m) in list.iter().enumerate() {
                            let v = m[key].as_str().ok_or_else(|| missing(path, at(i), key))?;
                            values.push(ByteArray::from(v));
                            def.push(1);
                            rep.push(if k == 0 { 0 } else { 1 });
                        }
                    }
                    col.typed::<ByteArrayType>().write_batch(&values, Some(&def), Some(&rep)).map_err(pq)?;
                }
            }
            col.close().map_err(pq)?;
        }
        rg.close().map_err(pq)?;
    }
    writer.close().map_err(pq)?;
    Ok(())
}

fn missing(path: &Path, line: usize, field: &str) -> SynthError {
    other(path, format!("line {line}: field `{field}` missing or of the wrong type"))
}
