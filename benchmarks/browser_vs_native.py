"""Benchmark: the same model and input on native onnxruntime (CPU, 1 thread) and on each browser
platform, side by side in one run; plus cold against warm first runs per platform.

    ./scripts/setup.sh && source scripts/env.sh && \\
        $WEBACCEL_CACHE/venv/bin/python benchmarks/browser_vs_native.py

The native baseline is webaccel's own `native` platform (the same libonnxruntime.so the pinned
wheel ships, through the `ort` crate), timed before and after the browser runs; their pooled
median is the baseline, so drift on a shared machine shows up as a spread instead of a bias.
Python's onnxruntime on the same file is printed beside it as an independent check of the
product's native figure.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import reference  # noqa: E402

MODEL = "all-minilm-l6-v2"
SENTENCE = "A man is eating food while his friends watch the game on television."
RUNS = 200


def native_ms(runs: int) -> list[float]:
    feeds = reference.encode(MODEL, [SENTENCE])
    session = reference._session(str(reference.model_path(MODEL)), 1)
    out = reference.spec(MODEL)["processing"]["output"]
    for _ in range(20):
        session.run([out], feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run([out], feeds)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


SCRIPT = """
let out = #{};
out["native (before)"] = #{run_ms: accelerate("MODEL", "SENTENCE", #{platform: "native", runs: RUNS, warmup: 20, warmup_s: 1}).run_ms};
for p in [["wasm", "chromium", RUNS], ["webnn", "headless-shell", RUNS], ["webgpu", "chromium", 5],
          ["wasm", "firefox", RUNS], ["webgpu", "firefox", 5]] {
    // Cold: no precompile, so the first run carries shader compilation and first allocations.
    // The warm call passes a do-nothing switch (a pref nobody reads, for Firefox) so that it
    // gets a browser of its own, hence a model session of its own, whose first call precompiles.
    let cold = accelerate("MODEL", "SENTENCE", #{platform: p[0], browser: p[1], runs: 1, warmup: 0, warmup_s: 0, precompile_shaders: false});
    let flag = if p[1] == "firefox" { "--pref=webaccel.bench=" + p[0] } else { "--webaccel-bench=" + p[0] };
    let r = accelerate("MODEL", "SENTENCE", #{platform: p[0], browser: p[1], runs: p[2], warmup: 10, flags: [flag]});
    out[`${p[0]} ${p[1]}`] = #{cold_first_ms: cold.first_run_ms, precompile_ms: r.precompile_ms, warm_first_ms: r.first_run_ms, run_ms: r.run_ms};
}
let loads = #{parallel: [], sequential: []};
for i in 0..5 {
    loads.parallel.push(load_pipeline("openwakeword", #{platform: "wasm", parallel_loading: true}).wall_ms);
    loads.sequential.push(load_pipeline("openwakeword", #{platform: "wasm", parallel_loading: false}).wall_ms);
}
out["pipeline_loads"] = loads;
// Where wasm's time goes: ORT's profiler in the page (a fresh, profiled session).
out["wasm_ops"] = accelerate("MODEL", "SENTENCE", #{platform: "wasm", browser: "chromium", runs: 50, warmup: 10, profile_ops: true}).ops;
out["native (after)"] = #{run_ms: accelerate("MODEL", "SENTENCE", #{platform: "native", runs: RUNS, warmup: 20, warmup_s: 1}).run_ms};
print(out.to_json());
"""


def main():
    tokens = reference.encode(MODEL, [SENTENCE])["input_ids"].shape[1]
    python_before = native_ms(RUNS)
    script = SCRIPT.replace("MODEL", MODEL).replace("SENTENCE", SENTENCE).replace("RUNS", str(RUNS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.rhai"
        path.write_text(script)
        env = dict(os.environ, WEBACCEL_DB=str(Path(tmp) / "bench.duckdb"))
        binary = Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "webaccel"
        proc = subprocess.run([str(binary), "run", str(path)], capture_output=True, text=True, env=env, check=True)
    browser = json.loads(proc.stdout.strip().splitlines()[-1])
    loads = browser.pop("pipeline_loads")
    wasm_ops = {o["op"]: o["ms"] for o in browser.pop("wasm_ops")}
    python_after = native_ms(RUNS)
    before, after = browser.pop("native (before)")["run_ms"], browser.pop("native (after)")["run_ms"]
    base = statistics.median(before + after)
    python = python_before + python_after

    print(f"{MODEL}, {tokens} tokens, batch 1; native = webaccel's platform native (onnxruntime CPU, 1 thread)")
    print(f"{'platform browser':<22}{'p50 ms':>9}{'p90 ms':>9}{'p90/p50':>9}{'x native':>10}")
    for label, runs in [("native (before)", before), ("native (after)", after), ("python onnxruntime", python)]:
        p50 = statistics.median(runs)
        print(f"{label:<22}{p50:9.2f}{pct(runs, 0.9):9.2f}{pct(runs, 0.9) / p50:9.2f}{p50 / base:10.2f}")
    for platform, r in browser.items():
        runs = r["run_ms"]
        p50 = statistics.median(runs)
        print(f"{platform:<22}{p50:9.2f}{pct(runs, 0.9):9.2f}{pct(runs, 0.9) / p50:9.2f}{p50 / base:10.2f}")
    print()
    print(f"{'first run':<22}{'cold ms':>9}{'warm ms':>9}{'compile ms':>11}")
    for platform, r in browser.items():
        print(f"{platform:<22}{r['cold_first_ms']:9.1f}{r['warm_first_ms']:9.1f}{(r['precompile_ms'] or float('nan')):11.1f}")
    native_ops = reference.op_profile(MODEL, [SENTENCE], runs=50)
    print()
    print("kernel time per run by operator type, both under ORT's profiler (which slows both):")
    print(f"{'operator':<26}{'native ms':>10}{'wasm ms':>10}{'x native':>10}")
    for op in sorted(wasm_ops, key=wasm_ops.get, reverse=True)[:8]:
        n = native_ops.get(op)
        print(f"{op:<26}{(n or float('nan')):10.3f}{wasm_ops[op]:10.3f}{(wasm_ops[op] / n if n else float('nan')):10.2f}")
    tn, tw = sum(native_ops.values()), sum(wasm_ops.values())
    print(f"{'all kernels':<26}{tn:10.3f}{tw:10.3f}{tw / tn:10.2f}")
    par, seq = statistics.median(loads["parallel"]), statistics.median(loads["sequential"])
    print()
    print(f"openWakeWord pipeline (3 models) load on wasm, median of {len(loads['parallel'])} alternating:")
    print(f"  concurrent {par:.1f} ms, sequential {seq:.1f} ms, concurrent/sequential {par / seq:.2f}")


if __name__ == "__main__":
    main()
