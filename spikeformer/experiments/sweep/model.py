"""Model-width sweep (``sweep --over model``): sparse-wide models (k-WTA stream and hidden layer, fan-in F) against
dense-narrow ones.

Sparse points: for every D in ``dims`` and every seed, the base config at dim = D
(hidden = D·mlp_ratio) with ``stream_k = hidden_k = k`` (≤ k spikes per token per
tick in every stream population and the hidden layer; ``wta_rule``, default
"group": the first spike of each of k contiguous channel groups, whose circuit
costs O(log(D/k)) synaptic ops per spike, see ``spikeformer.arch.wta``) and ``fan_in = F`` (F incoming
synapses per neuron, sources fixed at init; the embedding: each input feature reaches
``emb_fan_out`` fixed channels, distinct across features when D ≥ features·emb_fan_out —
base config's value, default F). Per token and tick a k-WTA population sends ≤ k spikes,
each to F·(post width)/(pre width) synapses on average, and the embedding's input spikes
reach the same number of channels at every D, so once D ≫ k·F and D ≥ features·emb_fan_out
nothing but the k-WTA trees' O(log(D/k)) per raw spike depends on D, while parameters
grow ≈ F·D. ``synops_breakdown`` splits the measured synaptic ops by part. The trees
are paid per *raw* spike, kept or not, and a spike the k-WTA drops carries nothing
downstream: the preset ``mnist1d-width`` trains with ``train.discard_penalty`` (loss +
λ·Σ(raw − kept) per sample, ``SpikingTransformer.discarded_spikes``), so the models learn
to send about one spike per group and tick into the trees.

Dense baselines (no k-WTA, dense weights), widths from ``dense_dims``:

* synops-matched: for each sparse D, the dense width w whose seed-0 model's measured
  synaptic ops per inference s(w) is nearest (in log) to the sparse mean over seeds.
  s(w) is taken to grow with w: a bisection over ``dense_dims`` trains seed 0 at the
  widths it visits (``probe`` rows: also in the CSV). No width within ``MATCH_RATIO``
  → ValueError naming ``--dense-dims``. Then every seed of w is trained.
* parameter-matched: the width (a multiple of heads) whose dense parameter count is
  nearest to the widest sparse model's (computed, not trained for).

Every model is trained, converted and simulated on the test split (simulator =
torch model is checked spike for spike: ``agreement_with_model``), then costed
(``spikeformer report``: Loihi 2 and int8-ANN energies). ``parameters`` =
``parameter_count``: trainable entries the model can use (F per row of a fan-in matrix, emb_fan_out per
column of the embedding, all of a dense one, plus readout and temperature).

Layout of ``out_dir``: ``{kind}-d{D}-s{seed}/`` run dirs (train resumes from its
checkpoint), ``width-sweep.csv`` (one row per finished model, rewritten atomically
after each), ``width-sweep.png`` (``sim.plots.width_sweep_plot``). A rerun skips every
finished row of the same fingerprint (``rows.fingerprint`` of ``shared_config``: base config, train config,
k, F, samples, wta_rule).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from spikeformer.config.train import TrainConfig
from spikeformer.experiments.sweep.figures import max_over_min, parameter_count
from spikeformer.experiments.sweep.rows import RowSchema, SweepRows, check_run_dir, fingerprint, model_fields
from spikeformer.store.files import read_json

CSV_FILE = "width-sweep.csv"


PNG_FILE = "width-sweep.png"


MATCH_RATIO = 1.5                    # a dense baseline matches when its synops are within this factor


ROWS = RowSchema(
    name="width-sweep",
    columns=("kind", "matched", "dim", "hidden", "k", "fan_in", "seed", "accuracy", "model_accuracy",
             "agreement_with_model", "synaptic_ops_per_inference", "spikes_per_inference", "parameters",
             "synapses", "energy_loihi2_joules", "energy_ann_int8_joules", "samples", "epochs", "train_seconds",
             "config"),
    ints=("dim", "hidden", "seed", "parameters", "synapses", "samples", "epochs"),
    floats=("accuracy", "model_accuracy", "agreement_with_model", "synaptic_ops_per_inference",
            "spikes_per_inference", "energy_loihi2_joules", "energy_ann_int8_joules", "train_seconds"),
    key=("kind", "dim", "seed"),
    optional_ints=("k", "fan_in"))


def sparse_config(base: Any, dim: int, k: int, fan_in: int, wta_rule: str = "group") -> Any:
    return base.replace(dim=dim, stream_k=k, hidden_k=k, fan_in=fan_in, weight_sparsity=None, wta_rule=wta_rule)


def dense_config(base: Any, dim: int) -> Any:
    return base.replace(dim=dim, stream_k=None, hidden_k=None, fan_in=None, emb_fan_out=None, weight_sparsity=None)


def check_inputs(dims: Sequence[int], k: int, fan_in: int, seeds: int, dense_dims: Sequence[int],
                 heads: int) -> None:
    """Validate before anything is trained; errors name the option."""
    for name, values in (("--dims", dims), ("--dense-dims", dense_dims)):
        if not values:
            raise ValueError(f"{name}: give at least one width")
        for d in values:
            if isinstance(d, bool) or not isinstance(d, int) or d < 1 or d % heads:
                raise ValueError(f"{name}: every width must be a positive multiple of heads={heads}, got {d!r}")
        dup = sorted({d for d in values if list(values).count(d) > 1})
        if dup:
            raise ValueError(f"{name}: width {dup[0]} is given more than once")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {seeds!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"--k must be a positive integer, got {k!r}")
    if k > min(dims):
        raise ValueError(f"--k ({k}) is larger than the width D={min(dims)}: at most k of D stream neurons "
                         f"can spike per token")
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 1:
        raise ValueError(f"--fan-in must be a positive integer, got {fan_in!r}")
    if fan_in > min(dims):
        raise ValueError(f"--fan-in ({fan_in}) is larger than the pre-population: the stream of width "
                         f"D={min(dims)} has only {min(dims)} neurons to connect from")


def shared_config(base: Any, train_cfg: TrainConfig, k: int, fan_in: int, samples: int | None,
                  wta_rule: str = "group") -> dict:
    """What every point shares: base model (less dim), train config (less seed, threads), k, F, samples,
    the sparse models' wta_rule."""
    model = {key: v for key, v in model_fields(base).items() if key != "dim"}
    train = {key: v for key, v in asdict(train_cfg).items() if key not in ("seed", "threads")}
    return {"model": model, "train": train, "k": k, "fan_in": fan_in, "samples": samples, "wta_rule": wta_rule}


