"""The ladder's task: MNIST-1D with as many generated training signals as asked.

Training and validation signals: ``make_dataset`` of the ``mnist1d`` package with its default arguments
except ``num_samples`` = train + val (rounded up to a multiple of the 10 classes), ``seed`` =
``generator_seed`` (default 1, not the package's 42) and ``train_split`` = 1 (all of them generated as one
set, standardised over that set as the package does); the first ``val`` signals are the validation split,
the next ``train`` the training split. Test: the package's own 1,000 test signals (seed 42,
``spikeformer.data.sets.mnist1d.load_mnist1d_split``), the split every MNIST-1D figure in this repository
uses; the generator draws from another seed, so no test signal is a training signal. The global NumPy RNG
state is restored after generation (``make_dataset`` seeds it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from spikeformer.data.sets.mnist1d import load_mnist1d_split

GENERATOR_SEED = 1


@dataclass(frozen=True)
class LadderData:
    """float32 signals (n, 40) and int64 labels (n,) of the three splits."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def task_fields(train: int, val: int, generator_seed: int = GENERATOR_SEED) -> dict:
    """What defines the task (the ladder CSV's ``config`` fingerprint)."""
    return {"task": "mnist1d", "train_signals": train, "val_signals": val, "generator_seed": generator_seed,
            "test": "mnist1d package test split (seed 42, 1,000 signals)"}


@lru_cache(maxsize=2)
def _generated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = n, seed, 1.0
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return d["x"].astype(np.float32), d["y"].astype(np.int64)


def ladder_data(train: int, val: int, generator_seed: int = GENERATOR_SEED) -> LadderData:
    """The three splits of the module docstring; ValueError naming the count if one is not positive."""
    for name, n in (("train signals", train), ("validation signals", val)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"ladder {name} must be a positive integer, got {n!r}")
    x, y = _generated(-(-(train + val) // 10) * 10, generator_seed)
    split = load_mnist1d_split()
    t = torch.from_numpy
    return LadderData(t(x[val:val + train].copy()), t(y[val:val + train].copy()), t(x[:val].copy()),
                      t(y[:val].copy()), t(split.x_test), t(split.y_test))
