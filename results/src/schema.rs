//! The tables and their versions. Each `runs` column is declared once — its DuckDB type, its
//! Arrow type, the schema version that added it, and how to read it off a record — so the DDL,
//! the migrations and the Arrow batches cannot drift apart.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::record::RunRecord;

/// The version a freshly created database gets, and the one older files are upgraded to.
pub const SCHEMA_VERSION: i32 = 2;

pub struct Column {
    pub name: &'static str,
    pub sql_type: &'static str,
    pub nullable: bool,
    /// The schema version that added the column.
    pub since: i32,
    arrow_type: DataType,
    values: fn(&[RunRecord]) -> ArrayRef,
}

fn text(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<&str>) -> ArrayRef {
    Arc::new(r.iter().map(f).collect::<StringArray>())
}
fn float(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> ArrayRef {
    Arc::new(r.iter().map(f).collect::<Float64Array>())
}
fn int(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<i32>) -> ArrayRef {
    Arc::new(r.iter().map(f).collect::<Int32Array>())
}

macro_rules! col {
    ($name:literal, $sql:literal, $arrow:expr, $nullable:literal, $since:literal, $values:expr) => {
        Column { name: $name, sql_type: $sql, arrow_type: $arrow, nullable: $nullable, since: $since, values: $values }
    };
}

/// Every column of `runs`, in table order (later versions append: DuckDB adds columns last).
pub fn runs_columns() -> Vec<Column> {
    use DataType::*;
    let utf8 = || Utf8;
    vec![
        col!("run_id", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(&x.run_id))),
        col!("ts", "TIMESTAMP", Timestamp(TimeUnit::Microsecond, None), false, 1, |r| {
            Arc::new(r.iter().map(|x| Some(x.ts.timestamp_micros())).collect::<TimestampMicrosecondArray>())
        }),
        col!("model_name", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(&x.model_name))),
        col!("model_type", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(&x.model_type))),
        col!("model_sha256", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.model_sha256.as_deref())),
        col!("model_file", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.model_file.as_deref())),
        col!("precision", "INTEGER", Int32, true, 1, |r| int(r, |x| x.precision)),
        col!("weights_dtype", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.weights_dtype.as_deref())),
        col!("compute_dtype", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.compute_dtype.as_deref())),
        col!("platform", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(&x.platform))),
        col!("device", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.device.as_deref())),
        col!("browser", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(&x.browser))),
        col!("browser_version", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.browser_version.as_deref())),
        col!("batch_size", "INTEGER", Int32, true, 1, |r| int(r, |x| x.batch_size)),
        col!("session_create_ms", "DOUBLE", Float64, true, 1, |r| float(r, |x| x.session_create_ms)),
        col!("session_reused", "BOOLEAN", Boolean, true, 1, |r| {
            Arc::new(r.iter().map(|x| x.session_reused).collect::<BooleanArray>())
        }),
        col!("first_run_ms", "DOUBLE", Float64, true, 1, |r| float(r, |x| x.first_run_ms)),
        col!("latency_ms", "DOUBLE", Float64, true, 1, |r| float(r, |x| x.latency_ms)),
        col!("p90_ms", "DOUBLE", Float64, true, 1, |r| float(r, |x| x.p90_ms)),
        col!("runs", "INTEGER", Int32, true, 1, |r| int(r, |x| x.runs)),
        col!("throughput_items_per_s", "DOUBLE", Float64, true, 1, |r| float(r, |x| x.throughput_items_per_s)),
        col!("status", "VARCHAR", utf8(), false, 1, |r| text(r, |x| Some(x.status.as_str()))),
        col!("error", "VARCHAR", utf8(), true, 1, |r| text(r, |x| x.error.as_deref())),
        col!("adapter_info", "JSON", utf8(), true, 1, |r| text(r, |x| x.adapter_info.as_deref())),
        // Version 2: platform fallback, browser selection, environments, precompiled shaders,
        // memory and energy.
        col!("requested_platform", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x.requested_platform.as_deref())),
        col!("fallback_reason", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x.fallback_reason.as_deref())),
        col!("selection_reason", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x.selection_reason.as_deref())),
        col!("environment_fingerprint", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x
            .environment_fingerprint
            .as_deref())),
        col!("precompile_ms", "DOUBLE", Float64, true, 2, |r| float(r, |x| x.precompile_ms)),
        col!("memory_bytes", "BIGINT", Int64, true, 2, |r| {
            Arc::new(r.iter().map(|x| x.memory_bytes).collect::<Int64Array>())
        }),
        col!("memory_source", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x.memory_source.as_deref())),
        col!("energy_joules", "DOUBLE", Float64, true, 2, |r| float(r, |x| x.energy_joules)),
    ]
}

fn column_sql(c: &Column) -> String {
    format!("{} {}{}", c.name, c.sql_type, if c.nullable { "" } else { " NOT NULL" })
}

/// The SQL that takes a database from version `v - 1` to `v`.
pub fn migration(v: i32) -> Option<String> {
    let columns = runs_columns();
    match v {
        1 => {
            let cols: Vec<String> = columns.iter().filter(|c| c.since == 1).map(column_sql).collect();
            Some(format!("CREATE TABLE runs ({}, PRIMARY KEY (run_id));", cols.join(", ")))
        }
        2 => {
            let mut sql: String = columns
                .iter()
                .filter(|c| c.since == 2)
                .map(|c| format!("ALTER TABLE runs ADD COLUMN {};\n", column_sql(c)))
                .collect();
            sql.push_str(
                "CREATE TABLE environments (
                    fingerprint VARCHAR PRIMARY KEY,
                    first_seen TIMESTAMP NOT NULL,
                    browser VARCHAR NOT NULL,
                    version VARCHAR,
                    executable VARCHAR,
                    flags JSON,
                    adapter JSON,
                    capabilities JSON NOT NULL
                );",
            );
            Some(sql)
        }
        _ => None,
    }
}

pub fn runs_schema() -> SchemaRef {
    Arc::new(Schema::new(
        runs_columns().into_iter().map(|c| Field::new(c.name, c.arrow_type, c.nullable)).collect::<Vec<_>>(),
    ))
}

pub fn to_record_batch(records: &[RunRecord]) -> Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = runs_columns().iter().map(|c| (c.values)(records)).collect();
    Ok(RecordBatch::try_new(runs_schema(), arrays)?)
}
