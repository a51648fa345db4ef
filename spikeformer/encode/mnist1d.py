"""1-D signals → token spikes: N windows of W samples, each sample a thermometer code of L levels.

Token n covers samples n·(LENGTH/N) … + W (circularly); each sample gives L bits
``x > −R + 2R·(l + ½)/L`` (R = ``RANGE``), followed by the token's one-hot position:
F = W·L + N features per token, the same on every tick.
"""
from __future__ import annotations

import numpy as np

LENGTH = 40
RANGE = 2.5                 # thermometer levels span [−R, R] (the signals have unit variance)
DEFAULT_WINDOW = 12         # samples per token: a digit spans ~7–10 of the 40 samples


def window(features: int, tokens: int, levels: int) -> int | None:
    """W = (F − N) / L samples per token, or None if that is not a whole number in [1, 40]."""
    w, r = divmod(features - tokens, levels)
    return w if r == 0 and 1 <= w <= LENGTH else None


def token_features(tokens: int, levels: int, window: int | None = None) -> int:
    """F = W·L + N (W: DEFAULT_WINDOW when None)."""
    return (DEFAULT_WINDOW if window is None else window) * levels + tokens


def encode_mnist1d(signals: np.ndarray, timesteps: int, tokens: int, levels: int,
                   window: int | None = None) -> np.ndarray:
    """Spikes (n, timesteps, N, W·L + N) bool (module docstring)."""
    signals = np.asarray(signals)
    w = DEFAULT_WINDOW if window is None else window
    if signals.ndim != 2 or signals.shape[1] != LENGTH:
        raise ValueError(f"signals: expected shape (n, {LENGTH}), got {signals.shape}")
    if LENGTH % tokens or not 1 <= w <= LENGTH:
        raise ValueError(f"tokens ({tokens}) must divide {LENGTH} and window ({w}) be in [1, {LENGTH}]")
    s = LENGTH // tokens
    idx = (np.arange(tokens)[:, None] * s + np.arange(w)[None, :]) % LENGTH
    windows = signals[:, idx]                                                             # (n, N, W)
    thresholds = -RANGE + 2 * RANGE * (np.arange(levels) + 0.5) / levels
    thermo = (windows[..., None] > thresholds).reshape(len(signals), tokens, w * levels)
    position = np.broadcast_to(np.eye(tokens, dtype=bool), (len(signals), tokens, tokens))
    return np.repeat(np.concatenate([thermo, position], axis=2)[:, None], timesteps, axis=1)


def random_roll(signals: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Roll each signal circularly by a uniform shift in [−max_shift, max_shift]."""
    shifts = rng.integers(-max_shift, max_shift + 1, len(signals))
    idx = (np.arange(LENGTH)[None, :] - shifts[:, None]) % LENGTH
    return np.take_along_axis(np.asarray(signals), idx, axis=1)
