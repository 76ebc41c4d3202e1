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


@pytest.mark.parametrize("platform", ["wasm", "webgpu"])
def test_embeddings_and_similarities_match_onnxruntime(run_script, db_path, platform):
    sentences = [s for pair in PAIRS for s in pair]
    # SwiftShader's WebGPU emulates the GPU on the CPU, so it gets the fewest runs that still
    # give a median.
    runs = 2 if platform == "webgpu" else 5
    proc = run_script(
        f"""
        let r = accelerate("{MODEL}", {json.dumps(sentences)}, #{{platform: "{platform}", runs: {runs}, warmup: 0}});
        print(#{{output: r.output, latency_ms: r.latency_ms, runs: r.runs, platform: r.platform, run_id: r.run_id}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    browser = np.array(got["output"], dtype=np.float32)
    expected = reference.embed(MODEL, sentences)
    assert browser.shape == expected.shape == (len(sentences), 384)
    assert np.abs(browser - expected).max() < ELEMENT_TOLERANCE

    for i in range(len(PAIRS)):
        a, b = 2 * i, 2 * i + 1
        sim_browser = reference.cosine(browser[a], browser[b])
        sim_native = reference.cosine(expected[a], expected[b])
        assert abs(sim_browser - sim_native) < SIMILARITY_TOLERANCE, (PAIRS[i], sim_browser, sim_native)
    # The paraphrase pairs must come out more similar than the unrelated ones, or the check
    # above could pass on garbage that happens to agree.
    sims = [reference.cosine(browser[2 * i], browser[2 * i + 1]) for i in range(len(PAIRS))]
    assert min(sims[0], sims[2]) > max(sims[1], sims[3]) + 0.2

    assert got["platform"] == platform and got["runs"] == runs and got["latency_ms"] > 0

    con = duckdb.connect(str(db_path), read_only=True)
    row = con.execute(
        "SELECT model_name, platform, browser, status, latency_ms, runs, batch_size, model_sha256, first_run_ms, "
        "session_create_ms, throughput_items_per_s FROM runs WHERE run_id = ?",
        [got["run_id"]],
    ).fetchone()
    con.close()
    assert row is not None, "the run was not written to DuckDB"
    name, plat, browser_name, status, latency, nruns, batch, sha, first, create, throughput = row
    assert (name, plat, browser_name, status, nruns, batch) == (MODEL, platform, "chromium", "ok", runs, len(sentences))
    assert latency == pytest.approx(got["latency_ms"])
    assert sha == reference.spec(MODEL)["files"][0]["sha256"]
    assert first > 0 and create > 0
    assert throughput == pytest.approx(len(sentences) / (latency / 1000.0))
