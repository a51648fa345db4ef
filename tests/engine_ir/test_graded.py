"""Graded relay populations: static bounds, engine = dense reference, and the relay-chain residual stream
(synapses linear in depth, every stream LIF fed exactly the zero-delay current R)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from sim.errors import IRError
from sim.ir.bounds import ACC_MAX, LIF_INPUT_MAX, PAYLOAD_MAX
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Input
from spikeformer.configure.validate import model_config

# -- random graphs mixing input, LIF and graded populations ------------------------------------------

def graded_graph(rng: np.random.Generator, numerics: str = "loihi", batch: int = 3, active: bool = False
                 ) -> tuple[AerGraph, dict[str, np.ndarray]]:
    """A random DAG: 1–2 inputs, 3–6 LIF or graded populations (at least two graded, one fed by
    another graded one), 1–3 projections each with delays 1–4; loihi: even weights up to ±254,
    weight_exp −8…−1 out of graded populations (payloads grow) and −2…3 otherwise. Graphs the IR
    bounds refuse are redrawn; ``active``: also redrawn until every population has events."""
    loihi = numerics == "loihi"
    for _ in range(200):
        n_in, n_pop = int(rng.integers(1, 3)), int(rng.integers(3, 7))
        kinds = ["graded", "graded"] + [str(rng.choice(["lif", "graded"])) for _ in range(n_pop - 2)]
        rng.shuffle(kinds)
        pops = [Population(f"in{i}", int(rng.integers(3, 11)), Input()) for i in range(n_in)]
        depth = {p.name: 0 for p in pops}
        projs: list[Projection] = []
        for j, kind in enumerate(kinds):
            name, size = f"p{j}", int(rng.integers(2, 13))
            pres = rng.choice(len(pops), size=min(len(pops), int(rng.integers(1, 4))), replace=False)
            for k in pres:
                pre = pops[k]
                graded_pre = pre.is_graded
                if loihi:
                    w = rng.integers(-127, 128, (size, pre.size)) * 2
                    exp = int(rng.integers(-8, 0)) if graded_pre else int(rng.integers(-2, 4))
                else:        # small integer-valued weights, power-of-two scales: float sums exact in any order
                    w = rng.integers(-2, 3, (size, pre.size)) if graded_pre else rng.integers(-60, 61, (size, pre.size))
                    exp = int(rng.choice([-1, 0]))
                w = np.where(rng.random(w.shape) < rng.uniform(0.3, 0.9), w, 0).astype(np.int16 if loihi else np.float32)
                delay = int(rng.integers(1, 5))
                projs.append(Projection.from_dense(f"{pre.name}->{name}", pre.name, name, w, delay=delay,
                                                   weight_exp=exp))
                depth[name] = max(depth.get(name, 0), depth[pre.name] + delay)
            if kind == "graded":
                pops.append(Population(name, size, GradedRelay(), depth=depth[name]))
            elif loihi:
                pops.append(Population(name, size, CubaLIF(int(rng.integers(0, 4096)), int(rng.integers(0, 4096)),
                                       int(rng.integers(0, 400))), depth=depth[name]))
            else:
                pops.append(Population(name, size, CubaLIFFloat(float(rng.random()), float(rng.random()),
                                       float(rng.integers(0, 200))), depth=depth[name]))
        graded_pops = {p.name for p in pops if p.is_graded}
        if not any(pr.pre in graded_pops and pr.post in graded_pops for pr in projs):
            continue
        try:
            graph = AerGraph(numerics, tuple(pops), tuple(projs), None, int(rng.integers(2, 8)))
        except IRError:                   # a payload or input beyond the static bounds: draw again
            continue
        x = {p.name: rng.random((batch, graph.timesteps, p.size)) < rng.uniform(0.2, 0.7) for p in graph.inputs}
        if active and not all(v.any() for v in simulate_dense(graph, x).values()):
            continue
        return graph, x
    raise AssertionError("no random graded graph within the bounds")


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_engine_equals_dense_reference_on_graded_graphs(numerics):
    seen = {"graded_events": 0, "big_payload": 0}

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, 2**32 - 1))
    def check(seed):
        g, x = graded_graph(np.random.default_rng(seed), numerics)
        payloads: dict = {}
        ref = simulate_dense(g, x, payloads)
        got = simulate(g, x).spikes
        for p in g.populations:
            np.testing.assert_array_equal(got[p.name], ref[p.name], err_msg=p.name)
        seen["graded_events"] += sum(int(ref[k].sum()) for k in payloads)
        seen["big_payload"] += sum(int((np.abs(v) > 1).sum()) for v in payloads.values())

    check()
    assert seen["graded_events"] > 0 and seen["big_payload"] > 0      # payloads, not just 0/1, were delivered


def test_graded_payload_is_the_summed_input():
    """g[t] = Σ floor-shifted w·s: a hand-computed relay, then a LIF fed by w·g (weight_exp −1 floors the sum)."""
    pops = (Population("in", 3, Input()), Population("g", 2, GradedRelay(), depth=1), Population("o", 1, CubaLIF(4095, 0, 1000), depth=3))
    w_in = np.array([[254, -6, 10], [0, 2, -254]], np.int16)
    w_out = np.array([[6, -2]], np.int16)
    g = AerGraph("loihi", pops, (Projection.from_dense("a", "in", "g", w_in, weight_exp=3),
                                 Projection.from_dense("b", "g", "o", w_out, delay=2, weight_exp=-1)), None, 3)
    x = {"in": np.array([[[1, 1, 0], [0, 0, 0], [1, 0, 1]]], bool)}
    payloads: dict = {}
    ref = simulate_dense(g, x, payloads)
    want = np.zeros((1, g.ticks, 2), np.int64)
    want[0, 1] = [(254 - 6) * 8, 2 * 8]
    want[0, 3] = [(254 + 10) * 8, -254 * 8]
    np.testing.assert_array_equal(payloads["g"], want)
    np.testing.assert_array_equal(ref["g"], want != 0)
    np.testing.assert_array_equal(simulate(g, x).spikes["g"], want != 0)
    # o at ticks 3 and 5: floor((6·1984 − 2·16) / 2) = 5936 and floor((6·2112 + 2·2032) / 2) = 8368,
    # each ·64 past the threshold 64·1000 (0/1 events would give 2 and 2: silent)
    want_o = np.zeros((1, g.ticks, 1), bool)
    want_o[0, [3, 5]] = True
    np.testing.assert_array_equal(ref["o"], want_o)
    np.testing.assert_array_equal(simulate(g, x).spikes["o"], want_o)


# -- static bounds ---------------------------------------------------------------------------------

def _fan_in_graph(fan_in: int, extra=()) -> AerGraph:
    """g1 ← fan_in inputs with weight 254 << 7 each: payload bound fan_in·32512."""
    pops = (Population("in", fan_in, Input()), Population("g1", 1, GradedRelay(), depth=1)) + tuple(p for p, _ in extra)
    projs = (Projection.from_dense("in->g1", "in", "g1", np.full((1, fan_in), 254, np.int16), weight_exp=7),) \
        + tuple(pr for _, pr in extra)
    return AerGraph("loihi", pops, projs, None, 2)


def test_graded_payload_beyond_24_bits_is_refused_naming_the_population():
    assert 258 * 254 * 128 <= PAYLOAD_MAX < 259 * 254 * 128
    _fan_in_graph(258)                                                  # just inside: accepted
    with pytest.raises(IRError, match=r"population 'g1'.*24-bit graded payload"):
        _fan_in_graph(259)


def test_payload_bound_follows_a_chain_of_relays():
    def chain(w: int) -> AerGraph:
        g2 = Population("g2", 1, GradedRelay(), depth=2)
        return _fan_in_graph(100, [(g2, Projection.from_dense("g1->g2", "g1", "g2", np.array([[w]], np.int16),
                                                              weight_exp=-2))])
    chain(8)                             # 3 251 200 · 8 / 4 = 6 502 400 ≤ 2²³ − 1
    with pytest.raises(IRError, match=r"population 'g2'.*24-bit"):
        chain(12)                        # 9 753 600


def test_lif_input_beyond_lavas_int32_shift_is_refused():
    """A LIF's |a|·64 + 2²³ must stay in int32 (Lava adds a_in << 6 to u); g1 can reach 8 388 096."""
    def lif(w: int, exp: int) -> AerGraph:
        o = Population("o", 1, CubaLIF(4095, 0, 100), depth=2)
        return _fan_in_graph(258, [(o, Projection.from_dense("g1->o", "g1", "o", np.array([[w]], np.int16),
                                                             weight_exp=exp))])
    assert 2 * 8388096 <= LIF_INPUT_MAX < 4 * 8388096
    lif(2, 0)
    with pytest.raises(IRError, match=r"population 'o'.*u \+ \(a << 6\)"):
        lif(4, 0)
    with pytest.raises(IRError, match=r"population 'o'"):
        lif(2, 1)


