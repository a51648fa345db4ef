"""The AER graph flattened for the event-driven engine (``sim.engine``): projections over global neuron ids.

The synapses of all projections in one array, projection after projection, each projection's
rows in the order of its source neurons (``syn_dtype``: target and weight in one packed record,
6 bytes in loihi numerics, so that a synapse is one read). Per projection one record
(``PROJ_DTYPE``): where its rows start, its source population, the range of rows with synapses,
its accumulator offset, target population, delay, its fan-out where every row has the same, and
two shortcuts: a pooling map (each source feeds the fan consecutive targets of block r // g, with one
weight: relays and k-WTA wiring) is sent without reading a synapse, and from ``dense_at`` spikes in a tick on the
targets are not marked one by one (``update._scan``). The engine sends the spikes of a tick
projection by projection, so all of this is constant over a loop. Per population: its engine
role (``KIND_*``), its kernel's code and parameters (``sim.neurons``), its outgoing projections
and its update mode:

    BUSY   once touched, updated every tick (a kernel without ``rests``);
    REST   left untouched while it has no input and its decayed current is 0;
    FULL   REST, and the current never carries (``Kernel.full_decay``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.ir.bounds import PAYLOAD_MAX, abs_fan_in, input_bounds
from sim.ir.graph import AerGraph


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
    syn: np.ndarray           # (S,) SYN_DTYPE: target (global neuron) and weight (int16 loihi, already << exp ≥ 0
                              # | float32), projection after projection
    row_ptr: np.ndarray       # (Σ (n_pre + 1),) int64: projection k's row r is syn[row_ptr[proj[k].row + r] : … + 1]
    proj: np.ndarray          # (K,) PROJ_DTYPE
    pout_ptr: np.ndarray      # (pops+1,) int64: the projections out of population p are pout[pout_ptr[p]:pout_ptr[p+1]]
    pout: np.ndarray          # (K,) int32, in graph order
    neg_ptr: np.ndarray       # (pops+1,) negative-exponent projections into each population
    neg_base: np.ndarray      # accumulator base of that projection (index = base + local neuron)
    neg_shift: np.ndarray     # −weight_exp
    pop_start: np.ndarray     # (pops,) first global index
    max_delay: int
    n_delayed: int            # source neurons of projections of delay ≥ 2 (the most spikes one slot's queue holds)
    acc_dtype: np.dtype       # accumulators: int32 where the IR bounds allow, else int64 (loihi) | float64


def syn_dtype(weight_dtype) -> np.dtype:
    """One synapse: target (global neuron index) and weight, packed: 6 bytes (loihi) | 8."""
    return np.dtype([("target", np.int32), ("w", weight_dtype)])


PROJ_DTYPE = np.dtype([("row", np.int64), ("syn", np.int64), ("pre", np.int64), ("lo", np.int64), ("hi", np.int64),
                       ("dense_at", np.int64), ("delta", np.int32), ("post", np.int32), ("delay", np.int32),
                       ("fan", np.int32), ("pool", np.int32)], align=True)
"""row: its first entry in row_ptr; syn: its first synapse; pre: its source population's first neuron;
[lo, hi): the source rows with synapses (the others are skipped, by a search in the sorted spikes);
delta: accumulator index − target (≠ 0 only for weight_exp < 0); post: target population; fan: the length
of every row in [lo, hi), or −1 where they differ; pool: g ≥ 1 where each source row r in [lo, hi) has fan synapses,
to targets (r − lo) // g · fan + 0 … fan − 1, all with one weight (identity, pooling and spreading maps:
relays, k-WTA wiring, drives), so that a spike reads no synapse, else 0; dense_at: from this many spikes in one tick on, their events
cover about half the target population or more (DENSE_SHARE), and the engine scans the population's
accumulators instead of marking each target (never for private accumulators)."""


DENSE_SHARE = 0.5
CHUNK = 1 << 22               # synapses per step where flattening works through a projection in pieces


def dense_at(pr, post_size: int, private: bool) -> int:
    """Spikes from which one tick's events of projection pr reach DENSE_SHARE · post_size (``PROJ_DTYPE``)."""
    if private or pr.n_synapses == 0:
        return np.iinfo(np.int64).max
    return max(1, int(np.ceil(DENSE_SHARE * post_size * pr.n_pre / pr.n_synapses)))


def active_rows(pr) -> tuple[int, int]:
    """[lo, hi): the first and past the last source row of projection pr with a synapse ((0, 0) if none)."""
    rows = np.flatnonzero(np.diff(pr.indptr))
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)


