"""Weights: one lane's Lava CSR matrices, block-diagonal lanes, and the graph without synapses.

Memory. A projection's weights go to Lava as a CSR matrix in Lava's
(post, pre) orientation with the smallest integer data type that holds them (int8
for most), int32 indices, and — for one lane — no block-diagonal copy. Lava's
``Sparse`` keeps a private copy of the matrix it is given as its ``weights`` Var's
initial value; ``to_lava`` puts the given matrix back in its place, so a matrix
backed by a memory-mapped file (``LavaWeights``, used by the worker) stays on disk
(page cache, shared by every OS process) instead of being copied into the builder.
Each Lava ``Sparse``/``DelaySparse`` OS process then makes its own int32 copy on its
first tick (``clip_weights``/``truncate_weights``: 8 bytes per synapse kept, ~24
while converting).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sps

from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.catalog import model_from_dict


@dataclass(frozen=True)
class Link:
    """A projection without its synapses."""

    name: str
    pre: str
    post: str
    delay: int
    weight_exp: int
    n_synapses: int


@dataclass(frozen=True)
class GraphShape:
    """Populations, projections without synapses, timing: all ``to_lava`` needs besides weights.

    Duck-types the parts of :class:`~sim.ir.AerGraph` the exporter reads
    (``numerics, timesteps, ticks, populations, projections, inputs, population``).
    """

    numerics: str
    timesteps: int
    ticks: int
    populations: tuple[Population, ...]
    projections: tuple[Link, ...]

    @classmethod
    def of(cls, graph: AerGraph) -> GraphShape:
        links = tuple(Link(pr.name, pr.pre, pr.post, int(pr.delay), int(pr.weight_exp), int(pr.n_synapses))
                      for pr in graph.projections)
        return cls(graph.numerics, int(graph.timesteps), int(graph.ticks), tuple(graph.populations), links)

    @property
    def inputs(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.model.needs_input)

    @property
    def sources(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.is_source)

    @property
    def n_synapses(self) -> int:
        return sum(pr.n_synapses for pr in self.projections)

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    def to_json(self) -> str:
        pops = [{"name": p.name, "size": int(p.size), "model": p.model.to_dict(),
                 "shape": [int(s) for s in p.shape], "depth": int(p.depth), "role": p.role}
                for p in self.populations]
        return json.dumps({"numerics": self.numerics, "timesteps": self.timesteps, "ticks": self.ticks,
                           "populations": pops, "projections": [vars(pr) for pr in self.projections]})

    @classmethod
    def from_json(cls, text: str) -> GraphShape:
        d = json.loads(text)
        pops = tuple(Population(**{**p, "shape": tuple(p["shape"]), "model": model_from_dict(p["model"])})
                     for p in d["populations"])
        return cls(d["numerics"], d["timesteps"], d["ticks"], pops, tuple(Link(**pr) for pr in d["projections"]))


def weight_dtype(weights: np.ndarray) -> np.dtype:
    """The smallest signed integer type holding every weight."""
    lo, hi = (int(weights.min()), int(weights.max())) if weights.size else (0, 0)
    for t in (np.int8, np.int16, np.int32):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return np.dtype(t)
    raise ValueError(f"weights in [{lo}, {hi}] do not fit int32")


def lava_csr(pr: Projection, n_post: int) -> sps.csr_matrix:
    """One lane's (n_post, n_pre) CSR in Lava's orientation: compact data type, int32 indices.

    The IR stores pre-major CSR (row = pre neuron); its transpose's CSR is the CSC of that
    matrix (one O(synapses) pass, rows stay sorted)."""
    w = pr.weights.astype(weight_dtype(pr.weights), copy=False)
    pre_major = sps.csr_matrix((w, pr.indices.astype(np.int32, copy=False), pr.indptr), shape=(pr.n_pre, n_post))
    csc = pre_major.tocsc()
    return sps.csr_matrix((csc.data, csc.indices.astype(np.int32, copy=False),
                           csc.indptr.astype(np.int32, copy=False)), shape=(n_post, pr.n_pre), copy=False)


def block_diagonal(w: sps.csr_matrix, batch: int) -> sps.csr_matrix:
    """``batch`` copies of ``w`` on the diagonal (CSR, same data type; ``w`` itself for one lane)."""
    if batch == 1:
        return w
    n_post, n_pre = w.shape
    nnz = w.nnz
    if batch * max(nnz, n_pre, n_post) >= 2**31:
        raise ValueError(f"{batch} lanes of a {n_post}×{n_pre} matrix with {nnz} synapses overflow int32 indices")
    lanes = np.arange(batch, dtype=np.int64)
    indptr = np.concatenate([(w.indptr[None, :-1] + (lanes * nnz)[:, None]).ravel(), [batch * nnz]]).astype(np.int32)
    indices = (w.indices[None, :] + (lanes * n_pre)[:, None].astype(np.int32)).ravel().astype(np.int32)
    return sps.csr_matrix((np.tile(w.data, batch), indices, indptr), shape=(batch * n_post, batch * n_pre),
                          copy=False)


def batched_weights(pr: Projection, n_post: int, batch: int) -> sps.csr_matrix:
    """(B·n_post, B·n_pre) block-diagonal CSR in Lava's (post, pre) orientation."""
    return block_diagonal(lava_csr(pr, n_post), batch)


class LavaWeights:
    """One lane's Lava weight matrices as .npy files in a directory, read back memory-mapped.

    ``save`` writes ``{k}.data.npy, {k}.indices.npy, {k}.indptr.npy`` per projection ``k``
    and ``shape.json`` (:class:`GraphShape`); ``__call__(link, batch)`` returns the CSR —
    memory-mapped (page cache, shared by every process forked later) for one lane,
    block-diagonal in memory for more.
    """

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.shape = GraphShape.from_json((self.dir / "shape.json").read_text())
        self._index = {pr.name: k for k, pr in enumerate(self.shape.projections)}
        self._sizes = {p.name: p.size for p in self.shape.populations}

    @staticmethod
    def save(graph: AerGraph, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sizes = {p.name: p.size for p in graph.populations}
        for k, pr in enumerate(graph.projections):
            w = lava_csr(pr, sizes[pr.post])
            for part in ("data", "indices", "indptr"):
                np.save(d / f"{k}.{part}.npy", getattr(w, part))
            del w
        (d / "shape.json").write_text(GraphShape.of(graph).to_json())
        return d

    def __call__(self, link, batch: int = 1) -> sps.csr_matrix:
        k = self._index[link.name]
        data, indices, indptr = (np.load(self.dir / f"{k}.{part}.npy", mmap_mode="r")
                                 for part in ("data", "indices", "indptr"))
        shape = (self._sizes[link.post], self._sizes[link.pre])
        return block_diagonal(sps.csr_matrix((data, indices, indptr), shape=shape, copy=False), batch)
