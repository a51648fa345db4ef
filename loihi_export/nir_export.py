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

Graded relays (``sim.ir``; the residual stream of ``spikeformer.spec``) have no NIR
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

from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sps

from sim import numerics as nm
from sim.ir import AerGraph, IRError, Population, Projection
from sim.neurons import IF, LI, LIF, Bias, CubaLIFFloat

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


class RelayError(ValueError):
    """A graded population that an interchange format cannot express (one line)."""


def _pass_through(pr: Projection, post_size: int) -> sps.csr_matrix | None:
    """The relay → post map as a 0/1 (post, relay) matrix if ``pr`` passes payloads unchanged, else None."""
    if not np.all(pr.weights.astype(np.float64) * 2.0 ** pr.weight_exp == 1.0):
        return None                                # payload scaled (loihi: floor(2^-e·g / 2^-e) = g is exact)
    if np.bincount(pr.indices, minlength=post_size).max(initial=0) > 1:
        return None                                # a target summing several relay neurons: floors differ
    rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
    return sps.csr_matrix((np.ones(pr.n_synapses, np.int8), (pr.indices, rows)), shape=(post_size, pr.n_pre))


def _collapse(graph: AerGraph, fmt: str) -> tuple[tuple[Population, ...], list[tuple[Projection, int]]]:
    """Populations without the relays, and [(projection with delay 1, its true delay)] (see module doc).

    Exact: a pass-through target j of relay neuron i gets g_i = Σ_in floor((W_in·s)_i · 2^e_in), which is
    what the composed projection pre → post (row j = W_in's row i, exponent e_in) delivers."""
    pops = {p.name: p for p in graph.populations}
    edges: list[tuple[Projection, int]] = [(replace(pr, delay=1), pr.delay) for pr in graph.projections]
    names = {pr.name for pr in graph.projections}
    if graph.readout is not None and pops[graph.readout.pre].is_graded:
        raise RelayError(f"{fmt} export: the readout reads graded population '{graph.readout.pre}'; "
                         f"{fmt} has no graded relay")
    order = {p.name: k for k, p in enumerate(graph.populations)}
    for r in (p for p in graph.populations if p.is_graded):
        ins = sorted(((pr, d) for pr, d in edges if pr.post == r.name), key=lambda e: order[e[0].pre])
        outs = [(pr, d) for pr, d in edges if pr.pre == r.name]
        maps = [_pass_through(pr, pops[pr.post].size) for pr, _ in outs]
        bad = next((pr.name for (pr, _), m in zip(outs, maps) if m is None), None)
        if bad:
            raise RelayError(f"{fmt} export: graded population '{r.name}' cannot be expressed: {fmt} has no graded "
                             f"relay, and projection '{bad}' does not pass its payload unchanged (weights 2^-exp, "
                             f"one relay neuron per target)")
        edges = [e for e in edges if e[0].pre != r.name and e[0].post != r.name]
        for (o, d_out), m in zip(outs, maps):
            for i, d_in in ins:
                rows = np.repeat(np.arange(i.n_pre), np.diff(i.indptr))
                w_in = sps.csr_matrix((i.weights, (i.indices, rows)), shape=(r.size, i.n_pre))
                c = (m @ w_in).T.tocsr()                    # (pre, post): row j of m picks one relay row
                c.sort_indices()
                base = i.name[:-len(f"->{r.name}")] if i.name.endswith(f"->{r.name}") else i.name
                name, k = f"{base}->{o.post}", 1
                while name in names:
                    k += 1
                    name = f"{base}->{o.post}#{k}"
                names.add(name)
                proj = Projection(name, i.pre, o.post, c.indptr, c.indices, c.data.astype(i.weights.dtype),
                                  delay=1, weight_exp=i.weight_exp)
                edges.append((proj, d_in + d_out))
    kept = tuple(p for p in graph.populations if not p.is_graded)
    if len(kept) < len(graph.populations):          # each post's projections together, in stream order
        edges.sort(key=lambda e: order[e[0].post])
    return kept, edges


def collapse_relays(graph: AerGraph, fmt: str = "interchange") -> AerGraph:
    """``graph`` without graded relays (see module doc): every LIF population's input is unchanged, tick
    for tick. Raises :class:`RelayError` for a graded population that is not a pass-through relay and
    IRError where a composed delay exceeds Loihi's (``sim.numerics.MAX_DELAY``)."""
    if not any(p.is_graded for p in graph.populations):
        return graph
    pops, edges = _collapse(graph, fmt)
    projs = []
    for pr, d in edges:
        if d > nm.MAX_DELAY:
            raise IRError(f"projection '{pr.name}'", "delay", f"collapsing the relays composes a delay of {d} "
                          f"ticks, beyond Loihi's {nm.MAX_DELAY}")
        projs.append(replace(pr, delay=d))
    return AerGraph(graph.numerics, pops, tuple(projs), graph.readout, graph.timesteps, dict(graph.metadata))


def to_nir(graph: AerGraph):
    """The NIR graph of ``graph`` (see module docstring; relays collapsed)."""
    import nir

    pops, projections = _collapse(graph, "NIR")
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
