"""Interchange files: NIR (neuromorphs/NIR) and a lava-dl netx-style HDF5 description.

NIR (``to_nir``): input populations → ``nir.Input``; LIF populations →
``nir.CubaLIF``; projections → ``nir.Linear`` (dense (post, pre) weights,
scaled by 2^weight_exp) with edges pre → linear → post; inputs into one node
add. The discrete dynamics map onto NIR's continuous form with a tick of
``DT`` seconds (the dt snnTorch's importer assumes)::

    u ← u·(1 − du_f) + a     ⇔  tau_syn = DT / du_f,  w_in = tau_syn / DT
    v ← v·(1 − dv_f) + u     ⇔  tau_mem = DT / dv_f,  r = tau_mem / DT,  v_leak = 0
    spike v > vth, reset 0   ⇔  v_threshold = vth,    v_reset = 0

(du_f, dv_f of the float mode; a loihi graph exports its float equivalent, du_f =
(du+1)/4096, dv_f = dv/4096, weights in activation units). du_f = 0 or dv_f = 0
(no decay) become ``tau = inf``. NIR edges carry no delay: the file describes the
zero-delay model; each projection's hardware delay is kept in its metadata.

netx (``write_netx``): one HDF5 group per population/projection in the layout of
lava-dl's ``netx`` (``layer/<k>/{type, shape, neuron/{du,dv,vThMant,...}, weight,
delay}``) with our numeric fields, so Loihi tooling can read integer parameters
without the npz format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim import numerics as nm
from sim.ir import AerGraph

DT = 1e-4


def _float_params(graph: AerGraph, p) -> tuple[float, float, float]:
    if graph.numerics == "loihi":
        return (p.du + nm.DS_OFFSET) / nm.DECAY_UNITY, p.dv / nm.DECAY_UNITY, float(p.vth)
    return float(p.du), float(p.dv), float(p.vth)


def to_nir(graph: AerGraph):
    """The NIR graph of ``graph`` (see module docstring)."""
    import nir

    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    for p in graph.populations:
        if p.kind == "input":
            nodes[p.name] = nir.Input(input_type={"input": np.array([p.size])})
            continue
        du_f, dv_f, vth = _float_params(graph, p)
        tau_syn = DT / du_f if du_f > 0 else np.inf
        tau_mem = DT / dv_f if dv_f > 0 else np.inf
        n = p.size
        nodes[p.name] = nir.CubaLIF(
            tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem / DT),
            v_leak=np.zeros(n), v_threshold=np.full(n, vth), v_reset=np.zeros(n),
            w_in=np.full(n, tau_syn / DT),
            metadata={"depth": p.depth, "role": p.role, "shape": list(p.shape), "numerics": graph.numerics,
                      "du": p.du, "dv": p.dv, "vth": p.vth})
    sizes = {p.name: p.size for p in graph.populations}
    for pr in graph.projections:
        w = pr.to_dense(sizes[pr.post]).astype(np.float64) * 2.0 ** pr.weight_exp
        name = f"proj:{pr.name}"
        nodes[name] = nir.Linear(weight=w.astype(np.float32),
                                 metadata={"delay": pr.delay, "weight_exp": pr.weight_exp, "pre": pr.pre, "post": pr.post})
        edges += [(pr.pre, name), (name, pr.post)]
    has_out = {pre for pre, _ in edges}
    for p in graph.populations:
        if p.kind == "lif" and p.name not in has_out:
            out = f"output:{p.name}"
            nodes[out] = nir.Output(output_type={"output": np.array([p.size])})
            edges.append((p.name, out))
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"dt": DT, "numerics": graph.numerics, "timesteps": graph.timesteps,
                                  "producer": "spikeformer"})


def write_nir(graph: AerGraph, path: str | Path) -> Path:
    import nir

    path = Path(path)
    nir.write(path, to_nir(graph))
    return path


def write_netx(graph: AerGraph, path: str | Path) -> Path:
    """lava-dl netx-style HDF5: ``layer/<k>`` per population, ``synapse/<k>`` per projection."""
    import h5py

    path = Path(path)
    sizes = {p.name: p.size for p in graph.populations}
    with h5py.File(path, "w") as f:
        f.attrs["producer"] = "spikeformer"
        f.attrs["numerics"] = graph.numerics
        f.attrs["timesteps"] = graph.timesteps
        layers = f.create_group("layer")
        for k, p in enumerate(graph.populations):
            g = layers.create_group(str(k))
            g["type"] = np.bytes_("input" if p.kind == "input" else "cuba")
            g["name"] = np.bytes_(p.name)
            g["shape"] = np.array(p.shape)
            g["depth"] = p.depth
            if p.kind == "lif":
                n = g.create_group("neuron")
                n["du"], n["dv"] = p.du, p.dv
                n["vThMant"] = p.vth
                n["refDelay"] = 0
                n["gradedSpike"] = False
        syn = f.create_group("synapse")
        for k, pr in enumerate(graph.projections):
            g = syn.create_group(str(k))
            g["name"] = np.bytes_(pr.name)
            g["pre"], g["post"] = np.bytes_(pr.pre), np.bytes_(pr.post)
            g["weight"] = pr.to_dense(sizes[pr.post])
            g["weight_exp"] = pr.weight_exp
            g["delay"] = pr.delay
            g["indptr"], g["indices"], g["values"] = pr.indptr, pr.indices, pr.weights
    return path


def read_netx(path: str | Path) -> dict:
    """Read back what ``write_netx`` wrote: {"layers": [...], "synapses": [...]} (for checks)."""
    import h5py

    out: dict = {"layers": [], "synapses": []}
    with h5py.File(path, "r") as f:
        for k in sorted(f["layer"], key=int):
            g = f["layer"][k]
            d = {"name": g["name"][()].decode(), "type": g["type"][()].decode(), "shape": tuple(g["shape"][()])}
            if "neuron" in g:
                d.update({key: g["neuron"][key][()] for key in ("du", "dv", "vThMant")})
            out["layers"].append(d)
        for k in sorted(f["synapse"], key=int):
            g = f["synapse"][k]
            out["synapses"].append({"name": g["name"][()].decode(), "weight": g["weight"][()],
                                    "delay": int(g["delay"][()]), "weight_exp": int(g["weight_exp"][()])})
    return out
