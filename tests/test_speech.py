"""Speech to text (Whisper tiny.en, and multilingual Whisper base with `language:`): the
converted graphs against ctranslate2 on the packaged CTranslate2 file, and transcripts from the
browser against native onnxruntime and ctranslate2.

The clips are spoken by espeak-ng (Debian) and resampled to 16 kHz by sox, so webaccel's
front end (Rust) and the numpy one (tests/speech_reference.py, which ctranslate2 is fed) start
from the same samples.
"""

import json
import subprocess

import numpy as np
import pytest

import reference
import speech_reference as sr
from conftest import last_json_line

MODEL = "whisper-tiny.en"
BASE = "whisper-base"
# tiny.en hears these words as written when espeak-ng's "en" voice speaks them at 130 words a minute.
SHORT = "Browsers can run speech models today. This sentence was spoken by a computer."
LONG = (
    "Web browsers now run machine learning models on their own. A page can load a speech model, turn the "
    "microphone's samples into features, and decode the words it hears, all without a server. This test reads a "
    "longer passage aloud, so that the transcriber has to cut the audio into pieces of thirty seconds. Each piece "
    "goes through the encoder on its own, and the decoder writes the words of that piece. The timings of every "
    "piece are kept, so a user can see where the time went. Numbers that do not come from a real run are never "
    "shown. The quick brown fox jumps over the lazy dog, and the five boxing wizards jump quickly."
)


# Whisper base hears this nearly as written ("haces", "mafid") from espeak-ng's Spanish voice
# at 110 words a minute; its French voice at any speed came out garbled, so the test is Spanish.
SPANISH = "Hola a todos. Hoy hace buen tiempo en Madrid."


def speak(text, path, voice="en", speed=130):
    raw = path.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    return {
        "short": speak(SHORT, d / "short.wav"),
        "long": speak(LONG, d / "long.wav"),
        "spanish": speak(SPANISH, d / "spanish.wav", "es", 110),
    }


def settings(model=MODEL):
    return json.loads(reference.sidecar(model, "settings").read_text())


def model_dir(model=MODEL):
    return reference.packaged_path(reference.spec(model)["source"]).parent


def prompt(model=MODEL, language=None):
    """The decoder's prompt, from the settings file's ids: a multilingual model's names the
    language and the task."""
    s = settings(model)
    if s["multilingual"]:
        return [s["start_of_transcript"], s["languages"][language or "en"], s["transcribe"], s["no_timestamps"]]
    return [s["start_of_transcript"], s["no_timestamps"]]


def without_end(tokens, model=MODEL):
    return [t for t in tokens if t != settings(model)["end_of_text"]]


def onnx_greedy(samples, precision, model=MODEL, language=None):
    """Greedy decoding on the converted graphs in onnxruntime (no webaccel code), numpy features."""
    s = settings(model)
    enc = reference._session(str(reference.encoder_path(model, precision)), 2)
    dec = reference._session(str(reference.model_path(model, precision)), 2)
    out = []
    for chunk in sr.chunks(samples):
        cross = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"input_features": sr.log_mel(chunk, s["n_mels"])[None]})))
        ids = prompt(model, language)
        feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), np.int64), "position_ids": np.arange(len(ids))[None]}
        for i in range(s["layers"]):
            for kind in ("key", "value"):
                feeds[f"past_key_values.{i}.{kind}"] = np.zeros((1, s["kv_heads"], 0, s["head_dim"]), np.float32)
        tokens, total = [], len(ids)
        while len(tokens) < s["max_length"] // 2:
            res = dict(zip([o.name for o in dec.get_outputs()], dec.run(None, {**feeds, **cross})))
            logits = res["logits"][0, -1].copy()
            logits[s["suppress_ids"]] = -np.inf
            if not tokens:
                logits[s["suppress_ids_begin"]] = -np.inf
            token = int(np.argmax(logits))
            if token == s["end_of_text"]:
                break
            tokens.append(token)
            feeds = {"input_ids": np.array([[token]]), "attention_mask": np.ones((1, total + 1), np.int64), "position_ids": np.array([[total]])}
            for i in range(s["layers"]):
                for kind in ("key", "value"):
                    feeds[f"past_key_values.{i}.{kind}"] = res[f"present.{i}.{kind}"]
            total += 1
        out.append(tokens)
    return out


def test_converted_graphs_transcribe_as_ctranslate2_does(clips):
    """The fp32 graphs, greedy in onnxruntime, give ctranslate2's tokens on the same features,
    chunk by chunk; the fp16 graphs stay within a stated word error rate of them."""
    for name in ("short", "long"):
        samples = sr.read_wav_16k(clips[name])
        want = sr.ct2_transcript(model_dir(), samples, prompt())
        assert len(want) == (2 if name == "long" else 1)
        assert onnx_greedy(samples, 32) == want, name
    samples = sr.read_wav_16k(clips["short"])
    tok = reference._tokenizer(str(reference.packaged_path(reference.spec(MODEL)["processing"]["tokenizer"])))
    half = tok.decode(onnx_greedy(samples, 16)[0])
    full = tok.decode(sr.ct2_transcript(model_dir(), samples, prompt())[0])
    # fp16 arithmetic may change a word of espeak's synthetic speech; more would be a broken graph.
    assert wer(half, full) <= 0.15, (half, full)


def wer(hyp, ref):
    h, r = hyp.lower().split(), ref.lower().split()
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r):
        prev, d[0] = d[0], i + 1
        for j, hw in enumerate(h):
            prev, d[j + 1] = d[j + 1], min(d[j + 1] + 1, d[j] + 1, prev + (rw != hw))
    return d[len(h)] / max(len(r), 1)


