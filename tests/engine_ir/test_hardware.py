"""Mapper sized by the graph (no chip flag), the chip cap, inter-chip message counts and their exact costs,
and the streaming mapper's counts against a brute-force reference."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sim.cost.energy import E_CHIP_HOP, T_CHIP_HOP, cost_report, per_tick_core_load
from sim.cost.hardware import CORES_PER_CHIP, NEURONS_PER_CORE, Loihi2, MappingError, chip_grid_columns, map_graph
from sim.engine.results import save_result
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.ir.io import save_graph
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input

LIF = dict(du=4095, dv=4095, vth=1)          # fires the tick after any weight-2 input arrives


def _proj(name: str, pre: str, post: str, rows: list[list[int]]) -> Projection:
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.array([j for r in rows for j in r], np.int32)
    return Projection(name, pre, post, indptr, indices, np.full(len(indices), 2, np.int16))


# -- a graph that needs two chips at the default limits ------------------------------------------

H = (CORES_PER_CHIP + 2) * NEURONS_PER_CORE               # 130 full cores of 'h', then 'o': 131 cores, 2 chips
SENDERS = np.arange(9) * 16 * NEURONS_PER_CORE + 5        # 'h' neurons on cores 0, 16, …, 128 that feed 'o'


def two_chip_graph() -> AerGraph:
    pops = (Population("in", 1, Input()), Population("h", H, CubaLIF(**LIF), depth=1),
            Population("o", 8, CubaLIF(**LIF), depth=2))
    to_o = np.zeros(H + 1, np.int64)
    to_o[SENDERS + 1] = 1
    projs = (Projection("in->h", "in", "h", np.array([0, H]), np.arange(H, dtype=np.int32), np.full(H, 2, np.int16)),
             Projection("h->o", "h", "o", np.cumsum(to_o), (np.arange(9) % 8).astype(np.int32),
                        np.full(9, 2, np.int16)))
    return AerGraph("loihi", pops, projs, None, 2)


def test_graph_needing_two_chips_maps_without_flags_and_counts_inter_chip_messages(tmp_path):
    from test_cli import assert_user_error, run
    graph = two_chip_graph()
    x = np.array([[[1], [0]], [[1], [1]]], bool)          # sample 0 fires the input once, sample 1 twice
    res = simulate(graph, {"in": x})
    save_graph(graph, tmp_path / "graph.aer.npz")
    save_result(tmp_path / "simulation.npz", graph, res)
    p = run("report", str(tmp_path), "--json")            # no --chips: sized by the graph
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert (fig["cores"], fig["chips_needed"], fig["chips"]) == (131, 2, 2)
    # senders on cores 0..112 (chip 0) message 'o' on core 130 (chip 1); the one on core 128 stays on chip 1
    fired = res.spikes["h"][:, :, SENDERS].sum(axis=1).mean(axis=0)
    assert fired.min() > 0
    assert fig["inter_chip_messages"] == pytest.approx(fired[:8].sum()) and fig["inter_chip_messages"] > 0
    assert fig["inter_chip_hops"] == pytest.approx(fired[:8].sum())        # chips 0 and 1 are neighbours
    assert fig["inter_core_messages"] == pytest.approx(fired[8])
    assert fig["energy_inter_chip_joules"] == pytest.approx(E_CHIP_HOP * fired[:8].sum())
    assert (tmp_path / "report.png").exists()
    assert_user_error(run("report", str(tmp_path), "--chips", "1"),
                      "graph needs 131 cores = 2 chips of 128 cores; --chips caps it at 1")


def test_chip_cap_below_need_names_the_chips_needed():
    graph = two_chip_graph()
    m = map_graph(graph)
    assert (m.cores, m.chips_needed, m.chips) == (131, 2, 2)
    assert (m.core_of[1:H + 1] == np.arange(H) // NEURONS_PER_CORE).all() and m.core_of[H + 1:].tolist() == [130] * 8
    with pytest.raises(MappingError, match=r"^graph needs 131 cores = 2 chips of 128 cores; --chips caps it at 1$"):
        map_graph(graph, Loihi2(chips=1))
    assert map_graph(graph, Loihi2(chips=5)).chips == 5             # a cap above the need is the system size
    with pytest.raises(ValueError, match="chips"):
        Loihi2(chips=0)


# -- inter-chip costs: exactly the link constants -----------------------------------------------

def chain_graph() -> AerGraph:
    """in(4) → a(2) → b(2) → c(2), and a → c: one population per core at 2 neurons/core."""
    pops = (Population("in", 4, Input()), Population("a", 2, CubaLIF(**LIF), depth=1),
            Population("b", 2, CubaLIF(**LIF), depth=2), Population("c", 2, CubaLIF(**LIF), depth=3))
    projs = (_proj("in->a", "in", "a", [[0], [1], [0, 1], []]), _proj("a->b", "a", "b", [[0, 1], [1]]),
             _proj("b->c", "b", "c", [[0], [0, 1]]), _proj("a->c", "a", "c", [[1], [0]]))
    return AerGraph("loihi", pops, projs, None, 6)


@pytest.fixture(scope="module")
def chain():
    graph = chain_graph()
    x = np.random.default_rng(3).random((5, 6, 4)) < 0.3
    return graph, simulate(graph, {"in": x})


def test_inter_chip_messages_add_exactly_the_link_energy_and_latency(chain):
    graph, res = chain
    assert E_CHIP_HOP == pytest.approx(35e-12) and T_CHIP_HOP == pytest.approx(100e-9)    # the documented assumptions
    one = cost_report(graph, map_graph(graph, Loihi2(neurons_per_core=2, cores_per_chip=1024)), res)
    three = cost_report(graph, map_graph(graph, Loihi2(neurons_per_core=2, cores_per_chip=1)), res)
    assert (one.cores, one.chips_needed, three.cores, three.chips_needed) == (3, 1, 3, 3)
    assert chip_grid_columns(3) == 2        # chips 0 (0,0), 1 (0,1), 2 (1,0): a→b 1 hop, a→c 1, b→c 2
    sa = res.spikes["a"].sum(axis=(1, 2))   # per sample; a sends to b's and c's cores, b to c's
    sb = res.spikes["b"].sum(axis=(1, 2))
    assert sa.mean() > 0 and sb.mean() > 0
    assert one.inter_chip_messages == 0 and one.inter_core_messages == pytest.approx((2 * sa + sb).mean())
    assert three.inter_chip_messages == pytest.approx((2 * sa + sb).mean()) and three.inter_core_messages == 0
    hops = (2 * sa + 2 * sb).mean()
    assert three.inter_chip_hops == pytest.approx(hops)
    # mesh part: one chip has cores 0, 1, 2 in a row (a→c 2 hops); on 3 chips every core sits at place 0 (1 hop)
    a_to_c_mesh = -sa.mean() * 3.5e-12
    assert three.energy_loihi2_joules - one.energy_loihi2_joules == pytest.approx(E_CHIP_HOP * hops + a_to_c_mesh,
                                                                                   rel=1e-9)
    assert three.energy_inter_chip_joules == pytest.approx(E_CHIP_HOP * hops, rel=1e-12)
    # latency: each tick pays T_CHIP_HOP × the farthest chip hop of the messages sent in it (b→c: 2, a only: 1)
    a_t, b_t = res.spikes["a"].any(axis=2), res.spikes["b"].any(axis=2)
    far = np.where(b_t, 2, np.where(a_t, 1, 0)).sum(axis=1).mean()
    assert three.latency_s - one.latency_s == pytest.approx(T_CHIP_HOP * far, rel=1e-9)
    assert three.latency_inter_chip_s == pytest.approx(T_CHIP_HOP * far, rel=1e-12)
    for k in ("synaptic_ops", "spikes", "messages", "host_messages", "energy_45nm_joules"):
        assert getattr(one, k) == getattr(three, k), k


# -- streaming counts against a brute-force reference ----------------------------------------------

def random_graph(seed: int) -> AerGraph:
    rng = np.random.default_rng(seed)
    sizes = {"in": 30, "a": 70, "b": 90, "c": 40}
    pops = (Population("in", 30, Input()), Population("a", 70, CubaLIF(**LIF), depth=1),
            Population("b", 90, CubaLIF(**LIF), depth=2), Population("c", 40, CubaLIF(**LIF), depth=3))

    def rand(name, pre, post, p, **kw):
        rows = [sorted(rng.choice(sizes[post], rng.binomial(sizes[post], p), replace=False).tolist())
                for _ in range(sizes[pre])]
        pr = _proj(name, pre, post, rows)
        return Projection(pr.name, pr.pre, pr.post, pr.indptr, pr.indices, pr.weights, **kw)
    projs = (rand("in->a", "in", "a", 0.2), rand("a->b", "a", "b", 0.3), rand("a->b2", "a", "b", 0.1, delay=2),
             rand("b->c", "b", "c", 0.2), rand("a->c", "a", "c", 0.05, delay=2), rand("c->c", "c", "c", 0.1),
             rand("in->c", "in", "c", 0.1, delay=3))
    return AerGraph("loihi", pops, projs, None, 4)


@pytest.mark.parametrize("seed, hw", [(0, Loihi2()), (1, Loihi2(neurons_per_core=16, synapses_per_core=300,
                                                                  fan_in_per_core=60, cores_per_chip=4)),
                                      (2, Loihi2(neurons_per_core=24, fan_out_per_core=40, cores_per_chip=3))])
def test_streamed_counts_equal_brute_force(seed, hw):
    graph = random_graph(seed)
    m = map_graph(graph, hw)
    offsets = graph.offsets()
    pre = np.concatenate([np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr)) + offsets[pr.pre]
                          for pr in graph.projections])
    post = np.concatenate([pr.indices.astype(np.int64) + offsets[pr.post] for pr in graph.projections])
    core = m.core_of[post]
    assert np.bincount(core, minlength=m.cores).tolist() == m.synapses.tolist()
    assert [len(np.unique(pre[core == c])) for c in range(m.cores)] == m.fan_in.tolist()
    pairs = np.unique(np.stack([pre, core], axis=1), axis=0)
    for i in range(graph.n_neurons):
        assert m.dest_cores(i).tolist() == pairs[pairs[:, 0] == i, 1].tolist()
    src = m.core_of[pairs[:, 0]]
    assert np.bincount(src[src >= 0], minlength=m.cores).tolist() == m.fan_out.tolist()
    assert (m.fan_out <= hw.fan_out_per_core).all() and (m.fan_in <= hw.fan_in_per_core).all()
    # per-tick loads against dense matrices
    x = np.random.default_rng(seed).random((3, 4, 30)) < 0.4
    res = simulate(graph, {"in": x})
    ops, msgs = per_tick_core_load(graph, m, res.spikes)
    s = np.concatenate([res.spikes[p.name] for p in graph.populations], axis=2).astype(float)   # (B, T, n)
    syn = np.zeros((graph.n_neurons, m.cores))
    np.add.at(syn, (pre, core), 1)
    dest = np.zeros((graph.n_neurons, m.cores))
    dest[pairs[:, 0], pairs[:, 1]] = 1
    assert np.array_equal(ops, s @ syn) and np.array_equal(msgs, s @ dest)
