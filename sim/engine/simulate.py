"""Discrete-event simulation of an AER graph; numba kernels, batches in parallel.

Algorithm, per sample, tick t = 0 … ticks−1:

1. per population, the neurons to update are those marked for tick t: they received an
   event for t, or they carry a current (decayed u ≠ 0, they evolve without input); they
   are found from the tick's bitmap (one bit per neuron, one summary bit per bitmap word)
   and visited once each, in index order; nobody else is touched;
2. an updated neuron first catches up its voltage leak over the ticks it rested with
   its model kernel's ``idle`` (Loihi: v ← trunc(v·(4096−dv)/4096)) — exact, because it
   rested only with no input and a current that decays to 0 within one tick, where
   the step reduces to ``idle`` and |v| only shrinks (after an update v ≤ threshold,
   so no spike can be missed) — then takes one step of its neuron model's kernel
   (``sim.neurons``) with its accumulated input. Resting is used only for kernels that
   promise it (``Kernel.rests``: CUBA-shaped, idle never spikes); a neuron of another
   kernel, once touched, is updated every tick of the sample. Populations whose
   parameters decay the current fully each tick (``Kernel.full_decay``: Loihi du = 4095,
   float du = 1) get a loop compiled without the carried current;
3. after all updates of tick t, the spikes of t (sources, then populations) go out: a
   spike of neuron i adds w to the accumulator of each target j and marks j for tick
   t + delay — at once for delay 1, through a queue per slot (t + delay) mod R for
   longer delays (R = max delay + 1), added at the end of tick t + delay − 1. A graded
   population (``sim.ir``) has no state: its neurons with summed input g ≠ 0 send g as
   a payload, adding w·g instead of w.

For a projection with weight_exp < 0, Lava shifts the *sum* (floor), so its synapses
accumulate into a private slot per post neuron and the shift is applied at update time.
Layout for the cache (``sim.engine.kernels``): one record per neuron holding its accumulator
and its state (16 bytes in loihi numerics: an event and the update it causes share a cache
line), int32 accumulators where the IR bounds allow (``sim.engine.flatgraph.acc_dtype``),
synapses as (target, weight) records sent projection by projection, and the bitmaps (a few
bits per neuron). Cost: O(events + synaptic events + updated neurons + populations per tick
+ n/4096 per updated population), independent of the number of silent neurons; the working
state is O(n + queued events), whatever the delays.

Modules: ``sim.engine.flatgraph`` (the graph flattened), ``sim.engine.inputs`` (source spikes
as the engine reads them), ``sim.engine.kernels`` (compiled tick loop), ``sim.engine.delivery``
(events out, delay queue) and ``sim.engine.update`` (population updates) compiled into it, this one
(buffers, results, memory checks).
"""
from __future__ import annotations

import threading
from typing import Mapping

import numba
import numpy as np

from sim import numerics as nm
from sim.engine.flatgraph import FlatGraph, flatten
from sim.engine.inputs import input_events
from sim.engine.kernels import run_batch
from sim.engine.reference import check_inputs
from sim.engine.results import SimResult, lazy_zeros
from sim.ir.graph import AerGraph
from sim.neurons.dispatch import kernel_key
from sim.system.memory import available_bytes


def record_dtype(arith: nm.Arithmetic, acc_dtype: np.dtype) -> np.dtype:
    """One neuron's record (``sim.engine.kernels``): its summed input ``acc`` (int32 | int64 | float64),
    v and u (the mode's state dtype, int32 | float32) and ``last`` (tick stamp): 16 bytes in loihi numerics
    with int32 accumulators, else 24."""
    st = arith.state_dtype
    return np.dtype([("acc", acc_dtype), ("v", st), ("last", np.int32), ("u", st)], align=True)


RECORD_HUGE_BYTES = 1 << 28  # recorded spikes up to this size go in 2 MiB pages: one page fault per 2 MiB,
                              # not per 4 KiB (a fault costs ~2 µs here); larger ones stay sparse in 4 KiB pages
QUEUE_START = 1 << 12         # queued spikes per slot a run starts with (more on overflow, up to the bound)


