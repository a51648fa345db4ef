"""Engine vs the dense torch model on every preset, batch 1 and 64, one thread each.

Each preset's model with its initial (untrained) weights, converted to an AER graph;
inputs: the first test samples of its dataset. Torch: the inference forward ``model(x)``
under no_grad, per sample at batch 1 and at batch 64. Engine, on ENGINE_SAMPLES[preset]
samples: at batch 1 one ``simulate`` call per sample; batched, one call for all of them
(one thread: the samples run one after the other, the call's set-up is paid once). Identical spikes (engine = torch model) asserted on
every simulated sample. CPU seconds of this process (the machine is shared), medians.
Prints a table — with each preset's events per inference, the engine's events/s and
the dense multiply-accumulates torch performs, and the bound: the same events at the
raw scatter rate (``common.flat_scatter_bound`` on the graph's synapses and the spikes
of the first sample) — and writes ``vs_torch_dense_b64`` (preset → ratio) to
bench-results.json.
"""
from __future__ import annotations

import os
import time

import numba
import numpy as np
import pytest
import torch

from benchmarks.common import flat_scatter_bound, median_time, update_results
from sim.engine.flatgraph import flatten
from sim.engine.simulate import simulate
from spikeformer.configure.presets import PRESETS, preset
from spikeformer.data.registry import encode, load_dataset
from spikeformer.lower.convert import compare_to_model, to_graph
from spikeformer.model.transformer import SpikingTransformer

pytestmark = pytest.mark.bench
CPU = time.process_time
BATCH = 64
ENGINE_SAMPLES = {"large": 2, "large-kwta": 2}          # large graphs: a few samples bound the run (default BATCH)


def dense_macs(graph) -> int:
    """Multiply-accumulates a dense clocked evaluation performs per sample: every synapse, every tick."""
    return graph.n_synapses * graph.timesteps


def test_engine_vs_torch_on_presets(capsys):
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    rows, ratios = [], {}
    only = os.environ.get("BENCH_PRESETS")                  # e.g. BENCH_PRESETS=demo,kwta for a partial run
    for name in (p for p in PRESETS if p != "tiny" and (not only or p in only.split(","))):
        cfg, _ = preset(name)
        torch.manual_seed(0)
        model = SpikingTransformer(cfg).eval()
        graph = to_graph(model)
        data = load_dataset(cfg)
        x = encode(cfg, data.x_test[:BATCH])
        n_eng = ENGINE_SAMPLES.get(name, BATCH)
        inputs = {"input": x[:n_eng].numpy().reshape(n_eng, graph.timesteps, -1)}
        flat = flatten(graph)
        simulate(graph, {"input": inputs["input"][:1]}, flat=flat, record=False)      # compile
        res = simulate(graph, inputs, flat=flat, record=True)
        with torch.no_grad():
            _, rec = model(x[:n_eng], record=True)
        equal, _ = compare_to_model(graph, {k: v.numpy() for k, v in rec.items()}, res.spikes)
        assert equal.all(), name
        spikes = np.concatenate([res.spikes[p.name][0] for p in graph.populations], axis=1)   # sample 0, (ticks, n)
        _, i_sp = np.nonzero(spikes)
        acc = np.zeros(flat.n, np.int64)
        layout = (flat.pop_of, flat.pout_ptr, flat.pout, flat.proj, flat.row_ptr, flat.syn, i_sp, acc)
        sc_events = flat_scatter_bound(*layout)
        t_sc, _ = median_time(lambda: flat_scatter_bound(*layout), 5, clock=CPU)
        del res, rec, spikes

        def engine_run():
            for b in range(n_eng):
                simulate(graph, {"input": inputs["input"][b:b + 1]}, flat=flat, record=False)
        t_eng, _ = median_time(engine_run, 3 if n_eng > 2 else 1, clock=CPU)
        t_eng /= n_eng
        t_batch, stats = median_time(lambda: simulate(graph, inputs, flat=flat, record=False), 3 if n_eng > 2 else 1,
                                     clock=CPU)
        t_batch /= n_eng
        events = stats.synaptic_ops_per_inference
        with torch.no_grad():
            model(x[:1])
            t_t1, _ = median_time(lambda: model(x[:1]), 5, clock=CPU)
            t_t64, _ = median_time(lambda: model(x), 3 if n_eng > 2 else 1, clock=CPU)
        t_t64 /= len(x)
        ratios[name] = t_t64 / t_batch
        t_bound = events * t_sc / max(sc_events, 1)        # the engine at the scatter bound, per inference
        rows.append((name, graph.n_neurons, events, dense_macs(graph), t_eng, t_batch, t_t1, t_t64, t_bound))
        graph = flat = model = None                       # free before the next preset (not del: the lambdas close over them)
    update_results(vs_torch_dense_b64=ratios,
                   vs_torch_dense_b1={r[0]: r[6] / r[4] for r in rows},
                   presets_engine_events_per_s={r[0]: r[2] / r[5] for r in rows},
                   vs_torch_dense_b64_at_scatter_bound={r[0]: r[7] / r[8] for r in rows})
    with capsys.disabled():
        print("\n\nengine vs dense torch per preset (initial weights; ms per inference, CPU, one thread each)")
        print(f"{'preset':<12}{'neurons':>12}{'events/inf':>13}{'dense MACs':>14}{'engine b1':>10}{'batched':>9}"
              f"{'M ev/s':>8}{'torch b1':>10}{'torch b64':>10}{'b1 ×':>7}{'b64 ×':>7}{'bound ms':>10}{'b64 × at bound':>16}")
        for name, n, ev, macs, te, tb_eng, t1, t64, tb in rows:
            print(f"{name:<12}{n:>12,}{ev:>13,.0f}{macs:>14,}{te * 1e3:>10.2f}{tb_eng * 1e3:>9.2f}{ev / tb_eng / 1e6:>8.1f}"
                  f"{t1 * 1e3:>10.2f}{t64 * 1e3:>10.2f}{t1 / te:>7.1f}{t64 / tb_eng:>7.1f}{tb * 1e3:>10.2f}"
                  f"{t64 / tb:>16.2f}")
        print("engine b1 / batched: ms per inference with one simulate call per sample / one call for all; "
              "b64 ×: torch b64 vs the batched engine")
        print("bound ms: the events of an inference at the raw CSR scatter rate on the same graph and spikes "
              "(acc[target] += w, nothing else); b64 × at bound: the most an event-driven engine reaches vs torch b64\n")
