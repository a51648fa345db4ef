"""One file per AER graph: an ``.npz`` archive with a JSON header (schema-versioned).

Layout::

    header            uint8 bytes of UTF-8 JSON: {"schema": "spikeformer.aer", "version": 2,
                      "numerics", "timesteps", "metadata", "populations": [{name, size,
                      model: {kind, <its parameters>}, shape, depth, role}],
                      "projections": [{name, pre, post, delay, weight_exp}], "readout": {pre, start,
                      stop, per_token (version 3 only)}|null}
    p{k}.indptr       int64    CSR row pointers of projection k
    p{k}.indices      int32    post-synaptic indices
    p{k}.weights      int16 (loihi) | float32 (float)
    readout.weights   int32 | float32

Loading never unpickles (``allow_pickle=False``) and validates every field; a
problem raises :class:`~sim.ir.IRError` naming the file and field. Version 1 files
(``kind`` "input" | "lif" | "graded" with loose ``du, dv, vth``) are read and mapped
onto the neuron models: "lif" → the CUBA LIF of the file's numerics. A graph with a per-token readout is
written as version 3 (its readout has ``"per_token": true``); every other graph as version 2, as before.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from sim.errors import IRError
from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.neurons.catalog import cuba, model_from_dict
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Input
from sim.system.files import atomic_write

SCHEMA = "spikeformer.aer"


VERSION = 3                  # 3: the readout's "per_token" (a per-token readout); files without one are written as 2


READS = (1, 2, 3)


_POP_FIELDS = ("name", "size", "shape", "depth", "role")


_V1_MODELS = {"input": lambda numerics, d: Input(), "graded": lambda numerics, d: GradedRelay(),
              "lif": lambda numerics, d: cuba(numerics, d.get("du", 0), d.get("dv", 0), d.get("vth", 0))}


_ALLOWED_DTYPES = {"indptr": ("int64", "int32"), "indices": ("int32", "int64"),
                   "weights": ("int16", "int32", "float32")}


def _write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool) -> None:
    with open(path, "wb") as f:               # closed (flushed) before atomic_write renames it
        (np.savez_compressed if compressed else np.savez)(f, **arrays)


def save_graph(graph: AerGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` atomically (temp file + rename) and return the path."""
    path = Path(path)
    weight_dtype = graph.arith.weight_dtype
    header = {
        "schema": SCHEMA, "version": VERSION if graph.readout is not None and graph.readout.per_token else 2,
        "numerics": graph.numerics,
        "timesteps": int(graph.timesteps), "metadata": dict(graph.metadata),
        "populations": [{"name": p.name, "size": int(p.size), "model": p.model.to_dict(),
                         "shape": [int(x) for x in p.shape], "depth": int(p.depth), "role": p.role}
                        for p in graph.populations],
        "projections": [{"name": pr.name, "pre": pr.pre, "post": pr.post,
                         "delay": int(pr.delay), "weight_exp": int(pr.weight_exp)} for pr in graph.projections],
        "readout": None if graph.readout is None else
        {"pre": graph.readout.pre, "start": int(graph.readout.start), "stop": int(graph.readout.stop),
         **({"per_token": True} if graph.readout.per_token else {})},
    }
    arrays: dict[str, np.ndarray] = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    for k, pr in enumerate(graph.projections):
        arrays[f"p{k}.indptr"] = pr.indptr.astype(np.int64)
        arrays[f"p{k}.indices"] = pr.indices.astype(np.int32)
        arrays[f"p{k}.weights"] = pr.weights.astype(weight_dtype)
    if graph.readout is not None:
        arrays["readout.weights"] = graph.readout.weights.astype(graph.arith.readout_dtype)
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
        version = header.get("version")
        if version not in READS:
            raise IRError(where, "header.version", f"this build reads versions {READS}, file has {version!r}")
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
            for k, d in enumerate(header["populations"]):
                d = dict(d)
                d["shape"] = tuple(d.get("shape", ()))
                pops.append(Population(model=_model(d, version, header["numerics"], f"header.populations[{k}]"),
                                       **{f: d[f] for f in _POP_FIELDS if f in d}))
            projs = []
            for k, d in enumerate(header["projections"]):
                projs.append(Projection(d["name"], d["pre"], d["post"], arr(f"p{k}.indptr", "indptr"),
                                        arr(f"p{k}.indices", "indices"), arr(f"p{k}.weights", "weights"),
                                        delay=d["delay"], weight_exp=d.get("weight_exp", 0)))
            ro = header.get("readout")
            per_token = False if ro is None else ro.get("per_token", False)
            if not isinstance(per_token, bool) or (per_token and version < 3):
                raise IRError(where, "header.readout.per_token", f"must be a bool in a version 3 file, got "
                                                                 f"{per_token!r} (version {version})")
            readout = None if ro is None else Readout(ro["pre"], arr("readout.weights", "weights"), ro["start"],
                                                      ro["stop"], per_token)
            return AerGraph(header["numerics"], tuple(pops), tuple(projs), readout,
                            header["timesteps"], header.get("metadata", {}))
        except IRError as e:
            raise IRError(f"{where}: {e.where}", e.field, e.problem) from None
        except (KeyError, TypeError) as e:
            raise IRError(where, "header", f"is malformed ({type(e).__name__}: {e})") from None


def _model(d: dict, version: int, numerics: str, where: str):
    """A population's neuron model from its header entry (version 2: ``model``; 1: ``kind`` + du/dv/vth)."""
    if version == 1:
        if d.get("kind", "lif") not in _V1_MODELS:
            raise IRError(where, "kind", f"must be one of {tuple(_V1_MODELS)} in a version 1 file, got {d.get('kind')!r}")
        return _V1_MODELS[d.get("kind", "lif")](numerics, d)
    if not isinstance(d.get("model"), dict):
        raise IRError(where, "model", "is missing (a neuron model {kind, parameters})")
    return model_from_dict(d["model"])
