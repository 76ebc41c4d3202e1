//! webaccel's log-mel front end (models/src/speech.rs) against the numpy one in
//! tests/speech_reference.py, run in the suite's venv on the same samples.

use std::path::PathBuf;
use std::process::Command;

use webaccel_models::speech::{chunks, log_mel, mel_filters, FRAMES, SAMPLE_RATE};

/// Features are (log10 + 4) / 4: a difference of 1e-4 is 0.04% of one decade. Both sides
/// compute in f64 and round to f32 at the end; what is left is summation order in the FFT.
const TOLERANCE: f32 = 1e-4;

fn venv_python() -> PathBuf {
    let cache = std::env::var_os("WEBACCEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::cache_dir().expect("a cache directory").join("webaccel"));
    let python = cache.join("venv/bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/setup.sh (it makes the test venv)", python.display());
    python
}

/// A deterministic test signal: a chirp from 100 Hz to 6 kHz, a 440 Hz tone, and LCG noise,
/// with a quiet gap (so the 8-decade floor is exercised).
fn signal(seconds: f64) -> Vec<f32> {
    let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let mut state: u32 = 12345;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5) * 0.02;
            let chirp = (2.0 * std::f64::consts::PI * (100.0 * t + 0.5 * (5900.0 / seconds) * t * t)).sin();
            let gap = if (2.0..2.5).contains(&(t % 10.0)) { 0.0 } else { 1.0 };
            ((0.3 * chirp + 0.2 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + noise) * gap) as f32
        })
        .collect()
}

#[test]
fn log_mel_matches_numpy_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let samples = signal(41.0); // two chunks: 30 s and 11 s
    let filters = mel_filters(80);
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests");
    for (c, chunk) in chunks(&samples).into_iter().enumerate() {
        let (input, output) = (dir.path().join(format!("in{c}.f32")), dir.path().join(format!("out{c}.f32")));
        std::fs::write(&input, chunk.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let status = Command::new(venv_python())
            .arg("-c")
            .arg(
                "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import speech_reference as r; \
                 r.log_mel(np.fromfile(sys.argv[2], '<f4')).astype('<f4').tofile(sys.argv[3])",
            )
            .args([&tests, &input, &output])
            .status()
            .unwrap();
        assert!(status.success(), "the numpy front end failed");
        let want: Vec<f32> =
            std::fs::read(&output).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let got = log_mel(chunk, &filters).unwrap();
        assert_eq!(got.len(), 80 * FRAMES);
        assert_eq!(want.len(), got.len());
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < TOLERANCE, "chunk {c}: max |rust - numpy| = {worst}");
        // Not a constant: the features span the floor to the peak.
        let (lo, hi) = got.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(hi - lo > 1.5, "chunk {c}: features span only {lo}..{hi}");
    }
}
