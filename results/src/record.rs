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
    /// Browsers expose no energy counter, so this stays None: recorded as NULL, never guessed.
    pub energy_joules: Option<f64>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
        }
    }
}

/// Median and 90th percentile (nearest-rank) of a sample; `None` for an empty one.
pub fn median_p90(samples: &[f64]) -> (Option<f64>, Option<f64>) {
    if samples.is_empty() {
        return (None, None);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    (Some(median), Some(sorted[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::median_p90;

    #[test]
    fn median_and_p90_by_hand() {
        assert_eq!(median_p90(&[]), (None, None));
        assert_eq!(median_p90(&[5.0]), (Some(5.0), Some(5.0)));
        assert_eq!(median_p90(&[4.0, 1.0, 3.0, 2.0]), (Some(2.5), Some(4.0)));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_p90(&ten), (Some(5.5), Some(9.0)));
    }
}
