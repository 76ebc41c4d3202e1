//! One generation on a native session, as the page makes one (`web/runtime.js`'s generator):
//! prefill on the prompt, then a token at a time, the KV cache carried from `present.*` to
//! `past_key_values.*` as onnxruntime values that never become webaccel tensors. Times are
//! taken around the same steps as in the page.

use std::time::Instant;

use ort::value::{DynValue, Tensor as OrtTensor};
use webaccel_tensor::generation::{choose, Mulberry32};
use webaccel_tensor::{DType, Generation, GenerationSample, Tensor};

use crate::error::NativeError;
use crate::session::NativeSession;

fn ids(name: &str, values: Vec<i64>) -> Result<DynValue, NativeError> {
    let n = values.len() as i64;
    Ok(OrtTensor::from_array((vec![1, n], values))
        .map_err(|e| NativeError::Input { name: name.into(), problem: e.to_string() })?
        .into_dyn())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The generated ids as a [1, N] int64 tensor.
pub(crate) fn tokens_tensor(tokens: &[i64]) -> Tensor {
    let data = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    Tensor { name: "tokens".into(), dtype: DType::Int64, dims: vec![1, tokens.len()], data }
}

impl NativeSession {
    /// One whole generation, with `extra` fed to every step as well (an encoder's outputs).
    pub(crate) fn generate(&mut self, g: &Generation, extra: &[(String, DynValue)]) -> Result<GenerationSample, NativeError> {
        let mut draw = Mulberry32::new(g.sampling.map_or(0, |s| s.seed));
        let n = g.prompt.len();
        let mut feeds: Vec<(String, DynValue)> = vec![
            ("input_ids".into(), ids("input_ids", g.prompt.clone())?),
            ("attention_mask".into(), ids("attention_mask", vec![1; n])?),
            ("position_ids".into(), ids("position_ids", (0..n as i64).collect())?),
        ];
        for i in 0..g.layers {
            for kind in ["key", "value"] {
                let name = format!("past_key_values.{i}.{kind}");
                let empty = OrtTensor::from_array((vec![1, g.kv_heads as i64, 0, g.head_dim as i64], Vec::<f32>::new()))
                    .map_err(|e| NativeError::Input { name: name.clone(), problem: e.to_string() })?;
                feeds.push((name, empty.into_dyn()));
            }
        }
        let t0 = Instant::now();
        let mut prefill_ms = None;
        let mut sample = GenerationSample::default();
        let mut total = n;
        loop {
            let mut out = self
                .session
                .run(feeds.iter().chain(extra).map(|(k, v)| (k.as_str(), v.view())).collect::<Vec<_>>())?;
            prefill_ms.get_or_insert_with(|| ms(t0));
            let logits = out.get("logits").ok_or_else(|| NativeError::Run("the model produced no logits".into()))?;
            let (shape, values) = logits.try_extract_tensor::<f32>()?;
            let (steps, vocab) = (shape[1] as usize, shape[2] as usize);
            let mut row = values[(steps - 1) * vocab..steps * vocab].to_vec();
            g.mask_suppressed(&mut row, sample.tokens.len());
            let token = choose(&row, g.sampling.as_ref(), &mut draw);
            sample.tokens.push(token);
            sample.token_at_ms.push(ms(t0));
            if g.stop.contains(&token) || sample.tokens.len() >= g.max_new_tokens as usize {
                break;
            }
            let mut next: Vec<(String, DynValue)> = vec![
                ("input_ids".into(), ids("input_ids", vec![token])?),
                ("attention_mask".into(), ids("attention_mask", vec![1; total + 1])?),
                ("position_ids".into(), ids("position_ids", vec![total as i64])?),
            ];
            for i in 0..g.layers {
                for kind in ["key", "value"] {
                    let present = out
                        .remove(format!("present.{i}.{kind}"))
                        .ok_or_else(|| NativeError::Run(format!("the model produced no present.{i}.{kind}")))?;
                    next.push((format!("past_key_values.{i}.{kind}"), present));
                }
            }
            drop(out);
            feeds = next;
            total += 1;
        }
        sample.prefill_ms = prefill_ms.unwrap_or(0.0);
        Ok(sample)
    }

    /// An encoder-decoder model's inference: per chunk of `features` (its first dimension), the
    /// encoder's run, then a generation fed its outputs. The chunks' tokens are concatenated.
    pub(crate) fn transcribe(
        &mut self,
        encoder: &mut NativeSession,
        g: &Generation,
        features: &Tensor,
    ) -> Result<(Vec<GenerationSample>, Tensor), NativeError> {
        let chunks = features.dims.first().copied().unwrap_or(0);
        let per_chunk = features.data.len() / chunks.max(1);
        let mut samples = Vec::with_capacity(chunks);
        for c in 0..chunks {
            let mut dims = features.dims.clone();
            dims[0] = 1;
            let chunk = Tensor {
                name: features.name.clone(),
                dtype: features.dtype,
                dims,
                data: features.data[c * per_chunk..(c + 1) * per_chunk].to_vec(),
            };
            let value = crate::values::to_value(&chunk)?;
            let t0 = Instant::now();
            let mut out = encoder.session.run(vec![(chunk.name.as_str(), value.view())])?;
            let encoder_ms = ms(t0);
            let mut extra = Vec::with_capacity(encoder.output_names.len());
            for name in &encoder.output_names {
                let value = out
                    .remove(name.as_str())
                    .ok_or_else(|| NativeError::Run(format!("the encoder produced no {name}")))?;
                extra.push((name.clone(), value));
            }
            drop(out);
            let mut sample = self.generate(g, &extra)?;
            sample.encoder_ms = Some(encoder_ms);
            samples.push(sample);
        }
        let tokens: Vec<i64> = samples.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        Ok((samples, tokens_tensor(&tokens)))
    }
}
