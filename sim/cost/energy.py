"""What an inference costs: counts from a simulation → energy and latency estimates.

Counts (per inference, and per tick, from the engine's recorded spikes and a core mapping):
synaptic ops (synapse events delivered), spikes, neuron updates (active = the
engine's updates; the hardware also ticks idle neurons), spike messages (one per
spike per distinct destination core of its neuron; a graded spike is one message
like any other). Messages are split by where they go:
``messages = same-core + inter_core_messages (other core, same chip)
+ inter_chip_messages (core on another chip) + host_messages (from host inputs)``.

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

Between chips. Topology — Davies et al. 2018 (primary for Loihi 1): Loihi's
off-chip interfaces extend the mesh in the four planar directions to
neighbouring chips, so chips form a 2-D grid; we lay the system's chips
row-major on a ``⌈√chips⌉``-wide grid and count chip hops as the Manhattan
distance there (Intel's Loihi 2 brief, 2021, adds 3-D multi-chip scaling; the
planar grid over-counts hops for large systems). Costs — **modelling
assumptions, not measurements**: neither Davies et al. 2018, nor Intel's Loihi 2
brief, nor Orchard et al., "Efficient Neuromorphic Signal Processing with
Loihi 2", IEEE SiPS 2021, publishes a per-message energy or latency for the
chip-to-chip links:

* ``E_CHIP_HOP = 35 pJ`` per chip-to-chip hop of a message — assumed 10× an
  on-chip tile hop (``E_SPIKE_HOP``) for leaving the die through pads and board;
* ``T_CHIP_HOP = 100 ns`` per chip-to-chip hop — assumed (an asynchronous
  off-chip handshake, ~20× the few ns an on-chip tile hop takes).

Loihi formulas (per inference, means over samples; ``c_i`` = spikes of neuron ``i``):

  E_msg(i → d) = E_SPIKE_CORE                               if d is i's core
               = E_SPIKE_HOP·max(1, mesh hops) + E_CHIP_HOP·chip hops   otherwise
               = E_SPIKE_HOP                                 if i is a host input
  (mesh hops: Manhattan distance of the two cores' places on an 8 × 16 mesh per
  chip, ``MESH_COLS`` — assumption; chip hops are 0 on the same chip;
  idle = (neurons on cores)·ticks − active)
  energy  = synops·E_SYNOP + active·E_UPDATE_ACTIVE + idle·E_UPDATE_IDLE + Σ_i c_i Σ_d E_msg(i → d)
  latency = Σ_ticks [ max_core(ops_core·T_SYNOP + neurons_core·T_UPDATE) + T_BARRIER
                      + T_CHIP_HOP · (most chip hops of any message sent that tick) ]
  so ``energy_inter_chip_joules = E_CHIP_HOP · inter_chip_hops`` and
  ``latency_inter_chip_s = T_CHIP_HOP · Σ_ticks max chip hops`` are parts of the totals.

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

Memory: everything streams over projections and populations (sparse per-row
core counts, the mapping's destination CSR); no per-synapse array is built — the
largest temporaries are O((neuron, core) pairs) and O(samples·ticks × cores).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np
import scipy.sparse as sp

from sim.cost.hardware import Mapping, chip_grid_columns, row_core_runs
from sim.engine.results import SimResult
from sim.ir.graph import AerGraph
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

E_SYNOP = 23.6e-12


E_UPDATE_ACTIVE = 52e-12


E_UPDATE_IDLE = 21e-12


E_SPIKE_CORE = 1.7e-12


E_SPIKE_HOP = 3.5e-12


E_CHIP_HOP = 10 * E_SPIKE_HOP


T_SYNOP = 3.5e-9


T_UPDATE = 5.3e-9


T_BARRIER = 465e-9


T_CHIP_HOP = 100e-9


E_AC_45NM = 0.9e-12


E_MAC_45NM = 4.6e-12


E_INT8_MAC = 0.23e-12


E_INT8_ADD = 0.03e-12


E_SRAM_BYTE = 20e-12 / 8


MESH_COLS = 16        # cores laid out row-major on an 8 × 16 mesh per chip (assumption for hop counts)


@dataclass(frozen=True)
class CostReport:
    """Per-inference figures (means over the simulated samples).

    ``chips`` is the system's chip count (the cap if one was set), ``chips_needed``
    the chips the placement occupies.
    """

    cores: int
    chips: int
    chips_needed: int
    synaptic_ops: float
    spikes: float
    neuron_updates: float
    messages: float
    inter_core_messages: float
    inter_chip_messages: float
    host_messages: float
    inter_chip_hops: float
    energy_loihi2_joules: float
    energy_inter_chip_joules: float
    energy_45nm_joules: float
    energy_45nm_dense_joules: float
    energy_snn_memory_joules: float
    energy_ann_int8_memory_joules: float
    crossover_rate: float
    spike_rate: float
    latency_s: float
    latency_inter_chip_s: float
    winner: str
    synaptic_ops_per_tick: list[float]
    spikes_per_tick: list[float]
    messages_per_tick: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


@numba.njit(cache=True)
def _message_costs(dest_ptr, dest_core, core_of, cores_per_chip, mesh_cols, chip_cols, e_core, e_hop, e_chip):
    """Per neuron, per spike: (energy of its messages, inter-core, inter-chip, chip hops, max chip hops, host)."""
    n = len(dest_ptr) - 1
    energy = np.zeros(n)
    inter_core, inter_chip, host = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    hops_sum, hops_max = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for i in range(n):
        s = core_of[i]
        for k in range(dest_ptr[i], dest_ptr[i + 1]):
            d = dest_core[k]
            if s < 0:                               # host → chip: one hop each
                host[i] += 1
                energy[i] += e_hop
                continue
            if d == s:
                energy[i] += e_core
                continue
            sp, dp = s % cores_per_chip, d % cores_per_chip
            mesh = abs(sp // mesh_cols - dp // mesh_cols) + abs(sp % mesh_cols - dp % mesh_cols)
            e = e_hop * max(mesh, 1)
            sc, dc = s // cores_per_chip, d // cores_per_chip
            if sc == dc:
                inter_core[i] += 1
            else:
                h = abs(sc // chip_cols - dc // chip_cols) + abs(sc % chip_cols - dc % chip_cols)
                inter_chip[i] += 1
                hops_sum[i] += h
                hops_max[i] = max(hops_max[i], h)
                e += e_chip * h
            energy[i] += e
    return energy, inter_core, inter_chip, hops_sum, hops_max, host


def _accumulate(out: np.ndarray, per_neuron_core: sp.csr_matrix, spikes: np.ndarray) -> None:
    """``out (B·T, cores) += spikes (B·T, n) @ per_neuron_core (n, cores)`` in float32 row chunks
    (every entry is an integer count below 2²⁴, so float32 is exact)."""
    s = spikes.reshape(spikes.shape[0] * spikes.shape[1], spikes.shape[2])
    by_core = per_neuron_core.T.tocsr()
    step = max(1, (1 << 24) // max(s.shape[1], 1))
    for a in range(0, len(s), step):
        out[a:a + step] += np.asarray(by_core @ s[a:a + step].T.astype(np.float32)).T


def per_tick_core_load(graph: AerGraph, mapping: Mapping,
                       spikes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(synaptic ops, messages received) per (sample, tick, core).

    Ops land on the core of the target neuron; a spike sends one message to each
    distinct destination core of its neuron (``mapping.dest_cores``). Streams per
    projection / population with sparse (neuron × core) count matrices.
    """
    offsets = graph.offsets()
    batch, ticks = next(iter(spikes.values())).shape[:2]
    ops = np.zeros((batch * ticks, mapping.cores))
    msgs = np.zeros((batch * ticks, mapping.cores))
    for pr in graph.projections:
        ptr, cores, counts = row_core_runs(pr.indptr, pr.indices, mapping.core_of, offsets[pr.post], True)
        _accumulate(ops, sp.csr_matrix((counts.astype(np.float32), cores, ptr), shape=(pr.n_pre, mapping.cores)),
                    spikes[pr.pre])
    for p in graph.populations:
        lo, hi = offsets[p.name], offsets[p.name] + p.size
        ptr = mapping.dest_ptr[lo:hi + 1] - mapping.dest_ptr[lo]
        if ptr[-1] == 0:
            continue
        cores = mapping.dest_core[mapping.dest_ptr[lo]:mapping.dest_ptr[hi]]
        _accumulate(msgs, sp.csr_matrix((np.ones(len(cores), np.float32), cores, ptr), shape=(p.size, mapping.cores)),
                    spikes[p.name])
    return ops.reshape(batch, ticks, -1), msgs.reshape(batch, ticks, -1)


