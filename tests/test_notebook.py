"""notebooks/quickstart.ipynb runs headless under nbclient with the installed kernel."""

from pathlib import Path

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
