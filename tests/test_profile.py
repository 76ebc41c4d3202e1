"""`profile_ops`: ORT's profiler in the page, kernel time per operator type, checked against
native onnxruntime's profile of the same file."""

import json

import duckdb
import numpy as np

import reference
from conftest import last_json_line

SENTENCE = "A man is eating food while his friends watch the game on television."
MODEL = "all-minilm-l6-v2"


def test_profile_ops_reports_the_graphs_operators(run_script, db_path):
    proc = run_script(
        f"""
        let r = accelerate("{MODEL}", "{SENTENCE}", #{{platform: "wasm", browser: "chromium", runs: 10, warmup: 2, warmup_s: 0, profile_ops: true}});
        let plain = accelerate("{MODEL}", "{SENTENCE}", #{{platform: "wasm", browser: "chromium", runs: 2, warmup: 0, warmup_s: 0}});
        print(#{{ops: r.ops, run_ms: r.run_ms, output: r.output, run_id: r.run_id, plain_ops: plain.ops, plain_id: plain.run_id}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    ops = {o["op"]: o["ms"] for o in got["ops"]}
    assert [o["ms"] for o in got["ops"]] == sorted(ops.values(), reverse=True)
    assert abs(sum(o["share"] for o in got["ops"]) - 1.0) < 1e-9

    # The page runs the same optimizer on the same file as native onnxruntime, so the
    # operator types must be the same ones, and the matrix products must dominate in both.
    native = reference.op_profile(MODEL, [SENTENCE])
    assert set(ops) == set(native), (sorted(ops), sorted(native))
    assert max(ops, key=ops.get) == max(native, key=native.get) == "MatMul"

    # Kernel time is part of each run's wall time: not more, and most of it. The profile is a
    # mean over the timed runs, so it is held against their mean wall time (not the median,
    # which one slow run on a busy machine leaves below the mean).
    kernels = sum(ops.values())
    wall = float(np.mean(got["run_ms"]))
    assert 0.3 * wall < kernels <= 1.05 * wall, (kernels, got["run_ms"])

    # Profiling does not change what the model computes.
    expected = reference.embed(MODEL, [SENTENCE])
    assert np.abs(np.array(got["output"], dtype=np.float32) - expected).max() < 1e-3

    # The row keeps the profile; an unprofiled run has none (and no `ops`).
    assert got["plain_ops"] is None
    con = duckdb.connect(str(db_path), read_only=True)
    rows = dict(con.execute("SELECT run_id, CAST(op_profile AS VARCHAR) FROM runs").fetchall())
    con.close()
    assert rows[got["plain_id"]] is None
    stored = {o["op"]: o["ms"] for o in json.loads(rows[got["run_id"]])}
    assert stored == ops


def test_compare_profiles_each_cell_with_its_own_kernels(run_script, db_path):
    """Each precision is a different graph: the 8-bit file's profile must show the operators
    native onnxruntime runs for that file, not the fp32 ones."""
    run_script(
        """
        compare(#{models: ["paraphrase-minilm-l3-v2"], platforms: ["wasm"], precisions: [32, 8],
                  runs: 3, warmup: 0, warmup_s: 0, accuracy: false, profile_ops: true});
        """
    )
    con = duckdb.connect(str(db_path), read_only=True)
    rows = dict(con.execute("SELECT precision, CAST(op_profile AS VARCHAR) FROM runs WHERE status = 'ok'").fetchall())
    con.close()
    assert set(rows) == {32, 8}, rows.keys()
    for bits in (32, 8):
        ops = {o["op"] for o in json.loads(rows[bits])}
        native = reference.op_profile("paraphrase-minilm-l3-v2", [SENTENCE], runs=5, precision=bits)
        assert ops == set(native), (bits, sorted(ops), sorted(native))
    assert {o["op"] for o in json.loads(rows[32])} != {o["op"] for o in json.loads(rows[8])}
