"""Issue 12: remote browsers through a real Selenium Grid 4. A hub on a bridge this module
creates and two nodes in network namespaces of their own (tests/fleet.py), each driving Debian
Chromium through chromium-driver. A node reaches only the bridge's addresses, as another machine
would: webaccel's pages reach it over TLS on the advertised address, never over loopback."""

import json
import os
import threading
import urllib.request
import time

import duckdb
import numpy as np
import pytest

import fleet
import reference
from conftest import last_json_line

MODEL = "all-minilm-l6-v2"
SENTENCES = ["A man is eating food.", "The cat sits on the mat."]
GRID = f'configure_browsers(#{{grid: "http://{fleet.HUB_IP}:4444"}});'
ELEMENT_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    why = fleet.available()
    if why == "network namespaces need root":
        pytest.skip(why)
    assert why is None, why
    with fleet.Fleet(["lab-a", "lab-b"], tmp_path_factory.mktemp("grid-logs")) as f:
        yield f


def test_remote_slots_measure_and_run_like_local_browsers(lab, run_script, db_path):
    proc = run_script(
        f"""
        {GRID}
        let d = detect();
        let out = #{{detect: #{{}}, runs: []}};
        for name in ["grid:lab-a", "grid:lab-b"] {{
            let b = d[name];
            out.detect[name] = #{{available: b.available, isolated: b.crossOriginIsolated, adapter: b.webgpu.adapter,
                                  node: b.node, threads: b.wasm.threads.available}};
            for platform in ["wasm", "webgpu"] {{
                let r = accelerate("{MODEL}", {json.dumps(SENTENCES)}, #{{browser: name, platform: platform, runs: 1, warmup: 0, warmup_s: 0}});
                out.runs.push(#{{name: name, platform: platform, output: r.output, browser: r.browser, run_id: r.run_id,
                                 software: r.adapter_software}});
            }}
        }}
        out.browsers = browsers();
        print(out.to_json());
        """,
        timeout=900,
    )
    got = last_json_line(proc.stdout)
    nodes = {n.name: n for n in lab.nodes}
    for name, slot in got["detect"].items():
        # A secure context, from another machine: cross-origin isolated, wasm threads, WebGPU.
        assert slot["available"] and slot["isolated"] and slot["threads"], slot
        assert slot["adapter"] and slot["adapter"]["architecture"] == "swiftshader", slot
        assert slot["node"]["uri"] == nodes[name.removeprefix("grid:")].uri and slot["node"]["os"].startswith("Linux")
    expected = reference.embed(MODEL, SENTENCES)
    for run in got["runs"]:
        assert run["browser"] == run["name"]
        assert np.abs(np.array(run["output"], dtype=np.float32) - expected).max() < ELEMENT_TOLERANCE, run["name"]
    assert [r["software"] for r in got["runs"] if r["platform"] == "webgpu"] == [True, True]
    assert got["browsers"]["grid"] == [lab.hub_url]

    con = duckdb.connect(str(db_path), read_only=True)
    envs = con.execute(
        "SELECT r.browser, r.model_fetch_ms, e.capabilities->>'$.node.uri' FROM runs r JOIN environments e "
        "ON e.fingerprint = r.environment_fingerprint WHERE r.browser LIKE 'grid:%'"
    ).fetchall()
    con.close()
    assert {(b, uri) for b, _, uri in envs} == {(f"grid:{n.name}", n.uri) for n in lab.nodes}
    # The model's delivery to each remote page is timed (its first session on each node).
    assert all(fetch is None or fetch > 0 for _, fetch, _ in envs) and any(fetch for _, fetch, _ in envs)
    # Nothing is left on the hub or the nodes once the script has ended.
    status = fleet.get_json(f"{lab.hub_url}/status")["value"]["nodes"]
    assert all(s["session"] is None for n in status for s in n["slots"])
    deadline = time.monotonic() + 10
    while any(n.browser_pids() for n in lab.nodes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(n.browser_pids() for n in lab.nodes)


def test_a_compare_over_local_and_remote_browsers_in_parallel(lab, run_script, db_path):
    proc = run_script(
        f"""
        {GRID}
        let f = compare(#{{models: ["{MODEL}"], browsers: ["chromium", "grid:lab-a", "grid:lab-b"], platforms: ["wasm"],
                          runs: 100, warmup: 2, warmup_s: 0, parallel: true}});
        print(#{{rows: f.rows(), wall: f.wall_ms, cells: f.cells_ms, experiment: f.experiment_id}}.to_json());
        """,
        timeout=900,
    )
    got = last_json_line(proc.stdout)
    cells = {c["browser"]: c for c in got["rows"]}
    assert set(cells) == {"chromium", "grid:lab-a", "grid:lab-b"}
    assert all(c["n"] == 100 and c["errors"] == 0 for c in cells.values()), cells
    # Three machines at once: the grid took less than its cells added up.
    assert got["wall"] < got["cells"], (got["wall"], got["cells"])
    con = duckdb.connect(str(db_path), read_only=True)
    rows = con.execute(
        "SELECT r.browser, e.capabilities->>'$.node.uri' FROM runs r JOIN environments e "
        "ON e.fingerprint = r.environment_fingerprint WHERE experiment_id = ?",
        [got["experiment"]],
    ).fetchall()
    wall, sum_ms, status = con.execute(
        "SELECT wall_ms, cells_ms, status FROM experiments WHERE experiment_id = ?", [got["experiment"]]
    ).fetchone()
    con.close()
    assert dict(rows) == {"chromium": None, "grid:lab-a": lab.nodes[0].uri, "grid:lab-b": lab.nodes[1].uri}
    assert (status, round(wall, 3), round(sum_ms, 3)) == ("ok", round(got["wall"], 3), round(got["cells"], 3))


def test_a_node_dying_mid_grid_fails_its_cell_and_the_grid_goes_on(lab, run_script, db_path):
    victim = lab.nodes[0]

    def kill_when_running():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if victim.browser_pids():
                time.sleep(6)  # in the middle of its long cell
                for pid in victim.browser_pids():
                    os.kill(pid, 9)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    proc = run_script(
        f"""
        {GRID}
        let f = compare(#{{models: ["{MODEL}"], browsers: ["grid:lab-a", "grid:lab-b"], platforms: ["wasm"],
                          runs: 800, warmup: 0, warmup_s: 0}});
        print(#{{rows: f.rows(), experiment: f.experiment_id}}.to_json());
        """,
        timeout=900,
    )
    killer.join()
    got = last_json_line(proc.stdout)
    cells = {c["browser"]: c for c in got["rows"]}
    assert cells["grid:lab-a"]["errors"] == 1 and cells["grid:lab-a"]["n"] == 0, cells["grid:lab-a"]
    assert cells["grid:lab-b"]["errors"] == 0 and cells["grid:lab-b"]["n"] == 800
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT status FROM experiments WHERE experiment_id = ?", [got["experiment"]]).fetchone()[0] == "ok"
    (error,) = con.execute("SELECT error FROM runs WHERE browser = 'grid:lab-a' AND status = 'error'").fetchone()
    con.close()
    assert "grid:lab-a" in error and lab.hub_url in error and "went away" in error, error
    # The dead session is gone from the hub; the node takes a new one.
    status = fleet.get_json(f"{lab.hub_url}/status")["value"]["nodes"]
    assert all(s["session"] is None for n in status for s in n["slots"])
    proc = run_script(f'{GRID} print(accelerate("{MODEL}", "again", #{{browser: "grid:lab-a", platform: "wasm", runs: 1}}).browser);')
    assert proc.stdout.strip().splitlines()[-1] == "grid:lab-a"


def test_no_slot_and_no_hub_are_explained_quickly(lab, run_script):
    started = time.monotonic()
    proc = run_script(
        f"""
        {GRID}
        let out = [];
        try {{ accelerate("{MODEL}", "x", #{{browser: "grid:lab-z", platform: "wasm"}}); }} catch (e) {{ out.push(`${{e}}`); }}
        configure_browsers(#{{grid: "http://10.231.0.1:4999"}});
        try {{ accelerate("{MODEL}", "x", #{{browser: "grid:lab-a", platform: "wasm"}}); }} catch (e) {{ out.push(`${{e}}`); }}
        print(out.to_json());
        """
    )
    took = time.monotonic() - started
    no_slot, no_hub = last_json_line(proc.stdout)
    assert "no slot grid:lab-z" in no_slot and lab.hub_url in no_slot and "grid:lab-a" in no_slot and "webaccel:name" in no_slot
    assert "http://10.231.0.1:4999 did not answer" in no_hub and "WEBACCEL_GRID" in no_hub
    assert took < 30, took


def test_a_session_the_hub_ended_mid_call_is_explained(lab, run_script):
    """The hub forgetting a session mid-call (what reaping an idle session does) is told apart from a
    dead node: the error names the browser, the session, the hub and the node's --session-timeout."""
    victim = lab.nodes[1]
    ended = []

    def delete_when_running():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            slots = [s for n in fleet.get_json(f"{lab.hub_url}/status")["value"]["nodes"] for s in n["slots"]]
            # While the hub starts a session, /status names it "reserved".
            sessions = [s["session"]["sessionId"] for s in slots if s["session"] and s["session"]["sessionId"] != "reserved"]
            sessions = sessions if victim.browser_pids() else []
            if sessions:
                time.sleep(4)
                request = urllib.request.Request(f"{lab.hub_url}/session/{sessions[0]}", method="DELETE")
                urllib.request.urlopen(request, timeout=10).read()
                ended.append(sessions[0])
                return
            time.sleep(0.2)

    deleter = threading.Thread(target=delete_when_running)
    deleter.start()
    proc = run_script(
        f"""
        {GRID}
        try {{ accelerate("{MODEL}", "long", #{{browser: "grid:{victim.name}", platform: "wasm", runs: 2000, warmup: 0}}); }}
        catch (e) {{ print(e); }}
        """,
        timeout=600,
    )
    deleter.join()
    assert ended, "no session appeared on the hub"
    message = proc.stdout.strip().splitlines()[-1]
    assert f"grid:{victim.name}" in message and ended[0] in message and lab.hub_url in message, message
    assert "no longer knows the session" in message and "--session-timeout" in message, message
