//! `accelerate(model, input, options)`: one model, one input, on a chosen or auto-selected
//! browser, platform and precision. The outputs and in-page timings come from a real run; every
//! call that gets as far as a browser leaves a row, failed or not. Each row's outputs are also
//! compared with the model's fp32 reference run on wasm (the accuracy columns).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Map};
use sha2::{Digest, Sha256};
use webaccel_browser_runtime::{
    BrowserError, BrowserKind, Capabilities, InputMetadata, LoadInfo, LoadRequest, OpTime, Platform, PooledBrowser,
    RunOptions, RunOutput,
};
use webaccel_ipfs::FetchRecord;
use webaccel_models::detection::{self, InputSignature};
use webaccel_models::selection::{self, Availability};
use webaccel_models::{ChannelOrder, ModelError, ModelFile, ModelSpec, Processing, VisionProcessing};
use webaccel_results::{median_p90, RunRecord, RunStatus};

use crate::environment::environment;
use crate::error::ApiError;
use crate::inputs::{self, ModelInput};
use crate::options::AccelerateOptions;
use crate::outputs::{agreement, post_process, Agreement, Output};
use crate::services::Services;

/// How long `measure_memory` waits for the browser's answer (it comes after a GC).
const MEMORY_TIMEOUT: Duration = Duration::from_secs(15);

/// The value `accelerate` returns to scripts.
#[derive(Debug, Clone)]
pub struct Acceleration {
    pub run_id: String,
    pub model: String,
    pub model_type: String,
    /// None for a user's model, whose precision webaccel does not know.
    pub precision: Option<u32>,
    pub weights: String,
    pub compute: String,
    pub mixed_precision: Option<bool>,
    /// The file that ran: its path in its package, `derived/...`, or the user's path.
    pub file: String,
    pub requested_platform: String,
    pub platform: String,
    pub device: Option<String>,
    pub browser: String,
    pub browser_version: String,
    pub fallback_reason: Option<String>,
    pub selection_reason: String,
    pub output: Output,
    pub accuracy: Option<Agreement>,
    /// What the accuracy was measured against, or why it was not.
    pub accuracy_reference: Option<String>,
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
    /// With `profile_ops`: kernel time per run by operator type, largest first.
    pub ops: Option<Vec<OpTime>>,
}

/// Each operator type with its share of all kernel time (0 when nothing was timed).
pub fn op_shares(ops: &[OpTime]) -> impl Iterator<Item = (&OpTime, f64)> {
    let total: f64 = ops.iter().map(|o| o.ms).sum();
    ops.iter().map(move |o| (o, if total > 0.0 { o.ms / total } else { 0.0 }))
}

impl Acceleration {
    pub fn output(&self) -> Dynamic {
        self.output.to_dynamic()
    }

    /// `ops` for scripts: `[#{op, ms, share}]`, share being the op's part of all kernel time.
    pub fn ops_array(&self) -> Dynamic {
        let Some(ops) = &self.ops else { return Dynamic::UNIT };
        let rows: rhai::Array = op_shares(ops)
            .map(|(o, share)| {
                let mut m = Map::new();
                m.insert("op".into(), o.op.clone().into());
                m.insert("ms".into(), Dynamic::from_float(o.ms));
                m.insert("share".into(), Dynamic::from_float(share));
                Dynamic::from_map(m)
            })
            .collect();
        rows.into()
    }

    pub fn accuracy_map(&self) -> Dynamic {
        let Some(a) = &self.accuracy else { return Dynamic::UNIT };
        let mut m = Map::new();
        m.insert("cosine".into(), Dynamic::from_float(a.cosine));
        m.insert("max_abs_error".into(), Dynamic::from_float(a.max_abs_error));
        m.insert("top1_agree".into(), a.top1.map_or(Dynamic::UNIT, Dynamic::from_float));
        m.insert("reference".into(), self.accuracy_reference.clone().unwrap_or_default().into());
        Dynamic::from_map(m)
    }

