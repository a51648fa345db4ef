"""Discrete-event simulation of an AER graph; numba kernels, batches in parallel.

Algorithm, per sample, tick t = 0 … ticks−1 (slot = t mod R, R = max delay + 1):

1. input neurons spiking at t emit events;
2. per population, the neurons to update are those whose summed input for tick t
   is non-zero plus those that carry a current (decayed u ≠ 0, they evolve without
   input); they are found from the slot's block bitmap (one bit per 16 neurons that
   received an event) and visited once each, in index order; nobody else is touched;
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
at update time. Layout for the cache: one 16-byte record (u, v, last) per neuron,
int32 accumulators where the IR bounds allow (``acc_dtype``), bitmaps of a few bits
per neuron. Cost: O(events + synaptic events + 16·marked blocks + n/1024 per tick),
independent of the number of silent neurons. Synaptic ops per projection are
computed exactly after the run from per-neuron spike counts × CSR row lengths.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Mapping

import numba
import numpy as np
from numba import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import overload

from sim import numerics as nm
from sim.ir import PAYLOAD_MAX, AerGraph, input_bounds
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
    mode: np.ndarray          # (pops,) int8 update mode of a neuron population: BUSY | REST | FULL
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
    acc_dtype: np.dtype       # accumulators: int32 where the IR bounds allow, else int64 (loihi) | float64


KIND_INPUT, KIND_LIF, KIND_GRADED = 0, 1, 2
# update modes: BUSY — once touched, updated every tick (a kernel without ``rests``); REST — left
# untouched while it has no input and its decayed current is 0; FULL — REST, and the current never carries
BUSY, REST, FULL = 0, 1, 2


def kind_code(model) -> int:
    """The engine's role of a neuron model: source, neuron or graded relay."""
    return KIND_INPUT if model.source else KIND_GRADED if model.relay else KIND_LIF


def kernel_table(graph: AerGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params (pops, 3), code (pops,), mode (pops,)) of every population's kernel; sources and relays: zeros."""
    dt = graph.arith.acc_dtype
    params = np.zeros((len(graph.populations), 3), dt)
    code = np.zeros(len(graph.populations), np.int8)
    mode = np.zeros(len(graph.populations), np.int8)
    for k, p in enumerate(graph.populations):
        if kind_code(p.model) == KIND_LIF:
            kern = p.model.kernel
            params[k] = p.model.kernel_params()
            code[k] = kern.code
            if kern.rests:
                mode[k] = FULL if kern.full_decay is not None and kern.full_decay(*params[k]) else REST
    return params, code, mode


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
    params, code, mode = kernel_table(graph)
    return FlatGraph(
        n=n, n_acc=n_acc, pop_of=pop_of, params=params, code=code,
        kind=np.array([kind_code(p.model) for p in pops], np.int8), mode=mode,
        indptr=indptr, seg_ptr=seg_ptr, seg_end=seg_end, seg_delay=seg_delay, seg_delta=seg_delta, seg_proj=seg_proj,
        target=target, weight=weight,
        neg_ptr=neg_ptr, neg_base=np.array(neg_base, np.int64), neg_shift=np.array(neg_shift, np.int64),
        pop_start=np.array([offsets[p.name] for p in pops], np.int64),
        max_delay=int(max((pr.delay for pr in graph.projections), default=1)), acc_dtype=acc_dtype(graph))


def acc_dtype(graph: AerGraph) -> np.dtype:
    """int32 if every accumulator's partial sums fit, else int64 (fixed point); else the mode's acc_dtype.

    A neuron's own accumulator sums projections with weight_exp ≥ 0, bounded by the IR
    (``sim.ir.check_bounds``: |a| ≤ LIF_INPUT_MAX or the 24-bit payload). A private
    accumulator of a weight_exp < 0 projection sums Σ|w·src| before the shift, which
    the IR bounds only after it: checked here (src = 1 for spikes, |g|max for graded).
    """
    if not graph.arith.fixed_point:
        return np.dtype(graph.arith.acc_dtype)
    neg = [pr for pr in graph.projections if pr.weight_exp < 0 and pr.n_synapses]
    bounds = input_bounds(graph) if any(graph.population(pr.pre).is_graded for pr in neg) else {}
    for pr in neg:
        pre = graph.population(pr.pre)
        src = np.ones(pre.size)
        if pre.is_graded:
            src[:] = 0
            src[:len(bounds[pre.name])] = np.minimum(bounds[pre.name], PAYLOAD_MAX)
        raw = np.bincount(pr.indices, weights=np.abs(pr.weights.astype(np.float64)) * np.repeat(src, np.diff(pr.indptr)))
        if raw.max() > np.iinfo(np.int32).max:
            return np.dtype(np.int64)
    return np.dtype(np.int32)


