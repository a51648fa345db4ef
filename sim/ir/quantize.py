"""Float graph → Loihi fixed point (``loihi`` numerics), for graphs imported in float.

Units. Per target population P one voltage scale λ_P maps float units onto Loihi's integer
input units (a-units): a float weight w becomes w·λ_P a-units, the threshold vth_int = round(λ_P·vth).
The a-unit is the resolution of everything P integrates; Loihi keeps v in 24 bits, i.e.
|v| < 2¹⁷ a-units, so λ_P trades resolution (large λ) against range (how far below zero
and how large a tick's input may go before Loihi's 24-bit clip and wrap; float v is unbounded).

Scale (``scale``)::

    λ_P = min( U_P / vth,  A_MAX / max|w|,  LIF_CARRY_INPUT_MAX / max_j Σ_i |w_ij| (carried currents only) )

U_P, the threshold in a-units, is ``THRESHOLD_UNITS`` = 2¹² (1/4096 resolution, 32 thresholds of
room below zero) unless calibration (``spikeformer.runs.calibrate``) chose it; A_MAX = 254·2⁷ is the
largest weight Loihi represents (8-bit mantissa, weight_exp ≤ 7).

Weights (``synapse_words``). Each projection splits by sign into single-sign projections (every
integer in [0, 254], not the even grid a mixed-sign matrix needs). A group of magnitudes
x = λ_P·|w| (a-units) gets the exponent e = clip(⌈log₂(max x / 254)⌉, 0, 7), so its largest weight
uses the full 8-bit mantissa, and with ``words = 2`` a second synapse on the same (pre, post)
pair carries the remainder::

    hi = ⌊x / 2^e⌋  (weight_exp e),   lo = round((x − hi·2^e) / 2^e')  (weight_exp e' = max(e − 7, 0))

so each weight is exact to half an a-unit (one word: to 2^(e−1)). ``signs = "mixed"`` (one word only)
keeps one 8-bit projection per float projection with weight_exp 0, as netx's one 8-bit matrix per
layer needs: λ_P is further capped at 254 / max|w| and q = 2·round(x / 2) where the projection
mixes signs (Lava drops a mixed matrix's LSB), magnitudes balanced as below. Exponents are ≥ 0: no sum is
floored. Rounding is *balanced* per target neuron j: after rounding to nearest, the weights whose
rounding was closest to a tie are moved to their other neighbour until |Σ_i r_i·(q_ij − x_ij)| ≤
r_max/2 — the rate-weighted rounding error of j's input sums to (about) zero, so rounding leaves
no drift on v. The rates r_i are the presynaptic firing rates on calibration inputs, else 1.

Neurons: ``model.fixed_point(λ_P)`` (du, dv to 12 bits, vth = round(λ_P·vth)). Sources keep
their spikes; the readout keeps its float weights' argmax order (× 1/max|w|·127, rounded).
``population_agreement`` measures what is left: spike Jaccard and rates per population.
"""
from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np

from sim.ir.bounds import LIF_CARRY_INPUT_MAX
from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.numerics import W_MAX

THRESHOLD_UNITS = 1 << 12                      # default λ·vth: threshold resolution vs v's range
MAX_EXP = 7                                    # Lava's largest weight_exp
A_MAX = W_MAX << MAX_EXP                       # largest weight in a-units
WORD_BITS = 7                                  # the low word's exponent sits this far below the high word's
SYNAPSE_WORDS = (1, 2)
SIGNS = ("split", "mixed")


@numba.njit(cache=True)
def balanced_round(indptr, indices, x, rate, n_post, top):
    """round(x) (CSR rows = pre), then moved to the other neighbour, ties first, while it brings
    each target's rate-weighted error Σ r·(q − x) closer to 0; results in [0, top]."""
    q = np.minimum(np.round(x), top)
    pre = np.empty(len(x), np.int64)
    err = np.zeros(n_post)
    for r in range(len(indptr) - 1):
        for s in range(indptr[r], indptr[r + 1]):
            pre[s] = r
            err[indices[s]] += rate[r] * (q[s] - x[s])
    for s in np.argsort(-np.abs(q - x)):
        j, rs, e = indices[s], rate[pre[s]], q[s] - x[s]
        if rs > 0 and e > 0 and err[j] > 0.5 * rs and q[s] >= 1:
            q[s] -= 1
            err[j] -= rs
        elif rs > 0 and e < 0 and err[j] < -0.5 * rs and q[s] + 1 <= top:
            q[s] += 1
            err[j] += rs
    return q


def _float_weights(pr: Projection) -> np.ndarray:
    return pr.weights.astype(np.float64) * 2.0 ** pr.weight_exp


