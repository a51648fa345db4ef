"""One file per AER graph: an ``.npz`` archive with a JSON header (schema-versioned).

Layout::

    header            uint8 bytes of UTF-8 JSON: {"schema": "spikeformer.aer", "version": 1,
                      "numerics", "timesteps", "metadata", "populations": [...],
                      "projections": [{name, pre, post, delay, weight_exp}], "readout": {...}|null}
    p{k}.indptr       int64    CSR row pointers of projection k
    p{k}.indices      int32    post-synaptic indices
    p{k}.weights      int16 (loihi) | float32 (float)
    readout.weights   int32 | float32

Loading never unpickles (``allow_pickle=False``) and validates every field; a
problem raises :class:`~sim.ir.IRError` naming the file and field.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from sim.ir import AerGraph, IRError, Population, Projection, Readout

SCHEMA = "spikeformer.aer"
VERSION = 1
_POP_FIELDS = ("name", "size", "kind", "du", "dv", "vth", "shape", "depth", "role")
_ALLOWED_DTYPES = {"indptr": ("int64", "int32"), "indices": ("int32", "int64"),
                   "weights": ("int16", "int32", "float32")}


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same directory): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool) -> None:
    with open(path, "wb") as f:               # closed (flushed) before atomic_write renames it
        (np.savez_compressed if compressed else np.savez)(f, **arrays)


def save_graph(graph: AerGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` atomically (temp file + rename) and return the path."""
    path = Path(path)
    weight_dtype = np.int16 if graph.numerics == "loihi" else np.float32
    header = {
        "schema": SCHEMA, "version": VERSION, "numerics": graph.numerics,
        "timesteps": int(graph.timesteps), "metadata": dict(graph.metadata),
        "populations": [{f: (list(getattr(p, f)) if f == "shape" else
                             (getattr(p, f).item() if isinstance(getattr(p, f), np.generic) else getattr(p, f)))
                         for f in _POP_FIELDS} for p in graph.populations],
        "projections": [{"name": pr.name, "pre": pr.pre, "post": pr.post,
                         "delay": int(pr.delay), "weight_exp": int(pr.weight_exp)} for pr in graph.projections],
        "readout": None if graph.readout is None else
        {"pre": graph.readout.pre, "start": int(graph.readout.start), "stop": int(graph.readout.stop)},
    }
    arrays: dict[str, np.ndarray] = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    for k, pr in enumerate(graph.projections):
        arrays[f"p{k}.indptr"] = pr.indptr.astype(np.int64)
        arrays[f"p{k}.indices"] = pr.indices.astype(np.int32)
        arrays[f"p{k}.weights"] = pr.weights.astype(weight_dtype)
    if graph.readout is not None:
        arrays["readout.weights"] = graph.readout.weights.astype(np.int32 if graph.numerics == "loihi" else np.float32)
    return atomic_write(path, lambda p: _write_npz(p, arrays, compressed=False))


def load_graph(path: str | os.PathLike) -> AerGraph:
    """Read and validate an AER graph file; raise IRError naming the bad field."""
    path = Path(path)
    where = f"{path}"
    if not path.is_file():
        raise IRError(where, "file", "does not exist")
    try:
        z = np.load(path, allow_pickle=False)
        names = set(z.files)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise IRError(where, "file", f"is not a readable AER graph archive ({e})") from None
    with z:
        if "header" not in names:
            raise IRError(where, "header", "is missing")
        try:
            header = json.loads(bytes(z["header"]).decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise IRError(where, "header", f"is not valid JSON ({e})") from None
        if header.get("schema") != SCHEMA:
            raise IRError(where, "header.schema", f"expected {SCHEMA!r}, got {header.get('schema')!r}")
        if header.get("version") != VERSION:
            raise IRError(where, "header.version", f"this build reads version {VERSION}, file has {header.get('version')!r}")
        for key in ("numerics", "timesteps", "populations", "projections"):
            if key not in header:
                raise IRError(where, f"header.{key}", "is missing")

        def arr(key: str, kind: str) -> np.ndarray:
            if key not in names:
                raise IRError(where, key, "array is missing")
            try:
                a = z[key]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                raise IRError(where, key, f"cannot be read ({e})") from None
            if a.dtype.name not in _ALLOWED_DTYPES[kind]:
                raise IRError(where, key, f"has dtype {a.dtype}, expected one of {_ALLOWED_DTYPES[kind]}")
            return a

        try:
            pops = []
            for d in header["populations"]:
                d = dict(d)
                d["shape"] = tuple(d.get("shape", ()))
                pops.append(Population(**{k: d[k] for k in _POP_FIELDS if k in d}))
            projs = []
            for k, d in enumerate(header["projections"]):
                projs.append(Projection(d["name"], d["pre"], d["post"], arr(f"p{k}.indptr", "indptr"),
                                        arr(f"p{k}.indices", "indices"), arr(f"p{k}.weights", "weights"),
                                        delay=d["delay"], weight_exp=d.get("weight_exp", 0)))
            ro = header.get("readout")
            readout = None if ro is None else Readout(ro["pre"], arr("readout.weights", "weights"), ro["start"], ro["stop"])
            return AerGraph(header["numerics"], tuple(pops), tuple(projs), readout,
                            header["timesteps"], header.get("metadata", {}))
        except IRError as e:
            raise IRError(f"{where}: {e.where}", e.field, e.problem) from None
        except (KeyError, TypeError) as e:
            raise IRError(where, "header", f"is malformed ({type(e).__name__}: {e})") from None


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
    from sim.engine import SimResult

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
