"""Loihi 2 mapping and cost report: counts agree with the simulator, placement respects every limit."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sim.cost.energy import cost_report, per_tick_core_load
from sim.cost.hardware import Loihi2, MappingError, map_graph
from sim.engine.simulate import simulate
from spikeformer.runs.steps import graph_inputs, load_test_batch, simulate_run


@pytest.fixture(scope="module")
def simulated(tiny_run):
    model, graph, x, y = load_test_batch(tiny_run, 12)
    return graph, simulate(graph, graph_inputs(graph, x))


def check_limits(graph, m):
    hw = m.hw
    placed = np.concatenate([np.arange(o, o + p.size) for p, o in zip(graph.populations, graph.offsets().values())
                             if not p.is_source])                           # LIF and graded neurons
    assert (m.core_of[placed] >= 0).all() and (m.core_of >= 0).sum() == len(placed)   # each placed once
    assert np.bincount(m.core_of[placed], minlength=m.cores).tolist() == m.neurons.tolist()
    assert (m.neurons <= hw.neurons_per_core).all()
    assert (m.synapses <= hw.synapses_per_core).all()
    assert (m.fan_in <= hw.fan_in_per_core).all()
    assert (m.fan_out <= hw.fan_out_per_core).all()
    assert m.synapses.sum() == graph.n_synapses                             # every synapse stored once
    assert hw.chips is None or m.chips_needed <= hw.chips
    assert m.chips_needed == -(-m.cores // hw.cores_per_chip)


def test_report_counts_equal_simulator_counters(simulated):
    graph, res = simulated
    m = map_graph(graph)
    check_limits(graph, m)
    rep = cost_report(graph, m, res)
    assert rep.synaptic_ops == pytest.approx(res.synaptic_ops_per_inference, rel=0, abs=1e-9)
    assert rep.spikes == pytest.approx(res.spikes_per_inference, rel=0, abs=1e-9)
    assert rep.neuron_updates == pytest.approx(res.neuron_updates.mean())
    ops, msgs = per_tick_core_load(graph, m, res.spikes)
    assert ops.sum(axis=(1, 2)).mean() == pytest.approx(res.synaptic_ops_per_inference)
    assert msgs.sum(axis=(1, 2)).mean() == pytest.approx(rep.messages)
    assert sum(rep.synaptic_ops_per_tick) == pytest.approx(rep.synaptic_ops)
    assert sum(rep.spikes_per_tick) == pytest.approx(rep.spikes) and len(rep.spikes_per_tick) == graph.ticks
    assert sum(rep.messages_per_tick) == pytest.approx(rep.messages)
    for key in ("energy_loihi2_joules", "energy_45nm_joules", "energy_ann_int8_memory_joules", "latency_s"):
        assert getattr(rep, key) > 0
    # the winner and the crossover say the same thing
    assert (rep.winner == "spiking") == (rep.spike_rate < rep.crossover_rate)


# The published constants, written out here (not imported): Davies et al. 2018 Table 2 (Loihi), Horowitz 2014
# (45 nm), and the module's stated assumptions (10× a tile hop per chip hop, 100 ns; 8 × 16 mesh per chip).
PJ, NS = 1e-12, 1e-9
LOIHI = {"synop": 23.6 * PJ, "active": 52 * PJ, "idle": 21 * PJ, "core": 1.7 * PJ, "hop": 3.5 * PJ,
         "chip_hop": 35 * PJ, "t_synop": 3.5 * NS, "t_update": 5.3 * NS, "t_barrier": 465 * NS, "t_chip_hop": 100 * NS}
H45 = {"ac": 0.9 * PJ, "mac": 4.6 * PJ, "int8_mac": 0.23 * PJ, "int8_add": 0.03 * PJ, "sram_byte": 20 * PJ / 8}


def expected_costs(graph, m, res) -> dict:
    """The cost model of sim.cost's docstring, computed from the graph, the placement and the recorded
    spikes with dense numpy (no sim.cost code): energies, latency, message counts."""
    off, core_of, cpc = graph.offsets(), m.core_of, m.hw.cores_per_chip
    cols = int(np.ceil(np.sqrt(m.chips)))
    pos = lambda c: (c // cpc // cols, c // cpc % cols, c % cpc // 16, c % cpc % 16)  # noqa: E731 chip row/col, mesh
    spikes = {p.name: res.spikes[p.name].astype(np.float64) for p in graph.populations}
    B, T = next(iter(spikes.values())).shape[:2]
    ops = np.zeros((B, T, m.cores))
    msgs = {"messages": 0.0, "inter_core_messages": 0.0, "inter_chip_messages": 0.0, "host_messages": 0.0,
            "inter_chip_hops": 0.0}
    e_msg, hops_tick = 0.0, np.zeros((B, T))
    dest: dict[str, np.ndarray] = {p.name: np.zeros((p.size, m.cores), bool) for p in graph.populations}
    for pr in graph.projections:
        rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
        cores = core_of[off[pr.post] + pr.indices]
        per_core = np.zeros((pr.n_pre, m.cores))
        np.add.at(per_core, (rows, cores), 1)
        ops += np.einsum("btn,nc->btc", spikes[pr.pre], per_core)
        dest[pr.pre][rows, cores] = True
    for p in graph.populations:
        count = spikes[p.name].sum(axis=1).mean(axis=0)             # spikes per neuron per inference
        for i, d in zip(*np.nonzero(dest[p.name])):
            s = core_of[off[p.name] + i]
            n = count[i]
            msgs["messages"] += n
            if s < 0:
                msgs["host_messages"] += n
                e_msg += n * LOIHI["hop"]
                continue
            if s == d:
                e_msg += n * LOIHI["core"]
                continue
            (sr, sc, sy, sx), (dr, dc, dy, dx) = pos(s), pos(d)
            chip_hops = abs(sr - dr) + abs(sc - dc)
            e_msg += n * (LOIHI["hop"] * max(1, abs(sy - dy) + abs(sx - dx)) + LOIHI["chip_hop"] * chip_hops)
            if chip_hops:
                msgs["inter_chip_messages"] += n
                msgs["inter_chip_hops"] += n * chip_hops
                fired = spikes[p.name][:, :, i] > 0
                hops_tick = np.maximum(hops_tick, fired * chip_hops)
            else:
                msgs["inter_core_messages"] += n
    on_chip = int((core_of >= 0).sum())
    synops, active = float(res.synaptic_ops_per_inference), float(res.neuron_updates.mean())
    idle = on_chip * graph.ticks - active
    neurons_per_core = np.bincount(core_of[core_of >= 0], minlength=m.cores)
    tick = (ops * LOIHI["t_synop"] + neurons_per_core * LOIHI["t_update"]).max(axis=2) + LOIHI["t_barrier"]
    capacity = graph.ticks * graph.n_synapses
    e_update = H45["int8_add"] + 6 * H45["sram_byte"]
    ann8 = graph.n_synapses * (H45["int8_mac"] + H45["sram_byte"]) + on_chip * 2 * H45["sram_byte"]
    return {**msgs, "synaptic_ops": synops, "neuron_updates": active,
            "energy_loihi2_joules": synops * LOIHI["synop"] + active * LOIHI["active"] + idle * LOIHI["idle"] + e_msg,
            "energy_inter_chip_joules": LOIHI["chip_hop"] * msgs["inter_chip_hops"],
            "energy_45nm_joules": synops * H45["ac"], "energy_45nm_dense_joules": graph.n_synapses * H45["mac"],
            "energy_snn_memory_joules": synops * (H45["int8_add"] + H45["sram_byte"]) + active * e_update,
            "energy_ann_int8_memory_joules": ann8,
            "spike_rate": synops / capacity,
            "crossover_rate": max(0.0, (ann8 - active * e_update) / ((H45["int8_add"] + H45["sram_byte"]) * capacity)),
            "latency_s": float((tick + LOIHI["t_chip_hop"] * hops_tick).sum(axis=1).mean()),
            "latency_inter_chip_s": float((LOIHI["t_chip_hop"] * hops_tick).sum(axis=1).mean()),
            "synaptic_ops_per_tick": ops.sum(axis=2).mean(axis=0).tolist()}


@pytest.mark.parametrize("hw", [Loihi2(), Loihi2(neurons_per_core=50, synapses_per_core=3000, fan_in_per_core=200,
                                                fan_out_per_core=4000, cores_per_chip=8, chips=64)],
                         ids=["one-chip", "64-chips"])
def test_report_equals_the_cost_model_computed_independently(simulated, hw):
    graph, res = simulated
    m = map_graph(graph, hw)
    rep = cost_report(graph, m, res).to_dict()
    want = expected_costs(graph, m, res)
    assert want["energy_loihi2_joules"] > 0 and want["latency_s"] > 0
    if hw.chips:
        assert want["inter_chip_messages"] > 0 and want["latency_inter_chip_s"] > 0
    for key, value in want.items():
        assert rep[key] == pytest.approx(value, rel=1e-9, abs=0), key


def test_report_equals_the_cost_model_on_a_recurrent_graph():
    """A population projecting onto itself sends messages to its own core (E_SPIKE_CORE): the converted
    models, one population per core and feed-forward, never do."""
    from sim.ir.graph import AerGraph, Population, Projection
    from sim.neurons.cuba import CubaLIF
    from sim.neurons.input import Input
    rng = np.random.default_rng(2)
    w = lambda n, m: np.where(rng.random((n, m)) < 0.5, 2 * rng.integers(-20, 60, (n, m)), 0).astype(np.int16)  # noqa: E731
    pops = (Population("in", 6, Input()), Population("a", 40, CubaLIF(2048, 512, 20), depth=1))
    g = AerGraph("loihi", pops, (Projection.from_dense("in->a", "in", "a", w(40, 6)),
                                 Projection.from_dense("a->a", "a", "a", w(40, 40))), None, 8)
    res = simulate(g, {"in": rng.random((3, 8, 6)) < 0.5})
    assert res.spikes["a"].any()
    # 4 chips of 2 cores; then one core per neuron: 40 cores over 3 rows of the 8 × 16 mesh
    for hw in (Loihi2(neurons_per_core=16, cores_per_chip=2, chips=4), Loihi2(neurons_per_core=1)):
        m = map_graph(g, hw)
        rep, want = cost_report(g, m, res).to_dict(), expected_costs(g, m, res)
        assert want["inter_chip_messages"] > 0 if hw.chips else m.cores > 2 * 16
        for key, value in want.items():
            assert rep[key] == pytest.approx(value, rel=1e-9, abs=0), key


def test_chip_hop_latency_takes_the_farthest_destination():
    """One chip per core on a 3 × 3 chip grid: 'a' on chip 0 sends to chips 1, 2, 3 (1, 2, 1 hops);
    a tick's inter-chip latency is its farthest message (2 hops), not the last destination's."""
    from sim.ir.graph import AerGraph, Population, Projection
    from sim.neurons.cuba import CubaLIF
    from sim.neurons.input import Input
    pops = (Population("in", 4, Input()), Population("a", 8, CubaLIF(4095, 0, 1), depth=1),
            Population("b", 24, CubaLIF(4095, 0, 1000), depth=2))
    g = AerGraph("loihi", pops, (Projection.from_dense("in->a", "in", "a", np.full((8, 4), 2, np.int16)),
                                 Projection.from_dense("a->b", "a", "b", np.full((24, 8), 2, np.int16))), None, 4)
    res = simulate(g, {"in": np.ones((2, 4, 4), bool)})
    m = map_graph(g, Loihi2(neurons_per_core=8, cores_per_chip=1, chips=9))
    assert m.core_of[g.offsets()["a"]] == 0 and m.cores == 4
    rep, want = cost_report(g, m, res).to_dict(), expected_costs(g, m, res)
    assert want["latency_inter_chip_s"] == pytest.approx(res.spikes["a"].any(axis=2).sum(axis=1).mean() * 2 * 100e-9)
    for key, value in want.items():
        assert rep[key] == pytest.approx(value, rel=1e-9, abs=0), key


def test_small_cores_split_populations_and_still_respect_limits(simulated):
    graph, res = simulated
    hw = Loihi2(neurons_per_core=50, synapses_per_core=3000, fan_in_per_core=200, fan_out_per_core=4000, cores_per_chip=8, chips=64)
    m = map_graph(graph, hw)
    check_limits(graph, m)
    assert m.cores > len([p for p in graph.populations if not p.is_source])   # some population was split
    assert m.chips_needed > 1 and m.chips == 64
    rep = cost_report(graph, m, res)
    assert rep.inter_chip_messages > 0 and rep.synaptic_ops == pytest.approx(res.synaptic_ops_per_inference)


def test_graph_too_large_for_chips_is_refused_with_core_count(simulated):
    graph, _ = simulated
    hw = Loihi2(neurons_per_core=50, synapses_per_core=3000, cores_per_chip=4, chips=1)
    need = map_graph(graph, Loihi2(neurons_per_core=50, synapses_per_core=3000, cores_per_chip=4, chips=1000)).cores
    with pytest.raises(MappingError, match=f"^graph needs {need} cores = {-(-need // 4)} chips of 4 cores; "
                                           f"--chips caps it at 1$"):
        map_graph(graph, hw)
    assert map_graph(graph, Loihi2(neurons_per_core=50, synapses_per_core=3000, cores_per_chip=4)).cores == need


def test_report_cli_and_missing_simulation(tiny_run, tmp_path):
    from test_cli import assert_user_error, run
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    (d / "simulation.npz").unlink(missing_ok=True)
    assert_user_error(run("report", str(d)), "simulation.npz", "spikeformer simulate")
    simulate_run(d, 6)
    p = run("report", str(d), "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    for key in ("cores", "chips", "chips_needed", "inter_chip_messages", "inter_core_messages", "synaptic_ops",
                "spikes", "messages", "energy_loihi2_joules",
                "energy_45nm_joules", "latency_s", "energy_ann_int8_memory_joules", "winner"):
        assert key in fig
    assert (d / "report.png").stat().st_size > 10_000
    sim = json.loads((d / "simulation.json").read_text())
    assert fig["synaptic_ops"] == pytest.approx(sim["synaptic_ops_per_inference"])
    assert fig["chips"] == fig["chips_needed"] == 1
    need = f"graph needs {fig['cores']} cores = {-(-fig['cores'] // 2)} chips of 2 cores; --chips caps it at 1"
    assert_user_error(run("report", str(d), "--cores-per-chip", "2", "--chips", "1"), need)


def _all_to_all(n_pre: int, n_post: int):
    from sim.ir.graph import AerGraph, Population, Projection
    from sim.neurons.cuba import CubaLIF
    from sim.neurons.input import Input
    indptr = np.arange(0, n_pre * n_post + 1, n_post)
    indices = np.tile(np.arange(n_post), n_pre).astype(np.int32)
    pops = (Population("in", 4, Input()), Population("a", n_pre, CubaLIF(0, 0, 1), depth=1),
            Population("b", n_post, CubaLIF(0, 0, 1), depth=2))
    projs = (Projection("in->a", "in", "a", np.arange(5), np.arange(4, dtype=np.int32) % n_pre, np.full(4, 2, np.int16)),
             Projection("a->b", "a", "b", indptr, indices, np.full(len(indices), 2, np.int16)))
    return AerGraph("loihi", pops, projs, None, 2)


def test_fan_out_over_limit_is_fixed_by_smaller_slices():
    graph = _all_to_all(64, 64)                   # every 'a' neuron reaches every core of 'b'
    hw = Loihi2(neurons_per_core=16, fan_out_per_core=32, chips=1)
    m = map_graph(graph, hw)                     # 16 'a' neurons × 4 'b' cores = 64 > 32: re-placed
    check_limits(graph, m)
    assert m.core_population.count("a") == 8 and m.fan_out.max() == 32
    with pytest.raises(MappingError, match=r"sends to 4 \(neuron, core\) destinations, more than the fan-out limit 3"):
        map_graph(graph, Loihi2(neurons_per_core=16, fan_out_per_core=3, chips=1))
