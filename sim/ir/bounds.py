"""Worst-case input bounds of a loihi graph: what keeps every integer inside Lava's widths.

``input_bounds``: per population, the largest |input| any input can give (graded payloads
and LIF currents, propagated through the projections in depth order); ``check_bounds``
refuses a graph that could exceed ``PAYLOAD_MAX`` (24-bit graded payload), ``ACC_MAX``
(Lava's int32 accumulator) or the LIF input limits (``sim.numerics``: integer widths).
Needs only the graph's populations and projections, read by attribute.
"""
from __future__ import annotations

import numba
import numpy as np

from sim import numerics as nm
from sim.errors import IRError
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)

PAYLOAD_MAX = (1 << 23) - 1                  # graded payload: 24-bit signed
ACC_MAX = (1 << 31) - 1                      # Lava accumulates W·payload in int32
LIF_INPUT_MAX = ((1 << 31) - (1 << 23)) // 64 - 1   # du = 4095 (no carry): u = a << 6, v + u stay in int32
LIF_CARRY_INPUT_MAX = 1 << 18                # du < 4095: |a << 6| ≤ 2²⁴ keeps u in 24 bits (sim.numerics)


@numba.njit(cache=True)
def abs_fan_in(indptr, indices, weights, src, acc):
    """acc[j] += |w|·src[r] over the synapses r → j, in CSR order (no per-synapse temporaries)."""
    for r in range(len(indptr) - 1):
        b = src[r]
        for s in range(indptr[r], indptr[r + 1]):
            acc[indices[s]] += abs(np.float64(weights[s])) * b


def input_bounds(graph) -> dict[str, np.ndarray]:
    """Per non-input population, per neuron: max |a| = Σ_in |w << exp| · bound(pre), bound = 1 (spike) or |g|max.

    Arrays cover neurons [0, 1 + highest index with input). Graded populations must come after the graded populations that feed them
    (graph order is topological); loihi numerics only.
    """
    pops = {p.name: p for p in graph.populations}
    order = {p.name: k for k, p in enumerate(graph.populations)}
    incoming: dict[str, list] = {}
    for pr in graph.projections:
        incoming.setdefault(pr.post, []).append(pr)
    bound: dict[str, np.ndarray] = {}
    for p in graph.populations:
        if p.is_source:
            continue
        ins = incoming.get(p.name, [])
        reach = max((int(pr.indices.max()) + 1 for pr in ins if pr.n_synapses), default=0)
        b = np.zeros(reach, np.float64)            # neurons [0, reach) receive synapses; float64: no overflow
        for pr in ins:
            pre = pops[pr.pre]
            if pre.is_graded:
                if order[pre.name] >= order[p.name]:
                    raise IRError(f"projection '{pr.name}'", "pre", f"graded population '{pre.name}' must come "
                                  f"before '{p.name}' in graph order (a graded payload is bounded from its inputs)")
                src = np.zeros(pre.size)
                src[:len(bound[pre.name])] = np.minimum(bound[pre.name], PAYLOAD_MAX)
            else:
                src = np.ones(pre.size)
            acc = np.zeros(reach, np.float64)
            abs_fan_in(pr.indptr, pr.indices, pr.weights, src, acc)
            if pre.is_graded and acc.max(initial=0) > ACC_MAX:
                k = int(acc.argmax())
                raise IRError(f"projection '{pr.name}'", "weights", f"Σ|w·payload| into neuron {k} of '{p.name}' can "
                              f"reach {acc[k]:.0f}, beyond Lava's int32 accumulator ({ACC_MAX})")
            b += np.ceil(acc * 2.0 ** pr.weight_exp)
        bound[p.name] = b
    return bound


def check_bounds(graph) -> None:
    """Raise IRError where a graded payload or a LIF input can leave the range every backend computes exactly.

    Bounds (worst case over the inputs, ``input_bounds``): graded |g| ≤ PAYLOAD_MAX; LIF |a| ≤
    LIF_INPUT_MAX when du = 4095, ≤ LIF_CARRY_INPUT_MAX when du < 4095 (``sim.numerics``: integer widths)."""
    bound = input_bounds(graph)
    for p in graph.populations:
        if p.is_source or not len(bound[p.name]):
            continue
        k = int(bound[p.name].argmax())
        hi = bound[p.name][k]
        du = getattr(p.model, "du", nm.DU_MAX)       # (a CUBA LIF's current carries over ticks when du < 4095)
        limit, what = ((PAYLOAD_MAX, "the 24-bit graded payload") if p.is_graded else
                       (LIF_INPUT_MAX, "what Lava's int32 u + (a << 6) holds") if du == nm.DU_MAX else
                       (LIF_CARRY_INPUT_MAX, f"what keeps a carried current (du = {du} < {nm.DU_MAX}) "
                                             f"within 24 bits, |a << 6| ≤ 2²⁴"))
        if hi > limit:
            raise IRError(f"population '{p.name}'", "inputs", f"neuron {k}'s summed input can reach {hi:.0f}, beyond "
                          f"{what} (|a| ≤ {limit}); lower the weights, weight_exp or fan-in")
