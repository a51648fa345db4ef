"""Event recordings of any W×H sensor → token spikes: ⌈W/P⌉·⌈H/P⌉ square patches of side P.

The rectangular form of ``spikeformer.encode.patches`` (edge patches may be partly off the
sensor): F = 2P² + N features per token, P the smallest side giving N patches.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def grid(patch: int, width: int, height: int) -> tuple[int, int]:
    return -(-width // patch), -(-height // patch)


def patch_side(tokens: int, width: int, height: int, name: str = "config.tokens") -> int:
    """The smallest P whose ⌈W/P⌉·⌈H/P⌉ grid has ``tokens`` patches; the error lists some valid counts."""
    counts = {}
    for p in range(1, max(width, height) + 1):
        gx, gy = grid(p, width, height)
        counts.setdefault(gx * gy, p)
    if tokens not in counts:
        raise ValueError(f"{name} ({tokens!r}) must be a patch count of the {width}×{height} sensor, e.g. one of "
                         f"{sorted(counts)[:12]}")
    return counts[tokens]


def token_features(tokens: int, width: int, height: int) -> int:
    """F = 2P² + N."""
    return 2 * patch_side(tokens, width, height) ** 2 + tokens


def encode_recordings(streams: Sequence[np.ndarray], timesteps: int, tokens: int, width: int, height: int,
                      duration_us: int) -> np.ndarray:
    """Spikes (n, T, N, 2P² + N) bool from TONIC_DTYPE streams with t in [0, duration_us) (module docstring)."""
    p = patch_side(tokens, width, height)
    gx, _ = grid(p, width, height)
    out = np.zeros((len(streams), timesteps, tokens, 2 * p * p + tokens), bool)
    out[:, :, np.arange(tokens), 2 * p * p + np.arange(tokens)] = True
    for i, ev in enumerate(streams):
        x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
        if len(ev) and (t.min() < 0 or t.max() >= duration_us):
            raise ValueError(f"streams[{i}]: t outside [0, duration_us={duration_us})")
        out[i, t * timesteps // duration_us, (y // p) * gx + x // p, 2 * ((y % p) * p + x % p) + ev["p"]] = True
    return out
