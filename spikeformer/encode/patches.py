"""Event streams → token spikes: the sensor cut into g×g square patches (geometry given by the dataset).

Tick k covers t ∈ [k·duration/T, (k+1)·duration/T): an event goes to tick ⌊t·T/duration⌋.
Tokens are the N = g² square patches (side P = size/g) in row-major order: token
(y // P)·g + x // P. Feature 2·((y mod P)·P + x mod P) + p fires at tick k if at least one
event of polarity p fell on that pixel in that tick; features 2P² + n (n < N) are the
token's one-hot position, on every tick. F = 2P² + N.

Events are structured arrays of ``EVENT_DTYPE`` (x, y: pixel; t: µs; p: polarity 0/1).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<u4"), ("p", "u1")])


def positive_int(name: str, value: object) -> int:
    """``value`` as an int ≥ 1; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def patch_grid(tokens: int, size: int, name: str = "tokens") -> int:
    """Side g of the g×g patch grid for ``tokens`` = g²; g must divide ``size``. Errors name ``name``."""
    g = int(round(np.sqrt(tokens))) if isinstance(tokens, (int, np.integer)) and tokens > 0 else 0
    if g * g != tokens or size % g:
        valid = [d * d for d in range(1, size + 1) if size % d == 0]
        raise ValueError(f"{name} ({tokens!r}) must be one of {valid} for the events dataset: "
                         f"g×g square patches of the {size}×{size} sensor")
    return g


def patch_features(tokens: int, size: int, name: str = "config.tokens") -> int:
    """F = 2·(size/g)² + tokens: every pixel of a patch × 2 polarities, then the one-hot position."""
    return 2 * (size // patch_grid(tokens, size, name)) ** 2 + tokens


def encode_patches(streams: Sequence[np.ndarray], timesteps: int, tokens: int, size: int,
                   duration_us: int) -> np.ndarray:
    """Spikes (n, T, N, F) bool from event streams on a ``size``×``size`` sensor (module docstring)."""
    timesteps = positive_int("timesteps", timesteps)
    size = positive_int("size", size)
    duration_us = positive_int("duration_us", duration_us)
    g = patch_grid(tokens, size)
    side = size // g
    out = np.zeros((len(streams), timesteps, tokens, 2 * side * side + tokens), bool)
    out[:, :, np.arange(tokens), 2 * side * side + np.arange(tokens)] = True
    for i, ev in enumerate(streams):
        if not isinstance(ev, np.ndarray) or ev.dtype != EVENT_DTYPE:
            raise ValueError(f"streams[{i}]: expected a structured array of EVENT_DTYPE, got "
                             f"{getattr(ev, 'dtype', type(ev).__name__)}")
        x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
        if len(ev) and (x.max() >= size or y.max() >= size or t.max() >= duration_us or ev["p"].max() > 1):
            raise ValueError(f"streams[{i}]: events outside the {size}×{size} sensor, t ≥ duration_us="
                             f"{duration_us} or p > 1")
        feature = 2 * ((y % side) * side + x % side) + ev["p"]
        out[i, t * timesteps // duration_us, (y // side) * g + x // side, feature] = True
    return out
