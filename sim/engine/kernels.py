"""Compiled core of the event-driven engine (numba): event delivery, population updates, the tick loop.

Working buffers of one thread (``sim.engine.simulate`` allocates them): ``rec[i]`` the record
of neuron i (``simulate.record_dtype``): its summed input ``acc`` for its coming update, and its
state (v, last, u), 16 bytes in loihi numerics, so that an event and the update it causes touch
one cache line; records n … n_acc − 1 hold only the private accumulators of negative-exponent
projections. ``l0[par]``: one bit per neuron marked for the tick of parity par (it received an
event, or it carries a current); ``l1[par]``: one bit per l0 word that may be non-zero;
``pflag[par, 0]``: a bit per population that may have a marked neuron; ``pflag[par, 1]``: a bit per
population that received events without marks (a dense delivery: events for half of it or more),
whose accumulators are to be scanned, or, a FULL population, that is stepped whole; a tick visits the
flagged populations alone. ``qi, qk, qv``: per
slot (t mod R) of cap entries, the spikes (neuron, projection, payload) of projections with
delay ≥ 2 waiting to be sent, ``qlen[slot]`` how many.

Per tick t: 1. each flagged population updates its marked neurons (``update_population``:
their bits gathered in index order, each stepped once), its spikes appended to ``fired`` (the j-th
population that fired: ``fpop[1, j]``, its spikes from ``fpop[0, j]``); 2. the events of tick t go
out (``_emit_tick``): first the spikes queued for slot t + 1, then the source spikes of t and the
spikes of 1., population by population in graph order and, within one, projection by projection
(``send``: delay, offset and target population are constant over its loop). All updates of a tick
come before its events, so one accumulator per neuron serves every tick, and each accumulator
receives its events in the order they were sent.

A marked neuron of a REST/FULL population whose input sums to 0 and carries nothing is
stepped with input 0, the same as leaving it at rest (``sim.neurons``: ``rests``); a BUSY
neuron is stepped only with input or a carried current; a neuron sent to without a mark is
stepped when its input is non-zero. Only neurons with input ≠ 0 or a carried current count
as updates.

Cost per tick: O(events + synaptic events + marked neurons + populations / 64 + input populations),
plus per updated population O(its size / 4096) summary words, and its size where a dense delivery
reached it (then its events are at least half its size). Delivery and the delay queue: ``sim.engine.delivery``;
population updates: ``sim.engine.update`` (both compiled into this loop; ``sim.system.numba_cache`` drops the
cached kernels when any sim source changes, since numba's cache checks only the caching function's file).
"""
from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from sim.engine.delivery import ONE, drain, send
from sim.engine.flatgraph import KIND_GRADED, KIND_INPUT
from sim.engine.update import update_population
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

EPOCH_MAX = (1 << 31) - 1


@numba.njit(cache=True, inline="always")
def _emit_tick(t, ticks, R, n, kind, in_pops, pop_start, pout_ptr, pout, proj, row_ptr, syn, x_idx, x_ptr, fired,
               fpop, n_fp, payload, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_counts, rec_row, record):
    """The events of tick t, for tick t + 1 (module doc): the queue of slot t + 1, then in graph order the
    source spikes of t of each input population in_pops[i] (x_idx[x_ptr[t]:x_ptr[t + 1]]: global ids,
    sorted) and the spikes fired[fpop[0, j] : fpop[0, j + 1]] of each population fpop[1, j], j < n_fp,
    projection by projection (``send``). False when a queue is full."""
    n_pops = len(pop_start)
    if t + 1 < ticks:
        sl = t + 1
        while sl >= R:
            sl -= R
        drain(sl, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n)
    q = q_end = 0
    if t < len(x_ptr) - 1:
        q, q_end = x_ptr[t], x_ptr[t + 1]
    i = j = 0
    while i < len(in_pops) or j < n_fp:                  # input and fired populations, merged in graph order
        if i < len(in_pops) and (j == n_fp or in_pops[i] < fpop[1, j]):
            p = in_pops[i]
            i += 1
            hi = pop_start[p + 1] if p + 1 < n_pops else n
            ids = x_idx
            f0 = f1 = q
            while f1 < q_end and x_idx[f1] < hi:
                f1 += 1
            q = f1
            pop_counts[p] += f1 - f0
            if record:
                for f in range(f0, f1):
                    rec_row[x_idx[f]] = True
            if f1 == f0:
                continue
        else:
            p = fpop[1, j]
            ids = fired
            f0, f1 = fpop[0, j], fpop[0, j + 1]
            j += 1
        for m in range(pout_ptr[p], pout_ptr[p + 1]):
            if not send(pout[m], ids, f0, f1, payload, kind[p] == KIND_GRADED, t, ticks, R, proj, row_ptr, syn, rec,
                         l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n):
                return False
    return True


