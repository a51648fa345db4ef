"""Sparse binary hyperdimensional (HD) input codes with exactly k active bits.

Item memory (seeded): every intensity level ℓ ∈ {0, …, L−1} gets a random binary
hypervector of dimension D with exactly k ones. A digit row becomes one token:

    token(r) = top_k( Σ_c  π^{8r + c}( item[level(x_rc)] ) )

π = cyclic shift by one position (position by permutation), the sum bundles the
8 pixels of the row, and top_k keeps exactly the k dimensions with the largest
count (ties broken by a fixed seeded priority) — a thresholded sum that keeps the
code's sparsity at k/D whatever D is. The token's spikes are its code, every tick.

Why not torchhd: it brings pandas, which upgrades numpy to 2.x and breaks Lava
0.10, and it has no exact-k sparse binary bundling; this is 40 lines of numpy.
"""
from __future__ import annotations

import numpy as np

from spikeformer.encode.digits import DIGIT_COLS, DIGIT_MAX, DIGIT_ROWS


def check_hd(dim: int, active: int) -> None:
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"config.hd_dim must be a positive integer, got {dim!r}")
    if not isinstance(active, int) or not 1 <= active <= dim:
        raise ValueError(f"config.hd_active ({active!r}) must be in [1, hd_dim={dim}]: "
                         f"a code cannot have more active bits than dimensions")


def item_memory(levels: int, dim: int, active: int, seed: int = 0) -> np.ndarray:
    """(levels, dim) bool, exactly ``active`` ones per row."""
    check_hd(dim, active)
    rng = np.random.default_rng(seed)
    mem = np.zeros((levels, dim), bool)
    for row in mem:
        row[rng.choice(dim, active, replace=False)] = True
    return mem


def encode_hd(images: np.ndarray, timesteps: int, dim: int, active: int, levels: int = 8,
              seed: int = 0) -> np.ndarray:
    """Spikes (n, timesteps, 8 tokens, dim) bool with exactly ``active`` ones per token."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_ROWS, DIGIT_COLS):
        raise ValueError(f"images: expected shape (n, 8, 8), got {images.shape}")
    mem = item_memory(levels, dim, active, seed).astype(np.int32)
    priority = np.random.default_rng(seed + 1).permutation(dim) / dim          # tie-break, < 1
    level = np.minimum(images.astype(np.int64) * levels // (DIGIT_MAX + 1), levels - 1)
    out = np.zeros((len(images), timesteps, DIGIT_ROWS, dim), bool)
    chunk = max(1, (1 << 25) // (DIGIT_ROWS * dim))                             # ≤ 256 MiB of float64 counts
    for i in range(0, len(images), chunk):
        lv = level[i:i + chunk]
        counts = np.zeros((len(lv), DIGIT_ROWS, dim), np.float64)
        for r in range(DIGIT_ROWS):
            for c in range(DIGIT_COLS):
                counts[:, r] += np.roll(mem[lv[:, r, c]], DIGIT_COLS * r + c, axis=1)
        counts += priority
        top = np.argpartition(-counts, active - 1, axis=2)[..., :active]
        tokens = np.zeros(counts.shape, bool)
        np.put_along_axis(tokens, top, True, axis=2)
        out[i:i + chunk] = tokens[:, None]
    return out
