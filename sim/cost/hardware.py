"""Loihi 2 resource model and a mapper that places populations on as many cores and chips as needed.

Limits per neuro-core (each constant names its public source; "primary" = the
vendor's or the designers' own publication about that chip, "secondary" = a
number from the Loihi 1 paper used for Loihi 2 or a stated modelling assumption):

* ``NEURONS_PER_CORE = 8192`` — Intel, "Taking Neuromorphic Computing to the Next
  Level with Loihi 2", technology brief, 2021 (primary): up to 8,192 neurons/core.
* ``CORES_PER_CHIP = 128`` — same brief (primary): 128 neuro-cores per chip.
* ``SYNAPSE_MEMORY_BITS = 192 KiB · 8`` — same brief (primary): 192 KB of
  synaptic memory per core.
* ``BITS_PER_SYNAPSE = 16`` — assumption (secondary): an 8-bit weight plus ~8 bits
  of compressed index per synapse; Loihi's real encodings vary, so
  ``synapses/core = 192 KiB·8 / 16 = 98,304``.
* ``FAN_IN_AXONS = 4096``, ``FAN_OUT_AXONS = 4096`` — Davies et al., "Loihi: A
  Neuromorphic Manycore Processor with On-Chip Learning", IEEE Micro 38(1), 2018
  (secondary for Loihi 2: the Loihi 1 per-core input/output axon limits).

Mapping: populations in graph order; every population except host inputs
(``kind == "input"``: spike sources fed from the host, not cores) is cut into
contiguous slices, each the largest that keeps its core within all four limits:

* neurons ≤ ``neurons_per_core`` (or a smaller per-population cap, below);
* incoming synapses ≤ ``synapses_per_core``;
* fan-in: distinct presynaptic neurons ≤ ``fan_in_per_core``;
* fan-out: Σ over the core's neurons of their distinct destination cores
  ≤ ``fan_out_per_core``. It depends on where the destinations land, so it is
  checked after placement; a population with a core over the limit gets the cap
  ``neurons · limit / fan-out`` and the placement is redone.

Cores are numbered in placement order and fill chips in order: core ``c`` is on
chip ``c // cores_per_chip``, so ``chips_needed = ⌈cores / cores_per_chip⌉``.
``Loihi2.chips`` is an optional cap (``None``: as many chips as the graph
needs); a graph needing more is refused with a :class:`MappingError` naming the
count it needs.

Memory: the mapper streams over projections. Per population it builds only that
population's incoming presynaptic ids (int32, by counting sort over its incoming
CSR projections) for the fan-in counts, and the destination cores of every
neuron come from one pass per projection (a row's targets are ascending and a
population's cores are contiguous, so its distinct cores are runs). Peak memory
beyond the graph ≈ 4 bytes × the largest population's incoming synapses, plus
O(neurons + (neuron, destination core) pairs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from sim.ir.graph import AerGraph, Population, Projection
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

NEURONS_PER_CORE = 8192


CORES_PER_CHIP = 128


SYNAPSE_MEMORY_BITS = 192 * 1024 * 8


BITS_PER_SYNAPSE = 16


FAN_IN_AXONS = 4096


FAN_OUT_AXONS = 4096


@dataclass(frozen=True)
class Loihi2:
    """Per-core limits and an optional cap on chips (defaults: see module docstring).

    ``chips=None`` places the graph on as many chips as it needs; an integer caps it.
    """

    neurons_per_core: int = NEURONS_PER_CORE
    synapses_per_core: int = SYNAPSE_MEMORY_BITS // BITS_PER_SYNAPSE
    fan_in_per_core: int = FAN_IN_AXONS
    fan_out_per_core: int = FAN_OUT_AXONS
    cores_per_chip: int = CORES_PER_CHIP
    chips: int | None = None

    def __post_init__(self) -> None:
        for name in ("neurons_per_core", "synapses_per_core", "fan_in_per_core", "fan_out_per_core",
                     "cores_per_chip", "chips"):
            x = getattr(self, name)
            if name == "chips" and x is None:
                continue
            if not isinstance(x, int) or isinstance(x, bool) or x < 1:
                raise ValueError(f"Loihi2.{name} must be a positive integer, got {x!r}")


class MappingError(ValueError):
    """The graph does not fit the configured hardware; says how much it needs."""


@dataclass
class Mapping:
    """Placement: ``core_of[global neuron] = core`` (−1 for host inputs); per-core usage.

    Destination cores of global neuron ``i`` (ascending, distinct):
    ``dest_core[dest_ptr[i]:dest_ptr[i + 1]]`` — one spike message to each.
    """

    hw: Loihi2
    core_of: np.ndarray            # int32 per global neuron
    core_population: list[str]
    neurons: np.ndarray            # per core
    synapses: np.ndarray           # incoming synapses stored per core
    fan_in: np.ndarray             # distinct presynaptic neurons per core
    fan_out: np.ndarray            # Σ over the core's neurons of their distinct destination cores
    dest_ptr: np.ndarray = field(repr=False, default=None)    # int64, n_neurons + 1
    dest_core: np.ndarray = field(repr=False, default=None)   # int32

    @property
    def cores(self) -> int:
        return int(len(self.neurons))

    @property
    def chips_needed(self) -> int:
        """``⌈cores / cores_per_chip⌉``: the chips the placement occupies."""
        return int(-(-self.cores // self.hw.cores_per_chip))

    @property
    def chips(self) -> int:
        """Chips of the system: the cap when one is set, else ``chips_needed``."""
        return self.hw.chips if self.hw.chips is not None else self.chips_needed

    def chip_of_core(self, core: np.ndarray | int) -> np.ndarray | int:
        return np.asarray(core) // self.hw.cores_per_chip

    def dest_cores(self, neuron: int) -> np.ndarray:
        """Destination cores of one global neuron."""
        return self.dest_core[self.dest_ptr[neuron]:self.dest_ptr[neuron + 1]]

    def utilisation(self) -> dict[str, np.ndarray]:
        """Per core, the fraction of each limit used."""
        return {"neurons": self.neurons / self.hw.neurons_per_core,
                "synapses": self.synapses / self.hw.synapses_per_core,
                "fan_in": self.fan_in / self.hw.fan_in_per_core,
                "fan_out": self.fan_out / self.hw.fan_out_per_core}


@numba.njit(cache=True)
def _count_post(indices: np.ndarray, counts: np.ndarray) -> None:
    for k in range(len(indices)):
        counts[indices[k]] += 1


@numba.njit(cache=True)
def _scatter_pre(indptr: np.ndarray, indices: np.ndarray, pre_offset: int, cursor: np.ndarray,
                 out: np.ndarray) -> None:
    """Counting-sort transpose: global pre id of every synapse, grouped by post neuron."""
    for r in range(len(indptr) - 1):
        for k in range(indptr[r], indptr[r + 1]):
            c = indices[k]
            out[cursor[c]] = pre_offset + r
            cursor[c] += 1


@numba.njit(cache=True)
def _count_distinct(values: np.ndarray, stamp: np.ndarray, tag: np.ndarray) -> int:
    """Distinct entries of ``values`` (ids < len(stamp)); ``tag[0]`` is bumped per call."""
    tag[0] += 1
    t = tag[0]
    n = 0
    for v in values:
        if stamp[v] != t:
            stamp[v] = t
            n += 1
    return n


@numba.njit(cache=True)
def _gather_row(indptr, indices, core_of, post_offset, r, buf) -> int:
    """Target cores of row ``r`` into ``buf``, ascending (sorted only if not already)."""
    m = 0
    ordered = True
    for k in range(indptr[r], indptr[r + 1]):
        c = core_of[post_offset + indices[k]]
        if m > 0 and c < buf[m - 1]:
            ordered = False
        buf[m] = c
        m += 1
    if not ordered:
        buf[:m].sort()
    return m


@numba.njit(cache=True)
def row_core_runs(indptr: np.ndarray, indices: np.ndarray, core_of: np.ndarray, post_offset: int,
                  want_counts: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pre row: its distinct target cores (ascending) and, optionally, synapses to each.

    Returns CSR ``(ptr int64, cores int32, counts int32)``; counts is empty unless asked for.
    """
    n = len(indptr) - 1
    longest = 0
    for r in range(n):
        longest = max(longest, indptr[r + 1] - indptr[r])
    buf = np.empty(longest, np.int32)
    ptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        m = _gather_row(indptr, indices, core_of, post_offset, r, buf)
        runs = 0
        for j in range(m):
            if j == 0 or buf[j] != buf[j - 1]:
                runs += 1
        ptr[r + 1] = ptr[r] + runs
    cores = np.empty(ptr[n], np.int32)
    counts = np.zeros(ptr[n] if want_counts else 0, np.int32)
    for r in range(n):
        m = _gather_row(indptr, indices, core_of, post_offset, r, buf)
        w = ptr[r] - 1
        for j in range(m):
            if j == 0 or buf[j] != buf[j - 1]:
                w += 1
                cores[w] = buf[j]
            if want_counts:
                counts[w] += 1
    return ptr, cores, counts


