"""Attention circuits: the lowered k-WTA / SSA / k-WTA-hidden neurons equal their definitions exactly."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.simulate import simulate
from spikeformer.arch.attention import attention_block, kwta_winners, ssa_counts
from spikeformer.arch.build import build_spec
from spikeformer.arch.nodes import GE1, PopSpec, ProjSpec, Spec
from spikeformer.arch.wiring import FIXED_WEIGHT, synapses
from spikeformer.configure.validate import model_config
from spikeformer.lower.convert import lower_spec


def run_circuit(kind, q, k, v, heads, count=1, kwta_k=1, numerics="loihi"):
    """Simulate the lowered attention block on given Q/K/V spikes (B, T, N, D) → spikes per population
    aligned to the inputs (B, T, *shape)."""
    B, T, N, D = q.shape
    ins = [PopSpec(n, (N, D), "input", None, "input") for n in "qkv"]
    pops, projs = attention_block(kind, "b", N, D, heads, count, kwta_k)
    projs = [replace(p, pre=p.pre.split(".")[-1]) if p.pre in ("b.q", "b.k", "b.v") else p for p in projs]
    graph = lower_spec(Spec(tuple(ins + pops), tuple(projs), "b.attn"), numerics, T)
    res = simulate(graph, {"q": q.reshape(B, T, -1), "k": k.reshape(B, T, -1), "v": v.reshape(B, T, -1)})
    return {p.name: res.spikes[p.name][:, p.depth:p.depth + T].reshape(B, T, *p.shape)
            for p in graph.populations if p.model.spiking}


def spikes(rng, shape, density):
    return rng.random(shape) < density


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), heads=st.integers(1, 3), d=st.integers(1, 5), data=st.data(),
       density=st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]), numerics=st.sampled_from(["loihi", "float"]))
def test_kwta_winners_equal_brute_force_on_random_spikes(n, heads, d, data, density, numerics):
    kk = data.draw(st.integers(1, n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    B, T, D = 3, 2, heads * d
    q, k, v = (spikes(rng, (B, T, n, D), density) for _ in range(3))
    k[:, :, -1] = k[:, :, 0]                                  # a duplicated key: tied scores
    q[:, 0, 0] = False                                        # an all-zero query row: no winner
    out = run_circuit("kwta", q, k, v, heads, count=1, kwta_k=kk, numerics=numerics)
    win = kwta_winners(q, k, heads, kk)
    np.testing.assert_array_equal(out["b.win"], win)
    assert not out["b.win"][:, 0, 0].any()
    via_winners = np.einsum("btijh,btjhc->btihc", win.astype(int), v.reshape(B, T, n, heads, d)).reshape(B, T, n, D)
    np.testing.assert_array_equal(out["b.attn"], via_winners >= 1)


def test_kwta_ties_are_kept_and_zero_never_wins():
    # one query, five keys with scores 3, 2, 2, 0, 1 (one head of 3 channels), k = 2
    q = np.zeros((1, 1, 5, 3), bool)
    q[0, 0, 0] = True
    k = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0]], bool)[None, None]
    v = np.eye(5, 3, dtype=bool)[None, None]
    win = kwta_winners(q, k, 1, 2)[0, 0, 0, :, 0]
    assert win.tolist() == [True, True, True, False, False]       # k-th largest is 2: both 2s kept
    assert kwta_winners(q, k, 1, 5)[0, 0, 0, :, 0].tolist() == [True, True, True, False, True]  # 0 never wins
    out = run_circuit("kwta", q, k, v, 1, kwta_k=2)
    assert out["b.win"][0, 0, 0, :, 0].tolist() == [True, True, True, False, False]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), heads=st.integers(1, 2), d=st.integers(1, 4), count=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1), density=st.sampled_from([0.1, 0.5, 1.0]))
def test_ssa_equals_q_kt_v_threshold(n, heads, d, count, seed, density):
    rng = np.random.default_rng(seed)
    D = heads * d
    q, k, v = (spikes(rng, (2, 3, n, D), density) for _ in range(3))
    out = run_circuit("ssa", q, k, v, heads, count=count)
    np.testing.assert_array_equal(out["b.attn"], ssa_counts(q, k, v, heads) >= count)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), m=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_hidden_kwta_keeps_the_first_k_spikes_of_each_token(n, m, seed, data):
    kk = data.draw(st.integers(1, m))
    h = spikes(np.random.default_rng(seed), (2, 3, n, m), 0.6)
    spec = Spec((PopSpec("h", (n, m), "input", None, "input"), PopSpec("hk", (n, m), "lif", GE1, "hidden_kwta")),
                (ProjSpec("h->hk", "h", "hk", "identity", weight=FIXED_WEIGHT * kk),
                 ProjSpec("h-|hk", "h", "hk", "earlier_inhibit")), "hk")
    graph = lower_spec(spec, "loihi", 3)
    hk = simulate(graph, {"h": h.reshape(2, 3, -1)}).spikes["hk"][:, 1:4].reshape(h.shape)
    expect = h & (np.cumsum(h, axis=-1) <= kk)
    np.testing.assert_array_equal(hk, expect)
    assert (hk.sum(axis=-1) <= kk).all()


def test_wiring_tables_have_no_duplicate_synapses():
    for op, pre, post in [("level_offset", (4, 3, 2), (4, 3, 2, 5)), ("level_inhibit", (4, 2, 5), (4, 4, 2)),
                          ("key_sum", (4, 4, 2, 5), (4, 2, 5)), ("triple_score", (3, 3, 4), (3, 3, 4, 2)),
                          ("earlier_inhibit", (2, 5), (2, 5)), ("pair_second", (3, 4), (3, 3, 4))]:
        i, j, w = synapses(op, pre, post)
        pairs = i * int(np.prod(post)) + j
        assert len(np.unique(pairs)) == len(pairs), op
        assert i.max() < np.prod(pre) and j.max() < np.prod(post)


@pytest.mark.parametrize("N, D, H", [(4, 8, 2), (3, 12, 2), (5, 6, 3), (2, 4, 4)])
def test_kwta_circuit_cost_matches_docstring(N, D, H):
    cfg = model_config(tokens=N, features=5, dim=D, heads=H, attention="kwta", kwta_k=2)
    spec = build_spec(cfg)
    sizes = {p.name: int(np.prod(p.shape)) for p in spec.populations}
    circuit = [n for n in sizes if n.startswith("b0.") and n.split(".")[1] in
               ("qk", "score", "lev1", "lev", "ge", "win", "wv", "attn")]
    graph = lower_spec(spec, "loihi", 1, linear=lambda pr: (np.zeros(sizes[pr.pre] + 1, np.int64),
                                                            np.zeros(0, np.int32), np.zeros(0, np.int16)))
    depth = {p.name: p.depth for p in graph.populations}
    syn = sum(len(p.indices) for p in graph.projections if p.post in circuit)
    neurons = sum(sizes[n] for n in circuit)
    if D > H:                                                   # d ≥ 2: the level circuit
        assert (neurons, syn) == (3 * N * N * D + 2 * N * N * H + 2 * N * D - N * H, 11 * N * N * D - 3 * N * N * H)
        assert depth["b0.attn"] - depth["b0.q"] == 7
    else:                                                       # d = 1: win = [score ≥ 1]
        assert (neurons, syn) == (2 * N * N * D + 2 * N * N * H + N * D, 6 * N * N * D + N * N * H)
        assert depth["b0.attn"] - depth["b0.q"] == 5
    assert sizes["b0.score"] == N * N * H and graph.population("b0.score").is_graded
    assert max(sizes[n] for n in circuit) <= N * N * D          # no N³·H rank population


@pytest.mark.parametrize("field, kwargs, match", [
    ("kwta_k", {"attention": "kwta", "kwta_k": 9}, r"config\.kwta_k \(9\) must be in \[1, tokens=8\]"),
    ("kwta_k", {"attention": "kwta", "kwta_k": 0}, r"config\.kwta_k"),
    ("heads", {"attention": "kwta", "dim": 256, "heads": 1}, r"config\.heads \(1\) too small for attention='kwta'"),
    ("attention", {"attention": "ssa", "dim": 256, "heads": 1}, r"SSA_MAX_NEURONS.*reduce config\.tokens or config\.dim"),
    ("attention", {"attention": "softmax"}, r"config\.attention must be one of"),
    ("hidden_k", {"hidden_k": 129}, r"config\.hidden_k \(129\)"),
    ("mask_count", {"attention": "kwta", "mask_count": 9}, r"config\.mask_count"),
])
def test_bad_attention_configs_name_the_parameter(field, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_config(**{"features": 40, **kwargs})


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["sdsa", "kwta"]), numerics=st.sampled_from(["loihi", "float"]),
       n=st.integers(2, 7), later=st.data(), seed=st.integers(0, 2**16))
def test_causal_model_spikes_before_a_changed_token_never_change(kind, numerics, n, later, seed):
    """causal: changing token p's input (a later byte) leaves every population's spikes at tokens < p as they were,
    in torch (the definition) and in the lowered circuit (the simulator)."""
    import torch

    from spikeformer.lower.convert import to_graph
    from spikeformer.model.transformer import SpikingTransformer
    torch.manual_seed(seed)
    cfg = model_config(tokens=n, features=12, dim=8, heads=2, timesteps=2, classes=5, attention=kind, kwta_k=2,
                       causal=True, per_token=True, numerics=numerics, init_gain=3.0)
    model = SpikingTransformer(cfg).eval()
    p = later.draw(st.integers(1, n - 1))
    rng = np.random.default_rng(seed)
    x = rng.random((1, 2, n, 12)) < 0.4
    y = x.copy()
    y[:, :, p:] = rng.random((1, 2, n - p, 12)) < 0.4              # tokens p … n−1 changed
    with torch.no_grad():
        (lx, rx), (ly, ry) = model(torch.from_numpy(x), record=True), model(torch.from_numpy(y), record=True)
    for name, s in rx.items():
        if s.dim() >= 4 and s.shape[2] == n:                          # (B, T, N, …): per-token populations
            assert torch.equal(s[:, :, :p], ry[name][:, :, :p]), name
    assert torch.equal(lx[:, :p], ly[:, :p])
    graph = to_graph(model)
    sx, sy = (simulate(graph, {"input": z.reshape(1, 2, -1)}).spikes for z in (x, y))
    for pop in graph.populations:
        if pop.shape and pop.shape[0] == n and pop.role != "input":
            a, b = (s[pop.name].reshape(1, graph.ticks, *pop.shape)[:, :, :p] for s in (sx, sy))
            np.testing.assert_array_equal(a, b, err_msg=pop.name)


@pytest.mark.parametrize("kind", ["sdsa", "kwta"])
def test_non_causal_attention_does_see_later_tokens(kind):
    """The counter-test: without ``causal`` the same change reaches earlier tokens (so the test above can fail)."""
    import torch

    from spikeformer.model.transformer import SpikingTransformer
    changed = 0
    for seed in range(5):
        torch.manual_seed(seed)
        cfg = model_config(tokens=6, features=12, dim=8, heads=2, timesteps=2, classes=5, attention=kind, kwta_k=2,
                           init_gain=3.0)
        model = SpikingTransformer(cfg).eval()
        rng = np.random.default_rng(seed)
        x = rng.random((1, 2, 6, 12)) < 0.4
        y = x.copy()
        y[:, :, 5:] = ~y[:, :, 5:]
        with torch.no_grad():
            a, b = model(torch.from_numpy(x), record=True)[1]["b0.attn"], model(torch.from_numpy(y), record=True)[1]["b0.attn"]
        changed += int(not torch.equal(a[:, :, :5], b[:, :, :5]))
    assert changed > 0


def test_causal_is_refused_for_ssa():
    with pytest.raises(ValueError, match=r"config\.causal"):
        model_config(attention="ssa", dim=16, heads=2, causal=True)
