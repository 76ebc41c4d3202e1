//! One measurement, as the rest of the house hands it to `results`. A field the run could not
//! measure is `None` and lands as NULL: nothing is filled in to look complete.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub ts: DateTime<Utc>,
    pub model_name: String,
    pub model_type: String,
    pub model_sha256: Option<String>,
    pub model_file: Option<String>,
    /// Bit width the user selected (32/16/8/4).
    pub precision: Option<i32>,
    pub weights_dtype: Option<String>,
    pub compute_dtype: Option<String>,
    pub platform: String,
    pub device: Option<String>,
    pub browser: String,
    pub browser_version: Option<String>,
    pub batch_size: Option<i32>,
    pub session_create_ms: Option<f64>,
    /// The model session was already loaded in the page (its create time was measured earlier).
    pub session_reused: Option<bool>,
    pub first_run_ms: Option<f64>,
    /// Median of the timed runs.
    pub latency_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub runs: Option<i32>,
    pub throughput_items_per_s: Option<f64>,
    pub status: RunStatus,
    pub error: Option<String>,
    /// The WebGPU adapter (info, features, limits) as JSON, when the browser has one.
    pub adapter_info: Option<String>,
    /// What the user asked for ("auto" when they did not say); `platform` is what ran.
    pub requested_platform: Option<String>,
    /// Why each platform before `platform` was passed over, when one was.
    pub fallback_reason: Option<String>,
    /// Why this browser was chosen.
    pub selection_reason: Option<String>,
    /// The `environments` row this run ran in.
    pub environment_fingerprint: Option<String>,
    /// The load-time warm-up run (shader compilation) when `precompile_shaders` was on.
    pub precompile_ms: Option<f64>,
    /// Memory the browser itself reported, and how; None where it exposes nothing.
    pub memory_bytes: Option<i64>,
    pub memory_source: Option<String>,
    /// ORT's kernel time per operator type (JSON `[{op, ms}]`) when the run was profiled;
    /// such a run's latencies include the profiler's own cost.
    pub op_profile: Option<String>,
    /// Browsers expose no energy counter, so this stays None: recorded as NULL, never guessed.
    pub energy_joules: Option<f64>,

    // Version 3 (issues 4, 5 and 6).
    /// The file ran with mixed precision (see the catalog for what that means per model).
    pub mixed_precision: Option<bool>,
    /// The model file's IPFS CID, when it came through the content store.
    pub cid: Option<String>,
    /// The file was already in the local content store.
    pub ipfs_cache_hit: Option<bool>,
    /// The gateway a miss was fetched from.
    pub ipfs_gateway: Option<String>,
    pub ipfs_bytes: Option<i64>,
    pub ipfs_fetch_ms: Option<f64>,
    /// Every block was checked against the CID.
    pub ipfs_verified: Option<bool>,
    /// Against the fp32 reference named in `accuracy_reference`: cosine similarity of the
    /// outputs, their largest absolute difference, and the fraction of inputs whose top-1
    /// class agrees (1.0 or 0.0 for a single input).
    pub accuracy_cosine: Option<f64>,
    pub accuracy_max_abs_error: Option<f64>,
    pub accuracy_top1_agree: Option<f64>,
    pub accuracy_reference: Option<String>,
    /// The `experiments` row (one `compare` call) this run belongs to.
    pub experiment_id: Option<String>,
    /// The grid cell's position in its experiment, and which repetition of it this row is.
    pub cell_index: Option<i32>,
    pub repetition: Option<i32>,
    /// Every timed run, in order (`latency_ms` and `p90_ms` summarise these). Statistics
    /// across rows pool them.
    pub latencies_ms: Option<Vec<f64>>,

    // Version 5 (issue 11: every figure is what it says).
    /// Every output value is a number (no NaN, no ±Inf); the accuracy columns are null when not.
    pub outputs_finite: Option<bool>,
    /// Untimed warm-up runs this call made, and their total time.
    pub warmup_runs: Option<i32>,
    pub warmup_ms: Option<f64>,
    /// Intra-op threads of a native run.
    pub threads: Option<i32>,
    /// The WebGPU adapter is a software one (SwiftShader, lavapipe, a fallback adapter): its
    /// WebGPU figures are CPU figures.
    pub adapter_software: Option<bool>,
    /// Where ORT placed the graph's nodes: in all, and on the requested execution provider.
    pub nodes_total: Option<i32>,
    pub nodes_on_ep: Option<i32>,
    /// The assumptions made for the input (normalisation, resize, batch, truncation), as JSON.
    pub details: Option<String>,
    /// The page's download of the model file (over the network, for a remote browser).
    pub model_fetch_ms: Option<f64>,
    // Version 6: text generation. Each figure is the median over the timed generations; the
    // per-generation samples are in `ttfts_ms` and `decode_rates`.
    pub prompt_tokens: Option<i32>,
    pub generated_tokens: Option<i32>,
    /// Time to first token: prefill plus the first token's choice.
    pub ttft_ms: Option<f64>,
    pub prefill_tokens_per_s: Option<f64>,
    /// (N−1)/(t_last − t_first).
    pub decode_tokens_per_s: Option<f64>,
    /// Over every token after the first, of every timed generation.
    pub per_token_p50_ms: Option<f64>,
    pub per_token_p90_ms: Option<f64>,
    pub ttfts_ms: Option<Vec<f64>>,
    pub decode_rates: Option<Vec<f64>>,
    /// Token agreement with the reference's generation: leading tokens equal, and the share
    /// of positions equal.
    pub accuracy_tokens_leading: Option<i32>,
    pub accuracy_tokens_share: Option<f64>,
    // Version 7: speech to text. The generation columns above hold its decoding (each chunk
    // one generation).
    /// The input's length.
    pub audio_seconds: Option<f64>,
    /// 30 s chunks, each one encoder run and one generation.
    pub chunks: Option<i32>,
    /// The encoder's time per transcription (all its chunks), median over the timed runs.
    pub encoder_ms: Option<f64>,
    /// Audio seconds transcribed per second of compute (median run).
    pub real_time_factor: Option<f64>,
    /// Each chunk's time (encoder and decoding) in the last timed run.
    pub chunk_ms: Option<Vec<f64>>,
    /// Word error rate of the transcript against the reference's.
    pub accuracy_wer: Option<f64>,
}

