"""Discrete-event simulation of an AER graph; numba kernels, batches in parallel.

Algorithm, per sample, tick t = 0 … ticks−1 (slot = t mod R, R = max delay + 1):

1. input neurons spiking at t emit events;
2. the neurons to update are those that received input for tick t (the
   ``touched`` list of the slot) plus those whose current u ≠ 0 (``active``,
   they evolve without input); nobody else is touched;
3. a touched neuron first catches up its voltage leak over the ticks it was
   skipped — exact, because it was skipped only with u = 0 and no input, where
   the update reduces to the model kernel's ``idle`` (Loihi: v ← trunc(v·(4096−dv)/4096))
   and |v| only shrinks (after an update v ≤ threshold, so no spike can be missed) — then
   takes one step of its neuron model's kernel (``sim.neurons``) with its accumulated input;
4. a spike of neuron i at t adds w to the accumulator of each target j in slot
   (t + delay) mod R and marks j touched there. A graded population (``sim.ir``)
   has no state: its touched neurons send their summed input g as a payload,
   adding w·g instead of w (only where g ≠ 0).

For a projection with weight_exp < 0, Lava shifts the *sum* (floor), so its
synapses accumulate into a private slot per post neuron and the shift is applied
at update time. Cost: O(events + synaptic events + updates), independent of the
number of silent neurons. Synaptic ops per projection are computed exactly after
the run from per-neuron spike counts × CSR row lengths.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numba
import numpy as np
from numba import types
from numba.extending import overload

from sim.ir import AerGraph
from sim.neurons import kernel_idle, kernel_key, kernel_step
from sim.reference import check_inputs, source_spikes


@dataclass(frozen=True)
class FlatGraph:
    """The graph flattened over one global neuron index space (built once per run)."""

    n: int                    # neurons
    n_acc: int                # accumulators: n + private slots of negative-exponent projections
    pop_of: np.ndarray        # (n,) int32 population index
    params: np.ndarray        # (pops, 3) kernel parameters p0, p1, p2 (int64 loihi | float64 float)
    code: np.ndarray          # (pops,) int8 kernel code (``sim.neurons``) of a neuron population
    kind: np.ndarray          # (pops,) int8: KIND_INPUT (any source) | KIND_LIF (a neuron) | KIND_GRADED
    indptr: np.ndarray        # (n+1,) int64: outgoing synapses of neuron i
    seg_ptr: np.ndarray       # (n+1,) int64: neuron i's segments (one per projection it feeds)
    seg_end: np.ndarray       # (G,) int64 end of a segment's synapses (start = previous end / indptr[i])
    seg_delay: np.ndarray     # (G,) int8 delay of the segment's projection
    seg_delta: np.ndarray     # (G,) int64 accumulator index − target (≠ 0 only for weight_exp < 0)
    seg_proj: np.ndarray      # (G,) int32 projection of the segment (for synaptic-op counts)
    target: np.ndarray        # (S,) int32 neuron receiving the event
    weight: np.ndarray        # (S,) int16 (loihi, already << exp ≥ 0) | float32
    neg_ptr: np.ndarray       # (pops+1,) negative-exponent projections into each population
    neg_base: np.ndarray      # accumulator base of that projection (index = base + local neuron)
    neg_shift: np.ndarray     # −weight_exp
    pop_start: np.ndarray     # (pops,) first global index
    max_delay: int


KIND_INPUT, KIND_LIF, KIND_GRADED = 0, 1, 2


def kind_code(model) -> int:
    """The engine's role of a neuron model: source, neuron or graded relay."""
    return KIND_INPUT if model.source else KIND_GRADED if model.relay else KIND_LIF


def kernel_table(graph: AerGraph) -> tuple[np.ndarray, np.ndarray]:
    """(params (pops, 3), code (pops,)) of every population's kernel; sources and relays: zeros."""
    dt = graph.arith.acc_dtype
    params = np.zeros((len(graph.populations), 3), dt)
    code = np.zeros(len(graph.populations), np.int8)
    for k, p in enumerate(graph.populations):
        if kind_code(p.model) == KIND_LIF:
            params[k] = p.model.kernel_params()
            code[k] = p.model.kernel.code
    return params, code


