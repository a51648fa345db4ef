"""8×8 digit images → token spikes: one token per row, each pixel a thermometer code, then the row's position.

Token ``r`` carries, for each of its 8 pixels ``x ∈ [0, 16]``, L bits ``x > 16·(l + ½)/L``
(l = 0…L−1), followed by a one-hot code of r: F = 8·L + 8 features per token, every tick.
"""
from __future__ import annotations

import numpy as np

DIGIT_ROWS = DIGIT_COLS = 8


DIGIT_MAX = 16


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


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by (dy, dx) ∈ [−max_shift, max_shift]², zero fill."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        out[i, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[i, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out
