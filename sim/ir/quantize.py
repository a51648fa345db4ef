"""Float graph → Loihi fixed point (``loihi`` numerics), for graphs imported in float.

Per target population P, one voltage scale λ_P maps float units onto Loihi's (a weight w
adds w·2⁶ to u; the threshold is vth·2⁶): λ_P = 254 / max |w·2^e| over every projection
into P (8-bit weights, the even grid of ``sim.numerics`` when a projection mixes signs),
capped so that λ_P·vth fits the 17-bit threshold, then lowered (by at most half) to the value
with the smallest relative rounding error of the weights and threshold. Then

    w_int = round(λ_P·w·2^e)  (to the nearest even integer when signs mix),  weight_exp 0
    neuron → ``model.fixed_point(λ_P)``  (du, dv to 12 bits, vth = round(λ_P·vth))

Sources keep their spikes; the readout keeps its float weights' argmax order (× 1/max|w|·127,
rounded). Spikes then differ from float only by rounding; ``agreement`` measures it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.numerics import VTH_MAX, W_MAX

CANDIDATES = 256                               # scales tried in (λ_max/2, λ_max]


SAMPLE = 100_000                               # weights that decide λ for a large fan-in


def _scale(graph: AerGraph, p: Population, ins: list[Projection]) -> float:
    """λ in (λ_max/2, λ_max] with the smallest relative rounding error of the weights and threshold."""
    w = np.concatenate([np.abs(pr.weights.astype(np.float64)) * 2.0 ** pr.weight_exp for pr in ins if pr.n_synapses]
                       or [np.zeros(0)])
    w = w[w > 0]
    if len(w) > SAMPLE:                          # large fan-in: a fixed sample decides
        w = np.random.default_rng(0).choice(w, SAMPLE, replace=False)
    vth = float(getattr(p.model, "vth", 0.0))
    top = W_MAX / w.max() if len(w) else 1.0
    if np.isfinite(vth) and vth > 0:
        top = min(top, VTH_MAX / vth)
    best, best_err = top, np.inf
    for lam in top * (1 - np.arange(CANDIDATES) / (2 * CANDIDATES)):
        x = lam * w
        grid = 2.0 if any(_mixed(pr) for pr in ins) else 1.0
        err = np.abs(np.round(x / grid) * grid - x).sum() / max(x.sum(), 1e-300)
        if np.isfinite(vth) and vth > 0:
            err += abs(round(lam * vth) - lam * vth) / (lam * vth)
        if err < best_err - 1e-12:
            best, best_err = lam, err
    return float(best)


def _mixed(pr: Projection) -> bool:
    return bool(pr.n_synapses and pr.weights.min() < 0 < pr.weights.max())


def _int_weights(w: np.ndarray) -> np.ndarray:
    mixed = w.size and w.min() < 0 < w.max()
    q = 2 * np.round(w / 2) if mixed else np.round(w)
    return np.clip(q, -W_MAX, W_MAX).astype(np.int16)


def quantize(graph: AerGraph) -> tuple[AerGraph, dict[str, float]]:
    """(the loihi graph of float ``graph``, λ per neuron population); IRError/ModelError where a
    population has no Loihi form (see module docstring)."""
    ins: dict[str, list[Projection]] = {}
    for pr in graph.projections:
        ins.setdefault(pr.post, []).append(pr)
    scales, pops = {}, []
    for p in graph.populations:
        if p.is_source or p.is_graded:
            pops.append(p)
            continue
        scales[p.name] = lam = _scale(graph, p, ins.get(p.name, []))
        if not hasattr(p.model, "fixed_point"):
            raise ValueError(f"population '{p.name}': neuron model {type(p.model).__name__} has no Loihi fixed-point form")
        pops.append(replace(p, model=p.model.fixed_point(lam)))
    projs = []
    for pr in graph.projections:
        lam = scales.get(pr.post, 1.0)
        w = _int_weights(pr.weights.astype(np.float64) * 2.0 ** pr.weight_exp * lam)
        projs.append(Projection(pr.name, pr.pre, pr.post, pr.indptr, pr.indices, w, pr.delay, 0))
    ro = graph.readout
    if ro is not None:
        peak = float(np.abs(ro.weights).max()) or 1.0
        ro = Readout(ro.pre, np.round(ro.weights / peak * 127).astype(np.int32), ro.start, ro.stop)
    meta = dict(graph.metadata)
    meta["quantized"] = {"from": "float", "scales": scales}
    return AerGraph("loihi", tuple(pops), tuple(projs), ro, graph.timesteps, meta), scales


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray], graph: AerGraph) -> dict[str, float]:
    """Spike agreement of two runs over the non-source populations: ``entries`` = fraction of
    (sample, tick, neuron) entries equal; ``spikes`` = |A ∩ B| / |A ∪ B| (1 when both are silent)."""
    eq = tot = inter = union = 0
    for p in graph.populations:
        if p.is_source:
            continue
        x, y = np.asarray(a[p.name], bool), np.asarray(b[p.name], bool)
        eq += int((x == y).sum())
        tot += x.size
        inter += int((x & y).sum())
        union += int((x | y).sum())
    return {"entries": eq / tot if tot else 1.0, "spikes": inter / union if union else 1.0}
