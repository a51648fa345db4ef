"""Data: scikit-learn's bundled digits as token sequences, and the spike encoder.

Split: 1,797 digits → 1,437 train / 360 test, ``train_test_split(test_size=0.2,
stratify=y, random_state=0)`` — fixed, so every command sees the same test set.

Encoding (deterministic, identical every tick): an 8×8 image becomes N = 8
tokens (its rows). Token ``r`` carries, for each of its 8 pixels ``x ∈ [0, 16]``,
a thermometer code of L levels ``x > 16·(l + ½)/L`` for l = 0…L−1, followed by
a one-hot code of its position r (N bits). Features per token F = 8·L + N.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIGIT_ROWS = DIGIT_COLS = 8
DIGIT_MAX = 16
SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Images (n, 8, 8) uint8 in [0, 16] (or, for events.load_events_split, an object array of
    event streams) and labels (n,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split() -> Split:
    """The fixed stratified split of scikit-learn's digits (see module docstring)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.uint8)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y,
                                              random_state=SPLIT_SEED)
    return Split(x_tr, y_tr, x_te, y_te)


def token_features(levels: int) -> int:
    """F = 8·levels + 8 features per token."""
    return DIGIT_COLS * levels + DIGIT_ROWS


def encode_digits(images: np.ndarray, timesteps: int, levels: int = 4) -> np.ndarray:
    """Spikes (n, timesteps, N=8, F) bool: thermometer pixels + one-hot position, every tick."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_ROWS, DIGIT_COLS):
        raise ValueError(f"images: expected shape (n, 8, 8), got {images.shape}")
    if timesteps < 1:
        raise ValueError(f"timesteps must be ≥ 1, got {timesteps}")
    if levels < 1:
        raise ValueError(f"levels must be ≥ 1, got {levels}")
    thresholds = DIGIT_MAX * (np.arange(levels) + 0.5) / levels
    thermo = images[..., None] > thresholds                      # (n, 8, 8, L)
    thermo = thermo.reshape(len(images), DIGIT_ROWS, DIGIT_COLS * levels)
    position = np.broadcast_to(np.eye(DIGIT_ROWS, dtype=bool), (len(images), DIGIT_ROWS, DIGIT_ROWS))
    tokens = np.concatenate([thermo, position], axis=2)          # (n, N, F)
    return np.repeat(tokens[:, None], timesteps, axis=1)