def delayed_rows(graph: AerGraph) -> int:
    """Source neurons of the projections of delay ≥ 2, counted per projection: a bound on the spikes
    queued for one slot (a neuron spikes at most once per tick)."""
    return sum(pr.n_pre for pr in graph.projections if pr.delay >= 2)


def _working_bytes(n: int, n_acc: int, R: int, acc_bytes: int, delayed: int) -> int:
    """One thread's working buffers (``_take_buffers``) as a run starts them."""
    queue = R * min(QUEUE_START, max(1, delayed)) * 16
    return n_acc * (16 if acc_bytes == 4 else 24) + n // 4 + n * 16 + queue


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
        "graph": S * (4 + np.dtype(arith.weight_dtype).itemsize) + n * 4
        + sum(pr.n_pre + 1 for pr in graph.projections) * 8,             # synapses, population of, row pointers
        "working_state": threads * _working_bytes(n, n_acc, R, acc_bytes, delayed_rows(graph)),
        "outputs": batch * n * 16 + (batch * graph.ticks * n if record else 0),
    }


def check_memory(graph: AerGraph, batch: int, record: bool, flat: FlatGraph | None = None) -> None:
    """Refuse, before allocating, a run that would not fit in available memory (a flat graph already
    built is resident, not needed, and gives the working state's size at once)."""
    if flat is None:
        need = estimate_bytes(graph, batch, record)
    else:
        threads = min(batch, numba.get_num_threads())
        need = {"working_state": threads * _working_bytes(flat.n, flat.n_acc, flat.max_delay + 1,
                                                          flat.acc_dtype.itemsize, flat.n_delayed),
                "outputs": batch * flat.n * 16 + (batch * graph.ticks * flat.n if record else 0)}
    have = available_bytes()
    if sum(need.values()) > have and _kept:              # the kept buffers of an earlier run give their memory back
        release_working_buffers()
        have = available_bytes()
    if sum(need.values()) > have:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in need.items())
        raise MemoryError(f"simulating {batch} sample(s) of a graph with {graph.n_neurons:,} neurons and "
                          f"{graph.n_synapses:,} synapses needs ~{sum(need.values()) / 2**30:.2f} GiB ({parts}); "
                          f"{have / 2**30:.2f} GiB available — use record=False, fewer samples per call, or a larger machine")


KEEP_BYTES = 1 << 30          # working buffers up to this size (address space) are kept for the next run
_kept: dict[tuple, tuple] = {}
_kept_lock = threading.Lock()


def release_working_buffers() -> None:
    """Drop the working buffers kept from the last run (``simulate`` keeps one set of ≤ KEEP_BYTES)."""
    with _kept_lock:
        _kept.clear()


