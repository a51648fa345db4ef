"""``spikeformer sweep`` and ``spikeformer ladder``: the commands that run experiments
(spikeformer.experiments), registered on the CLI's app by ``register``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from spikeformer.app.options import check_count
from spikeformer.app.terminal import JsonOpt, friendly


def register(app: typer.Typer) -> None:
    """Add ``sweep`` and ``ladder`` to ``app`` (in this order)."""
    app.command()(sweep)
    app.command()(ladder)


@friendly
def sweep(dims: str = typer.Option(..., "--dims", help="Comma-separated widths: HD code widths (--over hd) or "
                                                       "model widths D of the sparse models (--over model)."),
          over: str = typer.Option("hd", "--over", help="hd: the input HD code width at fixed active bits; "
                                                        "model: the model width, sparse (k-WTA, fan-in) vs dense."),
          active_bits: Optional[int] = typer.Option(None, "--active-bits", help="--over hd: active bits k per token."),
          k: Optional[int] = typer.Option(None, "--k", help="--over model: spikes per token per tick in every "
                                                            "stream population and the hidden layer."),
          fan_in: Optional[int] = typer.Option(None, "--fan-in", help="--over model: incoming weights per neuron."),
          wta_rule: str = typer.Option("group", "--wta-rule", help="--over model: which k spikes the sparse models "
                                                                   "keep: group (first of each of k channel groups, "
                                                                   "O(log D) per spike) | index (first k) | strength (k of highest "
                                                                   "voltage level, ties by group)."),
          seeds: int = typer.Option(3, "--seeds", help="--over model: seeds per width."),
          dense_dims: Optional[str] = typer.Option(None, "--dense-dims",
                                                   help="--over model: widths the dense baselines may take."),
          device: str = typer.Option("auto", "--device", help="--over model: training device auto | cpu | cuda."),
          out: Path = typer.Option(..., "--out", help="Sweep directory: run dirs, the CSV and the PNG."),
          preset: Optional[str] = typer.Option(None, "--preset", help="Base configuration: any preset of `train` (default demo)."),
          config: Optional[Path] = typer.Option(None, "--config", help="Base configuration file {\"model\", \"train\"}."),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the number of training epochs."),
          samples: Optional[int] = typer.Option(None, "--samples", help="Simulate the first N test samples (default all)."),
          threads: Optional[int] = typer.Option(None, "--threads", help="Override train.threads (torch threads)."),
          as_json: bool = JsonOpt) -> None:
    """Train, convert and simulate one model per width; write the sweep's CSV and PNG."""
    from spikeformer.configure import presets
    from spikeformer.experiments.sweep.figures import parse_dims

    if config is not None and preset is not None:
        raise ValueError("give at most one of --config FILE or --preset NAME")
    if over not in ("hd", "model"):
        raise ValueError(f"--over must be 'hd' or 'model', got {over!r}")
    dim_list = parse_dims(dims)
    for name, v in (("--active-bits", active_bits), ("--epochs", epochs), ("--samples", samples),
                    ("--threads", threads)):
        check_count(name, v)
    model_cfg, train_cfg = presets.from_file(config) if config else presets.preset(preset or "demo")
    if epochs is not None:
        train_cfg.epochs = epochs
    if threads is not None:
        train_cfg.threads = threads
    if over == "model":
        _model_sweep(dim_list, k, fan_in, seeds, dense_dims, device, out, model_cfg, train_cfg, samples, as_json,
                     wta_rule)
        return
    if active_bits is None:
        raise ValueError("--active-bits is required with --over hd")
    _hd_sweep(dim_list, active_bits, out, model_cfg, train_cfg, samples, as_json)


def _hd_sweep(dims: list[int], active_bits: int, out: Path, model_cfg, train_cfg, samples: Optional[int],
              as_json: bool) -> None:
    """``sweep --over hd``: spikeformer.experiments.sweep.hd, then a table of its rows."""
    from spikeformer.experiments.sweep import hd

    rows = hd.sweep(dims, active_bits, out, model_cfg, train_cfg, samples, progress=not as_json)
    ratio = hd.synops_ratio(rows)
    csv_path, png_path = out / hd.CSV_FILE, out / hd.PNG_FILE
    if as_json:
        print(json.dumps({"rows": rows, "synops_max_over_min": ratio, "csv": str(csv_path), "png": str(png_path)}))
        return
    table = Table(title=f"width sweep, k = {active_bits} active bits", show_edge=False,
                  caption=f"synops, spikes: per inference; acc: simulator, torch: model; agree: every spike equal. "
                          f"{csv_path}, {png_path}")
    cols = {"dim": "D", "accuracy": "acc", "model_accuracy": "torch", "agreement_with_model": "agree",
            "synaptic_ops_per_inference": "synops", "spikes_per_inference": "spikes",
            "parameters": "params", "synapses": "synapses", "train_seconds": "train s"}
    for head in cols.values():
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:.0f}" if c in ("synaptic_ops_per_inference", "spikes_per_inference", "train_seconds")
                        else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    Console().print(table)
    Console().print(f"synaptic ops per inference, max/min over D: {ratio:.3f}")


