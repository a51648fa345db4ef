"""Loihi 2 mapping and cost report: counts agree with the simulator, placement respects every limit."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sim.cost import cost_report, per_tick_core_load
from sim.engine import simulate
from sim.hardware import Loihi2, MappingError, map_graph
from sim.neurons import CubaLIF, Input
from spikeformer.pipeline import graph_inputs, load_test_batch, simulate_run


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
    from sim.ir import AerGraph, Population, Projection
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
