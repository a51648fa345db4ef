"""Compiled core of the event-driven engine (numba): event delivery, population updates, the tick loop.

Working buffers of one thread (``sim.engine.simulate`` allocates them): ``acc[slot, j]``
summed input of neuron j for the tick of that slot (slot = t mod R); ``blk[slot]`` one bit
per BLOCK neurons that received an event there; ``carry[slot]`` one bit per neuron that
carries a current into that tick; ``state[i] = (v, last)`` and ``cur[i] = u`` (a FULL
population never reads or writes u: its step depends on the input only, so its update
touches 8 bytes of state per neuron); ``fired``/``payload`` the spikes of the population
just updated.

Per population and tick, the marked blocks are visited in index order. In a block, the
pending neurons (summed input ≠ 0 or a carried current) form a bit mask; a neuron of a
REST/FULL population that is not pending may be stepped with input 0 or left to rest, with
the same result (``sim.neurons``: ``rests`` — its current is 0 and the step is one ``idle``
step, which never spikes). So a block with at least WHOLE pending neurons of such a
population is stepped whole, in one branch-free sweep over contiguous records; a sparser
block, and every block of a BUSY population, steps only its pending neurons. Only pending
neurons are counted as updates.

All compiled engine code lives in this one module: numba's on-disk cache notices a change
only in the file of the function it caches.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic, overload

from sim.engine.flatgraph import BUSY, FULL, KIND_GRADED, KIND_INPUT, REST
from sim.neurons.dispatch import kernel_idle, kernel_step
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

_ONE = np.uint64(1)


EPOCH_MAX = (1 << 31) - 1


BLOCK = 16                  # neurons per block: one 64-byte line of int32 accumulators


WHOLE = 6                   # pending neurons from which a REST/FULL block is stepped whole


def _shift(x, s):
    """Negative weight exponent applied to an accumulated sum: floor(x / 2^s) (loihi only)."""


@overload(_shift)
def _shift_impl(x, s):
    if isinstance(x, types.Integer):
        return lambda x, s: x >> s
    return lambda x, s: x


@numba.njit(cache=True, inline="always")
def _mark(blk, top, j):
    """Set the bit of neuron j's block in a slot's block bitmap, and the bit of that bitmap word in
    the slot's summary ``top`` (one bit per 64 blocks)."""
    b = np.uint64(j) >> np.uint64(4)                      # unsigned: no negative-index wraparound code
    w = b >> np.uint64(6)
    blk[w] |= _ONE << (b & np.uint64(63))
    top[w >> np.uint64(6)] |= _ONE << (w & np.uint64(63))


@numba.njit(cache=True, inline="always")
def _any_marked(b0, b1, blk, top):
    """Whether a block of [b0, b1] is marked: O(1 + (b1 − b0)/4096) summary words and the marked words."""
    k0, k1 = b0 >> 6, b1 >> 6
    for kt in range(k0 >> 6, (k1 >> 6) + 1):
        y = top[kt]
        while y != 0:
            k = (kt << 6) + trailing_zeros(y)
            y &= y - _ONE
            if k < k0:
                continue
            if k > k1:
                return False
            x = blk[k]
            if k == k0:
                x &= ~((_ONE << np.uint64(b0 & 63)) - _ONE)
            if k == k1 and (b1 & 63) < 63:
                x &= (_ONE << np.uint64((b1 & 63) + 1)) - _ONE
            if x != 0:
                return True
    return False


@numba.njit(cache=True, inline="always")
def _clear_marks(blk, top):
    """Zero a slot's marked bitmap words and its summary: O(marked words + len(top))."""
    for kt in range(len(top)):
        y = top[kt]
        while y != 0:
            blk[(kt << 6) + trailing_zeros(y)] = 0
            y &= y - _ONE
        top[kt] = 0


