"""k-WTA selection rules (spikeformer.arch.wta): the group rule's tree circuit = its definition, its cost formulas,
and synaptic ops per spike that do not grow with the width (the index rule's do)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.simulate import simulate
from spikeformer.arch.nodes import PopSpec, Spec
from spikeformer.arch.wta import RULES, TREE_ARITY, first_in_groups, lower_group, tree_height
from spikeformer.configure.validate import model_config
from spikeformer.lower.convert import lower_spec


def circuit(rule: str, n: int, m: int, k: int, arity: int = TREE_ARITY) -> Spec:
    if rule == "group":
        pops, projs = lower_group("s", "sel", (n, m), k, "hidden_kwta", arity)
    else:
        pops, projs = RULES[rule].lower("s", "sel", (n, m), k, "hidden_kwta")
    return Spec((PopSpec("s", (n, m), "input", None, "input"), *pops), tuple(projs), "sel")


def run(rule: str, s: np.ndarray, k: int, numerics: str = "loihi", arity: int = TREE_ARITY):
    """(selected spikes (B, T, n, m), graph, SimResult) of the lowered circuit on spikes s."""
    B, T, n, m = s.shape
    graph = lower_spec(circuit(rule, n, m, k, arity), numerics, T)
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


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 3), m=st.integers(1, 70), seed=st.integers(0, 2**32 - 1), arity=st.integers(2, 9),
       density=st.sampled_from([0.05, 0.3, 0.7, 1.0]), numerics=st.sampled_from(["loihi", "float"]), data=st.data())
def test_group_circuit_equals_the_definition_and_the_torch_model(n, m, seed, arity, density, numerics, data):
    k = data.draw(st.integers(1, m))
    s = np.random.default_rng(seed).random((2, 3, n, m)) < density
    sel, graph, _ = run("group", s, k, numerics, arity)
    expect = definition(s, k)
    np.testing.assert_array_equal(sel, expect)
    torch_sel = first_in_groups(torch.tensor(s, dtype=torch.float32), k).numpy() > 0
    np.testing.assert_array_equal(torch_sel, expect)
    assert (sel.sum(axis=-1) <= k).all()
    h = tree_height(m, k, arity)
    assert arity ** h >= -(-m // k) and (h == 0 or arity ** (h - 1) < -(-m // k))
    assert graph.population("sel").depth == max(1, 2 * h - 1)


def pairs(m: int, b: int) -> int:
    """Σ over the blocks of b (the last one short) of C(size, 2)."""
    r = m % b
    return (m // b) * b * (b - 1) // 2 + r * (r - 1) // 2


@pytest.mark.parametrize("n, m, k, b", [(2, 64, 4, 2), (2, 64, 4, 4), (1, 40, 3, 3), (3, 9, 2, 2), (2, 8, 4, 4),
                                        (1, 6, 6, 4), (2, 100, 7, 4), (1, 1024, 8, 4), (2, 37, 2, 5),
                                        (1, 1024, 8, 8), (2, 200, 3, 8)])
def test_group_circuit_cost_matches_docstring(n, m, k, b):
    graph = lower_spec(circuit("group", n, m, k, b), "loihi", 1)
    h, g = tree_height(m, k, b), -(-m // k)
    widths = [-(-g // b ** lv) for lv in range(1, h)]                        # m_ℓ, ℓ = 1 … h−1
    sizes = np.diff(np.arange(k + 1) * m // k)
    neurons = sum(p.size for p in graph.populations if p.name != "s")
    syn = sum(len(p.indices) for p in graph.projections)
    leaf = n * (m + sum(pairs(int(gj), b) for gj in sizes))
    tree = (h >= 2) * n * (2 * m + k * sum(w + pairs(w, b) for w in widths) + 2 * k * sum(widths[:-1]))
    assert (neurons, syn) == (n * m + 2 * n * k * sum(widths), leaf + tree)
    assert graph.population("sel").depth == max(1, 2 * h - 1)


def ops_per_spike(rule: str, m: int, k: int, spikes_per_token: int, arity: int = TREE_ARITY, seed: int = 0) -> float:
    """Synaptic ops of the circuit per raw spike, random spikes with a fixed count per token and tick."""
    rng = np.random.default_rng(seed)
    s = np.zeros((2, 2, 4, m), bool)
    for idx in np.ndindex(s.shape[:-1]):
        s[idx][rng.choice(m, spikes_per_token, replace=False)] = True
    _, graph, res = run(rule, s, k, arity=arity)
    ops = sum(int(o.sum()) for name, o in res.synaptic_ops.items())
    return ops / s.sum()


def test_group_ops_per_spike_are_logarithmic_and_index_ops_linear_in_the_width():
    group = {(m, b): ops_per_spike("group", m, 8, 12, b) for m in (64, 512, 2048) for b in sorted({2, 8, TREE_ARITY})}
    index = {m: ops_per_spike("index", m, 8, 12) for m in (64, 512)}
    for (m, b), ops in group.items():                         # ≤ b + 1 + (h − 1)(2b + 1), h = ⌈log_b(M/k)⌉
        h = tree_height(m, 8, b)
        assert ops <= b + 1 + (h - 1) * (2 * b + 1), (m, b, ops)
    assert index[512] / index[64] > 6                         # O(M): ≈ M/2 ops per spike
    assert group[2048, TREE_ARITY] < index[512] / 5


def test_config_names_the_rule_and_its_limits():
    with pytest.raises(ValueError, match=r"config\.wta_rule must be one of \('index', 'group'\)"):
        model_config(dim=32, heads=2, stream_k=4, wta_rule="strongest")
    with pytest.raises(ValueError, match=r"config\.stream_k \(33\) must be null or in \[1, 32\]"):
        model_config(dim=32, heads=2, stream_k=33, wta_rule="group")
    model_config(dim=4096, heads=8, stream_k=200, hidden_k=200, wta_rule="group")   # no 2048 / 127 limit
    with pytest.raises(ValueError, match=r"config\.hidden_k \(200\) must be null or in \[1, 127\]"):
        model_config(dim=256, heads=8, hidden_k=200)
