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

import sys
from pathlib import Path
from typing import Optional

import typer

from sim.system.signals import interrupts_as_exceptions
from spikeformer.app import experiment_commands
from spikeformer.app.options import check_count, check_seconds
from spikeformer.app.terminal import JsonOpt, emit, err, friendly

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train sparse spiking transformers, simulate them event by event, run them in Lava.")


export_app = typer.Typer(no_args_is_help=True, help="Export a converted model to another runtime.")


app.add_typer(export_app, name="export")


import_app = typer.Typer(no_args_is_help=True, help="Import a model from another framework into a run directory.")


app.add_typer(import_app, name="import")


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


experiment_commands.register(app)


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