/// A row's accuracy, written after the row itself (the reference runs once the measurement is
/// safe).
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyUpdate {
    pub run_id: String,
    pub cosine: Option<f64>,
    pub max_abs_error: Option<f64>,
    pub top1_agree: Option<f64>,
    pub tokens_leading: Option<i32>,
    pub tokens_share: Option<f64>,
    pub wer: Option<f64>,
    pub reference: String,
}

impl Default for RunRecord {
    /// A fresh run id (UUIDv7, so ids sort by time) stamped now; everything unmeasured is None.
    fn default() -> Self {
        RunRecord {
            run_id: uuid::Uuid::now_v7().to_string(),
            ts: Utc::now(),
            model_name: String::new(),
            model_type: String::new(),
            model_sha256: None,
            model_file: None,
            precision: None,
            weights_dtype: None,
            compute_dtype: None,
            platform: String::new(),
            device: None,
            browser: String::new(),
            browser_version: None,
            batch_size: None,
            session_create_ms: None,
            session_reused: None,
            first_run_ms: None,
            latency_ms: None,
            p90_ms: None,
            runs: None,
            throughput_items_per_s: None,
            status: RunStatus::Ok,
            error: None,
            adapter_info: None,
            requested_platform: None,
            fallback_reason: None,
            selection_reason: None,
            environment_fingerprint: None,
            precompile_ms: None,
            memory_bytes: None,
            memory_source: None,
            op_profile: None,
            energy_joules: None,
            mixed_precision: None,
            cid: None,
            ipfs_cache_hit: None,
            ipfs_gateway: None,
            ipfs_bytes: None,
            ipfs_fetch_ms: None,
            ipfs_verified: None,
            accuracy_cosine: None,
            accuracy_max_abs_error: None,
            accuracy_top1_agree: None,
            accuracy_reference: None,
            experiment_id: None,
            cell_index: None,
            repetition: None,
            latencies_ms: None,
            outputs_finite: None,
            warmup_runs: None,
            warmup_ms: None,
            threads: None,
            adapter_software: None,
            nodes_total: None,
            nodes_on_ep: None,
            details: None,
            model_fetch_ms: None,
            prompt_tokens: None,
            generated_tokens: None,
            ttft_ms: None,
            prefill_tokens_per_s: None,
            decode_tokens_per_s: None,
            per_token_p50_ms: None,
            per_token_p90_ms: None,
            ttfts_ms: None,
            decode_rates: None,
            accuracy_tokens_leading: None,
            accuracy_tokens_share: None,
            audio_seconds: None,
            chunks: None,
            encoder_ms: None,
            real_time_factor: None,
            chunk_ms: None,
            accuracy_wer: None,
        }
    }
}

/// One detected browser environment, stored once and referenced by its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRecord {
    pub fingerprint: String,
    pub first_seen: DateTime<Utc>,
    pub browser: String,
    pub version: Option<String>,
    pub executable: Option<String>,
    /// JSON array of launch switches.
    pub flags: String,
    pub adapter: Option<String>,
    /// The whole capability report as JSON.
    pub capabilities: String,
}

/// One `compare` call: what was asked for, and how it ended. A row left `running` with no
/// `finished_at` is an experiment whose process died; its finished cells are in `runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRecord {
    pub experiment_id: String,
    pub started_at: DateTime<Utc>,
    /// The grid as the user gave it (models, platforms, precisions, browsers, runs, warm-up), as JSON.
    pub spec: String,
}

/// How an experiment ended. Failed cells do not fail the experiment: they are rows with
/// `status = 'error'`; `Error` means the grid itself could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentStatus {
    Running,
    Ok,
    Error,
    Interrupted,
}

impl ExperimentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Running => "running",
            ExperimentStatus::Ok => "ok",
            ExperimentStatus::Error => "error",
            ExperimentStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
    /// The user interrupted the call while it ran; its row says how far it got.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Median and 90th percentile of a sample; `None` for an empty one. This is the per-row
/// summary of one call's timed runs. Both interpolate linearly between order statistics (type
/// 7, DuckDB's `quantile_cont`), as `stats` does across rows, so one definition holds
/// everywhere a p90 appears.
pub fn median_p90(samples: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    (crate::stats::quantile_sorted(&sorted, 0.5), crate::stats::quantile_sorted(&sorted, 0.9))
}

#[cfg(test)]
mod tests {
    use super::median_p90;

    #[test]
    fn median_and_p90_by_hand() {
        assert_eq!(median_p90(&[]), (None, None));
        assert_eq!(median_p90(&[5.0]), (Some(5.0), Some(5.0)));
        // Type 7: the p90 of n values sits at 0.9 (n - 1) between order statistics.
        let (median, p90) = median_p90(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(median, Some(2.5));
        assert!((p90.unwrap() - 3.7).abs() < 1e-12, "{p90:?}");
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let (median, p90) = median_p90(&ten);
        assert_eq!(median, Some(5.5));
        assert!((p90.unwrap() - 9.1).abs() < 1e-12, "{p90:?}");
    }
}
