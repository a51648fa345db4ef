"""Run directories of imported models (``spikeformer import <format> FILE --out DIR``).

Layout (``docs/import.md``)::

    DIR/import.json         {"format", "source", "numerics", "timesteps", "dt", "inputs": {...}}
    DIR/graph.aer.npz       the graph simulated (float, or loihi after quantisation)
    DIR/graph.float.aer.npz loihi only: the float graph it was quantised from (agreement)
    DIR/inputs.npz          the input spikes, one bool array (samples, T, *shape) per Input
                            population, optional int ``labels`` (samples,)

Inputs come from a file (``--inputs FILE.npz``: arrays named after the NIR Input nodes —
or ``spikes`` when there is one — and optional ``labels``) or from a dataset of the project
(``--dataset NAME``, a dataset of ``spikeformer.datasets`` that needs no file: its test split,
encoded as a model of default configuration would; the Input must have that many neurons). ``simulate``, ``export lava``, ``report``
and ``export nir`` then read the directory like a converted one.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sim.engine.results import save_result
from sim.ir.graph import AerGraph
from sim.ir.io import load_graph, save_graph
from sim.ir.quantize import agreement, quantize
from sim.system.files import atomic_write
from spikeformer.interchange.base import ImportError_
from spikeformer.interchange.formats import importer

IMPORT_FILE = "import.json"


FLOAT_GRAPH = "graph.float.aer.npz"


INPUTS_FILE = "inputs.npz"


def is_imported(run_dir: str | Path) -> bool:
    return (Path(run_dir) / IMPORT_FILE).is_file()


def _read_inputs(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    if not path.is_file():
        raise ImportError_(f"{path}: does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ImportError_(f"{path}: is not a readable .npz file of input spikes ({type(e).__name__}: {e})") from None
    labels = arrays.pop("labels", None)
    return arrays, labels


def _dataset_inputs(name: str, timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    from spikeformer.configure.validate import model_config
    from spikeformer.data import registry as datasets
    from spikeformer.data.registry import encode, load_dataset
    try:
        cfg = model_config(**datasets.get(name).defaults({"dataset": name, "timesteps": timesteps}))
    except ValueError as e:
        raise ImportError_(f"--dataset {name}: {e}") from None
    data = load_dataset(cfg)
    x = encode(cfg, data.x_test).numpy()
    return x.reshape(len(x), timesteps, -1).astype(bool), np.asarray(data.y_test)


def _match_inputs(graph: AerGraph, arrays: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    out = {}
    names = [p.name for p in graph.inputs]
    if len(names) == 1 and names[0] not in arrays and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    for p in graph.inputs:
        if p.name not in arrays:
            raise ImportError_(f"{where}: no array for Input '{p.name}' (has {sorted(arrays)})")
        x = np.asarray(arrays[p.name])
        if x.ndim < 2 or int(np.prod(x.shape[2:])) != p.size or x.shape[1] > graph.timesteps:
            raise ImportError_(f"{where}: array '{p.name}' has shape {x.shape}, expected (samples, ≤{graph.timesteps}, "
                               f"{' × '.join(map(str, p.shape))})")
        if not np.all((x == 0) | (x == 1)):
            raise ImportError_(f"{where}: array '{p.name}' holds values other than 0 and 1 (spikes)")
        out[p.name] = x.reshape(len(x), x.shape[1], p.size).astype(bool)
    return out


def import_run(fmt: str, source: str | Path, out: str | Path, *, numerics: str = "float",
               inputs: str | Path | None = None, dataset: str | None = None, timesteps: int | None = None,
               dt: float | None = None) -> dict:
    """Import ``source`` into run directory ``out``; returns the figures (with loihi: agreement with float)."""
    from sim.engine.simulate import simulate
    from sim.numerics import ARITHMETIC, NUMERICS

    if numerics not in NUMERICS:
        raise ValueError(f"--numerics must be one of {NUMERICS}, got {numerics!r}")
    if (inputs is None) == (dataset is None):
        raise ValueError("give exactly one of --inputs FILE.npz or --dataset NAME")
    arrays, labels = (_read_inputs(Path(inputs)) if inputs is not None else ({}, None))
    if timesteps is None:
        timesteps = max((int(np.asarray(a).shape[1]) for a in arrays.values() if np.ndim(a) >= 2), default=8)
    if timesteps < 1:
        raise ValueError(f"--timesteps must be ≥ 1, got {timesteps}")
    graph = importer(fmt)(Path(source), int(timesteps), dt)
    if dataset is not None:
        x, labels = _dataset_inputs(dataset, int(timesteps))
        if len(graph.inputs) != 1:
            raise ImportError_(f"--dataset feeds one Input; {source} has {len(graph.inputs)}")
        arrays = {graph.inputs[0].name: x}
    x = _match_inputs(graph, arrays, str(inputs or f"dataset {dataset}"))
    n = len(next(iter(x.values())))
    if labels is not None and len(labels) != n:
        raise ImportError_(f"{inputs}: 'labels' has {len(labels)} entries for {n} samples")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"format": fmt, "source": str(source), "numerics": numerics, "samples": n,
               "timesteps": graph.timesteps, "populations": len(graph.populations),
               "projections": len(graph.projections), "neurons": graph.n_neurons, "synapses": graph.n_synapses}
    run_graph = graph
    if ARITHMETIC[numerics].fixed_point:
        run_graph, scales = quantize(graph)
        save_graph(graph, out / FLOAT_GRAPH)
        a = simulate(graph, x).spikes
        b = simulate(run_graph, x).spikes
        agree = agreement(a, b, graph)
        figures.update(agreement_with_float=agree["entries"], spike_jaccard_with_float=agree["spikes"])
    save_graph(run_graph, out / "graph.aer.npz")
    arrays = dict(x)
    if labels is not None:
        arrays["labels"] = np.asarray(labels, np.int64)
    def write(path: Path) -> None:
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
    atomic_write(out / INPUTS_FILE, write)
    meta = {"format": fmt, "source": str(Path(source).resolve()), "numerics": numerics,
            "timesteps": graph.timesteps, "dt": graph.metadata.get("imported", {}).get("dt"),
            "inputs": {"file": INPUTS_FILE, "from": str(inputs) if inputs is not None else f"dataset:{dataset}"}}
    (out / IMPORT_FILE).write_text(json.dumps(meta, indent=2))
    figures["out"] = str(out)
    return figures


def load_imported(run_dir: str | Path, samples: int | None = None
                  ) -> tuple[AerGraph, AerGraph | None, dict[str, np.ndarray], np.ndarray | None]:
    """(graph, float graph or None, inputs of the first ``samples``, labels or None)."""
    run_dir = Path(run_dir)
    graph = load_graph(run_dir / "graph.aer.npz")
    flt = load_graph(run_dir / FLOAT_GRAPH) if (run_dir / FLOAT_GRAPH).is_file() else None
    arrays, labels = _read_inputs(run_dir / INPUTS_FILE)
    x = _match_inputs(graph, arrays, str(run_dir / INPUTS_FILE))
    n_all = len(next(iter(x.values())))
    n = n_all if samples is None else samples
    if not 1 <= n <= n_all:
        raise ValueError(f"--samples must be in [1, {n_all}], got {n}")
    return graph, flt, {k: v[:n] for k, v in x.items()}, (None if labels is None else labels[:n])


def _accuracy(graph: AerGraph, spikes: dict, labels) -> float | None:
    if labels is None or graph.readout is None:
        return None
    return float((graph.readout.logits(spikes[graph.readout.pre]).argmax(axis=1) == labels).mean())


def simulate_imported(run_dir: str | Path, samples: int | None = None) -> dict:
    """Simulate an imported run's inputs in the engine; loihi runs are compared with their float graph."""
    from sim.engine.simulate import simulate
    from spikeformer.store.files import write_json
    graph, flt, x, labels = load_imported(run_dir, samples)
    t0 = time.perf_counter()
    res = simulate(graph, x)
    seconds = time.perf_counter() - t0
    figures = {"samples": int(len(next(iter(x.values())))), "numerics": graph.numerics,
               "accuracy": _accuracy(graph, res.spikes, labels),
               "synaptic_ops_per_inference": float(res.synaptic_ops_per_inference),
               "spikes_per_inference": float(res.spikes_per_inference),
               "neurons": graph.n_neurons, "synapses": graph.n_synapses, "ticks": graph.ticks, "seconds": seconds}
    if flt is not None:
        agree = agreement(simulate(flt, x).spikes, res.spikes, graph)
        figures.update(agreement_with_float=agree["entries"], spike_jaccard_with_float=agree["spikes"])
    write_json(Path(run_dir) / "simulation.json", figures)
    save_result(Path(run_dir) / "simulation.npz", graph, res)
    return figures