def run_point(run_dir: Path, model_cfg: Any, train_cfg: TrainConfig, samples: int | None, device: str,
              progress: bool) -> dict:
    """Train (or resume), convert, simulate and cost one model; the measured figures of its CSV row."""
    from spikeformer.runs.steps import convert_run, report_run, simulate_run
    from spikeformer.train.trainer import train

    tr = train(model_cfg, train_cfg, run_dir, progress=progress, device=device)
    cv = convert_run(run_dir)
    sm = simulate_run(run_dir, samples, progress=progress)
    rp, *_ = report_run(run_dir)
    arch, fan_in = model_cfg.arch, model_cfg.weights.fan_in
    return {"dim": arch.dim, "hidden": arch.dim * arch.mlp_ratio, "k": "" if arch.stream_k is None else arch.stream_k,
            "fan_in": "" if fan_in is None else fan_in, "seed": train_cfg.seed,
            "accuracy": sm["accuracy"], "model_accuracy": sm["model_accuracy"],
            "agreement_with_model": sm["agreement_with_model"],
            "synaptic_ops_per_inference": sm["synaptic_ops_per_inference"],
            "spikes_per_inference": sm["spikes_per_inference"], "parameters": parameter_count(model_cfg),
            "synapses": int(cv["synapses"]), "energy_loihi2_joules": rp["energy_loihi2_joules"],
            "energy_ann_int8_joules": rp["energy_ann_int8_memory_joules"], "samples": sm["samples"],
            "epochs": tr.epochs, "train_seconds": tr.seconds}


def mean_synops(rows: Sequence[dict], kind: str, dim: int) -> float:
    return float(np.mean([r["synaptic_ops_per_inference"] for r in rows if r["kind"] == kind and r["dim"] == dim]))


