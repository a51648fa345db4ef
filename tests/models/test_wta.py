"""k-WTA selection rules (spikeformer.arch.wta, wta_strength): each circuit = its definition, their cost formulas,
and synaptic ops per spike that do not grow with the width (the index rule's do)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import numerics as nm
from sim.engine.simulate import simulate
from sim.neurons.cuba import CubaLIF
from sim.neurons.probe import VoltageProbe
from spikeformer.arch.nodes import PopSpec, ProjSpec, Spec
from spikeformer.arch.wta import RULES, TREE_ARITY, Potential, lower_group, tree_height
from spikeformer.arch.wta_strength import STRENGTH_LEVELS, level_thresholds, lower_strength, strongest
from spikeformer.configure.validate import model_config
from spikeformer.layers.lif import lif_sequence_voltage
from spikeformer.lower.convert import lower_spec, token_shared_csr


def circuit(rule: str, n: int, m: int, k: int, arity: int = TREE_ARITY) -> Spec:
    source = PopSpec("s", (n, m), "input", None, "input")
    if rule == "group":
        pops, projs = lower_group("s", "sel", (n, m), k, "hidden_kwta", arity)
    else:
        pops, projs = RULES[rule].lower(source, (), "sel", k, "hidden_kwta")
    return Spec((source, *pops), tuple(projs), "sel")


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
    torch_sel = RULES["group"].select(torch.tensor(s, dtype=torch.float32), k, None).numpy() > 0
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
    with pytest.raises(ValueError, match=r"config\.wta_rule must be one of \('index', 'group', 'strength'\)"):
        model_config(dim=32, heads=2, stream_k=4, wta_rule="strongest")
    with pytest.raises(ValueError, match=r"config\.stream_k \(33\) must be null or in \[1, 32\]"):
        model_config(dim=32, heads=2, stream_k=33, wta_rule="group")
    model_config(dim=4096, heads=8, stream_k=200, hidden_k=200, wta_rule="group")   # no 2048 / 127 limit
    with pytest.raises(ValueError, match=r"config\.hidden_k \(200\) must be null or in \[1, 127\]"):
        model_config(dim=256, heads=8, hidden_k=200)
    model_config(dim=1024, heads=8, stream_k=4, hidden_k=127, wta_rule="strength")     # any width
    with pytest.raises(ValueError, match=r"config\.hidden_k \(128\) must be null or in \[1, 127\].*strength"):
        model_config(dim=1024, heads=8, hidden_k=128, wta_rule="strength")


# k-WTA by strength (spikeformer.arch.wta_strength) ------------------------------------------------------------


LIF = CubaLIF(du=4095, dv=1024, vth=128)


def brute_strength(s: np.ndarray, v: np.ndarray, k: int, unit: int) -> np.ndarray:
    """The definition, token by token: levels from v, keep all above the cut level, then the first level-κ
    spike of the first groups (in order) holding one, until k."""
    theta = level_thresholds(LIF.vth)
    out = np.zeros(s.shape, bool)
    m = s.shape[-1]
    start = np.arange(k + 1) * m // k
    for idx in np.ndindex(s.shape[:-1]):
        spikes = [c for c in range(m) if s[idx][c]]
        level = {c: sum(float(v[idx][c]) > unit * th for th in theta[1:]) for c in spikes}
        keep = set(spikes)
        if len(spikes) > k:
            cut = max(lv for lv in range(len(theta)) if sum(level[c] >= lv for c in spikes) > k)
            keep = {c for c in spikes if level[c] > cut}
            for j in range(k):
                tied = [c for c in range(start[j], start[j + 1]) if c in level and level[c] == cut]
                if tied and len(keep) < k:
                    keep.add(tied[0])
        out[idx][sorted(keep)] = True
    return out


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       spread=st.sampled_from([1, 3, 40]), numerics=st.sampled_from(["loihi", "float"]), data=st.data())
def test_strength_definition_equals_a_brute_force_reference(m, seed, density, spread, numerics, data):
    """Ties (``spread`` distinct voltages), empty tokens (density 0), both numerics' units."""
    k = data.draw(st.integers(1, m))
    rng = np.random.default_rng(seed)
    unit = 64 if numerics == "loihi" else 1
    s = rng.random((2, 3, 2, m)) < density
    values = rng.integers(unit * LIF.vth + 1, 3 * unit * LIF.vth, spread)
    v = np.where(s, rng.choice(values, s.shape), 0)
    v = v.astype(np.int32) if numerics == "loihi" else (v / 7).astype(np.float32) * 7     # float: non-integers too
    kept = strongest(torch.tensor(s, dtype=torch.float32), k, Potential(torch.tensor(v), LIF, unit)).numpy() > 0
    np.testing.assert_array_equal(kept, brute_strength(s, v, k, unit))
    assert (kept.sum(-1) <= np.minimum(k, s.sum(-1))).all()