@numba.njit(cache=True, inline="always")
def _emit(i, slot, R, out, seg, target, weight, acc, blk, top, payload, ops):
    """Deliver an event of neuron i: per segment g (``sim.engine.flatgraph``: one record each),
    acc[(slot + delay) mod R, target + delta] += w·payload, blocks (and their summary) marked,
    ops[proj] += the segment's synapses."""
    s = out[i].syn
    for g in range(out[i].seg, out[i + 1].seg):
        sg = seg[g]
        e = sg.end
        ops[sg.proj] += e - s
        sl = slot + sg.delay
        if sl >= R:
            sl -= R
        d = sg.delta
        acc_row = acc[sl]
        b_row = blk[sl]
        t_row = top[sl]
        while s < e:
            j = target[s]
            acc_row[np.uint64(j + d)] += weight[s] * payload
            _mark(b_row, t_row, j)
            s += 1


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of an unsigned integer (LLVM ctpop)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return x(x), codegen


@numba.njit(cache=True, inline="always")
def _fold_neg(s, e, lo, acc, neg_base, neg_shift):
    """Fold the private accumulators of negative-exponent projections, shifted, into acc[s:e]
    (population starting at lo)."""
    for m in range(len(neg_base)):
        base, sh = neg_base[m] - lo, neg_shift[m]
        for i in range(s, e):
            acc[i] += _shift(acc[base + i], sh)
            acc[base + i] = 0


@numba.njit(cache=True, inline="always")
def _take_carry(s, e, carry):
    """The carry bits of block [s, e) as bits (i − s), cleared in ``carry`` (a block is within one word)."""
    off = np.uint64(s & 63)
    bits = (_ONE << np.uint64(e - s)) - _ONE
    cw = carry[s >> 6]
    cm = (cw >> off) & bits
    if cm != 0:
        carry[s >> 6] = cw & ~(bits << off)
    return cm


@numba.njit(cache=True, inline="always")
def _block_mask(s, e, lo, carry, acc, neg_base, neg_shift, carries=True):
    """Pending neurons of block [s, e) of the population starting at lo, as bits (i − s): summed
    input ≠ 0 (after ``_fold_neg``) or a carried current; returns (mask, popcount). Clears the carry bits.
    ``carries`` False (a FULL population, whose neurons never carry): the carry bitmap is not read."""
    _fold_neg(s, e, lo, acc, neg_base, neg_shift)
    mask = _take_carry(s, e, carry) if carries else np.uint64(0)
    if e - s == BLOCK:                           # a full block: constant trip count, vectorised
        for q in range(BLOCK):
            mask |= np.uint64(acc[s + q] != 0) << np.uint64(q)
    else:
        for q in range(e - s):
            mask |= np.uint64(acc[s + q] != 0) << np.uint64(q)
    return mask, np.int64(_popcount(mask))


@numba.njit(cache=True)
def _pending(lo, hi, blk, top, carry, acc, neg_base, neg_shift, out):
    """Pending neurons of [lo, hi) (``_block_mask``) into ``out`` in index order; returns how many.

    Only the blocks marked in ``blk`` (found through its summary ``top``) are scanned:
    O(16·marked blocks + marked words + (hi − lo)/65536)."""
    n_out = 0
    b0 = lo >> 4
    b1 = (hi - 1) >> 4
    k0, k1 = b0 >> 6, b1 >> 6
    for kt in range(k0 >> 6, (k1 >> 6) + 1):
        y = top[kt]
        while y != 0:
            k = (kt << 6) + trailing_zeros(y)
            y &= y - _ONE
            if k < k0:
                continue
            if k > k1:
                break
            x = blk[k]
            while x != 0:
                b = (k << 6) + trailing_zeros(x)
                x &= x - _ONE
                if b < b0:
                    continue
                if b > b1:
                    break
                s = max(b << 4, lo)
                mask = _block_mask(s, min((b << 4) + BLOCK, hi), lo, carry, acc, neg_base, neg_shift)[0]
                while mask != 0:
                    out[n_out] = s + trailing_zeros(mask)
                    mask &= mask - _ONE
                    n_out += 1
    return n_out


