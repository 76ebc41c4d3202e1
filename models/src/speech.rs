//! Speech to text (Whisper): the log-mel front end, the transcriber's settings and tokenizer,
//! and the word error rate transcripts are compared by.
//!
//! The front end is Whisper's own definition (openai-whisper's `log_mel_spectrogram`): 16 kHz
//! mono, each 30 s chunk zero-padded to 480,000 samples, a reflect-padded STFT with a periodic
//! Hann window of 400 samples and a hop of 160, power spectra through the Slaney-normalised mel
//! filters librosa builds, log10 floored at 1e-10, then at 8 decades below the chunk's peak,
//! and `(x + 4) / 4`. `tests/speech_reference.py` computes the same in numpy, and the test
//! below compares the two.

use std::collections::BTreeMap;
use std::path::Path;

use realfft::RealFftPlanner;
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};

pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Samples in one chunk: Whisper's encoder sees 30 s at a time.
pub const CHUNK_SAMPLES: usize = 30 * SAMPLE_RATE as usize;
/// Frames per chunk (the STFT gives one more; Whisper drops the last).
pub const FRAMES: usize = CHUNK_SAMPLES / HOP;

/// What a transcriber needs besides the graphs (`scripts/whisper_ct2.py`'s settings_json).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub multilingual: bool,
    pub start_of_transcript: i64,
    pub transcribe: Option<i64>,
    pub no_timestamps: i64,
    pub end_of_text: i64,
    /// Language code -> its token, for a multilingual model.
    pub languages: BTreeMap<String, i64>,
    /// Never chosen (CTranslate2's `suppress_ids`).
    pub suppress_ids: Vec<i64>,
    /// Not chosen as the first token (a blank, the end of text).
    pub suppress_ids_begin: Vec<i64>,
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    /// The decoder's positions: prompt and generated tokens together.
    pub max_length: usize,
    pub n_mels: usize,
    pub frames: usize,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| ModelError::Settings { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let s: Settings = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if s.frames != FRAMES {
            return Err(bad(format!("the encoder takes {} frames; this front end makes {FRAMES}", s.frames)));
        }
        Ok(s)
    }

    /// The decoder's prompt: start of transcript, the language and task for a multilingual
    /// model, and no timestamps.
    pub fn prompt(&self, language: Option<&str>) -> Result<Vec<i64>> {
        let mut ids = vec![self.start_of_transcript];
        if self.multilingual {
            let code = language.unwrap_or("en");
            let id = self.languages.get(code).ok_or_else(|| ModelError::UnknownLanguage {
                language: code.to_string(),
                valid: self.languages.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
            ids.push(*id);
            ids.extend(self.transcribe);
        } else if let Some(code) = language.filter(|c| *c != "en") {
            return Err(ModelError::EnglishOnly { language: code.to_string() });
        }
        ids.push(self.no_timestamps);
        Ok(ids)
    }
}

/// A speech model's tokenizer (for decoding what it generates) and settings.
#[derive(Debug)]
pub struct SpeechTokenizer {
    tokenizer: Tokenizer,
    pub settings: Settings,
}

impl SpeechTokenizer {
    pub fn load(tokenizer: &Path, settings: &Path) -> Result<Self> {
        let loaded = Tokenizer::from_file(tokenizer)
            .map_err(|e| ModelError::Tokenizer { path: tokenizer.to_path_buf(), reason: e.to_string() })?;
        Ok(SpeechTokenizer { tokenizer: loaded, settings: Settings::load(settings)? })
    }

    /// Generated ids as text, special tokens left out, with the leading space Whisper's
    /// byte-level tokens carry trimmed.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().filter_map(|&i| u32::try_from(i).ok()).collect();
        let text = self.tokenizer.decode(&ids, true).map_err(|e| ModelError::Tokenize(e.to_string()))?;
        Ok(text.trim().to_string())
    }
}

/// Mono 16 kHz samples cut into chunks of at most 30 s (an empty input is one empty chunk).
pub fn chunks(samples: &[f32]) -> Vec<&[f32]> {
    if samples.is_empty() {
        return vec![samples];
    }
    samples.chunks(CHUNK_SAMPLES).collect()
}

/// Whisper's mel filter bank: librosa.filters.mel(sr=16000, n_fft=400, n_mels, htk=False,
/// norm="slaney"), [n_mels][201].
pub fn mel_filters(n_mels: usize) -> Vec<Vec<f64>> {
    // Slaney's mel scale: linear below 1 kHz, logarithmic above.
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| if f >= min_log_hz { min_log_mel + (f / min_log_hz).ln() / logstep } else { f / f_sp };
    let mel_to_hz = |m: f64| if m >= min_log_mel { min_log_hz * (logstep * (m - min_log_mel)).exp() } else { m * f_sp };
    let bins = N_FFT / 2 + 1;
    let nyquist = f64::from(SAMPLE_RATE) / 2.0;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| nyquist * i as f64 / (bins - 1) as f64).collect();
    let top = hz_to_mel(nyquist);
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64)).collect();
    (0..n_mels)
        .map(|i| {
            let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let norm = 2.0 / (hi - lo);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - lo) / (mid - lo);
                    let upper = (hi - f) / (hi - mid);
                    lower.min(upper).max(0.0) * norm
                })
                .collect()
        })
        .collect()
}

