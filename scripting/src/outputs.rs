//! What a script gets back from a run (`Output`): an embedding per sentence, ranked labels per
//! image, a speech probability per audio frame, generated text, a transcript, or the raw tensors
//! of an unknown model; each family makes its own from the output tensors (`families`). Also
//! the numbers that compare two runs' outputs (the accuracy columns).

use rhai::{Array, Dynamic, Map};
use webaccel_browser_runtime::Tensor;
use webaccel_models::{cosine, vision, Processing};

use crate::error::ApiError;
use crate::families::{self, generation::Generated};
use crate::inputs::ModelInput;

#[derive(Debug, Clone)]
pub enum Output {
    Embeddings { vectors: Vec<Vec<f32>>, single: bool },
    Classes { probabilities: Vec<Vec<f32>>, labels: Vec<String>, single: bool },
    Frames(Vec<f32>),
    Generated(Generated),
    /// A transcript (text and ids, every chunk's in order).
    Transcribed(Generated),
    Tensors(Vec<Tensor>),
}

/// What is not a number among a run's outputs ("output y: 2 NaN and 1 ±Inf of 4 values"), or
/// None when every value is finite. fp16 overflow is the usual cause: a value past 65504
/// becomes Inf, and Inf − Inf is NaN.
pub fn non_finite(outputs: &[Tensor]) -> Option<String> {
    let bad: Vec<String> = outputs
        .iter()
        .filter_map(|t| {
            let (nan, inf) = t.non_finite();
            (nan + inf > 0).then(|| {
                format!("output {} holds {nan} NaN and {inf} ±Inf of {} values", t.name, t.element_count().unwrap_or(0))
            })
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join("; "))
}

/// A run's outputs as the script's value: through the model's family, or the raw tensors of a
/// model webaccel knows nothing about.
pub fn post_process(processing: Option<&Processing>, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
    match processing {
        Some(p) => families::of(p).post_process(outputs, input),
        None => Ok(Output::Tensors(outputs.to_vec())),
    }
}

fn floats(v: &[f32]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|&x| Dynamic::from_float(x as f64)).collect())
}

impl Output {
    pub fn to_dynamic(&self) -> Dynamic {
        let one_or_all = |items: Array, single: bool| {
            if single {
                items.into_iter().next().unwrap_or(Dynamic::UNIT)
            } else {
                Dynamic::from_array(items)
            }
        };
        match self {
            Output::Embeddings { vectors, single } => one_or_all(vectors.iter().map(|v| floats(v)).collect(), *single),
            Output::Classes { probabilities, labels, single } => {
                let ranked = probabilities
                    .iter()
                    .map(|p| {
                        let list: Array = vision::label(p, labels)
                            .into_iter()
                            .map(|(label, p)| {
                                let mut m = Map::new();
                                m.insert("label".into(), label.into());
                                m.insert("p".into(), Dynamic::from_float(p as f64));
                                Dynamic::from_map(m)
                            })
                            .collect();
                        Dynamic::from_array(list)
                    })
                    .collect();
                one_or_all(ranked, *single)
            }
            Output::Frames(p) => floats(p),
            Output::Generated(g) | Output::Transcribed(g) => g.text.clone().into(),
            Output::Tensors(tensors) => {
                let mut m = Map::new();
                for t in tensors {
                    let mut entry = Map::new();
                    entry.insert(
                        "dims".into(),
                        Dynamic::from_array(t.dims.iter().map(|&d| Dynamic::from_int(d as i64)).collect()),
                    );
                    entry.insert("dtype".into(), format!("{:?}", t.dtype).to_lowercase().into());
                    // Integer outputs have no float view; their bytes are not reinterpreted.
                    entry.insert("data".into(), t.to_f32().map_or(Dynamic::UNIT, |v| floats(&v)));
                    m.insert(t.name.as_str().into(), Dynamic::from_map(entry));
                }
                Dynamic::from_map(m)
            }
        }
    }