def strength_circuit(n: int, m: int, f: int, k: int, arity: int) -> Spec:
    """Input (n, f) → linear W → S = LIF (n, m) → the strength circuit ``sel``."""
    pops = [PopSpec("in", (n, f), "input", None, "input"), PopSpec("s", (n, m), "lif", LIF, "hidden")]
    projs = [ProjSpec("w", "in", "s", "linear", "w")]
    more, links = lower_strength(pops[1], tuple(projs), "sel", k, "hidden_kwta", arity)
    return Spec((*pops, *more), (*projs, *links), "sel")


def run_strength(x: np.ndarray, w: np.ndarray, k: int, numerics: str, arity: int = TREE_ARITY):
    """(kept by the circuit, kept by the torch definition, graph, SimResult) for input spikes x (B, T, n, f)."""
    B, T, n, f = x.shape
    graph = lower_spec(strength_circuit(n, w.shape[0], f, k, arity), numerics, T,
                       linear=lambda pr: token_shared_csr(w, n))
    res = simulate(graph, {"in": x.reshape(B, T, -1)})
    d = graph.population("sel").depth
    sel = res.spikes["sel"][:, d:d + T].reshape(B, T, n, -1)
    loihi = numerics == "loihi"
    a = torch.tensor(x, dtype=torch.float32) @ torch.tensor(w.T, dtype=torch.float32)      # exact: small integers
    spikes, v = lif_sequence_voltage(a, LIF, loihi)
    ds = graph.population("s").depth
    np.testing.assert_array_equal(res.spikes["s"][:, ds:ds + T].reshape(spikes.shape), spikes.numpy() > 0)
    kept = strongest(spikes, k, Potential(v, LIF, 64 if loihi else 1)).numpy() > 0
    return sel, kept, graph, res


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), m=st.integers(1, 70), f=st.integers(1, 12), arity=st.integers(2, 9),
       density=st.sampled_from([0.0, 0.2, 0.6]), numerics=st.sampled_from(["loihi", "float"]),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_strength_circuit_equals_the_torch_definition(n, m, f, arity, density, numerics, seed, data):
    """Every tree height (arity 2 … 9, M/k 1 … 70), ties (weights from 4 values), both numerics."""
    k = data.draw(st.integers(1, min(m, 12)))
    rng = np.random.default_rng(seed)
    w = (rng.choice([0, 0, 45, 70, 100, 127, -20], (m, f)) * 2).astype(np.int16)       # (out, in), even weights
    x = rng.random((2, 3, n, f)) < density
    sel, kept, graph, _ = run_strength(x, w, k, numerics, arity)
    np.testing.assert_array_equal(sel, kept)
    h = tree_height(m, k, arity)
    assert graph.population("sel").depth - graph.population("s").depth == max(h + 2, 6) + max(h, 1) + 1


def test_strength_keeps_the_strongest_not_the_first():
    """One token, k = 2 of 8 channels in 2 groups: the two highest levels win wherever they sit; tied spikes
    at the cut level go to the group rule (the first of each group, groups in order)."""
    x = np.ones((1, 1, 1, 8), bool)                                                   # every channel spikes once
    w = np.diag([65, 70, 100, 125, 65, 127, 65, 65]).astype(np.int16) * 2            # levels 0 0 3 6 0 6 0 0
    sel, kept, _, _ = run_strength(x, w, 2, "loihi")
    assert sel[0, 0, 0].nonzero()[0].tolist() == kept[0, 0, 0].nonzero()[0].tolist() == [3, 5]
    w = np.diag([65, 65, 100, 100, 100, 100, 65, 65]).astype(np.int16) * 2            # 4 tied at level 3
    sel, kept, _, _ = run_strength(x, w, 3, "loihi")                                  # groups [0,2) [2,5) [5,8)
    assert sel[0, 0, 0].nonzero()[0].tolist() == kept[0, 0, 0].nonzero()[0].tolist() == [2, 5]
    # k = 3, but the cut level's spikes lie in 2 of the 3 groups: 2 kept (the group rule's limit)


