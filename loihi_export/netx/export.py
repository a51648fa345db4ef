"""lava-dl netx export: a chain of dense CUBA-LIF layers in lava-dl 0.6.0's own HDF5 layout.

The file ``lava.lib.dl.netx.hdf5.Network(net_config=path)`` loads (``netx/hdf5.py``,
``netx/blocks/process.py``)::

    layer/0/{type "input", shape}                 the input population; no ``neuron`` group, so netx
                                                  makes no process for it and the network's ``inp`` is
                                                  layer 1's synapse (spikes in, as our input)
    layer/k/{type "dense" | "dense_rec", shape, weight (post, pre), [weight_rec (post, post)], [delay],
             neuron/{type "CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}}

layers in chain order (netx connects layer k's spikes to layer k + 1 and nothing else). Our
names, numerics and timesteps ride along as HDF5 attributes, which netx does not read.

What netx builds, and the fields that make it ours tick for tick (``sim.numerics``, loihi):

* neuron: ``LIF(du = iDecay − 1, dv = vDecay, vth = vThMant, bias 0)`` — so iDecay = du + 1,
  vDecay = dv, vThMant = vth; refDelay = 1 and gradedSpike = False are what netx assumes
  (it reads neither for CUBA).
* weight: netx stores one integer per synapse and **no exponent**. Its loader rescales the
  matrix to fill 8 bits (``netx.utils.optimize_weight_bits``: w' = W·2^s, exponent −s) and
  Lava's Dense clips and truncates w' (``clip_weights``, ``truncate_weights``), then adds
  (Σ w'·spikes) >> s. We write W = w·2^weight_exp; the projection is expressible iff W is an
  integer matrix and that path gives back w'·2^−s = W exactly (``netx_optimize`` and
  ``lava_dense_weights`` replay it),
  i.e. roughly: integers in [−256, 254] (mixed signs), [0, 255] or [−255, 0].
* delay: a netx Dense adds one tick, and ``delay`` d (DelayDense, d ≤ 62) d more. Our
  projection delay D ≥ 1 → no ``delay`` when D = 1, else the scalar D − 1 (so D ≤ 63).
* dense_rec (a layer whose population also feeds itself): netx's RecurrentDense adds the
  recurrent synapse's one tick (and the same ``delay``) and shares one 8-bit mapping between
  ``weight`` and ``weight_rec``; expressible when both projections have the same delay.

Graded relays are collapsed first (``nir_export.collapse_relays``); the readout is off-chip and
not part of netx. Anything else — float numerics, several inputs, a population fed by several
layers (skip connections, residual streams, attention), fan-out, a weight netx cannot hold —
raises :class:`NetxError`, one line saying why.

Population and projection fields are read only through ``_input``, ``_cuba`` and the Projection
accessors below, so a change of the IR's neuron kinds touches those alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.ir.graph import AerGraph, Population, Projection
from sim.ir.relays import collapse_relays
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input

NETX_MAX_DELAY = 62            # hdf5.Network clamps larger delays (DelayDense max_delay=62)


REF_DELAY = 1                  # netx's default CUBA neuron


class NetxError(ValueError):
    """A graph netx cannot express (one line, saying why)."""


def _input(p: Population) -> bool:
    return isinstance(p.model, Input)


def _cuba(p: Population) -> tuple[int, int, int] | None:
    """(du, dv, vth) of a loihi CUBA-LIF population, None for any other neuron model."""
    return (p.model.du, p.model.dv, p.model.vth) if isinstance(p.model, CubaLIF) else None


def _effective(pr: Projection, n_post: int) -> np.ndarray:
    """W = w·2^weight_exp as a (post, pre) float64 matrix (exact: |w| < 2^8, |exp| ≤ 8)."""
    return pr.to_dense(n_post).astype(np.float64) * 2.0 ** pr.weight_exp


def netx_optimize(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(w', num_weight_bits, weight_exponent) that lava-dl's loader makes of an integer netx weight
    matrix ``w`` (not all zero): ``lava.lib.dl.netx.utils.optimize_weight_bits`` of lava-dl 0.6.0,
    replayed (tested against it). For ``dense_rec`` it is applied to [weight | weight_rec]."""
    w = np.asarray(w, np.int64)
    if not w.any():
        raise ValueError("netx_optimize: an all-zero matrix (lava-dl's loader fails on it)")
    mx, mn = int(w.max()), int(w.min())
    if mx > 254 and mn < 0:                        # lava-dl clips (with a printed warning)
        w = np.clip(w, -256, 254)
        mx = int(w.max())
    if mn < -256 and mx > 0:
        w = np.clip(w, -256, 254)
        mn = int(w.min())
    mixed = mn < 0 <= mx                           # lava-dl: max < 0 inhibitory, min >= 0 excitatory
    scale = -256 / mn if mx < 0 else 255 / mx if mn >= 0 else min(127 / mx if mx else np.inf, -128 / mn)
    scale_bits = int(np.floor(np.log2(scale))) + int(mixed)
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    num_bits = 8 - scale_bits - (n - int(mixed))
    w = np.left_shift(w.astype(np.int32), scale_bits)     # a negative count gives 0, as in lava-dl
    return w.astype(np.int64), num_bits, -scale_bits


