"""Discrete-event simulation of an AER graph; numba kernels, batches in parallel.

Algorithm, per sample, tick t = 0 … ticks−1 (slot = t mod R, R = max delay + 1):

1. input neurons spiking at t emit events;
2. per population, the neurons to update are those whose summed input for tick t
   is non-zero plus those that carry a current (decayed u ≠ 0, they evolve without
   input); they are found from the slot's block bitmap (one bit per 16 neurons that
   received an event) and visited once each, in index order; nobody else is touched
   (except, exactly, the resting neighbours in a dense block: ``sim.engine.kernels``);
3. an updated neuron first catches up its voltage leak over the ticks it rested with
   its model kernel's ``idle`` (Loihi: v ← trunc(v·(4096−dv)/4096)) — exact, because it
   rested only with no input and a current that decays to 0 within one tick, where
   the step reduces to ``idle`` and |v| only shrinks (after an update v ≤ threshold,
   so no spike can be missed) — then takes one step of its neuron model's kernel
   (``sim.neurons``) with its accumulated input (a neuron whose input sums to 0 and
   carries nothing would only leak: it rests instead). Resting is used only for
   kernels that promise it (``Kernel.rests``: CUBA-shaped, idle never spikes); a
   neuron of another kernel, once touched, is updated every tick of the sample.
   Populations whose parameters decay the current fully each tick
   (``Kernel.full_decay``: Loihi du = 4095, float du = 1) get a loop compiled
   without the carried-current test;
4. a spike of neuron i at t adds w to the accumulator of each target j in slot
   (t + delay) mod R and marks j's block there. A graded population (``sim.ir``)
   has no state: its neurons with summed input g ≠ 0 send g as a payload, adding
   w·g instead of w.

For a projection with weight_exp < 0, Lava shifts the *sum* (floor), so its
synapses accumulate into a private slot per post neuron and the shift is applied
at update time. Layout for the cache: one 8-byte record (v, last) per neuron and u apart,
int32 accumulators where the IR bounds allow (``sim.engine.flatgraph.acc_dtype``), bitmaps
of a few bits per neuron, with a summary of one bit per bitmap word (a population with no marked
block is skipped without a call). Cost: O(events + synaptic events + 16·marked blocks + marked words
+ populations + n/65536 per tick), independent of the number of silent neurons. Synaptic ops per
projection are computed exactly after the run from per-neuron spike counts × CSR row lengths.

Modules: ``sim.engine.flatgraph`` (the graph as one CSR), ``sim.engine.kernels`` (compiled
tick loop), this one (buffers, inputs, results, memory checks).
"""
from __future__ import annotations

import threading
from typing import Mapping

import numba
import numpy as np

from sim import numerics as nm
from sim.engine.flatgraph import FlatGraph, flatten
from sim.engine.kernels import BLOCK, count_input_events, fill_input_events, run_batch
from sim.engine.reference import check_inputs, source_spikes
from sim.engine.results import SimResult, lazy_zeros
from sim.ir.graph import AerGraph
from sim.neurons.dispatch import kernel_key
from sim.system.memory import available_bytes


def state_dtype(arith: nm.Arithmetic) -> np.dtype:
    """One neuron's record: v (the mode's state dtype, int32 | float32) and ``last`` (tick stamp), 8 bytes;
    its current u is kept apart (``sim.engine.kernels``)."""
    return np.dtype([("v", arith.state_dtype), ("last", np.int32)], align=True)


