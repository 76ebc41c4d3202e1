//! The audio-frames family (Silero VAD and its kind): a WAV file or samples in, mixed down and
//! resampled to the model's rate, cut into frames, each with the context before it, run in
//! order as one recurrent sequence whose state output feeds back; one value per frame out (a
//! speech probability).

use std::collections::BTreeMap;
use std::path::Path;

use rhai::{Array, Dynamic};
use webaccel_browser_runtime::{Sequence, Tensor};
use webaccel_models::{audio, AudioProcessing};

use super::{output, Family, Preparing};
use crate::error::ApiError;
use crate::inputs::{details, ModelInput, Source};
use crate::outputs::Output;

impl Family for AudioProcessing {
    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError> {
        let p = self;
        let samples = samples_at(cx.model, input, p.sample_rate)?;
        let sample_count = samples.len();
        let (rows, count) = audio::frames(&samples, p);
        let state_len: usize = p.state.dims.iter().product();
        let mut tensors = vec![
            Tensor::from_f32(p.input.clone(), vec![count, p.context + p.frame], &rows),
            Tensor::from_f32(p.state.input.clone(), p.state.dims.clone(), &vec![0.0; state_len]),
        ];
        if let Some(sr) = &p.sample_rate_input {
            tensors.push(Tensor::from_i64(sr.clone(), vec![], &[i64::from(p.sample_rate)]));
        }
        Ok(ModelInput {
            tensors,
            source: Source::Frames { count },
            items: count,
            dims: vec![],
            sequence: Some(Sequence {
                over: p.input.clone(),
                carry: BTreeMap::from([(p.state.output.clone(), p.state.input.clone())]),
            }),
            generation: None,
            details: details(&[
                (
                    "audio",
                    format!(
                        "{sample_count} samples at {} Hz in {count} frames of {} samples, each with the {} before it",
                        p.sample_rate, p.frame, p.context
                    ),
                ),
                ("batch", format!("{count} frames, run in order carrying state; one timed run is the whole sequence; throughput counts frames")),
            ]),
            fetches: vec![p.output.clone()],
        })
    }

    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
        match input.source {
            Source::Frames { .. } => Ok(Output::Frames(output(outputs, &self.output)?.to_f32()?)),
            _ => Ok(Output::Tensors(outputs.to_vec())),
        }
    }
}

/// Mono samples at `rate` Hz from a WAV path (mixed down and resampled) or an array of samples
/// already at that rate; never empty.
pub(crate) fn samples_at(model: &str, input: Dynamic, rate: u32) -> Result<Vec<f32>, ApiError> {
    let expected = format!("a WAV file path, or an array of samples in [-1, 1] at {rate} Hz");
    let bad = || ApiError::BadInput { model: model.into(), expected: expected.clone() };
    let samples = if input.is_string() {
        let path = input.into_string().map_err(|_| bad())?;
        audio::resample(audio::read_wav(Path::new(&path))?, rate)?.samples
    } else {
        let array: Array = input.try_cast().ok_or_else(bad)?;
        // Already at the model's rate, as the expected input says.
        floats(&array).ok_or_else(bad)?
    };
    if samples.is_empty() {
        return Err(ApiError::BadInput { model: model.into(), expected: format!("{expected}, with at least one sample") });
    }
    Ok(samples)
}

fn floats(array: &Array) -> Option<Vec<f32>> {
    array.iter().map(|v| v.as_float().ok().map(|f| f as f32).or_else(|| v.as_int().ok().map(|i| i as f32))).collect()
}
