//! The tables and their versions. Each `runs` column is declared once — its DuckDB type, its
//! Arrow type, the schema version that added it, and how to read it off a record — so the DDL,
//! the migrations and the Arrow batches cannot drift apart.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Float64Builder, Int32Array, Int64Array, ListBuilder, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::record::{ExperimentRecord, ExperimentStatus, RunRecord};

/// The version a freshly created database gets, and the one older files are upgraded to.
pub const SCHEMA_VERSION: i32 = 7;

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
fn boolean(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<bool>) -> ArrayRef {
    Arc::new(r.iter().map(f).collect::<BooleanArray>())
}
fn bigint(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<i64>) -> ArrayRef {
    Arc::new(r.iter().map(f).collect::<Int64Array>())
}
fn float_list(r: &[RunRecord], f: impl Fn(&RunRecord) -> Option<&[f64]>) -> ArrayRef {
    let mut list = ListBuilder::new(Float64Builder::new()).with_field(list_item());
    for x in r {
        match f(x) {
            Some(values) => {
                list.values().append_slice(values);
                list.append(true);
            }
            None => list.append(false),
        }
    }
    Arc::new(list.finish())
}
/// The element field of a list column, as DuckDB itself names it when it hands back Arrow.
fn list_item() -> Arc<Field> {
    Arc::new(Field::new("l", DataType::Float64, true))
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
        col!("session_reused", "BOOLEAN", Boolean, true, 1, |r| boolean(r, |x| x.session_reused)),
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
        col!("memory_bytes", "BIGINT", Int64, true, 2, |r| bigint(r, |x| x.memory_bytes)),
        col!("memory_source", "VARCHAR", utf8(), true, 2, |r| text(r, |x| x.memory_source.as_deref())),
        col!("energy_joules", "DOUBLE", Float64, true, 2, |r| float(r, |x| x.energy_joules)),
        // Version 3: mixed precision (issue 4), content addressing (issue 5), accuracy against
        // fp32 (issue 4), and the experiment a row belongs to with its raw timings (issue 6).
        col!("mixed_precision", "BOOLEAN", Boolean, true, 3, |r| boolean(r, |x| x.mixed_precision)),
        col!("cid", "VARCHAR", utf8(), true, 3, |r| text(r, |x| x.cid.as_deref())),
        col!("ipfs_cache_hit", "BOOLEAN", Boolean, true, 3, |r| boolean(r, |x| x.ipfs_cache_hit)),
        col!("ipfs_gateway", "VARCHAR", utf8(), true, 3, |r| text(r, |x| x.ipfs_gateway.as_deref())),
        col!("ipfs_bytes", "BIGINT", Int64, true, 3, |r| bigint(r, |x| x.ipfs_bytes)),
        col!("ipfs_fetch_ms", "DOUBLE", Float64, true, 3, |r| float(r, |x| x.ipfs_fetch_ms)),
        col!("ipfs_verified", "BOOLEAN", Boolean, true, 3, |r| boolean(r, |x| x.ipfs_verified)),
        col!("accuracy_cosine", "DOUBLE", Float64, true, 3, |r| float(r, |x| x.accuracy_cosine)),
        col!("accuracy_max_abs_error", "DOUBLE", Float64, true, 3, |r| float(r, |x| x.accuracy_max_abs_error)),
        col!("accuracy_top1_agree", "DOUBLE", Float64, true, 3, |r| float(r, |x| x.accuracy_top1_agree)),
        col!("accuracy_reference", "VARCHAR", utf8(), true, 3, |r| text(r, |x| x.accuracy_reference.as_deref())),
        col!("experiment_id", "VARCHAR", utf8(), true, 3, |r| text(r, |x| x.experiment_id.as_deref())),
        col!("cell_index", "INTEGER", Int32, true, 3, |r| int(r, |x| x.cell_index)),
        col!("repetition", "INTEGER", Int32, true, 3, |r| int(r, |x| x.repetition)),
        col!("latencies_ms", "DOUBLE[]", List(list_item()), true, 3, |r| float_list(r, |x| x.latencies_ms.as_deref())),
        // Version 4: kernel time per operator type for profiled runs.
        col!("op_profile", "JSON", utf8(), true, 4, |r| text(r, |x| x.op_profile.as_deref())),
        // Version 5: finite outputs, this call's warm-up, native threads, software adapters,
        // node placement, and the assumptions made for the input.
        col!("outputs_finite", "BOOLEAN", Boolean, true, 5, |r| boolean(r, |x| x.outputs_finite)),
        col!("warmup_runs", "INTEGER", Int32, true, 5, |r| int(r, |x| x.warmup_runs)),
        col!("warmup_ms", "DOUBLE", Float64, true, 5, |r| float(r, |x| x.warmup_ms)),
        col!("threads", "INTEGER", Int32, true, 5, |r| int(r, |x| x.threads)),
        col!("adapter_software", "BOOLEAN", Boolean, true, 5, |r| boolean(r, |x| x.adapter_software)),
        col!("nodes_total", "INTEGER", Int32, true, 5, |r| int(r, |x| x.nodes_total)),
        col!("nodes_on_ep", "INTEGER", Int32, true, 5, |r| int(r, |x| x.nodes_on_ep)),
        col!("details", "JSON", utf8(), true, 5, |r| text(r, |x| x.details.as_deref())),
        col!("model_fetch_ms", "DOUBLE", Float64, true, 5, |r| float(r, |x| x.model_fetch_ms)),
        // Version 6: text generation (medians over the timed generations, and their samples),
        // and token agreement with the reference.
        col!("prompt_tokens", "INTEGER", Int32, true, 6, |r| int(r, |x| x.prompt_tokens)),
        col!("generated_tokens", "INTEGER", Int32, true, 6, |r| int(r, |x| x.generated_tokens)),
        col!("ttft_ms", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.ttft_ms)),
        col!("prefill_tokens_per_s", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.prefill_tokens_per_s)),
        col!("decode_tokens_per_s", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.decode_tokens_per_s)),
        col!("per_token_p50_ms", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.per_token_p50_ms)),
        col!("per_token_p90_ms", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.per_token_p90_ms)),
        col!("ttfts_ms", "DOUBLE[]", List(list_item()), true, 6, |r| float_list(r, |x| x.ttfts_ms.as_deref())),
        col!("decode_rates", "DOUBLE[]", List(list_item()), true, 6, |r| float_list(r, |x| x.decode_rates.as_deref())),
        col!("accuracy_tokens_leading", "INTEGER", Int32, true, 6, |r| int(r, |x| x.accuracy_tokens_leading)),
        col!("accuracy_tokens_share", "DOUBLE", Float64, true, 6, |r| float(r, |x| x.accuracy_tokens_share)),
        // Version 7: speech to text (the generation columns hold its decoding, per chunk).
        col!("audio_seconds", "DOUBLE", Float64, true, 7, |r| float(r, |x| x.audio_seconds)),
        col!("chunks", "INTEGER", Int32, true, 7, |r| int(r, |x| x.chunks)),
        col!("encoder_ms", "DOUBLE", Float64, true, 7, |r| float(r, |x| x.encoder_ms)),
        col!("real_time_factor", "DOUBLE", Float64, true, 7, |r| float(r, |x| x.real_time_factor)),
        col!("chunk_ms", "DOUBLE[]", List(list_item()), true, 7, |r| float_list(r, |x| x.chunk_ms.as_deref())),
        col!("accuracy_wer", "DOUBLE", Float64, true, 7, |r| float(r, |x| x.accuracy_wer)),
    ]
}

