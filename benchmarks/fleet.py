"""Benchmark: remote browsers through a real Selenium Grid against the local browser, side by side
in one run. Starts a hub and two nodes in network namespaces (tests/fleet.py, as root), then:

- the bridge's overhead per inference call, a bare and a 4 KiB data-channel round trip, and the
  model's delivery to the page, on grid:lab-a against local Chromium (the `remote` example,
  whose samples alternate between the two);
- a compare over both nodes with `parallel: true` against the same compare run sequentially,
  alternating, with each run's wall time and the sum of its cells' times.

    ./scripts/setup.sh && source scripts/env.sh && \\
        $WEBACCEL_CACHE/venv/bin/python benchmarks/fleet.py

Both nodes' browsers run on this machine's two cores, which the local browser and webaccel
share, so the parallel speed-up here is bounded by the cores, not by webaccel: on real machines
each node computes on its own hardware.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import fleet  # noqa: E402

MODEL = "all-minilm-l6-v2"
ROUNDS = 3
COMPARE = """
configure_browsers(#{grid: "HUB"});
let f = compare(#{models: ["MODEL"], browsers: ["grid:lab-a", "grid:lab-b"], platforms: ["wasm"],
                  runs: 300, warmup: 5, warmup_s: 0, parallel: PARALLEL});
print(#{wall: f.wall_ms, cells: f.cells_ms}.to_json());
"""


def compare_once(binary: Path, tmp: Path, hub: str, parallel: bool) -> dict:
    script = tmp / "compare.rhai"
    script.write_text(COMPARE.replace("HUB", hub).replace("MODEL", MODEL).replace("PARALLEL", str(parallel).lower()))
    env = dict(os.environ, WEBACCEL_DB=str(tmp / "bench.duckdb"))
    proc = subprocess.run([str(binary), "run", str(script)], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    why = fleet.available()
    if why:
        sys.exit(f"cannot start the Grid lab: {why}")
    binary = Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "webaccel"
    with tempfile.TemporaryDirectory() as tmp, fleet.Fleet(["lab-a", "lab-b"], Path(tmp)) as lab:
        env = dict(os.environ, WEBACCEL_GRID=lab.hub_url)
        subprocess.run(
            ["cargo", "run", "-q", "-p", "webaccel-browser-runtime", "--example", "remote", "grid:lab-a"],
            cwd=ROOT, env=env, check=True,
        )
        runs = {True: [], False: []}
        for _ in range(ROUNDS):
            for parallel in (False, True):
                runs[parallel].append(compare_once(binary, Path(tmp), lab.hub_url, parallel))
    print()
    print(f"compare over grid:lab-a and grid:lab-b ({MODEL}, wasm, 300 runs each), {ROUNDS} alternating rounds:")
    print(f"{'':<12}{'wall ms':>10}{'cells ms':>10}{'wall/cells':>12}")
    for parallel, label in ((False, "sequential"), (True, "parallel")):
        wall = statistics.median(r["wall"] for r in runs[parallel])
        cells = statistics.median(r["cells"] for r in runs[parallel])
        print(f"{label:<12}{wall:10.0f}{cells:10.0f}{wall / cells:12.2f}")
    ratio = statistics.median(runs[True][i]["wall"] / runs[False][i]["wall"] for i in range(ROUNDS))
    print(f"parallel wall / sequential wall, median of the rounds' ratios: {ratio:.2f}")


if __name__ == "__main__":
    main()
