"""The ladder run (``spikeformer ladder``): every rung × variant × width × seed, dense baselines beside, one CSV.

Per (rung, variant, width D), in the order given (rungs first, so partial results mean something):

1. sparse: seed ``seeds[0]`` is trained at every learning rate of ``lrs``; the one with the best validation
   accuracy (ties: the earlier in ``lrs``) is ``selected`` and the other seeds are trained at it (the test split is
   never looked at to choose);
2. dense-synops: the dense baseline (``rungs.dense_config``) whose MACs 50·w match the sparse points' mean synaptic
   ops, w rounded to the grid 2^(j/4) (within ±9 %, so that rungs share baselines), same learning-rate rule;
3. dense-params: the dense width whose parameters 51·w + 10 match the sparse model's, rounded the same way;
4. exact rungs (``exact``) only — dense-spiking: the same spiking model without k-WTA at the same width D (its
   synaptic ops measured; the report compares it at equal ops).

Exact rungs also run in Lava (``lava_samples`` > 0): every sparse point of seed ``seeds[0]`` at the widest D,
when it is trained, on the first ``lava_samples`` test signals against the simulator: one row of
``OUT/width-ladder-lava.csv`` (``LAVA_ROWS``) each.

CSV (``ROWS``, ``OUT/width-ladder.csv``): one row per trained model, rewritten atomically after each (through
``sweep.rows.SweepRows``). ``config`` = the task's fingerprint (``data.task_fields``: a CSV holds one task),
``point`` = the fingerprint of the model config and training budget: a row whose (rung, variant, kind,
matched_dim, seed, lr) and point fingerprint are in the CSV is not trained again, and a model with the same point
fingerprint, seed and lr under another rung (a shared dense baseline) is copied, not retrained.
``agreement_with_model`` is empty for the float rungs; the exact rungs fill it (simulator vs model, every test signal).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from spikeformer.experiments.ladder.counts import measure
from spikeformer.experiments.ladder.exact import ExactConfig, fit_exact, lava_check, measure_exact
from spikeformer.experiments.ladder.data import LadderData, ladder_data, task_fields
from spikeformer.experiments.ladder.mlp import CLASSES, INPUTS, RungConfig
from spikeformer.experiments.ladder.rungs import RUNGS, dense_config, variants
from spikeformer.experiments.ladder.train import Budget, fit
from spikeformer.experiments.sweep.rows import RowSchema, SweepRows, fingerprint
from spikeformer.lower.convert import to_graph

CSV_FILE, PNG_FILE, MD_FILE = "width-ladder.csv", "width-ladder.png", "width-ladder.md"
KINDS = ("sparse", "dense-synops", "dense-params", "dense-spiking")
LAVA_FILE = "width-ladder-lava.csv"

ROWS = RowSchema(
    name="width-ladder",
    columns=("rung", "variant", "kind", "matched_dim", "dim", "k", "fan_in", "timesteps", "seed", "lr", "selected",
             "accuracy", "val_accuracy", "synaptic_ops_per_inference", "parameters", "nonzero_weights",
             "dead_fraction", "active", "multi_input_fraction", "agreement_with_model", "epochs", "best_epoch",
             "train_seconds", "point", "config"),
    ints=("matched_dim", "dim", "timesteps", "seed", "selected", "parameters", "nonzero_weights", "epochs",
          "best_epoch"),
    floats=("lr", "accuracy", "val_accuracy", "synaptic_ops_per_inference", "dead_fraction", "active",
            "multi_input_fraction", "train_seconds"),
    key=("rung", "variant", "kind", "matched_dim", "seed", "lr"),
    optional_ints=("k", "fan_in"), optional_floats=("agreement_with_model",))

LAVA_ROWS = RowSchema(
    name="width-ladder-lava",
    columns=("rung", "variant", "kind", "matched_dim", "seed", "lr", "samples", "mismatched_spikes", "identical",
             "lava_agreement_with_model", "lava_seconds", "point", "config"),
    ints=("matched_dim", "seed", "samples", "mismatched_spikes", "identical"),
    floats=("lr", "lava_agreement_with_model", "lava_seconds"),
    key=("rung", "variant", "kind", "matched_dim", "seed", "lr"))


def grid_width(w: float) -> int:
    """The width of the grid 2^(j/4) nearest ``w`` in log, rounded to an integer (≥ 1)."""
    return max(1, int(round(2 ** (round(4 * math.log2(max(w, 1.0))) / 4))))


def synops_matched_width(synops: float) -> int:
    return grid_width(synops / (INPUTS + CLASSES))


def params_matched_width(parameters: float) -> int:
    return grid_width((parameters - CLASSES) / (INPUTS + 1 + CLASSES))


class Ladder:
    """The rows of ``OUT/width-ladder.csv`` and the training of the ones missing."""

    def __init__(self, out: Path, load_data: Callable[[], LadderData], data_fields: dict, budget: Budget,
                 lrs: Sequence[float], seeds: Sequence[int], bar=None, lava_samples: int = 0,
                 lava_dim: int | None = None) -> None:
        self.rows = SweepRows(Path(out) / CSV_FILE, ROWS, fingerprint(data_fields))
        self.lava = SweepRows(Path(out) / LAVA_FILE, LAVA_ROWS, self.rows.config) if lava_samples else None
        self.load_data, self.budget, self.lrs, self.seeds, self.bar = load_data, budget, list(lrs), list(seeds), bar
        self.lava_samples, self.lava_dim = lava_samples, lava_dim
        self.trained = 0

    @cached_property
    def data(self) -> LadderData:
        """The task's signals, generated on first use (a rerun with every point done generates nothing)."""
        return self.load_data()

    def point(self, head: dict, cfg: RungConfig, seed: int, lr: float, selected: int = 0) -> dict:
        """The row of ``head`` (rung, variant, kind, matched_dim) at ``seed`` and ``lr``: from the CSV if there,
        copied from the same model under another rung, else trained and measured (``selected`` as given)."""
        point = fingerprint({"model": asdict(cfg), "budget": asdict(self.budget)})
        key = (head["rung"], head["variant"], head["kind"], head["matched_dim"], seed, lr)
        row = self.rows.done.get(key)
        if row is None or row["point"] != point:
            twin = next((r for r in self.rows.done.values()
                         if r["point"] == point and r["seed"] == seed and r["lr"] == lr), None)
            if twin is not None:
                row = {**twin, **head, "selected": selected}
            else:
                if self.bar is not None:
                    self.bar.set_postfix_str(f"{head['rung']} {head['variant']} {head['kind']} d{cfg.dim} s{seed} "
                                             f"lr{lr:g}")
                row = {**head, **self.train(cfg, seed, lr, head), "point": point, "config": self.rows.config,
                       "selected": selected}
                self.trained += 1
            row = self.rows.add(row)
        if self.bar is not None:
            self.bar.update()
        return row

    def train(self, cfg: RungConfig | ExactConfig, seed: int, lr: float, head: dict) -> dict:
        if isinstance(cfg, ExactConfig):
            return self.train_exact(cfg, seed, lr, head)
        f = fit(cfg, self.data, lr, seed, self.budget)
        m = measure(f.model, self.data.x_test, self.data.y_test)
        return {**m, "dim": cfg.dim, "k": "" if cfg.k is None else cfg.k,
                "fan_in": cfg.fan if cfg.wiring.startswith("fanin") else "", "timesteps": cfg.timesteps,
                "seed": seed, "lr": lr, "val_accuracy": f.val_accuracy, "agreement_with_model": "",
                "epochs": f.epochs, "best_epoch": f.best_epoch, "train_seconds": round(f.seconds, 2)}

    def train_exact(self, cfg: ExactConfig, seed: int, lr: float, head: dict) -> dict:
        """An exact point: trained, measured through the simulator, in Lava when the module docstring says so."""
        f = fit_exact(cfg, self.data, lr, seed, self.budget)
        graph = to_graph(f.model)
        m = measure_exact(f.model, self.data.x_test, self.data.y_test, graph)
        if (self.lava is not None and head["kind"] == "sparse" and cfg.dim == self.lava_dim
                and seed == self.seeds[0]):
            point = fingerprint({"model": asdict(cfg), "budget": asdict(self.budget)})
            self.lava.add({**head, "seed": seed, "lr": lr, "point": point, "config": self.rows.config,
                           **lava_check(f.model, self.data.x_test, self.lava_samples, graph=graph)})
        return {**m, "dim": cfg.dim, "k": "" if cfg.variant == "none" else cfg.k, "fan_in": "",
                "timesteps": cfg.timesteps, "seed": seed, "lr": lr, "val_accuracy": f.val_accuracy,
                "epochs": f.epochs, "best_epoch": f.best_epoch, "train_seconds": round(f.seconds, 2)}

    def group(self, head: dict, cfg: RungConfig | ExactConfig) -> list[dict]:
        """Every seed of ``head`` at its selected learning rate (step 1 of the module docstring)."""
        probes = [self.point(head, cfg, self.seeds[0], lr) for lr in self.lrs]
        best = max(probes, key=lambda r: r["val_accuracy"])          # max keeps the first of equals
        rows = [best] + [self.point(head, cfg, s, best["lr"], selected=1) for s in self.seeds[1:]]
        changed = False
        for r in self.rows.done.values():                          # every row of head, also of an earlier choice
            if any(r[c] != head[c] for c in head):
                continue
            want = int(r["lr"] == best["lr"])
            if r["selected"] != want:
                r["selected"], changed = want, True
        if changed:
            self.rows.save()
        return rows

    def width(self, rung: str, variant: str, dim: int, k: int, fan_in: int, timesteps: int) -> None:
        """Sparse points of ``rung``/``variant`` at ``dim``, then its two dense baselines."""
        head = {"rung": rung, "variant": variant, "matched_dim": dim}
        sparse = self.group({**head, "kind": "sparse"}, RUNGS[rung].config(variant, dim, k, fan_in, timesteps))
        ops = float(np.mean([r["synaptic_ops_per_inference"] for r in sparse]))
        self.group({**head, "kind": "dense-synops"}, dense_config(synops_matched_width(ops)))
        self.group({**head, "kind": "dense-params"}, dense_config(params_matched_width(sparse[0]["parameters"])))
        spiking = RUNGS[rung].spiking_baseline(dim, k, timesteps)
        if spiking is not None:
            self.group({**head, "kind": "dense-spiking"}, spiking)


