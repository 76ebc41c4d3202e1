//! The `runs` table: its DuckDB DDL and the matching Arrow schema, kept side by side so the
//! two cannot drift apart.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::record::RunRecord;

pub const SCHEMA_VERSION: i32 = 1;

/// (column, DuckDB type, Arrow type, nullable), in table order.
fn columns() -> Vec<(&'static str, &'static str, DataType, bool)> {
    use DataType::*;
    vec![
        ("run_id", "VARCHAR", Utf8, false),
        ("ts", "TIMESTAMP", Timestamp(TimeUnit::Microsecond, None), false),
        ("model_name", "VARCHAR", Utf8, false),
        ("model_type", "VARCHAR", Utf8, false),
        ("model_sha256", "VARCHAR", Utf8, true),
        ("model_file", "VARCHAR", Utf8, true),
        ("precision", "INTEGER", Int32, true),
        ("weights_dtype", "VARCHAR", Utf8, true),
        ("compute_dtype", "VARCHAR", Utf8, true),
        ("platform", "VARCHAR", Utf8, false),
        ("device", "VARCHAR", Utf8, true),
        ("browser", "VARCHAR", Utf8, false),
        ("browser_version", "VARCHAR", Utf8, true),
        ("batch_size", "INTEGER", Int32, true),
        ("session_create_ms", "DOUBLE", Float64, true),
        ("session_reused", "BOOLEAN", Boolean, true),
        ("first_run_ms", "DOUBLE", Float64, true),
        ("latency_ms", "DOUBLE", Float64, true),
        ("p90_ms", "DOUBLE", Float64, true),
        ("runs", "INTEGER", Int32, true),
        ("throughput_items_per_s", "DOUBLE", Float64, true),
        ("status", "VARCHAR", Utf8, false),
        ("error", "VARCHAR", Utf8, true),
        ("adapter_info", "JSON", Utf8, true),
    ]
}

pub fn create_runs_sql() -> String {
    let cols: Vec<String> = columns()
        .into_iter()
        .map(|(name, ty, _, nullable)| format!("{name} {ty}{}", if nullable { "" } else { " NOT NULL" }))
        .collect();
    format!("CREATE TABLE IF NOT EXISTS runs ({}, PRIMARY KEY (run_id))", cols.join(", "))
}

pub fn runs_schema() -> SchemaRef {
    Arc::new(Schema::new(
        columns().into_iter().map(|(name, _, ty, nullable)| Field::new(name, ty, nullable)).collect::<Vec<_>>(),
    ))
}

pub fn to_record_batch(records: &[RunRecord]) -> Result<RecordBatch> {
    fn text<'a>(records: &'a [RunRecord], f: impl Fn(&'a RunRecord) -> Option<&'a str>) -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<StringArray>())
    }
    fn float(records: &[RunRecord], f: impl Fn(&RunRecord) -> Option<f64>) -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<Float64Array>())
    }
    fn int(records: &[RunRecord], f: impl Fn(&RunRecord) -> Option<i32>) -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<Int32Array>())
    }
    let r = records;
    let columns: Vec<ArrayRef> = vec![
        text(r, |x| Some(&x.run_id)),
        Arc::new(r.iter().map(|x| Some(x.ts.timestamp_micros())).collect::<TimestampMicrosecondArray>()),
        text(r, |x| Some(&x.model_name)),
        text(r, |x| Some(&x.model_type)),
        text(r, |x| x.model_sha256.as_deref()),
        text(r, |x| x.model_file.as_deref()),
        int(r, |x| x.precision),
        text(r, |x| x.weights_dtype.as_deref()),
        text(r, |x| x.compute_dtype.as_deref()),
        text(r, |x| Some(&x.platform)),
        text(r, |x| x.device.as_deref()),
        text(r, |x| Some(&x.browser)),
        text(r, |x| x.browser_version.as_deref()),
        int(r, |x| x.batch_size),
        float(r, |x| x.session_create_ms),
        Arc::new(r.iter().map(|x| x.session_reused).collect::<BooleanArray>()),
        float(r, |x| x.first_run_ms),
        float(r, |x| x.latency_ms),
        float(r, |x| x.p90_ms),
        int(r, |x| x.runs),
        float(r, |x| x.throughput_items_per_s),
        text(r, |x| Some(x.status.as_str())),
        text(r, |x| x.error.as_deref()),
        text(r, |x| x.adapter_info.as_deref()),
    ];
    Ok(RecordBatch::try_new(runs_schema(), columns)?)
}
