"""The steps the CLI runs on a run directory: convert, simulate, report, run in Lava.

Each returns the figures it prints (a dict), and writes them into the run directory
(``graph.aer.npz``, ``simulation.json``, ``report.json``, ``lava.json``: ``spikeformer.store.layout``).
Simulate, report and Lava read trained and imported runs alike, through ``spikeformer.runs.run``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from sim.engine.results import SimResult, load_result, save_result
from sim.errors import IRError
from sim.ir.graph import AerGraph
from sim.ir.io import save_graph
from spikeformer.lower.convert import to_graph
from spikeformer.runs.run import Inputs, Reference, TrainedRun, graph_inputs, model_spikes, open_run, predictions
from spikeformer.runs.rundir import load_model
from spikeformer.store.files import CheckpointError, write_json
from spikeformer.store.layout import GRAPH_FILE, LAVA_FILE, REPORT_FILE, RESULT_FILE, SIMULATION_FILE

RECORD_BYTES = 1 << 30       # recorded spikes (bool, samples × ticks × neurons) held per chunk


LAVA_SAMPLES = 20            # export lava's default sample count (at most; all when a run has fewer)
KEEP_RECORDED = 16           # samples whose spikes are saved for report, trace and notebooks


# the figures of ``simulate`` and ``export lava``, in the order printed (a run gives those of its reference)
SIMULATE_FIGURES = ("samples", "numerics", "accuracy", "model_accuracy", "bits_per_byte", "model_bits_per_byte",
                    "agreement_with_model", "mismatched_spikes",
                    "predictions_equal_model", "synaptic_ops_per_inference", "spikes_per_inference", "neurons",
                    "synapses", "ticks", "seconds", "output_population", "output_spike_jaccard", "output_rate_float",
                    "output_rate_loihi", "accuracy_float", "accuracy_loihi", "prediction_agreement",
                    "spike_jaccard_with_float", "agreement_with_float", "per_population", "trace", "trace_events")


LAVA_FIGURES = ("samples", "identical_to_simulator", "mismatched_spikes", "agreement_with_model", "accuracy",
                "lava_spikes", "seconds", "seconds_per_sample", "samples_side_by_side", "samples_in_sequence",
                "lava_workers", "peak_memory_gib", "output_population", "output_spike_jaccard", "output_rate_float",
                "output_rate_loihi", "accuracy_float", "accuracy_loihi", "prediction_agreement",
                "spike_jaccard_with_float", "agreement_with_float", "per_population")


def graph_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / GRAPH_FILE


def convert_run(run_dir: str | Path) -> dict:
    """Checkpoint → AER graph file; returns its size figures."""
    model = load_model(run_dir)
    graph = to_graph(model)
    path = save_graph(graph, graph_path(run_dir))
    return {"graph": str(path), "numerics": graph.numerics, "populations": len(graph.populations),
            "projections": len(graph.projections), "neurons": graph.n_neurons, "synapses": graph.n_synapses,
            "ticks": graph.ticks, "max_depth": graph.ticks - graph.timesteps}


def load_run_graph(run_dir: str | Path) -> AerGraph:
    """The run's AER graph (IRError naming the file, with the command that writes it, when absent)."""
    return open_run(run_dir).graph


def load_test_batch(run_dir: str | Path, samples: int | None):
    """(model, graph, encoded inputs (B, T, N, F), labels) for the first ``samples`` test samples
    of a trained run's own test set (``train.run_split``)."""
    run = TrainedRun(run_dir)
    graph = run.graph
    x, y = run.encoded(samples)
    return run.model, graph, x, y


def ordered(figures: dict, order: tuple[str, ...]) -> dict:
    """``figures`` with the keys of ``order`` first, in that order."""
    return {**{k: figures[k] for k in order if k in figures}, **figures}


def accuracy(preds: list, labels: np.ndarray | None) -> float | None:
    """Fraction of predictions equal to the labels; None without labels or readout."""
    if labels is None or not preds or preds[0] is None:
        return None
    return float((np.concatenate(preds) == labels).mean())


