"""Loihi 2 resource model and a mapper that places populations on cores and chips.

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

Mapping: populations in graph order; each LIF population is cut into contiguous
slices, every slice the largest that keeps its core within all four limits
(neurons, synapse memory, distinct presynaptic neurons = fan-in axons, distinct
destination cores per source = fan-out, checked after placement and fixed by
re-placing with smaller slices); cores fill
chips in order. Input populations are spike sources fed from the host, not cores.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.ir import AerGraph

NEURONS_PER_CORE = 8192
CORES_PER_CHIP = 128
SYNAPSE_MEMORY_BITS = 192 * 1024 * 8
BITS_PER_SYNAPSE = 16
FAN_IN_AXONS = 4096
FAN_OUT_AXONS = 4096


@dataclass(frozen=True)
class Loihi2:
    """Per-core and per-system limits (defaults: see module docstring)."""

    neurons_per_core: int = NEURONS_PER_CORE
    synapses_per_core: int = SYNAPSE_MEMORY_BITS // BITS_PER_SYNAPSE
    fan_in_per_core: int = FAN_IN_AXONS
    fan_out_per_core: int = FAN_OUT_AXONS
    cores_per_chip: int = CORES_PER_CHIP
    chips: int = 1

    def __post_init__(self) -> None:
        for name in ("neurons_per_core", "synapses_per_core", "fan_in_per_core", "fan_out_per_core",
                     "cores_per_chip", "chips"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Loihi2.{name} must be a positive integer, got {getattr(self, name)!r}")


class MappingError(ValueError):
    """The graph does not fit the configured hardware; says how much it needs."""


@dataclass
class Mapping:
    """Placement: ``core_of[global neuron] = core`` (−1 for host inputs); per-core usage."""

    hw: Loihi2
    core_of: np.ndarray
    core_population: list[str]
    neurons: np.ndarray            # per core
    synapses: np.ndarray           # incoming synapses stored per core
    fan_in: np.ndarray             # distinct presynaptic neurons per core
    fan_out: np.ndarray            # max over the core's neurons of distinct destination cores... summed per core
    dest_cores: np.ndarray = field(repr=False, default=None)   # per global neuron: destination cores

    @property
    def cores(self) -> int:
        return int(len(self.neurons))

    @property
    def chips(self) -> int:
        return int(-(-self.cores // self.hw.cores_per_chip))

    def chip_of_core(self, core: np.ndarray | int) -> np.ndarray | int:
        return np.asarray(core) // self.hw.cores_per_chip

    def utilisation(self) -> dict[str, np.ndarray]:
        """Per core, the fraction of each limit used."""
        return {"neurons": self.neurons / self.hw.neurons_per_core,
                "synapses": self.synapses / self.hw.synapses_per_core,
                "fan_in": self.fan_in / self.hw.fan_in_per_core,
                "fan_out": self.fan_out / self.hw.fan_out_per_core}


def _incoming(graph: AerGraph) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per population: (global pre index, local post index) of every incoming synapse."""
    offsets = graph.offsets()
    pre_of = {p.name: [] for p in graph.populations}
    post_of = {p.name: [] for p in graph.populations}
    for pr in graph.projections:
        rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr)) + offsets[pr.pre]
        pre_of[pr.post].append(rows)
        post_of[pr.post].append(pr.indices.astype(np.int64))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    return [cat(pre_of[p.name]) for p in graph.populations], [cat(post_of[p.name]) for p in graph.populations]


