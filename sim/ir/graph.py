"""The AER graph IR: populations, CSR projections with delays, and a readout.

The single contract between training and every backend (docs/anchor-scale.md). Each node
kind is a small frozen dataclass validated on construction; a violation raises
:class:`IRError` naming the object and field.

Semantics (tick ``t``, integer):

* ``Population(name, size, model)`` — neurons of one model (``sim.neurons``): a
  source (``Input``: spikes given; ``Bias``: a spike every tick), a stateful neuron
  (``CubaLIF`` in loihi numerics; ``CubaLIFFloat``, ``LIF``, ``IF``, ``LI`` in float) or
  the stateless graded relay (``GradedRelay``, Loihi 2 graded spikes, Lava's
  ``GradedVec`` with vth = 0): its payload at tick ``t`` is its summed input
  ``g[t] = a[t]``, sent as a graded event iff ``g[t] ≠ 0``.
  A synapse from a graded neuron adds ``w · g`` (then the projection's exponent
  shift) instead of ``w``. Static bounds keep every backend exact: ``|g| < 2²³``
  (24-bit payload), ``Σ|w·g| < 2³¹`` per target (Lava's int32 dot product), and a
  LIF's ``|a| · 64 + 2²³ < 2³¹`` (Lava adds ``a_in << 6`` to u in int32) when du = 4095
  (u does not carry over ticks), ``|a| · 64 ≤ 2²⁴`` when du < 4095 (u stays within 24 bits,
  so it never drifts towards the int32 limit; see ``sim.numerics``).
* ``Projection`` — synapses ``pre[i] → post[indices[k]]`` for
  ``k ∈ [indptr[i], indptr[i+1])`` with weight ``weights[k]``; a spike of
  ``pre[i]`` at tick ``t`` adds ``weights[k] << weight_exp`` to the input of
  ``post[indices[k]]`` at tick ``t + delay`` (``delay ≥ 1``). A projection from a
  population to itself (recurrence) carries the previous model tick: delay 1.
* ``Readout`` — ``logits[c] = Σ_{t ∈ window} Σ_i weights[c, i] · s_pre[t, i]`` (``per_token``:
  ``logits[n, c] = Σ_{t ∈ window} Σ_i weights[c, i] · s_pre[t, n, i]``, one row of logits per token);
  the prediction is ``argmax_c logits`` (first index on ties). Computed off-chip.
* ``depth`` of a population — ticks by which it lags the zero-delay model:
  its spikes at tick ``t + depth`` equal the model's at ``t``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import networkx as nx
import numba
import numpy as np

from sim import numerics as nm
from sim.errors import IRError
from sim.ir.bounds import check_bounds
from sim.neurons.base import NeuronModel
from sim.neurons.catalog import MODELS
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


@numba.njit(cache=True)
def _first_non_canonical_row(indptr: np.ndarray, indices: np.ndarray) -> int:
    """First row whose post indices are not strictly increasing (duplicate or unsorted), else −1."""
    for r in range(len(indptr) - 1):
        for s in range(indptr[r] + 1, indptr[r + 1]):
            if indices[s] <= indices[s - 1]:
                return r
    return -1


def _finite(where: str, name: str, x: np.ndarray) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise IRError(where, name, "contains NaN or infinity")


@dataclass(frozen=True, eq=False)
class Population:
    """A group of neurons sharing one neuron model (``sim.neurons``); maps to one or more cores.

    ``model`` — a :class:`~sim.neurons.NeuronModel` instance (``Input()``, ``CubaLIF(du, dv, vth)``,
    ``GradedRelay()``, …) that owns the parameters and their validation; the graph checks that
    it exists in the graph's numerics. ``shape`` is the logical layout (e.g. tokens × channels),
    ``prod == size``.
    """

    name: str
    size: int
    model: NeuronModel
    shape: tuple[int, ...] = ()
    depth: int = 0
    role: str = ""

    def __post_init__(self) -> None:
        where = f"population '{self.name}'"
        if not self.name or not isinstance(self.name, str):
            raise IRError("population", "name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise IRError(where, "size", f"must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, NeuronModel):
            raise IRError(where, "model", f"must be a neuron model from sim.neurons ({', '.join(sorted(MODELS))}), "
                          f"got {self.model!r}")
        shape = tuple(int(s) for s in self.shape) or (int(self.size),)
        object.__setattr__(self, "shape", shape)
        if int(np.prod(shape)) != self.size:
            raise IRError(where, "shape", f"{shape} has {int(np.prod(shape))} elements, size is {self.size}")
        if not isinstance(self.depth, (int, np.integer)) or self.depth < 0:
            raise IRError(where, "depth", f"must be an integer ≥ 0, got {self.depth!r}")

    @property
    def is_source(self) -> bool:
        return self.model.source

    @property
    def is_graded(self) -> bool:
        return self.model.relay

    def check_numerics(self, numerics: str) -> None:
        """Raise IRError unless the neuron model exists in the numeric mode."""
        if numerics not in self.model.numerics:
            raise IRError(f"population '{self.name}'", "model", f"{type(self.model).__name__} has no {numerics} "
                          f"form (it exists in {', '.join(self.model.numerics)} numerics)")


@dataclass(frozen=True, eq=False)
class Projection:
    """Static synapses pre → post in CSR form, one integer delay (ticks ≥ 1)."""

    name: str
    pre: str
    post: str
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    delay: int = 1
    weight_exp: int = 0

    def __post_init__(self) -> None:
        where = f"projection '{self.name}'"
        indptr = np.asarray(self.indptr)
        indices = np.asarray(self.indices)
        weights = np.asarray(self.weights)
        for fname, arr in (("indptr", indptr), ("indices", indices)):
            if arr.ndim != 1:
                raise IRError(where, fname, f"must be 1-D, got shape {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise IRError(where, fname, f"must have an integer dtype, got {arr.dtype}")
        if weights.ndim != 1:
            raise IRError(where, "weights", f"must be 1-D, got shape {weights.shape}")
        if not (np.issubdtype(weights.dtype, np.integer) or np.issubdtype(weights.dtype, np.floating)):
            raise IRError(where, "weights", f"must be integer or float, got {weights.dtype}")
        _finite(where, "weights", weights)
        if len(indptr) < 2 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise IRError(where, "indptr", "must start at 0 and be non-decreasing with ≥ 2 entries")
        if indptr[-1] != len(indices):
            raise IRError(where, "indptr", f"last entry {indptr[-1]} ≠ number of synapses {len(indices)}")
        if len(weights) != len(indices):
            raise IRError(where, "weights", f"length {len(weights)} ≠ number of synapses {len(indices)}")
        if not isinstance(self.delay, (int, np.integer)) or not 1 <= self.delay <= nm.MAX_DELAY:
            raise IRError(where, "delay", f"must be an integer in [1, {nm.MAX_DELAY}], got {self.delay!r}")
        if not isinstance(self.weight_exp, (int, np.integer)) or not -8 <= self.weight_exp <= 7:
            raise IRError(where, "weight_exp", f"must be an integer in [-8, 7], got {self.weight_exp!r}")
        object.__setattr__(self, "indptr", indptr.astype(np.int64, copy=False))
        object.__setattr__(self, "indices", indices.astype(np.int32, copy=False))
        object.__setattr__(self, "weights", weights)

    @property
    def n_synapses(self) -> int:
        return int(len(self.indices))

    @property
    def n_pre(self) -> int:
        return int(len(self.indptr) - 1)

    def to_dense(self, n_post: int) -> np.ndarray:
        """Weight matrix of shape (n_post, n_pre), Lava's orientation."""
        w = np.zeros((n_post, self.n_pre), dtype=self.weights.dtype)
        rows = np.repeat(np.arange(self.n_pre), np.diff(self.indptr))
        w[self.indices, rows] = self.weights
        return w

    @classmethod
    def from_dense(cls, name: str, pre: str, post: str, w: np.ndarray, **kw) -> "Projection":
        """Build from a (n_post, n_pre) matrix; only non-zero weights become synapses."""
        w = np.asarray(w)
        wt = w.T                                     # rows = pre
        mask = wt != 0
        indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
        pre_idx, post_idx = np.nonzero(mask)
        return cls(name, pre, post, indptr, post_idx, wt[pre_idx, post_idx], **kw)

    def check_against(self, pre: Population, post: Population, numerics: str) -> None:
        where = f"projection '{self.name}'"
        if self.n_pre != pre.size:
            raise IRError(where, "indptr", f"has {self.n_pre} rows, pre population '{pre.name}' has {pre.size} neurons")
        if self.n_synapses and (self.indices.min() < 0 or self.indices.max() >= post.size):
            bad = int(self.indices.max() if self.indices.max() >= post.size else self.indices.min())
            raise IRError(where, "indices", f"index {bad} out of range for post population '{post.name}' of size {post.size}")
        bad = _first_non_canonical_row(self.indptr, self.indices)
        if bad >= 0:      # duplicates would be summed before Lava's 8-bit clip but after ours
            raise IRError(where, "indices", f"row {bad} is not strictly increasing: each row must list distinct "
                          f"post neurons in ascending order (canonical CSR)")
        if post.is_source:
            raise IRError(where, "post", f"'{post.name}' is a {post.model.kind} population; it cannot receive synapses")
        problem = nm.ARITHMETIC[numerics].check_weights(self.weights)
        if problem:
            raise IRError(where, "weights", problem)


