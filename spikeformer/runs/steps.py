"""The steps the CLI runs on a run directory: convert, simulate, run in Lava.

Each returns the figures it prints (a dict), and writes them next to the
checkpoint (``graph.aer.npz``, ``simulation.json``, ``lava.json``).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from sim.engine.results import load_result, save_result
from sim.errors import IRError
from sim.ir.graph import AerGraph
from sim.ir.io import load_graph, save_graph
from spikeformer.data.registry import encode
from spikeformer.lower.convert import compare_to_model, to_graph
from spikeformer.runs.rundir import load_model, run_split
from spikeformer.store.files import CheckpointError, write_json

GRAPH_FILE = "graph.aer.npz"


RESULT_FILE = "simulation.npz"


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
    path = graph_path(run_dir)
    if not path.exists():
        raise IRError(str(path), "file", f"does not exist; run `spikeformer convert {run_dir}` first")
    return load_graph(path)


def load_test_batch(run_dir: str | Path, samples: int | None):
    """(model, graph, encoded inputs (B, T, N, F), labels) for the first ``samples`` test samples
    of the run's own test set (``train.run_split``)."""
    graph = load_run_graph(run_dir)
    model = load_model(run_dir)
    data = run_split(run_dir, model.cfg)
    n = len(data.y_test) if samples is None else samples
    if not 1 <= n <= len(data.y_test):
        raise ValueError(f"--samples must be in [1, {len(data.y_test)}], got {n}")
    return model, graph, encode(model.cfg, data.x_test[:n]), data.y_test[:n]


