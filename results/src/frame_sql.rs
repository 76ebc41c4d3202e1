//! SQL over a frame: its rows loaded, as Arrow through DuckDB's appender, into a private
//! in-memory DuckDB as the table `frame`. `Frame::filter` and `Frame::sql` use it, so a
//! frame's filter is written in the same dialect as `sql(…)` on the results file, and it
//! never touches (or needs the lock of) that file.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use duckdb::Connection;

use crate::error::{Result, ResultsError};
use crate::export::sql_ident;

/// The table name a frame has inside its SQL.
pub const FRAME_TABLE: &str = "frame";

/// The DuckDB column type that takes an Arrow column as DuckDB's appender writes it (raw
/// values, so the timestamp unit must match).
fn duckdb_type(dt: &DataType) -> Option<String> {
    use DataType::*;
    Some(
        match dt {
            Boolean => "BOOLEAN",
            Int8 => "TINYINT",
            Int16 => "SMALLINT",
            Int32 => "INTEGER",
            Int64 => "BIGINT",
            UInt8 => "UTINYINT",
            UInt16 => "USMALLINT",
            UInt32 => "UINTEGER",
            UInt64 => "UBIGINT",
            Float32 => "FLOAT",
            Float64 => "DOUBLE",
            Utf8 | LargeUtf8 | Utf8View => "VARCHAR",
            Binary | LargeBinary | BinaryView => "BLOB",
            Date32 => "DATE",
            Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S",
            Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS",
            Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
            Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS",
            Duration(_) => "INTERVAL",
            List(f) | LargeList(f) => return duckdb_type(f.data_type()).map(|t| format!("{t}[]")),
            _ => return None,
        }
        .to_string(),
    )
}

/// An in-memory DuckDB holding `batches` as the table `frame`.
pub(crate) fn load(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    add_table(&conn, FRAME_TABLE, schema, batches)?;
    Ok(conn)
}

/// Adds `batches` to `conn` as the table `name`.
pub(crate) fn add_table(conn: &Connection, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    // An all-null column of Arrow type Null (a bare `SELECT NULL`) has no DuckDB column type;
    // it goes in as an all-null INTEGER.
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Null => Field::new(f.name(), DataType::Int32, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let ty = duckdb_type(f.data_type()).ok_or_else(|| ResultsError::UnsupportedType {
            column: f.name().clone(),
            data_type: f.data_type().to_string(),
            hint: "frames cannot run SQL over it; select it away first".to_string(),
        })?;
        columns.push(format!("{} {ty}", sql_ident(f.name())));
    }
    conn.execute_batch(&format!("CREATE TABLE {} ({})", sql_ident(name), columns.join(", ")))?;
    {
        let mut appender = conn.appender(name)?;
        for batch in batches {
            let arrays = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(a, f)| if a.data_type() == f.data_type() { Ok(a.clone()) } else { cast(a, f.data_type()) })
                .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
            appender.append_record_batch(RecordBatch::try_new(schema.clone(), arrays)?)?;
        }
        appender.flush()?;
    }
    Ok(())
}
