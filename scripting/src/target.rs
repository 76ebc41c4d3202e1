//! What one call runs: a catalog model at a precision, a user's `.onnx` file, or a file known
//! by CID; where its file is on disk (through the content store when it has a CID); and which
//! file its outputs are checked against.

use std::path::{Path, PathBuf};

use webaccel_ipfs::FetchRecord;
use webaccel_models::detection;
use webaccel_models::{ModelError, ModelFile, ModelSpec, Processing};

use crate::error::ApiError;
use crate::options::AccelerateOptions;
use crate::services::Services;

/// A model file on disk with what is known of it.
#[derive(Debug, Clone)]
pub(crate) struct ModelPath {
    pub path: PathBuf,
    pub sha256: String,
    pub label: String,
    /// How it came through the content store, for a file known by CID.
    pub fetch: Option<FetchRecord>,
}

/// The file accuracy is measured against: a catalog model's fp32 (or widest) file, or a user's
/// own file (the widest webaccel knows of it). A catalog file is located (and, by CID, brought
/// through the content store) only when a reference run is needed: not with `accuracy: false`,
/// nor when the reference output for this input is already cached.
#[derive(Debug, Clone)]
pub(crate) enum Reference {
    Catalog { model: String, file: ModelFile },
    Own(ModelPath),
}

impl Reference {
    pub fn sha256(&self) -> &str {
        match self {
            Reference::Catalog { file, .. } => file.sha256.as_deref().unwrap_or_default(),
            Reference::Own(path) => &path.sha256,
        }
    }

    /// What it is, as a row names it: "fp32", or "the file itself" for a user's model.
    pub fn describe(&self) -> String {
        match self {
            Reference::Catalog { file, .. } => file.weights.split_whitespace().next().unwrap_or("fp32").to_string(),
            Reference::Own(_) => "the same file".into(),
        }
    }

    pub fn locate(&self, services: &Services) -> Result<ModelPath, ApiError> {
        match self {
            Reference::Catalog { model, file } => catalog_file(services, services.catalog.resolve(model)?, file),
            Reference::Own(path) => Ok(path.clone()),
        }
    }

    /// The encoder that goes with the reference, for an encoder-decoder model.
    pub fn locate_encoder(&self, services: &Services) -> Result<Option<ModelPath>, ApiError> {
        let Reference::Catalog { model, file } = self else { return Ok(None) };
        let spec = services.catalog.resolve(model)?;
        spec.encoder_file(file).map(|f| catalog_file(services, spec, f)).transpose()
    }
}

/// A file known by CID, through the content store: a hit, or else the packaged copy (already
/// sha256-checked) imported under its CID, or else a verified fetch from the gateways.
pub(crate) fn through_store(
    services: &Services,
    cid: &str,
    local: Option<&Path>,
) -> Result<(PathBuf, FetchRecord), ApiError> {
    let resolver = services.ipfs()?;
    let parsed = webaccel_ipfs::parse_cid(cid).map_err(webaccel_ipfs::Error::from)?;
    if let Some(hit) = services.wait(resolver.cached(&parsed))?? {
        return Ok((hit.path, hit.record));
    }
    let Some(local) = local else {
        let fetched = services.wait(resolver.resolve(&parsed))??;
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
pub(crate) struct Target {
    pub name: String,
    pub model_type: String,
    /// None: a user's model, pre-processed by its declared inputs once they are known.
    pub processing: Option<Processing>,
    pub inputs: Vec<String>,
    pub symbolic_dims: Vec<String>,
    pub file: ModelPath,
    /// An encoder-decoder model's encoder (`file` is then the decoder).
    pub encoder: Option<ModelPath>,
    /// The variant's short name: the derivation ("int8-dynamic-matmul"), or "packaged".
    pub variant: String,
    pub precision: Option<u32>,
    pub weights: String,
    pub compute: String,
    pub mixed: Option<bool>,
    /// What accuracy is measured against.
    pub reference: Option<Reference>,
    /// The type came from the user or the catalog, not from detection.
    pub type_given: bool,
}

/// A name that is meant as a CID: CIDv1 in base32 starts with "baf", CIDv0 with "Qm", and
/// neither holds a path separator or ends in `.onnx`. Whether it parses is for the CID parser
/// to say, so that a mistyped CID gets the CID error, not "unknown model".
pub(crate) fn looks_like_cid(model: &str) -> bool {
    (model.starts_with("baf") || model.starts_with("Qm")) && !looks_like_path(model) && !model.contains(' ')
}

fn looks_like_path(model: &str) -> bool {
    model.ends_with(".onnx") || model.contains('/') || model.contains('\\')
}

fn in_catalog(services: &Services, model: &str) -> bool {
    services
        .catalog
        .models
        .iter()
        .any(|m| m.name.eq_ignore_ascii_case(model) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(model)))
}

pub(crate) fn resolve(services: &Services, model: &str, opts: &AccelerateOptions) -> Result<Target, ApiError> {
    if looks_like_cid(model) && !in_catalog(services, model) {
        webaccel_ipfs::parse_cid(model).map_err(webaccel_ipfs::Error::from)?;
        let (path, record) = through_store(services, model, None)?;
        let mut target = user_model(&path, opts)?;
        target.name = model.to_string();
        target.model_type = opts.model_type.clone().unwrap_or_else(|| detection::FALLBACK_TYPE.to_string());
        target.file.label = model.to_string();
        target.file.fetch = Some(record);
        return Ok(target);
    }
    if looks_like_path(model) && !in_catalog(services, model) {
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
        encoder: spec.encoder_file(file).map(|f| catalog_file(services, spec, f)).transpose()?,
        variant: file.derive.as_ref().map_or_else(|| "packaged".to_string(), |d| d.method.clone()),
        precision: Some(file.precision),
        weights: file.weights.clone(),
        compute: file.compute.clone(),
        mixed: Some(file.mixed),
        reference: spec.reference_file().map(|f| Reference::Catalog { model: spec.name.clone(), file: f.clone() }),
        type_given: true,
    })
}

fn user_model(path: &Path, opts: &AccelerateOptions) -> Result<Target, ApiError> {
    if !path.is_file() {
        return Err(ModelError::FileMissing { path: path.to_path_buf() }.into());
    }
    let file = ModelPath {
        path: path.to_path_buf(),
        sha256: webaccel_models::files::sha256_file(path)?,
        label: path.display().to_string(),
        fetch: None,
    };
    let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
    let model_type = opts.model_type.clone().unwrap_or_else(|| detection::model_type_from_name(&name).to_string());
    Ok(Target {
        name,
        model_type,
        processing: None,
        inputs: vec![],
        symbolic_dims: vec![],
        file: file.clone(),
        encoder: None,
        variant: "your file".into(),
        precision: None,
        weights: "as stored in the file".into(),
        compute: "as the graph says".into(),
        mixed: None,
        // webaccel knows no other precision of a user's file: the file itself, on native
        // onnxruntime, is the independent reference.
        reference: Some(Reference::Own(file)),
        type_given: opts.model_type.is_some(),
    })
}
