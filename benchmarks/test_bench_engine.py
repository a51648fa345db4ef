"""Side-by-side timings on one converted transformer (identical spikes asserted).

Prints one table: wall time per inference and the engine's speed-up over the
dense clocked reference (numpy), the dense torch model forward pass, and Lava's
Loihi2SimCfg fixed-point run. Medians over repeats, measured in this one run.
Writes ``bench-results.json``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.common import median_time, update_results
from loihi_export.run.runner import run_lava
from sim.engine.flatgraph import flatten
from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from spikeformer.configure.validate import model_config
from spikeformer.data.sets.digits import load_digits_split
from spikeformer.encode.digits import encode_digits
from spikeformer.lower.convert import compare_to_model, to_graph
from spikeformer.model.transformer import SpikingTransformer

pytestmark = pytest.mark.bench


def test_engine_vs_reference_torch_and_lava(capsys):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SpikingTransformer(model_config(dim=64, init_gain=2.0)).eval()
    graph = to_graph(model)
    data = load_digits_split()
    batch = 64
    x = torch.from_numpy(encode_digits(data.x_test[:batch], model.cfg.arch.timesteps))
    inputs = {"input": x.numpy().reshape(batch, graph.timesteps, -1)}
    flat = flatten(graph)
    simulate(graph, inputs, flat=flat)                         # compile once

    t_engine, res = median_time(lambda: simulate(graph, inputs, flat=flat), 5)
    t_dense, dense = median_time(lambda: simulate_dense(graph, inputs), 1)
    with torch.no_grad():
        t_torch, (_, rec) = median_time(lambda: model(x, record=True), 3)
    lava_n = 16
    lava_inputs = {"input": inputs["input"][:lava_n]}
    t_lava, lava = median_time(lambda: run_lava(graph, lava_inputs, timeout=900), 1)

    for p in graph.populations:                               # identical spikes wherever compared
        np.testing.assert_array_equal(res.spikes[p.name], dense[p.name])
        np.testing.assert_array_equal(lava[p.name], res.spikes[p.name][:lava_n])
    equal, _ = compare_to_model(graph, {k: v.numpy() for k, v in rec.items()}, res.spikes)
    assert equal.all()

    per = {"engine": t_engine / batch, "dense_reference": t_dense / batch, "torch_dense": t_torch / batch,
           "lava": t_lava / lava_n}
    syn_events = float(sum(o.sum() for o in res.synaptic_ops.values()))
    figures = {
        "transformer_engine_events_per_s": syn_events / t_engine,
        "engine_s_per_inference": per["engine"],
        "vs_dense_reference_speedup": per["dense_reference"] / per["engine"],
        "transformer_vs_torch_dense_batch64": per["torch_dense"] / per["engine"],
        "vs_lava_speedup": per["lava"] / per["engine"],
        "transformer_synaptic_ops_per_inference": res.synaptic_ops_per_inference,
    }
    update_results(**figures)
    with capsys.disabled():
        print("\n\nengine vs peers on the converted transformer (D=64, 1 block, 64 test digits; Lava: 16)")
        print(f"{'backend':<18}{'s / inference':>16}{'engine speed-up':>18}")
        for name, s in per.items():
            print(f"{name:<18}{s:>16.6f}{s / per['engine']:>17.1f}x")
        print(f"engine: {figures['transformer_engine_events_per_s'] / 1e6:.1f} M synaptic events/s (1 thread per sample, "
              f"{syn_events / batch:.0f} events per inference)\n")