@numba.njit(cache=True)
def _fill_rows(cursor, seg_cursor, pr_indptr, pr_indices, pr_weights, pre_off, post_off, delay, scale, delta,
               proj, target, weight, seg_end, seg_delay, seg_delta, seg_proj):
    """Append one projection's rows (and one segment per non-empty row) at each source neuron's cursors."""
    for r in range(len(pr_indptr) - 1):
        lo, hi = pr_indptr[r], pr_indptr[r + 1]
        if hi == lo:
            continue
        c = cursor[pre_off + r]
        for s in range(lo, hi):
            target[c] = pr_indices[s] + post_off
            weight[c] = pr_weights[s] * scale
            c += 1
        cursor[pre_off + r] = c
        g = seg_cursor[pre_off + r]
        seg_end[g], seg_delay[g], seg_delta[g], seg_proj[g] = c, delay, delta, proj
        seg_cursor[pre_off + r] = g + 1


def flatten(graph: AerGraph) -> FlatGraph:
    """Merge all projections into one CSR over global neuron indices, in compact dtypes.

    Each source neuron's synapses are grouped in segments, one per projection, so
    delay and accumulator offset are per segment, not per synapse. target int32,
    weight int16 (loihi: w << exp ≤ 254·2⁷ fits) | float32.
    """
    arith = graph.arith
    pops = graph.populations
    index = {p.name: k for k, p in enumerate(pops)}
    offsets = graph.offsets()
    n = graph.n_neurons
    pop_of = np.repeat(np.arange(len(pops), dtype=np.int32), [p.size for p in pops])
    row_len = np.zeros(n, np.int64)
    seg_len = np.zeros(n, np.int64)
    for pr in graph.projections:
        d = np.diff(pr.indptr)
        row_len[offsets[pr.pre]:offsets[pr.pre] + pr.n_pre] += d
        seg_len[offsets[pr.pre]:offsets[pr.pre] + pr.n_pre] += d > 0
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(row_len, out=indptr[1:])
    seg_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(seg_len, out=seg_ptr[1:])
    total, n_seg = int(indptr[-1]), int(seg_ptr[-1])
    target = np.empty(total, np.int32)
    weight = np.empty(total, arith.weight_dtype)
    seg_end = np.empty(n_seg, np.int64)
    seg_delay = np.empty(n_seg, np.int8)
    seg_delta = np.empty(n_seg, np.int64)
    seg_proj = np.empty(n_seg, np.int32)
    cursor, seg_cursor = indptr[:-1].copy(), seg_ptr[:-1].copy()
    neg: dict[int, list[tuple[int, int]]] = {}
    n_acc = n
    for k_proj, pr in enumerate(graph.projections):
        delta = 0
        w, private = arith.engine_weights(pr.weights, pr.weight_exp)
        if private:                       # private accumulators: Lava floors the shifted *sum*
            delta = n_acc - offsets[pr.post]
            neg.setdefault(index[pr.post], []).append((n_acc, -pr.weight_exp))
            n_acc += graph.population(pr.post).size
        _fill_rows(cursor, seg_cursor, pr.indptr, pr.indices, w.astype(weight.dtype, copy=False), offsets[pr.pre],
                   offsets[pr.post], pr.delay, weight.dtype.type(1), delta, k_proj, target, weight,
                   seg_end, seg_delay, seg_delta, seg_proj)
    neg_ptr = np.zeros(len(pops) + 1, np.int64)
    neg_base, neg_shift = [], []
    for k in range(len(pops)):
        for base, sh in neg.get(k, []):
            neg_base.append(base); neg_shift.append(sh)
        neg_ptr[k + 1] = len(neg_base)
    params, code = kernel_table(graph)
    return FlatGraph(
        n=n, n_acc=n_acc, pop_of=pop_of, params=params, code=code,
        kind=np.array([kind_code(p.model) for p in pops], np.int8),
        indptr=indptr, seg_ptr=seg_ptr, seg_end=seg_end, seg_delay=seg_delay, seg_delta=seg_delta, seg_proj=seg_proj,
        target=target, weight=weight,
        neg_ptr=neg_ptr, neg_base=np.array(neg_base, np.int64), neg_shift=np.array(neg_shift, np.int64),
        pop_start=np.array([offsets[p.name] for p in pops], np.int64),
        max_delay=int(max((pr.delay for pr in graph.projections), default=1)))


