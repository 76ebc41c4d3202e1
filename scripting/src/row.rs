//! A call's `runs` row, as it fills in: what was asked for (before the model resolves), the
//! file, then what the measurement says. A figure the call did not measure stays None.

use webaccel_browser_runtime::PooledBrowser;
use webaccel_results::{median_p90, RunRecord};

use crate::accelerate::Cell;
use crate::environment::{browser_environment, native_environment};
use crate::error::ApiError;
use crate::measure::{Measured, Runner};
use crate::options::AccelerateOptions;
use crate::services::Services;
use crate::target::Target;

/// What a row knows before the model is resolved: what was asked for, and where in a grid.
pub(crate) fn requested_row(model: &str, opts: &AccelerateOptions, cell: &Cell) -> RunRecord {
    let platform = opts.platform.map_or("auto", |p| p.name()).to_string();
    RunRecord {
        model_name: model.to_string(),
        precision: opts.precision.map(|p| p as i32),
        requested_platform: Some(platform.clone()),
        platform,
        device: opts.device.clone(),
        browser: opts.browser.as_ref().map_or_else(|| "auto".to_string(), |b| b.name()),
        experiment_id: cell.experiment_id.clone(),
        cell_index: cell.cell_index,
        ..RunRecord::default()
    }
}

pub(crate) fn base_row(run_id: &str, target: &Target, opts: &AccelerateOptions, cell: &Cell) -> RunRecord {
    let fetch = target.file.fetch.as_ref();
    RunRecord {
        run_id: run_id.to_string(),
        model_type: target.model_type.clone(),
        model_sha256: Some(target.file.sha256.clone()),
        model_file: Some(target.file.label.clone()),
        precision: target.precision.map(|p| p as i32),
        weights_dtype: Some(target.weights.clone()),
        compute_dtype: Some(target.compute.clone()),
        mixed_precision: target.mixed,
        cid: fetch.map(|f| f.cid.clone()),
        ipfs_cache_hit: fetch.map(|f| f.cache_hit),
        ipfs_gateway: fetch.and_then(|f| f.gateway.clone()),
        ipfs_bytes: fetch.map(|f| f.bytes as i64),
        ipfs_fetch_ms: fetch.map(|f| f.ms),
        ipfs_verified: fetch.map(|f| f.verified),
        ..requested_row(&target.name, opts, cell)
    }
}

/// Whether a browser's WebGPU adapter is a software one: a fallback adapter, or one of the
/// known CPU implementations (SwiftShader, lavapipe/llvmpipe, WARP, Microsoft's basic render
/// driver). None when the browser has no adapter.
pub(crate) fn adapter_software(pooled: &PooledBrowser) -> Option<bool> {
    let adapter = pooled.capabilities.page.webgpu.adapter.as_ref()?;
    if adapter.is_fallback_adapter == Some(true) {
        return Some(true);
    }
    const SOFTWARE: [&str; 6] = ["swiftshader", "lavapipe", "llvmpipe", "warp", "basic render", "software"];
    let text = [&adapter.vendor, &adapter.architecture, &adapter.device, &adapter.description]
        .into_iter()
        .flatten()
        .map(|s| s.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    Some(SOFTWARE.iter().any(|s| text.contains(s)))
}

/// Fills in what the measurement says: where it ran, its environment, and this call's timings.
pub(crate) fn measured_row(
    services: &Services,
    row: &mut RunRecord,
    measured: &Measured,
    opts: &AccelerateOptions,
) -> Result<(), ApiError> {
    let env = match &measured.runner {
        Runner::Browser(pooled) => browser_environment(pooled),
        Runner::Native(native) => native_environment(native, measured.threads.unwrap_or(1)),
    };
    services.record_environment(&env)?;
    row.environment_fingerprint = Some(env.fingerprint);
    row.model_type = measured.model_type.clone();
    row.platform = measured.platform.name().to_string();
    let (browser, version) = measured.runner.name_and_version();
    row.browser = browser;
    row.browser_version = Some(version);
    row.device = match &measured.runner {
        Runner::Native(_) => Some("cpu".into()),
        Runner::Browser(_) if measured.platform.name() == "webnn" => {
            Some(opts.device.clone().unwrap_or_else(|| "cpu".into()))
        }
        Runner::Browser(_) => None,
    };
    row.threads = measured.threads.map(|t| t as i32);
    if let Runner::Browser(pooled) = &measured.runner {
        let webgpu = &pooled.capabilities.page.webgpu;
        row.adapter_info = webgpu.available.then(|| serde_json::to_string(webgpu).unwrap_or_default());
        row.adapter_software = adapter_software(pooled);
    }
    row.batch_size = Some(measured.input.items as i32);
    row.selection_reason = Some(measured.selection_reason.clone());
    let t = &measured.timings;
    let (latency, p90) = median_p90(&t.run_ms);
    row.session_create_ms = t.session_create_ms;
    row.model_fetch_ms = t.model_fetch_ms;
    row.session_reused = Some(t.session_reused);
    row.precompile_ms = t.precompile_ms;
    row.first_run_ms = t.first_run_ms;
    row.warmup_runs = Some(t.warmup_runs as i32);
    row.warmup_ms = Some(t.warmup_ms);
    row.latency_ms = latency;
    row.p90_ms = p90;
    row.runs = Some(t.run_ms.len() as i32);
    row.latencies_ms = Some(t.run_ms.clone());
    row.throughput_items_per_s = latency.filter(|l| *l > 0.0).map(|l| measured.input.items as f64 / (l / 1000.0));
    if let Some(memory) = &measured.memory {
        row.memory_bytes = memory.bytes;
        row.memory_source = memory.source.clone();
    }
    row.op_profile = measured.op_profile.as_ref().map(|ops| serde_json::to_string(ops).unwrap_or_default());
    if let Some(placed) = &measured.placement {
        row.nodes_total = Some(placed.values().sum::<u64>() as i32);
        let providers = measured.platform.providers();
        row.nodes_on_ep =
            Some(placed.iter().filter(|(ep, _)| providers.contains(&ep.as_str())).map(|(_, n)| *n).sum::<u64>() as i32);
    }
    if let Some(g) = crate::accelerate::generation_stats(measured) {
        g.fill(row);
    }
    // After the generation's: a transcription's throughput is its real-time factor.
    if let Some(s) = crate::accelerate::speech_stats(measured) {
        s.fill(row);
    }
    row.details = (!measured.input.details.is_empty())
        .then(|| serde_json::to_string(&measured.input.details).unwrap_or_default());
    Ok(())
}