def saturating_graph(fan_in: int, weight_exp: int = 7, du: int = 4095) -> AerGraph:
    """The issue's case: a LIF population with fan-in ``fan_in``, weights ±254, weight_exp 7; all-ones input
    saturates it (neuron 0 all +254, neuron 1 all −254, neuron 2 mixed)."""
    w = np.full((3, fan_in), 254, np.int16)
    w[1] = -254
    w[2, ::2] = -254
    pops = (Population("in", fan_in, Input()), Population("sat", 3, CubaLIF(du, 0, 1000), depth=1))
    return AerGraph("loihi", pops, (Projection.from_dense("in->sat", "in", "sat", w, weight_exp=weight_exp),), None, 3)


def test_saturating_graph_beyond_lavas_int32_is_refused_naming_population_and_bound(tmp_path):
    """fan-in 1 200 · 254 · 2⁷ = 39 014 400 > LIF_INPUT_MAX: Lava would overflow int32 in a_in << 6,
    so validation refuses it (the choice documented in sim.numerics); 1 028 inputs (33 422 336) fit."""
    from sim.ir.io import load_graph, save_graph
    assert 1028 * 254 * 128 <= LIF_INPUT_MAX < 1029 * 254 * 128
    saturating_graph(1028)
    with pytest.raises(IRError, match=rf"^population 'sat': field 'inputs': neuron 0's summed input can reach "
                                      rf"39014400, beyond what Lava's int32 u \+ \(a << 6\) holds "
                                      rf"\(\|a\| ≤ {LIF_INPUT_MAX}\)"):
        saturating_graph(1200)
    # a carried current (du < 4095) must stay within 24 bits: |a| ≤ 2¹⁸ (8 inputs of 254 << 7 fit, 9 do not)
    from sim.ir.bounds import LIF_CARRY_INPUT_MAX
    assert 8 * 254 * 128 <= LIF_CARRY_INPUT_MAX < 9 * 254 * 128
    saturating_graph(8, du=4094)
    saturating_graph(1028)
    for du in (0, 4094):
        with pytest.raises(IRError, match=rf"^population 'sat'.*292608.*du = {du} < 4095.*\|a << 6\| ≤ 2²⁴"):
            saturating_graph(9, du=du)
    with pytest.raises(IRError, match=r"population 'sat'.*33422336.*du = 0 < 4095"):
        saturating_graph(1028, du=0)
    # the same graph as a file (saved with weight_exp 6, edited to 7) is refused when any command loads it
    save_graph(saturating_graph(1200, weight_exp=6), tmp_path / "graph.aer.npz")
    with np.load(tmp_path / "graph.aer.npz") as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["header"].tobytes())
    header["projections"][0]["weight_exp"] = 7
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(tmp_path / "graph.aer.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(IRError, match=rf"population 'sat'.*39014400.*\|a\| ≤ {LIF_INPUT_MAX}"):
        load_graph(tmp_path / "graph.aer.npz")
    from test_cli import assert_user_error
    from test_faults import cli
    assert_user_error(cli("simulate", str(tmp_path)), "population 'sat'", "39014400", f"|a| ≤ {LIF_INPUT_MAX}")


def test_int32_accumulator_is_checked_before_the_exponent_shift():
    """Σ|w·g| must fit Lava's int32 dot product even where weight_exp −8 makes the result small."""
    def acc(w_out: list[int]) -> AerGraph:
        pops = (Population("in", 258, Input()), Population("gg", 2, GradedRelay(), depth=1),
                Population("o", 1, CubaLIF(4095, 0, 100), depth=2))
        return AerGraph("loihi", pops, (
            Projection.from_dense("in->gg", "in", "gg", np.full((2, 258), 254, np.int16), weight_exp=7),
            Projection.from_dense("gg->o", "gg", "o", np.array([w_out], np.int16), weight_exp=-8)), None, 2)
    assert 254 * 8388096 <= ACC_MAX < 2 * 254 * 8388096
    acc([254, 0])                        # one payload of ≤ 8 388 096 times 254: fits int32
    with pytest.raises(IRError, match=r"projection 'gg->o'.*int32 accumulator"):
        acc([254, 254])                  # two: 4.26e9, although the shifted input (1.7e7) would be fine


# -- the residual stream as a relay chain ----------------------------------------------------------

def _cfg(depth: int, **kw):
    return model_config(**{"tokens": 3, "features": 5, "dim": 8, "heads": 2, "mlp_ratio": 2, "depth": depth, **kw})


def _stream_graph(cfg, seed: int = 0, numerics: str = "loihi") -> AerGraph:
    """lower_spec of build_spec(cfg) with random dense even weights (every W entry a synapse)."""
    from spikeformer.arch.build import build_spec
    from spikeformer.lower.convert import lower_spec, token_shared_csr

    rng = np.random.default_rng(seed)
    spec = build_spec(cfg)
    shapes = {p.name: p.shape for p in spec.populations}
    weights: dict[str, np.ndarray] = {}

    def linear(pr):
        if pr.param not in weights:
            shape = (shapes[pr.post][-1], shapes[pr.pre][-1])
            w = rng.integers(1, 128, shape) * rng.choice([-2, 2], shape, p=[0.4, 0.6])
            weights[pr.param] = w.astype(np.int64 if numerics == "loihi" else np.float32)
        return token_shared_csr(weights[pr.param], cfg.arch.tokens)
    return lower_spec(spec, numerics, cfg.arch.timesteps, linear)


def test_stream_synapses_grow_linearly_with_depth():
    N, F, D, H = 3, 5, 8, 16
    stream = {}
    for depth in (1, 2, 4, 8):
        g = _stream_graph(_cfg(depth))
        roles = {p.name: p.role for p in g.populations}
        into = {p.name: [pr for pr in g.projections if pr.post == p.name] for p in g.populations}
        for p in g.populations:
            if p.role == "stream":                       # each stream LIF: its relay only, passed exactly
                (pr,) = into[p.name]
                assert roles[pr.pre] == "relay" and set(pr.weights.tolist()) == {1} and pr.weight_exp == 0
        relays = [p.name for p in g.populations if p.role == "relay"]
        assert relays == [f"r{k}" for k in range(2 * depth + 1)]
        stream[depth] = sum(pr.n_synapses for pr in g.projections if roles[pr.post] in ("stream", "relay"))
        # emb + per block W_o and W_2, once each; identity links: 2·depth relay → relay, 2·depth + 1 relay → LIF
        assert stream[depth] == N * (F * D + depth * (D * D + H * D) + (4 * depth + 1) * D)
    assert stream[8] - stream[4] == 2 * (stream[4] - stream[2]) == 4 * (stream[2] - stream[1])


def test_each_trained_projection_appears_once_with_its_name():
    from spikeformer.arch.build import build_spec

    spec = build_spec(_cfg(3))
    linear = [pr for pr in spec.projections if pr.op == "linear"]
    assert len({pr.param for pr in linear}) == len(linear)
    names = {pr.name for pr in linear}
    assert {"emb->r0", "b0.wo->r1", "b0.w2->r2", "b2.wo->r5", "b2.w2->r6"} <= names
    assert {f"b{l}.w{z}" for l in range(3) for z in "qkv1"} <= names


def test_relay_stream_equals_every_stream_lif_receiving_all_earlier_currents():
    """Collapsing the relays gives the quadratic stream (each stream LIF fed emb, every earlier W_o, W_2,
    as token-shared copies of the trained matrices); both graphs spike identically, tick for tick."""
    from sim.ir.relays import collapse_relays
    from spikeformer.lower.convert import token_shared_csr

    cfg = _cfg(2, tokens=4, dim=16, heads=2, timesteps=6)
    g = _stream_graph(cfg, seed=3)
    flat = collapse_relays(g)
    assert not any(p.is_graded for p in flat.populations)
    into = {p.name: [pr.name for pr in flat.projections if pr.post == p.name] for p in flat.populations}
    assert into["b0.x"] == ["emb->b0.x"]
    assert into["b1.y"] == ["emb->b1.y", "b0.wo->b1.y", "b0.w2->b1.y", "b1.wo->b1.y"]
    assert into["out"] == ["emb->out", "b0.wo->out", "b0.w2->out", "b1.wo->out", "b1.w2->out"]
    trained = {pr.name.split("->")[0]: pr for pr in g.projections if pr.post.startswith("r")
               and not pr.pre.startswith("r")}
    for pr in flat.projections:
        if pr.post in ("b0.x", "b0.y", "b1.x", "b1.y", "out"):
            src = trained[pr.name.split("->")[0]]
            dense = src.to_dense(g.population(src.post).size)        # (N·D, N·in) = kron(I, W)
            w = dense[:cfg.arch.dim, :dense.shape[1] // cfg.arch.tokens]
            ip, ix, wv = token_shared_csr(w, cfg.arch.tokens)
            np.testing.assert_array_equal(pr.indptr, ip)
            np.testing.assert_array_equal(pr.indices, ix)
            np.testing.assert_array_equal(pr.weights, wv)
            assert pr.delay == flat.population(pr.post).depth - flat.population(pr.pre).depth
    x = {"input": np.random.default_rng(0).random((3, cfg.arch.timesteps, cfg.arch.tokens * cfg.arch.features)) < 0.4}
    a, b = simulate(g, x).spikes, simulate(flat, x).spikes
    for p in flat.populations:
        np.testing.assert_array_equal(a[p.name], b[p.name], err_msg=p.name)
    assert all(a[p].any() for p in ("b0.x", "b0.y", "b1.x", "b1.y", "out"))
    assert flat.n_synapses > g.n_synapses


def test_lowered_relays_are_graded_with_the_spec_exponent():
    g = _stream_graph(_cfg(1))
    assert [type(p.model) for p in g.populations if p.role == "relay"] == [GradedRelay] * 3
    links = [pr for pr in g.projections if pr.pre.startswith("r")]
    assert links and all(pr.weight_exp == 0 and set(pr.weights.tolist()) == {1} and pr.delay >= 1 for pr in links)
    g.check_delays()
    f = _stream_graph(_cfg(1), numerics="float")
    x = {"input": np.random.default_rng(1).random((2, 8, 15)) < 0.5}
    for name, s in simulate(f, x).spikes.items():
        np.testing.assert_array_equal(s, simulate_dense(f, x)[name], err_msg=name)
