"""``width-ladder.md``: the ladder's tables written from its CSV rows (``summary``), with the date and the command.

Sections: the slope of accuracy against log₂ D per rung and variant (95 % t-interval over seeds) beside the dense
baselines' slopes, the first rung where the trend breaks, then per rung one table: per width the sparse accuracy
(mean ± std over seeds) beside the dense baselines at equal synaptic ops and at equal parameters, and the
figures that explain it (synaptic ops, parameters, dead fraction, realised active units, units with ≥ 2 active
inputs, epochs, learning rate); for the exact rungs also the dense spiking model of the same width, the agreement of
simulator and model, the best spiking configuration against the dense spiking model at equal synaptic ops
(``summary.equal_ops``) and the Lava runs (``width-ladder-lava.csv``).
"""
from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from sim.system.files import atomic_write
from spikeformer.experiments.ladder.rungs import RUNGS
from spikeformer.experiments.ladder.summary import equal_ops, first_break, points, slopes


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
    exact = any(k == "dense-spiking" for k, _ in pts) or any(p.get("agreement") is not None for p in pts.values())
    if exact:
        lines[2] = lines[2].replace("| synops |", "| dense spiking, same D (its synops) | agreement | synops |")
        lines[3] += "---:|---:|"
    for d in sorted({d for k, d in pts if k == "sparse"}):
        s, o, q = pts[("sparse", d)], pts.get(("dense-synops", d)), pts.get(("dense-params", d))
        sp = pts.get(("dense-spiking", d))
        extra = "" if not exact else (f"{_acc(sp)}" + ("" if sp is None else
                                                         f" ({sp['synaptic_ops_per_inference']:,.0f})") +
                                      f" | {'–' if s.get('agreement') is None else format(s['agreement'], '.4f')} | ")
        width = lambda p: "" if p is None else f" ({int(p['dim'])})"  # noqa: E731
        lines.append(f"| {d} | {_acc(s)} | {_acc(o)}{width(o)} | {_acc(q)}{width(q)} | {extra}"
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


def equal_ops_lines(rows: Sequence[dict]) -> list[str]:
    """Every exact sparse point against the dense spiking model at its synaptic ops; the best one named."""
    cmp = equal_ops(rows)
    if not cmp:
        return []
    ci = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"  # noqa: E731
    lines = ["## The best spiking configuration against the dense spiking model at equal synaptic ops", "",
             "Dense spiking model: the same exact model without k-WTA, trained at every width of the rung; its "
             "accuracy at the sparse point's synaptic ops is interpolated per seed in log₂ ops (`summary.equal_ops`; "
             "means with 95 % t-intervals over seeds).", "",
             "| rung | variant | D | synops | sparse accuracy | dense spiking at equal ops (of rung) | sparse − dense | "
             "inside the dense range |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in cmp:
        lines.append(f"| {c['rung']} | {c['variant']} | {c['matched_dim']} | {c['synaptic_ops']:,.0f} | "
                     f"{ci(c['sparse'])} | {ci(c['dense'])} ({c['against']}) | {c['difference'][0]:+.3f} [{c['difference'][1]:+.3f}, "
                     f"{c['difference'][2]:+.3f}] | {'yes' if c['inside'] else 'no (clamped)'} |")
    best = max(cmp, key=lambda c: c["sparse"][0])
    lo, hi = best["difference"][1], best["difference"][2]
    verdict = ("beats" if lo > 0 else "loses to" if hi < 0 else "does not differ significantly from")
    return lines + ["", f"Best spiking configuration: **{best['rung']} {best['variant']} at D = {best['matched_dim']}** "
                        f"({ci(best['sparse'])}); it {verdict} the dense spiking model ({best['against']}) at equal "
                        f"synaptic ops "
                        f"({ci(best['dense'])}; difference {best['difference'][0]:+.3f} [{lo:+.3f}, {hi:+.3f}]).", ""]


def lava_lines(lava_rows: Sequence[dict]) -> list[str]:
    if not lava_rows:
        return []
    lines = ["## Exact rungs in Lava", "", "The widest seed-0 points on the first test signals in Lava "
             "(Loihi2SimCfg, fixed point) against the event-driven simulator (`width-ladder-lava.csv`):", "",
             "| rung | variant | D | lr | samples | identical to the simulator | mismatched spikes | Lava = model | "
             "seconds |", "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in lava_rows:
        lines.append(f"| {r['rung']} | {r['variant']} | {r['matched_dim']} | {r['lr']:g} | {r['samples']} | "
                     f"{'yes' if r['identical'] else 'NO'} | {r['mismatched_spikes']} | "
                     f"{r['lava_agreement_with_model']:.3f} | {r['lava_seconds']:.0f} |")
    return lines + [""]


def write_report(rows: Sequence[dict], path: str | Path, commands: Sequence[str], notes: Sequence[str] = (),
                 lava_rows: Sequence[dict] = ()) -> Path:
    """Write the module docstring's markdown to ``path`` atomically."""
    brk = first_break(slopes(rows))
    verdict = ("every rung's slope interval lies above 0" if brk is None else
               f"first break: **{brk['rung']} {brk['variant']}** (slope {brk['slope']:+.4f} per doubling, 95 % CI "
               f"[{brk['slope_low']:+.4f}, {brk['slope_high']:+.4f}])")
    lines = ["# Width ladder (MNIST-1D, fixed k: one hidden layer; R6 one transformer block)", "",
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
             "match the sparse model's synaptic ops or parameters, rounded to the grid 2^(j/4). The exact rungs (R5, R6; "
             "`exact.py`) are the project's spiking model in Loihi fixed point: the signal enters as thermometer-coded "
             "input spikes (8 levels, every tick), the learning rates of `--lrs` are scaled by 10 for their "
             "mantissa-unit weights, their synaptic ops are the event-driven simulator's (input spikes, the k-WTA "
             "circuit and the relay of the stream included) plus the readout's, and `agreement` is the fraction of "
             "test signals on which the simulator's spikes equal the model's in every population.", "", *notes, "",
             "## Slope of test accuracy against log₂ width", "", *slope_lines(rows), "", verdict, "",
             *mechanism_lines(rows, brk), *equal_ops_lines(rows), *lava_lines(lava_rows),
             "## Per rung", "",
             "Accuracy: mean ± std over seeds at the learning rate chosen on validation; synops: synaptic ops per "
             "inference (sparse: the ops active units cause; dense: MACs); dead: units never active on the test "
             "set; active: units active per tick; ≥ 2 inputs: fraction of hidden units with at least two active "
             "inputs.", ""]
    for rung, variant in dict.fromkeys((p["rung"], p["variant"]) for p in points(rows) if p["kind"] == "sparse"):
        lines += rung_lines(rows, rung, variant)
    return atomic_write(path, lambda p: p.write_text("\n".join(lines) + "\n"))