def state_dtype(arith: nm.Arithmetic) -> np.dtype:
    """One neuron's record: u, v (the mode's state dtype, int32 | float32) and ``last`` (tick stamp), 16 bytes."""
    uv = arith.state_dtype
    return np.dtype([("u", uv), ("v", uv), ("last", np.int32), ("pad", np.int32)], align=True)


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
        + sum(pr.n_pre for pr in graph.projections) * 17,
        "working_state": threads * (R * n_acc * acc_bytes + R * (n // 8 + n // 128 + 16) + n * 32),
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


_ONE = np.uint64(1)
_EPOCH_MAX = (1 << 31) - 1
BLOCK = 16                  # neurons per block: one 64-byte line of int32 accumulators


@numba.njit(cache=True, inline="always")
def _mark(blk, j):
    """Set the bit of neuron j's block in a slot's block bitmap."""
    b = np.uint64(j) >> np.uint64(4)                      # unsigned: no negative-index wraparound code
    blk[b >> np.uint64(6)] |= _ONE << (b & np.uint64(63))


@numba.njit(cache=True, inline="always")
def _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, blk, payload):
    """Deliver an event of neuron i: per segment, acc[(slot + delay) mod R, target + delta] += w·payload; mark blocks."""
    s = indptr[i]
    for g in range(seg_ptr[i], seg_ptr[i + 1]):
        sl = slot + seg_delay[g]
        if sl >= R:
            sl -= R
        d = seg_delta[g]
        acc_row = acc[sl]
        b_row = blk[sl]
        e = seg_end[g]
        while s < e:
            j = target[s]
            acc_row[np.uint64(j + d)] += weight[s] * payload
            _mark(b_row, j)
            s += 1


@numba.njit(cache=True, inline="always")
def _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops):
    start = indptr[i]
    for g in range(seg_ptr[i], seg_ptr[i + 1]):
        ops[seg_proj[g]] += seg_end[g] - start
        start = seg_end[g]


@numba.njit(cache=True)
def _pending(lo, hi, blk, carry, acc, neg_base, neg_shift, out):
    """Neurons of [lo, hi) to update this tick, into ``out`` in index order; returns how many.

    Pending = non-zero summed input (after folding the private accumulators of
    negative-exponent projections, shifted, into acc[i]) or a carried current
    (``carry`` bit). A neuron with zero input and nothing carried is left to rest:
    its step would only leak v, which its kernel's ``idle`` catches up exactly. Only the blocks
    marked in ``blk`` are scanned: O(16·marked blocks + (hi − lo)/1024). Carry bits
    read are cleared; ``out`` needs BLOCK spare entries.
    """
    n_out = 0
    b0 = lo >> 4
    b1 = (hi - 1) >> 4
    for k in range(b0 >> 6, (b1 >> 6) + 1):
        x = blk[k]
        while x != 0:
            b = (k << 6) + trailing_zeros(x)
            x &= x - _ONE
            if b < b0:
                continue
            if b > b1:
                break
            s = max(b << 4, lo)
            e = min((b << 4) + BLOCK, hi)
            for m in range(len(neg_base)):
                base, sh = neg_base[m] - lo, neg_shift[m]
                for i in range(s, e):
                    acc[i] += _shift(acc[base + i], sh)
                    acc[base + i] = 0
            w = s >> 6
            cw = carry[w]
            if cw != 0:
                carry[w] = cw & ~(((_ONE << np.uint64(e - s)) - _ONE) << np.uint64(s & 63))
            for i in range(s, e):
                out[n_out] = i
                n_out += (acc[i] != 0) | ((cw >> np.uint64(i & 63)) & _ONE != 0)
    return n_out


@numba.njit(cache=True)
def _update_lif(idx, n_idx, acc, state, now, epoch, code, p0, p1, p2, mode, nxt_blk, nxt_carry, fired):
    """One kernel step for each pending neuron with its summed input; spiking ones go to ``fired``.

    ``mode`` REST: a neuron whose decayed current (step(u, 0, 0)[0]) is non-zero is marked
    pending in the next slot, one whose current decays to 0 rests until its next input;
    FULL: the current never carries, no test (own compiled loop); BUSY: every updated
    neuron is pending in the next slot."""
    if mode == FULL:
        return _lif_steps(idx, n_idx, acc, state, now, epoch, code, p0, p1, p2, FULL, nxt_blk, nxt_carry, fired)
    if mode == REST:
        return _lif_steps(idx, n_idx, acc, state, now, epoch, code, p0, p1, p2, REST, nxt_blk, nxt_carry, fired)
    return _lif_steps(idx, n_idx, acc, state, now, epoch, code, p0, p1, p2, BUSY, nxt_blk, nxt_carry, fired)