@numba.njit(cache=True, inline="always")
def _step(i, a, state, cur, now, epoch, zero, code, p0, p1, p2, mode, nxt_blk, nxt_top, nxt_carry):
    """One kernel step of neuron i with summed input a; returns whether it spiked.

    ``last`` ≤ epoch: first touch this sample, at rest (u = v = 0). Rested since ``last``:
    its voltage leak over the rested ticks is caught up by the kernel's ``idle`` first (REST,
    FULL only). REST: a neuron whose decayed current (step(u, 0, 0)[0]) is non-zero is
    pending in the next slot; BUSY: every stepped neuron is; FULL: none (no test)."""
    st = state[i]
    last = st.last
    fresh = last <= epoch
    u = zero if fresh or mode == FULL else cur[i]          # FULL: the decayed current is 0 whatever u
    v = zero if fresh else st.v
    if not fresh and now - last > 1 and v != 0:
        v = kernel_idle(code, v, p0, p1, p2, now - last - 1)
    un, vn, spiked = kernel_step(code, u, v, a, p0, p1, p2)
    if mode != FULL:
        cur[i] = un
    st.v = vn
    st.last = now
    carries = mode == BUSY
    if mode == REST:
        carries = kernel_step(code, un, zero, a - a, p0, p1, p2)[0] != 0
    if carries:
        nxt_carry[i >> 6] |= _ONE << np.uint64(i & 63)
        _mark(nxt_blk, nxt_top, i)
    return spiked


@numba.njit(cache=True, inline="always")
def _update_neurons(lo, hi, blk, top, carry, acc, neg_base, neg_shift, state, cur, now, epoch, zero, code, p0, p1, p2,
                    mode, whole, nxt_blk, nxt_top, nxt_carry, fired, rec_row, record):
    """Step the pending neurons of population [lo, hi); the spiking ones go to ``fired`` in index
    order (and ``rec_row`` if ``record``). Returns (spikes, pending neurons, marked blocks).

    REST/FULL (module doc): ``whole`` steps every marked block whole, counting the pending
    neurons on the way; otherwise a block's pending mask is built first, and the block is
    stepped whole if it has ≥ WHOLE of them, else neuron by neuron. BUSY: pending neurons only."""
    n_fired = 0
    n_pending = 0
    n_blocks = 0
    b0 = lo >> 4
    b1 = (hi - 1) >> 4
    k0, k1 = b0 >> 6, b1 >> 6
    for kt in range(k0 >> 6, (k1 >> 6) + 1):
        y = top[kt]
        while y != 0:
            k = (kt << 6) + trailing_zeros(y)
            y &= y - _ONE
            if k < k0:
                continue
            if k > k1:
                break
            x = blk[k]
            while x != 0:
                b = (k << 6) + trailing_zeros(x)
                x &= x - _ONE
                if b < b0:
                    continue
                if b > b1:
                    break
                n_blocks += 1
                s = max(b << 4, lo)
                e = min((b << 4) + BLOCK, hi)
                mask = cm = np.uint64(0)
                if mode != BUSY and whole:
                    _fold_neg(s, e, lo, acc, neg_base, neg_shift)
                    if mode != FULL:                     # a FULL neuron never carries: its bits stay 0
                        cm = _take_carry(s, e, carry)
                    c = 0
                else:
                    mask, c = _block_mask(s, e, lo, carry, acc, neg_base, neg_shift, mode != FULL)
                if mode != BUSY and (whole or c >= WHOLE):
                    for i in range(s, e):
                        a = acc[i]
                        acc[i] = 0
                        if whole:
                            c += (a != 0) | ((cm >> np.uint64(i - s)) & _ONE != 0)
                        spiked = _step(i, a, state, cur, now, epoch, zero, code, p0, p1, p2, mode, nxt_blk, nxt_top,
                                       nxt_carry)
                        fired[n_fired] = i
                        n_fired += spiked
                        if record:
                            rec_row[i] = spiked
                else:
                    while mask != 0:
                        i = s + trailing_zeros(mask)
                        mask &= mask - _ONE
                        a = acc[i]
                        acc[i] = 0
                        spiked = _step(i, a, state, cur, now, epoch, zero, code, p0, p1, p2, mode, nxt_blk, nxt_top,
                                       nxt_carry)
                        fired[n_fired] = i
                        n_fired += spiked
                        if record:
                            rec_row[i] = spiked
                n_pending += c
    return n_fired, n_pending, n_blocks


