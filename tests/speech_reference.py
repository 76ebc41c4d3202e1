"""Whisper's front end and greedy decoding, independently of webaccel: a numpy log-mel
spectrogram (as openai-whisper defines it: periodic Hann window, n_fft 400, hop 160, Slaney mel
filters as librosa builds them, log10, an 8-decade floor, (x + 4) / 4), and ctranslate2's greedy
transcript over those features. The Rust front end (models/src/speech.rs) is checked against
`log_mel`; the browser's transcript against `ct2_transcript`.
"""

import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
CHUNK_SAMPLES = 30 * SAMPLE_RATE
FRAMES = 3000


def read_wav_16k(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV as float32 in [-1, 1)."""
    with wave.open(str(path)) as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: want 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels, htk=False, norm="slaney"): [n_mels, 201]."""
    f_min, f_max = 0.0, SAMPLE_RATE / 2

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        mel = f / (200.0 / 3)
        logstep = np.log(6.4) / 27.0
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, mel)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        logstep = np.log(6.4) / 27.0
        return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def log_mel(samples: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """One chunk (at most 30 s) as Whisper's [n_mels, 3000] log-mel features."""
    if len(samples) > CHUNK_SAMPLES:
        raise ValueError("a chunk is at most 30 s")
    audio = np.zeros(CHUNK_SAMPLES, dtype=np.float64)
    audio[: len(samples)] = samples
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(padded[index] * window, axis=1)
    power = (np.abs(spectrum) ** 2)[:-1].T  # [201, 3000]: the last frame is dropped, as Whisper does
    mel = mel_filters(n_mels) @ power
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


def chunks(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i:i + CHUNK_SAMPLES] for i in range(0, max(len(samples), 1), CHUNK_SAMPLES)]


def ct2_transcript(model_dir: Path, samples: np.ndarray, prompt: list[int], max_length: int = 224) -> list[list[int]]:
    """ctranslate2's greedy token ids per 30 s chunk, without timestamps."""
    import ctranslate2

    model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32", intra_threads=1)
    out = []
    for chunk in chunks(samples):
        features = ctranslate2.StorageView.from_array(log_mel(chunk)[None])
        result = model.generate(features, [prompt], beam_size=1, max_length=max_length, return_scores=False)
        out.append(list(result[0].sequences_ids[0]))
    return out
