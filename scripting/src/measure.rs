//! One timed run on one platform: in a browser page (the browser the selection table picks, a
//! session keyed by file, platform, device and shapes), or on native onnxruntime in this
//! process. Either way the result is a `Measured`: outputs, and only the timings this call
//! itself took.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rhai::Dynamic;
use webaccel_browser_runtime::{
    BrowserError, GenerationSample, InputMetadata, LoadRequest, MemoryReport, OpTime, Platform, PooledBrowser, RunOptions, Tensor,
    RUN_LIMIT,
};
use webaccel_models::detection::{self, InputSignature};
use webaccel_models::{ChannelOrder, Processing, VisionProcessing};
use webaccel_native_runtime::{NativeRun, NativeRuntime};

use crate::acceleration::Timings;
use crate::error::ApiError;
use crate::families::{generation::cache_outputs, speech::encoder_outputs, vision};
use crate::inputs::{self, ModelInput};
use crate::options::AccelerateOptions;
use crate::placement::pick_browser;
use crate::platform::RunPlatform;
use crate::services::{Graph, Services};
use crate::target::Target;

/// How long `measure_memory` waits for the browser's answer (it comes after a GC).
const MEMORY_TIMEOUT: Duration = Duration::from_secs(15);

/// What ran a measurement.
#[derive(Clone)]
pub(crate) enum Runner {
    Browser(Arc<PooledBrowser>),
    Native(Arc<NativeRuntime>),
}

impl Runner {
    pub fn browser(&self) -> Option<&Arc<PooledBrowser>> {
        match self {
            Runner::Browser(pooled) => Some(pooled),
            Runner::Native(_) => None,
        }
    }

    /// The row's browser and browser_version.
    pub fn name_and_version(&self) -> (String, String) {
        match self {
            Runner::Browser(pooled) => (pooled.capabilities.browser.clone(), pooled.capabilities.version.clone()),
            Runner::Native(native) => ("native".into(), format!("onnxruntime {}", native.version)),
        }
    }
}

pub(crate) struct Measured {
    pub runner: Runner,
    pub platform: RunPlatform,
    pub selection_reason: String,
    pub timings: Timings,
    pub outputs: Vec<Tensor>,
    pub memory: Option<MemoryReport>,
    pub op_profile: Option<Vec<OpTime>>,
    /// A generation's tokens and times per timed run.
    pub generation: Option<Vec<GenerationSample>>,
    /// Nodes per execution provider, where ORT reported its placement.
    pub placement: Option<BTreeMap<String, u64>>,
    /// Intra-op threads, for a native run.
    pub threads: Option<u32>,
    pub input: ModelInput,
    /// For a user's model: the processing webaccel settled on once it saw the graph.
    pub processing: Option<Processing>,
    /// For a user's model whose type was not given: the name's verdict refined by the graph.
    pub model_type: String,
}

/// One platform's attempt: it ran, or it could not (a reason to fall back on), or it failed in
/// a way no other platform would fix (a crash, a hang, a bad input).
pub(crate) enum Attempt {
    Ran(Box<Measured>),
    Unavailable(String),
    Failed(ApiError, Option<Arc<PooledBrowser>>),
}

/// The run options for the timed runs of `opts`.
fn run_options(opts: &AccelerateOptions, input: &ModelInput) -> RunOptions {
    RunOptions {
        warmup: opts.warmup,
        warmup_min: Duration::from_secs_f64(opts.warmup_s),
        runs: opts.runs,
        precompile: opts.precompile_shaders,
        measure_memory: opts.measure_memory.then_some(MEMORY_TIMEOUT),
        fetches: input.fetches.clone(),
        sequence: input.sequence.clone(),
        generation: input.generation.clone(),
        encoder: None,
        limit: RUN_LIMIT,
    }
}

pub(crate) fn attempt(
    services: &Services,
    target: &Target,
    platform: RunPlatform,
    opts: &AccelerateOptions,
    prepared: Option<&ModelInput>,
    raw: &Dynamic,
    label: &str,
) -> Attempt {
    match platform {
        RunPlatform::Browser(p) => in_browser(services, target, p, opts, prepared, raw, label),
        RunPlatform::Native => on_native(services, target, opts, prepared, raw, label),
    }
}