@numba.njit(cache=True)
def _update_lif(lo, hi, blk, top, carry, acc, neg_base, neg_shift, state, cur, now, epoch, zero, code, p0, p1, p2, mode,
                whole, nxt_blk, nxt_top, nxt_carry, fired, rec_row, record):
    """``_update_neurons`` compiled once per update mode (a constant inside)."""
    if mode == FULL:
        return _update_neurons(lo, hi, blk, top, carry, acc, neg_base, neg_shift, state, cur, now, epoch, zero, code, p0,
                               p1, p2, FULL, whole, nxt_blk, nxt_top, nxt_carry, fired, rec_row, record)
    if mode == REST:
        return _update_neurons(lo, hi, blk, top, carry, acc, neg_base, neg_shift, state, cur, now, epoch, zero, code, p0,
                               p1, p2, REST, whole, nxt_blk, nxt_top, nxt_carry, fired, rec_row, record)
    return _update_neurons(lo, hi, blk, top, carry, acc, neg_base, neg_shift, state, cur, now, epoch, zero, code, p0, p1,
                           p2, BUSY, False, nxt_blk, nxt_top, nxt_carry, fired, rec_row, record)


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


@numba.njit(cache=True)
def run_sample(pop_of, params, code, kernels, mode, kind, out, seg, target, weight, neg_ptr, neg_base, neg_shift,
               pop_start, emits, R, ticks, x_idx, x_ptr, epoch, acc, blk, top, carry, state, cur, zero, idx, fired,
               payload, spikes, pop_counts, ops, record):
    """One sample on one thread's working buffers; returns the number of neuron updates.

    Per tick: 1. the source spikes of the tick emit; 2. per population with a marked block
    (``_any_marked``: one with nothing pending costs a few summary-word reads and no call), its pending
    neurons are updated (``_update_lif`` | graded: ``_pending``, ``_update_graded``) and those that
    spiked (``fired``, graded ``payload``) emit into later slots (delay ≥ 1); 3. the slot's marks are
    cleared through its summary (``_clear_marks``). Buffers are
    reused across samples without O(n) resets: ``last`` holds ``epoch + tick + 1`` (a neuron
    whose ``last`` ≤ epoch starts this sample at rest), and only slots left pending after
    the last tick are cleared. ``emits[p]``: population p has outgoing synapses. x_idx/x_ptr:
    this sample's source spikes as CSR over ticks (global neuron ids). ``kernels``
    (``sim.neurons.kernel_key``) is unused: its type makes numba's cache tell kernel sets apart.
    """
    updates = 0
    n_pops = len(pop_start)
    n = len(pop_of)
    dense = np.zeros(n_pops, np.bool_)              # last tick: ≥ WHOLE pending neurons per marked block
    for t in range(ticks):
        now = epoch + t + 1
        slot = t % R
        nxt = slot + 1 if slot + 1 < R else 0
        rec_row = spikes[t if record else 0]
        if t < len(x_ptr) - 1:                                   # 1. input spikes at t
            for k in range(x_ptr[t], x_ptr[t + 1]):
                i = x_idx[k]
                pop_counts[pop_of[i]] += 1
                if record:
                    rec_row[i] = True
                _emit(i, slot, R, out, seg, target, weight, acc, blk, top, 1, ops)
        acc_row, blk_s, top_s, carry_s = acc[slot], blk[slot], top[slot], carry[slot]
        blk_n, top_n, carry_n = blk[nxt], top[nxt], carry[nxt]
        for p in range(n_pops):                                  # 2. update pending neurons, population by population
            lo = pop_start[p]
            hi = pop_start[p + 1] if p + 1 < n_pops else n
            if kind[p] == KIND_INPUT or not _any_marked(lo >> 4, (hi - 1) >> 4, blk_s, top_s):
                dense[p] = False
                continue
            nb, ns = neg_base[neg_ptr[p]:neg_ptr[p + 1]], neg_shift[neg_ptr[p]:neg_ptr[p + 1]]
            graded = kind[p] == KIND_GRADED
            if graded:
                n_pending = _pending(lo, hi, blk_s, top_s, carry_s, acc_row, nb, ns, idx)
                n_fired = _update_graded(idx, n_pending, acc_row, fired, payload)
                if record:
                    for q in range(n_fired):
                        rec_row[fired[q]] = True
            else:
                n_fired, n_pending, n_blocks = _update_lif(
                    lo, hi, blk_s, top_s, carry_s, acc_row, nb, ns, state, cur, now, epoch, zero, code[p],
                    params[p, 0], params[p, 1], params[p, 2], mode[p], dense[p], blk_n, top_n, carry_n, fired, rec_row,
                    record)
                dense[p] = n_blocks > 0 and n_pending >= WHOLE * n_blocks
            updates += n_pending
            pop_counts[p] += n_fired
            if emits[p]:                                         # spikes of p reach later slots (delay ≥ 1)
                for q in range(n_fired):
                    i = fired[q]
                    _emit(i, slot, R, out, seg, target, weight, acc, blk, top, payload[q] if graded else 1, ops)
        _clear_marks(blk_s, top_s)                               # 3.
    for sl in range(R):                                           # clear events scheduled past the end
        for p in range(n_pops):
            lo = pop_start[p]
            hi = pop_start[p + 1] if p + 1 < n_pops else n
            if kind[p] == KIND_INPUT or not _any_marked(lo >> 4, (hi - 1) >> 4, blk[sl], top[sl]):
                continue
            n_idx = _pending(lo, hi, blk[sl], top[sl], carry[sl], acc[sl], neg_base[neg_ptr[p]:neg_ptr[p + 1]],
                             neg_shift[neg_ptr[p]:neg_ptr[p + 1]], idx)
            for q in range(n_idx):
                acc[sl, idx[q]] = 0
        _clear_marks(blk[sl], top[sl])
    return updates


