"""Shared fixtures: small trained models (trained once per session) and their graphs."""
from __future__ import annotations

import os

from spikeformer.configure.validate import model_config

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

# tiny runs per attention kind: preset "tiny" with these model/train overrides
TINY_VARIANTS = {
    "sdsa": ({}, {}),
    "kwta": ({"attention": "kwta", "kwta_k": 2, "hidden_k": 8, "dim": 16}, {}),
    "ssa": ({"attention": "ssa", "dim": 16, "heads": 2, "mask_count": 2}, {"epochs": 1}),
    # the width sweep's sparse model: k-WTA residual stream and hidden layer, fixed fan-in
    "stream_k": ({"stream_k": 3, "hidden_k": 4, "fan_in": 6, "wta_rule": "group"}, {"epochs": 1}),   # trees: 10–16 per group
    # the same by strength (spikeformer.arch.wta_strength): voltage probes, level counts, trees over 8 levels
    "strength": ({"stream_k": 3, "hidden_k": 4, "fan_in": 6, "wta_rule": "strength"}, {"epochs": 1}),
    # no block (the width ladder's R5): the embedding read out through its k-WTA stream population
    "depth0": ({"depth": 0, "stream_k": 3, "wta_rule": "strength"}, {"epochs": 1}),
    # causal attention (token i sees rows j ≤ i): its static wiring, three-way exact
    "sdsa_causal": ({"causal": True}, {"epochs": 1}),
    "kwta_causal": ({"attention": "kwta", "kwta_k": 2, "dim": 16, "causal": True}, {"epochs": 1}),
}


def train_tiny(out, kind: str):
    from dataclasses import replace

    from spikeformer.configure import presets
    from spikeformer.runs.steps import convert_run
    from spikeformer.train.trainer import train

    model_cfg, train_cfg = presets.preset("tiny")
    model_over, train_over = TINY_VARIANTS[kind]
    model_cfg = model_config(**{**model_cfg.flat(), **model_over})
    train(model_cfg, replace(train_cfg, **train_over), out, progress=False)
    convert_run(out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A trained `tiny` preset run directory (SDSA) with its AER graph converted (~10 s).

    $SPIKEFORMER_TEST_TINY_RUN names one trained before (tools/mutation_pass.py: one per pass, not per mutant);
    tests only read it or copy it."""
    if os.environ.get("SPIKEFORMER_TEST_TINY_RUN"):
        from pathlib import Path
        return Path(os.environ["SPIKEFORMER_TEST_TINY_RUN"])
    return train_tiny(tmp_path_factory.mktemp("tiny_run"), "sdsa")


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, tiny_run):
    """kind → trained tiny run directory, for every attention kind (trained on first use)."""
    runs = {"sdsa": tiny_run}

    def get(kind: str):
        if kind not in runs:
            runs[kind] = train_tiny(tmp_path_factory.mktemp(f"tiny_{kind}"), kind)
        return runs[kind]
    return get
