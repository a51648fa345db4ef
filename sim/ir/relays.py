"""Graded-relay collapse: a relay population between two projections folded into one projection.

NIR and netx have no graded relays; both exporters call ``collapse_relays`` first."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sps

from sim import numerics as nm
from sim.errors import IRError
from sim.ir.graph import AerGraph, Population, Projection


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


def collapse_edges(graph: AerGraph, fmt: str) -> tuple[tuple[Population, ...], list[tuple[Projection, int]]]:
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
    pops, edges = collapse_edges(graph, fmt)
    projs = []
    for pr, d in edges:
        if d > nm.MAX_DELAY:
            raise IRError(f"projection '{pr.name}'", "delay", f"collapsing the relays composes a delay of {d} "
                          f"ticks, beyond Loihi's {nm.MAX_DELAY}")
        projs.append(replace(pr, delay=d))
    return AerGraph(graph.numerics, pops, tuple(projs), graph.readout, graph.timesteps, dict(graph.metadata))
