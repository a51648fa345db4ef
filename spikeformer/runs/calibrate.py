"""Calibrated quantisation (``spikeformer import … --numerics loihi --calibrate FILE.npz``).

On the calibration inputs the float graph runs once; then, population by population
in depth order, the threshold's a-units U_P (λ_P = U_P / vth: resolution against range) is chosen
among ``CANDIDATES`` to minimise P's spike error on the calibration inputs,

    U_P = argmax_U  |S_float,P ∩ S_loihi,P(U)| / |S_float,P ∪ S_loihi,P(U)|

with the populations before P at their chosen U and those after it at the default (a candidate
replaces the default only when strictly better on the calibration inputs).
"""
from __future__ import annotations

import numpy as np

from sim.ir.graph import AerGraph
from sim.ir.quantize import THRESHOLD_UNITS, quantize

CANDIDATES = (THRESHOLD_UNITS, 1 << 13, 1 << 14, 1 << 11, 1 << 10, 1 << 8)    # the default first: it wins ties


def calibrate(graph: AerGraph, x: dict[str, np.ndarray], words: int = 2, signs: str = "split") -> dict:
    """{"threshold_units": U_P per population, "spike_jaccard": P's on x at its U_P}. (The float rates could
    weight the balanced rounding — ``quantize(rates=…)`` — but on small calibration sets, where most
    neurons are silent, that fits the set and loses on others: measured on the braille RNN, so not used.)"""
    from sim.engine.simulate import simulate
    ref = simulate(graph, x).spikes
    order = sorted((p for p in graph.populations if not p.is_source and not p.is_graded), key=lambda p: p.depth)
    units = {p.name: float(THRESHOLD_UNITS) for p in order}
    scores = {}
    for p in order:
        best = (-1.0, float(THRESHOLD_UNITS))
        for u in CANDIDATES:
            units[p.name] = float(u)
            q, _ = quantize(graph, words, None, units, signs)
            got = simulate(q, x).spikes
            a, b = np.asarray(ref[p.name], bool), np.asarray(got[p.name], bool)
            union = int((a | b).sum())
            j = int((a & b).sum()) / union if union else 1.0
            if j > best[0] + 1e-12:
                best = (j, float(u))
        units[p.name] = best[1]
        scores[p.name] = best[0]
    return {"threshold_units": units, "spike_jaccard": scores}
