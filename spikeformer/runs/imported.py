"""Run directories of imported models (``spikeformer import <format> FILE --out DIR``).

Layout (``docs/import.md``)::

    DIR/import.json         {"format", "source", "numerics", "timesteps", "dt", "inputs": {...}}
    DIR/graph.aer.npz       the graph simulated (float, or loihi after quantisation)
    DIR/graph.float.aer.npz loihi only: the float graph it was quantised from (agreement)
    DIR/inputs.npz          the input spikes, one bool array (samples, T, *shape) per Input
                            population, optional int ``labels`` (samples,)

Inputs come from a file (``--inputs FILE.npz``: arrays named after the NIR Input nodes —
or ``spikes`` when there is one — and optional ``labels``) or from a dataset of the project
(``--dataset NAME``, a dataset of ``spikeformer.data`` that needs no file: its test split,
encoded as a model of default configuration would; the Input must have that many neurons). ``simulate``, ``export lava``, ``report``
and ``export nir`` then read the directory like a converted one (``spikeformer.runs.run.ImportedRun``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sim.ir.graph import AerGraph
from sim.ir.io import save_graph
from sim.ir.quantize import agreement, quantize
from sim.system.files import atomic_write
from spikeformer.interchange.base import ImportError_
from spikeformer.interchange.formats import importer
from spikeformer.store.layout import FLOAT_GRAPH_FILE, GRAPH_FILE, IMPORT_FILE, INPUTS_FILE


def read_inputs(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(arrays of the .npz at ``path`` but ``labels``, ``labels`` or None)."""
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


def match_inputs(graph: AerGraph, arrays: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """One bool array (samples, ticks ≤ T, size) per Input population of ``graph``, checked; ``where`` names
    the source in errors. A single array feeds a single Input whatever its name."""
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
    arrays, labels = (read_inputs(Path(inputs)) if inputs is not None else ({}, None))
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
    x = match_inputs(graph, arrays, str(inputs or f"dataset {dataset}"))
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
        run_graph, _ = quantize(graph)
        save_graph(graph, out / FLOAT_GRAPH_FILE)
        a = simulate(graph, x).spikes
        b = simulate(run_graph, x).spikes
        agree = agreement(a, b, graph)
        figures.update(agreement_with_float=agree["entries"], spike_jaccard_with_float=agree["spikes"])
    save_graph(run_graph, out / GRAPH_FILE)
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


__all__ = ["import_run", "match_inputs", "read_inputs"]