    /// One line for people: the shape and the first values or the top classes.
    pub fn summary(&self) -> String {
        let preview = |v: &[f32]| v.iter().take(4).map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
        match self {
            Output::Embeddings { vectors, .. } => {
                format!(
                    "{} × [{}] embeddings [{}, …]",
                    vectors.len(),
                    vectors.first().map_or(0, Vec::len),
                    preview(vectors.first().map_or(&[], |v| v))
                )
            }
            Output::Classes { probabilities, labels, .. } => probabilities
                .iter()
                .map(|p| {
                    vision::label(p, labels)
                        .iter()
                        .take(2)
                        .map(|(l, p)| format!("{l}: {p:.3}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect::<Vec<_>>()
                .join(" | "),
            Output::Frames(p) => format!(
                "{} frames, {} with speech probability ≥ 0.5 [{}, …]",
                p.len(),
                p.iter().filter(|&&x| x >= 0.5).count(),
                preview(p)
            ),
            Output::Generated(g) | Output::Transcribed(g) => format!("{} tokens: {:?}", g.tokens.len(), g.text),
            Output::Tensors(t) => {
                t.iter().map(|t| format!("{}: {:?}{:?}", t.name, t.dtype, t.dims)).collect::<Vec<_>>().join(", ")
            }
        }
    }

    /// The generated ids, for a generation or a transcript.
    pub fn tokens(&self) -> Option<&[i64]> {
        match self {
            Output::Generated(g) | Output::Transcribed(g) => Some(&g.tokens),
            _ => None,
        }
    }

    /// The output as one item per input (sentence, image, frame, or the whole tensor set).
    fn items(&self) -> Vec<Vec<f32>> {
        match self {
            Output::Embeddings { vectors, .. } => vectors.clone(),
            Output::Classes { probabilities, .. } => probabilities.clone(),
            Output::Frames(p) => p.iter().map(|&x| vec![x]).collect(),
            // Ids are not a vector to take a cosine of; generations compare by token agreement.
            Output::Generated(_) | Output::Transcribed(_) => vec![],
            Output::Tensors(tensors) => vec![tensors.iter().filter_map(|t| t.to_f32().ok()).flatten().collect()],
        }
    }
}

/// How one run's outputs compare with a reference run's on the same input.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Mean over items of the cosine similarity (for unit embeddings, the usual measure); None
    /// for a generation.
    pub cosine: Option<f64>,
    pub max_abs_error: Option<f64>,
    /// The share of items whose top-1 agrees: the class for classifiers, speech/non-speech at
    /// 0.5 for VAD frames, the nearest other sentence for two or more embeddings. None where
    /// there is no such notion (one embedding, raw tensors).
    pub top1: Option<f64>,
    /// For a generation: the leading tokens equal to the reference's, and the share of
    /// positions equal (over the longer of the two).
    pub tokens: Option<(usize, f64)>,
    /// For a transcript: the word error rate against the reference's transcript.
    pub wer: Option<f64>,
}

pub fn agreement(got: &Output, reference: &Output) -> Option<Agreement> {
    if let (Some(a), Some(b)) = (got.tokens(), reference.tokens()) {
        let tokens = Some(webaccel_browser_runtime::generation_agreement(a, b));
        let wer = match (got, reference) {
            (Output::Transcribed(g), Output::Transcribed(r)) => Some(webaccel_models::speech::word_error_rate(&g.text, &r.text)),
            _ => None,
        };
        return Some(Agreement { cosine: None, max_abs_error: None, top1: None, tokens, wer });
    }
    let (a, b) = (got.items(), reference.items());
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.len() != y.len()) || a.is_empty() {
        return None;
    }
    let cos = match got {
        // Single-value items have no direction; compare the frame series as one vector.
        Output::Frames(_) => cosine(&a.concat(), &b.concat()) as f64,
        _ => a.iter().zip(&b).map(|(x, y)| cosine(x, y) as f64).sum::<f64>() / a.len() as f64,
    };
    // NaN propagates (f64::max would skip it and report 0 for all-NaN outputs).
    let max_abs_error = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64))
        .fold(0.0, |m: f64, d| if m.is_nan() || d.is_nan() { f64::NAN } else { m.max(d) });
    if !max_abs_error.is_finite() || !cos.is_finite() {
        return None;
    }
    let share = |agree: usize, n: usize| Some(agree as f64 / n as f64);
    let top1 = match got {
        Output::Classes { .. } => share(a.iter().zip(&b).filter(|(x, y)| argmax(x) == argmax(y)).count(), a.len()),
        Output::Frames(_) => share(a.iter().zip(&b).filter(|(x, y)| (x[0] >= 0.5) == (y[0] >= 0.5)).count(), a.len()),
        Output::Embeddings { .. } if a.len() >= 2 => {
            share((0..a.len()).filter(|&i| nearest(&a, i) == nearest(&b, i)).count(), a.len())
        }
        _ => None,
    };
    Some(Agreement { cosine: Some(cos), max_abs_error: Some(max_abs_error), top1, tokens: None, wer: None })
}

