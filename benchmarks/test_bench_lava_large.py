"""Lava at the Spikformer-4-384 anchor shape: ≥ 4 samples identical to the engine, spike for spike.

Random-weight model (tokens 64, features 32, D 384, depth 4, 8 heads, MLP ×4, T 4; SDSA
attention: ~1.3 M neurons, ~418 M synapses, 42 ticks). ``run_lava`` runs the samples one
after another in one Lava network (one lane: no block-diagonal copies), so memory does not
grow with the number of samples. Prints the peak PSS of this process plus the Lava worker's
whole process tree (``loihi_export.run.TreeMemory``), the seconds per sample (whole run:
weight files, build, compile, run, read-back) and the engine-vs-Lava mismatch count::

    .venv/bin/python -m pytest -m bench -s benchmarks/test_bench_lava_large.py

Environment: ``LAVA_BENCH_ATTENTION`` (``sdsa`` | ``kwta``; k-WTA: ~20 M neurons, ~486 M
synapses, 58 ticks — about 18 GiB and several minutes per sample), ``LAVA_BENCH_DEPTH`` (4),
``LAVA_BENCH_SAMPLES`` (4), ``LAVA_BENCH_GRAPH`` (a ``sim.ir.io`` graph file: loaded if it
exists, else written after converting — saves the ~50 s conversion on a rerun).
"""
from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
import torch

from benchmarks.common import update_results
from loihi_export.run.runner import run_lava
from sim.engine.flatgraph import flatten
from sim.engine.simulate import simulate
from sim.ir.io import load_graph, save_graph
from spikeformer.configure.validate import model_config
from spikeformer.lower.convert import to_graph
from spikeformer.model.transformer import SpikingTransformer

pytestmark = pytest.mark.bench

GIB = 2**30


def anchor_graph(attention: str, depth: int):
    path = os.environ.get("LAVA_BENCH_GRAPH")
    if path and Path(path).exists():
        return load_graph(path)
    torch.manual_seed(0)
    cfg = model_config(tokens=64, features=32, dim=384, depth=depth, heads=8, mlp_ratio=4, timesteps=4,
                      attention=attention, kwta_k=2, mask_count=2, init_gain=2.0)
    graph = to_graph(SpikingTransformer(cfg))
    if path:
        save_graph(graph, path)
    return graph


@pytest.mark.timeout(7200)
def test_anchor_shape_in_lava_equals_engine(capsys):
    attention = os.environ.get("LAVA_BENCH_ATTENTION", "sdsa")
    depth = int(os.environ.get("LAVA_BENCH_DEPTH", "4"))
    samples = int(os.environ.get("LAVA_BENCH_SAMPLES", "4"))
    graph = anchor_graph(attention, depth)
    gc.collect()
    torch.manual_seed(1)
    x = torch.rand(samples, 4, 64, 32) < 0.2
    inputs = {"input": x.numpy().reshape(samples, 4, -1)}

    stats: dict = {}
    t0 = time.perf_counter()
    lava = run_lava(graph, inputs, timeout=3600 if attention == "sdsa" else 6 * 3600, stats=stats)
    t_lava = time.perf_counter() - t0
    phases = ", ".join(f"{k[:-2]} {v:.1f}" for k, v in stats["phases"].items())
    with capsys.disabled():
        print(f"\nLava, {attention} D 384 depth {depth}: {graph.n_neurons:,} neurons, {graph.n_synapses:,} synapses, "
              f"{graph.ticks} ticks; {samples} samples, {stats['batch']} side by side × {stats['sequence']} in "
              f"sequence (period {stats['period']}), {stats['workers']} worker(s), {stats['processes']} OS processes")
        print(f"  peak PSS (this process + Lava tree) {stats['peak_pss_bytes'] / GIB:.2f} GiB; Lava tree "
              f"{stats['peak_worker_pss_bytes'] / GIB:.2f} GiB; anonymous + shared memory "
              f"{stats['peak_anon_bytes'] / GIB:.2f} GiB; estimate {stats['estimate_bytes'] / GIB:.2f} GiB")
        print(f"  {t_lava / samples:.1f} s per sample in Lava ({t_lava:.1f} s: {phases})", flush=True)

    # The engine one sample at a time (a k-WTA sample's spikes alone are 1.2 GB of bools).
    mismatches = {p.name: 0 for p in graph.populations}
    silent = {p.name for p in graph.populations if not p.is_source}
    spikes, t0 = 0, time.perf_counter()
    flat = flatten(graph)
    for i in range(samples):
        sim = simulate(graph, {k: v[i:i + 1] for k, v in inputs.items()}, flat=flat).spikes
        for p in graph.populations:
            mismatches[p.name] += int((lava[p.name][i:i + 1] != sim[p.name]).sum())
            spikes += int(sim[p.name].sum())
            if sim[p.name].any():
                silent.discard(p.name)
        del sim
    t_engine = time.perf_counter() - t0
    total = sum(mismatches.values())
    with capsys.disabled():
        print(f"  engine {t_engine / samples:.2f} s per sample; engine vs Lava: {total} mismatched spikes of "
              f"{spikes:,} ({sum(1 for v in mismatches.values() if v)} of {len(mismatches)} populations differ)")
    update_results(**{f"lava_large_{attention}_depth{depth}": {
        "neurons": graph.n_neurons, "synapses": graph.n_synapses, "ticks": graph.ticks, "samples": samples,
        "peak_pss_gib": stats["peak_pss_bytes"] / GIB, "peak_lava_tree_pss_gib": stats["peak_worker_pss_bytes"] / GIB,
        "seconds_per_sample": t_lava / samples, "phases": stats["phases"], "mismatched_spikes": total}})
    assert samples >= 4 or "LAVA_BENCH_SAMPLES" in os.environ
    assert total == 0
    assert not silent, f"populations that never spike: {sorted(silent)}"