def estimate_bytes(graph: AerGraph, batch: int, record: bool, threads: int | None = None) -> dict[str, int]:
    """Memory a run needs: the flattened graph, per-thread working state, and the outputs."""
    n, S = graph.n_neurons, graph.n_synapses
    arith = graph.arith
    R = max((pr.delay for pr in graph.projections), default=1) + 1
    n_acc = n + sum(graph.population(pr.post).size for pr in graph.projections
                    if arith.engine_weights(pr.weights[:0], pr.weight_exp)[1])
    threads = min(batch, threads or numba.get_num_threads())
    return {
        "graph": S * (4 + np.dtype(arith.weight_dtype).itemsize) + n * (8 + 8 + 4)
        + sum(pr.n_pre for pr in graph.projections) * 17,
        "working_state": threads * (R * n_acc * 8 + R * n * 5 + n * 24),
        "outputs": batch * n * 16 + (batch * graph.ticks * n if record else 0),
    }


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else psutil."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil
    return int(psutil.virtual_memory().available)


def check_memory(graph: AerGraph, batch: int, record: bool, flat_built: bool = False) -> None:
    """Refuse, before allocating, a run that would not fit in available memory (a flat graph
    already built is resident, not needed)."""
    need = estimate_bytes(graph, batch, record)
    if flat_built:
        need["graph"] = 0
    have = available_bytes()
    if sum(need.values()) > have:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in need.items())
        raise MemoryError(f"simulating {batch} sample(s) of a graph with {graph.n_neurons:,} neurons and "
                          f"{graph.n_synapses:,} synapses needs ~{sum(need.values()) / 2**30:.2f} GiB ({parts}); "
                          f"{have / 2**30:.2f} GiB available — use record=False, fewer samples per call, or a larger machine")


def _shift(x, s):
    """Negative weight exponent applied to an accumulated sum: floor(x / 2^s) (loihi only)."""


@overload(_shift)
def _shift_impl(x, s):
    if isinstance(x, types.Integer):
        return lambda x, s: x >> s
    return lambda x, s: x


@numba.njit(cache=True, inline="always")
def _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, mark, touched, n_touched,
          payload):
    """Deliver an event of neuron i: per segment, acc[(slot + delay) mod R, target + delta] += w·payload; mark targets."""
    s = indptr[i]
    for g in range(seg_ptr[i], seg_ptr[i + 1]):
        sl = slot + seg_delay[g]
        if sl >= R:
            sl -= R
        d = seg_delta[g]
        acc_row = acc[sl]
        mark_row = mark[sl]
        t_row = touched[sl]
        nt = n_touched[sl]
        e = seg_end[g]
        while s < e:
            j = target[s]
            acc_row[j + d] += weight[s] * payload
            if not mark_row[j]:
                mark_row[j] = True
                t_row[nt] = j
                nt += 1
            s += 1
        n_touched[sl] = nt


@numba.njit(cache=True, inline="always")
def _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops):
    start = indptr[i]
    for g in range(seg_ptr[i], seg_ptr[i + 1]):
        ops[seg_proj[g]] += seg_end[g] - start
        start = seg_end[g]