fn argmax(v: &[f32]) -> Option<usize> {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
}

/// The index of the item most similar to item `i` (other than itself).
fn nearest(items: &[Vec<f32>], i: usize) -> Option<usize> {
    (0..items.len())
        .filter(|&j| j != i)
        .max_by(|&j, &k| cosine(&items[i], &items[j]).total_cmp(&cosine(&items[i], &items[k])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_of_classifiers_counts_top1_per_image() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let got = Output::Classes {
            probabilities: vec![vec![0.9, 0.1], vec![0.4, 0.6]],
            labels: labels.clone(),
            single: false,
        };
        let reference = Output::Classes { probabilities: vec![vec![0.8, 0.2], vec![0.7, 0.3]], labels, single: false };
        let a = agreement(&got, &reference).unwrap();
        assert_eq!(a.top1, Some(0.5));
        assert!((a.max_abs_error.unwrap() - 0.3).abs() < 1e-6, "{a:?}");
        assert!(a.cosine.is_some_and(|c| c < 1.0 && c > 0.8) && a.tokens.is_none());
    }

    #[test]
    fn outputs_that_are_not_numbers_have_no_agreement() {
        // f64::max skips NaN, which once gave an all-NaN output a max |error| of 0.
        let e = |v: Vec<Vec<f32>>| Output::Embeddings { vectors: v, single: false };
        let nan = e(vec![vec![f32::NAN, f32::NAN], vec![f32::NAN, f32::NAN]]);
        let fine = e(vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(agreement(&nan, &fine), None);
        assert_eq!(agreement(&fine, &nan), None);
        let one_nan = e(vec![vec![1.0, f32::NAN], vec![0.0, 1.0]]);
        assert_eq!(agreement(&one_nan, &fine), None);
        let t = Tensor::from_f32("y", vec![4], &[1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(non_finite(&[t]).unwrap(), "output y holds 1 NaN and 2 ±Inf of 4 values");
        assert_eq!(non_finite(&[Tensor::from_f32("y", vec![1], &[0.5])]), None);
    }

    #[test]
    fn generations_agree_by_tokens_not_by_cosine() {
        let g = |tokens: Vec<i64>| Output::Generated(Generated { text: String::new(), tokens });
        let a = agreement(&g(vec![5, 6, 7, 8]), &g(vec![5, 6, 9, 8])).unwrap();
        assert_eq!((a.tokens, a.cosine, a.max_abs_error, a.top1), (Some((2, 0.75)), None, None, None));
        assert_eq!(agreement(&g(vec![1, 2]), &g(vec![1, 2])).unwrap().tokens, Some((2, 1.0)));
    }

    #[test]
    fn agreement_of_frames_and_embeddings() {
        let a = agreement(&Output::Frames(vec![0.1, 0.7, 0.49]), &Output::Frames(vec![0.2, 0.6, 0.51])).unwrap();
        assert_eq!(a.top1, Some(2.0 / 3.0));
        let e = |v: Vec<Vec<f32>>| Output::Embeddings { vectors: v, single: false };
        let same = agreement(
            &e(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.9, 0.1]]),
            &e(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.9, 0.1]]),
        )
        .unwrap();
        assert!(
            (same.cosine.unwrap() - 1.0).abs() < 1e-6 && same.max_abs_error == Some(0.0) && same.top1 == Some(1.0),
            "{same:?}"
        );
        let one = agreement(&e(vec![vec![1.0, 0.0]]), &e(vec![vec![0.0, 1.0]])).unwrap();
        assert_eq!((one.cosine, one.top1), (Some(0.0), None));
        assert!(
            agreement(&e(vec![vec![1.0]]), &Output::Frames(vec![0.1, 0.2])).is_none(),
            "mismatched shapes do not compare"
        );
    }
}