def map_graph(graph: AerGraph, hw: Loihi2 | None = None) -> Mapping:
    """Place every LIF population on cores (splitting as needed) and cores on chips.

    Fan-out depends on where the destinations land, so it is checked after
    placement: a population with a core over the limit gets a smaller per-core
    neuron cap (neurons · limit / fan-out) and the placement is redone.
    """
    hw = hw or Loihi2()
    caps: dict[str, int] = {}
    incoming = _incoming(graph)
    for _ in range(32):
        m = _place(graph, hw, caps, incoming)
        over = np.nonzero(m.fan_out > hw.fan_out_per_core)[0]
        if not len(over):
            return m
        used = dict(caps)
        for c in over:
            name = m.core_population[c]
            if m.neurons[c] == 1:
                raise MappingError(f"core {c} ('{name}') sends to {m.fan_out[c]} (neuron, core) destinations, "
                                   f"more than the fan-out limit {hw.fan_out_per_core}")
            cap = max(1, int(m.neurons[c]) * hw.fan_out_per_core // int(m.fan_out[c]))
            caps[name] = min(caps.get(name, hw.neurons_per_core), cap, used.get(name, hw.neurons_per_core) - 1)
    raise MappingError(f"fan-out placement did not converge for populations {sorted(caps)}")


def _place(graph: AerGraph, hw: Loihi2, caps: dict[str, int],
           incoming: tuple[list[np.ndarray], list[np.ndarray]]) -> Mapping:
    pres, posts = incoming
    core_of = np.full(graph.n_neurons, -1, np.int64)
    core_pop, neurons, synapses, fan_in = [], [], [], []
    offset = 0
    for p, pre, post in zip(graph.populations, pres, posts):
        if p.kind == "input":
            offset += p.size
            continue
        order = np.argsort(post, kind="stable")
        pre, post = pre[order], post[order]
        syn_cum = np.searchsorted(post, np.arange(p.size + 1))      # synapses into neurons [0, k)
        start = 0
        while start < p.size:
            # largest stop within neuron and synapse limits, then shrink until fan-in fits
            stop = min(p.size, start + caps.get(p.name, hw.neurons_per_core))
            stop = min(stop, int(np.searchsorted(syn_cum, syn_cum[start] + hw.synapses_per_core, side="right")) - 1)
            if stop <= start:
                raise MappingError(f"population '{p.name}': neuron {start} alone has "
                                   f"{syn_cum[start + 1] - syn_cum[start]} incoming synapses, more than the "
                                   f"{hw.synapses_per_core} a core can store")
            while True:
                distinct = len(np.unique(pre[syn_cum[start]:syn_cum[stop]]))
                if distinct <= hw.fan_in_per_core or stop - start == 1:
                    break
                stop = start + max(1, (stop - start) * hw.fan_in_per_core // distinct)
            if distinct > hw.fan_in_per_core:
                raise MappingError(f"population '{p.name}': neuron {start} has {distinct} presynaptic "
                                   f"neurons, more than the fan-in limit {hw.fan_in_per_core}")
            core = len(neurons)
            core_of[offset + start: offset + stop] = core
            core_pop.append(p.name)
            neurons.append(stop - start)
            synapses.append(int(syn_cum[stop] - syn_cum[start]))
            fan_in.append(distinct)
            start = stop
        offset += p.size
    n_cores = len(neurons)
    capacity = hw.chips * hw.cores_per_chip
    if n_cores > capacity:
        raise MappingError(f"graph needs {n_cores} cores ({-(-n_cores // hw.cores_per_chip)} chips of "
                           f"{hw.cores_per_chip} cores); the configuration has {hw.chips} chip(s) = {capacity} cores")
    dest_cores, fan_out = _fan_out(graph, core_of, n_cores)
    return Mapping(hw, core_of, core_pop, np.array(neurons), np.array(synapses), np.array(fan_in), fan_out, dest_cores)


def _fan_out(graph: AerGraph, core_of: np.ndarray, n_cores: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Destination cores of every neuron; per core, Σ over its neurons of their destination cores."""
    offsets = graph.offsets()
    src_all, dst_all = [], []
    for pr in graph.projections:
        rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr)) + offsets[pr.pre]
        src_all.append(rows)
        dst_all.append(core_of[pr.indices.astype(np.int64) + offsets[pr.post]])
    if not src_all:
        return [np.zeros(0, np.int64)] * graph.n_neurons, np.zeros(n_cores, np.int64)
    pairs = np.unique(np.stack([np.concatenate(src_all), np.concatenate(dst_all)], axis=1), axis=0)
    dest = np.split(pairs[:, 1], np.searchsorted(pairs[:, 0], np.arange(1, graph.n_neurons)))
    fan_out = np.zeros(n_cores, np.int64)
    src_core = core_of[pairs[:, 0]]
    on_chip = src_core >= 0
    np.add.at(fan_out, src_core[on_chip], 1)
    return dest, fan_out