@numba.njit(cache=True, inline="always")
def _lif_steps(idx, n_idx, acc, state, now, epoch, code, p0, p1, p2, mode, nxt_blk, nxt_carry, fired):
    n_fired = 0
    for q in range(n_idx):
        i = idx[q]
        a = acc[i]
        acc[i] = 0
        st = state[i]
        last = st.last
        if last <= epoch:                                       # first touch this sample: at rest
            st.u = 0
            st.v = 0
        elif now - last > 1 and st.v != 0:                      # lazy leak over rested ticks (REST, FULL only)
            st.v = kernel_idle(code, st.v, p0, p1, p2, now - last - 1)
        un, vn, spiked = kernel_step(code, st.u, st.v, a, p0, p1, p2)
        st.u = un
        st.v = vn
        st.last = now
        carries = mode == BUSY
        if mode == REST:
            carries = kernel_step(code, un, st.v - st.v, a - a, p0, p1, p2)[0] != 0
        if carries:                                             # evolves without input: pending next tick
            nxt_carry[i >> 6] |= _ONE << np.uint64(i & 63)
            _mark(nxt_blk, i)
        fired[n_fired] = i
        n_fired += spiked
    return n_fired


@numba.njit(cache=True)
def _update_graded(idx, n_idx, acc, fired, payload):
    """Graded relay: a pending neuron fires with payload g = its summed input (≠ 0 when pending)."""
    for q in range(n_idx):
        i = idx[q]
        fired[q] = i
        payload[q] = acc[i]
        acc[i] = 0
    return n_idx


@numba.njit(cache=True)
def _run_sample(pop_of, params, code, kernels, mode, kind, indptr, seg_ptr, seg_end, seg_delay, seg_delta, seg_proj,
                target, weight, neg_ptr, neg_base, neg_shift, pop_start, emits, R, ticks, x_idx, x_ptr, epoch,
                acc, blk, carry, state, idx, fired, payload, spikes, pop_counts, ops, record):
    """One sample on one thread's working buffers; returns the number of neuron updates.

    Per tick and population: the pending neurons (``_pending``: the slot's marked blocks
    ``blk[slot]``, one bit per BLOCK neurons, and carried currents ``carry[slot]``) go
    to ``idx`` in index order, are updated, and those that spiked (``fired``, graded
    ``payload``) emit afterwards into later slots. A neuron's state is one record
    ``state[i] = (u, v, last)``. Buffers are reused across samples without O(n)
    resets: ``last`` holds ``epoch + tick + 1`` (a neuron whose ``last`` ≤ epoch starts
    this sample at rest, u = v = 0), and only slots left pending after the last tick
    are cleared. ``emits[p]``: population p has outgoing synapses. x_idx/x_ptr: this
    sample's source spikes as CSR over ticks (global neuron ids). ``kernels``
    (``sim.neurons.kernel_key``) is unused: its type makes numba's cache tell kernel sets apart.
    """
    updates = 0
    n_pops = len(pop_start)
    n = len(pop_of)
    for t in range(ticks):
        now = epoch + t + 1
        slot = t % R
        nxt = slot + 1 if slot + 1 < R else 0
        if t < len(x_ptr) - 1:                                   # 1. input spikes at t
            for k in range(x_ptr[t], x_ptr[t + 1]):
                i = x_idx[k]
                pop_counts[pop_of[i]] += 1
                if record:
                    spikes[t, i] = True
                _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops)
                _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, blk, 1)
        acc_row = acc[slot]                                      # 2. update the pending neurons, population by population
        for p in range(n_pops):
            if kind[p] == KIND_INPUT:
                continue
            lo = pop_start[p]
            n_idx = _pending(lo, pop_start[p + 1] if p + 1 < n_pops else n, blk[slot], carry[slot], acc_row,
                             neg_base[neg_ptr[p]:neg_ptr[p + 1]], neg_shift[neg_ptr[p]:neg_ptr[p + 1]], idx)
            if n_idx == 0:
                continue
            updates += n_idx
            graded = kind[p] == KIND_GRADED
            if graded:
                n_fired = _update_graded(idx, n_idx, acc_row, fired, payload)
            else:
                n_fired = _update_lif(idx, n_idx, acc_row, state, now, epoch, code[p], params[p, 0], params[p, 1],
                                      params[p, 2], mode[p], blk[nxt], carry[nxt], fired)
            pop_counts[p] += n_fired
            if record:
                for q in range(n_fired):
                    spikes[t, fired[q]] = True
            if emits[p]:                                         # 3. spikes of p reach later slots (delay ≥ 1)
                for q in range(n_fired):
                    i = fired[q]
                    _count_ops(i, indptr, seg_ptr, seg_end, seg_proj, ops)
                    _emit(i, slot, R, indptr, seg_ptr, seg_end, seg_delay, seg_delta, target, weight, acc, blk,
                          payload[q] if graded else 1)
        blk[slot][:] = 0
    for sl in range(R):                                           # clear events scheduled past the end
        for p in range(n_pops):
            if kind[p] == KIND_INPUT:
                continue
            n_idx = _pending(pop_start[p], pop_start[p + 1] if p + 1 < n_pops else n, blk[sl], carry[sl], acc[sl],
                             neg_base[neg_ptr[p]:neg_ptr[p + 1]], neg_shift[neg_ptr[p]:neg_ptr[p + 1]], idx)
            for q in range(n_idx):
                acc[sl, idx[q]] = 0
        blk[sl][:] = 0
    return updates