def _fan_in(p: Population, ins: list[Projection]) -> float:
    """max_j Σ_i |w_ij| over the projections into ``p`` (float units)."""
    acc = np.zeros(p.size)
    for pr in ins:
        np.add.at(acc, pr.indices, np.abs(_float_weights(pr)))
    return float(acc.max(initial=0.0))


def scale(p: Population, ins: list[Projection], threshold_units: float = THRESHOLD_UNITS, a_max: float = A_MAX
          ) -> float:
    """λ_P (module docstring): the threshold at ``threshold_units`` a-units, lowered where the
    largest weight or a carried current's input bound would not fit."""
    w_max = max((float(np.abs(_float_weights(pr)).max()) for pr in ins if pr.n_synapses), default=0.0)
    vth = float(getattr(p.model, "vth", 0.0))
    lam = threshold_units / vth if np.isfinite(vth) and vth > 0 else threshold_units / max(w_max, 1e-30)
    if w_max > 0:
        lam = min(lam, a_max / w_max)
    if _carries(p):
        fan = _fan_in(p, ins)
        if fan > 0:
            lam = min(lam, LIF_CARRY_INPUT_MAX / fan)
    return float(lam)


def _carries(p: Population) -> bool:
    """A float CUBA neuron whose current carries over ticks (du < 1): its input is bounded by 2¹⁸."""
    return float(getattr(p.model, "du", 1.0)) < 1.0


def _int_fan_in(projs: list[Projection], size: int) -> float:
    acc = np.zeros(size)
    for pr in projs:
        np.add.at(acc, pr.indices, np.abs(pr.weights.astype(np.float64)) * 2.0 ** pr.weight_exp)
    return float(acc.max(initial=0.0))


def _csr(rows: np.ndarray, n_pre: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_pre))]).astype(np.int64)


def _exponent(x: np.ndarray) -> int:
    """e = clip(⌈log₂(max x / 254)⌉, 0, 7): the largest weight fills the 8-bit mantissa."""
    return int(np.clip(np.ceil(np.log2(max(float(x.max(initial=0.0)), 1e-300) / W_MAX)), 0, MAX_EXP))


