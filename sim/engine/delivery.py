"""Compiled event delivery of the engine (numba, inlined into ``sim.engine.kernels``): marks, sends, delay queue.

A spike of projection k's source at tick t: delay 1 adds w·payload to the accumulator of each target
(``rec[target + delta].acc``) and marks the target in the bitmap of tick t + 1 (``l0``: a bit per neuron,
``l1``: a bit per l0 word), or, from ``dense_at`` spikes on, flags the target population for a scan of its
accumulators (its bit in ``pflag[1]``; a FULL population is then stepped whole); delay d ≥ 2: the spike
waits in the queue of slot (t + d) mod R and is sent at the end of tick t + d − 1 (``drain``). Spikes are
sent projection by projection: delay, offset and target population are constant over a loop; a pooling
projection (``flatgraph.PROJ_DTYPE``) reads no synapse.
"""
from __future__ import annotations

import numba
import numpy as np

from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

ONE = np.uint64(1)


@numba.njit(cache=True, inline="always")
def mark(l0, l1, j):
    """Set neuron j's bit in a tick's bitmap, and its word's bit in the summary ``l1``."""
    k = np.uint64(j) >> np.uint64(6)                      # unsigned: no negative-index wraparound code
    l0[k] |= ONE << (np.uint64(j) & np.uint64(63))
    l1[k >> np.uint64(6)] |= ONE << (k & np.uint64(63))


@numba.njit(cache=True, inline="always")
def _row(i, fan, sbase, rbase, row_ptr):
    """Synapses [s, e) of source neuron i (a row with synapses) in a projection: from its uniform fan-out
    over those rows (sbase = first synapse − first such row · fan), or its row pointers."""
    if fan >= 0:
        s = sbase + i * fan
        return s, s + fan
    r = np.uint64(rbase + i)
    return row_ptr[r], row_ptr[r + np.uint64(1)]


@numba.njit(cache=True, inline="always")
def _flush(l0, l1, k, m0, one, m1):
    """Or the bits m0 into bitmap word k and mark k in the summary: in m1 (``one``: every target's summary
    bit is in one word, kept in a register) or in l1. Returns m1."""
    l0[k] |= m0
    if one:
        return m1 | (ONE << (k & np.uint64(63)))
    l1[k >> np.uint64(6)] |= ONE << (k & np.uint64(63))
    return m1


@numba.njit(cache=True, inline="always")
def _deliver(s, e, val, delta, syn, rec, l0, l1):
    """rec[target + delta].acc += w·val for synapses [s, e), their targets marked (``mark``: branch-free;
    rows with many targets per bitmap word go the dense way instead, ``_send_now``)."""
    for x in range(s, e):
        sy = syn[np.uint64(x)]
        j = sy.target
        rec[np.uint64(j + delta)].acc += sy.w * val
        mark(l0, l1, j)


