"""The ladder's answer from its CSV rows: means over seeds per point, the slope per rung, where the trend breaks.

Only the rows trained at the selected learning rate count (``selected`` = 1: every seed once per point).

* ``points``: per (rung, variant, kind, matched_dim) the mean, standard deviation and range (max − min) of the
  accuracy over seeds, and the means of the other measured figures;
* ``slopes``: per (rung, variant, kind) and seed, the OLS slope b of accuracy = a + b·log₂ D over the widths D
  (matched_dim; the seeds that have every width), then mean b̄ ± t₀.₉₇₅,ₙ₋₁·s/√n over the n seeds (95 % t-interval;
  none for n < 2); ``gain`` = mean accuracy at the widest D − at the narrowest, ``spread`` = the larger of the two
  seed ranges there, ``trend`` = gain > spread (the acceptance test of R0);
* ``first_break``: the first sparse (rung, variant) without options ("+auxk", …), in ladder order, whose
  interval does not lie above 0;
* ``equal_ops``: per exact sparse point, the dense spiking model's accuracy (kind ``dense-spiking``: its own rung's, or
  the first rung's that has one) at the sparse point's synaptic ops: per seed, linear in log₂ ops between the two
  dense widths around it (clamped to the end widths outside their range), then sparse − dense per seed with its
  t-interval.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

FIGURES = ("synaptic_ops_per_inference", "parameters", "nonzero_weights", "dead_fraction", "active",
           "multi_input_fraction", "epochs", "train_seconds", "dim", "lr")


def selected(rows: Sequence[dict]) -> list[dict]:
    return [r for r in rows if r["selected"] == 1]


def points(rows: Sequence[dict]) -> list[dict]:
    """Per (rung, variant, kind, matched_dim), in CSV order: seeds, accuracy mean/std/range, figure means."""
    groups: dict[tuple, list[dict]] = {}
    for r in selected(rows):
        groups.setdefault((r["rung"], r["variant"], r["kind"], r["matched_dim"]), []).append(r)
    out = []
    for (rung, variant, kind, dim), rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        out.append({"rung": rung, "variant": variant, "kind": kind, "matched_dim": dim, "seeds": len(rs),
                    "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                    "accuracy_range": float(acc.max() - acc.min()),
                    **{f: float(np.mean([r[f] for r in rs])) for f in FIGURES},
                    "agreement": _agreement(rs)})
    return out


def _agreement(rows: Sequence[dict]) -> float | None:
    """The least agreement_with_model of exact rows (the CSV holds "" for the others); None if none has one."""
    values = [float(r["agreement_with_model"]) for r in rows if str(r.get("agreement_with_model", "")) != ""]
    return min(values) if values else None


def ols_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The least-squares slope of y against x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean; low = high = mean for fewer than 2 values."""
    v = np.asarray(values, float)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def slopes(rows: Sequence[dict]) -> list[dict]:
    """Per (rung, variant, kind) with ≥ 2 widths: the slope statistics of the module docstring."""
    groups: dict[tuple, dict[int, dict[int, float]]] = {}
    for r in selected(rows):
        by_seed = groups.setdefault((r["rung"], r["variant"], r["kind"]), {})
        by_seed.setdefault(r["seed"], {})[r["matched_dim"]] = r["accuracy"]
    out = []
    for (rung, variant, kind), by_seed in groups.items():
        dims = sorted({d for acc in by_seed.values() for d in acc})
        full = {s: acc for s, acc in by_seed.items() if len(dims) >= 2 and all(d in acc for d in dims)}
        if not full:
            continue
        per_seed = [ols_slope(np.log2(dims), [acc[d] for d in dims]) for acc in full.values()]
        mean, low, high = t_interval(per_seed)
        lo_acc = [acc[dims[0]] for acc in full.values()]
        hi_acc = [acc[dims[-1]] for acc in full.values()]
        gain = float(np.mean(hi_acc) - np.mean(lo_acc))
        spread = float(max(np.ptp(lo_acc), np.ptp(hi_acc)))
        out.append({"rung": rung, "variant": variant, "kind": kind, "dims": dims, "seeds": len(full),
                    "slope": mean, "slope_low": low, "slope_high": high, "gain": gain, "spread": spread,
                    "trend": bool(gain > spread)})
    return out


def first_break(slope_rows: Sequence[dict]) -> dict | None:
    """The first sparse (rung, variant) without options in ladder order (R0, R1, …, then variant order) whose
    slope interval does not lie above 0; None if every one rises."""
    sparse = sorted((s for s in slope_rows if s["kind"] == "sparse" and "+" not in s["variant"]),
                    key=lambda s: s["rung"])
    return next((s for s in sparse if not s["slope_low"] > 0), None)


def equal_ops(rows: Sequence[dict]) -> list[dict]:
    """The comparison of the module docstring, per (rung, variant, matched_dim) of the exact sparse points (those with
    an ``agreement_with_model``); a rung without a dense spiking model of its own is compared with the first one
    there is (``against``)."""
    sel = selected(rows)
    dense = _by_rung(sel, "dense-spiking")
    if not dense:
        return []
    exact = [r for r in sel if r["kind"] == "sparse" and str(r.get("agreement_with_model", "")) != ""]
    out = []
    for rung, variant in dict.fromkeys((r["rung"], r["variant"]) for r in exact):
        against = (rung, variant) if (rung, variant) in dense else sorted(dense)[0]
        for d in sorted({r["matched_dim"] for r in exact if (r["rung"], r["variant"]) == (rung, variant)}):
            sparse = {r["seed"]: r for r in exact if (r["rung"], r["variant"], r["matched_dim"]) == (rung, variant, d)}
            pairs = [(sparse[s], curve) for s, curve in dense[against].items() if s in sparse and len(curve) >= 2]
            if not pairs:
                continue
            ops = [r["synaptic_ops_per_inference"] for r, _ in pairs]
            dense_acc = [float(np.interp(np.log2(r["synaptic_ops_per_inference"]),
                                         np.log2([c[0] for c in curve]), [c[1] for c in curve])) for r, curve in pairs]
            diff = [r["accuracy"] - a for (r, _), a in zip(pairs, dense_acc)]
            lo_ops = min(c[0] for _, curve in pairs for c in curve)
            hi_ops = max(c[0] for _, curve in pairs for c in curve)
            out.append({"rung": rung, "variant": variant, "matched_dim": d, "seeds": len(pairs), "against": against[0],
                        "synaptic_ops": float(np.mean(ops)), "inside": bool(lo_ops <= min(ops) and max(ops) <= hi_ops),
                        "sparse": t_interval([r["accuracy"] for r, _ in pairs]), "dense": t_interval(dense_acc),
                        "difference": t_interval(diff)})
    return out


def _by_rung(rows: Sequence[dict], kind: str) -> dict[tuple, dict[int, list[tuple[float, float]]]]:
    """(rung, variant) → seed → [(synaptic ops, accuracy)] of ``kind``'s points, sorted by ops."""
    out: dict[tuple, dict[int, list[tuple[float, float]]]] = {}
    for r in rows:
        if r["kind"] == kind:
            out.setdefault((r["rung"], r["variant"]), {}).setdefault(r["seed"], []).append(
                (r["synaptic_ops_per_inference"], r["accuracy"]))
    return {k: {s: sorted(c) for s, c in v.items()} for k, v in out.items()}