@numba.njit(cache=True)
def _run_sample(pop_of, params, code, kernels, kind, indptr, seg_ptr, seg_end, seg_delay, seg_delta, seg_proj, target,
                weight, neg_ptr, neg_base, neg_shift, pop_start, R, ticks, x_idx, x_ptr, epoch,
                acc, mark, touched, n_touched, last, done, u, v, active, nxt, spikes, pop_counts, ops, record):
    """One sample on one thread's working buffers; returns the number of neuron updates.

    Buffers are reused across samples without O(n) resets: ``last``/``done`` hold
    ``epoch + tick + 1`` (a neuron whose ``last`` ≤ epoch starts this sample at rest,
    u = v = 0), and only slots left pending after the last tick are cleared.
    x_idx/x_ptr: this sample's input spikes as CSR over ticks (global neuron ids).
    ``kernels`` (``sim.neurons.kernel_key``) is unused: its type makes numba's cache tell kernel sets apart.
    """
    updates = 0
    n_active = 0
    for t in range(ticks):
        now = epoch + t + 1
        slot = t % R
        if t < len(x_ptr) - 1:                                   # 1. input spikes at t
            for k in range(x_ptr[t], x_ptr[t + 1]):
                i = x_idx[k]
                pop_counts[pop_of[i]] += 1
                if record:
                    spikes[t, i] = True
                _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops)
                _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, mark,
                      touched, n_touched, 1)
        n_next = 0                                                # 2. update touched ∪ active
        n_new = n_touched[slot]
        for q in range(n_new + n_active):
            i = touched[slot, q] if q < n_new else active[q - n_new]
            if done[i] == now:
                continue
            done[i] = now
            p = pop_of[i]
            if kind[p] == KIND_INPUT:
                continue
            mark[slot, i] = False
            a = acc[slot, i]                                      # summed input, negative exponents applied
            acc[slot, i] = 0
            for m in range(neg_ptr[p], neg_ptr[p + 1]):
                k = neg_base[m] + i - pop_start[p]
                a += _shift(acc[slot, k], neg_shift[m])
                acc[slot, k] = 0
            if kind[p] == KIND_GRADED:                            # stateless relay: payload = summed input
                updates += 1
                if a != 0:
                    pop_counts[p] += 1
                    if record:
                        spikes[t, i] = True
                    _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops)
                    _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, mark,
                          touched, n_touched, a)
                continue
            if last[i] <= epoch:                                  # first touch this sample: at rest
                u[i] = 0
                v[i] = 0
            elif now - last[i] > 1 and v[i] != 0:                 # lazy leak over skipped ticks
                v[i] = kernel_idle(code[p], v[i], params[p, 0], params[p, 1], params[p, 2], now - last[i] - 1)
            un, vn, fired = kernel_step(code[p], u[i], v[i], a, params[p, 0], params[p, 1], params[p, 2])
            u[i] = un
            v[i] = vn
            last[i] = now
            updates += 1
            if un != 0:
                nxt[n_next] = i
                n_next += 1
            if fired:
                pop_counts[p] += 1
                if record:
                    spikes[t, i] = True
                _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops)
                _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, mark,
                      touched, n_touched, 1)
        n_touched[slot] = 0
        active[:n_next] = nxt[:n_next]
        n_active = n_next
    for sl in range(R):                                           # clear events scheduled past the end
        for q in range(n_touched[sl]):
            j = touched[sl, q]
            mark[sl, j] = False
            acc[sl, j] = 0
            p = pop_of[j]
            for m in range(neg_ptr[p], neg_ptr[p + 1]):
                acc[sl, neg_base[m] + j - pop_start[p]] = 0
        n_touched[sl] = 0
    return updates


@numba.njit(cache=True, parallel=True)
def _run_batch(pop_of, params, code, kernels, kind, indptr, seg_ptr, seg_end, seg_delay, seg_delta, seg_proj, target,
               weight, neg_ptr, neg_base, neg_shift, pop_start, R, ticks, x_idx, x_ptr, x_off,
               acc, mark, touched, n_touched, last, done, u, v, active, nxt, spikes, pop_counts, ops, updates, record):
    """Samples c, c + C, c + 2C, … run on working buffer c (C = number of buffers, one per thread)."""
    n_buf = len(acc)
    batch = len(updates)
    for c in numba.prange(n_buf):
        for b in range(c, batch, n_buf):
            updates[b] = _run_sample(pop_of, params, code, kernels, kind, indptr, seg_ptr, seg_end, seg_delay, seg_delta,
                                     seg_proj, target, weight, neg_ptr, neg_base, neg_shift, pop_start, R, ticks,
                                     x_idx[x_off[b, 0]:x_off[b, 1]], x_ptr[b], b * (ticks + 1),
                                     acc[c], mark[c], touched[c], n_touched[c], last[c], done[c], u[c], v[c],
                                     active[c], nxt[c], spikes[b], pop_counts[b], ops[b], record)