@numba.njit(cache=True)
def _union_rows(pa: np.ndarray, a: np.ndarray, pb: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise union of two CSR sets of ascending distinct ints."""
    n = len(pa) - 1
    ptr = np.zeros(n + 1, np.int64)
    out = np.empty(len(a) + len(b), np.int32)
    w = 0
    for r in range(n):
        i, j, ie, je = pa[r], pb[r], pa[r + 1], pb[r + 1]
        while i < ie or j < je:
            if j >= je or (i < ie and a[i] < b[j]):
                v = a[i]
                i += 1
            elif i >= ie or b[j] < a[i]:
                v = b[j]
                j += 1
            else:
                v = a[i]
                i += 1
                j += 1
            out[w] = v
            w += 1
        ptr[r + 1] = w
    return ptr, out[:w].copy()


def _slices(p: Population, incoming: list[Projection], offsets: dict[str, int], hw: Loihi2, cap: int,
            stamp: np.ndarray, tag: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Greedy cut of one population into cores: ``[(start, stop, synapses, fan-in), ...]``."""
    per_neuron = np.zeros(p.size, np.int64)
    for pr in incoming:
        _count_post(pr.indices, per_neuron)
    syn_cum = np.zeros(p.size + 1, np.int64)            # synapses into neurons [0, k)
    np.cumsum(per_neuron, out=syn_cum[1:])
    del per_neuron
    pre = np.empty(int(syn_cum[-1]), np.int32)         # global pre id per synapse, grouped by post
    cursor = syn_cum[:-1].copy()
    for pr in incoming:
        _scatter_pre(pr.indptr, pr.indices, offsets[pr.pre], cursor, pre)
    del cursor
    out, start = [], 0
    while start < p.size:
        # largest stop within neuron and synapse limits, then shrink until fan-in fits
        stop = min(p.size, start + cap)
        stop = min(stop, int(np.searchsorted(syn_cum, syn_cum[start] + hw.synapses_per_core, side="right")) - 1)
        if stop <= start:
            raise MappingError(f"population '{p.name}': neuron {start} alone has "
                               f"{syn_cum[start + 1] - syn_cum[start]} incoming synapses, more than the "
                               f"{hw.synapses_per_core} a core can store")
        while True:
            distinct = _count_distinct(pre[syn_cum[start]:syn_cum[stop]], stamp, tag)
            if distinct <= hw.fan_in_per_core or stop - start == 1:
                break
            stop = start + max(1, (stop - start) * hw.fan_in_per_core // distinct)
        if distinct > hw.fan_in_per_core:
            raise MappingError(f"population '{p.name}': neuron {start} has {distinct} presynaptic "
                               f"neurons, more than the fan-in limit {hw.fan_in_per_core}")
        out.append((start, stop, int(syn_cum[stop] - syn_cum[start]), distinct))
        start = stop
    return out


def destinations(graph: AerGraph, core_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(ptr int64, cores int32)`` of every global neuron's distinct destination cores, ascending."""
    offsets = graph.offsets()
    deg = np.zeros(graph.n_neurons, np.int64)
    parts: list[np.ndarray] = []
    for p in graph.populations:
        ptr = cores = None
        for pr in (pr for pr in graph.projections if pr.pre == p.name):
            rp, rc, _ = row_core_runs(pr.indptr, pr.indices, core_of, offsets[pr.post], False)
            ptr, cores = (rp, rc) if ptr is None else _union_rows(ptr, cores, rp, rc)
        if ptr is not None:
            deg[offsets[p.name]:offsets[p.name] + p.size] = np.diff(ptr)
            parts.append(cores)
    dest_ptr = np.zeros(graph.n_neurons + 1, np.int64)
    np.cumsum(deg, out=dest_ptr[1:])
    return dest_ptr, (np.concatenate(parts) if parts else np.zeros(0, np.int32))


def map_graph(graph: AerGraph, hw: Loihi2 | None = None) -> Mapping:
    """Place every non-input population on cores (splitting as needed) and the cores on chips.

    Fan-out depends on where the destinations land, so it is checked after
    placement: a population with a core over the limit gets a smaller per-core
    neuron cap (neurons · limit / fan-out) and the placement is redone (only that
    population is re-cut). Raises :class:`MappingError` if a single neuron breaks
    a limit or the cores need more than ``hw.chips`` chips.
    """
    hw = hw or Loihi2()
    offsets = graph.offsets()
    incoming: dict[str, list[Projection]] = {p.name: [] for p in graph.populations}
    for pr in graph.projections:
        incoming[pr.post].append(pr)
    stamp, tag = np.zeros(graph.n_neurons, np.int64), np.zeros(1, np.int64)
    cut: dict[str, tuple[int, list]] = {}                 # population → (cap, slices)
    caps: dict[str, int] = {}
    for _ in range(32):
        core_of = np.full(graph.n_neurons, -1, np.int32)
        core_pop, stats = [], []
        for p in graph.populations:
            if p.is_source:
                continue
            cap = caps.get(p.name, hw.neurons_per_core)
            if cut.get(p.name, (None,))[0] != cap:
                cut[p.name] = (cap, _slices(p, incoming[p.name], offsets, hw, cap, stamp, tag))
            for start, stop, syn, fan_in in cut[p.name][1]:
                core_of[offsets[p.name] + start: offsets[p.name] + stop] = len(stats)
                core_pop.append(p.name)
                stats.append((stop - start, syn, fan_in))
        n_cores = len(stats)
        dest_ptr, dest_core = destinations(graph, core_of)
        on_chip = core_of >= 0
        fan_out = np.bincount(core_of[on_chip], weights=np.diff(dest_ptr)[on_chip], minlength=n_cores).astype(np.int64)
        neurons, synapses, fan_in = (np.array([s[k] for s in stats], np.int64).reshape(-1) for k in range(3))
        m = Mapping(hw, core_of, core_pop, neurons, synapses, fan_in, fan_out, dest_ptr, dest_core)
        over = np.nonzero(fan_out > hw.fan_out_per_core)[0]
        if not len(over):
            if hw.chips is not None and m.chips_needed > hw.chips:
                raise MappingError(f"graph needs {n_cores} cores = {m.chips_needed} chips of {hw.cores_per_chip} "
                                   f"cores; --chips caps it at {hw.chips}")
            return m
        used = dict(caps)
        for c in over:
            name = core_pop[c]
            if neurons[c] == 1:
                raise MappingError(f"core {c} ('{name}') sends to {fan_out[c]} (neuron, core) destinations, "
                                   f"more than the fan-out limit {hw.fan_out_per_core}")
            cap = max(1, int(neurons[c]) * hw.fan_out_per_core // int(fan_out[c]))
            caps[name] = min(caps.get(name, hw.neurons_per_core), cap, used.get(name, hw.neurons_per_core) - 1)
    raise MappingError(f"fan-out placement did not converge for populations {sorted(caps)}")


def chip_grid_columns(chips: int) -> int:
    """Columns of the near-square planar grid chips are laid on (row-major): ``⌈√chips⌉``."""
    return max(1, math.isqrt(max(chips, 1) - 1) + 1)
