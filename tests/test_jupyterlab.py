"""Issue 13: real JupyterLab (the pinned PyPI package) on loopback with a random token, driven in
headless Chromium by tests/jupyterlab/drive.mjs (playwright-core): a typed cell that plots, Tab
completion, and the toolbar's interrupt stopping a running compare, with its progress display on
the page. The screenshots are kept in $WEBACCEL_ARTIFACTS/jupyterlab (default
~/.cache/webaccel/artifacts/jupyterlab), for a person to look at.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "jupyterlab" / "drive.mjs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_runs_plots_completes_and_interrupts(jupyter_env, tmp_path):
    assert (DRIVER.parent / "node_modules" / "playwright-core").is_dir(), "run ./scripts/setup.sh (npm ci in tests/jupyterlab)"
    root = tmp_path / "lab"
    root.mkdir()
    nb = new_notebook(
        cells=[new_code_cell(""), new_code_cell("")],
        metadata={"kernelspec": {"name": "webaccel", "display_name": "WebAccel (Rhai)", "language": "rhai"}},
    )
    nbformat.write(nb, root / "lab.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        **jupyter_env,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        WEBACCEL_DB=str(tmp_path / "results.duckdb"),
        WEBACCEL_HISTORY=str(tmp_path / "history.jsonl"),
    )
    env.pop("JUPYTER_PATH", None)
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=open(tmp_path / "lab.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                assert lab.poll() is None and time.monotonic() < deadline, (tmp_path / "lab.log").read_text()
                time.sleep(0.5)
        cache = Path(os.environ.get("WEBACCEL_CACHE", Path.home() / ".cache" / "webaccel"))
        shots = Path(os.environ.get("WEBACCEL_ARTIFACTS", cache / "artifacts")) / "jupyterlab"
        shots.mkdir(parents=True, exist_ok=True)
        for old in shots.glob("*.png"):
            old.unlink()
        url = f"http://127.0.0.1:{port}/lab/tree/lab.ipynb?token={token}"
        drive = subprocess.run(["node", str(DRIVER), url, str(shots)], capture_output=True, text=True, timeout=600)
        print(f"JupyterLab screenshots: {shots}")
        assert drive.returncode == 0, (drive.stdout, drive.stderr, (tmp_path / "lab.log").read_text()[-3000:])
        seen = json.loads(drive.stdout.strip().splitlines()[-1])
    finally:
        # The lab's kernels (and their browsers) go with it.
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/shutdown?token={token}", data=b"", method="POST")
            urllib.request.urlopen(request, timeout=30).read()
        except OSError:
            pass
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, 9)
    assert seen["svg"] >= 1 and seen["svgTitle"] is True, seen
    assert "budget_ms" in seen["completions"], seen
    assert seen["progress"].startswith("compare: 0/1 cells") and "timed runs" in seen["progress"], seen
    assert "Interrupted" in seen["interrupted"] and seen["interruptSeconds"] < 5, seen
    for name in ("1-plot", "2-completion", "3-progress", "4-interrupted"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
