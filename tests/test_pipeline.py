"""A multi-model pipeline (openWakeWord: mel → embedding → classifier) loads into one page,
concurrently with parallel_loading and one after another without; both wall times are real."""

import json

from conftest import last_json_line


def test_parallel_and_sequential_pipeline_loads_are_measured(run_script):
    proc = run_script(
        """
        let par = load_pipeline("openwakeword", #{platform: "wasm", parallel_loading: true});
        let seq = load_pipeline("openwakeword", #{platform: "wasm", parallel_loading: false});
        print(#{par: par, seq: seq}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    for arm, parallel in (("par", True), ("seq", False)):
        r = got[arm]
        assert r["parallel_loading"] is parallel and r["browser"] == "chromium"
        assert [s["name"] for s in r["stages"]] == ["melspectrogram", "embedding", "hey_jarvis"]
        loads = [s["session_create_ms"] for s in r["stages"]]
        assert all(ms > 0 for ms in loads)
        # The wall time covers the slowest load at least; loading one after another it
        # covers them all.
        assert r["wall_ms"] >= max(loads) * 0.99
        assert r["sum_of_loads_ms"] == sum(loads)
    assert got["seq"]["wall_ms"] >= got["seq"]["sum_of_loads_ms"] * 0.99


def test_unknown_pipeline_names_the_valid_ones(run_script):
    proc = run_script('load_pipeline("nope", #{});', check=False, timeout=60)
    assert proc.returncode == 1 and "unknown pipeline 'nope'" in proc.stderr and "openwakeword" in proc.stderr