/// What the timed part of a call does, as progress names it.
fn runs_phase(opts: &AccelerateOptions, on: &str) -> String {
    if opts.warmup == 0 && opts.warmup_s == 0.0 {
        return format!("{on}: {} timed runs", opts.runs);
    }
    format!("{on}: warm-up ({} runs, at least {} s) and {} timed runs", opts.warmup, opts.warmup_s, opts.runs)
}

/// The key a timed browser session is kept under: file, platform, device, and for WebNN the
/// fixed shapes; a profiled session is its own (ORT profiles a session from its creation).
pub(crate) fn session_key(
    sha256: &str,
    platform: Platform,
    device: Option<&str>,
    overrides: Option<&BTreeMap<String, u64>>,
    profiled: bool,
) -> String {
    let shapes = overrides.map_or(String::new(), |o| format!(":{o:?}"));
    let profiled = if profiled { ":profiled" } else { "" };
    format!("{sha256}:{}:{}{shapes}{profiled}", platform.name(), device.unwrap_or("-"))
}

fn in_browser(
    services: &Services,
    target: &Target,
    platform: Platform,
    opts: &AccelerateOptions,
    prepared: Option<&ModelInput>,
    raw: &Dynamic,
    label: &str,
) -> Attempt {
    services.phase(label, &format!("starting or choosing a browser for {}", platform.name()));
    let (pooled, selection_reason) = match pick_browser(services, target, platform, opts) {
        Ok(Ok(picked)) => picked,
        Ok(Err(reason)) => return Attempt::Unavailable(reason),
        Err(e) => return Attempt::Failed(e, None),
    };
    let Built { input, processing, model_type, declared } =
        match input_for(services, target, Some(&pooled), prepared, raw) {
            Ok(x) => x,
            Err(e) => return Attempt::Failed(e, Some(pooled)),
        };
    let device = (platform == Platform::Webnn).then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
    // WebNN builds its graph for fixed shapes: the symbolic dimensions are pinned to this
    // input's, and a different shape is a different session.
    let overrides =
        (platform == Platform::Webnn).then(|| dimension_overrides(target, &input, &declared)).filter(|o| !o.is_empty());
    let key = session_key(&target.file.sha256, platform, device.as_deref(), overrides.as_ref(), opts.profile_ops);
    let request = LoadRequest {
        platform,
        device,
        free_dimension_overrides: overrides,
        profile: opts.profile_ops,
        placement: true,
        // A decoder's KV cache stays in GPU buffers between its steps on webgpu.
        gpu_outputs: input.generation.as_ref().filter(|_| platform == Platform::Webgpu).map(cache_outputs),
    };
    let browser = &pooled.capabilities.browser;
    services.phase(label, &format!("{browser}: model transfer and {} session creation", platform.name()));
    let load = match services.wait_in(&pooled, pooled.session.load(&key, &target.file.path, &request)) {
        Err(interrupted) => return Attempt::Failed(interrupted, Some(pooled)),
        Ok(Ok(load)) => load,
        // The page could not create a session for this platform: another platform may.
        Ok(Err(BrowserError::Page { message, .. })) => {
            return Attempt::Unavailable(format!(
                "session creation failed in {} {}: {message}",
                pooled.capabilities.browser, pooled.capabilities.version
            ))
        }
        Ok(Err(e)) => return Attempt::Failed(e.into(), Some(pooled)),
    };
    // An encoder-decoder model's encoder goes into the same page, its outputs kept on the GPU
    // on webgpu (the decoder reads them at every step).
    let encoder_key = match &target.encoder {
        None => None,
        Some(encoder) => match load_encoder(services, &pooled, encoder, &input, platform, &request) {
            Ok(key) => Some(key),
            Err(e) => return e,
        },
    };
    // The input as prepared stays float32 (the reference run takes it); this file may want fp16.
    let mut tensors = input.tensors.clone();
    if let Err(e) = inputs::match_float_types(&mut tensors, &load.inputs) {
        return Attempt::Failed(e, Some(pooled));
    }
    services.phase(label, &runs_phase(opts, browser));
    let run = RunOptions { encoder: encoder_key.clone(), ..run_options(opts, &input) };
    let ran = match services.wait_in(&pooled, pooled.session.run(&key, &tensors, &run)) {
        Ok(ran) => ran,
        Err(interrupted) => return Attempt::Failed(interrupted, Some(pooled)),
    };
    if opts.profile_ops {
        // ORT profiles a session once, from its creation: the next profiled call needs a fresh
        // session. A failure to release shows on the next call that needs the page.
        let _ = services.runtime.block_on(pooled.session.unload(&key));
    }
    match ran {
        Ok(run) => Attempt::Ran(Box::new(Measured {
            runner: Runner::Browser(pooled),
            platform: RunPlatform::Browser(platform),
            selection_reason,
            timings: Timings {
                model_fetch_ms: load.model_fetch_ms,
                session_create_ms: load.session_create_ms,
                session_reused: load.cached,
                precompile_ms: run.precompile_ms,
                first_run_ms: run.first_run_ms,
                warmup_runs: run.warmup_runs,
                warmup_ms: run.warmup_ms,
                run_ms: run.run_ms,
            },
            outputs: run.outputs,
            memory: run.memory,
            op_profile: run.op_profile,
            generation: run.generation,
            placement: load.placement,
            threads: None,
            input,
            processing,
            model_type,
        })),
        Err(e) => Attempt::Failed(e.into(), Some(pooled)),
    }
}

