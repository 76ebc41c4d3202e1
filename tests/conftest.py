"""Shared fixtures for the end-to-end tests. They drive the real `webaccel` binary, real
Chromium, onnxruntime-web in the page, the real model files and a DuckDB file."""

import json
import os
import time
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def webaccel_bin() -> str:
    path = os.environ.get("WEBACCEL_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("WEBACCEL_BIN must point at the built webaccel binary; run ./scripts/test.sh")
    return path


@pytest.fixture(scope="session", autouse=True)
def no_browser_outlives_the_suite():
    """When the suite ends, no browser started by webaccel and no profile directory remain."""
    yield
    import glob
    import tempfile
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and browser_pids():
        time.sleep(0.2)
    assert browser_pids() == [], "browsers outlived the test suite"
    assert glob.glob(str(Path(tempfile.gettempdir()) / "webaccel-profile-*")) == [], "profile directories outlived the test suite"


@pytest.fixture(scope="session")
def binary() -> str:
    return webaccel_bin()


@pytest.fixture()
def db_path(tmp_path) -> Path:
    return tmp_path / "results.duckdb"


@pytest.fixture()
def run_script(binary, tmp_path, db_path):
    """Runs Rhai code through `webaccel run` with a private results database."""

    def run(code: str, timeout: float = 600, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        script = tmp_path / "script.rhai"
        script.write_text(code)
        env = dict(os.environ, WEBACCEL_DB=str(db_path), **(env or {}))
        proc = subprocess.run([binary, "run", str(script)], capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"webaccel run failed ({proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    return run


def last_json_line(stdout: str):
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            return json.loads(line)
    raise AssertionError(f"no JSON line in output:\n{stdout}")


@pytest.fixture(scope="session")
def jupyter_env(binary, tmp_path_factory):
    """A private Jupyter data directory with the webaccel kernelspec installed by the binary."""
    data_dir = tmp_path_factory.mktemp("jupyter-data")
    env = dict(os.environ, JUPYTER_DATA_DIR=str(data_dir))
    env.pop("JUPYTER_PATH", None)
    subprocess.run([binary, "install"], check=True, env=env, capture_output=True)
    return env


@pytest.fixture(scope="session")
def kernel_env(jupyter_env, tmp_path_factory):
    """Sets the process environment so jupyter_client finds the private kernelspec."""
    db = tmp_path_factory.mktemp("kernel-db") / "results.duckdb"
    saved = dict(os.environ)
    os.environ.update(jupyter_env)
    os.environ["WEBACCEL_DB"] = str(db)
    # The kernels' history is kept across restarts; the tests' is their own.
    os.environ["WEBACCEL_HISTORY"] = str(db.parent / "history.jsonl")
    os.environ.pop("JUPYTER_PATH", None)
    yield db
    os.environ.clear()
    os.environ.update(saved)


def browser_pids(profile_marker: str = "webaccel-profile-") -> list[int]:
    """Main browser processes started by webaccel: they carry our profile directory (Chromium
    as --user-data-dir=PATH, Firefox as --profile PATH) and, unlike their helper processes, no
    --type= switch (Chromium) or -contentproc (Firefox)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        chromium = any(a.startswith(b"--user-data-dir=") and profile_marker.encode() in a for a in args)
        firefox = any(a == b"--profile" for a in args) and any(profile_marker.encode() in a for a in args)
        helper = any(a.startswith(b"--type=") or a == b"-contentproc" for a in args)
        if (chromium or firefox) and not helper:
            pids.append(int(proc.name))
    return pids


__all__ = ["browser_pids", "last_json_line", "shutil"]


TIMEOUT = 600


def execute(kc, code, timeout=TIMEOUT, **options):
    """Runs code in the kernel; returns (reply content, iopub messages for it)."""
    msg_id = kc.execute(code, **options)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], outputs


def of_type(outputs, msg_type):
    return [m["content"] for m in outputs if m["msg_type"] == msg_type]


@pytest.fixture()
def kernel(kernel_env):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="webaccel", startup_timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def alive(pid):
    """Whether a process runs (a zombie, or one gone, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def wait_gone(pids, seconds):
    """Waits up to `seconds` for every one of `pids` to stop; True when none is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return not any(alive(p) for p in pids)


def is_descendant(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            return False
    return False


def profiles_of(pids):
    profiles = []
    for pid in pids:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for a in args:
            if a.startswith(b"--user-data-dir="):
                profiles.append(a.split(b"=", 1)[1].decode())
    return profiles