def chip_hops_per_tick(graph: AerGraph, spikes: dict[str, np.ndarray], hops_max: np.ndarray) -> np.ndarray:
    """(sample, tick): the most chip hops any message sent that tick travels (0 if none leaves its chip)."""
    offsets = graph.offsets()
    batch, ticks = next(iter(spikes.values())).shape[:2]
    out = np.zeros((batch, ticks), np.int64)
    for p in graph.populations:
        h = hops_max[offsets[p.name]:offsets[p.name] + p.size]
        for v in np.unique(h[h > 0])[::-1]:
            fired = spikes[p.name][:, :, np.nonzero(h == v)[0]].any(axis=2)
            out = np.maximum(out, fired * v)
    return out


def cost_report(graph: AerGraph, mapping: Mapping, result: SimResult) -> CostReport:
    """Turn a recorded simulation into the figures of the module docstring."""
    if not result.spikes:
        raise ValueError("cost_report needs recorded spikes: run simulate(..., record=True)")
    synops = float(result.synaptic_ops_per_inference)
    spikes = float(result.spikes_per_inference)
    n_on_chip = int((mapping.core_of >= 0).sum())            # every non-input population's neurons
    active = float(result.neuron_updates.mean())
    idle = n_on_chip * graph.ticks - active
    # messages: one per (spike, destination core); energy by mesh and chip hops
    counts = np.concatenate([result.spikes[p.name].sum(axis=1) for p in graph.populations], axis=1).mean(axis=0)
    deg = np.diff(mapping.dest_ptr)
    e_per, inter_core, inter_chip, hops_sum, hops_max, host = _message_costs(
        mapping.dest_ptr, mapping.dest_core, mapping.core_of, mapping.hw.cores_per_chip, MESH_COLS,
        chip_grid_columns(mapping.chips), E_SPIKE_CORE, E_SPIKE_HOP, E_CHIP_HOP)
    chip_hops = float(counts @ hops_sum)
    e_loihi = synops * E_SYNOP + active * E_UPDATE_ACTIVE + idle * E_UPDATE_IDLE + float(counts @ e_per)
    ops, msgs_core = per_tick_core_load(graph, mapping, result.spikes)
    spikes_tick = sum(result.spikes[p.name].sum(axis=2) for p in graph.populations).mean(axis=0)
    updates_per_core = np.bincount(mapping.core_of[mapping.core_of >= 0], minlength=mapping.cores)
    hop_latency = T_CHIP_HOP * chip_hops_per_tick(graph, result.spikes, hops_max)
    tick_time = (ops * T_SYNOP + updates_per_core[None, None, :] * T_UPDATE).max(axis=2, initial=0.0) + T_BARRIER
    latency = float((tick_time + hop_latency).sum(axis=1).mean())
    # conventions
    macs = float(graph.n_synapses)                       # dense model: every synapse once per inference
    activations = float(n_on_chip)
    e_45_snn = synops * E_AC_45NM
    e_45_ann = macs * E_MAC_45NM
    e_ann8 = macs * (E_INT8_MAC + E_SRAM_BYTE) + activations * 2 * E_SRAM_BYTE
    e_update = E_INT8_ADD + 2 * 3 * E_SRAM_BYTE
    e_snn = synops * (E_INT8_ADD + E_SRAM_BYTE) + active * e_update
    capacity = graph.ticks * graph.n_synapses             # synops if every neuron fired every tick
    rate = synops / capacity if capacity else 0.0
    crossover = max(0.0, (e_ann8 - active * e_update) / ((E_INT8_ADD + E_SRAM_BYTE) * capacity)) if capacity else 0.0
    return CostReport(
        cores=mapping.cores, chips=mapping.chips, chips_needed=mapping.chips_needed, synaptic_ops=synops,
        spikes=spikes, neuron_updates=active, messages=float(counts @ deg),
        inter_core_messages=float(counts @ inter_core), inter_chip_messages=float(counts @ inter_chip),
        host_messages=float(counts @ host), inter_chip_hops=chip_hops,
        energy_loihi2_joules=e_loihi, energy_inter_chip_joules=E_CHIP_HOP * chip_hops,
        energy_45nm_joules=e_45_snn, energy_45nm_dense_joules=e_45_ann,
        energy_snn_memory_joules=e_snn, energy_ann_int8_memory_joules=e_ann8,
        crossover_rate=crossover, spike_rate=rate, latency_s=latency,
        latency_inter_chip_s=float(hop_latency.sum(axis=1).mean()),
        winner="spiking" if e_snn < e_ann8 else "int8 dense (ANN)",
        synaptic_ops_per_tick=ops.sum(axis=2).mean(axis=0).tolist(), spikes_per_tick=spikes_tick.tolist(),
        messages_per_tick=msgs_core.sum(axis=2).mean(axis=0).tolist())
