//! `accelerate(model, input, options)`: one model, one input, on a chosen or auto-selected
//! browser, platform and precision. The outputs and in-page timings come from a real run; every
//! call that gets as far as a browser leaves a row, failed or not.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::{
    firefox_executable, BrowserError, BrowserKind, Capabilities, LoadRequest, Platform, PooledBrowser, RunOptions,
    RunOutput, Tensor,
};
use webaccel_models::selection::{self, Availability};
use webaccel_models::{mean_pool, Encoded, ModelFile, ModelSpec};
use webaccel_results::{median_p90, RunRecord, RunStatus};

use crate::environment::environment;
use crate::error::ApiError;
use crate::options::AccelerateOptions;
use crate::services::Services;

/// How long `measure_memory` waits for the browser's answer (it comes after a GC).
const MEMORY_TIMEOUT: Duration = Duration::from_secs(15);

/// The value `accelerate` returns to scripts.
#[derive(Debug, Clone)]
pub struct Acceleration {
    pub run_id: String,
    pub model: String,
    pub model_type: String,
    pub precision: u32,
    pub weights: String,
    pub compute: String,
    pub requested_platform: String,
    pub platform: String,
    pub device: Option<String>,
    pub browser: String,
    pub browser_version: String,
    pub fallback_reason: Option<String>,
    pub selection_reason: String,
    /// One embedding per input sentence.
    pub embeddings: Vec<Vec<f32>>,
    /// The input was one string, so `output` is one embedding rather than a list of them.
    pub single: bool,
    pub session_create_ms: f64,
    pub session_reused: bool,
    pub precompile_ms: Option<f64>,
    pub first_run_ms: f64,
    pub run_ms: Vec<f64>,
    pub latency_ms: f64,
    pub p90_ms: f64,
    pub throughput_items_per_s: f64,
    pub memory_bytes: Option<i64>,
    /// Why memory is null when it was asked for.
    pub memory_error: Option<String>,
}

impl Acceleration {
    pub fn output(&self) -> Dynamic {
        let vector = |v: &Vec<f32>| Dynamic::from_array(v.iter().map(|&x| Dynamic::from_float(x as f64)).collect());
        if self.single {
            vector(&self.embeddings[0])
        } else {
            Dynamic::from_array(self.embeddings.iter().map(vector).collect())
        }
    }

    pub fn runs(&self) -> usize {
        self.run_ms.len()
    }
}

