"""``spikeformer`` command line: train, convert, import, simulate, export, report, sweep, demo.

Every command that prints figures takes ``--json`` (one JSON object on stdout).
Bad input (missing/corrupt files, invalid configs) prints one line
``error: <file or option>: <problem>`` on stderr and exits with code 2.
"""
from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train sparse spiking transformers, simulate them event by event, run them in Lava.")
export_app = typer.Typer(no_args_is_help=True, help="Export a converted model to another runtime.")
app.add_typer(export_app, name="export")
import_app = typer.Typer(no_args_is_help=True, help="Import a model from another framework into a run directory.")
app.add_typer(import_app, name="import")
err = Console(stderr=True)
JsonOpt = typer.Option(False, "--json", help="Print the figures as one JSON object on stdout.")


def _user_errors() -> tuple[type[BaseException], ...]:
    from loihi_export.errors import LavaRunError
    from sim.hardware import MappingError
    from sim.ir import IRError
    from sim.trace import TraceError
    from spikeformer.importers import ImportError_
    from spikeformer.train import CheckpointError
    return (ImportError_, CheckpointError, IRError, LavaRunError, MappingError, TraceError, ValueError, FileNotFoundError,
            MemoryError)


def friendly(fn: Callable) -> Callable:
    """Turn user-facing errors into one line on stderr and exit code 2."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            msg = " ".join(str(e).split())
            print(f"error: {msg}", file=sys.stderr)
            raise typer.Exit(2) from None
    return wrapper


def emit(figures: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=title, show_header=False)
    for k, v in figures.items():
        if isinstance(v, list):
            v = " ".join(f"{x:.3g}" for x in v)
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


@app.command()
@friendly
def train(out: Path = typer.Option(..., "--out", help="Run directory (created; resumed if it holds a checkpoint)."),
          config: Optional[Path] = typer.Option(None, "--config", help="JSON file {\"model\": {...}, \"train\": {...}}."),
          preset: Optional[str] = typer.Option(None, "--preset", help="Named configuration (spikeformer.presets): demo | kwta | ternary | events | events64 | large | large-kwta | mnist1d | tiny."),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the number of epochs."),
          batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the batch size."),
          steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch",
                                                        help="At most N batches per epoch (smoke runs)."),
          device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (auto: cuda when present)."),
          checkpoint: bool = typer.Option(False, "--checkpoint/--no-checkpoint",
                                          help="Recompute each block in backward: less memory, more time."),
          as_json: bool = JsonOpt) -> None:
    """Train a spiking transformer on its dataset (config.dataset, spikeformer.datasets); write a checkpoint to OUT."""
    from spikeformer import presets
    from spikeformer.train import train as run_train

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
          "epochs": res.epochs, "seconds": res.seconds, "out": str(out)}, as_json, "train")


@app.command()
@friendly
def convert(run_dir: Path = typer.Argument(..., help="Run directory written by `spikeformer train`."),
            as_json: bool = JsonOpt) -> None:
    """Lower the trained model to an AER graph file (RUN_DIR/graph.aer.npz)."""
    from spikeformer.pipeline import convert_run
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
    from spikeformer.pipeline import simulate_run
    emit(simulate_run(run_dir, samples, progress=not as_json, trace=trace, shards=shards, scheduler=scheduler),
         as_json, "simulate")


@export_app.command("lava")
@friendly
def export_lava(run_dir: Path = typer.Argument(..., help="Converted run directory (loihi numerics)."),
                samples: int = typer.Option(20, "--samples", help="First N test samples."),
                timeout: float = typer.Option(600.0, "--timeout", help="Seconds before the Lava run is killed."),
                as_json: bool = JsonOpt) -> None:
    """Build Lava processes from the graph, run them on Loihi2SimCfg (fixed point), compare spikes."""
    from spikeformer.pipeline import lava_run
    emit(lava_run(run_dir, samples, timeout), as_json, "export lava")


@export_app.command("nir")
@friendly
def export_nir(run_dir: Path = typer.Argument(..., help="Converted run directory."),
               as_json: bool = JsonOpt) -> None:
    """Write the graph as a NIR file (RUN_DIR/model.nir), readable by nir.read and snnTorch."""
    from loihi_export.nir_export import write_nir
    from spikeformer.pipeline import load_run_graph
    graph = load_run_graph(run_dir)
    path = write_nir(graph, Path(run_dir) / "model.nir")
    emit({"nir": str(path), "bytes": path.stat().st_size, "populations": len(graph.populations),
          "projections": len(graph.projections)}, as_json, "export nir")


@export_app.command("netx")
@friendly
def export_netx(run_dir: Path = typer.Argument(..., help="Converted run directory (loihi numerics)."),
                as_json: bool = JsonOpt) -> None:
    """Write the graph as a lava-dl netx HDF5 file (RUN_DIR/model.net.h5) for `netx.hdf5.Network`:
    a chain of dense CUBA-LIF layers; any other graph (skip connections, attention) is refused."""
    from loihi_export.netx_export import layer_names, write_netx
    from spikeformer.pipeline import load_run_graph
    path = write_netx(load_run_graph(run_dir), Path(run_dir) / "model.net.h5")
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
                dataset: Optional[str] = typer.Option(None, "--dataset", help="Input spikes from a dataset (spikeformer.datasets, e.g. digits, mnist1d): its test split."),
                timesteps: Optional[int] = typer.Option(None, "--timesteps", help="Model ticks (default: the inputs' T)."),
                dt: Optional[float] = typer.Option(None, "--dt", help="Seconds per tick (default: the file's, else 1e-4 "
                                                                     "as snnTorch)."),
                as_json: bool = JsonOpt) -> None:
        from spikeformer.imported import import_run
        emit(import_run(fmt, source, out, numerics=numerics, inputs=inputs, dataset=dataset, timesteps=timesteps,
                        dt=dt), as_json, f"import {fmt}")
    command.__doc__ = f"Import a {description.split(':')[0]} into a run directory (simulate, export, report read it)."
    import_app.command(fmt)(command)


def _register_imports() -> None:
    from spikeformer.importers import DESCRIPTIONS
    for fmt, description in DESCRIPTIONS.items():
        _import_command(fmt, description)


_register_imports()


@app.command()
@friendly
def report(run_dir: Path = typer.Argument(..., help="Run directory with a simulation (`spikeformer simulate`)."),
           chips: Optional[int] = typer.Option(None, "--chips", min=1,
                                               help="Cap on Loihi 2 chips (default: as many as the graph needs)."),
           cores_per_chip: int = typer.Option(128, "--cores-per-chip", help="Neuro-cores per chip (Loihi 2: 128)."),
           as_json: bool = JsonOpt) -> None:
    """Map onto Loihi 2 cores/chips and estimate energy and latency per inference (table, JSON, PNG)."""
    from sim.plots import report_figure
    from spikeformer.pipeline import report_run

    figures, mapping, result, graph = report_run(run_dir, chips, cores_per_chip)
    figures["png"] = str(report_figure(graph, mapping, result, figures, Path(run_dir) / "report.png"))
    emit(figures, as_json, "report (per inference)")


@app.command()
@friendly
def demo(out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
         lava_samples: int = typer.Option(40, "--lava-samples", help="Test digits to run through Lava."),
         as_json: bool = JsonOpt) -> None:
    """Train the demo preset, convert, simulate all test digits, run a subset in Lava; print the figures."""
    from spikeformer import presets
    from spikeformer.pipeline import convert_run, lava_run, simulate_run
    from spikeformer.train import train as run_train

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
def sweep(dims: str = typer.Option(..., "--dims", help="Comma-separated HD code widths D, e.g. 256,1024,4096,16384."),
          active_bits: int = typer.Option(..., "--active-bits", help="Active bits k per token (fixed for all D)."),
          out: Path = typer.Option(..., "--out", help="Sweep directory: d{D}/ run dirs, sweep.csv, sweep.png."),
          preset: Optional[str] = typer.Option(None, "--preset", help="Base configuration: demo | tiny (default demo)."),
          config: Optional[Path] = typer.Option(None, "--config", help="Base configuration file {\"model\", \"train\"}."),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the number of training epochs."),
          samples: Optional[int] = typer.Option(None, "--samples", help="Simulate the first N test digits (default all 360)."),
          threads: Optional[int] = typer.Option(None, "--threads", help="Override train.threads (torch threads)."),
          as_json: bool = JsonOpt) -> None:
    """Train, convert and simulate one model per width D at fixed k; write sweep.csv and sweep.png."""
    from spikeformer import presets
    from spikeformer.sweep import parse_dims, sweep as run_sweep, synops_ratio

    if config is not None and preset is not None:
        raise ValueError("give at most one of --config FILE or --preset NAME")
    dim_list = parse_dims(dims)
    for name, v in (("--epochs", epochs), ("--threads", threads)):
        if v is not None and v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    model_cfg, train_cfg = presets.from_file(config) if config else presets.preset(preset or "demo")
    if epochs is not None:
        train_cfg.epochs = epochs
    if threads is not None:
        train_cfg.threads = threads
    rows = run_sweep(dim_list, active_bits, out, model_cfg, train_cfg, samples, progress=not as_json)
    ratio = synops_ratio(rows)
    if as_json:
        print(json.dumps({"rows": rows, "synops_max_over_min": ratio,
                          "csv": str(out / "sweep.csv"), "png": str(out / "sweep.png")}))
        return
    table = Table(title=f"width sweep, k = {active_bits} active bits", show_edge=False,
                  caption=f"synops, spikes: per inference; acc: simulator, torch: model; agree: every spike equal. "
                          f"{out / 'sweep.csv'}, {out / 'sweep.png'}")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