def lava_imported(run_dir: str | Path, samples: int | None = 20, timeout: float = 600.0) -> dict:
    """Run an imported loihi run's inputs in Lava; compare with the engine (and the float graph)."""
    from loihi_export.run.runner import run_lava
    from sim.engine.simulate import simulate
    from spikeformer.store.files import CheckpointError, write_json
    graph, flt, x, labels = load_imported(run_dir, samples)
    if not graph.arith.fixed_point:
        raise CheckpointError(f"{Path(run_dir) / 'graph.aer.npz'}: Lava export needs numerics='loihi', graph has "
                              f"'{graph.numerics}' — import with --numerics loihi")
    t0 = time.perf_counter()
    stats: dict = {}
    lava = run_lava(graph, x, timeout=timeout, stats=stats)
    seconds = time.perf_counter() - t0
    sim = simulate(graph, x).spikes
    mismatched = sum(int((lava[p.name] != sim[p.name]).sum()) for p in graph.populations)
    figures = {"samples": int(len(next(iter(x.values())))), "identical_to_simulator": mismatched == 0,
               "mismatched_spikes": mismatched, "accuracy": _accuracy(graph, lava, labels),
               "lava_spikes": int(sum(int(s.sum()) for s in lava.values())), "seconds": seconds}
    if flt is not None:
        agree = agreement(simulate(flt, x).spikes, lava, graph)
        figures.update(agreement_with_float=agree["entries"], spike_jaccard_with_float=agree["spikes"])
    write_json(Path(run_dir) / "lava.json", figures)
    return figures


__all__ = ["import_run", "is_imported", "lava_imported", "load_imported", "simulate_imported"]