def chunk_size(graph: AerGraph) -> int:
    """Samples per chunk: their recorded spikes fit ``RECORD_BYTES`` (1 … 256)."""
    return int(max(1, min(256, RECORD_BYTES // (graph.ticks * graph.n_neurons))))


def _keep(kept: dict[str, np.ndarray], spikes: dict[str, np.ndarray], keep: int) -> None:
    """Append the spikes of samples to ``kept`` until it holds ``keep`` samples."""
    room = keep - (len(next(iter(kept.values()))) if kept else 0)
    if room > 0:
        for name, s in spikes.items():
            kept[name] = np.concatenate([kept[name], s[:room]]) if name in kept else s[:room]


def simulate_chunks(graph: AerGraph, x: Inputs, reference: Reference, progress: bool = False,
                    shards: int | None = None, scheduler: str | None = None) -> tuple[SimResult, list, float]:
    """Simulate ``x`` chunk by chunk (``chunk_size``), each compared with ``reference``, its spikes then dropped.

    Returns (SimResult: counts and synaptic ops of all samples, spikes of the first ``KEEP_RECORDED``
    (at most one chunk's worth), readout predictions per chunk, seconds simulating).
    With ``shards`` or ``scheduler``, each chunk runs sharded on a Dask cluster (``sim.engine.distributed``)."""
    from tqdm.auto import tqdm

    from sim.engine.flatgraph import flatten
    from sim.engine.simulate import simulate

    flat, chunk = flatten(graph), chunk_size(graph)
    keep = min(KEEP_RECORDED, chunk)                # kept spikes fit RECORD_BYTES too (large-kwta: 1 sample)
    n = len(next(iter(x.values())))
    preds, parts, kept, seconds = [], [], {}, 0.0
    for i in tqdm(range(0, n, chunk), desc="simulate", unit="chunk", disable=not (progress and sys.stderr.isatty())):
        xb = {k: v[i:i + chunk] for k, v in x.items()}
        t0 = time.perf_counter()
        if shards or scheduler:
            from sim.engine.distributed import simulate_sharded
            res = simulate_sharded(graph, xb, shards=shards or 2, scheduler=scheduler)
        else:
            res = simulate(graph, xb, flat=flat)
        seconds += time.perf_counter() - t0
        reference.add(i, res.spikes)
        preds.append(predictions(graph, res.spikes))
        parts.append(res)
        _keep(kept, res.spikes, keep)
        res.spikes = {}                             # counts stay; spikes go
    cat = lambda get: {k: np.concatenate([get(r)[k] for r in parts]) for k in get(parts[0])}
    res = SimResult(kept, cat(lambda r: r.spike_counts), cat(lambda r: r.synaptic_ops),
                    np.concatenate([r.neuron_updates for r in parts]), graph.ticks)
    return res, preds, seconds


def simulate_run(run_dir: str | Path, samples: int | None = None, progress: bool = False,
                 trace: str | Path | None = None, shards: int | None = None,
                 scheduler: str | None = None) -> dict:
    """Simulate a run's samples in the event-driven engine and compare with its reference.

    A trained run's reference is its torch model (spike for spike), an imported loihi run's its
    float graph (``spikeformer.runs.run``). ``simulate_chunks`` runs the samples; the figures go to
    simulation.json, the SimResult to simulation.npz (what ``report``, the trace and the notebooks read).
    With ``trace``, also write the kept spikes as an AER event trace (.h5 or Perfetto .json).
    With ``shards`` or ``scheduler``, each chunk runs sharded on a Dask cluster
    (``sim.engine.distributed``: a LocalCluster, or the scheduler at that address); spikes are identical.
    """
    from sim.engine.trace import check_writable, write_trace

    if trace is not None:
        check_writable(trace)                       # fail before any work
    run = open_run(run_dir)
    graph = run.graph
    x, labels = run.inputs(samples)
    reference = run.reference(samples)
    res, preds, seconds = simulate_chunks(graph, x, reference, progress, shards, scheduler)
    figures = {
        "samples": len(next(iter(x.values()))),
        "accuracy": accuracy(preds, labels),
        **reference.figures(),
        "synaptic_ops_per_inference": float(res.synaptic_ops_per_inference),
        "spikes_per_inference": float(res.spikes_per_inference),
        "neurons": graph.n_neurons, "synapses": graph.n_synapses, "ticks": graph.ticks,
        "seconds": seconds,
    }
    if trace is not None:
        path, events = write_trace(trace, graph, res.spikes)
        figures.update(trace=str(path), trace_events=events)
    figures = ordered(figures, SIMULATE_FIGURES)
    write_json(run.path / SIMULATION_FILE, figures)
    save_result(run.path / RESULT_FILE, graph, res)
    return figures


def report_run(run_dir: str | Path, chips: int | None = None,
               cores_per_chip: int = 128) -> tuple[dict, object, object, AerGraph]:
    """Map the graph onto Loihi 2 and cost the last simulation: (figures, Mapping, SimResult, graph).

    The mapper uses as many chips as the graph needs; ``chips`` caps that (MappingError above it).
    """
    from sim.cost.energy import cost_report
    from sim.cost.hardware import Loihi2, map_graph

    run = open_run(run_dir)
    graph = run.graph
    graph.check_has_neurons(str(run.path / GRAPH_FILE))        # nothing to map or cost: refused, no report.json
    path = run.path / RESULT_FILE
    if not path.exists():
        raise IRError(str(path), "file", f"does not exist; run `spikeformer simulate {run_dir}` first")
    result = load_result(path, graph)
    mapping = map_graph(graph, Loihi2(chips=chips, cores_per_chip=cores_per_chip))
    figures = cost_report(graph, mapping, result).to_dict()
    figures["samples"] = len(result.neuron_updates)
    write_json(run.path / REPORT_FILE, figures)
    return figures, mapping, result, graph


def compare_chunks(graph: AerGraph, x: Inputs, spikes: dict[str, np.ndarray], reference: Reference) -> int:
    """Spikes (of Lava) that differ from the engine's on ``x``, chunk by chunk (``chunk_size``); each chunk
    of ``spikes`` is also compared with ``reference``."""
    from sim.engine.flatgraph import flatten
    from sim.engine.simulate import simulate

    flat, chunk = flatten(graph), chunk_size(graph)
    mismatched = 0
    for i in range(0, len(next(iter(x.values()))), chunk):
        part = {k: v[i:i + chunk] for k, v in spikes.items()}
        sim_spikes = simulate(graph, {k: v[i:i + chunk] for k, v in x.items()}, flat=flat).spikes
        mismatched += sum(int((part[p.name] != sim_spikes[p.name]).sum()) for p in graph.populations)
        del sim_spikes
        reference.add(i, part)
    return mismatched


def lava_run(run_dir: str | Path, samples: int | None = None, timeout: float = 600.0) -> dict:
    """Run a run's first ``samples`` through Lava (Loihi2SimCfg fixed point); compare with the simulator and the
    reference. ``samples`` None: the first LAVA_SAMPLES, or all when the run has fewer (a default the user did
    not set is never refused as out of range).

    Large graphs run one sample at a time, in sequence in one Lava network (``run_lava``'s
    default layout); ``timeout`` is per Lava worker process. The simulator then runs in chunks
    (``compare_chunks``), each compared with Lava's spikes, as is the run's reference. The figures
    include the layout, the seconds per sample and the peak memory (PSS) of this process plus
    the Lava processes."""
    from loihi_export.run.runner import run_lava

    run = open_run(run_dir)
    graph = run.graph
    if not graph.arith.fixed_point:                 # before the samples range: the reason it cannot run at all
        raise CheckpointError(f"{run.path / GRAPH_FILE}: Lava export needs numerics='loihi', graph has "
                              f"'{graph.numerics}'{run.LAVA_HINT}")
    if samples is None:
        samples = min(LAVA_SAMPLES, run.available())
    x, labels = run.inputs(samples)
    reference = run.reference(samples)
    t0 = time.perf_counter()
    stats: dict = {}
    lava_spikes = run_lava(graph, x, timeout=timeout, stats=stats)
    seconds = time.perf_counter() - t0
    mismatched = compare_chunks(graph, x, lava_spikes, reference)
    n = len(next(iter(x.values())))
    figures = ordered({
        "samples": n,
        "identical_to_simulator": mismatched == 0,
        "mismatched_spikes": mismatched,
        "accuracy": accuracy([predictions(graph, lava_spikes)], labels),
        "lava_spikes": int(sum(int(s.sum()) for s in lava_spikes.values())),
        "seconds": seconds,
        "seconds_per_sample": seconds / n,
        "samples_side_by_side": stats["batch"], "samples_in_sequence": stats["sequence"],
        "lava_workers": stats["workers"],
        "peak_memory_gib": stats["peak_pss_bytes"] / 2**30,
        **reference.agreement(),
    }, LAVA_FIGURES)
    write_json(run.path / LAVA_FILE, figures)
    return figures


def notebook_run(run_dir: str | Path | None = None, samples: int = 16):
    """(run_dir, graph, recorded SimResult) for the notebooks.

    Uses ``run_dir`` (or $SPIKEFORMER_RUN); if neither is given, trains the
    ``tiny`` preset into a temporary directory. Simulates when no result exists.
    """
    import os
    import tempfile

    from spikeformer.configure import presets
    from spikeformer.train.trainer import train

    run_dir = run_dir or os.environ.get("SPIKEFORMER_RUN")
    if run_dir is None:
        run_dir = tempfile.mkdtemp(prefix="spikeformer-nb-")
        model_cfg, train_cfg = presets.preset("tiny")
        train(model_cfg, train_cfg, run_dir, progress=False)
    run_dir = Path(run_dir)
    if not graph_path(run_dir).exists():
        convert_run(run_dir)
    if not (run_dir / RESULT_FILE).exists():
        simulate_run(run_dir, samples)
    graph = load_run_graph(run_dir)
    return run_dir, graph, load_result(run_dir / RESULT_FILE, graph)


__all__ = ["RESULT_FILE", "convert_run", "graph_inputs", "graph_path", "lava_run", "load_run_graph",
           "load_test_batch", "model_spikes", "notebook_run", "report_run", "simulate_run"]