def _take_buffers(key: tuple, cap: int) -> tuple:
    """Working buffers, one set per thread (``sim.engine.kernels``): the kept set of the last run with the
    same ``key`` (C, R, n, n_acc, populations, dtypes) and a queue of ≥ ``cap`` spikes per slot — the kernel
    leaves accumulators, bitmaps and queues empty and ``epochs`` says which neuron records are stale, so
    reuse needs no reset — else fresh zero pages (``lazy_zeros``: cost follows the pages a run touches)."""
    with _kept_lock:
        bufs = _kept.pop(key, None)
        _kept.clear()
    C, R, n, n_acc, pops, rec_dt, pay_dt = key
    if bufs is not None and bufs[4].shape[1] >= R * cap:
        return bufs
    return (lazy_zeros((C, n_acc), rec_dt, huge=True),                       # (acc, v, last, u) per neuron
            lazy_zeros((C, 2, -(-n // 64)), np.uint64),                      # marked neurons, per tick parity
            np.zeros((C, 2, -(-n // 4096)), np.uint64),                      # its summary: one bit per l0 word
            np.zeros((C, 2, 2, -(-pops // 64)), np.uint64),                   # populations flagged: marked, to scan
            lazy_zeros((C, R * cap), np.int32),                              # queued spikes, cap per slot: neuron,
            np.zeros((C, R), np.int64),                                      # how many
            np.zeros(C, np.int64),                                           # first free epoch of each buffer
            lazy_zeros((C, R * cap), np.int32),                              # their projection
            np.empty((C, n), np.int32), np.zeros((C, 2, pops + 1), np.int64), np.empty((C, n), pay_dt),
            np.empty((C, n + 4), np.int32),                                  # marked neurons (+4: _flatten_bits)
            lazy_zeros((C, R * cap), pay_dt))                                # and payload


def _keep_buffers(key: tuple, bufs: tuple) -> None:
    if sum(b.nbytes for b in bufs) <= KEEP_BYTES and (bufs[6] >= 0).all():
        with _kept_lock:
            _kept.clear()
            _kept[key] = bufs


_entry_points: dict[tuple, object] = {}


def _run_batch(*args) -> None:
    """``run_batch(*args)`` through its compiled entry point, found once per argument types: numba's
    dispatcher types every structured array anew on each call (~50 µs each, a fifth of a small batch)."""
    key = tuple((a.dtype, a.ndim, a.flags.c_contiguous, a.flags.aligned, a.flags.writeable)
                if isinstance(a, np.ndarray) else numba.typeof(a) for a in args)
    entry = _entry_points.get(key)
    if entry is not None:
        entry(*args)
        return
    run_batch(*args)
    _entry_points[key] = run_batch.overloads[tuple(run_batch.typeof_pyval(a) for a in args)].entry_point


def simulate(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, record: bool = True,
             progress: bool = False, flat: FlatGraph | None = None) -> SimResult:
    """Run every sample of ``inputs`` ({input name: (batch, ≤timesteps, size)}) for graph.ticks ticks."""
    batch = check_inputs(graph, inputs)
    check_memory(graph, batch, record, flat)
    flat = flat or flatten(graph)
    arith = graph.arith
    x_idx, x_ptr, x_off = input_events(graph, inputs, batch)
    n, R, C = flat.n, flat.max_delay + 1, max(1, min(batch, numba.get_num_threads()))
    pops = len(graph.populations)
    key = (C, R, n, flat.n_acc, pops, record_dtype(arith, flat.acc_dtype), np.dtype(arith.acc_dtype))
    bound = max(1, flat.n_delayed)
    cap = min(QUEUE_START, bound)
    spikes = lazy_zeros((batch, graph.ticks, n) if record else (batch, 1, 1), np.bool_,   # 2 MiB pages up to
                        huge=batch * graph.ticks * n <= RECORD_HUGE_BYTES)                 # RECORD_HUGE_BYTES
    pop_counts = np.zeros((batch, pops), np.int64)
    ops = np.zeros((batch, max(len(graph.projections), 1)), np.int64)
    updates = np.zeros(batch, np.int64)
    done = np.zeros(batch, np.bool_)
    while True:
        bufs = _take_buffers(key, cap)
        rec, l0, l1, pflag, qi, qlen, epochs, qk, fired, fpop, payload, idx, qv = bufs
        _run_batch(flat.params, flat.code, kernel_key(), flat.mode, flat.kind, flat.syn, flat.row_ptr, flat.proj,
                  flat.pout_ptr, flat.pout, flat.neg_ptr, flat.neg_base, flat.neg_shift,
                  flat.pop_start, n, R, graph.ticks, x_idx, x_ptr, x_off, rec, l0, l1, pflag, qi, qk, qv, qlen, epochs,
                  arith.state_dtype(0), idx, fired, fpop, payload, spikes, pop_counts, ops, updates, done, record)
        _keep_buffers(key, bufs)
        if done.all():
            break
        cap = min(4 * qi.shape[1] // R, bound)                # a queue overflowed: larger fresh buffers, redo the rest
        for b in np.flatnonzero(~done):
            pop_counts[b], ops[b], spikes[b] = 0, 0, False
    offsets = graph.offsets()
    out_spikes = ({p.name: spikes[:, :, offsets[p.name]:offsets[p.name] + p.size] for p in graph.populations}
                  if record else {})
    spike_counts = {p.name: pop_counts[:, k] for k, p in enumerate(graph.populations)}
    ops = {pr.name: ops[:, k] for k, pr in enumerate(graph.projections)}
    return SimResult(out_spikes, spike_counts, ops, updates, graph.ticks)
