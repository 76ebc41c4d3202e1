//! Records for tests: every field set, so a round trip covers every column and type.

use chrono::{TimeZone, Utc};

use crate::record::{RunRecord, RunStatus};

/// A run with every field filled (nulls where a real run of that status has them).
pub(crate) fn record(id: &str, status: RunStatus) -> RunRecord {
    let ok = status == RunStatus::Ok;
    RunRecord {
        run_id: id.to_string(),
        ts: Utc.with_ymd_and_hms(2026, 11, 27, 3, 4, 5).unwrap() + chrono::Duration::microseconds(123),
        model_name: "all-minilm-l6-v2".into(),
        model_type: "text_embedding".into(),
        model_sha256: Some("abc".into()),
        model_file: None,
        precision: Some(8),
        weights_dtype: Some("int8".into()),
        compute_dtype: Some("fp32".into()),
        platform: "wasm".into(),
        device: None,
        browser: "chromium".into(),
        browser_version: Some("Chrome/156".into()),
        batch_size: Some(2),
        session_create_ms: Some(120.5),
        session_reused: Some(false),
        first_run_ms: Some(30.25),
        latency_ms: ok.then_some(18.0),
        p90_ms: None,
        runs: Some(10),
        throughput_items_per_s: Some(111.1),
        status,
        error: (!ok).then(|| "boom <b>&</b>".to_string()),
        adapter_info: Some(r#"{"vendor":"google"}"#.into()),
        requested_platform: Some("webnn".into()),
        fallback_reason: Some("webnn: NotSupportedError".into()),
        selection_reason: Some("text on webnn prefers edge".into()),
        environment_fingerprint: Some("f00".into()),
        precompile_ms: Some(12.5),
        memory_bytes: Some(1 << 33),
        memory_source: Some("measureUserAgentSpecificMemory".into()),
        op_profile: ok.then(|| r#"[{"op":"MatMul","ms":11.5},{"op":"Erf","ms":1.1}]"#.into()),
        energy_joules: None,
        mixed_precision: Some(true),
        cid: Some("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into()),
        ipfs_cache_hit: Some(ok),
        ipfs_gateway: Some("http://127.0.0.1:8080".into()),
        ipfs_bytes: Some(22_972_370),
        ipfs_fetch_ms: Some(85.5),
        ipfs_verified: Some(true),
        accuracy_cosine: ok.then_some(0.9991),
        accuracy_max_abs_error: ok.then_some(0.0123),
        accuracy_top1_agree: ok.then_some(1.0),
        accuracy_reference: Some("fp32 on wasm".into()),
        experiment_id: Some("exp-1".into()),
        cell_index: Some(3),
        repetition: Some(0),
        latencies_ms: ok.then(|| vec![18.5, 17.25, 18.0, 19.75]),
    }
}