    pub fn runs(&self) -> usize {
        self.run_ms.len()
    }
}

/// A model file on disk with what is known of it.
#[derive(Debug, Clone)]
struct ModelPath {
    path: PathBuf,
    sha256: String,
    label: String,
    /// How it came through the content store, for a file known by CID.
    fetch: Option<FetchRecord>,
}

/// The catalog file accuracy is measured against. It is located (and, by CID, brought through
/// the content store) only when a reference run is needed: not with `accuracy: false`, nor
/// when the reference output for this input is already cached.
#[derive(Debug, Clone)]
struct Reference {
    model: String,
    file: ModelFile,
}

impl Reference {
    fn sha256(&self) -> &str {
        self.file.sha256.as_deref().unwrap_or_default()
    }

    fn label(&self) -> String {
        self.file.label(&self.model)
    }

    fn locate(&self, services: &Services) -> Result<ModelPath, ApiError> {
        catalog_file(services, services.catalog.resolve(&self.model)?, &self.file)
    }
}

/// A file known by CID, through the content store: a hit, or else the packaged copy (already
/// sha256-checked) imported under its CID, or else a verified fetch from the gateways.
fn through_store(services: &Services, cid: &str, local: Option<&Path>) -> Result<(PathBuf, FetchRecord), ApiError> {
    let resolver = services.ipfs()?;
    let parsed = webaccel_ipfs::parse_cid(cid).map_err(webaccel_ipfs::Error::from)?;
    if let Some(hit) = services.runtime.block_on(resolver.cached(&parsed))? {
        return Ok((hit.path, hit.record));
    }
    let Some(local) = local else {
        let fetched = services.runtime.block_on(resolver.resolve(&parsed))?;
        return Ok((fetched.path, fetched.record));
    };
    let started = std::time::Instant::now();
    let added = resolver.add(local)?;
    if added.cid != parsed.to_string() {
        return Err(ApiError::CidMismatch { path: local.to_path_buf(), expected: cid.to_string(), actual: added.cid });
    }
    // Importing hashes every block, so the stored file is verified against the CID.
    let record = FetchRecord {
        cid: added.cid,
        gateway: None,
        cache_hit: false,
        bytes: added.bytes,
        ms: started.elapsed().as_secs_f64() * 1000.0,
        verified: true,
        via: "package",
        blocks: added.blocks,
        failures: vec![],
    };
    Ok((added.path, record))
}

/// A catalog file's path: through the content store when the catalog gives its CID.
fn catalog_file(services: &Services, spec: &ModelSpec, f: &ModelFile) -> Result<ModelPath, ApiError> {
    let label = f.label(&spec.name);
    let sha256 = f.sha256.clone().unwrap_or_default();
    let local = services.catalog.locate_file(&services.models, spec, f);
    match (&f.cid, local) {
        (None, local) => Ok(ModelPath { path: local?, sha256, label, fetch: None }),
        (Some(cid), Ok(local)) => {
            let (path, record) = through_store(services, cid, Some(&local))?;
            Ok(ModelPath { path, sha256, label, fetch: Some(record) })
        }
        // Not unpacked here: the gateways can still serve it by CID.
        (Some(cid), Err(ModelError::FileMissing { .. })) => {
            let (path, record) = through_store(services, cid, None)?;
            Ok(ModelPath { path, sha256, label, fetch: Some(record) })
        }
        (Some(_), Err(e)) => Err(e.into()),
    }
}

/// What one call runs: a catalog model at a precision, or a user's `.onnx` file.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    model_type: String,
    /// None: a user's model, pre-processed by its declared inputs once they are known.
    processing: Option<Processing>,
    inputs: Vec<String>,
    symbolic_dims: Vec<String>,
    file: ModelPath,
    precision: Option<u32>,
    weights: String,
    compute: String,
    mixed: Option<bool>,
    /// The fp32 (or widest) file of the same model, which accuracy is measured against.
    reference: Option<Reference>,
    /// The type came from the user or the catalog, not from detection.
    type_given: bool,
}