@numba.njit(cache=True, inline="always")
def _target(i, pk, t0, g):
    """The first of the pk.fan consecutive targets of source neuron i in a pooling projection
    (``flatgraph.PROJ_DTYPE``: pool g), t0 the first target of row lo."""
    r = i - pk.pre - pk.lo
    return t0 + (r if g == 1 else r // g) * pk.fan


@numba.njit(cache=True, inline="always")
def _first_at_least(ids, f0, f1, x):
    """The first q in [f0, f1) with ids[q] ≥ x (ids sorted), f1 if none: binary search."""
    while f0 < f1:
        mid = (f0 + f1) >> 1
        if ids[mid] < x:
            f0 = mid + 1
        else:
            f1 = mid
    return f0


@numba.njit(cache=True, inline="always")
def _send_now(pk, ids, f0, f1, payload, graded, row_ptr, syn, rec, l0, l1, pflag, pop_start, n):
    """rec[target + delta].acc += w·payload for the spikes ids[f0:f1] of projection pk's source, targets
    marked in the bitmap of the next tick (``_deliver``, ``_flush``) or, from ``dense_at`` spikes on, the
    target population flagged for a scan instead (``pflag[1]``; a FULL one is then stepped whole); the target
    population's bit set in ``pflag[0]``; a pooling projection reads no synapse.
    Returns the synaptic ops."""
    pw, bit = pk.post >> 6, ONE << np.uint64(pk.post & 63)         # the target population's flag word and bit
    pflag[0, pw] |= bit
    rbase, sbase = pk.row - pk.pre, pk.syn - (pk.pre + pk.lo) * pk.fan
    hi = pop_start[pk.post + 1] if pk.post + 1 < len(pop_start) else n
    k1 = np.uint64(pop_start[pk.post]) >> np.uint64(12)
    one = k1 == np.uint64(hi - 1) >> np.uint64(12)
    m1 = np.uint64(0)
    n_ops = 0
    dense = f1 - f0 >= pk.dense_at                       # events for much of the target population: not
    if dense:                                            # marked one by one, its accumulators are scanned
        pflag[1, pw] |= bit                              # at its update (``_scan``)
    if pk.pool > 0:
        sy = syn[np.uint64(pk.syn)]
        t0, w = sy.target, sy.w
        for q in range(f0, f1):
            j0 = _target(ids[q], pk, t0, pk.pool)
            ws = w * (payload[q] if graded else 1)
            if dense:
                for j in range(j0, j0 + pk.fan):
                    rec[np.uint64(j + pk.delta)].acc += ws
            else:
                for j in range(j0, j0 + pk.fan):
                    rec[np.uint64(j + pk.delta)].acc += ws
                    m1 = _flush(l0, l1, np.uint64(j) >> np.uint64(6), ONE << (np.uint64(j) & np.uint64(63)), one, m1)
        n_ops = (f1 - f0) * pk.fan
    elif dense:
        for q in range(f0, f1):
            s, e = _row(ids[q], pk.fan, sbase, rbase, row_ptr)
            n_ops += e - s
            val = payload[q] if graded else 1
            for x in range(s, e):
                sy = syn[np.uint64(x)]
                rec[np.uint64(sy.target)].acc += sy.w * val
    elif pk.fan == 1:                                    # one synapse per spike: no inner loop
        for q in range(f0, f1):
            sy = syn[np.uint64(sbase + ids[q])]
            j = sy.target
            rec[np.uint64(j + pk.delta)].acc += sy.w * (payload[q] if graded else 1)
            m1 = _flush(l0, l1, np.uint64(j) >> np.uint64(6), ONE << (np.uint64(j) & np.uint64(63)), one, m1)
        n_ops = f1 - f0
    else:
        for q in range(f0, f1):
            s, e = _row(ids[q], pk.fan, sbase, rbase, row_ptr)
            n_ops += e - s
            _deliver(s, e, payload[q] if graded else 1, pk.delta, syn, rec, l0, l1)
    if one:
        l1[k1] |= m1
    return n_ops


@numba.njit(cache=True, inline="always")
def _send_later(k, sl, ids, f0, f1, payload, graded, qi, qk, qv, qlen):
    """Delay ≥ 2: the spikes ids[f0:f1] of projection k's source (payload, or 1) appended to the queue of
    slot sl (entries [sl·cap, (sl + 1)·cap) of qi, qk, qv), to be sent at the end of the tick before they
    arrive (``drain``). False when it is full."""
    cap = len(qi) // len(qlen)
    n_q = qlen[sl]
    if n_q + (f1 - f0) > cap:
        return False
    at = sl * cap + n_q
    for q in range(f0, f1):
        qi[at] = ids[q]
        qk[at] = k
        qv[at] = payload[q] if graded else 1
        at += 1
    qlen[sl] = n_q + (f1 - f0)
    return True


@numba.njit(cache=True, inline="always")
def send(k, ids, f0, f1, payload, graded, t, ticks, R, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv,
          qlen, ops, pop_start, n):
    """The events of projection k from the spikes ids[f0:f1] of its source population at tick t (payload
    ``payload[q]`` if ``graded``, else 1): delay 1: ``_send_now``; delay d ≥ 2: the spikes wait in the
    queue of slot (t + d) mod R (``_send_later``); arriving after the last tick: counted only. ops[k] +=
    the synapses sent (or counted). False when the queue is full."""
    pk = proj[k]
    if pk.lo > 0 or pk.pre + pk.hi <= ids[f1 - 1]:       # spikes of rows without synapses are skipped
        f0 = _first_at_least(ids, f0, f1, pk.pre + pk.lo)
        f1 = _first_at_least(ids, f0, f1, pk.pre + pk.hi)
        if f1 == f0:
            return True
    if t + pk.delay >= ticks:
        rbase, sbase = pk.row - pk.pre, pk.syn - (pk.pre + pk.lo) * pk.fan
        for q in range(f0, f1):
            s, e = _row(ids[q], pk.fan, sbase, rbase, row_ptr)
            ops[k] += e - s
    elif pk.delay == 1:
        ops[k] += _send_now(pk, ids, f0, f1, payload, graded, row_ptr, syn, rec, l0, l1, pflag, pop_start, n)
    else:
        sl = t + pk.delay
        while sl >= R:
            sl -= R
        return _send_later(k, sl, ids, f0, f1, payload, graded, qi, qk, qv, qlen)
    return True


@numba.njit(cache=True, inline="always")
def drain(sl, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n):
    """Send the spikes queued in slot sl (``_send_later``), in the order they were queued, a run of one
    projection at a time (``_send_now``); they arrive at the next tick."""
    q = sl * (len(qi) // len(qlen))
    end = q + qlen[sl]
    while q < end:
        k = qk[q]
        q1 = q + 1
        while q1 < end and qk[q1] == k:
            q1 += 1
        ops[k] += _send_now(proj[k], qi, q, q1, qv, True, row_ptr, syn, rec, l0, l1, pflag, pop_start, n)
        q = q1
    qlen[sl] = 0
