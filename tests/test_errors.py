"""Bad input gets a clear error that names the valid choices, and a failed call loses nothing
already stored."""

import duckdb
import pytest

CASES = [
    ('accelerate("no-such-model", "hi")', ["unknown model 'no-such-model'", "all-minilm-l6-v2"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{platform: "cuda"})', ["unknown platform 'cuda'", "webgpu, webnn, wasm"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{plataform: "wasm"})', ["unknown option 'plataform'", "platform, browser, device"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{runs: "many"})', ["option 'runs'", "must be an integer"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{precision: 4})', ["no 4-bit file", "available precisions: 8"]),
    ('accelerate("all-minilm-l6-v2", 42)', ["must be a string or an array of strings"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{browser: "netscape"})', ["unknown browser 'netscape'", "chrome, edge, chromium, headless-shell"]),
    ('accelerate("all-minilm-l6-v2", "hi", #{fallback: "no"})', ["option 'fallback'", "true or false"]),
    ('configure_browsers(#{max_browsers: 2})', ["unknown option 'max_browsers'", "max_connections, idle_timeout_s"]),
]


@pytest.mark.parametrize("code,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_explained(run_script, code, needles):
    proc = run_script(code + ";", check=False, timeout=120)
    assert proc.returncode == 1
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "panicked" not in proc.stderr


def test_errors_are_catchable_and_earlier_rows_survive(run_script, db_path):
    proc = run_script(
        """
        let ok = accelerate("all-minilm-l6-v2", "kept row", #{platform: "wasm", runs: 1, warmup: 0});
        let caught = "";
        try { accelerate("all-minilm-l6-v2", "x", #{platform: "warp"}); } catch (e) { caught = `${e}`; }
        print(caught);
        print(ok.run_id);
        """
    )
    lines = proc.stdout.strip().splitlines()
    assert "unknown platform 'warp'" in lines[-2]
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM runs WHERE run_id = ? AND status = 'ok'", [lines[-1]]).fetchone()[0] == 1
    con.close()


@pytest.mark.parametrize("browser,variable", [("chromium", "WEBACCEL_CHROMIUM"), ("firefox", "WEBACCEL_FIREFOX")])
def test_missing_browser_is_explained(run_script, monkeypatch, tmp_path, browser, variable):
    monkeypatch.setenv(variable, str(tmp_path / f"no-{browser}-here"))
    proc = run_script(f'accelerate("all-minilm-l6-v2", "hi", #{{browser: "{browser}"}});', check=False, timeout=120)
    assert proc.returncode == 1
    assert f"no {browser} executable found" in proc.stderr and variable in proc.stderr, proc.stderr


def test_a_compare_whose_every_cell_failed_returns_its_errors(run_script):
    """Found in JupyterLab: a grid whose only cell was refused (its runs could not fit the run
    limit) failed as a whole on drawing an empty plot; its frame, with the error, is the result."""
    proc = run_script(
        """
        let f = compare(#{models: ["paraphrase-minilm-l3-v2"], browsers: ["chromium"], platforms: ["wasm"],
                          runs: 100000, warmup: 0, warmup_s: 0, accuracy: false});
        print(#{rows: f.rows(), plots: f.plots.len()}.to_json());
        """
    )
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["plots"] == 0 and len(got["rows"]) == 1, got
    assert got["rows"][0]["errors"] == 1 and "run limit of 900 s" in got["rows"][0]["error"], got
