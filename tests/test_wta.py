"""k-WTA selection rules (spikeformer.wta): the group rule's tree circuit = its definition, its cost formulas,
and synaptic ops per spike that do not grow with the width (the index rule's do)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sim.engine import simulate
from spikeformer.convert import lower_spec
from spikeformer.model import ModelConfig
from spikeformer.spec import PopSpec, Spec
from spikeformer.wta import RULES, first_in_groups, tree_height


def circuit(rule: str, n: int, m: int, k: int) -> Spec:
    pops, projs = RULES[rule].lower("s", "sel", (n, m), k, "hidden_kwta")
    return Spec((PopSpec("s", (n, m), "input", None, "input"), *pops), tuple(projs), "sel")


def run(rule: str, s: np.ndarray, k: int, numerics: str = "loihi"):
    """(selected spikes (B, T, n, m), graph, SimResult) of the lowered circuit on spikes s."""
    B, T, n, m = s.shape
    graph = lower_spec(circuit(rule, n, m, k), numerics, T)
    res = simulate(graph, {"s": s.reshape(B, T, -1)})
    d = graph.population("sel").depth
    return res.spikes["sel"][:, d:d + T].reshape(s.shape), graph, res


def definition(s: np.ndarray, k: int) -> np.ndarray:
    """Brute force: channel c of group j = ⌊…⌋ passes iff no earlier channel of its group spiked."""
    m = s.shape[-1]
    start = np.arange(k + 1) * m // k
    out = np.zeros_like(s)
    for j in range(k):
        for c in range(start[j], start[j + 1]):
            out[..., c] = s[..., c] & ~s[..., start[j]:c].any(axis=-1)
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), m=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       density=st.sampled_from([0.05, 0.3, 0.7, 1.0]), numerics=st.sampled_from(["loihi", "float"]), data=st.data())
def test_group_circuit_equals_the_definition_and_the_torch_model(n, m, seed, density, numerics, data):
    k = data.draw(st.integers(1, m))
    s = np.random.default_rng(seed).random((2, 3, n, m)) < density
    sel, graph, _ = run("group", s, k, numerics)
    expect = definition(s, k)
    np.testing.assert_array_equal(sel, expect)
    torch_sel = first_in_groups(torch.tensor(s, dtype=torch.float32), k).numpy() > 0
    np.testing.assert_array_equal(torch_sel, expect)
    assert (sel.sum(axis=-1) <= k).all()
    h = tree_height(m, k)
    assert graph.population("sel").depth == max(1, 2 * h - 1)


@pytest.mark.parametrize("n, m, k", [(2, 64, 4), (1, 40, 3), (3, 9, 2), (2, 8, 4), (1, 6, 6), (2, 100, 7)])
def test_group_circuit_cost_matches_docstring(n, m, k):
    spec = circuit("group", n, m, k)
    graph = lower_spec(spec, "loihi", 1)
    h, P = tree_height(m, k), 1 << tree_height(m, k)
    sizes = np.diff(np.arange(k + 1) * m // k)
    neurons = sum(p.size for p in graph.populations if p.name != "s")
    syn = sum(len(p.indices) for p in graph.projections)
    pairs = int((sizes // 2).sum())
    if h >= 2:
        assert (neurons, syn) == (n * m + 2 * n * k * (P - 2), n * (3 * m + pairs + k * (7 * P // 2 - 11)))
    else:
        assert (neurons, syn) == (n * m, n * (m + pairs))


def ops_per_spike(rule: str, m: int, k: int, spikes_per_token: int, seed: int = 0) -> float:
    """Synaptic ops of the circuit per raw spike, random spikes with a fixed count per token and tick."""
    rng = np.random.default_rng(seed)
    s = np.zeros((2, 2, 4, m), bool)
    for idx in np.ndindex(s.shape[:-1]):
        s[idx][rng.choice(m, spikes_per_token, replace=False)] = True
    _, graph, res = run(rule, s, k)
    ops = sum(int(o.sum()) for name, o in res.synaptic_ops.items())
    return ops / s.sum()


def test_group_ops_per_spike_are_logarithmic_and_index_ops_linear_in_the_width():
    group = {m: ops_per_spike("group", m, 8, 12) for m in (64, 512, 2048)}
    index = {m: ops_per_spike("index", m, 8, 12) for m in (64, 512)}
    for m, ops in group.items():                              # ≤ 5h − 2, h = log₂(M/k): 13, 28, 38
        assert ops <= 5 * tree_height(m, 8) - 2, (m, ops)
    assert index[512] / index[64] > 6                         # O(M): ≈ M/2 ops per spike
    assert group[2048] < index[512] / 5


def test_config_names_the_rule_and_its_limits():
    with pytest.raises(ValueError, match=r"config\.wta_rule must be one of \('index', 'group'\)"):
        ModelConfig(dim=32, heads=2, stream_k=4, wta_rule="strongest")
    with pytest.raises(ValueError, match=r"config\.stream_k \(33\) must be null or in \[1, 32\]"):
        ModelConfig(dim=32, heads=2, stream_k=33, wta_rule="group")
    ModelConfig(dim=4096, heads=8, stream_k=200, hidden_k=200, wta_rule="group")   # no 2048 / 127 limit
    with pytest.raises(ValueError, match=r"config\.hidden_k \(200\) must be null or in \[1, 127\]"):
        ModelConfig(dim=256, heads=8, hidden_k=200)
