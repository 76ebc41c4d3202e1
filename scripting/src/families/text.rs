//! The text-embedding family (MiniLM and its kind): sentences in, through the model's own
//! `tokenizer.json`, padded into one batch; mean-pooled (and, where the model is trained for
//! it, L2-normalised) embeddings out, one per sentence.

use rhai::Dynamic;
use webaccel_browser_runtime::Tensor;
use webaccel_models::{mean_pool, TextProcessing, TextTokenizer};

use super::{output, strings, Family, Preparing};
use crate::error::ApiError;
use crate::inputs::{details, ModelInput, Source};
use crate::outputs::Output;

/// The sentences a `compare` cell of a text model gets when no input is given: two paraphrases
/// and two unrelated sentences, so the accuracy columns can compare nearest neighbours.
const DEFAULT_SENTENCES: [&str; 4] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The cat sits on the mat.",
    "Stock markets fell sharply today.",
];

impl Family for TextProcessing {
    fn default_input(&self) -> Option<Dynamic> {
        Some(Dynamic::from_array(DEFAULT_SENTENCES.iter().map(|s| Dynamic::from(s.to_string())).collect()))
    }

    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError> {
        let (sentences, single) = strings(cx.model, input, "a string or an array of strings")?;
        let path = cx.services.catalog.locate(&cx.services.models, &self.tokenizer)?;
        let encoded = cx.services.tokenizer(&path)?.encode(&sentences)?;
        let dims = vec![encoded.batch, encoded.tokens];
        let tensors = cx
            .inputs
            .iter()
            .map(|name| {
                let values = match name.as_str() {
                    "attention_mask" => &encoded.attention_mask,
                    "token_type_ids" => &encoded.token_type_ids,
                    _ => &encoded.input_ids,
                };
                Tensor::from_i64(name.clone(), dims.clone(), values)
            })
            .collect();
        let truncation = match encoded.truncated {
            0 => format!("none (every sentence fits in {} tokens)", TextTokenizer::MAX_TOKENS),
            n => format!("{n} of {} sentences cut at {} tokens", encoded.batch, TextTokenizer::MAX_TOKENS),
        };
        let details = details(&[
            (
                "batch",
                format!("{} sentences, padded to {} tokens; throughput counts sentences", encoded.batch, encoded.tokens),
            ),
            ("truncation", truncation),
        ]);
        Ok(ModelInput {
            tensors,
            items: encoded.batch,
            dims: vec![encoded.batch as u64, encoded.tokens as u64],
            source: Source::Sentences { encoded, single },
            sequence: None,
            generation: None,
            fetches: vec![self.output.clone()],
            details,
        })
    }

    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
        let Source::Sentences { encoded, single } = &input.source else {
            return Ok(Output::Tensors(outputs.to_vec()));
        };
        let hidden = output(outputs, &self.output)?;
        Ok(Output::Embeddings {
            vectors: mean_pool(&hidden.to_f32()?, &hidden.dims, encoded, self.normalize)?,
            single: *single,
        })
    }
}
