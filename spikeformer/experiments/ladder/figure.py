"""``width-ladder.png``: test accuracy against width D (log₂ axis), one panel per rung, from the ladder's CSV.

Per panel: every sparse variant of the rung (mean ± std over seeds, the seeds as small dots) and, at the same D,
its dense baselines matched on synaptic ops (diamonds, dashed) and on parameters (squares, dotted), labelled
with the dense width, and for the exact rungs the dense spiking model of the same width (triangles, dash-dot) (drawn once per wiring: variants with options share them); colours tell the kinds apart
(one variant) or the variants (several). Only rows at the selected learning rate are drawn (``summary.points``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim.system.files import atomic_write  # noqa: E402
from spikeformer.experiments.ladder.summary import points, selected  # noqa: E402

STYLE = {"sparse": ("o", "-"), "dense-synops": ("D", "--"), "dense-params": ("s", ":"), "dense-spiking": ("^", "-.")}


def ladder_plot(rows: Sequence[dict], path: str | Path) -> Path:
    """Draw the module docstring's figure from CSV ``rows`` into ``path`` (PNG, written atomically)."""
    pts = points(rows)
    rungs = sorted({p["rung"] for p in pts})
    cols = min(max(len(rungs), 1), 4)
    rows_ = -(-max(len(rungs), 1) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 4.2 * rows_), sharey=True, layout="constrained",
                             squeeze=False)
    for ax in axes.flat[len(rungs):]:
        ax.axis("off")
    for ax, rung in zip(axes.flat, rungs):
        series = sorted({(p["variant"], p["kind"]) for p in pts if p["rung"] == rung
                         and (p["kind"] == "sparse" or "+" not in p["variant"])},   # options share baselines
                        key=lambda vk: (vk[1] != "sparse", vk))
        for i, (variant, kind) in enumerate(series):
            ps = sorted((p for p in pts if (p["rung"], p["variant"], p["kind"]) == (rung, variant, kind)),
                        key=lambda p: p["matched_dim"])
            marker, ls = STYLE[kind]
            names = sorted({v for v, _ in series})
            color = f"C{names.index(variant)}" if len(names) > 1 else f"C{list(STYLE).index(kind)}"
            what = {"sparse": "k-sparse", "dense-synops": "dense MLP, equal ops",
                    "dense-params": "dense MLP, equal params", "dense-spiking": "dense spiking, same D"}
            label = f"{what[kind]}: {variant}" if len(names) > 1 or kind == "sparse" else what[kind]
            xs = [p["matched_dim"] for p in ps]
            ax.errorbar(xs, [p["accuracy_mean"] for p in ps], yerr=[p["accuracy_std"] for p in ps], color=color,
                        marker=marker, ls=ls, capsize=3, ms=4, mfc=color if kind == "sparse" else "white",
                        label=label, alpha=1.0 if kind == "sparse" else 0.7)
            seeds = [r for r in selected(rows) if (r["rung"], r["variant"], r["kind"]) == (rung, variant, kind)]
            ax.scatter([r["matched_dim"] for r in seeds], [r["accuracy"] for r in seeds], s=6, color=color,
                       alpha=0.5)
            if kind in ("dense-synops", "dense-params"):
                for p in ps:
                    ax.annotate(f"{int(p['dim'])}", (p["matched_dim"], p["accuracy_mean"]), fontsize=6,
                                textcoords="offset points", xytext=(3, -8 if kind == "dense-params" else 4),
                                color=color)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width D (sparse); dense: matched to D")
        ax.set_title(rung, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=5.5)
    for row in axes:
        row[0].set_ylabel("test accuracy (mean ± std over seeds)")
    fig.suptitle("width ladder, MNIST-1D: accuracy vs width at fixed k (dense baselines labelled with their width)",
                 fontsize=9)
    out = atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
    return out
