"""What an inference costs: counts from a simulation → energy and latency estimates.

Counts (per inference, and per tick, from the engine's recorded spikes and a core mapping):
synaptic ops (synapse events delivered), spikes, neuron updates (active = the
engine's updates; the hardware also ticks idle neurons), spike messages (one per
spike per destination core; inter-chip when that core is on another chip).

Loihi energy/latency constants — Davies et al., "Loihi: A Neuromorphic Manycore
Processor with On-Chip Learning", IEEE Micro 38(1):82–99, 2018, Table 2 (Loihi 1,
14 nm, measured). Primary for Loihi 1; *secondary* when used for Loihi 2 (Intel
has published no per-op table for Loihi 2; its brief claims up to 10× faster):

* ``E_SYNOP = 23.6 pJ`` per synaptic op; ``T_SYNOP = 3.5 ns``;
* ``E_UPDATE_ACTIVE = 52 pJ``, ``E_UPDATE_IDLE = 21 pJ`` per neuron update;
* ``E_SPIKE_CORE = 1.7 pJ`` per spike message within a tile,
  ``E_SPIKE_HOP = 3.5 pJ`` per mesh hop between tiles;
* ``T_UPDATE = 5.3 ns`` per neuron update, ``T_BARRIER = 465 ns`` worst-case
  mesh-wide barrier per tick (these two timings: secondary, as read from the
  same table's ranges; treat latency as an order of magnitude).

45 nm convention of spiking-transformer papers — Horowitz, "Computing's energy
problem", ISSCC 2014 (primary): ``E_AC = 0.9 pJ`` (32-bit float add) per
synaptic op, ``E_MAC = 4.6 pJ`` (32-bit float multiply-add) per dense MAC.
Same source for an honest 8-bit comparison with memory: ``E_INT8_MAC = 0.23 pJ``
(0.2 pJ 8-bit multiply + 0.03 pJ add), ``E_INT8_ADD = 0.03 pJ``,
``E_SRAM_BYTE = 20 pJ / 8`` (64-bit read from a 32 KB SRAM = 20 pJ).

Honest model (both on the same 45 nm digital substrate, memory included):
  ANN (int8):  MACs·(E_INT8_MAC + E_SRAM_BYTE)  + activations·2·E_SRAM_BYTE
  SNN:         synops·(E_INT8_ADD + E_SRAM_BYTE) + updates·(E_INT8_ADD + 2·3·E_SRAM_BYTE)
(every synaptic op reads its 8-bit weight; a neuron update reads and writes
24-bit u and v). Synaptic ops grow with the spike rate r: synops = r·ticks·Σ
synapses, so the SNN wins below the rate where the two are equal (reported).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sim.engine import SimResult
from sim.hardware import Mapping
from sim.ir import AerGraph

E_SYNOP = 23.6e-12
E_UPDATE_ACTIVE = 52e-12
E_UPDATE_IDLE = 21e-12
E_SPIKE_CORE = 1.7e-12
E_SPIKE_HOP = 3.5e-12
T_SYNOP = 3.5e-9
T_UPDATE = 5.3e-9
T_BARRIER = 465e-9
E_AC_45NM = 0.9e-12
E_MAC_45NM = 4.6e-12
E_INT8_MAC = 0.23e-12
E_INT8_ADD = 0.03e-12
E_SRAM_BYTE = 20e-12 / 8
MESH_COLS = 16        # cores laid out row-major on an 8 × 16 mesh per chip (assumption for hop counts)


@dataclass(frozen=True)
class CostReport:
    """Per-inference figures (means over the simulated samples)."""

    cores: int
    chips: int
    synaptic_ops: float
    spikes: float
    neuron_updates: float
    messages: float
    inter_chip_messages: float
    energy_loihi2_joules: float
    energy_45nm_joules: float
    energy_45nm_dense_joules: float
    energy_snn_memory_joules: float
    energy_ann_int8_memory_joules: float
    crossover_rate: float
    spike_rate: float
    latency_s: float
    winner: str
    synaptic_ops_per_tick: list[float]
    spikes_per_tick: list[float]
    messages_per_tick: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def _hops(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Manhattan distance between cores on the assumed per-chip mesh (different chips: across the edge)."""
    return np.abs(a // MESH_COLS - b // MESH_COLS) + np.abs(a % MESH_COLS - b % MESH_COLS)


def per_tick_core_load(graph: AerGraph, mapping: Mapping, spikes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(synaptic ops, messages received) per (sample, tick, core).

    Ops land on the core of the target neuron; a spike sends one message to each
    distinct destination core of its neuron (``mapping.dest_cores``).
    """
    offsets = graph.offsets()
    batch, ticks = next(iter(spikes.values())).shape[:2]
    ops = np.zeros((batch, ticks, mapping.cores))
    msgs = np.zeros((batch, ticks, mapping.cores))
    for pr in graph.projections:
        rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
        tgt_core = mapping.core_of[pr.indices.astype(np.int64) + offsets[pr.post]]
        per_pre_core = np.zeros((pr.n_pre, mapping.cores))
        np.add.at(per_pre_core, (rows, tgt_core), 1)
        s = spikes[pr.pre].reshape(batch * ticks, pr.n_pre).astype(np.float64)
        ops += (s @ per_pre_core).reshape(batch, ticks, -1)
    for p in graph.populations:
        dest = np.zeros((p.size, mapping.cores))
        for i in range(p.size):
            dest[i, mapping.dest_cores[offsets[p.name] + i]] = 1
        if dest.any():
            msgs += (spikes[p.name].reshape(batch * ticks, p.size).astype(np.float64) @ dest).reshape(batch, ticks, -1)
    return ops, msgs


def cost_report(graph: AerGraph, mapping: Mapping, result: SimResult) -> CostReport:
    """Turn a recorded simulation into the figures of the module docstring."""
    if not result.spikes:
        raise ValueError("cost_report needs recorded spikes: run simulate(..., record=True)")
    synops = float(result.synaptic_ops_per_inference)
    spikes = float(result.spikes_per_inference)
    n_lif = sum(p.size for p in graph.populations if p.kind == "lif")
    active = float(result.neuron_updates.mean())
    idle = n_lif * graph.ticks - active
    # messages: one per (spike, destination core); energy by hop distance
    counts = np.concatenate([result.spikes[p.name].sum(axis=1) for p in graph.populations], axis=1)  # (B, n)
    msg = inter = e_msg = 0.0
    chip = mapping.hw.cores_per_chip
    for i in np.nonzero(counts.sum(axis=0))[0]:
        dest = mapping.dest_cores[i]
        if len(dest) == 0:
            continue
        c = counts[:, i].mean()
        src = mapping.core_of[i]
        msg += c * len(dest)
        if src >= 0:
            inter += c * int((dest // chip != src // chip).sum())
            hops = _hops(np.full(len(dest), src % chip), dest % chip)
            e_msg += c * float(np.where(dest == src, E_SPIKE_CORE, E_SPIKE_HOP * np.maximum(hops, 1)).sum())
        else:                                   # host → chip: counted at one hop each
            e_msg += c * len(dest) * E_SPIKE_HOP
    e_loihi = synops * E_SYNOP + active * E_UPDATE_ACTIVE + idle * E_UPDATE_IDLE + e_msg
    ops, msgs_core = per_tick_core_load(graph, mapping, result.spikes)
    spikes_tick = sum(result.spikes[p.name].sum(axis=2) for p in graph.populations).mean(axis=0)
    updates_per_core = np.bincount(mapping.core_of[mapping.core_of >= 0], minlength=mapping.cores)
    tick_time = (ops * T_SYNOP + updates_per_core[None, None, :] * T_UPDATE).max(axis=2) + T_BARRIER
    latency = float(tick_time.sum(axis=1).mean())
    # conventions
    macs = float(graph.n_synapses)                       # dense model: every synapse once per inference
    activations = float(n_lif)
    e_45_snn = synops * E_AC_45NM
    e_45_ann = macs * E_MAC_45NM
    e_ann8 = macs * (E_INT8_MAC + E_SRAM_BYTE) + activations * 2 * E_SRAM_BYTE
    e_update = E_INT8_ADD + 2 * 3 * E_SRAM_BYTE
    e_snn = synops * (E_INT8_ADD + E_SRAM_BYTE) + active * e_update
    capacity = graph.ticks * graph.n_synapses             # synops if every neuron fired every tick
    rate = synops / capacity if capacity else 0.0
    crossover = max(0.0, (e_ann8 - active * e_update) / ((E_INT8_ADD + E_SRAM_BYTE) * capacity)) if capacity else 0.0
    return CostReport(
        cores=mapping.cores, chips=mapping.chips, synaptic_ops=synops, spikes=spikes,
        neuron_updates=active, messages=msg, inter_chip_messages=inter,
        energy_loihi2_joules=e_loihi, energy_45nm_joules=e_45_snn, energy_45nm_dense_joules=e_45_ann,
        energy_snn_memory_joules=e_snn, energy_ann_int8_memory_joules=e_ann8,
        crossover_rate=crossover, spike_rate=rate, latency_s=latency,
        winner="spiking" if e_snn < e_ann8 else "int8 dense (ANN)",
        synaptic_ops_per_tick=ops.sum(axis=2).mean(axis=0).tolist(), spikes_per_tick=spikes_tick.tolist(),
        messages_per_tick=msgs_core.sum(axis=2).mean(axis=0).tolist())