def pool_factor(pr) -> int:
    """g where projection pr maps each source row r in [lo, hi) (``active_rows``) to the f targets
    (r − lo) // g · f + 0 … f − 1 alone (f its uniform fan-out), all with one weight (``PROJ_DTYPE``); else 0.
    Checked row block by row block, the first row first: no temporary of the projection's size."""
    lo, hi = active_rows(pr)
    lens = np.diff(pr.indptr[lo:hi + 1])
    if hi == lo or lens[0] == 0 or (lens != lens[0]).any() or pr.n_synapses != (hi - lo) * lens[0]:
        return 0
    f = int(lens[0])
    if not np.array_equal(pr.indices[:f], np.arange(f)):
        return 0
    g = -(-(hi - lo) // max((int(pr.indices[-1]) + 1) // f, 1))
    step = max(1, CHUNK // f)
    for r in range(0, hi - lo, step):
        rows = np.arange(r, min(r + step, hi - lo))
        expect = ((rows // g * f)[:, None] + np.arange(f)).ravel()
        got = slice(r * f, r * f + len(expect))
        if not np.array_equal(pr.indices[got], expect) or (pr.weights[got] != pr.weights[0]).any():
            return 0
    return g


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


def flatten(graph: AerGraph) -> FlatGraph:
    """All projections in one synapse array over global neuron indices, in compact dtypes (module doc):
    target int32, weight int16 (loihi: w << exp ≤ 254·2⁷ fits) | float32."""
    arith = graph.arith
    pops = graph.populations
    index = {p.name: k for k, p in enumerate(pops)}
    offsets = graph.offsets()
    n = graph.n_neurons
    projs = graph.projections
    syn = np.empty(graph.n_synapses, syn_dtype(arith.weight_dtype))
    row_ptr = np.empty(sum(pr.n_pre + 1 for pr in projs), np.int64)
    proj = np.zeros(len(projs), PROJ_DTYPE)
    neg: dict[int, list[tuple[int, int]]] = {}
    pos = row = 0
    n_acc = n
    for k, pr in enumerate(projs):
        delta = 0
        w, private = arith.engine_weights(pr.weights, pr.weight_exp)
        if private:                       # private accumulators: Lava floors the shifted *sum*
            delta = n_acc - offsets[pr.post]
            neg.setdefault(index[pr.post], []).append((n_acc, -pr.weight_exp))
            n_acc += graph.population(pr.post).size
        nnz = pr.n_synapses
        for c in range(0, nnz, CHUNK):                   # in chunks: no temporary of the projection's size
            syn["target"][pos + c:pos + min(c + CHUNK, nnz)] = pr.indices[c:c + CHUNK] + offsets[pr.post]
        syn["w"][pos:pos + nnz] = w
        row_ptr[row:row + pr.n_pre + 1] = pr.indptr + pos
        lo, hi = active_rows(pr)
        lens = np.diff(pr.indptr[lo:hi + 1])
        fan = int(lens[0]) if len(lens) and (lens == lens[0]).all() else -1
        proj[k] = (row, pos, offsets[pr.pre], lo, hi, dense_at(pr, graph.population(pr.post).size, private),
                   delta, index[pr.post], pr.delay, fan, pool_factor(pr))
        pos += nnz
        row += pr.n_pre + 1
    pre = np.array([index[pr.pre] for pr in projs], np.int64)
    pout = np.argsort(pre, kind="stable").astype(np.int32)
    pout_ptr = np.zeros(len(pops) + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=len(pops)), out=pout_ptr[1:])
    neg_ptr = np.zeros(len(pops) + 1, np.int64)
    neg_base, neg_shift = [], []
    for k in range(len(pops)):
        for base, sh in neg.get(k, []):
            neg_base.append(base); neg_shift.append(sh)
        neg_ptr[k + 1] = len(neg_base)
    params, code, mode = kernel_table(graph)
    return FlatGraph(
        n=n, n_acc=n_acc, pop_of=np.repeat(np.arange(len(pops), dtype=np.int32), [p.size for p in pops]),
        params=params, code=code, kind=np.array([kind_code(p.model) for p in pops], np.int8), mode=mode,
        syn=syn, row_ptr=row_ptr, proj=proj, pout_ptr=pout_ptr, pout=pout,
        neg_ptr=neg_ptr, neg_base=np.array(neg_base, np.int64), neg_shift=np.array(neg_shift, np.int64),
        pop_start=np.array([offsets[p.name] for p in pops], np.int64),
        max_delay=int(max((pr.delay for pr in projs), default=1)),
        n_delayed=sum(pr.n_pre for pr in projs if pr.delay >= 2), acc_dtype=acc_dtype(graph))


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
