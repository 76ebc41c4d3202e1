//! Ingest throughput: rows per second through the results API (`ResultStore::append`: records
//! → Arrow batch → DuckDB appender → commit) against DuckDB's appender fed the same rows as
//! ready-made Arrow batches (no conversion, same commit per call), side by side in one run.
//!
//! Two patterns: bulk (1,000 rows per call) and streaming (one row per call, each committed:
//! what `compare` does). Each round writes fresh files, the two sides alternate, and the
//! median round is reported. Goal: the API at ≥ 0.8× the raw appender.
//!
//! ```sh
//! source scripts/env.sh && cargo run -p webaccel-results --example ingest [-- ROUNDS]
//! ```

use std::time::{Duration, Instant};

use webaccel_results::schema::to_record_batch;
use webaccel_results::{ResultStore, RunRecord};

fn records(n: usize, offset: usize) -> Vec<RunRecord> {
    (0..n)
        .map(|i| {
            let i = i + offset;
            RunRecord {
                run_id: format!("run-{i:09}"),
                model_name: "paraphrase-minilm-l3-v2".into(),
                model_type: "text_embedding".into(),
                model_sha256: Some("9f2c".repeat(16)),
                model_file: Some("onnx/model_int8.onnx".into()),
                precision: Some([32, 16, 8, 4][i % 4]),
                weights_dtype: Some("int8".into()),
                compute_dtype: Some("fp32".into()),
                platform: ["wasm", "webgpu", "webnn"][i % 3].into(),
                browser: "chromium".into(),
                browser_version: Some("Chrome/156.0.7500.0".into()),
                batch_size: Some(2),
                session_create_ms: Some(120.5 + i as f64),
                first_run_ms: Some(31.0),
                latency_ms: Some(18.0 + (i % 7) as f64),
                p90_ms: Some(21.5),
                runs: Some(10),
                requested_platform: Some("auto".into()),
                selection_reason: Some("text on webnn prefers edge; not installed, chromium has webnn".into()),
                environment_fingerprint: Some("e3b0c44298fc1c14".into()),
                cid: Some("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into()),
                ipfs_cache_hit: Some(true),
                accuracy_cosine: Some(0.9993),
                experiment_id: Some("bench".into()),
                cell_index: Some((i % 24) as i32),
                repetition: Some((i / 24) as i32),
                latencies_ms: Some((0..10).map(|k| 17.0 + k as f64 * 0.5).collect()),
                ..RunRecord::default()
            }
        })
        .collect()
}

/// One side of one round: `calls` appends of `per_call` rows to a fresh file.
fn api(dir: &std::path::Path, chunks: &[Vec<RunRecord>]) -> Duration {
    let mut store = ResultStore::open(&dir.join("api.duckdb")).unwrap();
    let start = Instant::now();
    for chunk in chunks {
        store.append(chunk).unwrap();
    }
    start.elapsed()
}

fn raw(dir: &std::path::Path, chunks: &[Vec<RunRecord>]) -> Duration {
    // The same table, created by the store; then plain DuckDB on it.
    drop(ResultStore::open(&dir.join("raw.duckdb")).unwrap());
    let conn = duckdb::Connection::open(dir.join("raw.duckdb")).unwrap();
    let batches: Vec<_> = chunks.iter().map(|c| to_record_batch(c).unwrap()).collect();
    let start = Instant::now();
    for batch in batches {
        let mut appender = conn.appender("runs").unwrap();
        appender.append_record_batch(batch).unwrap();
        appender.flush().unwrap();
    }
    start.elapsed()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("{:<32} {:>14} {:>14} {:>8}", "pattern", "API rows/s", "raw rows/s", "ratio");
    for (name, calls, per_call) in [("bulk (1,000 rows per call)", 100, 1000), ("streaming (1 row per call)", 1000, 1)]
    {
        let chunks: Vec<Vec<RunRecord>> = (0..calls).map(|c| records(per_call, c * per_call)).collect();
        let rows = (calls * per_call) as f64;
        let (mut api_rates, mut raw_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let dir = tempfile::tempdir().unwrap();
            // Alternate which side goes first, so neither always meets a warmer cache.
            let (a, r) = if round % 2 == 0 {
                let a = api(dir.path(), &chunks);
                (a, raw(dir.path(), &chunks))
            } else {
                let r = raw(dir.path(), &chunks);
                (api(dir.path(), &chunks), r)
            };
            api_rates.push(rows / a.as_secs_f64());
            raw_rates.push(rows / r.as_secs_f64());
            ratios.push(r.as_secs_f64() / a.as_secs_f64());
        }
        println!("{:<32} {:>14.0} {:>14.0} {:>7.2}×", name, median(api_rates), median(raw_rates), median(ratios));
    }
    println!("(median of {rounds} rounds; ratio = API rows/s ÷ raw rows/s, per round)");
}