fn looks_like_cid(model: &str) -> bool {
    // CIDv1 in base32 starts with "b", CIDv0 with "Qm"; paths and catalog names do not parse.
    (model.starts_with("baf") || model.starts_with("Qm")) && webaccel_ipfs::parse_cid(model).is_ok()
}

fn looks_like_path(model: &str) -> bool {
    model.ends_with(".onnx") || model.contains('/') || model.contains('\\')
}

fn resolve(services: &Services, model: &str, opts: &AccelerateOptions) -> Result<Target, ApiError> {
    if looks_like_cid(model) {
        let (path, record) = through_store(services, model, None)?;
        let mut target = user_model(&path, opts)?;
        target.name = model.to_string();
        target.model_type = opts.model_type.clone().unwrap_or_else(|| detection::FALLBACK_TYPE.to_string());
        target.file.label = model.to_string();
        target.file.fetch = Some(record);
        return Ok(target);
    }
    if looks_like_path(model)
        && !services
            .catalog
            .models
            .iter()
            .any(|m| m.name.eq_ignore_ascii_case(model) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(model)))
    {
        return user_model(Path::new(model), opts);
    }
    let catalog = services.catalog;
    let spec = catalog.resolve(model)?;
    if opts.model_type.is_some() {
        return Err(ApiError::BadOption {
            function: "accelerate",
            key: "model_type".into(),
            problem: format!("applies to your own models; the catalog says {} is {}", spec.name, spec.model_type),
        });
    }
    let file =
        spec.file(opts.precision, opts.mixed_precision, |f| catalog.unavailable_reason(&services.models, spec, f))?;
    Ok(Target {
        name: spec.name.clone(),
        model_type: spec.model_type.clone(),
        processing: Some(spec.processing.clone()),
        inputs: spec.inputs.clone(),
        symbolic_dims: spec.symbolic_dims.clone(),
        file: catalog_file(services, spec, file)?,
        precision: Some(file.precision),
        weights: file.weights.clone(),
        compute: file.compute.clone(),
        mixed: Some(file.mixed),
        reference: spec.reference_file().map(|f| Reference { model: spec.name.clone(), file: f.clone() }),
        type_given: true,
    })
}