def mixed_words(pr: Projection, lam: float, n_post: int, rate: np.ndarray) -> Projection:
    """One loihi projection for float ``pr`` (``signs = "mixed"``, module docstring)."""
    w = _float_weights(pr)
    x = lam * np.abs(w)
    grid = 2 if (w > 0).any() and (w < 0).any() else 1
    q = grid * balanced_round(pr.indptr, pr.indices, x / grid, rate, n_post, float(W_MAX // grid))
    return Projection(pr.name, pr.pre, pr.post, pr.indptr, pr.indices, (np.sign(w) * q).astype(np.int16),
                      pr.delay, 0)


def synapse_words(pr: Projection, lam: float, n_post: int, rate: np.ndarray | None = None,
                  words: int = 2, signs: str = "split") -> list[Projection]:
    """The loihi projections of float ``pr`` into a population of scale ``lam``: one per sign, and
    with ``words = 2`` one more per sign for the remainder; ``signs = "mixed"``: one (module docstring)."""
    w = _float_weights(pr)
    rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
    rate = np.ones(pr.n_pre) if rate is None else np.asarray(rate, np.float64)
    if signs == "mixed":
        return [mixed_words(pr, lam, n_post, rate)]
    out = []
    for sign, tag in ((1, "pos"), (-1, "neg")):
        m = sign * w > 0
        if not m.any():
            continue
        r, idx = rows[m], pr.indices[m]
        indptr = _csr(r, pr.n_pre)
        x = lam * np.abs(w[m])
        e = _exponent(x)
        name = f"{pr.name}:{tag}"
        if words == 1 or e == 0:
            q = balanced_round(indptr, idx, x / 2.0 ** e, rate, n_post, float(W_MAX))
            out.append(Projection(name, pr.pre, pr.post, indptr, idx, (sign * q).astype(np.int16), pr.delay, e))
            continue
        hi = np.minimum(np.floor(x / 2.0 ** e), W_MAX)
        e_lo = max(e - WORD_BITS, 0)
        lo = balanced_round(indptr, idx, (x - hi * 2.0 ** e) / 2.0 ** e_lo, rate, n_post, float(W_MAX))
        out.append(Projection(name, pr.pre, pr.post, indptr, idx, (sign * hi).astype(np.int16), pr.delay, e))
        k = lo > 0
        if k.any():
            out.append(Projection(f"{name}:lo", pr.pre, pr.post, _csr(r[k], pr.n_pre), idx[k],
                                  (sign * lo[k]).astype(np.int16), pr.delay, e_lo))
    return out


def quantize(graph: AerGraph, words: int = 2, rates: dict[str, np.ndarray] | None = None,
             threshold_units: dict[str, float] | None = None, signs: str = "split"
             ) -> tuple[AerGraph, dict[str, float]]:
    """(the loihi graph of float ``graph``, λ per neuron population); ValueError where a population
    has no Loihi form. ``rates``: firing rate per neuron of each population on calibration inputs
    (balanced rounding); ``threshold_units``: U_P per population (default ``THRESHOLD_UNITS``);
    ``signs``: "split" (a projection per sign) or "mixed" (one per float projection, one word)."""
    if words not in SYNAPSE_WORDS:
        raise ValueError(f"synapse words must be one of {SYNAPSE_WORDS}, got {words!r}")
    if signs not in SIGNS or (signs == "mixed" and words != 1):
        raise ValueError(f"signs must be one of {SIGNS} ('mixed' with one synapse word), got {signs!r} with "
                         f"{words} words")
    ins: dict[str, list[Projection]] = {}
    for pr in graph.projections:
        ins.setdefault(pr.post, []).append(pr)
    scales, pops, projs = {}, [], []
    for p in graph.populations:
        if p.is_source or p.is_graded:
            pops.append(p)
            continue
        if not hasattr(p.model, "fixed_point"):
            raise ValueError(f"population '{p.name}': neuron model {type(p.model).__name__} has no Loihi fixed-point form")
        lam = scale(p, ins.get(p.name, []), (threshold_units or {}).get(p.name, THRESHOLD_UNITS),
                    W_MAX if signs == "mixed" else A_MAX)
        while True:                               # rounding may push a carried current's bound past 2¹⁸
            mine = [q for pr in ins.get(p.name, []) for q in
                    synapse_words(pr, lam, p.size, None if rates is None else rates.get(pr.pre), words, signs)]
            fan = _int_fan_in(mine, p.size)
            if not _carries(p) or fan <= LIF_CARRY_INPUT_MAX:
                break
            lam *= LIF_CARRY_INPUT_MAX / fan * 0.999
        scales[p.name] = lam
        pops.append(replace(p, model=p.model.fixed_point(lam)))
        projs += mine
    projs += [pr for pr in graph.projections if pr.post not in scales]
    ro = graph.readout
    if ro is not None:
        peak = float(np.abs(ro.weights).max()) or 1.0
        ro = Readout(ro.pre, np.round(ro.weights / peak * 127).astype(np.int32), ro.start, ro.stop)
    meta = dict(graph.metadata)
    meta["quantized"] = {"from": "float", "scales": scales, "synapse_words": words, "signs": signs}
    return AerGraph("loihi", tuple(pops), tuple(projs), ro, graph.timesteps, meta), scales


def _jaccard(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    return int((x & y).sum()), int((x | y).sum())


def output_population(graph: AerGraph) -> str:
    """The population the graph's behaviour is read from: the readout's, else the deepest spiking one."""
    if graph.readout is not None:
        return graph.readout.pre
    spiking = [p for p in graph.populations if not p.is_source]
    return max(spiking, key=lambda p: p.depth).name


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
        i, u = _jaccard(x, y)
        inter += i
        union += u
    return {"entries": eq / tot if tot else 1.0, "spikes": inter / union if union else 1.0}


def population_counts(a: dict[str, np.ndarray], b: dict[str, np.ndarray], graph: AerGraph) -> dict[str, np.ndarray]:
    """Per non-source population: [|A ∩ B|, |A ∪ B|, spikes of A, spikes of B, entries] (int64), A the
    reference (float) run, B the compared (loihi) run; sums over chunks stay exact."""
    out = {}
    for p in graph.populations:
        if not p.is_source:
            x, y = np.asarray(a[p.name], bool), np.asarray(b[p.name], bool)
            out[p.name] = np.array([*_jaccard(x, y), int(x.sum()), int(y.sum()), x.size], np.int64)
    return out


def population_figures(counts: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """``population_counts`` (summed) → per population: ``spike_jaccard`` |A∩B|/|A∪B| (1 when both
    are silent), ``rate_float`` and ``rate_loihi`` (spikes per neuron per tick)."""
    return {k: {"spike_jaccard": float(c[0] / c[1]) if c[1] else 1.0,
                "rate_float": float(c[2] / c[4]) if c[4] else 0.0,
                "rate_loihi": float(c[3] / c[4]) if c[4] else 0.0} for k, c in counts.items()}
