"""Dataset lookup: ``get(name)`` finds the plug-in registered as ``name``; loading and encoding through it.

Plug-ins are the modules of ``spikeformer.data.sets`` (found by name; each registers one
``Dataset`` with ``spikeformer.data.base.register``); a new dataset is one new module there.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import torch

from spikeformer.config.model import ModelConfig
from spikeformer.data import sets
from spikeformer.data.base import REGISTRY, Dataset, Split, fingerprint
from spikeformer.data.files import check_split


def load_dataset(model_cfg: ModelConfig) -> Split:
    """The train/test split of the model's dataset (``get(cfg.data.dataset).split``) under its split settings;
    ValueError naming the file when a side is empty or the training samples hold one class (``check_split``)."""
    split = get(model_cfg.data.dataset).split(model_cfg)
    check_split(model_cfg.data.data_path or f"dataset {model_cfg.data.dataset}", split.y_train, split.y_test)
    return split


def encode(model_cfg: ModelConfig, samples: np.ndarray) -> torch.Tensor:
    """The model's input spikes (n, T, tokens, features) bool from its dataset's encoder."""
    return torch.from_numpy(np.ascontiguousarray(get(model_cfg.data.dataset).encode(model_cfg, samples)))


def split_record(model_cfg: ModelConfig, data: Split) -> dict:
    """What split.json records of a run's data: its settings, sizes, the test set's fingerprint and the
    dataset's own record (``Split.record``: pycode's interpreter version and file digests)."""
    d = model_cfg.data
    return {"dataset": d.dataset, "data_path": d.data_path, "split_seed": d.split_seed,
            "test_fraction": d.test_fraction, "train": int(len(data.y_train)), "test": int(len(data.y_test)),
            "test_fingerprint": fingerprint(data), **data.record}


def _load_all() -> None:
    for info in pkgutil.iter_modules(sets.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{sets.__name__}.{info.name}")


def names() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def get(name: object) -> Dataset:
    """The dataset registered as ``name``; the error names config.dataset and the choices."""
    if name not in REGISTRY:
        _load_all()
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"config.dataset must be one of {names()}, got {name!r}")
    return REGISTRY[name]
