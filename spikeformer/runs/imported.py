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
from sim.ir.quantize import quantize
from sim.system.files import atomic_write
from spikeformer.interchange.base import ImportError_
from spikeformer.interchange.formats import importer
from spikeformer.runs.bounds import check_import_bounds
from spikeformer.store.guard import check_empty_out_dir, fresh_out_dir
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


def _dataset_inputs(name: str, timesteps: int, graph: AerGraph, fixed_point: bool) -> tuple[np.ndarray, np.ndarray]:
    from spikeformer.configure.validate import model_config
    from spikeformer.data import registry as datasets
    from spikeformer.data.registry import encode, load_dataset
    try:
        cfg = model_config(**datasets.get(name).defaults({"dataset": name, "timesteps": timesteps}))
    except ValueError as e:
        raise ImportError_(f"--dataset {name}: {e}") from None
    data = load_dataset(cfg)
    check_import_bounds(graph, len(data.y_test), fixed_point, f"dataset {name}", encoded_bytes=4)
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
        if x.ndim >= 1 and len(x) == 0:
            raise ImportError_(f"{where}: array '{p.name}' has no samples (shape {x.shape})")
        if x.ndim < 2 or int(np.prod(x.shape[2:])) != p.size or x.shape[1] > graph.timesteps:
            raise ImportError_(f"{where}: array '{p.name}' has shape {x.shape}, expected (samples, ≤{graph.timesteps}, "
                               f"{' × '.join(map(str, p.shape))})")
        if not np.all((x == 0) | (x == 1)):
            raise ImportError_(f"{where}: array '{p.name}' holds values other than 0 and 1 (spikes)")
        out[p.name] = x.reshape(len(x), x.shape[1], p.size).astype(bool)
    return out


def check_labels(labels: np.ndarray | None, n: int, graph: AerGraph, where: str) -> np.ndarray | None:
    """``labels`` as int64 (n,), each a class of the graph's readout (in [0, classes)), else ImportError_."""
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise ImportError_(f"{where}: 'labels' must be 1-d integers, got dtype {y.dtype} with shape {y.shape}")
    if len(y) != n:
        raise ImportError_(f"{where}: 'labels' has {len(y)} entries for {n} samples")
    classes = None if graph.readout is None else len(graph.readout.weights)
    bad = np.flatnonzero((y < 0) | (y >= (classes if classes is not None else np.iinfo(np.int64).max)))
    if len(bad):
        raise ImportError_(f"{where}: 'labels' entry {bad[0]} is {y[bad[0]]}; labels are classes in "
                           f"[0, {classes if classes is not None else '∞'})")
    return y.astype(np.int64)


def _quantise(graph: AerGraph, x: dict[str, np.ndarray], labels: np.ndarray | None, calibrate: str | Path | None,
              words: int, signs: str = "split") -> tuple[AerGraph, dict]:
    """(the loihi graph of float ``graph``, figures: float vs loihi on ``x`` and, with ``calibrate``, what
    calibration chose)."""
    from sim.engine.simulate import simulate
    from spikeformer.runs.calibrate import calibrate as tune
    from spikeformer.runs.fidelity import FloatComparison

    figures: dict = {"synapse_words": words, "signs": signs}
    units = None
    if calibrate is not None:
        arrays, _ = read_inputs(Path(calibrate))
        tuned = tune(graph, match_inputs(graph, arrays, str(calibrate)), words, signs)
        units = tuned["threshold_units"]
        figures.update(calibrated_on=str(calibrate), threshold_units=units)
    run_graph, scales = quantize(graph, words, None, units, signs)
    comparison = FloatComparison(graph, run_graph)
    comparison.add(simulate(graph, x).spikes, simulate(run_graph, x).spikes)
    figures.update(scales=scales, loihi_projections=len(run_graph.projections), loihi_synapses=run_graph.n_synapses,
                   **comparison.figures(labels))
    return run_graph, figures


def import_run(fmt: str, source: str | Path, out: str | Path, **options) -> dict:
    """Import ``source`` into run directory ``out`` (``_import_into``'s options) under the output-directory rule
    (``spikeformer.store.guard``): ``out`` new or empty, else refused before any work; a failure
    removes what was written."""
    check_empty_out_dir(Path(out))
    with fresh_out_dir(Path(out)):
        return _import_into(fmt, source, out, **options)


def _import_into(fmt: str, source: str | Path, out: str | Path, *, numerics: str = "float",
               inputs: str | Path | None = None, dataset: str | None = None, timesteps: int | None = None,
               dt: float | None = None, calibrate: str | Path | None = None, synapse_words: int = 2,
               signs: str = "split") -> dict:
    """Import ``source`` into run directory ``out``; returns the figures (with loihi: how it keeps the float
    graph's spikes, ``spikeformer.runs.fidelity``). ``calibrate``: a .npz of inputs like ``inputs`` that the
    quantisation is tuned on (``spikeformer.runs.calibrate``); ``synapse_words``: 1 or 2 per weight;
    ``signs``: "split" (a projection per sign) or "mixed" (one 8-bit projection per layer, as netx needs)."""
    from sim.numerics import ARITHMETIC, NUMERICS

    if numerics not in NUMERICS:
        raise ValueError(f"--numerics must be one of {NUMERICS}, got {numerics!r}")
    if calibrate is not None and not ARITHMETIC[numerics].fixed_point:
        raise ValueError("--calibrate tunes the loihi quantisation; give it with --numerics loihi")
    if (inputs is None) == (dataset is None):
        raise ValueError("give exactly one of --inputs FILE.npz or --dataset NAME")
    arrays, labels = (read_inputs(Path(inputs)) if inputs is not None else ({}, None))
    if timesteps is None:
        timesteps = max((int(np.asarray(a).shape[1]) for a in arrays.values() if np.ndim(a) >= 2), default=8)
    if timesteps < 1:
        raise ValueError(f"--timesteps must be ≥ 1, got {timesteps}")
    graph = importer(fmt)(Path(source), int(timesteps), dt)
    if dataset is None:
        check_import_bounds(graph, max((len(a) for a in arrays.values() if np.ndim(a) >= 1), default=0),
                            ARITHMETIC[numerics].fixed_point, str(source))
    if dataset is not None:
        x, labels = _dataset_inputs(dataset, int(timesteps), graph, ARITHMETIC[numerics].fixed_point)
        if len(graph.inputs) != 1:
            raise ImportError_(f"--dataset feeds one Input; {source} has {len(graph.inputs)}")
        arrays = {graph.inputs[0].name: x}
    x = match_inputs(graph, arrays, str(inputs or f"dataset {dataset}"))
    n = len(next(iter(x.values())))
    labels = check_labels(labels, n, graph, str(inputs or f"dataset {dataset}"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"format": fmt, "source": str(source), "numerics": numerics, "samples": n,
               "timesteps": graph.timesteps, "populations": len(graph.populations),
               "projections": len(graph.projections), "neurons": graph.n_neurons, "synapses": graph.n_synapses}
    run_graph = graph
    if ARITHMETIC[numerics].fixed_point:
        run_graph, quantised = _quantise(graph, x, labels, calibrate, synapse_words, signs)
        save_graph(graph, out / FLOAT_GRAPH_FILE)
        figures.update(quantised)
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


__all__ = ["check_labels", "import_run", "match_inputs", "read_inputs"]
