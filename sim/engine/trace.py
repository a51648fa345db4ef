"""AER event traces: a structured array, streamed to HDF5, exported to Perfetto JSON.

One event per spike::

    EVENT_DTYPE = [("time", f8), ("sample", u4), ("population", u2), ("neuron", u4), ("payload", i4)]

``time`` is the tick (or the real-valued time of the continuous-time mode),
``population`` indexes ``graph.populations``, ``payload`` is 1 for a binary spike.

HDF5 layout: dataset ``events`` (resizable, chunked, gzip), attribute
``populations`` (JSON list of names) — appended chunk by chunk by
:class:`TraceWriter`, so a long run never holds more than one chunk in memory.

Perfetto/Chrome trace-event JSON (``write_perfetto``): one process per sample,
one thread (track) per population named by a ``thread_name`` metadata event,
every spike an instant event ``{"ph": "i", "ts": time·tick_us, "s": "t"}`` with
the neuron index in ``args``; opens in ui.perfetto.dev and chrome://tracing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from sim.ir.graph import AerGraph

EVENT_DTYPE = np.dtype([("time", "<f8"), ("sample", "<u4"), ("population", "<u2"), ("neuron", "<u4"),
                        ("payload", "<i4")])


CHUNK = 1 << 18


class TraceError(ValueError):
    """A trace file cannot be written or read; names the path."""


def events_from_spikes(graph: AerGraph, spikes: dict[str, np.ndarray], sample_offset: int = 0) -> np.ndarray:
    """Spike arrays {name: (batch, ticks, size)} → events sorted by (time, sample, population, neuron)."""
    parts = []
    for k, p in enumerate(graph.populations):
        b, t, i = np.nonzero(spikes[p.name])
        ev = np.empty(len(b), EVENT_DTYPE)
        ev["time"], ev["sample"], ev["population"], ev["neuron"], ev["payload"] = t, b + sample_offset, k, i, 1
        parts.append(ev)
    ev = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
    return ev[np.lexsort((ev["neuron"], ev["population"], ev["sample"], ev["time"]))]


def check_writable(path: str | os.PathLike) -> Path:
    """Raise TraceError unless ``path`` can be created (checked before any simulation work)."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, not a trace file")
    if not path.parent.exists():
        raise TraceError(f"{path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise TraceError(f"{path}: not writable")
    if path.suffix not in (".h5", ".hdf5", ".json"):
        raise TraceError(f"{path}: use a .h5 (HDF5) or .json (Perfetto) file name")
    return path


class TraceWriter:
    """Append events to an HDF5 file in chunks: ``with TraceWriter(path, graph) as w: w.append(ev)``."""

    def __init__(self, path: str | os.PathLike, graph: AerGraph, chunk: int = CHUNK) -> None:
        import h5py

        self.path = check_writable(path)
        try:
            self._file = h5py.File(self.path, "w")
        except OSError as e:
            raise TraceError(f"{self.path}: cannot be written ({e})") from None
        self._file.attrs["populations"] = json.dumps([p.name for p in graph.populations])
        self._file.attrs["numerics"] = graph.numerics
        self._ds = self._file.create_dataset("events", shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE,
                                             chunks=(chunk,), compression="gzip", compression_opts=1)
        self.count = 0

    def append(self, events: np.ndarray) -> None:
        n = len(events)
        if n:
            self._ds.resize((self.count + n,))
            self._ds[self.count:self.count + n] = events
            self.count += n

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_chunks(path: str | os.PathLike, chunk: int = CHUNK) -> tuple[list[str], Iterator[np.ndarray]]:
    """Population names and an iterator over the trace's events, ``chunk`` at a time."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: trace file not found")
    f = h5py.File(path, "r")
    names = json.loads(f.attrs["populations"])

    def it() -> Iterator[np.ndarray]:
        with f:
            ds = f["events"]
            for lo in range(0, len(ds), chunk):
                yield ds[lo:lo + chunk]
    return names, it()


def read_trace(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The whole trace in memory (small traces and tests)."""
    names, chunks = read_chunks(path)
    parts = list(chunks)
    return names, (np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE))


def write_perfetto(path: str | os.PathLike, names: list[str], events: np.ndarray, tick_us: float = 1000.0,
                   max_events: int = 2_000_000) -> Path:
    """Chrome/Perfetto trace-event JSON (see module docstring); refuses more than ``max_events``."""
    path = check_writable(path)
    if len(events) > max_events:
        raise TraceError(f"{path}: {len(events)} events exceed max_events={max_events}; "
                         f"Perfetto's JSON importer is not meant for more — write HDF5 instead")
    samples = np.unique(events["sample"]) if len(events) else np.array([0])
    meta = []
    for s in samples:
        meta.append({"name": "process_name", "ph": "M", "pid": int(s), "args": {"name": f"sample {int(s)}"}})
        for k, n in enumerate(names):
            meta.append({"name": "thread_name", "ph": "M", "pid": int(s), "tid": k, "args": {"name": n}})
            meta.append({"name": "thread_sort_index", "ph": "M", "pid": int(s), "tid": k, "args": {"sort_index": k}})
    spikes = [{"name": "spike", "cat": names[int(e["population"])], "ph": "i", "s": "t",
               "ts": float(e["time"]) * tick_us, "pid": int(e["sample"]), "tid": int(e["population"]),
               "args": {"neuron": int(e["neuron"]), "payload": int(e["payload"])}} for e in events]
    try:
        with open(path, "w") as f:
            json.dump({"traceEvents": meta + spikes, "displayTimeUnit": "ms",
                       "otherData": {"producer": "spikeformer", "tick_us": tick_us}}, f)
    except OSError as e:
        raise TraceError(f"{path}: cannot be written ({e})") from None
    return path


def write_trace(path: str | os.PathLike, graph: AerGraph, spikes: dict[str, np.ndarray],
                samples_per_chunk: int = 16) -> tuple[Path, int]:
    """Recorded spikes → trace file (.h5 streamed per chunk of samples, or .json Perfetto). Returns (path, events)."""
    path = check_writable(path)
    batch = len(next(iter(spikes.values())))
    if path.suffix == ".json":
        ev = events_from_spikes(graph, spikes)
        return write_perfetto(path, [p.name for p in graph.populations], ev), len(ev)
    with TraceWriter(path, graph) as w:
        for lo in range(0, batch, samples_per_chunk):
            w.append(events_from_spikes(graph, {k: v[lo:lo + samples_per_chunk] for k, v in spikes.items()}, lo))
        return path, w.count


def stream_simulation(graph: AerGraph, inputs: dict[str, np.ndarray], path: str | os.PathLike,
                      samples_per_chunk: int = 8) -> int:
    """Simulate ``samples_per_chunk`` samples at a time and append their events to an HDF5 trace.

    Memory stays bounded by one chunk's spike arrays, however many samples run.
    Returns the number of events written.
    """
    from sim.engine.flatgraph import flatten
    from sim.engine.simulate import simulate

    flat = flatten(graph)
    batch = len(next(iter(inputs.values())))
    with TraceWriter(path, graph) as w:
        for lo in range(0, batch, samples_per_chunk):
            part = {k: np.asarray(v)[lo:lo + samples_per_chunk] for k, v in inputs.items()}
            res = simulate(graph, part, flat=flat)
            w.append(events_from_spikes(graph, res.spikes, lo))
            del res
        return w.count