fn user_model(path: &Path, opts: &AccelerateOptions) -> Result<Target, ApiError> {
    if !path.is_file() {
        return Err(ModelError::FileMissing { path: path.to_path_buf() }.into());
    }
    let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
    let model_type = opts.model_type.clone().unwrap_or_else(|| detection::model_type_from_name(&name).to_string());
    Ok(Target {
        name,
        model_type,
        processing: None,
        inputs: vec![],
        symbolic_dims: vec![],
        file: ModelPath {
            path: path.to_path_buf(),
            sha256: webaccel_models::files::sha256_file(path)?,
            label: path.display().to_string(),
            fetch: None,
        },
        precision: None,
        weights: "as stored in the file".into(),
        compute: "as the graph says".into(),
        mixed: None,
        reference: None,
        type_given: opts.model_type.is_some(),
    })
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

/// Whether measured capabilities include the platform, and what this file needs of it; the
/// browser's own error (or the missing feature) when not.
fn platform_status(caps: &Capabilities, platform: Platform, device: Option<&str>, fp16: bool) -> Result<(), String> {
    match platform {
        Platform::Wasm => Ok(()),
        // Without shader-f16, ORT-web's WebGPU EP still creates an fp16 session, but its
        // outputs were all zeros here (cosine 0 to fp32): so the feature is a requirement.
        Platform::Webgpu
            if caps.page.webgpu.available && fp16 && !caps.page.webgpu.features.iter().any(|f| f == "shader-f16") =>
        {
            Err(format!(
                "the WebGPU adapter ({}) lacks shader-f16, which this fp16 file needs",
                caps.page.webgpu.adapter.as_ref().map_or_else(String::new, |a| {
                    [&a.vendor, &a.architecture, &a.description]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            ))
        }
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
    target: &Target,
    platform: Platform,
    opts: &AccelerateOptions,
) -> Result<Result<(Arc<PooledBrowser>, String), String>, ApiError> {
    let fp16 = target.weights.starts_with("fp16");
    let device = opts.device.as_deref();
    if let Some(kind) = opts.browser {
        // An explicit browser always wins; failing to start it is an error, not a fallback.
        let pooled = services.runtime.block_on(services.pool.get(&opts.browser_key(kind)))?;
        let caps = &pooled.capabilities;
        return Ok(match platform_status(caps, platform, device, fp16) {
            Ok(()) => Ok((pooled.clone(), format!("browser {} given explicitly", kind.name()))),
            Err(why) => Err(format!("{} {} lacks {}: {why}", kind.name(), caps.version, platform.name())),
        });
    }
    let mut chosen = None;
    let selection = selection::choose(&target.model_type, platform.name(), |name| {
        let Some(kind) = BrowserKind::parse(name) else {
            return Availability::NotInstalled("not a browser webaccel knows".into());
        };
        match services.runtime.block_on(services.pool.get(&opts.browser_key(kind))) {
            Ok(pooled) => match platform_status(&pooled.capabilities, platform, device, fp16) {
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
    input: ModelInput,
    /// For a user's model: the processing webaccel settled on once it saw the graph.
    processing: Option<Processing>,
    /// For a user's model whose type was not given: the name's verdict refined by the graph.
    model_type: String,
}

/// One platform's attempt: it ran, or it could not (a reason to fall back on), or it failed in
/// a way no other platform would fix (a crash, a hang, a bad input).
enum Attempt {
    Ran(Box<Measured>),
    Unavailable(String),
    Failed(ApiError, Option<Arc<PooledBrowser>>),
}

/// The model's input for this call: prepared already for a catalog model; for a user's model,
/// built once the graph's declared inputs are known (from a wasm load of the same file, which
/// any browser can make, so WebNN can be given fixed shapes).
fn input_for(
    services: &Services,
    target: &Target,
    pooled: &PooledBrowser,
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
    let request = LoadRequest::new(Platform::Wasm);
    let key = format!("{}:wasm:-", target.file.sha256);
    let info = services.runtime.block_on(pooled.session.load(&key, &target.file.path, &request))?;
    let model_type = if target.type_given {
        target.model_type.clone()
    } else {
        let signature: Vec<InputSignature> = info
            .inputs
            .iter()
            .map(|m| InputSignature {
                name: &m.name,
                dtype: m.dtype.as_deref(),
                dims: m.shape.iter().map(|d| d.as_u64()).collect(),
            })
            .collect();
        detection::refine(detection::model_type_from_name(&target.name), &signature).to_string()
    };
    if let Some(vision) = user_vision(&model_type, &info, raw) {
        let input = inputs::images(&target.name, &vision, &info.inputs[0].name, raw.clone())?;
        return Ok(Built { input, processing: Some(Processing::Vision(vision)), model_type, declared: info.inputs });
    }
    let input = inputs::tensors(&target.name, raw.clone(), &info.inputs)?;
    Ok(Built { input, processing: None, model_type, declared: info.inputs })
}

/// A call's input, and what webaccel learnt of the model while building it.
struct Built {
    input: ModelInput,
    processing: Option<Processing>,
    model_type: String,
    /// A user's model's declared inputs (empty for catalog models, which name their dims).
    declared: Vec<InputMetadata>,
}

/// For a user's vision model given image paths: ImageNet pre-processing sized to its one
/// [N, 3, H, W] input (short side to H·256/224, centre crop H), classes as indices.
fn user_vision(model_type: &str, info: &LoadInfo, raw: &Dynamic) -> Option<VisionProcessing> {
    let given_paths =
        raw.is_string() || raw.read_lock::<rhai::Array>().is_some_and(|a| a.iter().all(|d| d.is_string()));
    let [only] = info.inputs.as_slice() else { return None };
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
        output: info.output_names.first()?.clone(),
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

fn run_options(opts: &AccelerateOptions, input: &ModelInput) -> RunOptions {
    RunOptions {
        warmup: opts.warmup,
        warmup_min: Duration::from_secs_f64(opts.warmup_s),
        runs: opts.runs,
        precompile: opts.precompile_shaders,
        measure_memory: opts.measure_memory.then_some(MEMORY_TIMEOUT),
        fetches: input.fetches.clone(),
        sequence: input.sequence.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    services: &Services,
    target: &Target,
    file: &ModelPath,
    platform: Platform,
    opts: &AccelerateOptions,
    run_options: impl Fn(&ModelInput) -> RunOptions,
    prepared: Option<&ModelInput>,
    raw: &Dynamic,
) -> Attempt {
    let (pooled, selection_reason) = match pick_browser(services, target, platform, opts) {
        Ok(Ok(picked)) => picked,
        Ok(Err(reason)) => return Attempt::Unavailable(reason),
        Err(e) => return Attempt::Failed(e, None),
    };
    let Built { input, processing, model_type, declared } = match input_for(services, target, &pooled, prepared, raw) {
        Ok(x) => x,
        Err(e) => return Attempt::Failed(e, Some(pooled)),
    };
    let device = (platform == Platform::Webnn).then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
    // WebNN builds its graph for fixed shapes: the symbolic dimensions are pinned to this
    // input's, and a different shape is a different session.
    let overrides =
        (platform == Platform::Webnn).then(|| dimension_overrides(target, &input, &declared)).filter(|o| !o.is_empty());
    let shape_key = overrides.as_ref().map_or(String::new(), |o| format!(":{o:?}"));
    let profiled = if opts.profile_ops { ":profiled" } else { "" };
    let key = format!("{}:{}:{}{shape_key}{profiled}", file.sha256, platform.name(), device.as_deref().unwrap_or("-"));
    let request = LoadRequest { platform, device, free_dimension_overrides: overrides, profile: opts.profile_ops };
    let load = match services.runtime.block_on(pooled.session.load(&key, &file.path, &request)) {
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
    // The input as prepared stays float32 (the reference run takes it); this file may want fp16.
    let mut tensors = input.tensors.clone();
    if let Err(e) = inputs::match_float_types(&mut tensors, &load.inputs) {
        return Attempt::Failed(e, Some(pooled));
    }
    let ran = services.runtime.block_on(pooled.session.run(&key, &tensors, &run_options(&input)));
    if opts.profile_ops {
        // ORT profiles a session once, from its creation: the next profiled call needs a fresh
        // session. A failure to release shows on the next call that needs the page.
        let _ = services.runtime.block_on(pooled.session.unload(&key));
    }
    match ran {
        Ok(run) => Attempt::Ran(Box::new(Measured {
            pooled,
            platform,
            selection_reason,
            session_create_ms: load.session_create_ms,
            session_reused: load.cached,
            run,
            input,
            processing,
            model_type,
        })),
        Err(e) => Attempt::Failed(e.into(), Some(pooled)),
    }
}

pub fn accelerate(services: &Services, model: &str, input: Dynamic, options: &Map) -> Result<Acceleration, ApiError> {
    accelerate_with(services, model, input, &AccelerateOptions::from_map(options)?, &Cell::default())
}

/// Where a row sits in a `compare` grid; empty for a plain `accelerate` call.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub experiment_id: Option<String>,
    pub cell_index: Option<i32>,
}

pub fn accelerate_with(
    services: &Services,
    model: &str,
    input: Dynamic,
    opts: &AccelerateOptions,
    cell: &Cell,
) -> Result<Acceleration, ApiError> {
    let early = resolve(services, model, opts).and_then(|target| {
        let prepared = match &target.processing {
            Some(p) => Some(inputs::prepare(services, &target.name, p, &target.inputs, input.clone())?),
            None => None,
        };
        Ok((target, prepared))
    });
    let (target, prepared) = match early {
        Ok(x) => x,
        // A grid cell that fails before reaching a browser (an unavailable precision, say)
        // still gets its row, so the grid shows the reason in that cell.
        Err(e) if cell.experiment_id.is_some() => {
            let row =
                RunRecord { status: RunStatus::Error, error: Some(e.to_string()), ..requested_row(model, opts, cell) };
            services.record(&[row])?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let requested = opts.platform.map_or("auto", |p| p.name()).to_string();

    let run_id = uuid::Uuid::now_v7().to_string();
    let mut row = base_row(&run_id, &target, opts, cell);
    row.batch_size = prepared.as_ref().map(|p| p.items as i32);
    let mut passed_over: Vec<String> = Vec::new();
    let mut measured = None;
    for platform in platform_chain(opts.platform, opts.fallback) {
        row.platform = platform.name().to_string();
        let options = |i: &ModelInput| run_options(opts, i);
        match attempt(services, &target, &target.file, platform, opts, options, prepared.as_ref(), &input) {
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
    row.model_type = measured.model_type.clone();
    row.platform = measured.platform.name().to_string();
    row.device = (measured.platform == Platform::Webnn).then(|| opts.device.clone().unwrap_or_else(|| "cpu".into()));
    row.browser = caps.browser.clone();
    row.browser_version = Some(caps.version.clone());
    row.batch_size = Some(measured.input.items as i32);
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
    row.latencies_ms = Some(measured.run.run_ms.clone());
    row.throughput_items_per_s = latency.filter(|l| *l > 0.0).map(|l| measured.input.items as f64 / (l / 1000.0));
    if let Some(memory) = &measured.run.memory {
        row.memory_bytes = memory.bytes;
        row.memory_source = memory.source.clone();
    }
    row.op_profile = measured.run.op_profile.as_ref().map(|ops| serde_json::to_string(ops).unwrap_or_default());

    let output = match post_process(measured.processing.as_ref(), &measured.run, &measured.input) {
        Ok(o) => o,
        Err(e) => {
            row.status = RunStatus::Error;
            row.error = Some(e.to_string());
            services.record(&[row])?;
            return Err(e);
        }
    };
    let (accuracy, reference) = if opts.accuracy {
        accuracy(services, &target, &measured, &output, opts)
    } else {
        (None, Some("not measured (accuracy: false)".to_string()))
    };
    row.accuracy_cosine = accuracy.as_ref().map(|a| a.cosine);
    row.accuracy_max_abs_error = accuracy.as_ref().map(|a| a.max_abs_error);
    row.accuracy_top1_agree = accuracy.as_ref().and_then(|a| a.top1);
    row.accuracy_reference = reference.clone();
    services.record(&[row.clone()])?;

    Ok(Acceleration {
        run_id,
        model: target.name.clone(),
        model_type: measured.model_type.clone(),
        precision: target.precision,
        weights: target.weights.clone(),
        compute: target.compute.clone(),
        mixed_precision: target.mixed,
        file: target.file.label.clone(),
        requested_platform: requested,
        platform: row.platform.clone(),
        device: row.device.clone(),
        browser: row.browser.clone(),
        browser_version: caps.version.clone(),
        fallback_reason: row.fallback_reason.clone(),
        selection_reason: measured.selection_reason.clone(),
        output,
        accuracy,
        accuracy_reference: reference,
        session_create_ms: measured.session_create_ms,
        session_reused: measured.session_reused,
        precompile_ms: measured.run.precompile_ms,
        first_run_ms: measured.run.first_run_ms,
        latency_ms: latency.unwrap_or(f64::NAN),
        p90_ms: p90.unwrap_or(f64::NAN),
        throughput_items_per_s: row.throughput_items_per_s.unwrap_or(f64::NAN),
        memory_bytes: row.memory_bytes,
        memory_error: measured.run.memory.as_ref().and_then(|m| m.error.clone()),
        ops: measured.run.op_profile.clone(),
        run_ms: measured.run.run_ms.clone(),
    })
}

/// Compares the outputs with the model's reference file run once on wasm with the same input
/// (cached per reference file and input). Returns the agreement, and what it was measured
/// against or why it could not be.
fn accuracy(
    services: &Services,
    target: &Target,
    measured: &Measured,
    output: &Output,
    opts: &AccelerateOptions,
) -> (Option<Agreement>, Option<String>) {
    let Some(reference) = &target.reference else {
        return (None, Some("no reference: webaccel knows no fp32 file for this model".into()));
    };
    let label = format!("{} on wasm", reference.label());
    if reference.sha256() == target.file.sha256 && measured.platform == Platform::Wasm {
        return (agreement(output, output), Some(format!("{label} (this run)")));
    }
    let mut digest = Sha256::new();
    digest.update(reference.sha256().as_bytes());
    for t in &measured.input.tensors {
        digest.update(t.name.as_bytes());
        digest.update(format!("{:?}{:?}", t.dtype, t.dims).as_bytes());
        digest.update(&t.data);
    }
    let key = hex::encode(digest.finalize());
    if let Some(cached) = services.reference_output(&key) {
        return (agreement(output, &cached), Some(label));
    }
    // One untimed run: only the outputs matter here.
    let quiet = AccelerateOptions { platform: Some(Platform::Wasm), fallback: false, ..opts.clone() };
    let once = |i: &ModelInput| RunOptions {
        fetches: i.fetches.clone(),
        sequence: i.sequence.clone(),
        ..RunOptions::timed(0, 1)
    };
    let file = match reference.locate(services) {
        Ok(file) => file,
        Err(e) => return (None, Some(format!("{label} unavailable: {e}"))),
    };
    match attempt(services, target, &file, Platform::Wasm, &quiet, once, Some(&measured.input), &Dynamic::UNIT) {
        Attempt::Ran(r) => match post_process(measured.processing.as_ref(), &r.run, &r.input) {
            Ok(reference_output) => {
                let agreement = agreement(output, &reference_output);
                services.keep_reference_output(key, reference_output);
                (agreement, Some(label))
            }
            Err(e) => (None, Some(format!("{label} failed: {e}"))),
        },
        Attempt::Unavailable(why) => (None, Some(format!("{label} unavailable: {why}"))),
        Attempt::Failed(e, _) => (None, Some(format!("{label} failed: {e}"))),
    }
}

/// What a row knows before the model is resolved: what was asked for, and where in a grid.
fn requested_row(model: &str, opts: &AccelerateOptions, cell: &Cell) -> RunRecord {
    let platform = opts.platform.map_or("auto", |p| p.name()).to_string();
    RunRecord {
        model_name: model.to_string(),
        precision: opts.precision.map(|p| p as i32),
        requested_platform: Some(platform.clone()),
        platform,
        device: opts.device.clone(),
        browser: opts.browser.map_or("auto", |b| b.name()).to_string(),
        experiment_id: cell.experiment_id.clone(),
        cell_index: cell.cell_index,
        ..RunRecord::default()
    }
}

fn base_row(run_id: &str, target: &Target, opts: &AccelerateOptions, cell: &Cell) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        model_type: target.model_type.clone(),
        model_sha256: Some(target.file.sha256.clone()),
        model_file: Some(target.file.label.clone()),
        precision: target.precision.map(|p| p as i32),
        weights_dtype: Some(target.weights.clone()),
        compute_dtype: Some(target.compute.clone()),
        mixed_precision: target.mixed,
        cid: target.file.fetch.as_ref().map(|f| f.cid.clone()),
        ipfs_cache_hit: target.file.fetch.as_ref().map(|f| f.cache_hit),
        ipfs_gateway: target.file.fetch.as_ref().and_then(|f| f.gateway.clone()),
        ipfs_bytes: target.file.fetch.as_ref().map(|f| f.bytes as i64),
        ipfs_fetch_ms: target.file.fetch.as_ref().map(|f| f.ms),
        ipfs_verified: target.file.fetch.as_ref().map(|f| f.verified),
        ..requested_row(&target.name, opts, cell)
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
