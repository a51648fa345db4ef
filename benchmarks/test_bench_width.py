"""Engine vs torch at fixed k while the width grows (issue 23): models of the ``mnist1d-width`` shape.

For D in WIDTHS: the preset ``mnist1d-width`` at dim = D (k-WTA stream and hidden layer at k = 4 with
the group rule, fan-in F = 4, hidden = 2·D), random initial weights, converted by ``to_graph``; inputs:
the first BATCH test samples. One thread each (numba, torch), CPU seconds of this process, least of N:

* engine: one ``simulate`` call for the batch, per inference;
* torch as trained: the model's own forward (each fan-in matrix a gather over its table, ``gather_linear``);
* torch dense: the same forward with every projection a dense matmul ``x @ W.T`` (W built before the
  clock, one matrix at a time, in the model's dtype); on TORCH_DENSE_SAMPLES[D] samples at the widest
  widths (a dense forward there takes seconds per sample; per inference it is compute bound either way).

Identical spikes asserted: engine = torch as trained on every sample, dense = as trained on its samples.
The fan-in tables are drawn by ``fast_fan_in_table`` (F distinct uniform sources per row, as
``fan_in_table``, in O(rows·F) instead of its O(rows·n_in·log n_in) argsort: 4 min at D = 16,384).
Also, in the same process: events/s (synaptic ops / engine seconds) of the presets ``mnist1d-width``
and ``demo`` at batch 64, and the engine's wall-clock speed-up 1 → 2 threads on the ``large`` preset's
test samples. Writes the ``width_*`` keys, ``mnist1d_width_events_per_s``, ``demo_events_per_s`` and
``threads2_speedup`` to bench-results.json and the plot docs/width-engine.png.
"""
from __future__ import annotations

import contextlib
import math
import os
import time

import numba
import numpy as np
import pytest
import torch

import spikeformer.model.transformer as transformer
from benchmarks.common import flat_scatter_bound, min_time, update_results
from sim.engine.flatgraph import flatten
from sim.engine.simulate import simulate
from spikeformer.configure.presets import preset
from spikeformer.data.registry import encode, load_dataset
from spikeformer.lower.convert import compare_to_model, to_graph
from spikeformer.model.transformer import SpikingTransformer

pytestmark = pytest.mark.bench
BATCH = 64
WIDTHS = tuple(int(d) for d in os.environ.get("BENCH_WIDTHS", "64,256,1024,4096,16384").split(","))
TORCH_DENSE_SAMPLES = {4096: 8, 16384: 2}
ROUNDS = 3
PLOT = "docs/width-engine.png"


