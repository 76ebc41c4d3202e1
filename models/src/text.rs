//! Text embedding pre- and post-processing: tokenize with the model's own `tokenizer.json`
//! (HF tokenizers), then mean-pool the hidden states over real tokens and L2-normalise.

use std::path::Path;

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{ModelError, Result};

/// Token ids for a batch of sentences, padded to the longest: row-major [batch, tokens].
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub batch: usize,
    pub tokens: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    /// Sentences cut at `TextTokenizer::MAX_TOKENS`.
    pub truncated: usize,
}

pub struct TextTokenizer {
    tokenizer: Tokenizer,
}

impl TextTokenizer {
    /// Sentence-transformers truncates MiniLM inputs at 256 word pieces.
    pub const MAX_TOKENS: usize = 256;

    pub fn load(path: &Path) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: Self::MAX_TOKENS, ..Default::default() }))
            .map_err(|e| ModelError::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(TextTokenizer { tokenizer })
    }

    pub fn encode(&self, sentences: &[String]) -> Result<Encoded> {
        if sentences.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        let encodings =
            self.tokenizer.encode_batch(sentences.to_vec(), true).map_err(|e| ModelError::Tokenize(e.to_string()))?;
        let tokens = encodings.first().map(|e| e.len()).unwrap_or(0);
        let widen = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
        let mut out = Encoded {
            batch: encodings.len(),
            tokens,
            input_ids: Vec::with_capacity(encodings.len() * tokens),
            attention_mask: Vec::with_capacity(encodings.len() * tokens),
            token_type_ids: Vec::with_capacity(encodings.len() * tokens),
            truncated: encodings.iter().filter(|e| !e.get_overflowing().is_empty()).count(),
        };
        for e in &encodings {
            out.input_ids.extend(widen(e.get_ids()));
            out.attention_mask.extend(widen(e.get_attention_mask()));
            out.token_type_ids.extend(widen(e.get_type_ids()));
        }
        Ok(out)
    }
}

/// Mean of the hidden states of the tokens whose mask is 1, per sentence, optionally
/// L2-normalised. `hidden` is row-major [batch, tokens, dim].
pub fn mean_pool(hidden: &[f32], dims: &[usize], encoded: &Encoded, normalize: bool) -> Result<Vec<Vec<f32>>> {
    let shape_error = || ModelError::OutputShape { dims: dims.to_vec(), batch: encoded.batch, tokens: encoded.tokens };
    let [batch, tokens, dim] = dims else { return Err(shape_error()) };
    if *batch != encoded.batch || *tokens != encoded.tokens || hidden.len() != batch * tokens * dim {
        return Err(shape_error());
    }
    let mut pooled = Vec::with_capacity(*batch);
    for b in 0..*batch {
        let mut sum = vec![0f32; *dim];
        let mut count = 0f32;
        for t in 0..*tokens {
            if encoded.attention_mask[b * tokens + t] == 0 {
                continue;
            }
            count += 1.0;
            let row = &hidden[(b * tokens + t) * dim..(b * tokens + t + 1) * dim];
            sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        }
        // sentence-transformers clamps the count at 1e-9 to avoid dividing by zero.
        let count = count.max(1e-9);
        sum.iter_mut().for_each(|s| *s /= count);
        if normalize {
            let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            sum.iter_mut().for_each(|s| *s /= norm);
        }
        pooled.push(sum);
    }
    Ok(pooled)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(mask: Vec<i64>, batch: usize, tokens: usize) -> Encoded {
        Encoded {
            batch,
            tokens,
            input_ids: vec![0; mask.len()],
            token_type_ids: vec![0; mask.len()],
            attention_mask: mask,
            truncated: 0,
        }
    }

    #[test]
    fn pooling_ignores_padding_and_normalises() {
        // Two sentences, 3 tokens, dim 2; the second has one padding token.
        let hidden = [1.0, 0.0, 3.0, 0.0, 5.0, 0.0, 0.0, 2.0, 0.0, 4.0, 100.0, 100.0];
        let enc = encoded(vec![1, 1, 1, 1, 1, 0], 2, 3);
        let raw = mean_pool(&hidden, &[2, 3, 2], &enc, false).unwrap();
        assert_eq!(raw, vec![vec![3.0, 0.0], vec![0.0, 3.0]]);
        let unit = mean_pool(&hidden, &[2, 3, 2], &enc, true).unwrap();
        assert_eq!(unit, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let enc = encoded(vec![1, 1], 1, 2);
        assert!(mean_pool(&[0.0; 6], &[1, 3, 2], &enc, true).is_err());
        assert!(mean_pool(&[0.0; 4], &[1, 2], &enc, true).is_err());
    }

    #[test]
    fn cosine_of_orthogonal_and_parallel() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0])).abs() < 1e-7);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
    }
}