def estimate_bytes(graph: AerGraph, batch: int, record: bool, threads: int | None = None) -> dict[str, int]:
    """Memory a run needs: the flattened graph, per-thread working state, and the outputs."""
    n, S = graph.n_neurons, graph.n_synapses
    arith = graph.arith
    R = max((pr.delay for pr in graph.projections), default=1) + 1
    n_acc = n + sum(graph.population(pr.post).size for pr in graph.projections
                    if arith.engine_weights(pr.weights[:0], pr.weight_exp)[1])
    acc_bytes = 4 if arith.fixed_point and n_acc == n else 8    # int32 unless private accumulators (see acc_dtype)
    threads = min(batch, threads or numba.get_num_threads())
    return {
        "graph": S * (4 + np.dtype(arith.weight_dtype).itemsize) + n * (8 + 8 + 4)
        + sum(pr.n_pre for pr in graph.projections) * 24,                # ≤ one 24-byte segment record per row
        "working_state": threads * (R * n_acc * acc_bytes + R * (n // 8 + n // 128 + n // 8192 + 24) + n * 32),
        "outputs": batch * n * 16 + (batch * graph.ticks * n if record else 0),
    }


def check_memory(graph: AerGraph, batch: int, record: bool, flat_built: bool = False) -> None:
    """Refuse, before allocating, a run that would not fit in available memory (a flat graph
    already built is resident, not needed)."""
    need = estimate_bytes(graph, batch, record)
    if flat_built:
        need["graph"] = 0
    have = available_bytes()
    if sum(need.values()) > have and _kept:              # the kept buffers of an earlier run give their memory back
        release_working_buffers()
        have = available_bytes()
    if sum(need.values()) > have:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in need.items())
        raise MemoryError(f"simulating {batch} sample(s) of a graph with {graph.n_neurons:,} neurons and "
                          f"{graph.n_synapses:,} synapses needs ~{sum(need.values()) / 2**30:.2f} GiB ({parts}); "
                          f"{have / 2**30:.2f} GiB available — use record=False, fewer samples per call, or a larger machine")


def _input_events(graph: AerGraph, inputs: Mapping[str, np.ndarray], batch: int):
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


KEEP_BYTES = 1 << 30          # working buffers up to this size (address space) are kept for the next run
_kept: dict[tuple, tuple] = {}
_kept_lock = threading.Lock()


def release_working_buffers() -> None:
    """Drop the working buffers kept from the last run (``simulate`` keeps one set of ≤ KEEP_BYTES)."""
    with _kept_lock:
        _kept.clear()


def _take_buffers(key: tuple) -> tuple:
    """Working buffers, one set per thread: the kept set of the last run with the same ``key`` (C, R, n,
    n_acc, dtypes) — the kernel leaves accumulators, bitmaps and carries clean and ``epochs`` says which
    neuron records are stale, so reuse needs no reset — else fresh zero pages (``lazy_zeros``: cost
    follows the pages a run touches; reuse saves the page faults, about 16 k per call at D 16,384)."""
    with _kept_lock:
        bufs = _kept.pop(key, None)
        _kept.clear()
    if bufs is not None:
        return bufs
    C, R, n, n_acc, acc_dt, st, st_rec, pay_dt = key
    return (lazy_zeros((C, R, n_acc), acc_dt),
            lazy_zeros((C, R, -(-n // (BLOCK * 64))), np.uint64),     # marked blocks per slot
            np.zeros((C, R, -(-n // (BLOCK * 64 * 64))), np.uint64),  # its summary: one bit per word of blk
            lazy_zeros((C, R, -(-n // 64)), np.uint64),              # neurons carrying a current into the slot
            lazy_zeros((C, n), st_rec),                               # (v, last) per neuron
            lazy_zeros((C, n), st),                                   # u per neuron
            np.zeros(C, np.int64),                                    # first free epoch of each buffer
            np.empty((C, n + BLOCK), np.int32), np.empty((C, n + BLOCK), np.int32), np.empty((C, n), pay_dt))


def _keep_buffers(key: tuple, bufs: tuple) -> None:
    if sum(b.nbytes for b in bufs) <= KEEP_BYTES:
        with _kept_lock:
            _kept.clear()
            _kept[key] = bufs


def simulate(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, record: bool = True,
             progress: bool = False, flat: FlatGraph | None = None) -> SimResult:
    """Run every sample of ``inputs`` ({input name: (batch, ≤timesteps, size)}) for graph.ticks ticks."""
    batch = check_inputs(graph, inputs)
    check_memory(graph, batch, record, flat_built=flat is not None)
    flat = flat or flatten(graph)
    arith = graph.arith
    x_idx, x_ptr, x_off = _input_events(graph, inputs, batch)
    n, R, C = flat.n, flat.max_delay + 1, max(1, min(batch, numba.get_num_threads()))
    ends = np.append(flat.pop_start[1:], n)
    emits = flat.indptr[ends] > flat.indptr[flat.pop_start]         # population has outgoing synapses
    key = (C, R, n, flat.n_acc, np.dtype(flat.acc_dtype), np.dtype(arith.state_dtype), state_dtype(arith),
           np.dtype(arith.acc_dtype))
    bufs = _take_buffers(key)
    acc, blk, top, carry, state, cur, epochs, idx, fired, payload = bufs
    spikes = lazy_zeros((batch, graph.ticks, n) if record else (batch, 1, 1), np.bool_)
    pop_counts = np.zeros((batch, len(graph.populations)), np.int64)
    ops = np.zeros((batch, max(len(graph.projections), 1)), np.int64)
    updates = np.zeros(batch, np.int64)
    run_batch(flat.pop_of, flat.params, flat.code, kernel_key(), flat.mode, flat.kind, flat.out, flat.seg,
              flat.target, flat.weight, flat.neg_ptr,
              flat.neg_base, flat.neg_shift, flat.pop_start, emits, R, graph.ticks, x_idx, x_ptr, x_off,
              acc, blk, top, carry, state, cur, epochs, arith.state_dtype(0), idx, fired, payload, spikes, pop_counts, ops,
              updates, record)
    _keep_buffers(key, bufs)
    offsets = graph.offsets()
    out_spikes = ({p.name: spikes[:, :, offsets[p.name]:offsets[p.name] + p.size] for p in graph.populations}
                  if record else {})
    spike_counts = {p.name: pop_counts[:, k] for k, p in enumerate(graph.populations)}
    ops = {pr.name: ops[:, k] for k, pr in enumerate(graph.projections)}
    return SimResult(out_spikes, spike_counts, ops, updates, graph.ticks)
