"""Shared benchmark helpers: timing medians, the random network, results file."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input

RESULTS = Path("bench-results.json")


def median_time(fn, repeats: int = 5, clock=time.perf_counter):
    """Median over ``repeats`` calls of fn, timed by ``clock`` (wall by default; time.process_time for CPU
    seconds of this process, which neighbours on a shared machine do not inflate); returns (seconds, last result)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return statistics.median(times), out


def min_time(fn, repeats: int = 5, clock=time.process_time):
    """Least of ``repeats`` timed calls of fn (CPU seconds by default) and the last result: on a shared
    machine (a VM on a shared host) noise only adds, and runs of the same work here spread by up to 60 %."""
    times, out = [], None
    for _ in range(repeats):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return min(times), out


def random_network(n_in: int, n_out: int, fan_out: int, ticks: int, seed: int = 0, vth: int = 150) -> AerGraph:
    """input → LIF layer, each input neuron with ``fan_out`` random targets, even weights in [−40, 254]."""
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, n_in * fan_out + 1, fan_out, dtype=np.int64)
    stride = n_out // fan_out                    # one random target per stride: sorted and distinct (canonical CSR)
    indices = (np.arange(fan_out, dtype=np.int32) * stride + rng.integers(0, stride, (n_in, fan_out), dtype=np.int32)).ravel()
    weights = (rng.integers(-20, 128, n_in * fan_out) * 2).astype(np.int16)
    return AerGraph("loihi", (Population("in", n_in, Input()), Population("out", n_out, CubaLIF(4095, 512, vth), depth=1)),
                    (Projection("w", "in", "out", indptr, indices, weights),), None, ticks)


@numba.njit(cache=True)
def flat_scatter_bound(flat_pop_of, pout_ptr, pout, proj, row_ptr, syn, spike_i, acc):
    """The practical limit on the engine's own synapse layout (``sim.engine.flatgraph``): acc[target] += w
    for every synaptic event of the spikes ``spike_i`` (global ids), nothing else. Returns the events."""
    events = 0
    for k in range(len(spike_i)):
        i = spike_i[k]
        p = flat_pop_of[i]
        for m in range(pout_ptr[p], pout_ptr[p + 1]):
            r = proj[pout[m]].row + i - proj[pout[m]].pre
            for s in range(row_ptr[r], row_ptr[r + 1]):
                acc[syn[s].target] += syn[s].w
            events += row_ptr[r + 1] - row_ptr[r]
    return events


def proc_status(key: str) -> int:
    """VmRSS / VmHWM of this process in bytes. VmHWM is the peak of this process's own address space;
    ru_maxrss is not: Linux carries it across fork and exec, so a child started from a large parent
    reports the parent's peak."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def update_results(**figures) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(figures)
    RESULTS.write_text(json.dumps(data, indent=2))