def transcribe(run_script, cells, clip, extra="", model=MODEL):
    """Each (platform, browser, precision) cell on `clip` in one `webaccel run`."""
    lines = []
    for platform, browser, precision in cells:
        lines.append(
            f'let r = accelerate("{model}", {json.dumps(str(clip))}, #{{platform: "{platform}", browser: "{browser}", '
            f"precision: {precision}, runs: 1, warmup: 0, warmup_s: 0, precompile_shaders: false{extra}}});\n"
            f'print(#{{key: ["{platform}", "{browser}", {precision}], text: r.output, tokens: r.tokens, '
            "encoder_ms: r.encoder_ms, rtf: r.real_time_factor, decode: r.decode_tokens_per_s, chunks: r.chunk_ms, "
            "audio: r.audio_seconds, accuracy: r.accuracy, platform: r.platform}.to_json());"
        )
    out = run_script("\n".join(lines), timeout=1800).stdout.strip().splitlines()
    return {tuple(r["key"]): r for r in map(json.loads, [l for l in out if l.startswith("{")])}


def test_browser_transcript_equals_native_and_ctranslate2(run_script, clips):
    """The short clip on wasm (Chromium) and natively: the same tokens as ctranslate2, the same
    text, and the speech figures from the run; the wasm row's word error rate against native is 0."""
    samples = sr.read_wav_16k(clips["short"])
    want = sr.ct2_transcript(model_dir(), samples, prompt())[0]
    got = transcribe(run_script, [("native", "auto", 32), ("wasm", "chromium", 32)], clips["short"])
    native, wasm = got[("native", "auto", 32)], got[("wasm", "chromium", 32)]
    assert without_end(native["tokens"]) == want, (native["tokens"], want)
    assert wasm["tokens"] == native["tokens"] and wasm["text"] == native["text"], (wasm, native)
    assert "speech models today" in wasm["text"].lower(), wasm["text"]
    for r in (native, wasm):
        assert abs(r["audio"] - len(samples) / 16000) < 0.05, r
        assert r["encoder_ms"] > 0 and r["rtf"] > 0 and r["decode"] > 0 and len(r["chunks"]) == 1, r
    assert wasm["accuracy"]["wer"] == 0.0 and wasm["accuracy"]["tokens_share"] == 1.0, wasm["accuracy"]
    assert "native" in wasm["accuracy"]["reference"], wasm["accuracy"]


def test_long_audio_is_cut_into_30_s_chunks_each_timed(run_script, clips, db_path):
    """44 s of speech: two chunks, each transcribed as ctranslate2 transcribes it, each chunk's
    time in the row."""
    samples = sr.read_wav_16k(clips["long"])
    want = sr.ct2_transcript(model_dir(), samples, prompt())
    got = transcribe(run_script, [("wasm", "chromium", 32)], clips["long"], ", accuracy: false")[("wasm", "chromium", 32)]
    assert without_end(got["tokens"]) == [t for chunk in want for t in chunk], got["text"]
    assert len(got["chunks"]) == 2 and all(ms > 0 for ms in got["chunks"]), got
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    row = con.execute("select chunks, len(chunk_ms), audio_seconds, encoder_ms, real_time_factor, model_type from runs").fetchone()
    assert row[:2] == (2, 2) and row[2] > 30 and row[3] > 0 and row[4] > 0 and row[5] == "speech_to_text", row


def test_whisper_base_transcribes_spanish_as_ctranslate2_does(run_script, clips):
    """Multilingual Whisper base with `language: "es"`: its converted graphs, greedy in
    onnxruntime, give ctranslate2's tokens; the browser (wasm) and native runs give the same."""
    samples = sr.read_wav_16k(clips["spanish"])
    want = sr.ct2_transcript(model_dir(BASE), samples, prompt(BASE, "es"))
    assert onnx_greedy(samples, 32, BASE, "es") == want
    got = transcribe(run_script, [("native", "auto", 32), ("wasm", "chromium", 32)], clips["spanish"], ', language: "es"', BASE)
    native, wasm = got[("native", "auto", 32)], got[("wasm", "chromium", 32)]
    assert without_end(native["tokens"], BASE) == want[0], (native, want)
    assert wasm["tokens"] == native["tokens"] and wasm["text"] == native["text"], (wasm, native)
    assert "hola a todos" in wasm["text"].lower() and "buen tiempo" in wasm["text"], wasm["text"]
    assert wasm["accuracy"]["wer"] == 0.0, wasm["accuracy"]


def test_bad_speech_requests_say_what_to_do(run_script, clips, tmp_path):
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio")
    clip = json.dumps(str(clips["short"]))
    cases = {
        f'accelerate("{MODEL}", {clip}, #{{platform: "native", language: "fr"}})': "English-only",
        f'accelerate("{MODEL}", {clip}, #{{platform: "native", chat: true}})': "applies to language models",
        f'accelerate("{MODEL}", {clip}, #{{platform: "native", max_new_tokens: 1000}})': "at most 446",
        f'accelerate("{MODEL}", {json.dumps(str(not_wav))}, #{{platform: "native"}})': "notes.wav",
        f'accelerate("{MODEL}", 42, #{{platform: "native"}})': "a WAV file path",
        'accelerate("smollm2", "hi", #{platform: "native", language: "en"})': "applies to speech models",
        f'accelerate("{BASE}", {clip}, #{{platform: "native", language: "klingon"}})': "unknown language 'klingon'",
    }
    code = "\n".join(f"try {{ {call}; print(\"no error\"); }} catch (e) {{ print(`${{e}}`); }}" for call in cases)
    out = run_script(code).stdout.strip().splitlines()
    assert len(out) == len(cases), out
    for (call, expected), line in zip(cases.items(), out):
        assert expected in line, (call, line)
