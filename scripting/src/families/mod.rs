//! Model families. A family knows how a script's input becomes a model's input and how the
//! model's outputs become what `accelerate` returns: sentence embeddings (`text`), image
//! classification (`vision`), audio frames carried through a recurrent model (`audio`), text
//! generation (`generation`) and speech to text (`speech`). Everything else in a call (the
//! file, the platform chain, the row, the reference) is the same for every family.
//!
//! Adding a family is a `Processing` variant in the catalog, a module here implementing
//! `Family`, and its arm in `of`, the one place that maps a model's processing to its family.

pub mod audio;
pub mod generation;
pub mod speech;
pub mod text;
pub mod vision;

use rhai::Dynamic;
use webaccel_browser_runtime::Tensor;
use webaccel_models::Processing;

use crate::error::ApiError;
use crate::inputs::ModelInput;
use crate::outputs::Output;
use crate::services::Services;
pub use generation::GenerateOptions;

/// What preparing an input may consult besides the input itself.
pub struct Preparing<'a> {
    pub services: &'a Services,
    /// The model's name, for errors.
    pub model: &'a str,
    /// The graph's input names, as the catalog lists them.
    pub inputs: &'a [String],
    /// The generation options of the call (refused by families that do not generate).
    pub generate: &'a GenerateOptions,
}

pub trait Family: Sync {
    /// Whether the generation options (`max_new_tokens`, `chat`, ...) apply.
    fn generates(&self) -> bool {
        false
    }

    /// The input a `compare` cell gets when the spec gives none, if the family has a natural one.
    fn default_input(&self) -> Option<Dynamic> {
        None
    }

    /// A script's value as the model's input, with the assumptions made in `details`.
    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError>;

    /// A run's outputs as the script's value. `input` is what `prepare` made.
    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError>;
}

/// The family of a catalog model (or of a user's model webaccel recognised).
pub fn of(processing: &Processing) -> &dyn Family {
    match processing {
        Processing::Text(p) => p,
        Processing::Vision(p) => p,
        Processing::Audio(p) => p,
        Processing::Generation(p) => p,
        Processing::Speech(p) => p,
    }
}

/// The output named `name` among a run's.
pub(crate) fn output<'a>(outputs: &'a [Tensor], name: &str) -> Result<&'a Tensor, ApiError> {
    outputs.iter().find(|t| t.name == name).ok_or_else(|| ApiError::MissingOutput {
        wanted: name.to_string(),
        actual: outputs.iter().map(|t| t.name.clone()).collect(),
    })
}

/// A string or a non-empty array of strings (sentences, image paths), and whether it was one.
pub(crate) fn strings(model: &str, input: Dynamic, expected: &str) -> Result<(Vec<String>, bool), ApiError> {
    let bad = || ApiError::BadInput { model: model.to_string(), expected: expected.to_string() };
    if input.is_string() {
        return Ok((vec![input.into_string().map_err(|_| bad())?], true));
    }
    let array: rhai::Array = input.try_cast().ok_or_else(bad)?;
    if array.is_empty() {
        return Err(ApiError::BadInput {
            model: model.to_string(),
            expected: format!("{expected}, not an empty array"),
        });
    }
    let list = array.into_iter().map(|d| d.into_string().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
    Ok((list, false))
}