def _model_sweep(dims: list[int], k: Optional[int], fan_in: Optional[int], seeds: int, dense_dims: Optional[str],
                 device: str, out: Path, model_cfg, train_cfg, samples: Optional[int], as_json: bool,
                 wta_rule: str = "group") -> None:
    """``sweep --over model``: spikeformer.experiments.sweep.model, then a table of means over seeds."""
    from spikeformer.experiments.sweep import model as model_sweep
    from spikeformer.experiments.sweep.figures import parse_dims
    from spikeformer.train.trainer import resolve_device

    for name, v in (("--k", k), ("--fan-in", fan_in), ("--dense-dims", dense_dims)):
        if v is None:
            raise ValueError(f"{name} is required with --over model")
    dense = parse_dims(dense_dims, "--dense-dims")
    resolve_device(device)
    from spikeformer.arch.wta import RULES
    if wta_rule not in RULES:
        raise ValueError(f"--wta-rule must be one of {tuple(RULES)}, got {wta_rule!r}")
    rows = model_sweep.sweep(dims, k, fan_in, seeds, dense, out, model_cfg, train_cfg, samples, device,
                             progress=not as_json, wta_rule=wta_rule)
    figures = {"rows": rows, "summary": model_sweep.summary(rows),
               "sparse_synops_max_over_min": model_sweep.sparse_synops_ratio(rows),
               "csv": str(out / model_sweep.CSV_FILE), "png": str(out / model_sweep.PNG_FILE)}
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=f"model-width sweep, k = {k} ({wta_rule} rule), fan-in = {fan_in} (mean ± std over seeds)",
                  show_edge=False,
                  caption=f"agree: min over seeds of the fraction of test samples whose every spike equals the "
                          f"torch model's. {figures['csv']}, {figures['png']}")
    for head in ("kind", "matched", "width", "seeds", "accuracy", "synops", "params", "agree"):
        table.add_column(head, justify="right")
    for g in figures["summary"]:
        table.add_row(g["kind"], g["matched"], str(g["dim"]), str(g["seeds"]),
                      f"{g['accuracy_mean']:.3f} ± {g['accuracy_std']:.3f}", f"{g['synops_mean']:.4g}",
                      str(g["parameters"]), f"{g['agreement_min']:.3f}")
    Console().print(table)
    Console().print(f"sparse synaptic ops per inference, max/min over D: {figures['sparse_synops_max_over_min']:.3f}")


@friendly
def ladder(rungs: str = typer.Option("R0,R1,R2,R3,R4", "--rungs", help="Comma-separated rungs, run in this order."),
           dims: str = typer.Option("16,64,256,1024", "--dims", help="Comma-separated hidden widths D."),
           seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds (the first chooses the lr)."),
           out: Path = typer.Option(..., "--out", help="Directory of width-ladder.csv/.png/.md (resumed)."),
           k: int = typer.Option(8, "--k", help="Units kept per inference (per tick when spiking)."),
           fan_in: int = typer.Option(4, "--fan-in", help="R4: inputs per hidden unit (fan-out F variant: F)."),
           timesteps: int = typer.Option(4, "--timesteps", help="Ticks T of the spiking rungs."),
           lrs: str = typer.Option("0.003,0.01", "--lrs", help="Learning rates tried per width on validation."),
           train_signals: int = typer.Option(20000, "--train-signals", help="Generated MNIST-1D training signals."),
           val_signals: int = typer.Option(4000, "--val-signals", help="Generated validation signals."),
           patience: int = typer.Option(3, "--patience", help="Epochs without a better validation accuracy."),
           max_epochs: int = typer.Option(40, "--max-epochs", help="Most epochs per model."),
           options: str = typer.Option("none", "--options", help="Variants' options: none | auxk | active-init, "
                                                                 "comma-separated, '+' combines."),
           lava_samples: int = typer.Option(0, "--lava-samples", help="Exact rungs (R5, R6): test signals the "
                                            "widest seed-0 points also run in Lava (0: none)."),
           as_json: bool = JsonOpt) -> None:
    """Width ladder: rungs from float TopK to the exact spiking model, dense baselines beside; resumable CSV, PNG, MD."""
    from spikeformer.experiments.ladder.command import ladder_command

    figures = ladder_command(rungs, dims, seeds, out, k, fan_in, timesteps, lrs, train_signals, val_signals, patience,
                             max_epochs, options, progress=not as_json, lava_samples=lava_samples)
    if as_json:
        print(json.dumps(figures))
        return
    from spikeformer.experiments.ladder.report import slope_lines
    print("\n".join(slope_lines(figures["rows"])) + f"\n{figures['csv']}, {figures['png']}, {figures['md']}")
