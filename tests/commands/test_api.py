"""The Python API: the README's example runs as written; arrays and torch Datasets train the same model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    m = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert m, "README.md: the api-example block is missing"
    return m.group(1)


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md:api-example", "exec"), {})
    out = capsys.readouterr().out
    assert "simulator = model 1.0" in out and "Lava = simulator True" in out, out
    run = tmp_path / "runs" / "api-example"
    cfg = json.loads((run / "config.json").read_text())["model"]
    data, arch = cfg["data"], cfg["arch"]
    assert data["dataset"] == "spikes" and data["data_path"] == str((run / "data.npz").resolve())
    assert (arch["timesteps"], arch["tokens"], arch["features"], arch["classes"]) == (4, 2, 6, 2)
    acc = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.75                                  # the rates differ five-fold: the model must tell them apart


def test_torch_dataset_and_held_out_arrays(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    from spikeformer.app import api
    from spikeformer.data.registry import load_dataset
    from spikeformer.runs.rundir import load_model

    rng = np.random.default_rng(1)
    x, y = rng.random((40, 2, 3, 4)) < 0.3, np.arange(40) % 2
    ds = TensorDataset(torch.from_numpy(x[:30]).float(), torch.from_numpy(y[:30]))
    run = api.train(ds, out=tmp_path / "r", test=x[30:], test_labels=y[30:],
                    model={"dim": 8, "heads": 2}, train={"epochs": 1})
    split = load_dataset(load_model(run).cfg)
    assert (split.x_test == x[30:]).all() and (split.y_test == y[30:]).all() and len(split.y_train) == 30
    with pytest.raises(ValueError, match=r"data: expected spikes \(n, T, tokens, features\)"):
        api.train(x[:, 0], y, out=tmp_path / "bad")
    with pytest.raises(ValueError, match="spikes must be 0 or 1"):
        api.train(x * 2.0 + 0.5, y, out=tmp_path / "bad")


def test_another_runs_data_is_never_overwritten(tmp_path):
    from spikeformer.app import api
    out = tmp_path / "run"
    out.mkdir()
    theirs = np.zeros((4, 2, 3, 5), bool)
    np.savez_compressed(out / "data.npz", spikes=theirs, labels=np.arange(4))
    before = (out / "data.npz").read_bytes()
    x = np.ones((4, 2, 3, 5), bool)
    with pytest.raises(ValueError, match=r"data\.npz: holds other data than this run's"):
        api.train(x, np.arange(4), out=out)
    assert (out / "data.npz").read_bytes() == before
