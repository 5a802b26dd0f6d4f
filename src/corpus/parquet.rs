//! Parquet corpora (The Stack v1/v2 exports, HF datasets): a `content` column plus optional
//! provenance columns. Only those columns are decoded (a projection), and rows stream row group by
//! row group, so a multi-gigabyte shard never sits in memory whole.

use super::{CorpusError, Origin, Position, SourceFile, LICENSE_FIELDS, PATH_FIELDS, REPO_FIELDS};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use parquet::schema::types::Type;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Streams the rows of one Parquet file.
pub struct ParquetReader {
    path: PathBuf,
    rows: RowIter<'static>,
    row: u64,
    done: bool,
}

impl ParquetReader {
    /// Opens `path` and projects it onto `content` and the provenance columns it has.
    pub fn open(path: &Path) -> Result<Self, CorpusError> {
        let bad = |message: String| CorpusError::Parquet { path: path.to_path_buf(), message };
        let file = File::open(path).map_err(|source| CorpusError::Io { path: path.to_path_buf(), cause: source })?;
        let reader = SerializedFileReader::new(file).map_err(|e| bad(e.to_string()))?;
        let schema = reader.metadata().file_metadata().schema();
        let wanted = |name: &str| {
            name == "content"
                || PATH_FIELDS.contains(&name)
                || REPO_FIELDS.contains(&name)
                || LICENSE_FIELDS.contains(&name)
        };
        let fields: Vec<Arc<Type>> = schema.get_fields().iter().filter(|f| wanted(f.name())).cloned().collect();
        if !fields.iter().any(|f| f.name() == "content") {
            // Checked up front: every row would fail the same way.
            let has: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
            return Err(bad(format!("missing column `content` (the file has: {})", has.join(", "))));
        }
        let projection =
            Type::group_type_builder(schema.name()).with_fields(fields).build().map_err(|e| bad(e.to_string()))?;
        let rows =
            RowIter::from_file_into(Box::new(reader)).project(Some(projection)).map_err(|e| bad(e.to_string()))?;
        Ok(ParquetReader { path: path.to_path_buf(), rows, row: 0, done: false })
    }

    fn convert(&self, row: &Row) -> Result<SourceFile, CorpusError> {
        let get = |name: &str| row.get_column_iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f);
        let content = match get("content") {
            Some(Field::Str(s)) => s.clone(),
            Some(Field::Bytes(b)) => {
                String::from_utf8(b.data().to_vec()).map_err(|_| self.malformed("`content` is not valid UTF-8"))?
            }
            Some(Field::Null) | None => return Err(self.malformed("`content` is null")),
            Some(other) => return Err(self.malformed(format!("`content` is not a string but {other}"))),
        };
        let mut file = SourceFile::new(content, Origin { file: self.path.clone(), at: Some(Position::Row(self.row)) });
        // A value of another type than expected is noted, not dropped without a word.
        let mut ignored = Vec::new();
        let mut first = |names: &[&str]| {
            for n in names {
                match get(n) {
                    Some(Field::Null) | None => {}
                    Some(f) => match as_string(f) {
                        Some(s) => return Some(s),
                        None => ignored.push((n.to_string(), f.to_string())),
                    },
                }
            }
            None
        };
        file.path = first(PATH_FIELDS);
        file.repo = first(REPO_FIELDS);
        file.license = LICENSE_FIELDS
            .iter()
            .find_map(|n| match get(n) {
                Some(Field::ListInternal(list)) => {
                    let names: Vec<String> = list.elements().iter().filter_map(as_string).collect();
                    if names.len() < list.elements().len() {
                        ignored.push((n.to_string(), format!("{list:?}")));
                        return None;
                    }
                    Some(names)
                }
                Some(Field::Null) | None => None,
                Some(f) => {
                    let license = as_string(f).map(|s| vec![s]);
                    if license.is_none() {
                        ignored.push((n.to_string(), f.to_string()));
                    }
                    license
                }
            })
            .unwrap_or_default();
        file.ignored = ignored;
        Ok(file)
    }

    fn malformed(&self, message: impl Into<String>) -> CorpusError {
        CorpusError::Malformed { path: self.path.clone(), unit: "row", index: self.row, message: message.into() }
    }
}

fn as_string(field: &Field) -> Option<String> {
    match field {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data()).ok().map(str::to_string),
        _ => None,
    }
}

impl Iterator for ParquetReader {
    type Item = Result<SourceFile, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.rows.next()? {
            Ok(row) => self.convert(&row),
            Err(e) => {
                // A decoding error leaves the row iterator in an unknown state: stop here.
                self.done = true;
                Err(CorpusError::Parquet { path: self.path.clone(), message: format!("row {}: {e}", self.row) })
            }
        };
        self.row += 1;
        Some(item)
    }
}