def lava_dense_weights(w: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """The weights Lava's bit-accurate Dense / DelayDense (lava-nc 0.10) computes with, given
    ``weights=w`` and ``num_weight_bits``: its own sign mode, ``clip_weights(8)``,
    ``truncate_weights(num_weight_bits)``, replayed (tested against them)."""
    w = np.asarray(w).astype(np.int32)               # Lava's dtype (shifts by a negative count give 0)
    excitatory = w.min() >= 0
    inhibitory = not excitatory and w.max() <= 0
    mixed = not (excitatory or inhibitory)
    if inhibitory:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    cut = 8 - num_weight_bits + int(mixed)
    w = (w >> cut) << cut
    return (-w if inhibitory else w).astype(np.int64)


def _exact(parts: list[np.ndarray]) -> str | None:
    """None if netx reproduces the effective weights (one matrix, or [weight, weight_rec]) exactly,
    else why not. Lava's synapse adds (Σ w'·s) shifted by the exponent, which is Σ W·s iff w'·2^exp = W."""
    w = np.hstack(parts)
    if not np.any(w):
        return "has no non-zero weight (lava-dl's loader fails on an all-zero matrix)"
    if np.any(w != np.round(w)):
        return ("has weights·2^weight_exp that are not integers; netx stores integer weights with no exponent "
                "(lava-dl picks the exponent itself)")
    opt, num_bits, exp = netx_optimize(w.astype(np.int64))
    cols = np.cumsum([0] + [p.shape[1] for p in parts])
    back = np.hstack([lava_dense_weights(opt[:, a:b], num_bits) for a, b in zip(cols[:-1], cols[1:])])
    back = back.astype(np.float64) * 2.0 ** exp
    bad = np.flatnonzero(back != w)
    if bad.size:
        i, j = np.unravel_index(bad[0], w.shape)
        return (f"has weights·2^weight_exp in [{w.min():g}, {w.max():g}] that lava-dl's 8-bit mapping does not "
                f"keep (post {i} ← pre {j}: {w[i, j]:g} becomes {back[i, j]:g}); netx holds 8-bit weights, "
                f"[-256, 254] with mixed signs, [0, 255] or [-255, 0]")
    return None


@dataclass(frozen=True)
class NetxLayer:
    """One netx layer: a population, and (dense layers) its input projection and recurrent one."""

    population: Population
    projection: Projection | None = None
    recurrent: Projection | None = None


def netx_chain(graph: AerGraph) -> list[NetxLayer]:
    """The input layer and the dense layers of ``graph`` in chain order; NetxError if netx cannot
    express it (see module doc)."""
    if not graph.arith.fixed_point:
        raise NetxError(f"netx export: the graph has {graph.numerics} numerics; netx holds Loihi fixed-point "
                        f"neurons and 8-bit weights (convert with loihi numerics)")
    graph = collapse_relays(graph, "netx")
    pops = {p.name: p for p in graph.populations}
    inputs = [p.name for p in graph.populations if _input(p)]
    if len(inputs) != 1:
        raise NetxError(f"netx export: netx networks have one input layer; the graph has {len(inputs)} input "
                        f"populations {inputs}")
    ins: dict[str, list[Projection]] = {n: [] for n in pops}
    outs: dict[str, list[Projection]] = {n: [] for n in pops}
    for pr in graph.projections:
        ins[pr.post].append(pr)
        if pr.pre != pr.post:
            outs[pr.pre].append(pr)
    layers = [NetxLayer(pops[inputs[0]])]
    cur = inputs[0]
    while outs[cur]:
        if len({pr.post for pr in outs[cur]}) < len(outs[cur]):
            raise NetxError(f"netx export: population '{cur}' feeds population '{outs[cur][0].post}' through "
                            f"{len(outs[cur])} parallel projections {[pr.name for pr in outs[cur]]} (a sign-split "
                            f"or two-word quantisation); a netx layer holds one matrix: import with --numerics "
                            f"loihi --synapse-words 1 --signs mixed")
        if len(outs[cur]) > 1:
            raise NetxError(f"netx export: population '{cur}' feeds {len(outs[cur])} populations "
                            f"{[pr.post for pr in outs[cur]]}; netx layers are sequential, each feeding only the "
                            f"next (a skip connection, residual stream or attention cannot be expressed)")
        pr = outs[cur][0]
        nxt = pops[pr.post]
        rec = [q for q in ins[nxt.name] if q.pre == nxt.name]
        others = [q.name for q in ins[nxt.name] if q is not pr and q.pre != nxt.name]
        if others:
            raise NetxError(f"netx export: population '{nxt.name}' receives {len(others) + 1} projections "
                            f"{[pr.name] + others}; a netx layer takes its input from the layer before it only "
                            f"(a skip connection, residual stream or attention cannot be expressed)")
        if len(rec) > 1:
            raise NetxError(f"netx export: population '{nxt.name}' has {len(rec)} recurrent projections; "
                            f"netx's dense_rec has one")
        if any(layer.population.name == nxt.name for layer in layers):
            raise NetxError(f"netx export: projection '{pr.name}' closes a cycle through '{nxt.name}'; netx "
                            f"layers are sequential")
        if _cuba(nxt) is None:
            raise NetxError(f"netx export: population '{nxt.name}' is a {type(nxt.model).__name__}; netx dense layers "
                            f"here are CUBA LIF")
        layers.append(NetxLayer(nxt, pr, rec[0] if rec else None))
        cur = nxt.name
    chained = {layer.population.name for layer in layers}
    loose = [p.name for p in graph.populations if p.name not in chained]
    if loose:
        raise NetxError(f"netx export: populations {loose} are not on the chain from input '{inputs[0]}'; a netx "
                        f"network is one sequence of layers")
    if len(layers) < 2:
        raise NetxError(f"netx export: input '{inputs[0]}' feeds no layer; netx needs at least one dense layer")
    for layer in layers[1:]:
        _check_layer(layer, pops)
    return layers


def _check_layer(layer: NetxLayer, pops: dict[str, Population]) -> None:
    pr, rec, post = layer.projection, layer.recurrent, layer.population
    if rec is not None and pr.delay != rec.delay:
        raise NetxError(f"netx export: recurrent layer '{post.name}' has delays {pr.delay} (input) and "
                        f"{rec.delay} (recurrent); netx's dense_rec applies one delay to both")
    if pr.delay - 1 > NETX_MAX_DELAY:
        raise NetxError(f"netx export: projection '{pr.name}' has delay {pr.delay}; netx delays reach "
                        f"{NETX_MAX_DELAY + 1} ticks (one synaptic tick + delay ≤ {NETX_MAX_DELAY})")
    parts = [_effective(pr, post.size)] + ([_effective(rec, post.size)] if rec is not None else [])
    why = _exact(parts)
    if why:
        names = f"projection '{pr.name}'" + (f" with recurrent '{rec.name}'" if rec is not None else "")
        raise NetxError(f"netx export: {names} {why}")


def write_netx(graph: AerGraph, path: str | Path) -> Path:
    """Write ``graph`` as a lava-dl netx HDF5 file (see module doc); NetxError if netx cannot express it."""
    import h5py

    layers = netx_chain(graph)
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.attrs.update(producer="spikeformer", numerics=graph.numerics, timesteps=int(graph.timesteps))
        root = f.create_group("layer")
        for k, layer in enumerate(layers):
            p, g = layer.population, root.create_group(str(k))
            g.attrs["name"] = p.name
            g["shape"] = np.asarray(p.shape, np.int64)
            if layer.projection is None:
                g["type"] = np.bytes_("input")
                continue
            g["type"] = np.bytes_("dense" if layer.recurrent is None else "dense_rec")
            g["weight"] = _effective(layer.projection, p.size).astype(np.int64)
            g.attrs["projection"] = layer.projection.name
            if layer.recurrent is not None:
                g["weight_rec"] = _effective(layer.recurrent, p.size).astype(np.int64)
                g.attrs["recurrent"] = layer.recurrent.name
            if layer.projection.delay > 1:
                g["delay"] = np.int64(layer.projection.delay - 1)
            du, dv, vth = _cuba(p)
            n = g.create_group("neuron")
            n["type"] = np.bytes_("CUBA")
            n["iDecay"], n["vDecay"], n["vThMant"] = np.int64(du + 1), np.int64(dv), np.int64(vth)
            n["refDelay"], n["gradedSpike"] = np.int64(REF_DELAY), False
    return path


def layer_names(path: str | Path) -> list[str]:
    """The population name of each layer of a file ``write_netx`` wrote, in layer order."""
    import h5py

    with h5py.File(path, "r") as f:
        return [str(f["layer"][str(k)].attrs["name"]) for k in range(len(f["layer"]))]
