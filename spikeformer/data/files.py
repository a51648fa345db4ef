"""Shared checks of the user-file datasets (``recordings``, ``spikes``): errors name the file and the field."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sim.system.memory import available_bytes


class DataFileError(ValueError):
    """A user data file is missing, unreadable or malformed: ``{file}: field '{field}': {problem}``."""

    def __init__(self, file: str | os.PathLike, field: str | None, problem: str) -> None:
        self.file, self.field = str(file), field
        super().__init__(f"{file}: {'' if field is None else f'field {field!r}: '}{problem}")


def stamp(path: str | os.PathLike) -> tuple:
    """(resolved path, mtime_ns, size) of a file, or of a directory's entries: a cache key that changes with it."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, None, "config.data_path: no such file or directory")
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return (str(p.resolve()),) + tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def int_array(file: Any, field: str, a: Any, ndim: int = 1) -> np.ndarray:
    """``a`` as an int64 array of ``ndim`` dimensions, else DataFileError naming the field."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu" or a.ndim != ndim:
        raise DataFileError(file, field, f"expected {ndim}-d integers, got dtype {a.dtype} with shape {a.shape}")
    return a.astype(np.int64)


# labels are class indices: a label L makes an output layer of L + 1 classes (config.classes defaults to it).
# Training keeps each class's readout row (dim float32 weights) with its gradient and two Adam moments: 16·dim
# bytes per class, a part of ``spikeformer.train.memory``'s estimate that needs no model to compute.
READOUT_BYTES = 16


def labels_array(file: Any, labels: Any, n: int, field: str = "labels") -> np.ndarray:
    """The file's labels as int64 (n,): integers ≥ 0 (their count bounded by ``check_class_memory``)."""
    y = int_array(file, field, labels)
    if len(y) != n:
        raise DataFileError(file, field, f"{len(y)} labels for {n} samples")
    bad = np.flatnonzero(y < 0)
    if len(bad):
        raise DataFileError(file, field, f"label {y[bad[0]]} (sample {bad[0]}) is negative; labels are class "
                                         f"indices ≥ 0")
    return y


def check_class_memory(file: Any, y: np.ndarray, classes: int, dim: int) -> None:
    """DataFileError naming the largest label (and its sample) — or config.classes when the labels are not
    where the count came from — when the readout of ``classes`` classes alone, READOUT_BYTES · dim per class,
    exceeds the memory available: refused before any tensor is allocated (the training-memory estimate
    measures a built model, and a readout that does not fit cannot be built)."""
    need, have = READOUT_BYTES * dim * classes, available_bytes()
    if need <= have:
        return
    i = int(np.argmax(y)) if len(y) else -1
    source = (f"label {y[i]} (sample {i}) makes {classes:,} output classes" if i >= 0 and int(y[i]) + 1 == classes
              else f"config.classes ({classes:,})")
    raise DataFileError(file, "labels", f"{source}: training their readout (dim {dim}) needs ~{need / 2**30:.1f} GiB "
                                        f"({READOUT_BYTES} bytes × dim per class), {have / 2**30:.1f} GiB available")


def test_mask(file: Any, mask: Any, n: int, field: str = "is_test") -> np.ndarray | None:
    """The file's own split as a bool mask (None: the file has none)."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (n,) or m.dtype.kind not in "bui" or not np.isin(m, (0, 1)).all():
        raise DataFileError(file, field, f"expected {n} booleans (1 = test sample), got dtype {m.dtype} "
                                         f"with shape {m.shape}")
    m = m.astype(bool)
    if not m.any() or m.all():
        raise DataFileError(file, field, "the file's own split needs at least one train and one test sample")
    return m


def check_split(where: Any, y_train: np.ndarray, y_test: np.ndarray) -> None:
    """A split a classifier can be trained and scored on: samples on both sides, two classes to train on."""
    if len(y_train) == 0 or len(y_test) == 0:
        raise ValueError(f"{where}: the split has {len(y_train)} training and {len(y_test)} test samples; "
                         f"both must be non-empty")
    present = np.unique(y_train)
    if len(present) < 2:
        raise ValueError(f"{where}: the training samples hold a single class (label {present[0]}); "
                         f"a classifier needs at least two")


def check_classes(file: Any, y: np.ndarray, classes: int, dim: int) -> None:
    """Every label a class of the model's ``classes``, whose readout fits in memory (``check_class_memory``)."""
    if len(y) and y.max() >= classes:
        raise ValueError(f"config.classes ({classes}) must be > every label; {file} has label {y.max()}")
    check_class_memory(file, y, classes, dim)