def fast_fan_in_table(n_out: int, n_in: int, fan_in: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """(n_out, F) int64, each row F distinct sources drawn uniformly, sorted: redraw rows with a repeat."""
    f = min(fan_in, n_in)
    table = torch.randint(0, n_in, (n_out, f), generator=gen).sort(dim=1).values
    while True:
        dup = (table[:, 1:] == table[:, :-1]).any(dim=1)
        if not dup.any():
            return table
        table[dup] = torch.randint(0, n_in, (int(dup.sum()), f), generator=gen).sort(dim=1).values


@contextlib.contextmanager
def fast_tables():
    saved = transformer.fan_in_table
    transformer.fan_in_table = fast_fan_in_table
    try:
        yield
    finally:
        transformer.fan_in_table = saved


def width_model(dim: int) -> tuple[SpikingTransformer, object, torch.Tensor]:
    """(model, graph, encoded inputs (BATCH, T, tokens, features)) of ``mnist1d-width`` at dim."""
    cfg, _ = preset("mnist1d-width")
    cfg = cfg.replace(dim=dim)
    torch.manual_seed(0)
    with fast_tables():
        model = SpikingTransformer(cfg).eval()
    return model, to_graph(model), encode(cfg, load_dataset(cfg).x_test[:BATCH])


def dense_forward(model: SpikingTransformer, x: torch.Tensor) -> tuple[float, tuple]:
    """CPU seconds of the model's forward with every projection a dense matmul (W built off the clock)."""
    build = 0.0

    def linear(param, xs, values):
        nonlocal build
        t0 = time.process_time()
        w = model.dense(param, values)
        build += time.process_time() - t0
        return xs @ w.T
    model.linear = linear
    try:
        t0 = time.process_time()
        out = model(x, record=True)
        return time.process_time() - t0 - build, out
    finally:
        del model.linear


def measure_width(dim: int) -> tuple[dict, tuple]:
    """Torch times and identical spikes at width dim; returns (row, (graph, flat, inputs)) — the engine is
    timed afterwards in rounds over every width (``time_engine``)."""
    model, graph, x = width_model(dim)
    flat = flatten(graph)
    inputs = {"input": x.numpy().reshape(len(x), graph.timesteps, -1)}
    simulate(graph, {"input": inputs["input"][:1]}, flat=flat, record=False)           # compile
    res = simulate(graph, inputs, flat=flat, record=True)
    with torch.no_grad():
        logits, rec = model(x, record=True)
        assert compare_to_model(graph, {k: v.numpy() for k, v in rec.items()}, res.spikes)[0].all(), dim
        n_dense = TORCH_DENSE_SAMPLES.get(dim, BATCH)
        t_dense, (logits_d, rec_d) = min(dense_forward(model, x[:n_dense]) for _ in range(1 if n_dense < 8 else 2))
        assert torch.equal(logits_d, logits[:n_dense]) and all(torch.equal(rec_d[k], rec[k][:n_dense]) for k in rec_d)
        del res, rec, rec_d
        t_gather, _ = min_time(lambda: model(x), 1 if dim >= 16384 else 3)
    stats = simulate(graph, inputs, flat=flat, record=False)
    return ({"dim": dim, "neurons": graph.n_neurons, "synops": stats.synaptic_ops_per_inference,
             "gather": t_gather / len(x), "dense": t_dense / n_dense}, (graph, flat, inputs))


def time_engine(rows: list[dict], runs: list[tuple], rounds: int = ROUNDS, repeats: int = 3) -> None:
    """rows[i]["engine"] = least CPU seconds per inference of ``simulate`` on runs[i] (one call for the batch),
    over ``rounds`` rounds that each time every width ``repeats`` times: a neighbour's burst on the shared
    machine then inflates one round of every width, not all runs of one width."""
    for row in rows:
        row["engine"] = math.inf
    for _ in range(rounds):
        for row, (graph, flat, inputs) in zip(rows, runs):
            t, _ = min_time(lambda: simulate(graph, inputs, flat=flat, record=False), repeats)
            row["engine"] = min(row["engine"], t / len(inputs["input"]))


def crossover(rows: list[dict], key: str) -> float | None:
    """The width where torch ``key`` time / engine time crosses 1 (log-log interpolation), None if it does not."""
    r = [(math.log(row["dim"]), math.log(row[key] / row["engine"])) for row in rows]
    if r[0][1] >= 0:
        return float(rows[0]["dim"])
    for (d0, y0), (d1, y1) in zip(r, r[1:]):
        if y0 < 0 <= y1:
            return float(math.exp(d0 + (d1 - d0) * -y0 / (y1 - y0)))
    return None


def preset_events_per_s(name: str) -> tuple[float, float]:
    """Synaptic ops per engine CPU second of a preset's initial model on BATCH test samples (one call), and
    per second at the raw scatter bound on the same graph and spikes (``common.flat_scatter_bound``:
    acc[target] += w for each synaptic event of every spike, nothing else; least of 5)."""
    cfg, _ = preset(name)
    torch.manual_seed(0)
    graph = to_graph(SpikingTransformer(cfg).eval())
    x = encode(cfg, load_dataset(cfg).x_test[:BATCH])
    inputs = {"input": x.numpy().reshape(len(x), graph.timesteps, -1)}
    flat = flatten(graph)
    simulate(graph, {"input": inputs["input"][:1]}, flat=flat, record=False)
    res = simulate(graph, inputs, flat=flat, record=True)
    spike_ids = np.concatenate([np.nonzero(np.concatenate([res.spikes[p.name][b] for p in graph.populations],
                                                          axis=1))[1] for b in range(len(x))])
    del res
    acc = np.zeros(flat.n, np.int64)
    layout = (flat.pop_of, flat.pout_ptr, flat.pout, flat.proj, flat.row_ptr, flat.syn, spike_ids, acc)
    t_bound, events = min_time(lambda: flat_scatter_bound(*layout), 5)
    t, stats = min_time(lambda: simulate(graph, inputs, flat=flat, record=False), 5)
    assert events == stats.synaptic_ops_per_inference * len(x), (name, events)    # the same synaptic events
    return stats.synaptic_ops_per_inference * len(x) / t, events / t_bound


def threads2_speedup(samples: int = 8) -> float:
    """Wall seconds of the ``large`` preset's first test samples with 1 thread / with 2 (least of 3)."""
    cfg, _ = preset("large")
    torch.manual_seed(0)
    graph = to_graph(SpikingTransformer(cfg).eval())
    x = encode(cfg, load_dataset(cfg).x_test[:samples])
    inputs = {"input": x.numpy().reshape(len(x), graph.timesteps, -1)}
    flat = flatten(graph)
    simulate(graph, {"input": inputs["input"][:2]}, flat=flat, record=False)
    times = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        times[threads], _ = min_time(lambda: simulate(graph, inputs, flat=flat, record=False), 3,
                                     clock=time.perf_counter)
    numba.set_num_threads(1)
    return times[1] / times[2]


def plot(rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    d = [r["dim"] for r in rows]
    for key, label in (("engine", "engine (event-driven)"), ("gather", "torch as trained (gather)"),
                       ("dense", "torch dense matmul")):
        ax.loglog(d, [r[key] * 1e3 for r in rows], "o-", label=label)
    ax.set_xlabel("width D (k = 4, fan-in 4, hidden 2·D)")
    ax.set_ylabel("ms per inference (1 thread, CPU)")
    ax.set_title("mnist1d-width shape, batch 64, identical spikes")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)


def test_width_engine_vs_torch(capsys):
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    measured = [measure_width(d) for d in WIDTHS]
    rows, runs = [m[0] for m in measured], [m[1] for m in measured]
    time_engine(rows, runs)
    del measured, runs
    per_op = [r["engine"] / r["synops"] for r in rows]
    synops = [r["synops"] for r in rows]
    wide = rows[-1]
    figures = {"width_engine_time_per_synop_max_over_min": max(per_op) / min(per_op),
               "width_synops_max_over_min": max(synops) / min(synops),
               "width_vs_torch_dense": wide["dense"] / wide["engine"],
               "width_vs_torch_gather": wide["gather"] / wide["engine"],
               "width_crossover_dense": crossover(rows, "dense"), "width_crossover_gather": crossover(rows, "gather"),
               "width_rows": rows}
    figures["mnist1d_width_events_per_s"], figures["mnist1d_width_scatter_bound_events_per_s"] = \
        preset_events_per_s("mnist1d-width")
    figures["demo_events_per_s"], figures["demo_scatter_bound_events_per_s"] = preset_events_per_s("demo")
    figures["mnist1d_width_over_demo_events_per_s"] = figures["mnist1d_width_events_per_s"] / figures["demo_events_per_s"]
    figures["mnist1d_width_scatter_bound_over_demo_events_per_s"] = (           # the most any engine doing
        figures["mnist1d_width_scatter_bound_events_per_s"] / figures["demo_events_per_s"])  # acc[t] += w reaches
    if os.environ.get("BENCH_THREADS", "1") != "0":
        figures["threads2_speedup"] = threads2_speedup()
    update_results(**figures)
    plot(rows)
    with capsys.disabled():
        print(f"\n\nengine vs torch at fixed k = 4, fan-in 4 (ms per inference, batch {BATCH}, 1 thread each; "
              f"load {load:.2f} at start, {os.getloadavg()[0]:.2f} at end)")
        print(f"{'D':>7}{'neurons':>11}{'synops/inf':>12}{'engine':>9}{'ns/synop':>10}{'gather':>10}{'dense':>11}"
              f"{'× gather':>10}{'× dense':>9}")
        for r in rows:
            print(f"{r['dim']:>7,}{r['neurons']:>11,}{r['synops']:>12,.0f}{r['engine'] * 1e3:>9.3f}"
                  f"{r['engine'] / r['synops'] * 1e9:>10.1f}{r['gather'] * 1e3:>10.3f}{r['dense'] * 1e3:>11.3f}"
                  f"{r['gather'] / r['engine']:>10.2f}{r['dense'] / r['engine']:>9.2f}")
        for k, v in figures.items():
            if k != "width_rows":
                print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
        print(f"plot: {PLOT}\n")
