"""A 1 M-neuron, 100 M-synapse graph simulated within 2 GiB resident (compact dtypes), measured."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.bench

SCRIPT = """
import time, numpy as np
from benchmarks.common import proc_status
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input
from sim.ir.graph import AerGraph, Population, Projection
from sim.engine.simulate import simulate
rng = np.random.default_rng(0)
n_in, n_out, fan = 100_000, 900_000, 1000                   # 1 M neurons, 100 M synapses
indptr = np.arange(0, n_in * fan + 1, fan, dtype=np.int64)
indices = (np.arange(fan, dtype=np.int32) * (n_out // fan) + rng.integers(0, n_out // fan, (n_in, fan), dtype=np.int32)).ravel()
weights = (rng.integers(-60, 128, n_in * fan, dtype=np.int16) * 2).astype(np.int16)
g = AerGraph("loihi", (Population("in", n_in, Input()), Population("out", n_out, CubaLIF(4095, 256, 400), depth=1)),
             (Projection("w", "in", "out", indptr, indices, weights),), None, 10)
x = rng.random((1, 10, n_in)) < 0.01
t = time.perf_counter()
res = simulate(g, {"in": x}, record=False)
dt = time.perf_counter() - t
ev = int(res.synaptic_ops["w"].sum())
print(g.n_neurons, g.n_synapses, proc_status("VmHWM") / 2**30, ev, dt)
"""


def test_million_neurons_hundred_million_synapses_fit_in_2_gib(capsys):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    neurons, synapses, peak_gib, events, seconds = out.stdout.split()
    with capsys.disabled():
        print(f"\n{int(neurons):,} neurons, {int(synapses):,} synapses: peak resident {float(peak_gib):.2f} GiB; "
              f"{int(events):,} synaptic events in {float(seconds):.2f} s (incl. flattening)")
    assert int(neurons) >= 1_000_000 and int(synapses) >= 100_000_000
    assert float(peak_gib) <= 2.0
