"""The AER graph flattened for the event-driven engine (``sim.engine``): one CSR over global neuron ids.

Each source neuron's synapses are grouped in segments, one per projection it feeds, so that
delay and accumulator offset are per segment, not per synapse. A spike reads one record of its
neuron (``OUT_DTYPE``: where its synapses and its segments start, 16 bytes) and one record per
segment (``SEG_DTYPE``: end, accumulator offset, projection, delay, 24 bytes) rather than one
array per field, a cache line each at large widths (issue 23). Per population: its engine
role (``KIND_*``), its kernel's code and parameters (``sim.neurons``) and its update mode:

    BUSY   once touched, updated every tick (a kernel without ``rests``);
    REST   left untouched while it has no input and its decayed current is 0;
    FULL   REST, and the current never carries (``Kernel.full_decay``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.ir.bounds import PAYLOAD_MAX, abs_fan_in, input_bounds
from sim.ir.graph import AerGraph
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


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
    out: np.ndarray           # (n+1,) OUT_DTYPE: syn = first outgoing synapse, seg = first segment of neuron i
    seg: np.ndarray           # (G,) SEG_DTYPE: end of the segment's synapses (start = previous end / out[i].syn),
                              # delta = accumulator index − target (≠ 0 only for weight_exp < 0), proj, delay
    target: np.ndarray        # (S,) int32 neuron receiving the event
    weight: np.ndarray        # (S,) int16 (loihi, already << exp ≥ 0) | float32
    neg_ptr: np.ndarray       # (pops+1,) negative-exponent projections into each population
    neg_base: np.ndarray      # accumulator base of that projection (index = base + local neuron)
    neg_shift: np.ndarray     # −weight_exp
    pop_start: np.ndarray     # (pops,) first global index
    max_delay: int
    acc_dtype: np.dtype       # accumulators: int32 where the IR bounds allow, else int64 (loihi) | float64

    @property
    def indptr(self) -> np.ndarray:
        """(n+1,) int64 CSR row pointers of the outgoing synapses (a view of ``out``)."""
        return self.out["syn"]


OUT_DTYPE = np.dtype([("syn", np.int64), ("seg", np.int64)])
SEG_DTYPE = np.dtype([("end", np.int64), ("delta", np.int64), ("proj", np.int32), ("delay", np.int8)], align=True)


KIND_INPUT, KIND_LIF, KIND_GRADED = 0, 1, 2


BUSY, REST, FULL = 0, 1, 2              # update modes (module doc)


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
    out = np.zeros(n + 1, OUT_DTYPE)
    np.cumsum(row_len, out=out["syn"][1:])
    np.cumsum(seg_len, out=out["seg"][1:])
    total, n_seg = int(out["syn"][-1]), int(out["seg"][-1])
    target = np.empty(total, np.int32)
    weight = np.empty(total, arith.weight_dtype)
    seg = np.zeros(n_seg, SEG_DTYPE)
    cursor, seg_cursor = out["syn"][:-1].copy(), out["seg"][:-1].copy()
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
                   seg["end"], seg["delay"], seg["delta"], seg["proj"])
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
        out=out, seg=seg, target=target, weight=weight,
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
        raw = np.zeros(int(pr.indices.max()) + 1, np.float64)
        abs_fan_in(pr.indptr, pr.indices, pr.weights, src, raw)
        if raw.max() > np.iinfo(np.int32).max:
            return np.dtype(np.int64)
    return np.dtype(np.int32)