fn on_native(
    services: &Services,
    target: &Target,
    opts: &AccelerateOptions,
    prepared: Option<&ModelInput>,
    raw: &Dynamic,
    label: &str,
) -> Attempt {
    services.phase(label, "native onnxruntime: session creation and runs");
    let native = match services.native() {
        Ok(native) => native,
        Err(why) => return Attempt::Unavailable(why),
    };
    let Built { input, processing, model_type, .. } = match input_for(services, target, None, prepared, raw) {
        Ok(x) => x,
        Err(e) => return Attempt::Failed(e, None),
    };
    let threads = opts.threads.unwrap_or(1);
    let run = NativeRun {
        warmup: opts.warmup,
        warmup_min: Duration::from_secs_f64(opts.warmup_s),
        runs: opts.runs,
        fetches: input.fetches.clone(),
        sequence: input.sequence.clone(),
        generation: input.generation.clone(),
        limit: RUN_LIMIT,
    };
    services.phase(label, &runs_phase(opts, "native onnxruntime"));
    let measured =
        services.with_native_pair(&target.file, target.encoder.as_ref(), threads, false, |session, encoder, created| {
            let mut tensors = input.tensors.clone();
            inputs::match_float_types(&mut tensors, &session.inputs)?;
            let out = session.run_with_encoder(encoder, &tensors, &run, &|| services.interrupt.is_raised())?;
            Ok((created.then_some(session.create_ms), out))
        });
    let (session_create_ms, out) = match measured {
        Ok(x) => x,
        Err(e) => return Attempt::Failed(e, None),
    };
    let memory = opts.measure_memory.then(|| MemoryReport {
        bytes: None,
        source: None,
        error: Some("a native run reports no page memory (only a browser page's is measured)".into()),
    });
    Attempt::Ran(Box::new(Measured {
        runner: Runner::Native(native.clone()),
        platform: RunPlatform::Native,
        selection_reason: format!("platform native: {} in this process, {threads} intra-op thread(s)", native.label()),
        timings: Timings {
            model_fetch_ms: None,
            session_reused: session_create_ms.is_none(),
            session_create_ms,
            precompile_ms: None,
            first_run_ms: out.first_run_ms,
            warmup_runs: out.warmup_runs,
            warmup_ms: out.warmup_ms,
            run_ms: out.run_ms,
        },
        outputs: out.outputs,
        memory,
        op_profile: None,
        generation: out.generation,
        placement: None,
        threads: Some(threads),
        input,
        processing,
        model_type,
    }))
}

/// Loads an encoder-decoder model's encoder into `pooled`'s page beside its decoder (`decoder`
/// is the decoder's load request): on WebNN with its batch pinned to one chunk, on webgpu with
/// its outputs left in GPU buffers. Returns the session's key.
fn load_encoder(
    services: &Services,
    pooled: &Arc<PooledBrowser>,
    encoder: &crate::target::ModelPath,
    input: &ModelInput,
    platform: Platform,
    decoder: &LoadRequest,
) -> Result<String, Attempt> {
    let overrides = (platform == Platform::Webnn).then(|| BTreeMap::from([("batch".to_string(), 1)]));
    let key = session_key(&encoder.sha256, platform, decoder.device.as_deref(), overrides.as_ref(), decoder.profile);
    let request = LoadRequest {
        free_dimension_overrides: overrides,
        gpu_outputs: input.generation.as_ref().filter(|_| platform == Platform::Webgpu).map(encoder_outputs),
        ..decoder.clone()
    };
    match services.wait_in(pooled, pooled.session.load(&key, &encoder.path, &request)) {
        Err(interrupted) => Err(Attempt::Failed(interrupted, Some(pooled.clone()))),
        Ok(Ok(_)) => Ok(key),
        Ok(Err(BrowserError::Page { message, .. })) => Err(Attempt::Unavailable(format!(
            "the encoder's session creation failed in {} {}: {message}",
            pooled.capabilities.browser, pooled.capabilities.version
        ))),
        Ok(Err(e)) => Err(Attempt::Failed(e.into(), Some(pooled.clone()))),
    }
}

