"""The source spikes of a batch as the engine reads them: per sample, a CSR over ticks of global neuron ids."""
from __future__ import annotations

from typing import Mapping

import numba
import numpy as np

from sim.engine.reference import source_spikes
from sim.ir.graph import AerGraph
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


@numba.njit(cache=True)
def count_input_events(x, counts):
    """counts[b, t] += number of spikes in x[b, t] (x: bool (batch, ticks_x, size), ticks_x ≤ counts' ticks)."""
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            row = x[b, t]
            c = 0
            for i in range(x.shape[2]):
                c += row[i]
            counts[b, t] += c


@numba.njit(cache=True)
def fill_input_events(x, offset, pos, ids):
    """Neuron i spiking at (b, t) in x goes to ids[pos[b, t]] as i + offset, in index order; pos[b, t]
    advances. Branch-free: a silent neuron stores ids[q] back unchanged (q may already hold an event of
    an earlier source at the next tick), so ids needs one slot of slack past the last event."""
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            row = x[b, t]
            q = pos[b, t]
            for i in range(x.shape[2]):
                ids[q] = np.int32(i + offset) if row[i] else ids[q]
                q += row[i]
            pos[b, t] = q


def input_events(graph: AerGraph, inputs: Mapping[str, np.ndarray], batch: int):
    """Source spikes (given inputs, generated biases) as per-sample CSR over ticks of global neuron ids:
    (ids, ptr (batch, ticks + 1) within the sample's ids, off (batch, 2) its slice of ids); within a
    tick, sources in graph order, neurons in index order."""
    offsets = graph.offsets()
    T = graph.ticks
    spikes = [(offsets[name], x[:, :T]) for name, x in source_spikes(graph, inputs, batch).items()]
    counts = np.zeros((batch, T), np.int64)
    for _, x in spikes:
        count_input_events(x, counts[:, :x.shape[1]])
    ptr = np.zeros((batch, T + 1), np.int64)
    np.cumsum(counts, axis=1, out=ptr[:, 1:])
    off = np.zeros((batch, 2), np.int64)
    off[:, 1] = np.cumsum(ptr[:, -1])
    off[:, 0] = off[:, 1] - ptr[:, -1]
    pos = off[:, :1] + ptr[:, :-1]                        # next free place of each (sample, tick)
    ids = np.empty(int(off[-1, 1]) + 1 if batch else 1, np.int32)
    for offset, x in spikes:                              # sources in graph order
        fill_input_events(x, offset, pos[:, :x.shape[1]], ids)
    return ids[:-1], ptr, off
