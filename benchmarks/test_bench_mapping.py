"""Loihi 2 mapping + cost of an anchor-shaped graph (~1.5 M neurons, ~566 M synapses): peak RSS and time.

The graph is transformer-shaped and built directly as CSR arrays (no model): 64 tokens × 384
channels, every trained matrix token-shared, i.e. block-diagonal ``kron(I_64, W)`` with W 384×384
(q, k, v, o) or 384×1536 / 1536×384 (MLP), identity links for the rest, 5 blocks. Run it alone with
``python benchmarks/test_bench_mapping.py`` (prints one line of figures) or via ``make bench``.
Peak RSS is the kernel's high-water mark (VmHWM), reset after the graph is built, so "map peak"
is graph + mapper working memory.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks.common import proc_status, reset_peak
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input

TOKENS, DIM, HIDDEN, BLOCKS, TIMESTEPS = 64, 384, 1536, 5, 8
GiB = 2 ** 30


def anchor_graph(blocks: int = BLOCKS, seed: int = 0):
    """The synthetic anchor graph (module docstring), every array in its compact dtype."""
    from sim.ir.graph import AerGraph, Population, Projection

    rng = np.random.default_rng(seed)
    pops, projs = [Population("in", TOKENS * 64, Input())], []

    def pop(name: str, width: int = DIM) -> str:
        pops.append(Population(name, TOKENS * width, CubaLIF(4095, 512, 150)))
        return name

    def dense(pre: str, post: str, d_in: int, d_out: int) -> None:
        """kron(I_tokens, W): pre (t, i) → post (t, j) for every j, weight W[i, j]."""
        w = (rng.integers(-127, 128, (d_in, d_out), dtype=np.int16) * 2).astype(np.int16)
        indices = np.empty((TOKENS, d_in, d_out), np.int32)
        indices[...] = np.arange(TOKENS, dtype=np.int32)[:, None, None] * d_out + np.arange(d_out, dtype=np.int32)
        weights = np.empty((TOKENS, d_in, d_out), np.int16)
        weights[...] = w
        indptr = np.arange(0, TOKENS * d_in * d_out + 1, d_out, dtype=np.int64)
        projs.append(Projection(f"{pre}->{post}", pre, post, indptr, indices.reshape(-1), weights.reshape(-1)))

    def identity(pre: str, post: str, size: int = TOKENS * DIM) -> None:
        projs.append(Projection(f"{pre}->{post}", pre, post, np.arange(size + 1), np.arange(size, dtype=np.int32),
                                np.full(size, 2, np.int16)))

    stream = pop("r0")
    dense("in", stream, 64, DIM)
    for b in range(blocks):
        x = pop(f"b{b}.x")
        identity(stream, x)
        attn = pop(f"b{b}.attn")
        for name in ("q", "k", "v"):
            dense(x, pop(f"b{b}.{name}"), DIM, DIM)
            identity(f"b{b}.{name}", attn)
        r = pop(f"b{b}.r")
        dense(attn, r, DIM, DIM)
        identity(stream, r)
        y, h, r2 = pop(f"b{b}.y"), pop(f"b{b}.h", HIDDEN), pop(f"b{b}.r2")
        identity(r, y)
        dense(y, h, DIM, HIDDEN)
        dense(h, r2, HIDDEN, DIM)
        identity(r, r2)
        stream = r2
    return AerGraph("loihi", tuple(pops), tuple(projs), None, TIMESTEPS)


def synthetic_result(graph, rate: float = 0.02, seed: int = 1):
    """A SimResult with random spikes at ``rate`` per neuron and tick (one sample) and consistent counters."""
    from sim.engine.results import SimResult

    rng = np.random.default_rng(seed)
    spikes = {p.name: rng.random((1, graph.ticks, p.size), np.float32) < rate for p in graph.populations}
    counts = {k: s.sum(axis=(1, 2)).astype(np.int64) for k, s in spikes.items()}
    ops = {pr.name: np.array([int(spikes[pr.pre][0].sum(axis=0) @ np.diff(pr.indptr))], np.int64)
           for pr in graph.projections}       # every spike of pre delivers its row's synapses
    updates = np.array([sum(p.size for p in graph.populations if not p.is_source) * graph.ticks // 10], np.int64)
    return SimResult(spikes, counts, ops, updates, graph.ticks)


def main() -> dict:
    from sim.cost.energy import cost_report
    from sim.cost.hardware import map_graph

    t0 = time.perf_counter()
    graph = anchor_graph()
    t_build = time.perf_counter() - t0
    rss_graph = proc_status("VmRSS")
    exact_peak = reset_peak()
    t0 = time.perf_counter()
    mapping = map_graph(graph)
    t_map = time.perf_counter() - t0
    peak_map = proc_status("VmHWM")
    result = synthetic_result(graph)
    t0 = time.perf_counter()
    report = cost_report(graph, mapping, result)
    t_cost = time.perf_counter() - t0
    figures = {"neurons": graph.n_neurons, "synapses": graph.n_synapses, "cores": mapping.cores,
               "chips_needed": mapping.chips_needed, "inter_chip_messages": report.inter_chip_messages,
               "graph_gib": rss_graph / GiB, "map_peak_gib": peak_map / GiB, "peak_gib": proc_status("VmHWM") / GiB,
               "lifetime_maxrss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB,
               "peak_reset": exact_peak, "build_s": t_build, "map_s": t_map, "cost_s": t_cost}
    print(json.dumps(figures))
    return figures


@pytest.mark.bench
def test_anchor_graph_maps_within_a_few_gib_beyond_the_graph(capsys):
    out = subprocess.run([sys.executable, "-m", "benchmarks.test_bench_mapping"], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    f = json.loads(out.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(f"\n{f['neurons']:,} neurons, {f['synapses']:,} synapses → {f['cores']:,} cores on {f['chips_needed']} "
              f"chips: graph {f['graph_gib']:.2f} GiB resident, peak while mapping {f['map_peak_gib']:.2f} GiB, "
              f"peak with cost {f['peak_gib']:.2f} GiB; build {f['build_s']:.1f} s, map {f['map_s']:.1f} s, "
              f"cost {f['cost_s']:.1f} s")
    assert f["neurons"] >= 1_000_000 and 450e6 <= f["synapses"] <= 650e6
    assert f["chips_needed"] > 1 and f["inter_chip_messages"] > 0
    assert f["peak_gib"] < 12 and f["map_peak_gib"] - f["graph_gib"] < 3


if __name__ == "__main__":
    main()
