"""Shared fixtures: a small trained model (trained once per session) and its graph."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A trained `tiny` preset run directory with its AER graph converted (~10 s)."""
    from spikeformer import presets
    from spikeformer.pipeline import convert_run
    from spikeformer.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    model_cfg, train_cfg = presets.preset("tiny")
    train(model_cfg, train_cfg, out, progress=False)
    convert_run(out)
    return out