/// The sentences to embed: a string, or a non-empty array of strings.
fn sentences(model: &str, input: Dynamic) -> Result<(Vec<String>, bool), ApiError> {
    let bad = || ApiError::BadInput { model: model.to_string(), expected: "a string or an array of strings".into() };
    if input.is_string() {
        return Ok((vec![input.into_string().map_err(|_| bad())?], true));
    }
    let array: Array = input.try_cast().ok_or_else(bad)?;
    if array.is_empty() {
        return Err(ApiError::BadInput { model: model.to_string(), expected: "a non-empty array of strings".into() });
    }
    let list = array.into_iter().map(|d| d.into_string().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
    Ok((list, false))
}

fn input_tensors(spec: &ModelSpec, encoded: &Encoded) -> Vec<Tensor> {
    let dims = vec![encoded.batch, encoded.tokens];
    spec.inputs
        .iter()
        .map(|name| {
            let values = match name.as_str() {
                "attention_mask" => &encoded.attention_mask,
                "token_type_ids" => &encoded.token_type_ids,
                _ => &encoded.input_ids,
            };
            Tensor::from_i64(name.clone(), dims.clone(), values)
        })
        .collect()
}

/// The platforms to try, in order: the requested one, then (with fallback) the slower ones.
/// Auto starts at the fastest.
fn platform_chain(requested: Option<Platform>, fallback: bool) -> Vec<Platform> {
    const ORDER: [Platform; 3] = [Platform::Webnn, Platform::Webgpu, Platform::Wasm];
    let start = requested.map_or(0, |p| ORDER.iter().position(|o| *o == p).expect("every platform is in ORDER"));
    if fallback {
        ORDER[start..].to_vec()
    } else {
        vec![ORDER[start]]
    }
}

/// Whether measured capabilities include the platform; the browser's own error when not.
fn platform_status(caps: &Capabilities, platform: Platform, device: Option<&str>) -> Result<(), String> {
    match platform {
        Platform::Wasm => Ok(()),
        Platform::Webgpu if caps.page.webgpu.available => Ok(()),
        Platform::Webgpu => Err(caps.page.webgpu.error.clone().unwrap_or_else(|| "no WebGPU adapter".into())),
        Platform::Webnn => {
            let device = device.unwrap_or("cpu");
            match caps.page.webnn.get(device) {
                Some(d) if d.available => Ok(()),
                Some(d) => Err(d.error.clone().unwrap_or_else(|| format!("no WebNN {device} context"))),
                None => Err(format!("no WebNN report for device {device}")),
            }
        }
    }
}

/// A browser that can run `platform`, and why it was chosen; Ok(Err(reason)) when none can.
fn pick_browser(
    services: &Services,
    spec: &ModelSpec,
    platform: Platform,
    opts: &AccelerateOptions,
) -> Result<Result<(Arc<PooledBrowser>, String), String>, ApiError> {
    let device = opts.device.as_deref();
    if let Some(kind) = opts.browser {
        // An explicit browser always wins; failing to start it is an error, not a fallback.
        let pooled = services.runtime.block_on(services.pool.get(&opts.browser_key(kind)))?;
        let caps = &pooled.capabilities;
        return Ok(match platform_status(caps, platform, device) {
            Ok(()) => Ok((pooled.clone(), format!("browser {} given explicitly", kind.name()))),
            Err(why) => Err(format!("{} {} lacks {}: {why}", kind.name(), caps.version, platform.name())),
        });
    }
    let mut chosen = None;
    let selection = selection::choose(&spec.model_type, platform.name(), |name| {
        if name == "firefox" {
            return match firefox_executable() {
                Some(path) => Availability::NotDriven(format!(
                    "found at {}, but webaccel does not drive Firefox over WebDriver BiDi yet",
                    path.display()
                )),
                None => Availability::NotInstalled("no firefox-esr or firefox executable".into()),
            };
        }
        let Some(kind) = BrowserKind::parse(name) else {
            return Availability::NotInstalled("not a browser webaccel knows".into());
        };
        match services.runtime.block_on(services.pool.get(&opts.browser_key(kind))) {
            Ok(pooled) => match platform_status(&pooled.capabilities, platform, device) {
                Ok(()) => {
                    chosen = Some(pooled);
                    Availability::HasPlatform
                }
                Err(why) => Availability::LacksPlatform(why),
            },
            Err(BrowserError::NotFound { searched, .. }) => Availability::NotInstalled(format!(
                "searched {}",
                searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )),
            Err(e) => Availability::Failed(e.to_string()),
        }
    });
    Ok(match (selection.browser, chosen) {
        (Some(_), Some(pooled)) => Ok((pooled, selection.reason)),
        _ => Err(selection.reason),
    })
}

struct Measured {
    pooled: Arc<PooledBrowser>,
    platform: Platform,
    selection_reason: String,
    session_create_ms: f64,
    session_reused: bool,
    run: RunOutput,
}

/// One platform's attempt: it ran, or it could not (a reason to fall back on), or it failed in
/// a way no other platform would fix (a crash, a hang, a bad input).
enum Attempt {
    Ran(Box<Measured>),
    Unavailable(String),
    Failed(ApiError, Option<Arc<PooledBrowser>>),
}

fn attempt(
    services: &Services,
    spec: &ModelSpec,
    file: &ModelFile,
    model_path: &std::path::Path,
    platform: Platform,
    opts: &AccelerateOptions,
    encoded: &Encoded,
    tensors: &[Tensor],
) -> Attempt {
    let (pooled, selection_reason) = match pick_browser(services, spec, platform, opts) {
        Ok(Ok(picked)) => picked,
        Ok(Err(reason)) => return Attempt::Unavailable(reason),
        Err(e) => return Attempt::Failed(e, None),
    };
    let device = (platform == Platform::Webnn).then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
    // WebNN builds its graph for fixed shapes: the symbolic dimensions are pinned to this
    // input's, and a different shape is a different session.
    let overrides = (platform == Platform::Webnn && !spec.symbolic_dims.is_empty())
        .then(|| spec.symbolic_dims.iter().cloned().zip([encoded.batch as u64, encoded.tokens as u64]).collect());
    let shape_key = if overrides.is_some() { format!(":{}x{}", encoded.batch, encoded.tokens) } else { String::new() };
    let key = format!("{}:{}:{}{shape_key}", file.file.sha256, platform.name(), device.as_deref().unwrap_or("-"));
    let request = LoadRequest { platform, device, free_dimension_overrides: overrides };
    let run_options = RunOptions {
        warmup: opts.warmup,
        warmup_min: Duration::from_secs_f64(opts.warmup_s),
        runs: opts.runs,
        precompile: opts.precompile_shaders,
        measure_memory: opts.measure_memory.then_some(MEMORY_TIMEOUT),
    };
    let load = match services.runtime.block_on(pooled.session.load(&key, model_path, &request)) {
        Ok(load) => load,
        // The page could not create a session for this platform: another platform may.
        Err(BrowserError::Page { message, .. }) => {
            return Attempt::Unavailable(format!(
                "session creation failed in {} {}: {message}",
                pooled.capabilities.browser, pooled.capabilities.version
            ))
        }
        Err(e) => return Attempt::Failed(e.into(), Some(pooled)),
    };
    match services.runtime.block_on(pooled.session.run(&key, tensors, &run_options)) {
        Ok(run) => Attempt::Ran(Box::new(Measured {
            pooled,
            platform,
            selection_reason,
            session_create_ms: load.session_create_ms,
            session_reused: load.cached,
            run,
        })),
        Err(e) => Attempt::Failed(e.into(), Some(pooled)),
    }
}

pub fn accelerate(services: &Services, model: &str, input: Dynamic, options: &Map) -> Result<Acceleration, ApiError> {
    let opts = AccelerateOptions::from_map(options)?;
    let spec = services.catalog.resolve(model)?;
    let file = spec.file(opts.precision)?;
    let (sentences, single) = sentences(&spec.name, input)?;
    let model_path = services.catalog.locate(&services.models, &file.file)?;
    let tokenizer_path = services.catalog.locate(&services.models, &spec.tokenizer)?;
    let encoded = services.tokenizer(&tokenizer_path)?.encode(&sentences)?;
    let tensors = input_tensors(spec, &encoded);
    let requested = opts.platform.map_or("auto", |p| p.name()).to_string();

    let run_id = uuid::Uuid::now_v7().to_string();
    let mut row = base_row(&run_id, spec, file, &opts, encoded.batch);
    let mut passed_over: Vec<String> = Vec::new();
    let mut measured = None;
    for platform in platform_chain(opts.platform, opts.fallback) {
        row.platform = platform.name().to_string();
        match attempt(services, spec, file, &model_path, platform, &opts, &encoded, &tensors) {
            Attempt::Ran(m) => {
                measured = Some(m);
                break;
            }
            Attempt::Unavailable(reason) => passed_over.push(format!("{}: {reason}", platform.name())),
            Attempt::Failed(e, pooled) => {
                row.status = RunStatus::Error;
                row.error = Some(e.to_string());
                row.fallback_reason = (!passed_over.is_empty()).then(|| passed_over.join("; "));
                if let Some(pooled) = pooled {
                    row.browser = pooled.capabilities.browser.clone();
                    row.browser_version = Some(pooled.capabilities.version.clone());
                }
                services.record(&[row])?;
                return Err(e);
            }
        }
    }
    let Some(measured) = measured else {
        let e = ApiError::NoPlatform { requested, fallback: opts.fallback, reasons: passed_over.join("; ") };
        row.status = RunStatus::Error;
        row.error = Some(e.to_string());
        services.record(&[row])?;
        return Err(e);
    };

    let caps = &measured.pooled.capabilities;
    let env = environment(&measured.pooled);
    services.record_environment(&env)?;
    row.environment_fingerprint = Some(env.fingerprint);
    row.platform = measured.platform.name().to_string();
    row.device = (measured.platform == Platform::Webnn).then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
    row.browser = caps.browser.clone();
    row.browser_version = Some(caps.version.clone());
    row.fallback_reason = (!passed_over.is_empty()).then(|| passed_over.join("; "));
    row.selection_reason = Some(measured.selection_reason.clone());
    row.adapter_info = caps.page.webgpu.available.then(|| serde_json::to_string(&caps.page.webgpu).unwrap_or_default());
    let (latency, p90) = median_p90(&measured.run.run_ms);
    row.session_create_ms = Some(measured.session_create_ms);
    row.session_reused = Some(measured.session_reused);
    row.precompile_ms = measured.run.precompile_ms;
    row.first_run_ms = Some(measured.run.first_run_ms);
    row.latency_ms = latency;
    row.p90_ms = p90;
    row.runs = Some(measured.run.run_ms.len() as i32);
    row.throughput_items_per_s = latency.filter(|l| *l > 0.0).map(|l| encoded.batch as f64 / (l / 1000.0));
    if let Some(memory) = &measured.run.memory {
        row.memory_bytes = memory.bytes;
        row.memory_source = memory.source.clone();
    }

    let embeddings = match post_process(spec, &measured.run, &encoded) {
        Ok(e) => e,
        Err(e) => {
            row.status = RunStatus::Error;
            row.error = Some(e.to_string());
            services.record(&[row])?;
            return Err(e);
        }
    };
    services.record(&[row.clone()])?;

    Ok(Acceleration {
        run_id,
        model: spec.name.clone(),
        model_type: spec.model_type.clone(),
        precision: file.precision,
        weights: file.weights.clone(),
        compute: file.compute.clone(),
        requested_platform: requested,
        platform: row.platform.clone(),
        device: row.device.clone(),
        browser: row.browser.clone(),
        browser_version: caps.version.clone(),
        fallback_reason: row.fallback_reason.clone(),
        selection_reason: measured.selection_reason.clone(),
        embeddings,
        single,
        session_create_ms: measured.session_create_ms,
        session_reused: measured.session_reused,
        precompile_ms: measured.run.precompile_ms,
        first_run_ms: measured.run.first_run_ms,
        latency_ms: latency.unwrap_or(f64::NAN),
        p90_ms: p90.unwrap_or(f64::NAN),
        throughput_items_per_s: row.throughput_items_per_s.unwrap_or(f64::NAN),
        memory_bytes: row.memory_bytes,
        memory_error: measured.run.memory.as_ref().and_then(|m| m.error.clone()),
        run_ms: measured.run.run_ms.clone(),
    })
}

fn post_process(spec: &ModelSpec, run: &RunOutput, encoded: &Encoded) -> Result<Vec<Vec<f32>>, ApiError> {
    let hidden = run.outputs.iter().find(|t| t.name == spec.output).ok_or_else(|| ApiError::MissingOutput {
        wanted: spec.output.clone(),
        actual: run.outputs.iter().map(|t| t.name.clone()).collect(),
    })?;
    Ok(mean_pool(&hidden.to_f32()?, &hidden.dims, encoded, spec.normalize)?)
}

fn base_row(run_id: &str, spec: &ModelSpec, file: &ModelFile, opts: &AccelerateOptions, batch: usize) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        ts: Utc::now(),
        model_name: spec.name.clone(),
        model_type: spec.model_type.clone(),
        model_sha256: Some(file.file.sha256.clone()),
        model_file: Some(file.file.path.clone()),
        precision: Some(file.precision as i32),
        weights_dtype: Some(file.weights.clone()),
        compute_dtype: Some(file.compute.clone()),
        platform: opts.platform.map_or("auto", |p| p.name()).to_string(),
        device: opts.device.clone(),
        browser: opts.browser.map_or("auto", |b| b.name()).to_string(),
        browser_version: None,
        batch_size: Some(batch as i32),
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
        requested_platform: Some(opts.platform.map_or("auto", |p| p.name()).to_string()),
        fallback_reason: None,
        selection_reason: None,
        environment_fingerprint: None,
        precompile_ms: None,
        memory_bytes: None,
        memory_source: None,
        energy_joules: None,
        // Schema v3 fields (IPFS, accuracy, experiment, raw timings) are not measured here yet.
        ..RunRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_chain_runs_from_the_requested_platform_down() {
        use Platform::*;
        assert_eq!(platform_chain(Some(Webnn), true), [Webnn, Webgpu, Wasm]);
        assert_eq!(platform_chain(Some(Webgpu), true), [Webgpu, Wasm]);
        assert_eq!(platform_chain(Some(Wasm), true), [Wasm]);
        assert_eq!(platform_chain(None, true), [Webnn, Webgpu, Wasm]);
        assert_eq!(platform_chain(Some(Webnn), false), [Webnn]);
        assert_eq!(platform_chain(None, false), [Webnn]);
    }
}