fn column_sql(c: &Column) -> String {
    format!("{} {}{}", c.name, c.sql_type, if c.nullable { "" } else { " NOT NULL" })
}

/// `ALTER TABLE` statements for the columns version `v` added.
fn added_columns(columns: &[Column], v: i32) -> String {
    columns
        .iter()
        .filter(|c| c.since == v)
        .map(|c| format!("ALTER TABLE runs ADD COLUMN {};\n", column_sql(c)))
        .collect()
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
            let mut sql = added_columns(&columns, 2);
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
        3 => {
            let mut sql = added_columns(&columns, 3);
            // `experiment_id` has the same name as in `runs`, so `JOIN experiments USING (experiment_id)`.
            sql.push_str(
                "CREATE TABLE experiments (
                    experiment_id VARCHAR PRIMARY KEY,
                    started_at TIMESTAMP NOT NULL,
                    finished_at TIMESTAMP,
                    spec JSON NOT NULL,
                    status VARCHAR NOT NULL,
                    error VARCHAR
                );",
            );
            Some(sql)
        }
        4 => Some(added_columns(&columns, 4)),
        5 => {
            // A grid run across machines at once: its wall time against the sum of its cells'.
            let mut sql = added_columns(&columns, 5);
            sql.push_str("ALTER TABLE experiments ADD COLUMN wall_ms DOUBLE;\nALTER TABLE experiments ADD COLUMN cells_ms DOUBLE;\n");
            Some(sql)
        }
        6 => Some(added_columns(&columns, 6)),
        7 => Some(added_columns(&columns, 7)),
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

/// The `experiments` table as Arrow, in table order.
pub fn experiments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("experiment_id", DataType::Utf8, false),
        Field::new("started_at", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("finished_at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("spec", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("wall_ms", DataType::Float64, true),
        Field::new("cells_ms", DataType::Float64, true),
    ]))
}

/// A new experiment's row: running, not finished.
pub fn experiment_batch(e: &ExperimentRecord) -> Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![e.experiment_id.as_str()])),
        Arc::new(TimestampMicrosecondArray::from(vec![e.started_at.timestamp_micros()])),
        Arc::new(TimestampMicrosecondArray::from(vec![None::<i64>])),
        Arc::new(StringArray::from(vec![e.spec.as_str()])),
        Arc::new(StringArray::from(vec![ExperimentStatus::Running.as_str()])),
        Arc::new(StringArray::from(vec![None::<&str>])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
    ];
    Ok(RecordBatch::try_new(experiments_schema(), arrays)?)
}
