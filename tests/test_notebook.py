"""The notebooks in notebooks/ run headless under nbclient with the installed kernel; their
figures are checked against the results database (or the reference), and each converts to HTML
with nbconvert keeping its SVG plots."""

import math
from pathlib import Path

import duckdb

import nbformat
from nbclient import NotebookClient

import reference

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_notebook_runs_and_similarity_matches_reference(kernel_env):
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="webaccel", timeout=600, startup_timeout=60).execute()

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code_cells:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    # The embedding cells show their measurements as an HTML table.
    assert "<table" in code_cells[1].outputs[-1]["data"]["text/html"]
    last = code_cells[-1]
    streamed = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert "cosine similarity:" in streamed
    similarity = float(last.outputs[-1]["data"]["text/plain"])
    e = reference.embed("all-minilm-l6-v2", ["A man is eating food.", "A man is eating a piece of bread."])
    assert abs(similarity - reference.cosine(e[0], e[1])) < 0.01


def _run(name, tmp_path):
    """Executes notebooks/<name> with the installed kernel, in tmp_path (its files land there),
    and converts it to HTML as a reader would share it."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, kernel_name="webaccel", timeout=600, startup_timeout=60,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], (cell.source, cell.outputs)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (tmp_path / name.replace(".ipynb", ".html")).write_text(html)
    return nb, html


def _svgs(html):
    """SVG plots in converted HTML: inline, as a frame's table shows its plots, or as data URLs,
    which nbconvert writes for an image/svg+xml output."""
    return html.count("<svg") + html.count("data:image/svg+xml")


def _latest_experiments(db, n):
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids = [r[0] for r in con.execute("select experiment_id from experiments order by started_at desc limit ?", [n]).fetchall()]
        rows = con.execute(
            "select experiment_id, platform, precision, browser, status, latency_ms, accuracy_cosine, adapter_software "
            "from runs where experiment_id in (select unnest(?)) order by cell_index", [ids]).fetchall()
        return ids, rows
    finally:
        con.close()


def test_compare_platforms_notebook(kernel_env, tmp_path):
    nb, html = _run("compare-platforms.ipynb", tmp_path)
    _, rows = _latest_experiments(kernel_env, 1)
    by_platform = {r[1]: r for r in rows}
    assert set(by_platform) == {"native", "wasm", "webgpu", "webnn"}
    # Each platform measured, and each agrees with native fp32 (the int8-weight file against
    # its own fp32 reference: cosine above 0.99).
    for platform in ("wasm", "webgpu", "webnn"):
        _, _, _, browser, status, latency, cosine, _ = by_platform[platform]
        assert status == "ok" and latency > 0 and cosine > 0.99, by_platform[platform]
    assert by_platform["webnn"][3] == "headless-shell" and by_platform["webgpu"][7] is True
    assert "CPU-emulated GPU: not a GPU figure" in html
    assert _svgs(html) >= 3, "the grid's plots and the speedup plot survive conversion"


def test_precision_vs_accuracy_notebook(kernel_env, tmp_path):
    _, html = _run("precision-vs-accuracy.ipynb", tmp_path)
    _, rows = _latest_experiments(kernel_env, 1)
    cosine = {r[2]: r[6] for r in rows}
    assert set(cosine) == {32, 16, 8, 4} and all(r[4] == "ok" for r in rows), rows
    # Stated tolerances against native fp32: the fp32 file on wasm matches to float rounding;
    # each narrower precision loses a little, and none loses much.
    assert cosine[32] > 0.99999 and cosine[16] > 0.9999 and cosine[8] > 0.98 and cosine[4] > 0.9, cosine
    assert _svgs(html) >= 4, "the grid's three plots and the scatter"


def test_ipfs_models_notebook(kernel_env, tmp_path):
    nb, _ = _run("ipfs-models.ipynb", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    cid = code[0].outputs[-1]["data"]["text/plain"].strip('"')
    assert cid.startswith("bafk") or cid.startswith("bafy"), cid
    hit = code[1].outputs[-1]["data"]["text/plain"]
    assert '"cache_hit": true' in hit and cid in hit, hit
    assert '"same_cid": true' in code[2].outputs[-1]["data"]["text/plain"]


def test_analysis_notebook(kernel_env, tmp_path):
    nb, html = _run("analysis.ipynb", tmp_path)
    assert (tmp_path / "runs.parquet").is_file()
    count = duckdb.sql(f"select count(*), count(distinct experiment) from read_parquet('{tmp_path / 'runs.parquet'}')").fetchone()
    assert count[0] >= 8 and count[1] >= 2, count
    assert _svgs(html) >= 1


def test_generation_notebook(kernel_env, tmp_path):
    nb, html = _run("generation.ipynb", tmp_path)
    con = duckdb.connect(str(kernel_env), read_only=True)
    try:
        experiment = con.execute("select experiment_id from experiments order by started_at desc limit 1").fetchone()[0]
        rows = con.execute(
            "select platform, precision, status, ttft_ms, decode_tokens_per_s, len(decode_rates), accuracy_tokens_leading, "
            "accuracy_reference, generated_tokens from runs where experiment_id = ? order by cell_index", [experiment]).fetchall()
    finally:
        con.close()
    assert {(r[0], r[1]) for r in rows} == {(p, b) for p in ("wasm", "webnn", "native") for b in (32, 4)}, rows
    for platform, precision, status, ttft, decode, samples, leading, against, generated in rows:
        assert status == "ok" and ttft > 0 and decode > 0 and samples == 3, rows
        if precision == 32 and platform != "native":
            # fp32 in the page is token for token native fp32's greedy generation.
            assert leading == generated or "this run is the reference" in against, (platform, leading, against)
    assert _svgs(html) >= 3, "the latency, decode-rate and TTFT plots"
    assert "decode_tok_s" in html


def test_rust_analysis_notebook(kernel_env, tmp_path):
    nb, html = _run("rust-analysis.ipynb", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "<table" in code[1].outputs[-1]["data"]["text/html"], "the Rust Table shows as HTML"
    geomean = float(code[2].outputs[-1]["data"]["text/plain"])
    # The same statistic from the database, by DuckDB: medians per model and platform.
    con = duckdb.connect(str(kernel_env), read_only=True)
    try:
        experiment = con.execute("select experiment_id from experiments order by started_at desc limit 1").fetchone()[0]
        medians = dict(((m, p), v) for m, p, v in con.execute(
            "select model_name, platform, median(latency_ms) from runs where experiment_id = ? and status = 'ok' "
            "group by all", [experiment]).fetchall())
    finally:
        con.close()
    models = {m for m, _ in medians}
    assert len(models) == 2 and all((m, p) in medians for m in models for p in ("native", "wasm")), medians
    expected = math.exp(sum(math.log(medians[(m, "native")] / medians[(m, "wasm")]) for m in models) / len(models))
    assert abs(geomean - expected) <= 1e-9 * expected, (geomean, expected)
    printed = "".join(o.get("text", "") for o in code[2].outputs if o.output_type == "stream")
    assert f"geometric mean over 2 models: {expected:.3f}x" in printed, printed

