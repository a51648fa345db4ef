"""``width-ladder.md``: the ladder's tables written from its CSV rows (``summary``), with the date and the command.

Sections: the slope of accuracy against log₂ D per rung and variant (95 % t-interval over seeds) beside the dense
baselines' slopes, the first rung where the trend breaks, then per rung one table: per width the sparse accuracy
(mean ± std over seeds) beside the dense baselines at equal synaptic ops and at equal parameters, and the
figures that explain it (synaptic ops, parameters, dead fraction, realised active units, units with ≥ 2 active
inputs, epochs, learning rate).
"""
from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from sim.system.files import atomic_write
from spikeformer.experiments.ladder.rungs import RUNGS
from spikeformer.experiments.ladder.summary import first_break, points, slopes


def _acc(p: dict | None) -> str:
    return "–" if p is None else f"{p['accuracy_mean']:.3f} ± {p['accuracy_std']:.3f}"


def slope_lines(rows: Sequence[dict]) -> list[str]:
    lines = ["| rung | variant | kind | widths | seeds | slope per doubling (95 % CI) | widest − narrowest | "
             "seed range | trend |", "|---|---|---|---|---:|---|---:|---:|---|"]
    for s in slopes(rows):
        lines.append(f"| {s['rung']} | {s['variant']} | {s['kind']} | {s['dims'][0]}–{s['dims'][-1]} | {s['seeds']} | "
                     f"{s['slope']:+.4f} [{s['slope_low']:+.4f}, {s['slope_high']:+.4f}] | {s['gain']:+.3f} | "
                     f"{s['spread']:.3f} | {'rises' if s['trend'] else 'no'} |")
    return lines


def rung_lines(rows: Sequence[dict], rung: str, variant: str) -> list[str]:
    pts = {(p["kind"], p["matched_dim"]): p for p in points(rows) if (p["rung"], p["variant"]) == (rung, variant)}
    changes = RUNGS[rung].changes if rung in RUNGS else ""
    lines = [f"### {rung} {variant}: {changes}", "",
             "| D | sparse accuracy | dense, equal ops (width) | dense, equal params (width) | synops | params | "
             "dead | active | ≥ 2 inputs | epochs | lr |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in sorted({d for k, d in pts if k == "sparse"}):
        s, o, q = pts[("sparse", d)], pts.get(("dense-synops", d)), pts.get(("dense-params", d))
        width = lambda p: "" if p is None else f" ({int(p['dim'])})"  # noqa: E731
        lines.append(f"| {d} | {_acc(s)} | {_acc(o)}{width(o)} | {_acc(q)}{width(q)} | "
                     f"{s['synaptic_ops_per_inference']:,.0f} | {s['parameters']:,.0f} | {s['dead_fraction']:.2f} | "
                     f"{s['active']:.1f} | {s['multi_input_fraction']:.2f} | {s['epochs']:.0f} | {s['lr']:g} |")
    return lines + [""]


def mechanism_lines(rows: Sequence[dict], brk: dict | None) -> list[str]:
    """At the first break and the rung before it: the figures that can explain a break, narrowest and widest D."""
    if brk is None:
        return []
    pts = points(rows)
    order = sorted({p["rung"] for p in pts})
    before = order[order.index(brk["rung"]) - 1] if order.index(brk["rung"]) > 0 else None
    lines = ["| rung | variant | D | accuracy | dead | active per tick | ≥ 2 active inputs | epochs |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for rung, variant in ([(before, "dense")] if before else []) + [(brk["rung"], brk["variant"])]:
        for d in (brk["dims"][0], brk["dims"][-1]):
            p = next((q for q in pts if (q["rung"], q["variant"], q["kind"], q["matched_dim"]) ==
                      (rung, variant, "sparse", d)), None)
            if p is not None:
                lines.append(f"| {rung} | {variant} | {d} | {_acc(p)} | {p['dead_fraction']:.2f} | {p['active']:.1f} "
                             f"| {p['multi_input_fraction']:.2f} | {p['epochs']:.0f} |")
    return ["What the break comes with (sparse points, means over seeds):", "", *lines, ""]


def write_report(rows: Sequence[dict], path: str | Path, commands: Sequence[str], notes: Sequence[str] = ()) -> Path:
    """Write the module docstring's markdown to ``path`` atomically."""
    brk = first_break(slopes(rows))
    verdict = ("every rung's slope interval lies above 0" if brk is None else
               f"first break: **{brk['rung']} {brk['variant']}** (slope {brk['slope']:+.4f} per doubling, 95 % CI "
               f"[{brk['slope_low']:+.4f}, {brk['slope_high']:+.4f}])")
    lines = ["# Width ladder (MNIST-1D, one hidden layer, fixed k)", "",
             f"Written by `spikeformer.experiments.ladder.report` on {datetime.date.today().isoformat()} from "
             f"`width-ladder.csv`, whose rows these commands trained (each resumes the CSV; run from the "
             f"repository root with `OMP_NUM_THREADS=1`):", "", "```sh", *commands, "```", "",
             "Setup: one hidden layer of D units between the 40 samples of an MNIST-1D signal and 10 classes, k units "
             "kept per inference (per tick when spiking); the rungs and their formulas in "
             "`spikeformer/experiments/ladder/mlp.py` and `rungs.py`. Per point the learning rate is chosen on a "
             "validation split carved from the generated training signals (seed 0, then reused for the other seeds; "
             "the width-aware learning rate), training stops when validation accuracy has not improved for "
             "`--patience` epochs (or at `--max-epochs`), and the test split is the `mnist1d` package's 1,000 test "
             "signals. Dense baselines: float ReLU MLPs of the width whose MACs (50·w) or parameters (51·w + 10) "
             "match the sparse model's synaptic ops or parameters, rounded to the grid 2^(j/4).", "", *notes, "",
             "## Slope of test accuracy against log₂ width", "", *slope_lines(rows), "", verdict, "",
             *mechanism_lines(rows, brk),
             "## Per rung", "",
             "Accuracy: mean ± std over seeds at the learning rate chosen on validation; synops: synaptic ops per "
             "inference (sparse: the ops active units cause; dense: MACs); dead: units never active on the test "
             "set; active: units active per tick; ≥ 2 inputs: fraction of hidden units with at least two active "
             "inputs.", ""]
    for rung, variant in dict.fromkeys((p["rung"], p["variant"]) for p in points(rows) if p["kind"] == "sparse"):
        lines += rung_lines(rows, rung, variant)
    return atomic_write(path, lambda p: p.write_text("\n".join(lines) + "\n"))
