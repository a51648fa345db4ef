"""How a Lava run is laid out: samples side by side and in sequence per worker, sized to the memory."""
from __future__ import annotations

from loihi_export.build.network import rest_period

BATCH_SYNAPSES = 1 << 24                   # synapses of all samples side by side in one network (auto_batch)


# glibc malloc of the worker and its forked Lava processes: arrays over 1 MiB get their own
# mapping, returned to the system when freed. By default the threshold grows with freed blocks
# (to 32 MiB), so each LIF process's per-tick int64 temporaries stayed resident: k-WTA at D 384
# (20 M neurons) peaked at 14.7 GiB, 12.9 GiB with this (the same speed at depth 1).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 20)}


# Peak PSS of a worker's process tree, fitted (+10 %) to runs at D 384 (benchmarks/test_bench_lava_large.py):
# depth 1 SDSA 2.5 GiB, depth 4 SDSA 9.9 GiB (418 M synapses, 1.3 M neurons, 160 processes),
# depth 4 k-WTA 12.9 GiB (486 M synapses, 20 M neurons, 229 processes).
BYTES_PER_SYNAPSE = 22.0     # each Sparse process's int32 copies (8 B kept; clip + truncate on tick 1: ~24 B)


BYTES_PER_PROCESS = 12 * 2**20             # a forked Python per Lava process


BYTES_PER_NEURON = 64.0                    # LIF state and its int64 temporaries, messages (2 slots)


def auto_batch(graph) -> int:
    """Samples side by side in one network: block-diagonal weights multiply the synapses, so
    at most ``BATCH_SYNAPSES`` of them in all (and at most 64 samples); at least 1."""
    return int(max(1, min(64, BATCH_SYNAPSES // max(1, graph.n_synapses))))


def plan(graph, samples: int, batch_size: int | None = None, sequence: int | None = None
         ) -> tuple[int, int, int | None]:
    """(lanes, slots per worker, period) for ``samples`` samples; see ``run_lava``."""
    batch = auto_batch(graph) if batch_size is None else int(batch_size)
    slots = -(-samples // batch)
    if sequence == 1 or slots == 1:
        return batch, 1, None
    period = rest_period(graph)
    if period is None:
        if sequence is not None:
            raise ValueError("sequence > 1: this graph does not come to rest soon enough after its input "
                             "(a LIF with a slowly decaying current, or a cycle); use sequence=1")
        return batch, 1, None
    return batch, (slots if sequence is None else min(int(sequence), slots)), period


def estimate_bytes(graph, batch: int, run_ticks: int) -> int:
    """Peak PSS of a worker's process tree (bytes) for ``batch`` lanes running ``run_ticks``
    ticks: the measured costs per synapse, neuron and Lava OS process (constants above)
    plus the recordings (a bit per neuron and tick, in the recorder and read back)."""
    n_procs = 2 * len(graph.populations) + len(graph.projections) + 1
    neurons = batch * sum(p.size for p in graph.populations)
    return int(BYTES_PER_SYNAPSE * batch * graph.n_synapses + BYTES_PER_PROCESS * n_procs
               + BYTES_PER_NEURON * neurons + neurons * run_ticks / 4)

