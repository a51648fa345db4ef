"""``spikeformer`` command line: train, convert, import, simulate, export, report, sweep, ladder, demo.

Every command that prints figures takes ``--json`` (one JSON object on stdout).
Bad input (missing/corrupt files, invalid configs, options out of range or not
parsable) prints one line ``error: <file or option>: <problem>`` on stderr and
exits with code 2. SIGINT, SIGTERM and SIGHUP stop a command the same way
(``sim.system.signals``): its cleanup runs (no Lava process or shared-memory segment left,
no half-written file), then one line ``error: interrupted by SIG…`` and exit code
128 + the signal number (130, 143, 129), as a shell reports a signal.
"""
from __future__ import annotations

import json
import signal
import sys
import warnings
from functools import wraps
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from sim.system.signals import interrupts_as_exceptions, signal_number
from spikeformer.app.options import check_count, check_seconds

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train sparse spiking transformers, simulate them event by event, run them in Lava.")


export_app = typer.Typer(no_args_is_help=True, help="Export a converted model to another runtime.")


app.add_typer(export_app, name="export")


import_app = typer.Typer(no_args_is_help=True, help="Import a model from another framework into a run directory.")


app.add_typer(import_app, name="import")


err = Console(stderr=True)


JsonOpt = typer.Option(False, "--json", help="Print the figures as one JSON object on stdout.")


def _user_errors() -> tuple[type[BaseException], ...]:
    from loihi_export.protocol import LavaRunError
    from sim.cost.hardware import MappingError
    from sim.engine.trace import TraceError
    from sim.errors import IRError
    from spikeformer.interchange.base import ImportError_
    from spikeformer.store.files import CheckpointError
    return (ImportError_, CheckpointError, IRError, LavaRunError, MappingError, TraceError, ValueError, FileNotFoundError,
            MemoryError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError, NumericWarning)


class NumericWarning(RuntimeWarning):
    """A numpy/torch RuntimeWarning raised by ``friendly``: a value went NaN, infinite or out of range."""


