//! `Frame`: a query result or a summary, held as a Polars DataFrame. It displays as a text
//! table in a terminal and as an HTML table in a notebook. Sorting, selecting and taking the
//! head are Polars operations; filters and ad-hoc SQL run in DuckDB over the frame's rows
//! (`frame_sql`), so a frame is filtered in the same SQL dialect the results file is queried in.

use std::fmt;
use std::path::Path;

use arrow::array::{Array, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use polars::prelude::{DataFrame, SortMultipleOptions};

use crate::error::{Result, ResultsError};
use crate::export::{export_query, ExportFormat};
use crate::frame_sql::{self, FRAME_TABLE};
use crate::interchange::{from_polars, to_polars};
use crate::render;
use crate::stats;
use crate::store::{query_arrow, QueryResult};

#[derive(Clone)]
pub struct Frame {
    df: DataFrame,
}

impl Frame {
    /// From Arrow batches (as DuckDB or arrow-rs produce them), converted whole columns at a
    /// time (see `interchange`).
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Frame> {
        Ok(Frame { df: to_polars(&schema, &batches)? })
    }

    pub fn from_query(result: QueryResult) -> Result<Frame> {
        Self::from_batches(result.schema, result.batches)
    }

    pub fn from_df(df: DataFrame) -> Frame {
        Frame { df }
    }

    pub fn df(&self) -> &DataFrame {
        &self.df
    }

    pub fn into_df(self) -> DataFrame {
        self.df
    }

    /// The frame as Arrow batches again.
    pub fn to_arrow(&self) -> Result<QueryResult> {
        let (schema, batches) = from_polars(&self.df)?;
        Ok(QueryResult { schema, batches })
    }

    pub(crate) fn arrow_parts(&self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        from_polars(&self.df)
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    pub fn width(&self) -> usize {
        self.df.width()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.df.get_column_names().into_iter().map(|n| n.to_string()).collect()
    }

    pub(crate) fn no_such_column(&self, column: &str) -> ResultsError {
        ResultsError::NoSuchColumn { column: column.to_string(), available: self.column_names() }
    }

    fn require(&self, column: &str) -> Result<()> {
        match self.df.column(column) {
            Ok(_) => Ok(()),
            Err(_) => Err(self.no_such_column(column)),
        }
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Frame {
        Frame { df: self.df.head(Some(n)) }
    }

    /// Sorted by one column; nulls last either way, equal values keep their order.
    pub fn sort(&self, column: &str, descending: bool) -> Result<Frame> {
        self.require(column)?;
        let options = SortMultipleOptions::default()
            .with_order_descending(descending)
            .with_nulls_last(true)
            .with_maintain_order(true);
        Ok(Frame { df: self.df.sort([column], options)? })
    }

    /// These columns, in this order.
    pub fn select<S: AsRef<str>>(&self, columns: &[S]) -> Result<Frame> {
        for c in columns {
            self.require(c.as_ref())?;
        }
        Ok(Frame { df: self.df.select(columns.iter().map(|c| c.as_ref()))? })
    }

    /// The rows for which a SQL condition holds, e.g. `"platform = 'wasm' AND latency_ms < 20"`.
    /// Columns are named as in the frame; the dialect is DuckDB's.
    pub fn filter(&self, condition: &str) -> Result<Frame> {
        self.sql(&format!("SELECT * FROM {FRAME_TABLE} WHERE {condition}"))
    }

    /// Any SQL query over this frame, which it calls `frame`.
    pub fn sql(&self, query: &str) -> Result<Frame> {
        let (schema, batches) = self.arrow_parts()?;
        let conn = frame_sql::load(&schema, &batches)?;
        Frame::from_query(query_arrow(&conn, query)?)
    }

    /// SQL over several frames, each a table under the name it is given (a join, say).
    pub fn sql_over(tables: &[(&str, &Frame)], query: &str) -> Result<Frame> {
        let conn = duckdb::Connection::open_in_memory()?;
        for (name, frame) in tables {
            let (schema, batches) = frame.arrow_parts()?;
            frame_sql::add_table(&conn, name, &schema, &batches)?;
        }
        Frame::from_query(query_arrow(&conn, query)?)
    }

    /// Writes the frame to a Parquet file; returns the number of rows.
    pub fn to_parquet(&self, path: &Path) -> Result<u64> {
        self.export(path, ExportFormat::Parquet)
    }

    pub fn export(&self, path: &Path, format: ExportFormat) -> Result<u64> {
        let (schema, batches) = self.arrow_parts()?;
        let conn = frame_sql::load(&schema, &batches)?;
        export_query(&conn, &format!("SELECT * FROM {FRAME_TABLE}"), path, format)
    }

    /// Per numeric column: count, null_count, mean, std, min, median, p90, max (the
    /// definitions are `stats`'s: type-7 quantiles, sample std). Other columns are left out.
    pub fn describe(&self) -> Result<Frame> {
        const STATISTICS: [&str; 8] = ["count", "null_count", "mean", "std", "min", "median", "p90", "max"];
        let (schema, batches) = self.arrow_parts()?;
        let mut fields = vec![Field::new("statistic", DataType::Utf8, false)];
        let mut columns: Vec<arrow::array::ArrayRef> =
            vec![std::sync::Arc::new(arrow::array::StringArray::from(STATISTICS.to_vec()))];
        for (i, field) in schema.fields().iter().enumerate() {
            if !field.data_type().is_numeric() {
                continue;
            }
            let mut values = Vec::new();
            let mut nulls = 0usize;
            for batch in &batches {
                let column = cast(batch.column(i), &DataType::Float64)?;
                let column: &Float64Array = column.as_primitive();
                nulls += column.null_count();
                values.extend(column.iter().flatten());
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let figures = [
                Some(values.len() as f64),
                Some(nulls as f64),
                stats::mean(&values),
                stats::sample_std(&values),
                sorted.first().copied(),
                stats::quantile_sorted(&sorted, 0.5),
                stats::quantile_sorted(&sorted, 0.9),
                sorted.last().copied(),
            ];
            fields.push(Field::new(field.name(), DataType::Float64, true));
            columns.push(std::sync::Arc::new(Float64Array::from(figures.to_vec())));
        }
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Frame::from_batches(schema, vec![batch])
    }

    /// An HTML `<table>` (values escaped), for a notebook's text/html.
    pub fn to_html(&self) -> Result<String> {
        let (schema, batches) = self.arrow_parts()?;
        render::html_table(&schema, &batches, self.height())
    }

    /// A text table, for a terminal.
    pub fn to_text(&self) -> Result<String> {
        let (schema, batches) = self.arrow_parts()?;
        render::text_table(&schema, &batches, self.height())
    }

    /// A column's values as text, for grouping and labels (nulls stay None).
    pub fn text_column(&self, column: &str) -> Result<Vec<Option<String>>> {
        self.require(column)?;
        let (schema, batches) = self.arrow_parts()?;
        let i = schema.index_of(column).map_err(|_| self.no_such_column(column))?;
        let options = FormatOptions::default();
        let mut out = Vec::with_capacity(self.height());
        for batch in &batches {
            let array = batch.column(i);
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            for row in 0..array.len() {
                out.push(array.is_valid(row).then(|| formatter.value(row).to_string()));
            }
        }
        Ok(out)
    }

    /// Every column as text, for a reader outside Rust's type system (a Rust cell's `Table`):
    /// names, Arrow types, and the values row by row (nulls stay None).
    pub fn text_rows(&self) -> Result<(Vec<String>, Vec<String>, Vec<Vec<Option<String>>>)> {
        let (schema, batches) = self.arrow_parts()?;
        let names = schema.fields().iter().map(|f| f.name().clone()).collect();
        let types = schema.fields().iter().map(|f| f.data_type().to_string()).collect();
        let options = FormatOptions::default();
        let mut rows = Vec::with_capacity(self.height());
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|array| ArrayFormatter::try_new(array.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                let valid = |i: usize| batch.column(i).is_valid(row);
                rows.push(
                    formatters.iter().enumerate().map(|(i, f)| valid(i).then(|| f.value(row).to_string())).collect(),
                );
            }
        }
        Ok((names, types, rows))
    }

    /// A numeric column's values as f64 (nulls stay None).
    pub fn f64_column(&self, column: &str) -> Result<Vec<Option<f64>>> {
        self.require(column)?;
        let (schema, batches) = self.arrow_parts()?;
        let i = schema.index_of(column).map_err(|_| self.no_such_column(column))?;
        let dt = schema.field(i).data_type();
        if !dt.is_numeric() {
            return Err(ResultsError::ColumnType {
                column: column.to_string(),
                found: dt.to_string(),
                wanted: "numbers".to_string(),
            });
        }
        let mut out = Vec::with_capacity(self.height());
        for batch in &batches {
            let values = cast(batch.column(i), &DataType::Float64)?;
            out.extend(values.as_primitive::<arrow::datatypes::Float64Type>().iter());
        }
        Ok(out)
    }

    /// Per row, the numbers in a numeric column (zero or one) or in a list-of-numbers column.
    pub(crate) fn sample_column(&self, column: &str) -> Result<Vec<Vec<f64>>> {
        self.require(column)?;
        let (schema, batches) = self.arrow_parts()?;
        let i = schema.index_of(column).map_err(|_| self.no_such_column(column))?;
        let dt = schema.field(i).data_type();
        let wrong = || ResultsError::ColumnType {
            column: column.to_string(),
            found: dt.to_string(),
            wanted: "numbers or a list of numbers".to_string(),
        };
        let mut out = Vec::with_capacity(self.height());
        for batch in &batches {
            let array = batch.column(i);
            match dt {
                DataType::List(f) | DataType::LargeList(f) if f.data_type().is_numeric() => {
                    let as_list = DataType::LargeList(std::sync::Arc::new(Field::new("l", DataType::Float64, true)));
                    let list = cast(array, &as_list)?;
                    let list = list.as_list::<i64>();
                    for row in 0..list.len() {
                        out.push(if list.is_valid(row) {
                            list.value(row).as_primitive::<arrow::datatypes::Float64Type>().iter().flatten().collect()
                        } else {
                            Vec::new()
                        });
                    }
                }
                t if t.is_numeric() => {
                    let values = cast(array, &DataType::Float64)?;
                    out.extend(
                        values.as_primitive::<arrow::datatypes::Float64Type>().iter().map(|v| v.into_iter().collect()),
                    );
                }
                _ => return Err(wrong()),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(f, "<frame of {} rows that cannot be shown: {e}>", self.height()),
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({} rows × {} columns: {:?})", self.height(), self.width(), self.column_names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::sql_string;
    use crate::fixtures::record;
    use crate::record::RunStatus;
    use crate::store::ResultStore;
    use duckdb::Connection;

    fn store(dir: &Path) -> ResultStore {
        let mut store = ResultStore::open(&dir.join("f.duckdb")).unwrap();
        let mut rows = Vec::new();
        for (i, (platform, latency)) in
            [("wasm", 30.0), ("webgpu", 12.5), ("webnn", 8.25), ("wasm", 28.0)].iter().enumerate()
        {
            let mut r = record(&format!("r{i}"), RunStatus::Ok);
            r.platform = platform.to_string();
            r.latency_ms = Some(*latency);
            rows.push(r);
        }
        rows.push(record("r4", RunStatus::Error));
        store.append(&rows).unwrap();
        store
    }

    /// Every DuckDB type a query can hand over, through Arrow into Polars and back: values
    /// kept, and the types that Polars lacks widened or turned to text as documented.
    #[test]
    fn every_column_type_round_trips_through_polars() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "SELECT 1::TINYINT AS i8, -2::SMALLINT AS i16, 3::INTEGER AS i32, 9007199254740993::BIGINT AS i64,
                          5::UTINYINT AS u8, 6::UINTEGER AS u32, 18446744073709551615::UBIGINT AS u64,
                          1.5::FLOAT AS f32, 2.25::DOUBLE AS f64, 12.34::DECIMAL(10,2) AS dec, true AS b,
                          'héllo <x> & \"y\"' AS s, NULL::VARCHAR AS null_s, NULL AS untyped,
                          TIMESTAMP '2026-11-27 03:04:05.000123' AS ts, TIMESTAMP_NS '2026-11-27 03:04:05.123456789' AS ts_ns,
                          TIMESTAMPTZ '2026-11-27 03:04:05+00' AS tstz, DATE '2026-11-27' AS d,
                          [1.5, NULL, 3.0]::DOUBLE[] AS list, ['a', 'b'] AS strings, INTERVAL 90 MINUTE AS iv,
                          TIME '12:34:56' AS t, {'a': 1, 'b': 'x'} AS st, '{\"k\": [1, 2]}'::JSON AS j,
                          'b0f6e0a4-3c41-4d2a-9c59-5f2b6a1f0e11'::UUID AS u
                   UNION ALL
                   SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";
        conn.execute_batch("SET TimeZone = 'UTC'").unwrap();
        let frame = Frame::from_query(query_arrow(&conn, sql).unwrap()).unwrap();
        assert_eq!((frame.height(), frame.width()), (2, 25));
        let back = frame.to_arrow().unwrap();
        let ty = |c: &str| back.schema.field_with_name(c).unwrap().data_type().clone();
        use arrow::datatypes::TimeUnit::*;
        use DataType::*;
        for (column, want) in [
            ("i8", Int32),
            ("i16", Int32),
            ("i32", Int32),
            ("i64", Int64),
            ("u8", UInt32),
            ("u32", UInt32),
            ("u64", UInt64),
            ("f32", Float32),
            ("f64", Float64),
            ("dec", Float64),
            ("b", Boolean),
            ("s", LargeUtf8),
            // DuckDB gives a NULL literal in a UNION the other side's type (none here: INTEGER).
            ("untyped", Int32),
            ("ts", Timestamp(Microsecond, None)),
            ("ts_ns", Timestamp(Nanosecond, None)),
            ("tstz", Timestamp(Microsecond, None)),
            ("d", Date32),
            ("iv", LargeUtf8),
            ("t", LargeUtf8),
            ("st", LargeUtf8),
            ("j", LargeUtf8),
            ("u", LargeUtf8),
        ] {
            assert_eq!(ty(column), want, "type of {column}");
        }
        assert!(matches!(ty("list"), LargeList(f) if f.data_type() == &Float64));
        assert!(matches!(ty("strings"), LargeList(f) if f.data_type() == &LargeUtf8));

        let text = |c: &str| frame.text_column(c).unwrap();
        for (column, want) in [
            ("i8", "1"),
            ("i16", "-2"),
            ("i64", "9007199254740993"),
            ("u64", "18446744073709551615"),
            ("f32", "1.5"),
            ("dec", "12.34"),
            ("b", "true"),
            ("s", "héllo <x> & \"y\""),
            ("ts", "2026-11-27T03:04:05.000123"),
            ("ts_ns", "2026-11-27T03:04:05.123456789"),
            ("tstz", "2026-11-27T03:04:05"),
            ("d", "2026-11-27"),
            ("list", "[1.5, , 3.0]"),
            ("strings", "[a, b]"),
            ("j", "{\"k\": [1, 2]}"),
            ("u", "b0f6e0a4-3c41-4d2a-9c59-5f2b6a1f0e11"),
        ] {
            assert_eq!(text(column), vec![Some(want.to_string()), None], "values of {column}");
        }
        assert_eq!(text("iv")[0].as_deref(), Some("1 hours 30 mins"));
        assert_eq!(text("st")[0].as_deref(), Some("{a: 1, b: x}"));
        assert_eq!(text("t")[0].as_deref(), Some("12:34:56"));
        assert_eq!(text("null_s"), vec![None, None]);
        assert_eq!(frame.f64_column("i16").unwrap(), vec![Some(-2.0), None]);
        assert_eq!(frame.sample_column("list").unwrap(), vec![vec![1.5, 3.0], vec![]]);

        // An Arrow column of type Null (DuckDB gives its NULLs a type, other producers may not):
        // Polars keeps it, and the frame's SQL can read it.
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            Field::new("x", Null, true),
            Field::new("y", Int64, false),
        ]));
        let columns: Vec<arrow::array::ArrayRef> = vec![
            std::sync::Arc::new(arrow::array::NullArray::new(1)),
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let bare = Frame::from_batches(schema, vec![batch]).unwrap();
        assert_eq!(bare.to_arrow().unwrap().schema.field(0).data_type(), &Null);
        assert_eq!(bare.filter("x IS NULL").unwrap().f64_column("y").unwrap(), [Some(1.0)]);

        // And into DuckDB again: the frame's own SQL sees the same values.
        let again = frame.sql("SELECT i64 + 1 AS next, ts, list[3] AS third, s FROM frame WHERE i8 = 1").unwrap();
        assert_eq!(again.text_column("next").unwrap(), vec![Some("9007199254740994".into())]);
        assert_eq!(again.text_column("ts").unwrap(), vec![Some("2026-11-27T03:04:05.000123".into())]);
        assert_eq!(again.f64_column("third").unwrap(), vec![Some(3.0)]);
    }

    /// The whole `runs` table, DuckDB → Arrow → Polars → Arrow → DuckDB → Parquet, compared
    /// with the table itself in DuckDB (both ways, so neither side has a row the other lacks).
    #[test]
    fn the_runs_table_survives_a_trip_through_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let frame = store.sql("SELECT * FROM runs").unwrap();
        assert_eq!(frame.height(), 5);
        let parquet = dir.path().join("frame.parquet");
        assert_eq!(frame.to_parquet(&parquet).unwrap(), 5);
        let file = sql_string(&parquet.to_string_lossy());
        let differing: i64 = store
            .connection()
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT * FROM runs EXCEPT ALL SELECT * FROM read_parquet({file})))
                          + (SELECT count(*) FROM (SELECT * FROM read_parquet({file}) EXCEPT ALL SELECT * FROM runs))"
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(differing, 0);
    }

    #[test]
    fn text_rows_are_the_columns_in_text_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let frame = store(dir.path()).sql("SELECT run_id, latency_ms FROM runs ORDER BY run_id").unwrap();
        let (names, types, rows) = frame.text_rows().unwrap();
        assert_eq!(names, vec!["run_id", "latency_ms"]);
        assert_eq!(types[1], "Float64");
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1], vec![Some("r1".to_string()), Some("12.5".to_string())]);
        assert_eq!(rows[4][1], None, "the error row has no latency");
    }

    #[test]
    fn head_sort_select_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let frame =
            store(dir.path()).sql("SELECT run_id, platform, latency_ms, status FROM runs ORDER BY run_id").unwrap();
        assert_eq!(frame.head(2).text_column("run_id").unwrap(), vec![Some("r0".into()), Some("r1".into())]);
        assert_eq!(frame.head(99).height(), 5);

        let sorted = frame.sort("latency_ms", false).unwrap();
        assert_eq!(
            sorted.f64_column("latency_ms").unwrap(),
            vec![Some(8.25), Some(12.5), Some(28.0), Some(30.0), None]
        );
        let sorted = frame.sort("latency_ms", true).unwrap();
        assert_eq!(
            sorted.f64_column("latency_ms").unwrap(),
            vec![Some(30.0), Some(28.0), Some(12.5), Some(8.25), None]
        );

        let selected = frame.select(&["latency_ms", "run_id"]).unwrap();
        assert_eq!(selected.column_names(), ["latency_ms", "run_id"]);

        let wasm = frame.filter("platform = 'wasm' AND latency_ms < 29").unwrap();
        assert_eq!(wasm.text_column("run_id").unwrap(), vec![Some("r3".into())]);
        let errors = frame.filter("status = 'error'").unwrap();
        assert_eq!(errors.height(), 1);

        for err in [
            frame.sort("nope", false).unwrap_err(),
            frame.select(&["run_id", "nope"]).unwrap_err(),
            frame.f64_column("nope").unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(text.contains("nope") && text.contains("latency_ms"), "{text}");
        }
        let err = frame.filter("latency_ms >>> 3").unwrap_err().to_string();
        assert!(err.contains("latency_ms >>> 3"), "{err}");
        let err = frame.filter("nope > 3").unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let err = frame.f64_column("platform").unwrap_err().to_string();
        assert!(err.contains("platform") && err.contains("numbers"), "{err}");
    }

    #[test]
    fn describe_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let frame = store(dir.path()).sql("SELECT run_id, latency_ms, precision FROM runs").unwrap();
        let d = frame.describe().unwrap();
        assert_eq!(d.column_names(), ["statistic", "latency_ms", "precision"]);
        assert_eq!(
            d.text_column("statistic").unwrap().into_iter().flatten().collect::<Vec<_>>(),
            ["count", "null_count", "mean", "std", "min", "median", "p90", "max"]
        );
        // latency: 30, 12.5, 8.25, 28 and one null. Sorted 8.25, 12.5, 28, 30: median (12.5 + 28) / 2,
        // p90 at h = 3 · 0.9 = 2.7 → 28 + 0.7 · 2, mean 78.75 / 4, std √(Σ(x − 19.6875)² / 3).
        let lat = d.f64_column("latency_ms").unwrap();
        let std = ((10.3125f64.powi(2) + 7.1875f64.powi(2) + 11.4375f64.powi(2) + 8.3125f64.powi(2)) / 3.0).sqrt();
        let want = [4.0, 1.0, 19.6875, std, 8.25, 20.25, 29.4, 30.0];
        for (got, want) in lat.iter().zip(want) {
            assert!((got.unwrap() - want).abs() < 1e-9, "{lat:?}");
        }
        assert_eq!(d.f64_column("precision").unwrap()[0], Some(5.0));
    }

    #[test]
    fn html_is_a_real_escaped_table_and_text_is_a_grid() {
        let dir = tempfile::tempdir().unwrap();
        let frame = store(dir.path()).sql("SELECT run_id, latency_ms, error FROM runs ORDER BY run_id").unwrap();
        let html = frame.to_html().unwrap();
        assert!(html.starts_with("<table"), "{html}");
        assert!(html.contains("<th>run_id<br><small>text</small></th>"), "{html}");
        assert!(html.contains("<td>boom &lt;b&gt;&amp;&lt;/b&gt;</td>"), "{html}");
        assert!(!html.contains("<b>"), "unescaped markup: {html}");
        assert_eq!(html.matches("<tr>").count(), 6, "{html}");
        assert!(html.contains("5 rows × 3 columns"), "{html}");

        let text = frame.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("run_id") && lines[1].contains("latency_ms"), "{text}");
        assert!(lines.iter().any(|l| l.contains("r2") && l.contains("8.25")), "{text}");
        assert!(text.contains("null"), "{text}");
        assert!(text.ends_with("5 rows × 3 columns"), "{text}");
    }

    #[test]
    fn long_frames_show_their_first_rows_and_say_so() {
        let conn = Connection::open_in_memory().unwrap();
        let frame = Frame::from_query(query_arrow(&conn, "SELECT range AS i FROM range(120)").unwrap()).unwrap();
        let html = frame.to_html().unwrap();
        assert_eq!(html.matches("<tr>").count(), 1 + crate::render::MAX_ROWS);
        assert!(html.contains("120 rows") && html.contains("first 50 shown"), "{html}");
        assert!(frame.to_string().contains("first 50 shown"));
    }
}
