"""Interchange: NIR (neuromorphs/NIR) files, and the graded-relay collapse NIR and netx share.

NIR (``to_nir``): input populations → ``nir.Input``; each neuron model's float
form (``NeuronModel.float_equivalent``) → its NIR node (``NIR_NODES``: ``CubaLIFFloat``
→ ``nir.CubaLIF``, ``LIF`` → ``nir.LIF``, ``IF`` → ``nir.IF``, ``LI`` → ``nir.LI``);
projections → ``nir.Linear`` (dense (post, pre) weights, scaled by 2^weight_exp) with
edges pre → linear → post, or ``nir.Affine`` carrying the weights of the ``Bias``
projections into the same population as its bias; inputs into one node
add. The discrete dynamics map onto NIR's continuous form with a tick of
``DT`` seconds (the dt snnTorch's importer assumes)::

    u ← u·(1 − du_f) + a     ⇔  tau_syn = DT / du_f,  w_in = tau_syn / DT
    v ← v·(1 − dv_f) + u     ⇔  tau_mem = DT / dv_f,  r = tau_mem / DT,  v_leak = 0
    spike v > vth, reset 0   ⇔  v_threshold = vth,    v_reset = 0

(du_f, dv_f of the float mode; a loihi graph exports its float equivalent, du_f =
(du+1)/4096, dv_f = dv/4096, weights in activation units). du_f = 0 or dv_f = 0
(no decay) become ``tau = inf``. NIR edges carry no delay: the file describes the
zero-delay model; each projection's hardware delay is kept in its metadata.

Graded relays (``sim.ir``; the residual stream of ``spikeformer.arch``) have no NIR
node, so they are collapsed first (``collapse_relays``): a relay whose outgoing
projections pass its payload unchanged (weight·2^weight_exp = 1, each target fed
by one relay neuron) is removed and each projection into it is routed straight to
the relay's targets, keeping its weights and exponent, delays adding up. Every
stream LIF then receives every earlier stream projection again, as the model's
definition (R = Σ currents) reads. Any other graded population is refused.

The netx export (``netx_export``) collapses relays the same way (the composed delays must
fit Loihi's, ≤ 64).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.ir.graph import AerGraph
from sim.ir.relays import collapse_edges
from sim.neurons.cuba import CubaLIFFloat
from sim.neurons.if_ import IF
from sim.neurons.input import Bias
from sim.neurons.li import LI
from sim.neurons.lif import LIF

DT = 1e-4


def _tau(d: float) -> float:
    return DT / d if d > 0 else np.inf


def _nir_cuba(m: CubaLIFFloat, n: int, meta: dict):
    import nir
    tau_syn, tau_mem = _tau(m.du), _tau(m.dv)
    return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem / DT),
                       v_leak=np.zeros(n), v_threshold=np.full(n, m.vth), v_reset=np.zeros(n),
                       w_in=np.full(n, tau_syn / DT), metadata=meta)


def _nir_lif(m: LIF, n: int, meta: dict):
    import nir
    tau = _tau(m.dv)
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.full(n, m.vth),
                   v_reset=np.zeros(n), metadata=meta)


def _nir_if(m: IF, n: int, meta: dict):
    import nir
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, m.vth), v_reset=np.zeros(n), metadata=meta)


def _nir_li(m: LI, n: int, meta: dict):
    import nir
    tau = _tau(m.dv)
    return nir.LI(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), metadata=meta)


NIR_NODES = {CubaLIFFloat: _nir_cuba, LIF: _nir_lif, IF: _nir_if, LI: _nir_li}


def to_nir(graph: AerGraph):
    """The NIR graph of ``graph`` (see module docstring; relays collapsed)."""
    import nir

    pops, projections = collapse_edges(graph, "NIR")
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    for p in pops:
        if p.model.needs_input:
            nodes[p.name] = nir.Input(input_type={"input": np.array([p.size])})
            continue
        if p.is_source:
            continue                                   # a Bias: its projections become Affine biases
        m = p.model.float_equivalent()
        if type(m) not in NIR_NODES:
            raise ValueError(f"NIR export: population '{p.name}': neuron model {type(p.model).__name__} has no NIR node")
        meta = {"depth": p.depth, "role": p.role, "shape": list(p.shape), "numerics": graph.numerics,
                "model": p.model.to_dict()}
        nodes[p.name] = NIR_NODES[type(m)](m, p.size, meta)
    sizes = {p.name: p.size for p in pops}
    by_name = {p.name: p for p in pops}
    bias: dict[str, np.ndarray] = {}
    for pr, _ in projections:
        if isinstance(by_name[pr.pre].model, Bias):
            b = pr.to_dense(sizes[pr.post]).astype(np.float64).sum(axis=1) * 2.0 ** pr.weight_exp
            bias[pr.post] = bias.get(pr.post, 0) + b
    for pr, delay in projections:
        if isinstance(by_name[pr.pre].model, Bias):
            continue
        w = (pr.to_dense(sizes[pr.post]).astype(np.float64) * 2.0 ** pr.weight_exp).astype(np.float32)
        name = f"proj:{pr.name}"
        meta = {"delay": delay, "weight_exp": pr.weight_exp, "pre": pr.pre, "post": pr.post}
        b = bias.pop(pr.post, None)
        nodes[name] = (nir.Linear(weight=w, metadata=meta) if b is None else
                       nir.Affine(weight=w, bias=np.asarray(b, np.float32), metadata=meta))
        edges += [(pr.pre, name), (name, pr.post)]
    if bias:
        raise ValueError(f"NIR export: population '{next(iter(bias))}' receives only bias input; NIR's Affine "
                         f"needs a presynaptic node")
    has_out = {pre for pre, _ in edges}
    for p in pops:
        if not p.is_source and p.name not in has_out:
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
