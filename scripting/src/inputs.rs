//! From what a script passes to `accelerate` to what a model takes: `ModelInput`. A catalog
//! model's family makes it (`families`); for models webaccel knows nothing about, named tensors
//! are checked here against the graph's declared inputs.

use std::collections::BTreeMap;

use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::{DType, Generation, InputMetadata, Sequence, Tensor};
use webaccel_models::{Encoded, Processing};

use crate::error::ApiError;
use crate::families::{self, GenerateOptions, Preparing};
use crate::services::Services;

/// What the tensors were made from, as post-processing needs to know it.
#[derive(Debug, Clone)]
pub enum Source {
    Sentences { encoded: Encoded, single: bool },
    Images { count: usize, single: bool },
    Frames { count: usize },
    /// A prompt: its length, and the tokenizer that decodes what is generated.
    Prompt { prompt_tokens: usize, tokenizer: std::sync::Arc<webaccel_models::generation::LmTokenizer> },
    /// Speech: the decoder's prompt length, the audio's length and chunks, and the tokenizer
    /// that decodes the transcript.
    Speech {
        prompt_tokens: usize,
        audio_seconds: f64,
        chunks: usize,
        tokenizer: std::sync::Arc<webaccel_models::speech::SpeechTokenizer>,
    },
    Tensors,
}

/// A model's input for one call.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub tensors: Vec<Tensor>,
    pub source: Source,
    /// The batch: sentences, images or audio frames (throughput counts these).
    pub items: usize,
    /// The size of each symbolic dimension in this input, in the order the catalog lists them
    /// (WebNN builds its graph for fixed shapes).
    pub dims: Vec<u64>,
    pub sequence: Option<Sequence>,
    /// For a decoder: generate from a prompt (the tensors are then empty).
    pub generation: Option<Generation>,
    /// The outputs post-processing reads; empty means all.
    pub fetches: Vec<String>,
    /// The assumptions made in building it, for the row's `details`: the normalisation and
    /// resize an image got, what the batch counts, text cut at the model's limit.
    pub details: BTreeMap<String, String>,
}

/// The most elements a user-given tensor may have: 2^28 (1 GiB of float32), far above any
/// input webaccel's models take, and far below what would exhaust memory.
pub const MAX_ELEMENTS: usize = 1 << 28;