@dataclass(frozen=True, eq=False)
class Readout:
    """Off-chip linear readout: logits = Σ_{t∈[start, stop)} W · s_pre[t] (W: (classes, neurons));
    ``per_token``: the pre population is (tokens, C) and each token has its logits,
    logits_n = Σ_{t∈[start, stop)} W · s_pre[t, n, :] (W: (classes, C), shared by the tokens)."""

    pre: str
    weights: np.ndarray
    start: int
    stop: int
    per_token: bool = False

    def __post_init__(self) -> None:
        w = np.asarray(self.weights)
        if w.ndim != 2:
            raise IRError("readout", "weights", f"must be 2-D (classes, neurons), got shape {w.shape}")
        _finite("readout", "weights", w)
        if not 0 <= self.start < self.stop:
            raise IRError("readout", "start", f"window [{self.start}, {self.stop}) is empty or negative")
        object.__setattr__(self, "weights", w)

    def logits(self, spikes: np.ndarray) -> np.ndarray:
        """spikes: (batch, ticks, n_pre) → logits (batch, classes); per_token: (batch, tokens, classes)."""
        counts = spikes[:, self.start:self.stop].sum(axis=1).astype(np.int64 if np.issubdtype(self.weights.dtype, np.integer) else np.float64)
        if self.per_token:
            counts = counts.reshape(len(counts), -1, self.weights.shape[1])
        return counts @ self.weights.T.astype(counts.dtype)


