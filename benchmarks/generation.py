"""Benchmark: SmolLM2-135M-Instruct's decode tokens/s and time to first token in the browser
(wasm in Chromium, webnn in headless-shell) against native onnxruntime, on the same file and
prompt, one thread each, side by side in one run, at 32 and 4 bits; and what bounds wasm.

    ./scripts/test.sh   # builds the binary and prepares the model
    source scripts/env.sh && $WEBACCEL_CACHE/venv/bin/python benchmarks/generation.py

Native is webaccel's own `native` platform (the libonnxruntime.so of the pinned wheel), timed
before and after the browsers; both calls' generations are pooled. Python's onnxruntime on the
same file is printed beside it as an independent check of the product's native figure. Each
figure is the median over the timed generations of one call.

What bounds wasm: a profiled wasm generation (`profile_ops`) splits each generation into ORT's
kernel time by operator type and the rest (the JavaScript loop, tensor creation, session.run's
own overhead).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import reference  # noqa: E402

MODEL = "smollm2-135m-instruct"
PROMPT = "What is the capital of France?"
TOKENS = 32
RUNS = 5

SCRIPT = """
let out = [];
let opts = #{max_new_tokens: TOKENS, runs: RUNS, warmup: 1, warmup_s: 0, accuracy: false};
for bits in [32, 4] {
    for p in [["native", "auto"], ["wasm", "chromium"], ["webnn", "headless-shell"], ["native", "auto"]] {
        let o = opts + #{platform: p[0], precision: bits};
        if p[1] != "auto" { o.browser = p[1]; }
        let r = accelerate("MODEL", "PROMPT", o);
        out.push(#{platform: p[0], bits: bits, ttft: r.ttft_ms, decode: r.decode_tokens_per_s, prefill: r.prefill_tokens_per_s,
                   per_token: r.per_token_ms, tokens: r.tokens.len(), latency: r.latency_ms,
                   on_ep: r.nodes_on_ep, nodes: r.nodes_total});
    }
}
let prof = accelerate("MODEL", "PROMPT", opts + #{platform: "wasm", browser: "chromium", precision: 32, runs: 3, profile_ops: true});
print(#{cells: out, profile: prof.ops, profiled_ms: prof.latency_ms}.to_json());
"""


def python_native(bits: int) -> tuple[float, float]:
    """Decode tokens/s and TTFT of Python's onnxruntime, 1 thread, the same greedy loop."""
    ids = reference.prompt_ids(MODEL, PROMPT)
    settings = json.loads(reference.sidecar(MODEL, "settings").read_text())
    session = reference._session(str(reference.model_path(MODEL, bits)), 1)
    names = [o.name for o in session.get_outputs()]
    rates, ttfts = [], []
    for _ in range(RUNS + 1):
        feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), np.int64), "position_ids": np.arange(len(ids))[None]}
        for i in range(settings["layers"]):
            for kind in ("key", "value"):
                feeds[f"past_key_values.{i}.{kind}"] = np.zeros((1, settings["kv_heads"], 0, settings["head_dim"]), np.float32)
        t0 = time.perf_counter()
        stamps, total = [], len(ids)
        while True:
            out = dict(zip(names, session.run(None, feeds)))
            token = int(np.argmax(out["logits"][0, -1]))
            stamps.append(time.perf_counter() - t0)
            if token == settings["eos_token_id"] or len(stamps) >= TOKENS:
                break
            feeds = {"input_ids": np.array([[token]]), "attention_mask": np.ones((1, total + 1), np.int64), "position_ids": np.array([[total]])}
            for i in range(settings["layers"]):
                for kind in ("key", "value"):
                    feeds[f"past_key_values.{i}.{kind}"] = out[f"present.{i}.{kind}"]
            total += 1
        ttfts.append(stamps[0] * 1000)
        if len(stamps) > 1:
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return statistics.median(rates[1:]), statistics.median(ttfts[1:])


def main():
    binary = os.environ.get("WEBACCEL_BIN") or str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/webaccel/target")) / "debug" / "webaccel")
    script = SCRIPT.replace("MODEL", MODEL).replace("PROMPT", PROMPT).replace("TOKENS", str(TOKENS)).replace("RUNS", str(RUNS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.rhai"
        path.write_text(script)
        env = dict(os.environ, WEBACCEL_DB=str(Path(tmp) / "bench.duckdb"))
        proc = subprocess.run([binary, "run", str(path)], capture_output=True, text=True, env=env, check=True, timeout=3600)
    result = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
    print(f"SmolLM2-135M-Instruct, {TOKENS} new tokens at most, {RUNS} timed generations per cell, 1 thread; ratios to webaccel native")
    print(f"{'cell':<22}{'decode tok/s':>13}{'x native':>10}{'TTFT ms':>10}{'x native':>10}{'prefill tok/s':>15}{'per token p50/p90 ms':>23}{'on EP':>12}")
    for bits in (32, 4):
        cells = [c for c in result["cells"] if c["bits"] == bits]
        native = [c for c in cells if c["platform"] == "native"]
        base_rate = statistics.median(c["decode"] for c in native)
        base_ttft = statistics.median(c["ttft"] for c in native)
        py_rate, py_ttft = python_native(bits)
        base_prefill = statistics.median(c["prefill"] for c in native) if all(c["prefill"] for c in native) else None
        rows = [(f"native (webaccel) {bits}", base_rate, base_ttft, base_prefill, None, None)]
        rows.append((f"native (python ORT) {bits}", py_rate, py_ttft, None, None, None))
        for c in cells:
            if c["platform"] != "native":
                rows.append((f"{c['platform']} {bits}", c["decode"], c["ttft"], c["prefill"], c["per_token"], f"{c['on_ep']}/{c['nodes']}"))
        for name, rate, ttft, prefill, per_token, on_ep in rows:
            pt = f"{per_token['p50']:.1f}/{per_token['p90']:.1f}" if per_token else ""
            # Python's loop times no prefill of its own; a missing figure stays blank, never 0.
            shown = f"{prefill:15.1f}" if prefill else f"{'':15}"
            print(f"{name:<22}{rate:13.1f}{rate / base_rate:9.2f}x{ttft:10.1f}{ttft / base_ttft:9.2f}x"
                  f"{shown}{pt:>23}{on_ep or '':>12}")
        print(f"  native before/after: {[round(c['decode'], 1) for c in native]} tok/s")
    ops = result["profile"] or []
    kernels = sum(o["ms"] for o in ops)
    print(f"\nwasm fp32, profiled (profiled runs are slower): {result['profiled_ms']:.0f} ms per generation, "
          f"{kernels:.0f} ms of it in ORT kernels ({kernels / result['profiled_ms']:.0%}); the rest is the page's loop and session.run overhead")
    for o in ops[:6]:
        print(f"  {o['op']:<16}{o['ms']:8.1f} ms  {o['ms'] / kernels:5.1%}")


if __name__ == "__main__":
    main()
