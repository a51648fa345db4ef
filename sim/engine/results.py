"""What a simulation returns (``SimResult``) and its file (``simulation.npz``: compressed, atomic)."""
from __future__ import annotations

import json
import mmap
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import IRError
from sim.ir.graph import AerGraph
from sim.ir.io import VERSION, _write_npz
from sim.system.files import atomic_write

RESULT_SCHEMA = "spikeformer.simulation"


def save_result(path: str | os.PathLike, graph: AerGraph, result) -> Path:
    """Write a recorded ``SimResult`` (compressed npz, atomic): spikes, counts, synaptic ops."""
    path = Path(path)
    arrays = {"header": np.frombuffer(json.dumps({"schema": RESULT_SCHEMA, "version": VERSION,
                                                  "ticks": int(result.ticks)}).encode(), np.uint8),
              "neuron_updates": result.neuron_updates}
    for k, p in enumerate(graph.populations):
        if result.spikes:
            arrays[f"s{k}.spikes"] = np.packbits(result.spikes[p.name], axis=-1)
        arrays[f"s{k}.counts"] = result.spike_counts[p.name]
    for k, pr in enumerate(graph.projections):
        arrays[f"p{k}.ops"] = result.synaptic_ops[pr.name]
    return atomic_write(path, lambda p: _write_npz(p, arrays, compressed=True))


def load_result(path: str | os.PathLike, graph: AerGraph):
    """Read what ``save_result`` wrote, for ``graph``; IRError naming the file if it does not fit."""
    from sim.engine.results import SimResult

    path = Path(path)
    if not path.is_file():
        raise IRError(str(path), "file", "does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            if header.get("schema") != RESULT_SCHEMA:
                raise IRError(str(path), "header.schema", f"expected {RESULT_SCHEMA!r}")
            ticks = int(header["ticks"])
            spikes, counts, ops = {}, {}, {}
            for k, p in enumerate(graph.populations):
                if f"s{k}.spikes" in z.files:
                    spikes[p.name] = np.unpackbits(z[f"s{k}.spikes"], axis=-1, count=p.size).astype(bool)
                counts[p.name] = z[f"s{k}.counts"]
            for k, pr in enumerate(graph.projections):
                ops[pr.name] = z[f"p{k}.ops"]
            return SimResult(spikes, counts, ops, z["neuron_updates"], ticks)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, IRError):
            raise
        raise IRError(str(path), "file", f"is not a simulation result for this graph ({e})") from None


@dataclass
class SimResult:
    """Spikes and event counts of a batch run.

    ``spikes[name]``: bool (batch, ticks, size) (empty dict unless recorded);
    ``spike_counts[name]``, ``synaptic_ops[projection]``: (batch,) int64;
    ``neuron_updates``: (batch,) LIF updates the engine performed.
    """

    spikes: dict[str, np.ndarray]
    spike_counts: dict[str, np.ndarray]
    synaptic_ops: dict[str, np.ndarray]
    neuron_updates: np.ndarray
    ticks: int

    @property
    def events(self) -> int:
        return int(sum(c.sum() for c in self.spike_counts.values()))

    @property
    def synaptic_ops_per_inference(self) -> float:
        return float(sum(o for o in self.synaptic_ops.values()).mean()) if self.synaptic_ops else 0.0

    @property
    def spikes_per_inference(self) -> float:
        return float(sum(c for c in self.spike_counts.values()).mean())


HUGE_PAGE = 2 << 20


def lazy_zeros(shape: tuple[int, ...], dtype, huge: bool = False) -> np.ndarray:
    """np.zeros in fresh anonymous pages (mmap): zeroed by the OS on first touch, so an array only partly
    used costs what is used — np.zeros of a size the allocator recycles from the heap memsets it all.
    ``huge``: in 2 MiB pages where the kernel allows (``MADV_HUGEPAGE``; each page then costs its whole
    2 MiB on first touch), for arrays read at random, where 4 KiB pages miss the TLB on most reads."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes < 1 << 20:
        return np.zeros(shape, dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge and nbytes >= HUGE_PAGE and hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(buf, dtype).reshape(shape)