pub(crate) fn details(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A catalog model's input, made by its family; generation options on a family that does not
/// generate are an error rather than ignored.
pub fn prepare(
    services: &Services,
    model: &str,
    processing: &Processing,
    inputs: &[String],
    input: Dynamic,
    generate: &GenerateOptions,
) -> Result<ModelInput, ApiError> {
    let family = families::of(processing);
    if generate.given && !family.generates() {
        return Err(ApiError::BadOption {
            function: "accelerate",
            key: families::generation::KEYS.join("/"),
            problem: format!("applies only to text-generation and speech models, and {model} generates nothing"),
        });
    }
    family.prepare(&Preparing { services, model, inputs, generate }, input)
}

/// Float inputs in the element type the graph declares: a pure-fp16 file takes fp16 inputs.
pub fn match_float_types(tensors: &mut [Tensor], declared: &[InputMetadata]) -> Result<(), ApiError> {
    for tensor in tensors.iter_mut() {
        let wants_f16 = declared.iter().any(|m| m.name == tensor.name && m.dtype.as_deref() == Some("float16"));
        if wants_f16 && tensor.dtype == DType::Float32 {
            let values = tensor.to_f32()?;
            *tensor = Tensor::from_f32_as_f16(tensor.name.clone(), tensor.dims.clone(), &values);
        }
    }
    Ok(())
}

/// Describes a graph's inputs for error messages: `x: float32[N, 3, 224, 224]`.
pub fn describe(declared: &[InputMetadata]) -> String {
    declared
        .iter()
        .map(|m| {
            let dims: Vec<String> =
                m.shape.iter().map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string)).collect();
            format!("{}: {}[{}]", m.name, m.dtype.as_deref().unwrap_or("non-tensor"), dims.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Named tensors for a model webaccel has no processing for: `#{name: values}` where values
/// is a (nested) array, or `#{name: #{dims: [...], data: [...]}}`. Every declared input must
/// be given, with the declared element type's values and a shape that fits the declaration.
pub fn tensors(model: &str, input: Dynamic, declared: &[InputMetadata]) -> Result<ModelInput, ApiError> {
    let needs = || ApiError::BadInput {
        model: model.to_string(),
        expected: format!(
            "a map of named tensors for its inputs {} (each a nested array, or #{{dims: [...], data: [...]}}); \
             or give `model_type` so webaccel can pre-process images for it",
            describe(declared)
        ),
    };
    let map: Map = input.try_cast().ok_or_else(needs)?;
    if let Some(extra) = map.keys().find(|k| !declared.iter().any(|m| m.name == k.as_str())) {
        return Err(ApiError::BadInput {
            model: model.to_string(),
            expected: format!("tensors named after its inputs ({}); it has no input '{extra}'", describe(declared)),
        });
    }
    let mut out = Vec::with_capacity(declared.len());
    let mut items = 1;
    for m in declared {
        let value = map.get(m.name.as_str()).ok_or_else(needs)?;
        let (dims, values) = tensor_values(value).ok_or_else(needs)?;
        let fits = dims.len() == m.shape.len()
            && dims.iter().zip(&m.shape).all(|(d, s)| s.as_u64().is_none_or(|fixed| fixed == *d as u64 || fixed == 0));
        // Checked: dims come from the user, and their product can overflow.
        let elements = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
        let Some(elements) = elements else {
            return Err(ApiError::BadInput {
                model: model.to_string(),
                expected: format!(
                    "input '{}' with at most {MAX_ELEMENTS} elements; dims {dims:?} ask for more",
                    m.name
                ),
            });
        };
        if !fits || elements != values.len() {
            return Err(ApiError::BadInput {
                model: model.to_string(),
                expected: format!(
                    "input '{}' shaped as declared ({}); got dims {dims:?} with {} values",
                    m.name,
                    describe(std::slice::from_ref(m)),
                    values.len()
                ),
            });
        }
        items = items.max(dims.first().copied().unwrap_or(1));
        let tensor = match m.dtype.as_deref() {
            Some("float32") => {
                Tensor::from_f32(m.name.clone(), dims, &values.iter().map(|&v| v as f32).collect::<Vec<_>>())
            }
            Some("float16") => {
                Tensor::from_f32_as_f16(m.name.clone(), dims, &values.iter().map(|&v| v as f32).collect::<Vec<_>>())
            }
            Some("int64") => {
                Tensor::from_i64(m.name.clone(), dims, &values.iter().map(|&v| v as i64).collect::<Vec<_>>())
            }
            other => {
                return Err(ApiError::BadInput {
                    model: model.to_string(),
                    expected: format!(
                        "inputs webaccel can build; '{}' is {}, and only float32, float16 and int64 are supported",
                        m.name,
                        other.unwrap_or("not a tensor")
                    ),
                })
            }
        };
        out.push(tensor);
    }
    let details =
        details(&[("batch", format!("{items}: the first dimension of the largest input; throughput counts it"))]);
    Ok(ModelInput {
        tensors: out,
        source: Source::Tensors,
        items,
        dims: vec![],
        sequence: None,
        generation: None,
        fetches: vec![],
        details,
    })
}

/// Dims and row-major values of a nested array, or of `#{dims, data}`.
fn tensor_values(value: &Dynamic) -> Option<(Vec<usize>, Vec<f64>)> {
    if let Some(map) = value.read_lock::<Map>() {
        let dims: Array = map.get("dims")?.clone().try_cast()?;
        let data: Array = map.get("data")?.clone().try_cast()?;
        let dims =
            dims.iter().map(|d| d.as_int().ok().and_then(|i| usize::try_from(i).ok())).collect::<Option<Vec<_>>>()?;
        return Some((dims, data.iter().map(number).collect::<Option<Vec<_>>>()?));
    }
    let mut dims = Vec::new();
    let mut level: Vec<Dynamic> = vec![value.clone()];
    while let Some(first) = level.first().filter(|d| d.is_array()) {
        let width = first.read_lock::<Array>()?.len();
        dims.push(width);
        let mut next = Vec::with_capacity(level.len() * width);
        for d in level {
            let a: Array = d.try_cast()?;
            if a.len() != width {
                return None; // ragged
            }
            next.extend(a);
        }
        level = next;
    }
    Some((dims, level.iter().map(number).collect::<Option<Vec<_>>>()?))
}

fn number(d: &Dynamic) -> Option<f64> {
    d.as_float().ok().or_else(|| d.as_int().ok().map(|i| i as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declared() -> Vec<InputMetadata> {
        vec![InputMetadata { name: "x".into(), dtype: Some("float32".into()), shape: vec![json!("N"), json!(2)] }]
    }

    #[test]
    fn nested_arrays_become_tensors_checked_against_the_graph() {
        let engine = rhai::Engine::new();
        let input: Dynamic = engine.eval("#{x: [[1.0, 2.0], [3, 4.5]]}").unwrap();
        let got = tensors("m", input, &declared()).unwrap();
        assert_eq!(got.tensors[0].dims, vec![2, 2]);
        assert_eq!(got.tensors[0].to_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(got.items, 2);
        let flat: Dynamic = engine.eval("#{x: #{dims: [1, 2], data: [5, 6]}}").unwrap();
        assert_eq!(tensors("m", flat, &declared()).unwrap().tensors[0].to_f32().unwrap(), vec![5.0, 6.0]);
    }

    #[test]
    fn dimensions_whose_product_overflows_are_an_error_not_a_panic() {
        let engine = rhai::Engine::new();
        for dims in ["[4611686018427387904, 2]", "[1099511627776, 1099511627776]", "[268435457, 2]"] {
            let input: Dynamic = engine.eval(&format!("#{{x: #{{dims: {dims}, data: [1.0]}}}}")).unwrap();
            let err = tensors("m", input, &declared()).unwrap_err().to_string();
            assert!(err.contains(&format!("at most {MAX_ELEMENTS} elements")), "{dims}: {err}");
        }
    }

    #[test]
    fn wrong_shapes_names_and_kinds_say_what_the_model_takes() {
        let engine = rhai::Engine::new();
        for (code, wanted) in [
            ("#{x: [[1.0, 2.0, 3.0]]}", "x: float32[N, 2]"),
            ("#{x: [[1.0], [2.0, 3.0]]}", "x: float32[N, 2]"),
            ("#{y: [[1.0, 2.0]]}", "no input 'y'"),
            ("\"a sentence\"", "a map of named tensors"),
        ] {
            let err = tensors("m", engine.eval::<Dynamic>(code).unwrap(), &declared()).unwrap_err().to_string();
            assert!(err.contains(wanted), "{code}: {err}");
        }
    }
}
