"""Byte windows → token spikes: each byte a one-hot code of the vocabulary, then its position.

Token ``n`` of a window carries ``[b_n = v]`` for v = 0 … V−1 (V = the vocabulary: byte values
below V), followed by a one-hot code of n (N bits): F = V + N features per token, every tick.
A byte of −1 is an empty position (no spikes at all): the tail of a short prompt, which a causal
model's earlier positions never see.
"""
from __future__ import annotations

import numpy as np


def byte_features(vocab: int, tokens: int) -> int:
    """F = V + N features per token."""
    return vocab + tokens


def encode_bytes(windows: np.ndarray, timesteps: int, vocab: int) -> np.ndarray:
    """Spikes (n, timesteps, N, V + N) bool of byte windows (n, N) (−1 = empty position)."""
    w = np.asarray(windows)
    if w.ndim != 2:
        raise ValueError(f"byte windows: expected shape (n, tokens), got {w.shape}")
    w = w.astype(np.int64)
    if len(w) and (w.max(initial=-1) >= vocab or w.min(initial=0) < -1):
        bad = int(w.max() if w.max() >= vocab else w.min())
        raise ValueError(f"byte {bad} is outside the model's vocabulary [0, {vocab})")
    n, N = w.shape
    present = w >= 0
    onehot = (w[..., None] == np.arange(vocab)) & present[..., None]                 # (n, N, V)
    position = np.broadcast_to(np.eye(N, dtype=bool), (n, N, N)) & present[..., None]
    tokens = np.concatenate([onehot, position], axis=2)
    return np.repeat(tokens[:, None], timesteps, axis=1)