def match_width(target: float, widths: Sequence[int], synops_of: Callable[[int], float], what: str) -> int:
    """The width of ``widths`` whose synops (increasing in width) is nearest ``target`` in log ratio, found by
    bisection (``synops_of`` is called only on the widths it visits); ValueError naming --dense-dims if the
    nearest is more than MATCH_RATIO away."""
    ws = sorted(widths)
    lo, hi = 0, len(ws) - 1
    seen: dict[int, float] = {}
    while lo <= hi:
        mid = (lo + hi) // 2
        seen[ws[mid]] = synops_of(ws[mid])
        if seen[ws[mid]] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    best = min(seen, key=lambda w: abs(math.log(seen[w] / target)) if seen[w] > 0 else math.inf)
    ratio = max(seen[best], target) / max(min(seen[best], target), 1e-300)
    if ratio > MATCH_RATIO:
        raise ValueError(f"--dense-dims: no dense width in [{ws[0]}, {ws[-1]}] matches the synaptic ops of {what} "
                         f"({target:.4g} per inference) within {MATCH_RATIO}×: the nearest, width {best}, gives "
                         f"{seen[best]:.4g} ({ratio:.2f}×); widen --dense-dims")
    return best


def parameter_matched_width(target: int, base: Any, most: int = 4096) -> int:
    """The dense width (multiple of heads, ≤ ``most``) whose parameter count is nearest ``target``."""
    widths = range(base.arch.heads, most + 1, base.arch.heads)
    return min(widths, key=lambda w: abs(parameter_count(dense_config(base, w)) - target))


class _Points:
    """The sweep's points in ``out``: each trained, converted, simulated and costed once, its row kept in ``rows``."""

    def __init__(self, out: Path, rows: SweepRows, train_cfg: TrainConfig, samples: int | None, device: str,
                 progress: bool, bar: Any) -> None:
        self.out, self.rows, self.train_cfg, self.samples = out, rows, train_cfg, samples
        self.device, self.progress, self.bar = device, progress, bar

    def point(self, kind: str, cfg: Any, seed: int, matched: str) -> dict:
        """The row of ``kind`` at ``cfg``.dim and ``seed`` (run if missing); ``matched`` added to its roles."""
        key, done = (kind, cfg.arch.dim, seed), self.rows.done
        if key not in done:
            run_dir = self.out / f"{kind}-d{cfg.arch.dim}-s{seed}"
            tcfg = replace(self.train_cfg, seed=seed)
            check_run_dir(run_dir, cfg, tcfg)
            self.bar.set_postfix(model=run_dir.name)
            return self.rows.add({**run_point(run_dir, cfg, tcfg, self.samples, self.device, self.progress),
                                  "kind": kind, "config": self.rows.config, "matched": matched})
        changed = {"parameters": parameter_count(cfg)}        # computed from the config, not measured
        if matched and matched not in done[key]["matched"].split("+"):
            changed["matched"] = "+".join(filter(None, [done[key]["matched"], matched]))
        if any(done[key][c] != v for c, v in changed.items()):
            done[key].update(changed)
            self.rows.save()
        return done[key]


