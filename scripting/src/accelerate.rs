//! `accelerate(model, input, options)`: one model, one input, one browser and platform. The
//! outputs and in-page timings come from a real run; every call, failed or not, leaves a row.

use std::sync::Arc;

use chrono::Utc;
use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::{LoadRequest, Platform, PooledBrowser, RunOutput, Tensor};
use webaccel_models::{mean_pool, Encoded, ModelFile, ModelSpec};
use webaccel_results::{median_p90, RunRecord, RunStatus};

use crate::error::ApiError;
use crate::options::AccelerateOptions;
use crate::services::Services;

/// The value `accelerate` returns to scripts.
#[derive(Debug, Clone)]
pub struct Acceleration {
    pub run_id: String,
    pub model: String,
    pub model_type: String,
    pub precision: u32,
    pub weights: String,
    pub compute: String,
    pub platform: String,
    pub device: Option<String>,
    pub browser: String,
    pub browser_version: String,
    /// One embedding per input sentence.
    pub embeddings: Vec<Vec<f32>>,
    /// The input was one string, so `output` is one embedding rather than a list of them.
    pub single: bool,
    pub session_create_ms: f64,
    pub session_reused: bool,
    pub first_run_ms: f64,
    pub run_ms: Vec<f64>,
    pub latency_ms: f64,
    pub p90_ms: f64,
    pub throughput_items_per_s: f64,
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

fn check_platform(pooled: &PooledBrowser, opts: &AccelerateOptions) -> Result<(), ApiError> {
    let caps = &pooled.capabilities;
    let unavailable = |reason: String| ApiError::PlatformUnavailable {
        platform: opts.platform.name().to_string(),
        browser: caps.browser.clone(),
        version: caps.version.clone(),
        reason,
    };
    match opts.platform {
        Platform::Wasm => Ok(()),
        Platform::Webgpu if caps.page.webgpu.available => Ok(()),
        Platform::Webgpu => Err(unavailable(caps.page.webgpu.error.clone().unwrap_or_default())),
        Platform::Webnn => {
            let device = opts.device.as_deref().unwrap_or("cpu");
            match caps.page.webnn.get(device) {
                Some(d) if d.available => Ok(()),
                Some(d) => Err(unavailable(format!("createContext({{deviceType: '{device}'}}) failed: {}", d.error.clone().unwrap_or_default()))),
                None => Err(unavailable(format!("no WebNN report for device {device}"))),
            }
        }
    }
}

struct Measured {
    pooled: Arc<PooledBrowser>,
    session_create_ms: f64,
    session_reused: bool,
    run: RunOutput,
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

    let run_id = uuid::Uuid::now_v7().to_string();
    let mut row = base_row(&run_id, spec, file, &opts, encoded.batch);
    let measured: Result<Measured, ApiError> = services.runtime.block_on(async {
        let pooled = services.pool.get(opts.browser).await?;
        check_platform(&pooled, &opts)?;
        let key = format!("{}:{}:{}", file.file.sha256, opts.platform.name(), opts.device.as_deref().unwrap_or("-"));
        let request = LoadRequest { platform: opts.platform, device: opts.device.clone(), free_dimension_overrides: None };
        let load = pooled.session.load(&key, &model_path, &request).await?;
        let run = pooled.session.run(&key, &tensors, opts.warmup, opts.runs).await?;
        Ok(Measured { pooled, session_create_ms: load.session_create_ms, session_reused: load.cached, run })
    });
    let measured = match measured {
        Ok(m) => m,
        Err(e) => {
            row.status = RunStatus::Error;
            row.error = Some(e.to_string());
            if let Some(pooled) = services.runtime.block_on(services.pool.peek(opts.browser)) {
                row.browser_version = Some(pooled.capabilities.version.clone());
            }
            services.record(&[row])?;
            return Err(e);
        }
    };

    let caps = &measured.pooled.capabilities;
    row.browser_version = Some(caps.version.clone());
    row.adapter_info = caps.page.webgpu.available.then(|| serde_json::to_string(&caps.page.webgpu).unwrap_or_default());
    let (latency, p90) = median_p90(&measured.run.run_ms);
    row.session_create_ms = Some(measured.session_create_ms);
    row.session_reused = Some(measured.session_reused);
    row.first_run_ms = Some(measured.run.first_run_ms);
    row.latency_ms = latency;
    row.p90_ms = p90;
    row.runs = Some(measured.run.run_ms.len() as i32);
    row.throughput_items_per_s = latency.filter(|l| *l > 0.0).map(|l| encoded.batch as f64 / (l / 1000.0));

    let embeddings = post_process(spec, &measured.run, &encoded);
    let embeddings = match embeddings {
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
        platform: opts.platform.name().to_string(),
        device: opts.device.clone(),
        browser: opts.browser.name().to_string(),
        browser_version: caps.version.clone(),
        embeddings,
        single,
        session_create_ms: measured.session_create_ms,
        session_reused: measured.session_reused,
        first_run_ms: measured.run.first_run_ms,
        latency_ms: latency.unwrap_or(f64::NAN),
        p90_ms: p90.unwrap_or(f64::NAN),
        run_ms: measured.run.run_ms,
        throughput_items_per_s: row.throughput_items_per_s.unwrap_or(f64::NAN),
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
        platform: opts.platform.name().to_string(),
        device: opts.device.clone(),
        browser: opts.browser.name().to_string(),
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
    }
}