@torch.no_grad()
def model_spikes(model, x: torch.Tensor, batch_size: int = 128) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Torch model logits and recorded spikes for a batch, chunked."""
    logits, rec = [], {}
    for i in range(0, len(x), batch_size):
        lg, r = model(x[i:i + batch_size], record=True)
        logits.append(lg.numpy())
        for k, v in r.items():
            rec.setdefault(k, []).append(v.numpy())
    return np.concatenate(logits), {k: np.concatenate(v) for k, v in rec.items()}


def graph_inputs(graph: AerGraph, x: torch.Tensor) -> dict[str, np.ndarray]:
    return {"input": x.numpy().reshape(len(x), graph.timesteps, -1)}


RECORD_BYTES = 1 << 30       # recorded spikes (bool, samples × ticks × neurons) held per chunk


KEEP_RECORDED = 16           # samples whose spikes are saved for report, trace and notebooks


def simulate_run(run_dir: str | Path, samples: int | None = None, progress: bool = False,
                 trace: str | Path | None = None, shards: int | None = None,
                 scheduler: str | None = None) -> dict:
    """Simulate test samples in the event-driven engine and compare with the torch model.

    Samples run in chunks whose recorded spikes fit ``RECORD_BYTES``; every chunk is
    compared with the model spike for spike, counts and synaptic ops are kept for all
    samples, recorded spikes for the first ``KEEP_RECORDED`` (at most one chunk's worth: what ``report``, the
    trace and the notebooks read).
    With ``trace``, also write those spikes as an AER event trace (.h5 or Perfetto .json).
    With ``shards`` or ``scheduler``, each chunk runs sharded on a Dask cluster
    (``sim.distributed``: a LocalCluster, or the scheduler at that address); spikes are identical.
    """
    from tqdm.auto import tqdm

    from sim.engine.flatgraph import flatten
    from sim.engine.results import SimResult
    from sim.engine.simulate import simulate
    from sim.engine.trace import check_writable, write_trace
    from spikeformer.runs.imported import is_imported, simulate_imported

    if is_imported(run_dir):                        # no torch model: inputs and float reference of the import
        if trace is not None or shards or scheduler:
            raise ValueError("--trace, --shards and --scheduler are not supported on imported runs")
        return simulate_imported(run_dir, samples)

    if trace is not None:
        check_writable(trace)                       # fail before any work
    model, graph, x, y = load_test_batch(run_dir, samples)
    flat = flatten(graph)
    chunk = int(max(1, min(256, RECORD_BYTES // (graph.ticks * graph.n_neurons))))
    keep = min(KEEP_RECORDED, chunk)                # kept spikes fit RECORD_BYTES too (large-kwta: 1 sample)
    equal, preds, model_preds, parts = [], [], [], []
    mismatched, seconds, kept = 0, 0.0, {}
    for i in tqdm(range(0, len(x), chunk), desc="simulate", unit="chunk", disable=not progress):
        xb = x[i:i + chunk]
        logits, rec = model_spikes(model, xb)
        t0 = time.perf_counter()
        if shards or scheduler:
            from sim.engine.distributed import simulate_sharded
            res = simulate_sharded(graph, graph_inputs(graph, xb), shards=shards or 2, scheduler=scheduler)
        else:
            res = simulate(graph, graph_inputs(graph, xb), flat=flat)
        seconds += time.perf_counter() - t0
        eq, mism = compare_to_model(graph, rec, res.spikes)
        equal.append(eq)
        mismatched += mism
        preds.append(graph.readout.logits(res.spikes[graph.readout.pre]).argmax(axis=1))
        model_preds.append(logits.argmax(axis=1))
        parts.append(res)
        room = keep - (len(next(iter(kept.values()))) if kept else 0)
        if room > 0:
            for name, s in res.spikes.items():
                kept[name] = np.concatenate([kept[name], s[:room]]) if name in kept else s[:room]
        res.spikes = {}                             # counts stay; spikes go
    cat = lambda get: {k: np.concatenate([get(r)[k] for r in parts]) for k in get(parts[0])}  # noqa: E731
    res = SimResult(kept, cat(lambda r: r.spike_counts), cat(lambda r: r.synaptic_ops),
                    np.concatenate([r.neuron_updates for r in parts]), graph.ticks)
    equal, pred, model_pred = np.concatenate(equal), np.concatenate(preds), np.concatenate(model_preds)
    figures = {
        "samples": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "model_accuracy": float((model_pred == y).mean()),
        "agreement_with_model": float(equal.mean()),
        "mismatched_spikes": mismatched,
        "predictions_equal_model": bool((pred == model_pred).all()),
        "synaptic_ops_per_inference": float(res.synaptic_ops_per_inference),
        "spikes_per_inference": float(res.spikes_per_inference),
        "neurons": graph.n_neurons, "synapses": graph.n_synapses, "ticks": graph.ticks,
        "seconds": seconds,
    }
    if trace is not None:
        figures["trace"], figures["trace_events"] = (str(x) if i == 0 else x for i, x in
                                                     enumerate(write_trace(trace, graph, res.spikes)))
    write_json(Path(run_dir) / "simulation.json", figures)
    save_result(Path(run_dir) / RESULT_FILE, graph, res)
    return figures


def report_run(run_dir: str | Path, chips: int | None = None,
               cores_per_chip: int = 128) -> tuple[dict, object, object, AerGraph]:
    """Map the graph onto Loihi 2 and cost the last simulation: (figures, Mapping, SimResult, graph).

    The mapper uses as many chips as the graph needs; ``chips`` caps that (MappingError above it).
    """
    from sim.cost.energy import cost_report
    from sim.cost.hardware import Loihi2, map_graph

    graph = load_run_graph(run_dir)
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        raise IRError(str(path), "file", f"does not exist; run `spikeformer simulate {run_dir}` first")
    result = load_result(path, graph)
    mapping = map_graph(graph, Loihi2(chips=chips, cores_per_chip=cores_per_chip))
    figures = cost_report(graph, mapping, result).to_dict()
    figures["samples"] = int(len(result.neuron_updates))
    write_json(Path(run_dir) / "report.json", figures)
    return figures, mapping, result, graph


def lava_run(run_dir: str | Path, samples: int | None = 20, timeout: float = 600.0) -> dict:
    """Run test samples through Lava (Loihi2SimCfg fixed point); compare with the simulator and the model.

    Large graphs run one sample at a time, in sequence in one Lava network (``run_lava``'s
    default layout); ``timeout`` is per Lava worker process. The simulator and the model then
    run in chunks whose recorded spikes fit ``RECORD_BYTES`` (as in ``simulate_run``), each
    compared with Lava's spikes and dropped. The figures include the layout, the seconds per
    sample and the peak memory (PSS) of this process plus the Lava processes."""
    from loihi_export.run.runner import run_lava
    from sim.engine.flatgraph import flatten
    from sim.engine.simulate import simulate
    from spikeformer.runs.imported import is_imported, lava_imported

    if is_imported(run_dir):
        return lava_imported(run_dir, samples, timeout)
    model, graph, x, y = load_test_batch(run_dir, samples)
    if not graph.arith.fixed_point:
        raise CheckpointError(f"{graph_path(run_dir)}: Lava export needs numerics='loihi', graph has '{graph.numerics}'")
    t0 = time.perf_counter()
    stats: dict = {}
    lava_spikes = run_lava(graph, graph_inputs(graph, x), timeout=timeout, stats=stats)
    seconds = time.perf_counter() - t0
    flat = flatten(graph)
    chunk = int(max(1, min(256, RECORD_BYTES // (graph.ticks * graph.n_neurons))))
    keep = min(KEEP_RECORDED, chunk)                # kept spikes fit RECORD_BYTES too (large-kwta: 1 sample)
    mismatched, equal_model = 0, []
    for i in range(0, len(x), chunk):
        lava_part = {k: v[i:i + chunk] for k, v in lava_spikes.items()}
        sim_spikes = simulate(graph, graph_inputs(graph, x[i:i + chunk]), flat=flat).spikes
        mismatched += sum(int((lava_part[p.name] != sim_spikes[p.name]).sum()) for p in graph.populations)
        del sim_spikes
        _, rec = model_spikes(model, x[i:i + chunk])
        equal_model.append(compare_to_model(graph, rec, lava_part)[0])
    pred = graph.readout.logits(lava_spikes[graph.readout.pre]).argmax(axis=1)
    figures = {
        "samples": int(len(y)),
        "identical_to_simulator": mismatched == 0,
        "mismatched_spikes": mismatched,
        "agreement_with_model": float(np.concatenate(equal_model).mean()),
        "accuracy": float((pred == y).mean()),
        "lava_spikes": int(sum(int(s.sum()) for s in lava_spikes.values())),
        "seconds": seconds,
        "seconds_per_sample": seconds / len(y),
        "samples_side_by_side": stats["batch"], "samples_in_sequence": stats["sequence"],
        "lava_workers": stats["workers"],
        "peak_memory_gib": stats["peak_pss_bytes"] / 2**30,
    }
    write_json(Path(run_dir) / "lava.json", figures)
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