def sweep(dims: Sequence[int], k: int, fan_in: int, seeds: int, dense_dims: Sequence[int], out_dir: str | Path,
          base: Any, train_cfg: TrainConfig, samples: int | None = None, device: str = "auto",
          progress: bool = True, wta_rule: str = "group") -> list[dict]:
    """Run the sweep of the module docstring into ``out_dir``; returns every finished row."""
    dims, dense_dims = list(dims), list(dense_dims)
    check_inputs(dims, k, fan_in, seeds, dense_dims, base.arch.heads)
    for d in dims:
        sparse_config(base, d, k, fan_in, wta_rule)  # validates (ModelConfig) before training
    for d in dense_dims:
        dense_config(base, d)
    out = Path(out_dir)
    rows = SweepRows(out / CSV_FILE, ROWS, fingerprint(shared_config(base, train_cfg, k, fan_in, samples, wta_rule)))
    bar = tqdm(total=len(dims) * seeds, desc="width sweep", unit="model", disable=not (progress and sys.stderr.isatty()))
    points = _Points(out, rows, train_cfg, samples, device, progress, bar)
    for d in dims:
        for s in range(seeds):
            points.point("sparse", sparse_config(base, d, k, fan_in, wta_rule), s, "")
            bar.update()
    bar.close()
    matched: dict[int, str] = {}
    for d in dims:                                    # synops-matched dense widths (seed-0 probes)
        w = match_width(mean_synops(rows.done.values(), "sparse", d), dense_dims,
                        lambda w: points.point("dense", dense_config(base, w), 0, "probe")["synaptic_ops_per_inference"],
                        f"sparse D={d}")
        matched[w] = "synops"
    wp = parameter_matched_width(parameter_count(sparse_config(base, max(dims), k, fan_in, wta_rule)), base)
    matched[wp] = "+".join(filter(None, [matched.get(wp), "parameters"]))
    for w, how in sorted(matched.items()):
        for s in range(seeds):
            for m in how.split("+"):
                points.point("dense", dense_config(base, w), s, m)
    for r in rows.done.values():                      # a probe that became a matched width is no longer a probe
        if "probe" in r["matched"].split("+") and r["kind"] == "dense" and r["dim"] in matched:
            r["matched"] = matched[r["dim"]]
    rows.save()
    from sim.plots import width_sweep_plot
    width_sweep_plot(rows.path, path=out / PNG_FILE)
    return sorted(rows.done.values(), key=ROWS.key_of)


def summary(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (kind, dim): accuracy, synops, parameters."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["dim"]), []).append(r)
    out = []
    for (kind, dim), rs in sorted(groups.items()):
        acc = [r["accuracy"] for r in rs]
        ops = [r["synaptic_ops_per_inference"] for r in rs]
        out.append({"kind": kind, "dim": dim, "matched": rs[0]["matched"], "seeds": len(rs),
                    "accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
                    "synops_mean": float(np.mean(ops)), "parameters": rs[0]["parameters"],
                    "agreement_min": min(r["agreement_with_model"] for r in rs)})
    return out


def sparse_synops_ratio(rows: Sequence[dict]) -> float:
    """max / min over sparse widths of the mean synaptic ops per inference."""
    return max_over_min([mean_synops(rows, "sparse", d)
                         for d in sorted({r["dim"] for r in rows if r["kind"] == "sparse"})])


def synops_breakdown(run_dir: str | Path) -> dict[str, dict[str, float]]:
    """Where a simulated run's synaptic ops and spikes go, per inference (means over the simulated samples).

    ``synops`` per part: ``trained`` (the linear projections), ``relay`` (out of the graded stream relays),
    ``stream_wta`` / ``hidden_wta`` (into a k-WTA population or its tree), ``attention`` (the rest);
    ``spikes``: raw (the LIF populations the k-WTA reads) and kept, stream and hidden layer."""
    from sim.engine.results import load_result
    from spikeformer.arch.build import build_spec
    from spikeformer.config.model import ModelConfig
    from spikeformer.runs.steps import load_run_graph
    from spikeformer.store.layout import CONFIG_FILE, RESULT_FILE

    graph = load_run_graph(run_dir)
    res = load_result(Path(run_dir) / RESULT_FILE, graph)
    ops = {pr.name: pr.op for pr in build_spec(ModelConfig.from_dict(read_json(Path(run_dir) / CONFIG_FILE)["model"])
                                                ).projections}
    role = {p.name: p.role for p in graph.populations}
    wta = {p.name: p.role.replace("_kwta", "_wta") for p in graph.populations if p.role.endswith("_kwta")}
    parts: dict[str, float] = {}
    for pr in graph.projections:
        owner = next((w for w in wta if pr.post == w or pr.post.startswith(w + ".")), None)
        part = ("trained" if ops[pr.name] == "linear" else "relay" if role[pr.pre] == "relay"
                else wta[owner] if owner else "attention")
        parts[part] = parts.get(part, 0.0) + float(res.synaptic_ops[pr.name].mean())
    kinds = {"stream": "stream_raw", "stream_kwta": "stream_kept", "hidden": "hidden_raw", "hidden_kwta": "hidden_kept"}
    spikes = dict.fromkeys(kinds.values(), 0.0)
    for p in graph.populations:
        if p.role in kinds:
            spikes[kinds[p.role]] += float(res.spike_counts[p.name].mean())
    return {"synops": dict(sorted(parts.items())), "spikes": spikes}