def _numeric_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` inside a command: a RuntimeWarning (numpy's "invalid value encountered", …)
    becomes the command's one error line instead of text before it; other warnings are not output."""
    if issubclass(category, RuntimeWarning):
        raise NumericWarning(f"{Path(filename).name}:{lineno}: {message} (an input or parameter is out of range)")


def friendly(fn: Callable) -> Callable:
    """Turn user-facing errors into one line on stderr and exit code 2, a signal into one line and 128 + its number;
    warnings are not output (a RuntimeWarning is the error line: ``_numeric_warning``)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = _numeric_warning
                return fn(*args, **kwargs)
        except _user_errors() as e:
            msg = " ".join(str(e).split())
            print(f"error: {msg}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:          # SIGINT, SIGTERM, SIGHUP (sim.system.signals): the cleanup has run
            signum = signal_number(e)
            print(f"error: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
            raise typer.Exit(128 + signum) from None
    return wrapper


def emit(figures: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=title, show_header=False)
    fmt = (lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    for k, v in figures.items():
        if isinstance(v, list):
            v = " ".join(f"{x:.3g}" for x in v)
        if isinstance(v, dict):                     # one row per entry (per-population figures)
            for sub, w in v.items():
                table.add_row(f"{k}.{sub}", " ".join(f"{a}={fmt(b)}" for a, b in w.items()) if isinstance(w, dict)
                              else fmt(w))
            continue
        table.add_row(k, fmt(v))
    Console().print(table)


@app.command()
@friendly
def train(out: Path = typer.Option(..., "--out", help="Run directory (created; resumed if it holds a checkpoint)."),
          config: Optional[Path] = typer.Option(None, "--config", help="JSON file {\"model\": {...}, \"train\": {...}}."),
          preset: Optional[str] = typer.Option(None, "--preset", help="Named configuration (spikeformer.configure.presets): demo | kwta | ternary | events | events64 | large | large-kwta | mnist1d | mnist1d-width | tiny."),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the number of epochs."),
          batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the batch size."),
          steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch",
                                                        help="At most N batches per epoch (smoke runs)."),
          device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (auto: cuda when present)."),
          checkpoint: bool = typer.Option(False, "--checkpoint/--no-checkpoint",
                                          help="Recompute each block in backward: less memory, more time."),
          as_json: bool = JsonOpt) -> None:
    """Train a spiking transformer on its dataset (config.dataset, spikeformer.data); write a checkpoint to OUT."""
    from spikeformer.configure import presets
    from spikeformer.train.trainer import train as run_train

    for name, v in (("--epochs", epochs), ("--batch-size", batch_size), ("--steps-per-epoch", steps_per_epoch)):
        check_count(name, v)
    if (config is None) == (preset is None):
        raise ValueError("give exactly one of --config FILE or --preset NAME")
    model_cfg, train_cfg = presets.from_file(config) if config else presets.preset(preset)
    if epochs is not None:
        train_cfg.epochs = epochs
    if batch_size is not None:
        train_cfg.batch_size = batch_size
    if steps_per_epoch is not None:
        train_cfg.steps_per_epoch = steps_per_epoch
    train_cfg.__post_init__()
    res = run_train(model_cfg, train_cfg, out, progress=not as_json, device=device, checkpoint=checkpoint)
    emit({"test_accuracy": res.test_accuracy, "train_accuracy": res.train_accuracy,
          **({} if res.test_bits_per_byte is None else {"test_bits_per_byte": res.test_bits_per_byte}),
          "epochs": res.epochs, "seconds": res.seconds, "out": str(out)}, as_json, "train")


@app.command()
@friendly
def convert(run_dir: Path = typer.Argument(..., help="Run directory written by `spikeformer train`."),
            as_json: bool = JsonOpt) -> None:
    """Lower the trained model to an AER graph file (RUN_DIR/graph.aer.npz)."""
    from spikeformer.runs.steps import convert_run
    emit(convert_run(run_dir), as_json, "convert")


@app.command()
@friendly
def simulate(run_dir: Path = typer.Argument(..., help="Converted run directory."),
             samples: Optional[int] = typer.Option(None, "--samples", help="First N test samples (default: the whole test split)."),
             trace: Optional[Path] = typer.Option(None, "--trace", help="Write AER events to FILE (.h5, or .json for Perfetto)."),
             shards: Optional[int] = typer.Option(None, "--shards", help="Split the batch into N Dask tasks (LocalCluster unless --scheduler)."),
             scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786."),
             as_json: bool = JsonOpt) -> None:
    """Run test samples through the event-driven simulator; compare with the torch model."""
    from spikeformer.runs.steps import simulate_run
    check_count("--samples", samples)
    check_count("--shards", shards)
    emit(simulate_run(run_dir, samples, progress=not as_json, trace=trace, shards=shards, scheduler=scheduler),
         as_json, "simulate")


@app.command()
@friendly
def generate(run_dir: Path = typer.Argument(..., help="Run directory of a language model (e.g. --preset code-lm)."),
             prompt: str = typer.Option(..., "--prompt", help="The context: text whose UTF-8 bytes the model reads."),
             n_bytes: int = typer.Option(..., "--bytes", help="Bytes to generate (≥ 1)."),
             seed: Optional[int] = typer.Option(None, "--seed", help="Sample with this seed (default: greedy)."),
             backend: str = typer.Option("torch", "--backend", help="torch | sim | lava (sim, lava: convert first)."),
             as_json: bool = JsonOpt) -> None:
    """Generate bytes after a prompt, window by window (spikeformer.runs.generate); sim and lava print the
    synaptic ops and Loihi 2 energy per byte."""
    from spikeformer.runs.generate import generate as run_generate
    emit(run_generate(run_dir, prompt, n_bytes, seed, backend), as_json, "generate")


@export_app.command("lava")
@friendly
def export_lava(run_dir: Path = typer.Argument(..., help="Converted run directory (loihi numerics)."),
                samples: Optional[int] = typer.Option(None, "--samples",
                                                      help="First N test samples (default: 20, or all when fewer)."),
                timeout: float = typer.Option(600.0, "--timeout", help="Seconds before the Lava run is killed."),
                as_json: bool = JsonOpt) -> None:
    """Build Lava processes from the graph, run them on Loihi2SimCfg (fixed point), compare spikes."""
    from spikeformer.runs.steps import lava_run
    check_count("--samples", samples)
    check_seconds("--timeout", timeout)
    emit(lava_run(run_dir, samples, timeout), as_json, "export lava")


@export_app.command("nir")
@friendly
def export_nir(run_dir: Path = typer.Argument(..., help="Converted run directory."),
               as_json: bool = JsonOpt) -> None:
    """Write the graph as a NIR file (RUN_DIR/model.nir), readable by nir.read and snnTorch."""
    from spikeformer.interchange.nir_export import write_nir
    from spikeformer.runs.run import open_run
    from spikeformer.store.layout import NIR_FILE
    run = open_run(run_dir)
    graph = run.graph
    path = write_nir(graph, run.path / NIR_FILE)
    emit({"nir": str(path), "bytes": path.stat().st_size, "populations": len(graph.populations),
          "projections": len(graph.projections)}, as_json, "export nir")


@export_app.command("netx")
@friendly
def export_netx(run_dir: Path = typer.Argument(..., help="Converted run directory (loihi numerics)."),
                as_json: bool = JsonOpt) -> None:
    """Write the graph as a lava-dl netx HDF5 file (RUN_DIR/model.net.h5) for `netx.hdf5.Network`:
    a chain of dense CUBA-LIF layers; any other graph (skip connections, attention) is refused."""
    from loihi_export.netx.export import layer_names, write_netx
    from spikeformer.runs.run import open_run
    from spikeformer.store.layout import NETX_FILE
    run = open_run(run_dir)
    path = write_netx(run.graph, run.path / NETX_FILE)
    emit({"netx": str(path), "bytes": path.stat().st_size, "layers": len(layer_names(path))}, as_json,
         "export netx")


def _import_command(fmt: str, description: str) -> None:
    @friendly
    def command(source: Path = typer.Argument(..., help=f"The model file ({description})."),
                out: Path = typer.Option(..., "--out", help="Run directory to write (graph, inputs, import.json)."),
                numerics: str = typer.Option("float", "--numerics",
                                             help="float (the format's semantics) | loihi (quantised; agreement "
                                                  "with float reported)."),
                inputs: Optional[Path] = typer.Option(None, "--inputs",
                                                      help="Input spikes: .npz, one (samples, T, *shape) array per "
                                                           "Input node, optional 'labels'."),
                dataset: Optional[str] = typer.Option(None, "--dataset", help="Input spikes from a dataset (spikeformer.data, e.g. digits, mnist1d): its test split."),
                timesteps: Optional[int] = typer.Option(None, "--timesteps", help="Model ticks (default: the inputs' T)."),
                dt: Optional[float] = typer.Option(None, "--dt", help="Seconds per tick (default: the file's, else 1e-4 "
                                                                     "as snnTorch)."),
                calibrate: Optional[Path] = typer.Option(None, "--calibrate",
                                                         help="loihi: inputs .npz (as --inputs) to tune the quantisation "
                                                              "on (rates, threshold resolution; docs/import.md)."),
                synapse_words: int = typer.Option(2, "--synapse-words",
                                                  help="loihi: synapses per weight, 1 (8-bit) or 2 (hi + lo word)."),
                signs: str = typer.Option("split", "--signs",
                                          help="loihi: split (a projection per sign) or mixed (one 8-bit "
                                               "projection per layer, weight_exp 0, as netx export needs; "
                                               "with --synapse-words 1)."),
                as_json: bool = JsonOpt) -> None:
        from spikeformer.runs.imported import import_run
        check_count("--timesteps", timesteps)
        check_seconds("--dt", dt)
        emit(import_run(fmt, source, out, numerics=numerics, inputs=inputs, dataset=dataset, timesteps=timesteps,
                        dt=dt, calibrate=calibrate, synapse_words=synapse_words, signs=signs), as_json,
                        f"import {fmt}")
    command.__doc__ = f"Import a {description.split(':')[0]} into a run directory (simulate, export, report read it)."
    import_app.command(fmt)(command)


def _register_imports() -> None:
    from spikeformer.interchange.formats import DESCRIPTIONS
    for fmt, description in DESCRIPTIONS.items():
        _import_command(fmt, description)


_register_imports()


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="Run directory with a simulation (`spikeformer simulate`)."),
           chips: Optional[int] = typer.Option(None, "--chips",
                                               help="Cap on Loihi 2 chips (default: as many as the graph needs)."),
           cores_per_chip: int = typer.Option(128, "--cores-per-chip", help="Neuro-cores per chip (Loihi 2: 128)."),
           as_json: bool = JsonOpt) -> None:
    """Map onto Loihi 2 cores/chips and estimate energy and latency per inference (table, JSON, PNG)."""
    from sim.plots import report_figure
    from spikeformer.runs.steps import report_run
    from spikeformer.store.layout import REPORT_PNG

    check_count("--chips", chips)
    check_count("--cores-per-chip", cores_per_chip)
    figures, mapping, result, graph = report_run(run_dir, chips, cores_per_chip)
    figures["png"] = str(report_figure(graph, mapping, result, figures, Path(run_dir) / REPORT_PNG))
    emit(figures, as_json, "report (per inference)")


@app.command()
@friendly
def demo(out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
         lava_samples: int = typer.Option(40, "--lava-samples", help="Test digits to run through Lava."),
         as_json: bool = JsonOpt) -> None:
    """Train the demo preset, convert, simulate all test digits, run a subset in Lava; print the figures."""
    from spikeformer.configure import presets
    from spikeformer.runs.steps import convert_run, lava_run, simulate_run
    from spikeformer.train.trainer import train as run_train

    check_count("--lava-samples", lava_samples)
    say = (lambda *a: None) if as_json else err.print
    model_cfg, train_cfg = presets.preset("demo")
    say(f"[bold]1/4 train[/] preset 'demo' → {out}")
    tr = run_train(model_cfg, train_cfg, out, progress=not as_json)
    say("[bold]2/4 convert[/] → AER graph")
    cv = convert_run(out)
    say("[bold]3/4 simulate[/] all test digits in the event-driven engine")
    sm = simulate_run(out, None)
    say(f"[bold]4/4 lava[/] {lava_samples} test digits on Loihi2SimCfg(fixed_pt)")
    lv = lava_run(out, lava_samples)
    figures = {
        "test_accuracy_model": tr.test_accuracy, "test_accuracy_simulator": sm["accuracy"],
        "test_accuracy_lava": lv["accuracy"], "lava_samples": lv["samples"],
        "agreement_sim_vs_model": sm["agreement_with_model"], "agreement_lava_vs_model": lv["agreement_with_model"],
        "lava_identical_to_simulator": lv["identical_to_simulator"], "lava_mismatched_spikes": lv["mismatched_spikes"],
        "synaptic_ops_per_inference": sm["synaptic_ops_per_inference"],
        "spikes_per_inference": sm["spikes_per_inference"],
        "neurons": cv["neurons"], "synapses": cv["synapses"],
        "train_seconds": tr.seconds, "simulate_seconds": sm["seconds"], "lava_seconds": lv["seconds"],
    }
    emit(figures, as_json, "spikeformer demo (loihi numerics)")


@app.command()
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


@app.command()
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
           as_json: bool = JsonOpt) -> None:
    """Width ladder: MLP rungs from float TopK to spiking k-WTA, dense baselines beside; resumable CSV, PNG, MD."""
    from spikeformer.experiments.ladder.command import ladder_command

    figures = ladder_command(rungs, dims, seeds, out, k, fan_in, timesteps, lrs, train_signals, val_signals, patience,
                             max_epochs, options, progress=not as_json)
    if as_json:
        print(json.dumps(figures))
        return
    from spikeformer.experiments.ladder.report import slope_lines
    print("\n".join(slope_lines(figures["rows"])) + f"\n{figures['csv']}, {figures['png']}, {figures['md']}")


def _click_exception() -> type[Exception]:
    """click's ClickException (typer ≥ 0.20 vendors click: reached through typer.BadParameter)."""
    return next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; click's own errors (unknown option, unparsable number, missing argument) are one line too."""
    click_exception = _click_exception()
    with interrupts_as_exceptions():
        try:
            code = typer.main.get_command(app).main(args=argv, prog_name="spikeformer", standalone_mode=False)
        except click_exception as e:
            if type(e).__name__ != "NoArgsIsHelpError":     # (that one has printed the help)
                print(f"error: {' '.join(e.format_message().split())}", file=sys.stderr)
            sys.exit(e.exit_code)
        except typer.Abort:                                 # end of input at a prompt
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