@numba.njit(cache=True)
def run_sample(params, code, kernels, mode, kind, in_pops, syn, row_ptr, proj, pout_ptr, pout, neg_ptr, neg_base,
               neg_shift, pop_start, n, R, ticks, x_idx, x_ptr, epoch, rec, l0, l1, pflag, qi, qk, qv, qlen, zero, idx,
               fired, fpop, payload, spikes, pop_counts, ops, record):
    """One sample on one thread's working buffers (module doc); returns the number of neuron updates,
    −1 when a queue overflowed (the buffers are then left dirty).

    Buffers are reused across samples without O(n) resets: ``last`` holds ``epoch + tick + 1`` (a
    neuron whose ``last`` ≤ epoch starts this sample at rest), and nothing is sent past the last tick,
    so accumulators, bitmaps and queues end the sample empty. x_idx/x_ptr: this sample's source spikes
    as CSR over ticks (global neuron ids). ``kernels`` (``sim.neurons.kernel_key``) is unused: its
    type makes numba's cache tell kernel sets apart."""
    updates = 0
    n_pops = len(pop_start)
    par = 0
    for t in range(ticks):
        now = epoch + t + 1
        rec_row = spikes[t if record else 0]
        l0n, l1n, pfn, pfc = l0[1 - par], l1[1 - par], pflag[1 - par], pflag[par]
        nf = n_fp = 0
        for w in range(pfc.shape[1]):                            # 1. update the marked neurons of each
            y, scan = pfc[0, w], pfc[1, w]                       # flagged population
            if y == 0:
                continue
            pfc[0, w] = pfc[1, w] = 0
            while y != 0:
                b = np.int64(trailing_zeros(y))
                y &= y - ONE
                p = (w << 6) + b
                hi = pop_start[p + 1] if p + 1 < n_pops else n
                f0 = nf
                nf, n_upd, carried = update_population(
                    pop_start[p], hi, l0[par], l1[par], rec, neg_base, neg_shift, neg_ptr[p], neg_ptr[p + 1], now, epoch,
                    zero, code[p], params[p, 0], params[p, 1], params[p, 2], mode[p], kind[p] == KIND_GRADED, l0n, l1n,
                    idx, fired, payload, nf, rec_row, record, (scan >> np.uint64(b)) & ONE != 0)
                if carried:
                    pfn[0, w] |= ONE << np.uint64(b)
                updates += n_upd
                if nf > f0:
                    fpop[0, n_fp], fpop[1, n_fp] = f0, p
                    n_fp += 1
                    pop_counts[p] += nf - f0
        fpop[0, n_fp] = nf
        if not _emit_tick(t, ticks, R, n, kind, in_pops, pop_start, pout_ptr, pout, proj, row_ptr, syn, x_idx, x_ptr,
                          fired, fpop, n_fp, payload, rec, l0n, l1n, pfn, qi, qk, qv, qlen, ops, pop_counts, rec_row,
                          record):
            return -1
        par = 1 - par
    return updates


@numba.njit(cache=True, parallel=True)
def run_batch(params, code, kernels, mode, kind, syn, row_ptr, proj, pout_ptr, pout, neg_ptr, neg_base, neg_shift,
              pop_start, n, R, ticks, x_idx, x_ptr, x_off, rec, l0, l1, pflag, qi, qk, qv, qlen, epochs, zero,
              idx, fired, fpop, payload, spikes, pop_counts, ops, updates, done, record):
    """Samples c, c + C, c + 2C, … not yet ``done`` run on working buffer c (C = number of buffers,
    one per thread); a buffer whose queue overflows stops (its sample stays not done) and
    ``epochs[c]`` becomes −1 (dirty).

    ``epochs[c]``: the first free epoch of buffer c, read at the start and written back at the end, so
    that buffers left clean by one call (``run_sample``) serve the next one without a reset."""
    n_buf = len(rec)
    batch = len(updates)
    in_pops = np.flatnonzero(kind == KIND_INPUT)
    for c in numba.prange(n_buf):
        epoch = epochs[c]
        for b in range(c, batch, n_buf):
            if done[b]:
                continue
            if epoch > EPOCH_MAX - ticks - 1:                    # int32 ``last`` would wrap: start afresh
                for i in range(len(rec[c])):
                    rec[c][i].last = 0
                epoch = 0
            u = run_sample(params, code, kernels, mode, kind, in_pops, syn, row_ptr, proj, pout_ptr, pout, neg_ptr,
                           neg_base, neg_shift, pop_start, n, R, ticks, x_idx[x_off[b, 0]:x_off[b, 1]], x_ptr[b], epoch,
                           rec[c], l0[c], l1[c], pflag[c], qi[c], qk[c], qv[c], qlen[c], zero, idx[c], fired[c], fpop[c],
                           payload[c], spikes[b], pop_counts[b], ops[b], record)
            if u < 0:
                epoch = -1
                break
            updates[b] = u
            done[b] = True
            epoch += ticks + 1
        epochs[c] = epoch
