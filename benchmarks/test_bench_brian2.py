"""Engine vs Brian2 on the same random LIF network, same float dynamics, identical spike trains.

Brian2 gets the discrete update as a ``run_regularly`` before thresholds
(u ← u(1−du)+a; v ← v(1−dv)+u; a ← 0), threshold v > vth, reset v = 0, and
``a_post += w`` on_pre — our float mode exactly. Weights are small integers and
du, dv powers of two, so float32 sums are exact in any order and both produce
the same spikes. Times: Brian2's ``run`` only (cython target, after a warm-up
compile) vs the engine's ``simulate`` (graph flattened beforehand).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.common import median_time, update_results
from sim.engine.flatgraph import flatten
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIFFloat
from sim.neurons.input import Input

pytestmark = pytest.mark.bench
b2 = pytest.importorskip("brian2")

N_IN, N_OUT, FAN, TICKS, DU, DV, VTH = 2000, 4000, 100, 100, 0.5, 0.25, 8.0


def network(seed=0):
    rng = np.random.default_rng(seed)
    stride = N_OUT // FAN
    indices = (np.arange(FAN) * stride + rng.integers(0, stride, (N_IN, FAN))).ravel()
    w = rng.integers(-2, 6, N_IN * FAN).astype(np.float32)
    g = AerGraph("float", (Population("in", N_IN, Input()), Population("out", N_OUT, CubaLIFFloat(DU, DV, VTH), depth=1)),
                 (Projection("w", "in", "out", np.arange(0, N_IN * FAN + 1, FAN), indices, w),), None, TICKS)
    return g, rng.random((1, TICKS, N_IN)) < 0.05


def run_brian2(g, x) -> tuple[float, set]:
    pr = g.projections[0]
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    t_idx, n_idx = np.nonzero(x[0])
    inp = b2.SpikeGeneratorGroup(N_IN, n_idx, t_idx * b2.ms)
    grp = b2.NeuronGroup(N_OUT, "u : 1\nv : 1\na : 1", threshold="v > vth", reset="v = 0", namespace={"vth": VTH})
    grp.run_regularly(f"u = u*(1 - {DU}) + a\nv = v*(1 - {DV}) + u\na = 0", when="before_thresholds")
    syn = b2.Synapses(inp, grp, "w : 1", on_pre="a_post += w")
    syn.connect(i=np.repeat(np.arange(N_IN), FAN), j=pr.indices)
    syn.w = pr.weights
    mon = b2.SpikeMonitor(grp)
    net = b2.Network(inp, grp, syn, mon)
    t0 = time.perf_counter()
    net.run((TICKS + 1) * b2.ms)
    elapsed = time.perf_counter() - t0
    return elapsed, set(zip(np.round(np.asarray(mon.t / b2.ms)).astype(int).tolist(), np.asarray(mon.i).tolist()))


def test_engine_vs_brian2(capsys):
    b2.prefs.codegen.target = "cython"
    b2.prefs.core.default_float_dtype = np.float32
    g, x = network()
    run_brian2(g, x)                                           # compile once
    runs = [run_brian2(g, x) for _ in range(3)]
    t_brian = float(np.median([r[0] for r in runs]))
    flat = flatten(g)
    simulate(g, {"in": x}, flat=flat)
    t_engine, res = median_time(lambda: simulate(g, {"in": x}, flat=flat), 5)
    t, i = np.nonzero(res.spikes["out"][0])
    assert runs[0][1] == set(zip(t.tolist(), i.tolist())) and len(runs[0][1]) > 0    # identical spike trains
    update_results(vs_brian2_speedup=t_brian / t_engine)
    with capsys.disabled():
        print(f"\n\nBrian2 {b2.__version__} (cython) vs engine, {N_IN}+{N_OUT} LIF, {N_IN * FAN:,} synapses, "
              f"{TICKS} ticks: {len(runs[0][1]):,} identical spikes; Brian2 {t_brian:.3f} s, engine {t_engine:.4f} s "
              f"→ {t_brian / t_engine:.1f}x faster\n")
    assert t_engine < t_brian
