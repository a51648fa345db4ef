"""``mnist1d``: the MNIST-1D procedural generator (Greydanus, the ``mnist1d`` package), generated offline.

Data: ``make_dataset(get_dataset_args())`` — 5,000 signals of 40 samples, 10 classes (digit
templates padded, circularly translated, scaled, sheared, with correlated and iid noise,
resampled; zero mean, unit variance over the set); own split 4,000 train / 1,000 test. The
package's global NumPy RNG state is restored after generation.

Encoding (deterministic, identical every tick): N = ``config.tokens`` tokens (N divides 40),
token n is the window of W samples starting at n·s, s = 40/N, circularly (sample (n·s + k) mod 40:
the generator's translation is circular). Every sample x of the window is thermometer-coded in
L = ``config.levels`` levels ``x > −R + 2R·(l + ½)/L`` (R = ``RANGE``), followed by the token's
one-hot position::

    F = W·L + N        (config.features picks W; default W = DEFAULT_WINDOW)

``train.shift`` = k: every training signal is rolled circularly by a uniform shift in [−k, k]
(the generator's own translation is circular).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from spikeformer.data.base import Dataset, Split, register, resplit
from spikeformer.encode.mnist1d import DEFAULT_WINDOW, LENGTH, encode_mnist1d, random_roll, token_features, window

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig




CLASSES = 10






@lru_cache(maxsize=1)
def _generated() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()                      # make_dataset seeds the global RNG
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    arrays = (d["x"].astype(np.float32), d["y"].astype(np.int64), d["x_test"].astype(np.float32),
              d["y_test"].astype(np.int64))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def load_mnist1d_split() -> Split:
    """The generator's own split: 4,000 train / 1,000 test signals (n, 40) float32 (copies of the cached arrays)."""
    return Split(*(a.copy() for a in _generated()))


class Mnist1d(Dataset):
    name = "mnist1d"

    def defaults(self, model: dict) -> dict:
        model.setdefault("tokens", 20)
        tokens, levels = model["tokens"], model.get("levels", 4)
        if isinstance(tokens, int) and isinstance(levels, int):
            model.setdefault("features", token_features(tokens, levels))
        return model

    def check(self, cfg: "ModelConfig") -> None:
        a, levels = cfg.arch, cfg.encoder.levels
        if LENGTH % a.tokens:
            raise ValueError(f"config.tokens ({a.tokens}) must divide the {LENGTH} samples of an mnist1d signal: "
                             f"one of {[n for n in range(1, LENGTH + 1) if LENGTH % n == 0]}")
        if window(a.features, a.tokens, levels) is None:
            raise ValueError(f"config.features ({a.features}) must be W·levels + tokens for mnist1d, W in "
                             f"[1, {LENGTH}] samples per token (W = {DEFAULT_WINDOW}: "
                             f"{token_features(a.tokens, levels)})")
        if a.classes < CLASSES:
            raise ValueError(f"config.classes ({a.classes}) must be ≥ {CLASSES}, the class count of mnist1d")
        if cfg.encoder.kind != "thermometer":
            raise ValueError(f"config.encoder must be 'thermometer' for mnist1d, got {cfg.encoder.kind!r}")

    def split(self, cfg: "ModelConfig") -> Split:
        return resplit(load_mnist1d_split(), cfg)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        a, levels = cfg.arch, cfg.encoder.levels
        return encode_mnist1d(x, a.timesteps, a.tokens, levels, window(a.features, a.tokens, levels))

    def augment(self, cfg: "ModelConfig", x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
        return random_roll(x, shift, rng)


register(Mnist1d())
