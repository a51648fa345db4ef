"""Compiled core of the event-driven engine (numba): event delivery, population updates, the tick loop.

Working buffers of one thread (``sim.engine.simulate`` allocates them): ``rec[i]`` the record
of neuron i (``simulate.record_dtype``): its summed input ``acc`` for its coming update, and its
state (v, last, u), 16 bytes in loihi numerics, so that an event and the update it causes touch
one cache line; records n … n_acc − 1 hold only the private accumulators of negative-exponent
projections. ``l0[par]``: one bit per neuron marked for the tick of parity par (it received an
event, or it carries a current); ``l1[par]``: one bit per l0 word that may be non-zero;
``pflag[par, p]``: bit 0, population p may have a marked neuron; bit 1, it received events
without marks (a dense delivery) and its accumulators are to be scanned. ``qi, qk, qv``: per
slot (t mod R) of cap entries, the spikes (neuron, projection, payload) of projections with
delay ≥ 2 waiting to be sent, ``qlen[slot]`` how many.

Per tick t: 1. each flagged population updates its marked neurons (``_update_population``:
their bits gathered in index order, each stepped once), its spikes appended to ``fired``;
2. the events of tick t go out (``_emit_tick``): first the spikes queued for slot t + 1, then
the source spikes of t, then the spikes of 1., population by population and, within one,
projection by projection (``_send``: delay, offset and target population are constant over
its loop). All updates of a tick come before its events, so one accumulator per neuron serves
every tick, and each accumulator receives its events in the order they were sent.

A marked neuron of a REST/FULL population whose input sums to 0 and carries nothing is
stepped with input 0, the same as leaving it at rest (``sim.neurons``: ``rests``); a BUSY
neuron is stepped only with input or a carried current; a neuron sent to without a mark is
stepped when its input is non-zero. Only neurons with input ≠ 0 or a carried current count
as updates.

Cost per tick: O(events + synaptic events + marked neurons + populations), plus per updated
population O(its size / 4096) summary words, and its size where a dense delivery reached it
(then its events are at least half its size). All compiled code of the tick loop lives in this
one module (hence its length): numba's on-disk cache notices a change only in the file of the
function it caches, not in the files of the functions compiled into it.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import overload

from sim.engine.flatgraph import BUSY, FULL, KIND_GRADED, KIND_INPUT, REST
from sim.neurons.dispatch import kernel_idle, kernel_step
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

_ONE = np.uint64(1)


EPOCH_MAX = (1 << 31) - 1


def _shift(x, s):
    """Negative weight exponent applied to an accumulated sum: floor(x / 2^s) (loihi only)."""


@overload(_shift)
def _shift_impl(x, s):
    if isinstance(x, types.Integer):
        return lambda x, s: x >> s
    return lambda x, s: x


@numba.njit(cache=True, inline="always")
def _mark(l0, l1, j):
    """Set neuron j's bit in a tick's bitmap, and its word's bit in the summary ``l1``."""
    k = np.uint64(j) >> np.uint64(6)                      # unsigned: no negative-index wraparound code
    l0[k] |= _ONE << (np.uint64(j) & np.uint64(63))
    l1[k >> np.uint64(6)] |= _ONE << (k & np.uint64(63))


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
        return m1 | (_ONE << (k & np.uint64(63)))
    l1[k >> np.uint64(6)] |= _ONE << (k & np.uint64(63))
    return m1


