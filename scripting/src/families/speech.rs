//! The speech-to-text family (Whisper): a WAV file or 16 kHz samples in, cut into 30 s chunks
//! and turned into log-mel features here (`webaccel_models::speech`); one timed run is one
//! whole transcription in the runtime: per chunk, the encoder, then greedy decoding on the
//! decoder fed the encoder's outputs (both sessions in the same page, the caches never leaving
//! it). Out come the transcript and its ids, and the figures speech users ask for: the
//! encoder's time, the decode rate and the real-time factor.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Map};
use webaccel_browser_runtime::{Generation, GenerationSample, Tensor};
use webaccel_models::speech::{self, SpeechTokenizer};
use webaccel_models::SpeechProcessing;
use webaccel_results::{median_p90, RunRecord};

use super::audio::samples_at;
use super::generation::{GenerateOptions, Generated};
use super::{output, Family, Preparing};
use crate::error::ApiError;
use crate::inputs::{ModelInput, Source};
use crate::outputs::Output;
use crate::services::Services;

/// The encoder's input, as `scripts/whisper_ct2.py` names it.
pub(crate) const FEATURES: &str = "input_features";

impl Family for SpeechProcessing {
    fn generates(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &Preparing, input: Dynamic) -> Result<ModelInput, ApiError> {
        prepare(cx.services, cx.model, self, input, cx.generate)
    }

    fn post_process(&self, outputs: &[Tensor], input: &ModelInput) -> Result<Output, ApiError> {
        match &input.source {
            Source::Speech { tokenizer, .. } => {
                Ok(Output::Transcribed(decode(tokenizer, &output(outputs, "tokens")?.to_i64()?)?))
            }
            _ => Ok(Output::Tensors(outputs.to_vec())),
        }
    }
}

/// The input as the runtimes take it: the features of every chunk, [chunks, n_mels, 3000], and
/// the decoding as a `Generation` whose encoder runs on each chunk.
fn prepare(
    services: &Services,
    model: &str,
    p: &SpeechProcessing,
    input: Dynamic,
    opts: &GenerateOptions,
) -> Result<ModelInput, ApiError> {
    if opts.chat.is_some() {
        return Err(ApiError::BadOption {
            function: "accelerate",
            key: "chat".into(),
            problem: format!("applies to language models; {model} transcribes speech (drop it)"),
        });
    }
    let tokenizer = services.speech_tokenizer(model, p)?;
    let s = &tokenizer.settings;
    let prompt = s.prompt(opts.language.as_deref())?;
    let room = s.max_length.saturating_sub(prompt.len());
    let max_new_tokens = opts.max_new_tokens.unwrap_or((s.max_length / 2) as u32);
    if max_new_tokens as usize > room {
        return Err(ApiError::BadOption {
            function: "accelerate",
            key: "max_new_tokens".into(),
            problem: format!(
                "is {max_new_tokens}, but {model}'s decoder has {} positions and the prompt takes {}: at most {room}",
                s.max_length,
                prompt.len()
            ),
        });
    }
    let samples = samples_at(model, input, speech::SAMPLE_RATE)?;
    let chunks = speech::chunks(&samples);
    let filters = speech::mel_filters(s.n_mels);
    let mut features = Vec::with_capacity(chunks.len() * s.n_mels * speech::FRAMES);
    for chunk in &chunks {
        features.extend(speech::log_mel(chunk, &filters)?);
    }
    let audio_seconds = samples.len() as f64 / f64::from(speech::SAMPLE_RATE);
    let tensor = Tensor::from_f32(FEATURES.to_string(), vec![chunks.len(), s.n_mels, speech::FRAMES], &features);
    let generation = Generation {
        prompt: prompt.clone(),
        max_new_tokens,
        stop: vec![s.end_of_text],
        layers: s.layers,
        kv_heads: s.kv_heads,
        head_dim: s.head_dim,
        sampling: opts.sampling(),
        suppress: s.suppress_ids.clone(),
        suppress_first: s.suppress_ids_begin.clone(),
        encoder_input: Some(FEATURES.to_string()),
    };
    let mut details = BTreeMap::new();
    details.insert(
        "audio".into(),
        format!(
            "{} samples at 16 kHz ({audio_seconds:.2} s) in {} chunk(s) of at most 30 s, each padded to 30 s",
            samples.len(),
            chunks.len()
        ),
    );
    details.insert(
        "front end".into(),
        format!(
            "Whisper's log-mel: periodic Hann window of {}, hop {}, {} Slaney mel bands, log10, 8-decade floor, (x+4)/4 \
             (computed by webaccel, the same in every runtime)",
            speech::N_FFT,
            speech::HOP,
            s.n_mels
        ),
    );
    details.insert(
        "decoding".into(),
        format!(
            "{} per chunk, no timestamps, CTranslate2's suppressed tokens; prompt {prompt:?}; at most {max_new_tokens} tokens \
             or the end of text (id {})",
            if generation.sampling.is_some() { "seeded sampling" } else { "greedy" },
            s.end_of_text
        ),
    );
    details.insert(
        "timing".into(),
        "one timed run is the whole transcription (every chunk's encoder and decoding), in the runtime; the \
         real-time factor is audio seconds per second of that"
            .into(),
    );
    Ok(ModelInput {
        tensors: vec![tensor],
        items: chunks.len(),
        dims: vec![],
        source: Source::Speech { prompt_tokens: prompt.len(), audio_seconds, chunks: chunks.len(), tokenizer },
        sequence: None,
        generation: Some(generation),
        fetches: vec![],
        details,
    })
}