@numba.njit(cache=True, parallel=True)
def run_batch(pop_of, params, code, kernels, mode, kind, out, seg, target, weight, neg_ptr, neg_base, neg_shift,
              pop_start, emits, R, ticks, x_idx, x_ptr, x_off, acc, blk, top, carry, state, cur, epochs, zero, idx, fired,
              payload, spikes, pop_counts, ops, updates, record):
    """Samples c, c + C, c + 2C, … run on working buffer c (C = number of buffers, one per thread).

    ``epochs[c]``: the first free epoch of buffer c, read at the start and written back at the end, so
    that buffers left clean by one call (``run_sample``) serve the next one without a reset."""
    n_buf = len(acc)
    batch = len(updates)
    for c in numba.prange(n_buf):
        epoch = epochs[c]
        for b in range(c, batch, n_buf):
            if epoch > EPOCH_MAX - ticks - 1:                    # int32 ``last`` would wrap: start afresh
                for i in range(len(state[c])):
                    state[c][i].last = 0
                epoch = 0
            updates[b] = run_sample(pop_of, params, code, kernels, mode, kind, out, seg, target, weight, neg_ptr,
                                    neg_base, neg_shift, pop_start, emits, R, ticks, x_idx[x_off[b, 0]:x_off[b, 1]], x_ptr[b], epoch, acc[c], blk[c], top[c],
                                    carry[c], state[c], cur[c], zero, idx[c], fired[c], payload[c], spikes[b],
                                    pop_counts[b], ops[b], record)
            epoch += ticks + 1
        epochs[c] = epoch