@dataclass
class SimResult:
    """Spikes and event counts of a batch run.

    ``spikes[name]``: bool (batch, ticks, size) (empty dict unless recorded);
    ``spike_counts[name]``, ``synaptic_ops[projection]``: (batch,) int64;
    ``neuron_updates``: (batch,) LIF updates the engine performed.
    """

    spikes: dict[str, np.ndarray]
    spike_counts: dict[str, np.ndarray]
    synaptic_ops: dict[str, np.ndarray]
    neuron_updates: np.ndarray
    ticks: int

    @property
    def events(self) -> int:
        return int(sum(c.sum() for c in self.spike_counts.values()))

    @property
    def synaptic_ops_per_inference(self) -> float:
        return float(sum(o for o in self.synaptic_ops.values()).mean()) if self.synaptic_ops else 0.0

    @property
    def spikes_per_inference(self) -> float:
        return float(sum(c for c in self.spike_counts.values()).mean())


def _input_events(graph: AerGraph, inputs: Mapping[str, np.ndarray], batch: int):
    """Source spikes (given inputs, generated biases) as per-sample CSR over ticks of global neuron ids."""
    offsets = graph.offsets()
    ptr = np.zeros((batch, graph.ticks + 1), np.int64)
    per_sample = []
    spikes = source_spikes(graph, inputs, batch)
    for b in range(batch):
        ts, ids = [], []
        for p in graph.sources:
            t, i = np.nonzero(spikes[p.name][b])
            ts.append(t); ids.append(i + offsets[p.name])
        t = np.concatenate(ts); i = np.concatenate(ids)
        order = np.argsort(t, kind="stable")
        ptr[b, 1:] = np.cumsum(np.bincount(t, minlength=graph.ticks)[:graph.ticks])
        per_sample.append(i[order].astype(np.int32))
    off = np.zeros((batch, 2), np.int64)
    lens = np.array([len(x) for x in per_sample], np.int64)
    off[:, 1] = np.cumsum(lens)
    off[:, 0] = off[:, 1] - lens
    return (np.concatenate(per_sample) if per_sample else np.zeros(0, np.int32)), ptr, off


def simulate(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, record: bool = True,
             progress: bool = False, flat: FlatGraph | None = None) -> SimResult:
    """Run every sample of ``inputs`` ({input name: (batch, ≤timesteps, size)}) for graph.ticks ticks."""
    batch = check_inputs(graph, inputs)
    check_memory(graph, batch, record, flat_built=flat is not None)
    flat = flat or flatten(graph)
    arith = graph.arith
    x_idx, x_ptr, x_off = _input_events(graph, inputs, batch)
    n, R, C = flat.n, flat.max_delay + 1, max(1, min(batch, numba.get_num_threads()))
    # working buffers, one set per thread; np.zeros maps zero pages lazily, so cost follows use
    acc = np.zeros((C, R, flat.n_acc), arith.acc_dtype)
    mark = np.zeros((C, R, n), np.bool_)
    touched = np.empty((C, R, n), np.int32)
    n_touched = np.zeros((C, R), np.int64)
    last, done = np.zeros((C, n), np.int64), np.zeros((C, n), np.int64)
    u = np.zeros((C, n), arith.state_dtype)
    v = np.zeros((C, n), arith.state_dtype)
    active, nxt = np.empty((C, n), np.int32), np.empty((C, n), np.int32)
    spikes = np.zeros((batch, graph.ticks, n) if record else (batch, 1, 1), np.bool_)
    pop_counts = np.zeros((batch, len(graph.populations)), np.int64)
    ops = np.zeros((batch, max(len(graph.projections), 1)), np.int64)
    updates = np.zeros(batch, np.int64)
    _run_batch(flat.pop_of, flat.params, flat.code, kernel_key(), flat.kind, flat.indptr, flat.seg_ptr, flat.seg_end,
               flat.seg_delay, flat.seg_delta, flat.seg_proj, flat.target, flat.weight, flat.neg_ptr, flat.neg_base,
               flat.neg_shift, flat.pop_start, R, graph.ticks, x_idx, x_ptr, x_off,
               acc, mark, touched, n_touched, last, done, u, v, active, nxt, spikes, pop_counts, ops, updates, record)
    offsets = graph.offsets()
    out_spikes = ({p.name: spikes[:, :, offsets[p.name]:offsets[p.name] + p.size] for p in graph.populations}
                  if record else {})
    spike_counts = {p.name: pop_counts[:, k] for k, p in enumerate(graph.populations)}
    ops = {pr.name: ops[:, k] for k, pr in enumerate(graph.projections)}
    return SimResult(out_spikes, spike_counts, ops, updates, graph.ticks)