/// One chunk (at most 30 s of 16 kHz samples) as Whisper's log-mel features, [n_mels × 3000]
/// row-major.
pub fn log_mel(samples: &[f32], filters: &[Vec<f64>]) -> Result<Vec<f32>> {
    if samples.len() > CHUNK_SAMPLES {
        return Err(ModelError::FrontEnd(format!(
            "a chunk is at most {CHUNK_SAMPLES} samples (30 s); cut the audio with speech::chunks"
        )));
    }
    let half = N_FFT / 2;
    // The chunk padded to 30 s with zeros, then reflect-padded by half a window on each side
    // (numpy's "reflect": the edge sample is not repeated).
    let mut audio = vec![0.0f64; CHUNK_SAMPLES];
    for (a, &s) in audio.iter_mut().zip(samples) {
        *a = f64::from(s);
    }
    let mut padded = Vec::with_capacity(CHUNK_SAMPLES + N_FFT);
    padded.extend((1..=half).rev().map(|i| audio[i]));
    padded.extend_from_slice(&audio);
    padded.extend((0..half).map(|i| audio[CHUNK_SAMPLES - 2 - i]));
    let window: Vec<f64> =
        (0..N_FFT).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()).collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
    let (mut frame, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let n_mels = filters.len();
    let mut mel = vec![0.0f64; n_mels * FRAMES];
    let mut power = vec![0.0f64; N_FFT / 2 + 1];
    for t in 0..FRAMES {
        for (i, slot) in frame.iter_mut().enumerate() {
            *slot = padded[t * HOP + i] * window[i];
        }
        fft.process(&mut frame, &mut spectrum).map_err(|e| ModelError::FrontEnd(e.to_string()))?;
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, filter) in filters.iter().enumerate() {
            mel[m * FRAMES + t] = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
        }
    }
    let log: Vec<f64> = mel.iter().map(|&v| v.max(1e-10).log10()).collect();
    let floor = log.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 8.0;
    Ok(log.iter().map(|&v| ((v.max(floor) + 4.0) / 4.0) as f32).collect())
}

/// A transcript's words as they are compared: lower case, punctuation dropped (apostrophes
/// inside words kept).
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            let kept: String = w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect();
            kept.trim_matches('\'').to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference`: (substitutions + deletions +
/// insertions) / reference words, over `words`. 0 for two empty transcripts, 1 per inserted
/// word against an empty reference.
pub fn word_error_rate(hypothesis: &str, reference: &str) -> f64 {
    let (h, r) = (words(hypothesis), words(reference));
    if r.is_empty() {
        return h.len() as f64;
    }
    // Levenshtein distance over words, one row at a time.
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitute = previous[j] + usize::from(rw != hw);
            row[j + 1] = substitute.min(previous[j + 1] + 1).min(row[j] + 1);
        }
        previous = row;
    }
    previous[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_slaney_triangles() {
        let f = mel_filters(80);
        assert_eq!((f.len(), f[0].len()), (80, 201));
        // Each filter is one triangle: non-negative, peaked once, zero far from its centre.
        for row in &f {
            assert!(row.iter().all(|&w| w >= 0.0));
            let peak = row.iter().cloned().fold(0.0, f64::max);
            assert!(peak > 0.0);
        }
        // Slaney normalisation: each triangle's area in Hz is 1 (to within the bin spacing).
        let bin_hz = 8000.0 / 200.0;
        let area: f64 = f[40].iter().sum::<f64>() * bin_hz;
        assert!((area - 1.0).abs() < 0.1, "area {area}");
    }

    #[test]
    fn silence_is_the_floor_and_a_tone_lights_its_band() {
        let filters = mel_filters(80);
        let silent = log_mel(&[0.0; 16_000], &filters).unwrap();
        assert_eq!(silent.len(), 80 * FRAMES);
        assert!(silent.iter().all(|&v| (v - (-10.0 + 4.0) / 4.0).abs() < 1e-6));
        // A 1 kHz tone for 1 s: the band holding 1 kHz is the loudest in its frames.
        let tone: Vec<f32> = (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5).collect();
        let feats = log_mel(&tone, &filters).unwrap();
        let frame = 50;
        let loudest = (0..80).max_by(|&a, &b| feats[a * FRAMES + frame].total_cmp(&feats[b * FRAMES + frame])).unwrap();
        let centre = |m: usize| filters[m].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as f64 * 40.0;
        assert!((centre(loudest) - 1000.0).abs() < 100.0, "band {loudest} centred at {} Hz", centre(loudest));
        assert!(log_mel(&vec![0.0; CHUNK_SAMPLES + 1], &filters).is_err());
    }

    #[test]
    fn chunks_are_30_s() {
        let long = vec![0.0f32; CHUNK_SAMPLES * 2 + 5];
        let c = chunks(&long);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![CHUNK_SAMPLES, CHUNK_SAMPLES, 5]);
        assert_eq!(chunks(&[]).len(), 1);
    }

    #[test]
    fn word_error_rate_counts_edits_over_reference_words() {
        assert_eq!(word_error_rate("The quick brown fox.", "the quick brown fox"), 0.0);
        assert_eq!(word_error_rate("the quick fox", "the quick brown fox"), 0.25);
        assert_eq!(word_error_rate("a the quick brown fox", "the quick brown fox"), 0.25);
        assert_eq!(word_error_rate("the slow brown fox", "the quick brown fox"), 0.25);
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate("it's", "it's"), 0.0);
    }
}
