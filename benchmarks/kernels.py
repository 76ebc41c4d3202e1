"""Benchmark: the webaccel kernel against ipykernel and xeus-python's xpython-raw, side by side in
one run, through jupyter_client: the execute round trip of a trivial cell, and start-up as two
figures, spawn to sockets bound (the shell port accepts a connection) and spawn to the first
kernel_info_reply.

    ./scripts/test.sh   # or demo.sh: the release binary is preferred when it exists
    source scripts/env.sh && $WEBACCEL_CACHE/venv/bin/python benchmarks/kernels.py

ipykernel and xeus-python go into a venv of their own ($WEBACCEL_CACHE/bench-kernels), pinned
below, so the suite's venv stays as CI needs it. Kernels alternate within each round, so drift
on a shared machine lands on all three.
"""

import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

CACHE = Path(os.environ.get("WEBACCEL_CACHE", Path.home() / ".cache" / "webaccel"))
VENV = CACHE / "bench-kernels"
PINS = ["ipykernel==7.4.0", "xeus-python==0.19.0"]
ROUND_TRIPS = 300
STARTS = 7


def bench_venv() -> Path:
    stamp = VENV / ".pins"
    if not stamp.is_file() or stamp.read_text() != "\n".join(PINS):
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", *PINS], check=True)
        stamp.write_text("\n".join(PINS))
    return VENV


def webaccel_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    release = target / "release" / "webaccel"
    return release if release.is_file() else target / "debug" / "webaccel"


def kernels(venv: Path) -> dict[str, list[str]]:
    binary = webaccel_binary()
    return {
        f"webaccel ({binary.parent.name})": [str(binary), "kernel", "--connection-file", "{cf}"],
        "ipykernel": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{cf}"],
        # As xeus-python's own kernelspec for XPython Raw starts it.
        "xpython-raw": [str(venv / "bin" / "python"), "-m", "xpython_launcher", "-f", "{cf}", "--raw"],
    }


def start(argv: list[str], tmp: Path):
    """Spawns a kernel on a fresh connection file; returns the process, the client, and the two
    start-up figures in ms."""
    # A signed session, as every real client uses (xeus checks a signature even under an empty key).
    key = secrets.token_hex(16).encode()
    cf, info = write_connection_file(str(tmp / f"k-{time.monotonic_ns()}.json"), ip="127.0.0.1", key=key)
    client = BlockingKernelClient(connection_file=cf)
    client.load_connection_file()
    client.start_channels()
    t0 = time.perf_counter()
    proc = subprocess.Popen([a.replace("{cf}", cf) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bound = None
    while bound is None:
        try:
            with socket.create_connection(("127.0.0.1", info["shell_port"]), timeout=0.05):
                bound = (time.perf_counter() - t0) * 1000
        except OSError:
            time.sleep(0.0005)
    # A request queued before the kernel bound may be lost on the way (ZeroMQ reconnects), so one
    # is sent every 5 ms until the first reply.
    first_reply = None
    while first_reply is None:
        client.kernel_info()
        try:
            client.get_shell_msg(timeout=0.005)
            first_reply = (time.perf_counter() - t0) * 1000
        except Empty:
            assert time.perf_counter() - t0 < 60, "no kernel_info_reply within 60 s"
    while True:  # the replies to the extra requests
        try:
            client.get_shell_msg(timeout=0.2)
        except Empty:
            break
    return proc, client, bound, first_reply


def round_trip_ms(client) -> float:
    t0 = time.perf_counter()
    msg_id = client.execute("1", store_history=False)
    while client.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
        pass
    return (time.perf_counter() - t0) * 1000


def stop(proc, client):
    client.shutdown()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    client.stop_channels()


def main():
    venv = bench_venv()
    specs = kernels(venv)
    bound = {k: [] for k in specs}
    first = {k: [] for k in specs}
    trips = {k: [] for k in specs}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env_db = tmp / "bench.duckdb"
        os.environ["WEBACCEL_DB"] = str(env_db)
        os.environ["WEBACCEL_HISTORY"] = str(tmp / "history.jsonl")
        for _ in range(STARTS):
            for name, argv in specs.items():
                proc, client, b, f = start(argv, tmp)
                bound[name].append(b)
                first[name].append(f)
                stop(proc, client)
        running = {name: start(argv, tmp) for name, argv in specs.items()}
        for name, (_, client, _, _) in running.items():
            for _ in range(20):  # warm
                round_trip_ms(client)
        for _ in range(ROUND_TRIPS):
            for name, (_, client, _, _) in running.items():
                trips[name].append(round_trip_ms(client))
        for proc, client, _, _ in running.values():
            stop(proc, client)
        assert not env_db.exists(), "a kernel that runs `1` opened the results database"
    base = "xpython-raw"
    print(f"{'kernel':<22}{'round trip p50':>16}{'spawn→bound p50':>17}{'spawn→kernel_info':>19}   (ms; x {base})")
    for name in specs:
        rt, b, f = (statistics.median(v[name]) for v in (trips, bound, first))
        rrt, rb, rf = (statistics.median(v[base]) for v in (trips, bound, first))
        print(f"{name:<22}{rt:9.3f} {rt / rrt:5.2f}x{b:10.1f} {b / rb:5.2f}x{f:12.1f} {f / rf:5.2f}x")


if __name__ == "__main__":
    main()
