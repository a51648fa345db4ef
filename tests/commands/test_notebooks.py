"""The event-trace notebooks run top to bottom on a small model and each writes figures."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert len(NOTEBOOKS) == 3
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path, kind", [(p, "sdsa") for p in NOTEBOOKS] +
                         [(p, "kwta") for p in NOTEBOOKS if p.name.startswith("02")],
                         ids=lambda x: getattr(x, "name", x))
def test_notebook_executes_and_draws(path, kind, tiny_runs, tmp_path, monkeypatch):
    from spikeformer.runs.steps import simulate_run
    run = tiny_runs(kind)
    if not (run / "simulation.npz").exists():
        simulate_run(run, 8)
    monkeypatch.setenv("SPIKEFORMER_RUN", str(run))
    monkeypatch.setenv("SPIKEFORMER_FIGURES", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs), pngs
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "a person running the notebook sees at least one plot"
    if kind == "kwta":
        assert (tmp_path / "kwta_winners.png").exists()
