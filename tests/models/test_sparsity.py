"""Ternary and fixed-non-zero-count weights: kept through training, lowered to synapses, bit-exact in Lava."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.layers.sparsity import kept, project_, topk_mask
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.runs.rundir import load_model
from spikeformer.runs.steps import convert_run, load_run_graph
from spikeformer.train.trainer import train


@pytest.fixture(scope="module")
def ternary_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ternary")
    m, t = presets.preset("tiny")
    m.weights.kind, m.weights.sparsity = "ternary", 0.9
    train(m, t, out, progress=False)
    convert_run(out)
    return out


def test_fixed_nonzero_count_and_ternary_values_hold_after_training(ternary_run):
    model = load_model(ternary_run)
    for name, p in model.weights.items():
        k = kept(p.numel(), 0.9)
        assert int((p != 0).sum()) <= k                                   # parameters re-projected each step
        w = model.weight(name.replace("_", ".", 1) if name.startswith("b") else name).detach().numpy()
        assert int((w != 0).sum()) == k                                    # exactly k synaptic weights
        values = np.unique(np.abs(w[w != 0]))
        assert len(values) == 1 and values[0] % 2 == 0                     # ternary: {−2g, 0, 2g}


def test_only_nonzero_weights_become_synapses(ternary_run):
    model = load_model(ternary_run)
    graph = load_run_graph(ternary_run)
    tokens = model.cfg.arch.tokens
    for pr in graph.projections:
        spec = next(s for s in model.spec.projections if s.name == pr.name)
        if spec.op == "linear":
            w = model.weight(spec.param).detach().numpy()
            assert pr.n_synapses == int((w != 0).sum()) * tokens
            assert set(np.abs(pr.weights).tolist()) == set(np.abs(w[w != 0]).astype(int).tolist())


def test_ternary_sparse_model_is_three_way_bit_exact(ternary_run):
    from test_three_way import assert_identical, three_way
    assert_identical(*three_way(ternary_run, 20))


def test_projection_keeps_the_largest_magnitudes():
    w = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0]])
    np.testing.assert_array_equal(topk_mask(w, 2).numpy(), [[0, 1, 0], [1, 0, 0]])
    pd = torch.nn.ParameterDict({"a": torch.nn.Parameter(w.clone())})
    project_(pd, 0.5)
    assert int((pd["a"] != 0).sum()) == 3


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, "0.5"])
def test_sparsity_outside_unit_interval_is_named(bad):
    with pytest.raises(ValueError, match=r"config.weight_sparsity must be (in \(0, 1\)|a finite number or null)"):
        model_config(weight_sparsity=bad)
    with pytest.raises(ValueError, match="config.weights"):
        model_config(weights="binary")
    SpikingTransformer(model_config(dim=8, heads=2, weights="ternary", weight_sparsity=0.5))
