"""``run_lava``: an AER graph's inputs through Lava, in supervised worker processes, chunk by chunk."""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from loihi_export.build.network import RECORD_MODES, require_loihi
from loihi_export.build.readout import unpack_spikes
from loihi_export.build.weights import LavaWeights
from loihi_export.protocol import FAULT_KINDS, PAYLOAD_PREFIX, WORKER_MODULE, LavaRunError
from loihi_export.run.plan import estimate_bytes, plan
from loihi_export.run.supervise import TreeMemory, error_text, supervise
from sim.engine.reference import check_inputs
from sim.ir.graph import AerGraph
from sim.system.memory import available_bytes
from sim.system.signals import interrupts_as_exceptions


def _run_chunk(graph_shape, weights_dir: Path, inputs: Mapping[str, np.ndarray], workdir: Path, timeout: float,
               record: str, inject_fault: str | None, payloads: bool = False, sequence: int = 1,
               period: int | None = None, memory: TreeMemory | None = None) -> tuple[dict[str, np.ndarray], dict]:
    in_file, out_file, stats_file = workdir / "inputs.npz", workdir / "spikes.npz", workdir / "stats.json"
    np.savez(in_file, **{k: np.asarray(v, bool) for k, v in inputs.items()})
    for f in (out_file, stats_file):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", WORKER_MODULE, str(weights_dir), str(in_file), str(out_file),
           "--record", record, "--shm-log", str(workdir / "shm.txt"), "--sequence", str(sequence),
           "--stats", str(stats_file), "--parent-pid", str(os.getpid())]
    if period is not None:
        cmd += ["--period", str(period)]
    if inject_fault:
        cmd += ["--inject-fault", inject_fault]
    if payloads:
        cmd.append("--payloads")
    stderr = supervise(cmd, workdir, timeout, memory)
    if not out_file.exists():
        raise LavaRunError(f"Lava run failed (worker wrote no spikes): {error_text(stderr)}")
    sizes = {p.name: p.size for p in graph_shape.populations}
    with np.load(out_file, allow_pickle=False) as z:
        spikes = {k: (z[k] if k.startswith(PAYLOAD_PREFIX) else unpack_spikes(z[k], sizes[k])) for k in z.files}
    out_file.unlink()
    return spikes, (json.loads(stats_file.read_text()) if stats_file.exists() else {})


def run_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, timeout: float = 300.0,
             batch_size: int | None = None, sequence: int | None = None, record: str = "packed",
             inject_fault: str | None = None, payloads: dict | None = None,
             stats: dict | None = None, check_memory: bool = True) -> dict[str, np.ndarray]:
    """Spikes of every population from a Lava ``Loihi2SimCfg`` fixed-point run.

    ``inputs``: ``{input population: bool (batch, ≤timesteps, size)}``. Returns
    ``{population: bool (batch, graph.ticks, size)}`` — the format of
    ``sim.engine.reference.simulate_dense``.

    Layout: ``batch_size`` samples side by side in one network (block-diagonal weights;
    default ``auto_batch``: 64 for small graphs, 1 for one of more than ``BATCH_SYNAPSES``
    synapses), and ``sequence`` such groups one after another in the same network, reset
    between them (``build.rest_period``; default: every group in one worker when the graph
    comes to rest after its input, else 1 = a fresh worker per group). Each worker is a
    fresh process allowed ``timeout`` seconds. ``record``: ``"packed"`` (default) or
    ``"monitor"`` (Lava's Monitor). ``payloads``: a dict to fill with graded populations'
    payloads, ``{population: int32 (batch, ticks, size)}`` = ``simulate_dense``'s
    ``payloads``. ``stats``: a dict to fill with the layout, seconds (total, per sample, per
    worker phase) and the peak PSS of this process plus the worker's tree (``TreeMemory``).
    With ``check_memory``, a run whose ``estimate_bytes`` exceeds the available memory is
    refused before it starts (MemoryError). Raises :class:`LavaRunError` on failure or
    timeout, ValueError for a non-``loihi`` graph or bad arguments.
    """
    require_loihi(graph)
    batch = check_inputs(graph, inputs)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if sequence is not None and sequence < 1:
        raise ValueError(f"sequence must be ≥ 1, got {sequence}")
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
    if inject_fault is not None and inject_fault not in FAULT_KINDS:
        raise ValueError(f"inject_fault must be None or one of {FAULT_KINDS}, got {inject_fault!r}")
    if not 0 < timeout < math.inf:                  # NaN fails both: it would never time out
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    lanes, slots, period = plan(graph, batch, batch_size, sequence)
    lanes = min(lanes, batch)
    need = estimate_bytes(graph, lanes, (slots - 1) * (period or 0) + graph.ticks)
    available = available_bytes() if check_memory else need
    if need > available:
        raise MemoryError(f"a Lava run of this graph ({graph.n_synapses:,} synapses, {lanes} sample(s) side by side) "
                          f"needs about {need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available")
    memory = TreeMemory() if stats is not None else None
    parts: list[dict[str, np.ndarray]] = []
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    with interrupts_as_exceptions(), tempfile.TemporaryDirectory(prefix="spikeformer-lava-") as tmp:
        workdir = Path(tmp)
        weights_dir = LavaWeights.save(graph, workdir / "weights")
        phases["weights_s"] = time.perf_counter() - t0
        step = lanes * slots
        for lo in range(0, batch, step):
            chunk = {p.name: np.asarray(inputs[p.name])[lo:lo + step] for p in graph.inputs}
            n = min(step, batch - lo)
            seq = min(slots, -(-n // lanes))
            spikes, worker_stats = _run_chunk(graph, weights_dir, chunk, workdir, timeout, record, inject_fault,
                                              payloads is not None, seq, period if seq > 1 else None, memory)
            parts.append(spikes)
            for k, v in worker_stats.items():
                if k.endswith("_s"):
                    phases[k] = phases.get(k, 0.0) + v
    seconds = time.perf_counter() - t0
    if stats is not None:
        stats.update(samples=batch, workers=len(parts), batch=lanes, sequence=slots, period=period,
                     seconds=seconds, seconds_per_sample=seconds / batch, phases=phases,
                     estimate_bytes=need, peak_pss_bytes=memory.peak, peak_worker_pss_bytes=memory.peak_worker,
                     peak_anon_bytes=memory.peak_anon, processes=memory.processes,
                     memory_samples=memory.samples, memory_sample_s=memory.seconds / max(1, memory.samples))

    def joined(key: str) -> np.ndarray:
        return parts[0].pop(key) if len(parts) == 1 else np.concatenate([part.pop(key) for part in parts])

    if payloads is not None:
        payloads.update({p.name: joined(PAYLOAD_PREFIX + p.name) for p in graph.populations if p.is_graded})
    return {p.name: joined(p.name) for p in graph.populations}
