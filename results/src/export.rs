//! Writing a query's rows to a file others can read: Parquet and CSV through DuckDB's own
//! `COPY … TO`, Arrow IPC (the file format, also read as Feather v2) through arrow-rs.
//! Each export goes to a temporary sibling first and is renamed into place, so a reader never
//! sees half a file and a failed export leaves any earlier file as it was.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::ipc::writer::FileWriter;
use duckdb::Connection;

use crate::error::{Result, ResultsError};
use crate::store::query_arrow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    /// With a header line; NULL is an empty field, and an empty string is `""` (DuckDB reads
    /// that back as an empty string with `allow_quoted_nulls = false`).
    Csv,
    /// The Arrow IPC file format (`.arrow`, Feather v2).
    ArrowIpc,
}

impl ExportFormat {
    pub const NAMES: [&'static str; 3] = ["parquet", "csv", "arrow"];

    /// From a file's extension: `.parquet`, `.csv`, `.arrow`/`.ipc`/`.feather`.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        Self::from_name(&ext).map_err(|_| {
            ResultsError::Invalid(format!(
                "cannot tell the export format of {} from its extension; use .parquet, .csv or .arrow",
                path.display()
            ))
        })
    }

    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" => Ok(ExportFormat::Parquet),
            "csv" => Ok(ExportFormat::Csv),
            "arrow" | "ipc" | "feather" => Ok(ExportFormat::ArrowIpc),
            other => {
                Err(ResultsError::Invalid(format!("unknown export format {other:?}; use one of {:?}", Self::NAMES)))
            }
        }
    }
}

/// Writes the rows of `sql`, run on `conn`, to `path`; returns how many.
pub(crate) fn export_query(conn: &Connection, sql: &str, path: &Path, format: ExportFormat) -> Result<u64> {
    let sql = sql.trim().trim_end_matches(';');
    let partial = partial_path(path)?;
    let result = write(conn, sql, &partial, format);
    match result {
        Ok(rows) => {
            std::fs::rename(&partial, path)
                .map_err(|e| ResultsError::Export { path: path.to_path_buf(), reason: e.to_string() })?;
            Ok(rows)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write(conn: &Connection, sql: &str, to: &Path, format: ExportFormat) -> Result<u64> {
    let options = match format {
        ExportFormat::Parquet => "FORMAT parquet",
        ExportFormat::Csv => "FORMAT csv, HEADER true",
        ExportFormat::ArrowIpc => return write_ipc(conn, sql, to),
    };
    let copy = format!("COPY ({sql}) TO {} ({options})", sql_string(&to.to_string_lossy()));
    let rows =
        conn.execute(&copy, []).map_err(|e| ResultsError::Query { sql: sql.to_string(), reason: e.to_string() })?;
    Ok(rows as u64)
}

fn write_ipc(conn: &Connection, sql: &str, to: &Path) -> Result<u64> {
    let result = query_arrow(conn, sql)?;
    let io = |source: std::io::Error| ResultsError::Io { path: to.to_path_buf(), source };
    let file = File::create(to).map_err(io)?;
    let mut writer = FileWriter::try_new(file, &result.schema)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    writer.into_inner()?.sync_all().map_err(io)?;
    Ok(result.num_rows() as u64)
}

/// `<dir>/.<name>.partial`, beside the target so the rename stays on one file system.
fn partial_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| ResultsError::Export {
        path: path.to_path_buf(),
        reason: "the path names no file".to_string(),
    })?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(ResultsError::Export {
            path: path.to_path_buf(),
            reason: format!("the directory {} does not exist", dir.display()),
        });
    }
    Ok(dir.join(format!(".{}.partial", name.to_string_lossy())))
}