@numba.njit(cache=True, parallel=True)
def _run_batch(pop_of, params, code, kernels, mode, kind, indptr, seg_ptr, seg_end, seg_delay, seg_delta, seg_proj,
               target, weight, neg_ptr, neg_base, neg_shift, pop_start, emits, R, ticks, x_idx, x_ptr, x_off,
               acc, blk, carry, state, idx, fired, payload, spikes, pop_counts, ops, updates, record):
    """Samples c, c + C, c + 2C, … run on working buffer c (C = number of buffers, one per thread)."""
    n_buf = len(acc)
    batch = len(updates)
    for c in numba.prange(n_buf):
        epoch = 0
        for b in range(c, batch, n_buf):
            if epoch > _EPOCH_MAX - ticks - 1:                   # int32 ``last`` would wrap: start afresh
                for i in range(len(state[c])):
                    state[c][i].last = 0
                epoch = 0
            updates[b] = _run_sample(pop_of, params, code, kernels, mode, kind, indptr, seg_ptr, seg_end, seg_delay,
                                     seg_delta, seg_proj, target, weight, neg_ptr, neg_base, neg_shift, pop_start, emits, R,
                                     ticks, x_idx[x_off[b, 0]:x_off[b, 1]], x_ptr[b], epoch,
                                     acc[c], blk[c], carry[c], state[c], idx[c], fired[c], payload[c], spikes[b],
                                     pop_counts[b], ops[b], record)
            epoch += ticks + 1


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


def lazy_zeros(shape: tuple[int, ...], dtype) -> np.ndarray:
    """np.zeros in fresh anonymous pages (mmap): zeroed by the OS on first touch, so an array only partly
    used costs what is used — np.zeros of a size the allocator recycles from the heap memsets it all."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes < 1 << 20:
        return np.zeros(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype).reshape(shape)


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
    # working buffers, one set per thread, in fresh zero pages: cost follows the pages a run touches
    acc = lazy_zeros((C, R, flat.n_acc), flat.acc_dtype)
    ends = np.append(flat.pop_start[1:], n)
    emits = flat.indptr[ends] > flat.indptr[flat.pop_start]         # population has outgoing synapses
    blk = lazy_zeros((C, R, -(-n // (BLOCK * 64))), np.uint64)     # marked blocks per slot
    carry = lazy_zeros((C, R, -(-n // 64)), np.uint64)            # neurons carrying a current into the slot
    state = lazy_zeros((C, n), state_dtype(arith))         # (u, v, last) per neuron
    idx, fired = np.empty((C, n + BLOCK), np.int32), np.empty((C, n + BLOCK), np.int32)
    payload = np.empty((C, n), arith.acc_dtype)
    spikes = lazy_zeros((batch, graph.ticks, n) if record else (batch, 1, 1), np.bool_)
    pop_counts = np.zeros((batch, len(graph.populations)), np.int64)
    ops = np.zeros((batch, max(len(graph.projections), 1)), np.int64)
    updates = np.zeros(batch, np.int64)
    _run_batch(flat.pop_of, flat.params, flat.code, kernel_key(), flat.mode, flat.kind, flat.indptr, flat.seg_ptr,
               flat.seg_end, flat.seg_delay, flat.seg_delta, flat.seg_proj, flat.target, flat.weight, flat.neg_ptr, flat.neg_base,
               flat.neg_shift, flat.pop_start, emits, R, graph.ticks, x_idx, x_ptr, x_off,
               acc, blk, carry, state, idx, fired, payload, spikes, pop_counts, ops, updates, record)
    offsets = graph.offsets()
    out_spikes = ({p.name: spikes[:, :, offsets[p.name]:offsets[p.name] + p.size] for p in graph.populations}
                  if record else {})
    spike_counts = {p.name: pop_counts[:, k] for k, p in enumerate(graph.populations)}
    ops = {pr.name: ops[:, k] for k, pr in enumerate(graph.projections)}
    return SimResult(out_spikes, spike_counts, ops, updates, graph.ticks)