def run_ladder(rungs: Sequence[str], dims: Sequence[int], seeds: Sequence[int], out: str | Path, k: int = 8,
               fan_in: int = 4, timesteps: int = 4, lrs: Sequence[float] = (3e-3, 1e-2), train_signals: int = 20000,
               val_signals: int = 4000, budget: Budget | None = None, options: Sequence[str] = ("",),
               progress: bool = True, threads: int = 1, lava_samples: int = 0) -> list[dict]:
    """Run the ladder of the module docstring into ``out``; returns every row of the CSV."""
    budget = budget or Budget()
    check_inputs(rungs, dims, seeds, k, fan_in, timesteps, lrs)
    if isinstance(lava_samples, bool) or not isinstance(lava_samples, int) or not 0 <= lava_samples <= 1000:
        raise ValueError(f"--lava-samples: expected an integer in [0, 1000] (the test signals), got {lava_samples!r}")
    plan = [(r, v, d) for r in rungs for v in variants(r, tuple(options)) for d in dims]
    for r, v, d in plan:
        RUNGS[r].config(v, d, k, fan_in, timesteps)                    # validates before anything is trained
    torch.set_num_threads(threads)
    fields = task_fields(train_signals, val_signals)
    total = sum(len(KINDS) - (not RUNGS[r].dense_spiking) for r, _, _ in plan) * (len(lrs) + len(seeds) - 1)
    bar = tqdm(total=total, desc="width ladder", unit="model", disable=not progress,
               mininterval=0.1 if sys.stderr.isatty() else 30)             # a log file gets a line every 30 s
    ladder = Ladder(Path(out), lambda: ladder_data(train_signals, val_signals), fields, budget, lrs, seeds, bar,
                    lava_samples=lava_samples, lava_dim=max(dims))
    for r, v, d in plan:
        ladder.width(r, v, d, k, fan_in, timesteps)
    bar.close()
    return sorted(ladder.rows.done.values(), key=ROWS.key_of)


def check_inputs(rungs: Sequence[str], dims: Sequence[int], seeds: Sequence[int], k: int, fan_in: int,
                 timesteps: int, lrs: Sequence[float]) -> None:
    """One-line ValueErrors naming the option, before anything is trained."""
    for name, values in (("--rungs", rungs), ("--dims", dims), ("--seeds", seeds), ("--lrs", lrs)):
        if not values:
            raise ValueError(f"{name}: give at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"{name}: a value is given more than once in {list(values)}")
    for r in rungs:
        if r not in RUNGS:
            raise ValueError(f"--rungs: unknown rung {r!r}; known: {', '.join(RUNGS)}")
    for name, values, lo in (("--dims", dims, 1), ("--seeds", seeds, 0), ("--k", [k], 1), ("--fan-in", [fan_in], 1),
                             ("--timesteps", [timesteps], 1)):
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name}: expected integers ≥ {lo}, got {v!r}")
    if k > min(dims):
        raise ValueError(f"--k ({k}) is larger than the narrowest width {min(dims)} of --dims")
    for lr in lrs:
        if not isinstance(lr, float) or not 0 < lr < 1:
            raise ValueError(f"--lrs: learning rates must be numbers in (0, 1), got {lr!r}")
