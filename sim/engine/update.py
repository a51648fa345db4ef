"""Compiled population updates of the engine (numba; compiled into the tick loop of ``sim.engine.kernels``).

A population's marked neurons (``l0``/``l1`` bitmaps, ``sim.engine.delivery``) are gathered in index order
(``_collect``; after a dense delivery its accumulators are scanned first, ``_scan``), the private accumulators
of negative-exponent projections folded in (``_fold``), then each neuron is stepped once by its update mode
(``flatgraph``): FULL (``_step_full``; every neuron of the population after a dense delivery, ``_step_all``),
REST/BUSY (``_step_carry``: the current u carries), or a graded relay (``_relay``). A neuron's leak over the
ticks it rested is caught up first (``kernel_idle``); its spikes are appended to ``fired``.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic, overload

from sim.engine.delivery import ONE, mark
from sim.engine.flatgraph import BUSY, FULL, REST
from sim.neurons.dispatch import kernel_idle, kernel_step
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


def _shift(x, s):
    """Negative weight exponent applied to an accumulated sum: floor(x / 2^s) (loihi only)."""


@overload(_shift)
def _shift_impl(x, s):
    if isinstance(x, types.Integer):
        return lambda x, s: x >> s
    return lambda x, s: x


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
            l1[k >> 6] |= ONE << np.uint64(k & 63)


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of an integer (llvm.ctpop)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return x(x), codegen


@numba.njit(cache=True, inline="always")
def _flatten_bits(m, base, idx, n_idx):
    """idx[n_idx:] ← base + the positions of m's set bits, ascending; returns n_idx + their count. The first
    four are written unconditionally (positions past the count are garbage in idx's slack of ≥ 4 entries), so
    that a word of ≤ 4 bits takes no data-dependent branch."""
    cnt = _popcount(m)
    at = np.uint64(n_idx)
    for q in range(4):
        idx[at + np.uint64(q)] = base + trailing_zeros(m)
        m &= m - ONE
    if cnt > 4:
        at += np.uint64(4)
        while m != 0:
            idx[at] = base + trailing_zeros(m)
            m &= m - ONE
            at += ONE
    return n_idx + cnt


@numba.njit(cache=True, inline="always")
def _collect(lo, hi, l0, l1, idx):
    """The marked neurons of population [lo, hi) into idx, in index order, their bits cleared (a word
    shared with a neighbouring population keeps the neighbour's); returns how many."""
    n_idx = 0
    k_lo, k_hi = lo >> 6, (hi - 1) >> 6
    for k1 in range(k_lo >> 6, (k_hi >> 6) + 1):
        y = l1[k1]
        if k1 == k_lo >> 6:
            y &= ~((ONE << np.uint64(k_lo & 63)) - ONE)
        if k1 == k_hi >> 6 and (k_hi & 63) < 63:
            y &= (ONE << np.uint64((k_hi & 63) + 1)) - ONE
        emptied = np.uint64(0)
        while y != 0:
            k = (k1 << 6) + trailing_zeros(y)
            y &= y - ONE
            w = l0[k]
            m = w
            if k == k_lo:
                m &= ~((ONE << np.uint64(lo & 63)) - ONE)
            if k == k_hi and ((hi - 1) & 63) < 63:
                m &= (ONE << np.uint64(((hi - 1) & 63) + 1)) - ONE
            if w == m:
                emptied |= ONE << np.uint64(k & 63)
            l0[k] = w & ~m
            n_idx = _flatten_bits(m, k << 6, idx, n_idx)
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
def _step_all(lo, hi, l0, rec, now, epoch, zero, code, p0, p1, p2, fired, nf):
    """``_step_full`` for every neuron of FULL population [lo, hi), marked or not (a neuron without input
    is stepped with input 0: ``rests``, the same as resting), its marks cleared (the summary bits of
    emptied words stay, and cost a look at the next ``_collect``): after a dense delivery (events for half
    the population or more) no scan and no gathering — a scan reads every record anyway. Returns (nf, updates)."""
    k_lo, k_hi = lo >> 6, (hi - 1) >> 6
    for k in range(k_lo, k_hi + 1):
        m = ~np.uint64(0)
        if k == k_lo:
            m &= ~((ONE << np.uint64(lo & 63)) - ONE)
        if k == k_hi and ((hi - 1) & 63) < 63:
            m &= (ONE << np.uint64(((hi - 1) & 63) + 1)) - ONE
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
            mark(nl0, nl1, i)
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
def update_population(lo, hi, l0, l1, rec, neg_base, neg_shift, m0, m1, now, epoch, zero, code, p0, p1, p2, mode,
                       graded, nl0, nl1, idx, fired, payload, nf, rec_row, record, dense):
    """Update the marked neurons of population [lo, hi) (``_collect``, ``_fold``, then ``_relay`` |
    ``_step_full`` | ``_step_carry``, compiled once per kind and mode); their spikes appended to fired
    from nf (and recorded in rec_row). Returns (nf, updates, whether a neuron carries into the next tick)."""
    if dense and mode == FULL and not graded and m1 == m0:
        nf0 = nf
        if code == 0:                                    # kernel 0 (CUBA): its dispatch folded out of the loop
            nf, n_upd = _step_all(lo, hi, l0, rec, now, epoch, zero, 0, p0, p1, p2, fired, nf)
        else:
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
    elif mode == FULL and code == 0:
        nf, n_upd = _step_full(idx, n_idx, rec, now, epoch, zero, 0, p0, p1, p2, fired, nf)
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