/// A call's input, and what webaccel learnt of the model while building it.
struct Built {
    input: ModelInput,
    processing: Option<Processing>,
    model_type: String,
    /// A user's model's declared inputs (empty for catalog models, which name their dims).
    declared: Vec<InputMetadata>,
}

/// The model's input for this call: prepared already for a catalog model; for a user's model,
/// built once the graph's declared inputs are known (`Services::graph`), so that WebNN can be
/// given fixed shapes.
fn input_for(
    services: &Services,
    target: &Target,
    pooled: Option<&PooledBrowser>,
    prepared: Option<&ModelInput>,
    raw: &Dynamic,
) -> Result<Built, ApiError> {
    if let Some(input) = prepared {
        return Ok(Built {
            input: input.clone(),
            processing: target.processing.clone(),
            model_type: target.model_type.clone(),
            declared: vec![],
        });
    }
    let graph = services.graph(&target.file, pooled)?;
    let model_type =
        if target.type_given { target.model_type.clone() } else { refined_type(&target.name, &graph.inputs) };
    if let Some(vision) = user_vision(&model_type, &graph, raw) {
        let input = vision::images(&target.name, &vision, &graph.inputs[0].name, raw.clone())?;
        return Ok(Built { input, processing: Some(Processing::Vision(vision)), model_type, declared: graph.inputs });
    }
    let input = inputs::tensors(&target.name, raw.clone(), &graph.inputs)?;
    Ok(Built { input, processing: None, model_type, declared: graph.inputs })
}

/// The type the name suggests, refined by the graph's input signature.
pub(crate) fn refined_type(name: &str, declared: &[InputMetadata]) -> String {
    let signature: Vec<InputSignature> = declared
        .iter()
        .map(|m| InputSignature {
            name: &m.name,
            dtype: m.dtype.as_deref(),
            dims: m.shape.iter().map(|d| d.as_u64()).collect(),
        })
        .collect();
    detection::refine(detection::model_type_from_name(name), &signature).to_string()
}

/// For a user's vision model given image paths: ImageNet pre-processing sized to its one
/// [N, 3, H, W] input (short side to H·256/224, centre crop H), classes as indices.
fn user_vision(model_type: &str, graph: &Graph, raw: &Dynamic) -> Option<VisionProcessing> {
    let given_paths =
        raw.is_string() || raw.read_lock::<rhai::Array>().is_some_and(|a| a.iter().all(|d| d.is_string()));
    let [only] = graph.inputs.as_slice() else { return None };
    if model_type != "vision" || !given_paths || only.dtype.as_deref() != Some("float32") || only.shape.len() != 4 {
        return None;
    }
    let side = only.shape[2].as_u64().filter(|&h| h > 0 && only.shape[1].as_u64() == Some(3)).unwrap_or(224) as u32;
    Some(VisionProcessing {
        resize_short: (side as f64 * 256.0 / 224.0).round() as u32,
        crop: side,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        channel_order: ChannelOrder::Rgb,
        output: graph.outputs.first()?.clone(),
        labels: vec![],
    })
}

/// The fixed size of each symbolic input dimension, which WebNN needs: from the catalog's
/// names for a catalog model, from the declared shapes for a user's.
fn dimension_overrides(target: &Target, input: &ModelInput, declared: &[InputMetadata]) -> BTreeMap<String, u64> {
    if !target.symbolic_dims.is_empty() {
        return target.symbolic_dims.iter().cloned().zip(input.dims.iter().copied()).collect();
    }
    let mut out = BTreeMap::new();
    for m in declared {
        if let Some(t) = input.tensors.iter().find(|t| t.name == m.name) {
            for (d, size) in m.shape.iter().zip(&t.dims) {
                if let Some(name) = d.as_str() {
                    out.insert(name.to_string(), *size as u64);
                }
            }
        }
    }
    out
}
