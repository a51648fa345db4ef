"""Datasets as plug-ins: each module of this package registers one ``Dataset`` under its name.

``ModelConfig.data.dataset`` names one; code looks it up with ``get(name)``, never by comparing names.
A dataset gives

* ``defaults(model)``: the token shape (tokens, features, classes, …) a config dict leaves out;
* ``check(cfg)``: its config checks (ValueError naming the ``config.`` field);
* ``split(cfg)``: its train/test ``Split`` — the dataset's own split when ``config.split_seed`` and
  ``config.test_fraction`` are null, else the pooled samples re-split (``stratified``);
* ``encode(cfg, x)``: input spikes (n, T, N, F) bool;
* ``augment(cfg, x, shift, rng)``: the ``train.shift`` augmentation (an error where it has none).

A new dataset is one new module here (modules are found by name; names starting with ``_`` are
helpers): subclass ``Dataset`` and call ``register(YourDataset())``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Samples (digit images, signals, event streams as an object array, …) and labels (n,) int64
    ((n, N) for a language model's windows: the next byte at each position)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    record: dict = field(default_factory=dict)      # what else split.json records (pycode: its files' digests)


class Dataset:
    """One dataset (see the module docstring); subclasses override what differs."""

    name: str = ""
    needs_path: bool = False          # config.data_path names the user's file or directory
    encode_per_batch: bool = False    # training encodes each batch (samples too many to hold encoded)

    def defaults(self, model: dict) -> dict:
        """``model`` (a config's "model" dict) with the dataset's token shape filled in where absent."""
        return model

    def check(self, cfg: "ModelConfig") -> None:
        """ValueError naming the config field when ``cfg`` does not fit this dataset."""

    def split(self, cfg: "ModelConfig") -> Split:
        raise NotImplementedError

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def augment(self, cfg: "ModelConfig", x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
        raise ValueError(f"train.shift ({shift}) has no augmentation for config.dataset={self.name!r}; "
                         f"it must be 0")


REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    if not dataset.name or dataset.name in REGISTRY:
        raise ValueError(f"dataset name {dataset.name!r} is empty or already registered")
    REGISTRY[dataset.name] = dataset
    return dataset


def stratified(x: np.ndarray, y: np.ndarray, test: float | int, seed: int, where: str = "") -> Split:
    """sklearn ``train_test_split(test_size=test, stratify=y, random_state=seed)``; errors start with ``where``
    (the file, and only the config fields the user set: ``split_source``)."""
    from sklearn.model_selection import train_test_split

    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    except ValueError as e:
        raise ValueError(f"{where + ': ' if where else ''}cannot split {len(y)} samples stratified by class "
                         f"at test fraction {test!r}, seed {seed!r} ({e})") from None
    return Split(x_tr, y_tr, x_te, y_te)


def split_source(cfg: "ModelConfig", file: object = None) -> str:
    """What a split error cites: the data file and the split settings the user set (never their defaults)."""
    d = cfg.data
    given = [f"config.{k} ({v!r})" for k, v in (("test_fraction", d.test_fraction), ("split_seed", d.split_seed))
             if v is not None]
    return " with ".join([str(file or f"dataset {d.dataset}")] + ([" / ".join(given)] if given else []))


def resplit(own: Split, cfg: "ModelConfig") -> Split:
    """``own`` (a dataset's own split) unless config.split_seed or config.test_fraction is set: then the
    pooled samples, split ``stratified`` (seed: split_seed or 0; fraction: test_fraction or 0.2)."""
    seed, fraction = cfg.data.split_seed, cfg.data.test_fraction
    if seed is None and fraction is None:
        return own
    pool = np.empty(len(own.x_train) + len(own.x_test), dtype=own.x_train.dtype) if own.x_train.dtype == object \
        else None
    if pool is not None:
        pool[:len(own.x_train)], pool[len(own.x_train):] = own.x_train, own.x_test
    else:
        pool = np.concatenate([own.x_train, own.x_test])
    return stratified(pool, np.concatenate([own.y_train, own.y_test]),
                      fraction if fraction is not None else DEFAULT_TEST_FRACTION,
                      seed if seed is not None else 0, split_source(cfg, cfg.data.data_path))


def fingerprint(split: Split) -> str:
    """sha-256 (16 hex) of the test samples and labels: event streams element by element, arrays as bytes."""
    h = hashlib.sha256()
    xs = split.x_test if split.x_test.dtype == object else [np.ascontiguousarray(split.x_test)]
    for a in xs:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.descr, a.shape)).encode())
        h.update(a.tobytes())
    h.update(np.ascontiguousarray(split.y_test, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
