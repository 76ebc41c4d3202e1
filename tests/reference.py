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


def model_path(name: str, precision: int | None = None) -> Path:
    files = spec(name)["files"]
    f = files[0] if precision is None else next(f for f in files if f["precision"] == precision)
    return packaged_path(f)


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
    enc = _tokenizer(str(packaged_path(s["tokenizer"]))).encode_batch(sentences)
    arrays = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
    return {k: arrays[k] for k in s["inputs"]}


def embed(name: str, sentences: list[str], precision: int | None = None, threads: int = 1) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings, [len(sentences), dim]."""
    s = spec(name)
    feeds = encode(name, sentences)
    session = _session(str(model_path(name, precision)), threads)
    hidden = session.run([s["output"]], feeds)[0]
    mask = feeds["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    if s.get("normalize"):
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


if __name__ == "__main__":
    print(json.dumps(embed("all-minilm-l6-v2", sys.argv[1:]).tolist()))
