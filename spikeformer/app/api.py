"""Python API for notebooks: train, convert, simulate and run in Lava — on arrays, a torch Dataset or a named dataset.

    from spikeformer import api
    run = api.train(x, y, out="runs/nb", model={"dim": 32}, train={"epochs": 3})   # x: (n, T, tokens, features) spikes
    api.convert(run); api.simulate(run); api.run_lava(run, samples=8)

Arrays and torch Datasets (items ``(spikes (T, tokens, features), label)``) are written to
``out/data.npz`` in the ``spikes`` dataset format (``spikeformer.data.sets.spikes``) with their
split (``test``/``test_labels`` given: is_test; else config.test_fraction / split_seed), so the
run directory holds its own data and every later command — here or on the command line —
evaluates on the run's own test set. A string names a registered dataset (``"mnist1d"``, …).
Each step returns the figures the CLI prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.system.files import atomic_write
from spikeformer.config.model import ArchConfig
from spikeformer.configure import presets
from spikeformer.data.files import check_class_memory
from spikeformer.store.files import CheckpointError
from spikeformer.store.guard import check_out_dir
from spikeformer.store.layout import DATA_FILE

SHAPE_KEYS = ("dataset", "data_path", "tokens", "features", "classes", "timesteps", "levels", "encoder")


@dataclass(frozen=True)
class Run:
    """A trained run directory and its training figures."""

    path: Path
    test_accuracy: float
    train_accuracy: float
    seconds: float

    def __fspath__(self) -> str:
        return str(self.path)


def _arrays(data: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(spikes (n, T, N, F) bool, labels (n,) int64) from arrays/tensors or a torch Dataset of (spikes, label)."""
    if labels is None:
        if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
            raise ValueError(f"{name}: give arrays with labels, a torch Dataset of (spikes, label), or a dataset name")
        items = [data[i] for i in range(len(data))]
        data, labels = [np.asarray(x) for x, _ in items], [int(np.asarray(y)) for _, y in items]
    x = np.asarray(data.numpy() if hasattr(data, "numpy") else np.stack(data) if isinstance(data, list) else data)
    y = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{name}: expected spikes (n, T, tokens, features) and n labels, got {x.shape} and "
                         f"{y.shape}")
    if x.dtype != bool:
        if not np.isin(x, (0, 1)).all():
            raise ValueError(f"{name}: spikes must be 0 or 1")
        x = x.astype(bool)
    if y.dtype.kind not in "iu" or y.ndim != 1 or y.min() < 0:
        raise ValueError(f"{name}: labels must be class indices, integers ≥ 0, one per sample; "
                         f"got dtype {y.dtype}" + (f", {y.min()} … {y.max()}" if y.dtype.kind in "iu" else ""))
    return x, y.astype(np.int64)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:             # closed (flushed) before atomic_write renames it
        np.savez_compressed(f, **arrays)


def train(data: Any, labels: Any = None, *, out: str | os.PathLike, test: Any = None, test_labels: Any = None,
          preset: str = "tiny", model: dict | None = None, train: dict | None = None, progress: bool = False,
          device: str = "auto") -> Run:
    """Train into ``out`` on ``data`` (see module docstring); ``model`` / ``train`` override the preset's config."""
    from spikeformer.train.trainer import train as run_train

    out = Path(out)
    if preset not in presets.PRESETS:
        raise CheckpointError(f"preset: unknown preset {preset!r}; choose from {sorted(presets.PRESETS)}")
    base = presets.PRESETS[preset]
    m = {k: v for k, v in base.get("model", {}).items() if k not in SHAPE_KEYS}
    if isinstance(data, str):
        m["dataset"] = data
    else:
        x, y = _arrays(data, labels, "data")
        is_test = None
        if test is not None:
            xt, yt = _arrays(test, test_labels, "test")
            if xt.shape[1:] != x.shape[1:]:
                raise ValueError(f"test: spikes of shape {xt.shape[1:]} per sample, data has {x.shape[1:]}")
            x, y, is_test = np.concatenate([x, xt]), np.concatenate([y, yt]), np.arange(len(x) + len(xt)) >= len(x)
        dim = int({**m, **(model or {})}.get("dim", ArchConfig.dim))
        check_class_memory("data", y, int((model or {}).get("classes", y.max() + 1)), dim)     # before any write
        extra = {} if is_test is None else {"is_test": is_test}
        path = out / DATA_FILE
        if not path.exists():               # the output-directory rule before any byte is written: only a new
            check_out_dir(out, {"model": {}, "train": {}})      # or empty directory can take a first data.npz
        out.mkdir(parents=True, exist_ok=True)
        if path.exists():                   # resuming this run is fine; another run's data is never overwritten
            with np.load(path, allow_pickle=False) as old:
                mine = {"spikes": x, "labels": y, **extra}
                if set(old.files) != set(mine) or any(not np.array_equal(old[k], v) for k, v in mine.items()):
                    raise ValueError(f"{path}: holds other data than this run's; give a new or empty directory")
        else:
            atomic_write(path, lambda tmp: _save_npz(tmp, spikes=x, labels=y, **extra))
        m.update(dataset="spikes", data_path=str(path.resolve()))
    m.update(model or {})
    model_cfg, train_cfg = presets.configs_from_dict({"model": m, "train": {**base.get("train", {}), **(train or {})}},
                                                     "api.train")
    res = run_train(model_cfg, train_cfg, out, progress=progress, device=device)
    return Run(out, res.test_accuracy, res.train_accuracy, res.seconds)


def convert(run: Run | str | os.PathLike) -> dict:
    """Lower the trained model to its AER graph (``spikeformer convert``)."""
    from spikeformer.runs.steps import convert_run
    return convert_run(Path(run))


def simulate(run: Run | str | os.PathLike, samples: int | None = None) -> dict:
    """The run's samples (first ``samples``; None: all) in the event-driven simulator, compared with its reference
    (a trained run's torch model, an imported run's float graph: ``spikeformer.runs.run``)."""
    from spikeformer.runs.steps import simulate_run
    return simulate_run(Path(run), samples)


def run_lava(run: Run | str | os.PathLike, samples: int | None = None, timeout: float = 600.0) -> dict:
    """The run's first ``samples`` samples (None: 20, or all when fewer) in Lava (Loihi2SimCfg fixed point),
    compared with the simulator."""
    from spikeformer.runs.steps import lava_run
    return lava_run(Path(run), samples, timeout)
