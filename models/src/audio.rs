//! Audio pre-processing for frame-wise models such as Silero VAD: read a WAV file (any rate,
//! any channel count), mix down to mono, resample to the model's rate, and cut it into frames
//! that each carry the tail of the previous frame as context.

use std::path::Path;

use rubato::{FftFixedIn, Resampler};

use crate::catalog::AudioProcessing;
use crate::error::{ModelError, Result};

/// Mono samples in [-1, 1] at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

pub fn read_wav(path: &Path) -> Result<Audio> {
    let bad = |e: hound::Error| ModelError::Audio { path: path.to_path_buf(), reason: e.to_string() };
    let mut reader = hound::WavReader::open(path).map_err(bad)?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<std::result::Result<_, _>>().map_err(bad)?,
        hound::SampleFormat::Int => {
            let full_scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 / full_scale))
                .collect::<std::result::Result<_, _>>()
                .map_err(bad)?
        }
    };
    let channels = spec.channels.max(1) as usize;
    let samples = interleaved.chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok(Audio { samples, rate: spec.sample_rate })
}

/// Resamples with rubato's FFT resampler (band-limited); the same rate is returned untouched.
pub fn resample(audio: Audio, rate: u32) -> Result<Audio> {
    if audio.rate == rate || audio.samples.is_empty() {
        return Ok(Audio { samples: audio.samples, rate });
    }
    let failed = |e: &dyn std::fmt::Display| ModelError::Resample(e.to_string());
    const CHUNK: usize = 1024;
    let mut resampler =
        FftFixedIn::<f32>::new(audio.rate as usize, rate as usize, CHUNK, 2, 1).map_err(|e| failed(&e))?;
    let delay = resampler.output_delay();
    let expected = (audio.samples.len() as u64 * rate as u64 / audio.rate as u64) as usize;
    let mut out = Vec::with_capacity(expected + delay + CHUNK);
    let mut chunks = audio.samples.chunks_exact(CHUNK);
    for chunk in chunks.by_ref() {
        out.extend(resampler.process(&[chunk], None).map_err(|e| failed(&e))?.remove(0));
    }
    out.extend(resampler.process_partial(Some(&[chunks.remainder()]), None).map_err(|e| failed(&e))?.remove(0));
    // Flush what the filter still holds, then drop its delay so sample 0 lines up.
    while out.len() < expected + delay {
        out.extend(resampler.process_partial::<&[f32]>(None, None).map_err(|e| failed(&e))?.remove(0));
    }
    Ok(Audio { samples: out[delay..delay + expected].to_vec(), rate })
}

/// The model's input rows: one per frame, `context` samples of the previous frame (zeros for
/// the first) followed by `frame` samples (the last frame zero-padded). Row-major
/// [frames, context + frame].
pub fn frames(samples: &[f32], p: &AudioProcessing) -> (Vec<f32>, usize) {
    let count = samples.len().div_ceil(p.frame).max(1);
    let width = p.context + p.frame;
    let mut rows = vec![0f32; count * width];
    for i in 0..count {
        let start = i * p.frame;
        let row = &mut rows[i * width..(i + 1) * width];
        if i > 0 {
            row[..p.context].copy_from_slice(&samples[start - p.context..start]);
        }
        let end = (start + p.frame).min(samples.len());
        row[p.context..p.context + (end - start)].copy_from_slice(&samples[start..end]);
    }
    (rows, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::RecurrentState;

    fn processing() -> AudioProcessing {
        AudioProcessing {
            sample_rate: 16000,
            frame: 4,
            context: 2,
            input: "input".into(),
            output: "output".into(),
            sample_rate_input: None,
            state: RecurrentState { input: "state".into(), output: "stateN".into(), dims: vec![2, 1, 128] },
        }
    }

    #[test]
    fn frames_carry_the_previous_tail_and_pad_the_last() {
        let samples: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let (rows, n) = frames(&samples, &processing());
        assert_eq!(n, 3);
        assert_eq!(&rows[0..6], &[0., 0., 1., 2., 3., 4.]);
        assert_eq!(&rows[6..12], &[3., 4., 5., 6., 7., 8.]);
        assert_eq!(&rows[12..18], &[7., 8., 9., 0., 0., 0.]);
    }

    #[test]
    fn wav_is_read_mixed_down_and_resampled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        // 0.5 s of a 440 Hz tone on the left channel only.
        for i in 0..24000 {
            let v = (0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48000.0).sin() * 32767.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        let audio = read_wav(&path).unwrap();
        assert_eq!((audio.rate, audio.samples.len()), (48000, 24000));
        let peak = audio.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.25).abs() < 0.01, "mono mix of a 0.5 tone and silence peaks at 0.25, got {peak}");
        let down = resample(audio, 16000).unwrap();
        assert_eq!(down.samples.len(), 8000);
        // The tone survives: compare with the ideal 16 kHz tone away from the edges. The
        // resampler's reported delay lines up to within about one 48 kHz sample (0.014 here:
        // 2π·440 Hz·21 µs·0.25), hence 0.02 and not float precision.
        let err = (1000..7000)
            .map(|i| (down.samples[i] - 0.25 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16000.0).sin()).abs())
            .fold(0f32, f32::max);
        assert!(err < 0.02, "resampled tone deviates by {err}");
    }

    #[test]
    fn a_file_that_is_not_wav_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        std::fs::write(&path, b"not a wav").unwrap();
        let err = read_wav(&path).unwrap_err().to_string();
        assert!(err.contains("x.wav"), "{err}");
    }
}
