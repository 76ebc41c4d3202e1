"""Browser outputs against the onnxruntime-CPU reference, on wasm and webgpu (Debian Chromium)."""

import json

import duckdb
import numpy as np
import pytest

import reference
from conftest import last_json_line

MODEL = "all-minilm-l6-v2"
PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("The cat sits on the mat.", "Stock markets fell sharply today."),
    ("How do I bake sourdough bread?", "What is a good recipe for sourdough?"),
    ("WebGPU runs compute shaders.", "The weather is lovely this afternoon."),
]
# Stated tolerances. The acceptance bound is on pair similarity (0.01); the per-element bound
# catches a wrong pooling or a wrong input even when similarities happen to agree.
SIMILARITY_TOLERANCE = 0.01
ELEMENT_TOLERANCE = 1e-3


# Each platform with the browser that selection must pick on this machine: no Chrome or Edge
# here, Debian Chromium for wasm and webgpu, and headless-shell, the one whose WebNN works.
@pytest.mark.parametrize("platform,browser", [("wasm", "chromium"), ("webgpu", "chromium"), ("webnn", "headless-shell")])
def test_embeddings_and_similarities_match_onnxruntime(run_script, db_path, platform, browser):
    sentences = [s for pair in PAIRS for s in pair]
    # SwiftShader's WebGPU emulates the GPU on the CPU, so it gets the fewest runs that still
    # give a median.
    runs = 2 if platform == "webgpu" else 5
    proc = run_script(
        f"""
        let r = accelerate("{MODEL}", {json.dumps(sentences)}, #{{platform: "{platform}", runs: {runs}, warmup: 0, warmup_s: 0}});
        print(#{{output: r.output, latency_ms: r.latency_ms, runs: r.runs, platform: r.platform, run_id: r.run_id,
                 browser: r.browser, selection: r.selection_reason}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    in_browser = np.array(got["output"], dtype=np.float32)
    expected = reference.embed(MODEL, sentences)
    assert in_browser.shape == expected.shape == (len(sentences), 384)
    assert np.abs(in_browser - expected).max() < ELEMENT_TOLERANCE

    for i in range(len(PAIRS)):
        a, b = 2 * i, 2 * i + 1
        sim_browser = reference.cosine(in_browser[a], in_browser[b])
        sim_native = reference.cosine(expected[a], expected[b])
        assert abs(sim_browser - sim_native) < SIMILARITY_TOLERANCE, (PAIRS[i], sim_browser, sim_native)
    # The paraphrase pairs must come out more similar than the unrelated ones, or the check
    # above could pass on garbage that happens to agree.
    sims = [reference.cosine(in_browser[2 * i], in_browser[2 * i + 1]) for i in range(len(PAIRS))]
    assert min(sims[0], sims[2]) > max(sims[1], sims[3]) + 0.2

    assert got["platform"] == platform and got["runs"] == runs and got["latency_ms"] > 0
    assert got["browser"] == browser, got["selection"]
    assert got["selection"].endswith(f"has {platform}"), got["selection"]

    con = duckdb.connect(str(db_path), read_only=True)
    row = con.execute(
        "SELECT model_name, platform, browser, status, latency_ms, runs, batch_size, model_sha256, first_run_ms, "
        "session_create_ms, throughput_items_per_s, requested_platform, fallback_reason, environment_fingerprint "
        "FROM runs WHERE run_id = ?",
        [got["run_id"]],
    ).fetchone()
    con.close()
    assert row is not None, "the run was not written to DuckDB"
    name, plat, browser_name, status, latency, nruns, batch, sha, first, create, throughput, requested, fallback, env = row
    assert (name, plat, browser_name, status, nruns, batch) == (MODEL, platform, browser, "ok", runs, len(sentences))
    assert (requested, fallback) == (platform, None)
    assert latency == pytest.approx(got["latency_ms"])
    assert sha == reference.spec(MODEL)["files"][0]["sha256"]
    assert first > 0 and create > 0
    assert throughput == pytest.approx(len(sentences) / (latency / 1000.0))
    # The run references the one stored description of its environment.
    con = duckdb.connect(str(db_path), read_only=True)
    env_row = con.execute("SELECT browser, capabilities->>'$.webgpu.available' FROM environments WHERE fingerprint = ?", [env]).fetchone()
    con.close()
    assert env_row is not None and env_row[0] == browser


def test_webnn_in_debian_chromium_falls_back_with_the_measured_error(run_script, db_path):
    sentences = list(PAIRS[0])
    proc = run_script(
        f"""
        let r = accelerate("{MODEL}", {json.dumps(sentences)}, #{{platform: "webnn", browser: "chromium", runs: 1, warmup: 0, warmup_s: 0}});
        print(#{{output: r.output, platform: r.platform, fallback: r.fallback_reason, run_id: r.run_id}}.to_json());
        let caught = "";
        try {{
            accelerate("{MODEL}", "x", #{{platform: "webnn", browser: "chromium", fallback: false}});
        }} catch (e) {{ caught = `${{e}}`; }}
        print(caught);
        """
    )
    lines = proc.stdout.strip().splitlines()
    got = json.loads(lines[-2])
    assert got["platform"] == "webgpu"
    assert got["fallback"].startswith("webnn: ") and "NotSupportedError" in got["fallback"], got["fallback"]
    expected = reference.embed(MODEL, sentences)
    assert np.abs(np.array(got["output"]) - expected).max() < ELEMENT_TOLERANCE
    # With fallback off, the same request is an error that carries the browser's own words.
    assert "fallback off" in lines[-1] and "NotSupportedError" in lines[-1], lines[-1]

    con = duckdb.connect(str(db_path), read_only=True)
    rows = con.execute("SELECT requested_platform, platform, status, fallback_reason FROM runs ORDER BY ts").fetchall()
    con.close()
    assert rows[0][:3] == ("webnn", "webgpu", "ok") and "NotSupportedError" in rows[0][3]
    assert rows[1][:3] == ("webnn", "webnn", "error")