/// The encoder's outputs: every decoder layer's cross-attention keys and values, which the
/// decoder reads at each step (kept in GPU buffers on webgpu).
pub(crate) fn encoder_outputs(g: &Generation) -> Vec<String> {
    (0..g.layers).flat_map(|i| ["key", "value"].map(|kind| format!("cross_key_values.{i}.{kind}"))).collect()
}

fn decode(tokenizer: &Arc<SpeechTokenizer>, tokens: &[i64]) -> Result<Generated, ApiError> {
    Ok(Generated { text: tokenizer.decode(tokens)?, tokens: tokens.to_vec() })
}

/// A transcription's own figures, besides its decoding's (`GenerationStats` over the chunks).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpeechStats {
    pub audio_seconds: f64,
    pub chunks: usize,
    /// The encoder's time per transcription (every chunk), median over the timed runs.
    pub encoder_ms: Option<f64>,
    /// Audio seconds per second of the median timed run.
    pub real_time_factor: Option<f64>,
    /// Each chunk's time (encoder, then decoding) in the last timed run.
    pub chunk_ms: Vec<f64>,
}

impl SpeechStats {
    /// `samples` holds `chunks` samples per timed run, in order; `run_ms` the runs' times.
    pub fn of(samples: &[GenerationSample], chunks: usize, audio_seconds: f64, run_ms: &[f64]) -> Self {
        let per_run: Vec<&[GenerationSample]> = samples.chunks(chunks.max(1)).collect();
        let encoder: Vec<f64> =
            per_run.iter().map(|run| run.iter().filter_map(|s| s.encoder_ms).sum::<f64>()).collect();
        let median_run = median_p90(run_ms).0;
        SpeechStats {
            audio_seconds,
            chunks,
            encoder_ms: median_p90(&encoder).0,
            real_time_factor: median_run.filter(|&ms| ms > 0.0).map(|ms| audio_seconds / (ms / 1000.0)),
            chunk_ms: per_run
                .last()
                .map(|run| {
                    run.iter().map(|s| s.encoder_ms.unwrap_or(0.0) + s.token_at_ms.last().copied().unwrap_or(0.0)).collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn fill(&self, row: &mut RunRecord) {
        row.audio_seconds = Some(self.audio_seconds);
        row.chunks = Some(self.chunks as i32);
        row.encoder_ms = self.encoder_ms;
        row.real_time_factor = self.real_time_factor;
        row.chunk_ms = Some(self.chunk_ms.clone());
        // A transcription's throughput is audio seconds per second.
        row.throughput_items_per_s = self.real_time_factor;
    }

    /// The figures as a script reads them off a result (`r.encoder_ms`, ...); unmeasured ones are ().
    pub fn insert_into(&self, m: &mut Map) {
        let f = |v: Option<f64>| v.map_or(Dynamic::UNIT, Dynamic::from_float);
        m.insert("audio_seconds".into(), Dynamic::from_float(self.audio_seconds));
        m.insert("chunks".into(), Dynamic::from_int(self.chunks as i64));
        m.insert("encoder_ms".into(), f(self.encoder_ms));
        m.insert("real_time_factor".into(), f(self.real_time_factor));
        m.insert("chunk_ms".into(), Dynamic::from_array(self.chunk_ms.iter().map(|&v| Dynamic::from_float(v)).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_group_chunks_by_run() {
        let chunk = |enc: f64, last: f64| GenerationSample {
            tokens: vec![1, 2],
            prefill_ms: 1.0,
            token_at_ms: vec![2.0, last],
            encoder_ms: Some(enc),
        };
        // Two runs of two chunks each, 60 s of audio.
        let samples = vec![chunk(100.0, 50.0), chunk(100.0, 50.0), chunk(300.0, 10.0), chunk(300.0, 10.0)];
        let s = SpeechStats::of(&samples, 2, 60.0, &[2000.0, 2000.0]);
        assert_eq!(s.encoder_ms, Some(400.0)); // median of 200 and 600
        assert_eq!(s.real_time_factor, Some(30.0));
        assert_eq!(s.chunk_ms, vec![310.0, 310.0]);
    }
}
