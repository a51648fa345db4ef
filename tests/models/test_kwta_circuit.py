"""The k-WTA level circuit (spikeformer.arch.attention): every population equals its definition, tick by tick.

Q, K, V are input populations feeding just the attention block; the lowered graph runs on the
event engine (and the dense reference on small cases) in both numerics, and each population's
spikes, shifted by its depth, must equal the definition computed from kwta_winners / the scores.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from spikeformer.arch.attention import KWTA_MAX_HEAD_DIM, attention_block, check_attention, kwta_winners
from spikeformer.arch.nodes import PopSpec, Spec
from spikeformer.lower.convert import lower_spec


def lower_block(N, D, H, count, kk, numerics, T):
    ins = [PopSpec(z, (N, D), "input", None, "input") for z in "qkv"]
    pops, projs = attention_block("kwta", "b", N, D, H, count, kk)
    projs = [replace(p, pre=p.pre[2:]) if p.pre in ("b.q", "b.k", "b.v") else p for p in projs]
    return lower_spec(Spec(tuple(ins + pops), tuple(projs), "b.attn"), numerics, T)


def expected(q, k, v, H, count, kk):
    """Definition of every circuit population, (B, T, *shape) bool (graded score: its payload, int)."""
    *bt, N, D = q.shape
    d = D // H
    qh, kh, vh = (np.asarray(x, np.int64).reshape(*bt, N, H, d) for x in (q, k, v))
    score = np.einsum("...ihc,...jhc->...ijh", qh, kh)                        # (B, T, N, N, H)
    win = kwta_winners(q, k, H, kk)
    theta = np.arange(2, d + 1)
    lev = score[..., None] >= theta                                           # (B, T, N, N, H, d−1)
    out = {"b.qk": (qh[..., :, None, :, :] & kh[..., None, :, :, :]).reshape(*bt, N, N, D).astype(bool),
           "b.score": score, "b.lev1": score >= 1, "b.lev": lev, "b.ge": lev.sum(axis=-3) >= kk,
           "b.win": win}
    wv = win[..., None] & vh[..., None, :, :, :].astype(bool)                  # (B, T, N, N, H, d)
    out["b.wv"] = wv.reshape(*bt, N, N, D)
    out["b.attn"] = wv.sum(axis=-3).reshape(*bt, N, D) >= count
    return out


def check_engine(q, k, v, H, count, kk, numerics):
    B, T, N, D = q.shape
    graph = lower_block(N, D, H, count, kk, numerics, T)
    res = simulate(graph, {z: x.reshape(B, T, -1) for z, x in zip("qkv", (q, k, v))})
    want = expected(q, k, v, H, count, kk)
    assert graph.population("b.attn").depth == (7 if D > H else 5)
    for p in graph.populations:
        if p.is_source:
            continue
        s = res.spikes[p.name]
        assert not s[:, :p.depth].any() and not s[:, p.depth + T:].any(), p.name   # silent outside its window
        got = s[:, p.depth:p.depth + T].reshape(B, T, *p.shape)
        w = want[p.name] != 0                                                  # graded: an event iff payload ≠ 0
        np.testing.assert_array_equal(got, w, err_msg=f"{p.name} ({numerics})")
    return graph, want


def tied_spikes(rng, B, T, N, D, density):
    """Q, K, V with many ties: keys drawn from a pool of ≤ 3 rows, some all-zero rows."""
    q = rng.random((B, T, N, D)) < density
    pool = rng.random((B, T, 3, D)) < density
    k = np.take_along_axis(pool, rng.integers(0, 3, (B, T, N, 1)), axis=2)
    k[rng.random((B, T, N)) < 0.3] = False                                     # all-zero keys
    q[rng.random((B, T, N)) < 0.2] = False                                     # all-zero queries
    v = rng.random((B, T, N, D)) < 0.6
    return q, k, v


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 7), heads=st.integers(1, 3), d=st.integers(1, 6), t=st.integers(1, 4),
       density=st.sampled_from([0.0, 0.3, 0.6, 0.9, 1.0]), ties=st.booleans(),
       numerics=st.sampled_from(["loihi", "float"]), data=st.data())
def test_every_population_equals_its_definition(n, heads, d, t, density, ties, numerics, data):
    kk = data.draw(st.one_of(st.just(1), st.just(n), st.integers(1, n)), label="k")
    count = data.draw(st.integers(1, n), label="mask_count")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    D = heads * d
    if ties:
        q, k, v = tied_spikes(rng, 2, t, n, D, density)
    else:
        q, k, v = (rng.random((2, t, n, D)) < density for _ in range(3))
    check_engine(q, k, v, heads, count, kk, numerics)


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_k_above_the_number_of_positive_scores_keeps_every_positive_key(numerics):
    # one head of 4 channels, query 0 scores keys [4, 0, 2, 2, 0, 1]; k = 5 > 4 positive scores
    q = np.zeros((1, 1, 6, 4), bool)
    q[0, 0, 0] = True
    q[0, 0, 1, :2] = True                                     # query 1 scores [2, 0, 1, 1, 0, 1]
    k = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    k = k[None, None]
    v = np.ones((1, 1, 6, 4), bool)
    for kk, win0, win1 in [(5, [1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 0, 1]), (6, [1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 0, 1]),
                           (1, [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]), (2, [1, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1]),
                           (3, [1, 0, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1])]:
        _, want = check_engine(q, k, v, 1, 1, kk, numerics)
        assert want["b.win"][0, 0, 0, :, 0].astype(int).tolist() == win0, kk
        assert want["b.win"][0, 0, 1, :, 0].astype(int).tolist() == win1, kk
        assert not want["b.win"][0, 0, 2:].any()              # all-zero queries: no winner


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_largest_head_dim_is_exact(numerics):
    """d = KWTA_MAX_HEAD_DIM: the largest offset weight (−2·127) and scores up to d."""
    d, N = KWTA_MAX_HEAD_DIM, 3
    check_attention("kwta", N, d, 1, 2)
    rng = np.random.default_rng(0)
    q = np.ones((2, 2, N, d), bool)
    k = rng.random((2, 2, N, d)) < np.array([1.0, 0.99, 0.5])[:, None]       # scores near d, ties across samples
    k[1, 1] = k[1, 1, :1]
    v = rng.random((2, 2, N, d)) < 0.5
    graph, _ = check_engine(q, k, v, 1, 2, 2, numerics)
    offset = next(pr for pr in graph.projections if pr.name == "b.lev1->lev")
    assert float(offset.weights.min()) == -2 * (d - 1)                       # mantissa −127


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_engine_equals_dense_reference_with_score_payloads(numerics):
    rng = np.random.default_rng(7)
    B, T, N, H, d = 2, 3, 4, 2, 3
    q, k, v = tied_spikes(rng, B, T, N, H * d, 0.6)
    graph = lower_block(N, H * d, H, 2, 2, numerics, T)
    inputs = {z: x.reshape(B, T, -1) for z, x in zip("qkv", (q, k, v))}
    payloads: dict = {}
    dense = simulate_dense(graph, inputs, payloads)
    eng = simulate(graph, inputs)
    for p in graph.populations:
        np.testing.assert_array_equal(eng.spikes[p.name], dense[p.name], err_msg=p.name)
    score = graph.population("b.score")
    got = payloads["b.score"][:, score.depth:score.depth + T].reshape(B, T, N, N, H)
    np.testing.assert_array_equal(got, expected(q, k, v, H, 2, 2)["b.score"])    # payload = score exactly


@pytest.mark.parametrize("args, match", [
    (("kwta", 4, 129, 1, 1), r"^config\.heads \(1\) too small for attention='kwta'"),
    (("kwta", 4, 2 * 129, 2, 1), r"^config\.heads \(2\)"),
    (("kwta", 2048, 8, 1, 1), r"^config\.tokens \(2048\)"),
    (("kwta", 4, 8, 1, 5), r"^config\.kwta_k \(5\)"),
])
def test_uncomputable_kwta_configs_are_refused_in_one_line(args, match):
    with pytest.raises(ValueError, match=match) as e:
        check_attention(*args)
    assert "\n" not in str(e.value)


def test_cost_at_64_tokens_384_channels_8_heads():
    """The docstring's figures, from the block's populations (the synapse formula is checked on built
    graphs in tests/models/test_attention.py)."""
    N, D, H = 64, 384, 8
    pops, _ = attention_block("kwta", "b", N, D, H, 1, 2)
    sizes = {p.name: int(np.prod(p.shape)) for p in pops}
    assert sum(sizes.values()) == 3 * N * N * D + 2 * N * N * H + 2 * N * D - N * H == 4_832_768
    assert sizes["b.score"] == 32_768
    assert 11 * N * N * D - 3 * N * N * H == 17_203_200
    old_neurons = 2 * N * N * D + N ** 3 * H + 2 * N * N * H + N * D
    old_synapses = 2 * N * N * D + 2 * (N - 1) * N * N * D + N * N * D + N * N * H + N ** 3 * H + 3 * N * N * D
    assert (old_neurons, old_synapses) == (5_332_992, 209_747_968)