@dataclass(frozen=True, eq=False)
class AerGraph:
    """Populations (topological order) + projections + readout, one numeric mode.

    ``timesteps`` is the length of the input (model ticks); ``ticks`` is how long
    a backend must run so every population sees all of it: timesteps + max depth.
    """

    numerics: str
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    readout: Readout | None
    timesteps: int
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.numerics not in nm.NUMERICS:
            raise IRError("graph", "numerics", f"must be one of {nm.NUMERICS}, got {self.numerics!r}")
        if not isinstance(self.timesteps, (int, np.integer)) or self.timesteps < 1:
            raise IRError("graph", "timesteps", f"must be a positive integer, got {self.timesteps!r}")
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "projections", tuple(self.projections))
        pops: dict[str, Population] = {}
        for p in self.populations:
            if p.name in pops:
                raise IRError(f"population '{p.name}'", "name", "is used twice")
            p.check_numerics(self.numerics)
            pops[p.name] = p
        seen: set[str] = set()
        for pr in self.projections:
            if pr.name in seen:
                raise IRError(f"projection '{pr.name}'", "name", "is used twice")
            seen.add(pr.name)
            for end in ("pre", "post"):
                if getattr(pr, end) not in pops:
                    raise IRError(f"projection '{pr.name}'", end, f"names unknown population '{getattr(pr, end)}'")
            pr.check_against(pops[pr.pre], pops[pr.post], self.numerics)
        if self.arith.fixed_point:                     # int32 bounds of Lava's fixed-point LIF
            check_bounds(self)
        if self.readout is not None:
            if self.readout.pre not in pops:
                raise IRError("readout", "pre", f"names unknown population '{self.readout.pre}'")
            pre, cols = pops[self.readout.pre], self.readout.weights.shape[1]
            if self.readout.per_token and (len(pre.shape) < 2 or pre.shape[-1] != cols):
                raise IRError("readout", "weights", f"has {cols} columns, a per-token readout needs the channels "
                              f"per token of population '{pre.name}' (shape {pre.shape})")
            if not self.readout.per_token and cols != pre.size:
                raise IRError("readout", "weights", f"has {cols} columns, "
                              f"population '{self.readout.pre}' has {pre.size} neurons")
            if self.readout.stop > self.ticks:
                raise IRError("readout", "stop", f"{self.readout.stop} is past the last tick {self.ticks}")

    def check_has_neurons(self, where: str) -> None:
        """IRError naming ``where`` when no population is a neuron (only sources: Input, Bias): such a graph
        has nothing to simulate, map or cost."""
        if not any(not p.is_source for p in self.populations):
            raise IRError(where, "populations", f"no neuron population, only sources "
                                                f"({', '.join(p.name for p in self.populations) or 'none'}): "
                                                f"nothing to simulate")

    # -- views -----------------------------------------------------------------
    @property
    def ticks(self) -> int:
        return int(self.timesteps + max((p.depth for p in self.populations), default=0))

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population named {name!r}; have {[p.name for p in self.populations]}")

    @property
    def arith(self) -> nm.Arithmetic:
        """The synapse and state arithmetic of the graph's numerics."""
        return nm.ARITHMETIC[self.numerics]

    @property
    def inputs(self) -> tuple[Population, ...]:
        """Populations whose spikes are given with a run."""
        return tuple(p for p in self.populations if p.model.needs_input)

    @property
    def sources(self) -> tuple[Population, ...]:
        """Populations that emit spikes without input (given or generated)."""
        return tuple(p for p in self.populations if p.is_source)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return sum(pr.n_synapses for pr in self.projections)

    def offsets(self) -> dict[str, int]:
        """Start index of each population in the concatenated neuron space."""
        out, k = {}, 0
        for p in self.populations:
            out[p.name] = k
            k += p.size
        return out

    def to_networkx(self) -> nx.MultiDiGraph:
        """Population graph: nodes carry Population fields, edges carry projections."""
        g = nx.MultiDiGraph(numerics=self.numerics, timesteps=self.timesteps)
        for p in self.populations:
            g.add_node(p.name, population=p, size=p.size, model=p.model.kind, depth=p.depth)
        for pr in self.projections:
            g.add_edge(pr.pre, pr.post, key=pr.name, projection=pr, delay=pr.delay, synapses=pr.n_synapses)
        return g

    def check_delays(self) -> None:
        """Raise IRError unless every projection's delay equals post.depth − pre.depth (+ 1 for a
        projection from a population to itself: it carries the previous model tick)."""
        pops = {p.name: p for p in self.populations}
        for pr in self.projections:
            lag = pops[pr.post].depth - pops[pr.pre].depth + (pr.pre == pr.post)
            if pr.delay != lag:
                raise IRError(f"projection '{pr.name}'", "delay",
                              f"is {pr.delay} but the depths of '{pr.pre}' and '{pr.post}' differ by {lag}")


def balance_delays(populations: Iterable[Population], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Depth of each population = longest path from the inputs, one tick per hop.

    A projection's delay is then depth(post) − depth(pre) ≥ 1, so every
    population lags the zero-delay model by exactly its depth.
    """
    g = nx.DiGraph()
    g.add_nodes_from(p.name for p in populations)
    g.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(g):
        raise IRError("graph", "projections", f"contain a cycle: {nx.find_cycle(g)}")
    depth: dict[str, int] = {}
    for n in nx.topological_sort(g):
        depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    return depth