def strength_cost(n: int, m: int, k: int, b: int, levels: int, inputs: int) -> tuple[int, int]:
    """(neurons, synapses) of the module docstring's formula."""
    h, L, G = tree_height(m, k, b), levels, levels * k
    g = -(-m // k)
    widths = [-(-g // b ** lv) for lv in range(1, h)]                                  # m_ℓ, ℓ = 1 … h−1
    sizes = np.diff(np.arange(k + 1) * m // k)
    leaf_pairs = n * L * sum(pairs(int(s), b) for s in sizes)
    neurons = 3 * L * n * m + n * L * (2 * k + 4) + (h >= 1) * n * G * (2 + 3 * sum(widths))
    tree = (3 * n * L * m if h == 0 else 5 * n * L * m + leaf_pairs + 2 * n * G if h == 1 else
            4 * n * L * m + leaf_pairs + n * G * sum(5 * w + pairs(w, b) for w in widths) + n * G * (widths[-1] + 2))
    synapses = ((L - 1) * inputs + n * m * (2 * L - 1) + n * m * L * (L + 1) // 2 + n * L * (3 * k + 3)
                + n * (L - 1) * k + n * L * k * (k + 1) // 2 + n * L * m + tree)
    return neurons, synapses


@pytest.mark.parametrize("n, m, k, b", [(2, 64, 4, 4), (1, 40, 3, 3), (3, 9, 2, 2), (2, 8, 4, 4), (1, 6, 6, 4),
                                        (2, 100, 7, 4), (1, 1024, 8, 4), (2, 37, 2, 5), (2, 200, 3, 8), (2, 5, 5, 2)])
def test_strength_circuit_cost_matches_docstring(n, m, k, b):
    f = 3
    graph = lower_spec(strength_circuit(n, m, f, k, b), "loihi", 1,
                       linear=lambda pr: token_shared_csr(np.full((m, f), 2, np.int16), n))
    neurons = sum(p.size for p in graph.populations if p.name not in ("in", "s"))
    syn = sum(len(p.indices) for p in graph.projections if p.name != "w")
    assert (neurons, syn) == strength_cost(n, m, k, b, STRENGTH_LEVELS, n * m * f)
    h = tree_height(m, k, b)
    assert graph.population("sel").depth - graph.population("s").depth == max(h + 2, 6) + max(h, 1) + 1


def strength_ops_per_spike(m: int, k: int, spikes_per_token: int, seed: int = 0) -> float:
    """Synaptic ops of the strength circuit (probes' input copies included, S's own input not) per raw spike:
    each input spike drives its own channel of S once over threshold, at a random level."""
    rng = np.random.default_rng(seed)
    x = np.zeros((2, 2, 4, m), bool)
    for idx in np.ndindex(x.shape[:-1]):
        x[idx][rng.choice(m, spikes_per_token, replace=False)] = True
    w = np.diag(rng.integers(LIF.vth // 2 + 1, nm.W_MANT_MAX + 1, m)).astype(np.int16) * 2    # levels 0 … 6
    sel, kept, _, res = run_strength(x, w, k, "loihi")
    np.testing.assert_array_equal(sel, kept)
    raw = res.spikes["s"].sum()
    assert raw == x.sum()
    return sum(int(o.sum()) for name, o in res.synaptic_ops.items() if name != "w") / raw


def test_strength_ops_per_spike_do_not_grow_with_the_width():
    """M = 64 → 1,024 at k = 4 (M/k 16 → 256), 12 raw spikes per token: ops per raw spike within the module
    docstring's bound and growing like log M, not like M (the index rule's do)."""
    ops = {m: strength_ops_per_spike(m, 4, 12) for m in (64, 1024)}
    b, L, k = TREE_ARITY, STRENGTH_LEVELS, 4
    for m, o in ops.items():
        h = tree_height(m, k, b)
        per_token = L * (5 * k + 3)
        assert o <= (L - 1) + 3 * L + b + 1 + (h - 1) * (3 * b + 2) + k + 2 * b + per_token / 12, (m, o)
    assert ops[1024] / ops[64] < 1.5                          # the index rule: ≈ 16×
    print(f"strength ops per raw spike: M 64 {ops[64]:.1f}, M 1024 {ops[1024]:.1f}")


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_voltage_probe_tracks_its_twin_and_spikes_at_its_level(numerics):
    """sim.neurons.probe: its numpy and numba steps keep the twin CUBA LIF's voltage every tick (same input, reset
    where the twin resets) and spike where the twin's pre-reset voltage exceeds the level; level < vth is refused."""
    probe = VoltageProbe(dv=1024, vth=128, level=180)
    twin, model = (LIF, probe) if numerics == "loihi" else (LIF.float_equivalent(), probe.float_equivalent())
    unreset = replace(twin, vth=nm.VTH_MAX // 2)                   # the twin's update without its spike and reset
    unit, dtype = (64, np.int32) if numerics == "loihi" else (1, np.float32)
    a = np.random.default_rng(0).integers(-150, 400, (30, 500)).astype(dtype)
    u = v = pv = np.zeros(500, dtype)
    for t in range(len(a)):
        pre = unreset.kernel.step_np(u, v, a[t], *unreset.kernel_params())[1]
        u, v_new, s = twin.kernel.step_np(u, v, a[t], *twin.kernel_params())
        _, pv_new, ps = model.kernel.step_np(np.zeros_like(pv), pv, a[t], *model.kernel_params())
        np.testing.assert_array_equal(pv_new, v_new)
        np.testing.assert_array_equal(ps, pre > unit * 180)
        assert not (ps & ~s).any()
        for i in range(8):                                           # the engine's scalar step, the same
            _, sv, sp = model.kernel.step(0, pv[i], a[t, i], *model.kernel_params())
            assert (sv, bool(sp)) == (pv_new[i], bool(ps[i]))
        v, pv = v_new, pv_new
    assert (s & ~ps).any() and ps.any()
    with pytest.raises(ValueError, match="level"):
        VoltageProbe(dv=1024, vth=128, level=100)