/// A SQL string literal.
pub(crate) fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier.
pub(crate) fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::record;
    use crate::record::RunStatus;
    use crate::schema::runs_columns;
    use crate::store::{QueryResult, ResultStore};
    use arrow::compute::concat_batches;
    use arrow::ipc::reader::FileReader;

    /// Same column names, types and values, row for row.
    fn assert_same_rows(want: &QueryResult, got: &QueryResult, what: &str) {
        let want_batch = concat_batches(&want.schema, &want.batches).unwrap();
        let got_batch = concat_batches(&got.schema, &got.batches).unwrap();
        assert_eq!(want_batch.num_rows(), got_batch.num_rows(), "{what}: row count");
        assert_eq!(want_batch.num_columns(), got_batch.num_columns(), "{what}: column count");
        for (i, field) in want.schema.fields().iter().enumerate() {
            let other = got.schema.field(i);
            assert_eq!(field.name(), other.name(), "{what}: column {i}");
            assert_eq!(field.data_type(), other.data_type(), "{what}: type of {}", field.name());
            assert_eq!(
                want_batch.column(i).to_data(),
                got_batch.column(i).to_data(),
                "{what}: values of {}",
                field.name()
            );
        }
    }

    fn store_with_rows(dir: &Path) -> ResultStore {
        let mut store = ResultStore::open(&dir.join("r.duckdb")).unwrap();
        let mut quoted = record("c", RunStatus::Ok);
        quoted.fallback_reason = Some("a \"quoted\", comma'd\nmulti-line reason".into());
        quoted.latencies_ms = Some(vec![]);
        quoted.model_file = Some(String::new());
        store.append(&[record("a", RunStatus::Ok), record("b", RunStatus::Error), quoted]).unwrap();
        store
    }

    const SOURCE: &str = "SELECT * FROM runs ORDER BY run_id";

    #[test]
    fn parquet_csv_and_arrow_exports_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_rows(dir.path());
        let want = store.query_arrow(SOURCE).unwrap();
        assert_eq!(want.num_rows(), 3);

        let parquet = dir.path().join("runs.parquet");
        assert_eq!(store.export(SOURCE, &parquet, ExportFormat::Parquet).unwrap(), 3);
        let got = store
            .query_arrow(&format!(
                "SELECT * FROM read_parquet({}) ORDER BY run_id",
                sql_string(&parquet.to_string_lossy())
            ))
            .unwrap();
        assert_same_rows(&want, &got, "parquet");

        // CSV carries no types: read it back with the table's own. A quoted empty field is an
        // empty string, not NULL.
        let csv = dir.path().join("runs.csv");
        assert_eq!(store.export(SOURCE, &csv, ExportFormat::Csv).unwrap(), 3);
        let types: Vec<String> =
            runs_columns().iter().map(|c| format!("{}: {}", sql_string(c.name), sql_string(c.sql_type))).collect();
        let got = store
            .query_arrow(&format!(
                "SELECT * FROM read_csv({}, header = true, allow_quoted_nulls = false, columns = {{{}}}) ORDER BY run_id",
                sql_string(&csv.to_string_lossy()),
                types.join(", ")
            ))
            .unwrap();
        assert_same_rows(&want, &got, "csv");

        let ipc = dir.path().join("runs.arrow");
        assert_eq!(store.export(SOURCE, &ipc, ExportFormat::ArrowIpc).unwrap(), 3);
        let reader = FileReader::try_new(File::open(&ipc).unwrap(), None).unwrap();
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>().unwrap();
        assert_same_rows(&want, &QueryResult { schema, batches }, "arrow ipc");

        // Nothing half-written is left beside them.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(names.iter().all(|n| !n.to_string_lossy().ends_with(".partial")), "{names:?}");
    }

    #[test]
    fn a_failed_export_says_why_and_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_rows(dir.path());
        let target = dir.path().join("keep.parquet");
        std::fs::write(&target, b"earlier export").unwrap();
        for format in [ExportFormat::Parquet, ExportFormat::Csv, ExportFormat::ArrowIpc] {
            let err = store.export("SELECT nope FROM runs", &target, format).unwrap_err().to_string();
            assert!(err.contains("nope"), "{err}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"earlier export");
        let err = store.export(SOURCE, &dir.path().join("missing/dir/x.csv"), ExportFormat::Csv).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(ExportFormat::from_path(Path::new("a/b.PARQUET")).unwrap(), ExportFormat::Parquet);
        assert_eq!(ExportFormat::from_path(Path::new("b.feather")).unwrap(), ExportFormat::ArrowIpc);
        assert!(ExportFormat::from_path(Path::new("b.xlsx")).unwrap_err().to_string().contains(".parquet"));
    }
}