@numba.njit(cache=True, inline="always")
def _deliver(s, e, val, delta, syn, rec, l0, l1):
    """rec[target + delta].acc += w·val for synapses [s, e), their targets marked (``_mark``: branch-free;
    rows with many targets per bitmap word go the dense way instead, ``_send_now``)."""
    for x in range(s, e):
        sy = syn[np.uint64(x)]
        j = sy.target
        rec[np.uint64(j + delta)].acc += sy.w * val
        _mark(l0, l1, j)


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
    target population flagged for a scan instead (``pflag`` bit 1); a pooling projection reads no synapse.
    Returns the synaptic ops."""
    pflag[pk.post] |= 1
    rbase, sbase = pk.row - pk.pre, pk.syn - (pk.pre + pk.lo) * pk.fan
    hi = pop_start[pk.post + 1] if pk.post + 1 < len(pop_start) else n
    k1 = np.uint64(pop_start[pk.post]) >> np.uint64(12)
    one = k1 == np.uint64(hi - 1) >> np.uint64(12)
    m1 = np.uint64(0)
    n_ops = 0
    if pk.pool > 0:
        sy = syn[np.uint64(pk.syn)]
        t0, w = sy.target, sy.w
        for q in range(f0, f1):
            j0 = _target(ids[q], pk, t0, pk.pool)
            ws = w * (payload[q] if graded else 1)
            for j in range(j0, j0 + pk.fan):
                rec[np.uint64(j + pk.delta)].acc += ws
                m1 = _flush(l0, l1, np.uint64(j) >> np.uint64(6), _ONE << (np.uint64(j) & np.uint64(63)), one, m1)
        n_ops = (f1 - f0) * pk.fan
    elif f1 - f0 >= pk.dense_at:                         # events for much of the target population: not
        pflag[pk.post] |= 2                              # marked one by one, its accumulators are scanned
        for q in range(f0, f1):                          # at its update (``_scan``)
            s, e = _row(ids[q], pk.fan, sbase, rbase, row_ptr)
            n_ops += e - s
            val = payload[q] if graded else 1
            for x in range(s, e):
                sy = syn[np.uint64(x)]
                rec[np.uint64(sy.target)].acc += sy.w * val
        if n_ops >= 2 * (hi - pop_start[pk.post]):       # events for every neuron, on average twice over:
            pflag[pk.post] |= 4                          # a FULL population is stepped whole (``_step_all``)
    elif pk.fan == 1:                                    # one synapse per spike: no inner loop
        for q in range(f0, f1):
            sy = syn[np.uint64(sbase + ids[q])]
            j = sy.target
            rec[np.uint64(j + pk.delta)].acc += sy.w * (payload[q] if graded else 1)
            m1 = _flush(l0, l1, np.uint64(j) >> np.uint64(6), _ONE << (np.uint64(j) & np.uint64(63)), one, m1)
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
    arrive (``_drain``). False when it is full."""
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
def _send(k, ids, f0, f1, payload, graded, t, ticks, R, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv,
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
def _drain(sl, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n):
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


@numba.njit(cache=True, inline="always")
def _scan(lo, hi, rec, l0, l1):
    """Mark the neurons of [lo, hi) whose accumulator is non-zero (sent to without marks: ``_send_now``)."""
    for k in range(lo >> 6, ((hi - 1) >> 6) + 1):
        b = k << 6
        m = np.uint64(0)
        for q in range(max(lo - b, 0), min(hi - b, 64)):
            m |= np.uint64(rec[np.uint64(b + q)].acc != 0) << np.uint64(q)
        if m != 0:
            l0[k] |= m
            l1[k >> 6] |= _ONE << np.uint64(k & 63)


@numba.njit(cache=True, inline="always")
def _collect(lo, hi, l0, l1, idx):
    """The marked neurons of population [lo, hi) into idx, in index order, their bits cleared (a word
    shared with a neighbouring population keeps the neighbour's); returns how many."""
    n_idx = 0
    k_lo, k_hi = lo >> 6, (hi - 1) >> 6
    for k1 in range(k_lo >> 6, (k_hi >> 6) + 1):
        y = l1[k1]
        if k1 == k_lo >> 6:
            y &= ~((_ONE << np.uint64(k_lo & 63)) - _ONE)
        if k1 == k_hi >> 6 and (k_hi & 63) < 63:
            y &= (_ONE << np.uint64((k_hi & 63) + 1)) - _ONE
        emptied = np.uint64(0)
        while y != 0:
            k = (k1 << 6) + trailing_zeros(y)
            y &= y - _ONE
            w = l0[k]
            m = w
            if k == k_lo:
                m &= ~((_ONE << np.uint64(lo & 63)) - _ONE)
            if k == k_hi and ((hi - 1) & 63) < 63:
                m &= (_ONE << np.uint64(((hi - 1) & 63) + 1)) - _ONE
            if w == m:
                emptied |= _ONE << np.uint64(k & 63)
            l0[k] = w & ~m
            base = k << 6
            while m != 0:
                idx[np.uint64(n_idx)] = base + trailing_zeros(m)
                m &= m - _ONE
                n_idx += 1
        l1[k1] &= ~emptied
    return n_idx


@numba.njit(cache=True, inline="always")
def _fold(idx, n_idx, rec, lo, neg_base, neg_shift, m0, m1):
    """Add the private accumulators of negative-exponent projections m0 … m1 − 1, shifted (``_shift``), to
    the accumulators of neurons idx[:n_idx] (population starting at lo), clearing them."""
    for m in range(m0, m1):
        base, sh = neg_base[m] - lo, neg_shift[m]
        for q in range(n_idx):
            i = idx[q]
            pr = rec[base + i]
            rec[i].acc += _shift(pr.acc, sh)
            pr.acc = pr.acc - pr.acc


@numba.njit(cache=True, inline="always")
def _step_full(idx, n_idx, rec, now, epoch, zero, code, p0, p1, p2, fired, nf):
    """One kernel step of each neuron idx[q] (FULL: u = 0, nothing carries) with its summed input,
    cleared; spikes appended to fired from nf. Returns (nf, updates: neurons with input ≠ 0).

    ``last`` ≤ epoch: first touch this sample, at rest (v = 0). Rested since ``last``: its voltage
    leak over the rested ticks is caught up by the kernel's ``idle`` first."""
    n_upd = 0
    for q in range(n_idx):
        i = np.uint64(idx[q])
        spiked, had_input = _step_one(rec, i, now, epoch, zero, code, p0, p1, p2)
        fired[np.uint64(nf)] = i
        nf += spiked
        n_upd += had_input
    return nf, n_upd


@numba.njit(cache=True, inline="always")
def _step_one(rec, i, now, epoch, zero, code, p0, p1, p2):
    """One kernel step of neuron i (FULL: u = 0) with its summed input, cleared; ``last`` ≤ epoch: at rest
    (v = 0); the leak over rested ticks caught up first. Returns (spiked, input ≠ 0)."""
    r = rec[i]
    a = r.acc
    r.acc = a - a
    last = r.last
    v = zero if last <= epoch else r.v
    if (v != 0) & (now - last > 1):
        v = kernel_idle(code, v, p0, p1, p2, now - last - 1)
    _, vn, spiked = kernel_step(code, zero, v, a, p0, p1, p2)
    r.v = vn
    r.last = now
    return spiked, a != 0


@numba.njit(cache=True, inline="always")
def _step_all(lo, hi, l0, rec, now, epoch, zero, code, p0, p1, p2, fired, nf):
    """``_step_full`` for every neuron of FULL population [lo, hi), marked or not (a neuron without input
    is stepped with input 0: ``rests``, the same as resting), its marks cleared (the summary bits of
    emptied words stay, and cost a look at the next ``_collect``): no scan and no gathering where nearly
    every neuron has input. Returns (nf, updates)."""
    k_lo, k_hi = lo >> 6, (hi - 1) >> 6
    for k in range(k_lo, k_hi + 1):
        m = ~np.uint64(0)
        if k == k_lo:
            m &= ~((_ONE << np.uint64(lo & 63)) - _ONE)
        if k == k_hi and ((hi - 1) & 63) < 63:
            m &= (_ONE << np.uint64(((hi - 1) & 63) + 1)) - _ONE
        l0[k] &= ~m
    n_upd = 0
    for i in range(lo, hi):
        spiked, had_input = _step_one(rec, np.uint64(i), now, epoch, zero, code, p0, p1, p2)
        fired[np.uint64(nf)] = i
        nf += spiked
        n_upd += had_input
    return nf, n_upd


@numba.njit(cache=True, inline="always")
def _step_carry(idx, n_idx, rec, now, epoch, zero, code, p0, p1, p2, mode, nl0, nl1, fired, nf):
    """``_step_full`` for REST and BUSY neurons, whose current u carries: a neuron whose decayed
    current (step(u, 0, 0)[0]) is non-zero (REST), or every one (BUSY), is marked in the next tick's
    bitmap nl0; a BUSY neuron without input or carried current is not stepped; updates count the
    neurons with input ≠ 0 or a carried current. Returns (nf, updates, whether any carries)."""
    n_upd = 0
    carried = False
    for q in range(n_idx):
        i = np.uint64(idx[q])
        r = rec[i]
        a = r.acc
        r.acc = a - a
        last = r.last
        fresh = last <= epoch
        v = zero if fresh else r.v
        u = zero if fresh else r.u
        counted = a != 0
        prev = not fresh and last == now - 1
        if mode == BUSY:
            counted = counted or prev
            if not counted:
                continue
        elif prev and not counted:
            counted = kernel_step(code, u, zero, a - a, p0, p1, p2)[0] != 0
        if v != 0 and now - last > 1:
            v = kernel_idle(code, v, p0, p1, p2, now - last - 1)
        un, vn, spiked = kernel_step(code, u, v, a, p0, p1, p2)
        r.v = vn
        r.u = un
        r.last = now
        if mode == BUSY or kernel_step(code, un, zero, a - a, p0, p1, p2)[0] != 0:
            _mark(nl0, nl1, i)
            carried = True
        fired[np.uint64(nf)] = i
        nf += spiked
        n_upd += counted
    return nf, n_upd, carried


@numba.njit(cache=True, inline="always")
def _relay(idx, n_idx, rec, fired, payload, nf):
    """Graded relay: a neuron with summed input g ≠ 0 fires with payload g. Returns (nf, updates)."""
    n0 = nf
    for q in range(n_idx):
        i = idx[q]
        r = rec[np.uint64(i)]
        a = r.acc
        r.acc = a - a
        fired[np.uint64(nf)] = i
        payload[np.uint64(nf)] = a
        nf += a != 0
    return nf, nf - n0


@numba.njit(cache=True)
def _update_population(lo, hi, l0, l1, rec, neg_base, neg_shift, m0, m1, now, epoch, zero, code, p0, p1, p2, mode,
                       graded, nl0, nl1, idx, fired, payload, nf, rec_row, record, dense, whole):
    """Update the marked neurons of population [lo, hi) (``_collect``, ``_fold``, then ``_relay`` |
    ``_step_full`` | ``_step_carry``, compiled once per kind and mode); their spikes appended to fired
    from nf (and recorded in rec_row). Returns (nf, updates, whether a neuron carries into the next tick)."""
    if whole and mode == FULL and not graded and m1 == m0:
        nf0 = nf
        nf, n_upd = _step_all(lo, hi, l0, rec, now, epoch, zero, code, p0, p1, p2, fired, nf)
        if record:
            for q in range(nf0, nf):
                rec_row[fired[q]] = True
        return nf, n_upd, False
    if dense:
        _scan(lo, hi, rec, l0, l1)
    n_idx = _collect(lo, hi, l0, l1, idx)
    if m1 > m0:
        _fold(idx, n_idx, rec, lo, neg_base, neg_shift, m0, m1)
    n0 = nf
    carried = False
    if graded:
        nf, n_upd = _relay(idx, n_idx, rec, fired, payload, nf)
    elif mode == FULL:
        nf, n_upd = _step_full(idx, n_idx, rec, now, epoch, zero, code, p0, p1, p2, fired, nf)
    elif mode == REST:
        nf, n_upd, carried = _step_carry(idx, n_idx, rec, now, epoch, zero, code, p0, p1, p2, REST, nl0, nl1, fired,
                                         nf)
    else:
        nf, n_upd, carried = _step_carry(idx, n_idx, rec, now, epoch, zero, code, p0, p1, p2, BUSY, nl0, nl1, fired,
                                         nf)
    if record:
        for q in range(n0, nf):
            rec_row[fired[q]] = True
    return nf, n_upd, carried


@numba.njit(cache=True, inline="always")
def _emit_tick(t, ticks, R, n, kind, pop_start, pout_ptr, pout, proj, row_ptr, syn, x_idx, x_ptr, fired, fstart,
               payload, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_counts, rec_row, record):
    """The events of tick t, for tick t + 1 (module doc): the queue of slot t + 1, the source spikes
    of t (x_idx[x_ptr[t]:x_ptr[t + 1]]: global ids, sources in graph order), then fired[fstart[p] :
    fstart[p + 1]] of each population p, projection by projection (``_send``). False when a queue is full."""
    n_pops = len(pop_start)
    if t + 1 < ticks:
        sl = t + 1
        while sl >= R:
            sl -= R
        _drain(sl, proj, row_ptr, syn, rec, l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n)
    q = q_end = 0
    if t < len(x_ptr) - 1:
        q, q_end = x_ptr[t], x_ptr[t + 1]
    for p in range(n_pops):
        ids = fired
        f0, f1 = fstart[p], fstart[p + 1]
        if kind[p] == KIND_INPUT:
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
        for m in range(pout_ptr[p], pout_ptr[p + 1]):
            if not _send(pout[m], ids, f0, f1, payload, kind[p] == KIND_GRADED, t, ticks, R, proj, row_ptr, syn, rec,
                         l0, l1, pflag, qi, qk, qv, qlen, ops, pop_start, n):
                return False
    return True


@numba.njit(cache=True)
def run_sample(params, code, kernels, mode, kind, syn, row_ptr, proj, pout_ptr, pout, neg_ptr, neg_base, neg_shift,
               pop_start, n, R, ticks, x_idx, x_ptr, epoch, rec, l0, l1, pflag, qi, qk, qv, qlen, zero, idx, fired,
               fstart, payload, spikes, pop_counts, ops, record):
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
        nf = 0
        for p in range(n_pops):                                  # 1. update the marked neurons
            fstart[p] = nf
            flags = pfc[p]
            if flags == 0:
                continue
            pfc[p] = 0
            hi = pop_start[p + 1] if p + 1 < n_pops else n
            nf, n_upd, carried = _update_population(
                pop_start[p], hi, l0[par], l1[par], rec, neg_base, neg_shift, neg_ptr[p], neg_ptr[p + 1], now, epoch,
                zero, code[p], params[p, 0], params[p, 1], params[p, 2], mode[p], kind[p] == KIND_GRADED, l0n, l1n, idx,
                fired, payload, nf, rec_row, record, flags & 2 != 0, flags & 4 != 0)
            pfn[p] |= carried
            updates += n_upd
            pop_counts[p] += nf - fstart[p]
        fstart[n_pops] = nf
        if not _emit_tick(t, ticks, R, n, kind, pop_start, pout_ptr, pout, proj, row_ptr, syn, x_idx, x_ptr, fired,
                          fstart, payload, rec, l0n, l1n, pfn, qi, qk, qv, qlen, ops, pop_counts, rec_row, record):
            return -1
        par = 1 - par
    return updates


@numba.njit(cache=True, parallel=True)
def run_batch(params, code, kernels, mode, kind, syn, row_ptr, proj, pout_ptr, pout, neg_ptr, neg_base, neg_shift,
              pop_start, n, R, ticks, x_idx, x_ptr, x_off, rec, l0, l1, pflag, qi, qk, qv, qlen, epochs, zero,
              idx, fired, fstart, payload, spikes, pop_counts, ops, updates, done, record):
    """Samples c, c + C, c + 2C, … not yet ``done`` run on working buffer c (C = number of buffers,
    one per thread); a buffer whose queue overflows stops (its sample stays not done) and
    ``epochs[c]`` becomes −1 (dirty).

    ``epochs[c]``: the first free epoch of buffer c, read at the start and written back at the end, so
    that buffers left clean by one call (``run_sample``) serve the next one without a reset."""
    n_buf = len(rec)
    batch = len(updates)
    for c in numba.prange(n_buf):
        epoch = epochs[c]
        for b in range(c, batch, n_buf):
            if done[b]:
                continue
            if epoch > EPOCH_MAX - ticks - 1:                    # int32 ``last`` would wrap: start afresh
                for i in range(len(rec[c])):
                    rec[c][i].last = 0
                epoch = 0
            u = run_sample(params, code, kernels, mode, kind, syn, row_ptr, proj, pout_ptr, pout, neg_ptr, neg_base,
                           neg_shift, pop_start, n, R, ticks, x_idx[x_off[b, 0]:x_off[b, 1]], x_ptr[b], epoch,
                           rec[c], l0[c], l1[c], pflag[c], qi[c], qk[c], qv[c], qlen[c], zero, idx[c], fired[c], fstart[c],
                           payload[c], spikes[b], pop_counts[b], ops[b], record)
            if u < 0:
                epoch = -1
                break
            updates[b] = u
            done[b] = True
            epoch += ticks + 1
        epochs[c] = epoch
