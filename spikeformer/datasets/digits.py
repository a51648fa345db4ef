"""``digits``: scikit-learn's bundled 8×8 digits as token sequences, and their spike encoders.

Split: 1,797 digits; own split 1,437 train / 360 test, ``train_test_split(test_size=0.2,
stratify=y, random_state=0)`` (``config.split_seed`` / ``config.test_fraction`` change seed / fraction).

Encoding (deterministic, identical every tick): an 8×8 image becomes N = 8
tokens (its rows). Token ``r`` carries, for each of its 8 pixels ``x ∈ [0, 16]``,
a thermometer code of L levels ``x > 16·(l + ½)/L`` for l = 0…L−1, followed by
a one-hot code of its position r (N bits). Features per token F = 8·L + N.
``config.encoder = "hd"``: the sparse binary HD code of ``spikeformer.hd`` (F = hd_dim).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikeformer.datasets import DEFAULT_TEST_FRACTION, Dataset, Split, register, stratified

if TYPE_CHECKING:
    from spikeformer.model import ModelConfig

DIGIT_ROWS = DIGIT_COLS = 8
DIGIT_MAX = 16
SPLIT_SEED = 0
TEST_FRACTION = DEFAULT_TEST_FRACTION
ENCODERS = ("thermometer", "hd")


def load_digits_split(split_seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> Split:
    """The stratified split of scikit-learn's digits (see module docstring)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return stratified(d.images.astype(np.uint8), d.target.astype(np.int64), test_fraction, split_seed)


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


class Digits(Dataset):
    name = "digits"

    def defaults(self, model: dict) -> dict:
        model.setdefault("features", model.get("hd_dim", 1024) if model.get("encoder") == "hd"
                         else token_features(model.get("levels", 4)))
        return model

    def check(self, cfg: "ModelConfig") -> None:
        from spikeformer.hd import check_hd

        if cfg.encoder not in ENCODERS:
            raise ValueError(f"config.encoder must be one of {ENCODERS} for the digits dataset, got {cfg.encoder!r}")
        if cfg.encoder == "hd":
            check_hd(cfg.hd_dim, cfg.hd_active)
            if cfg.features != cfg.hd_dim:
                raise ValueError(f"config.features ({cfg.features}) must equal config.hd_dim ({cfg.hd_dim}) "
                                 f"for the hd encoder")

    def split(self, cfg: "ModelConfig") -> Split:
        return load_digits_split(SPLIT_SEED if cfg.split_seed is None else cfg.split_seed,
                                 TEST_FRACTION if cfg.test_fraction is None else cfg.test_fraction)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        if cfg.encoder == "hd":
            from spikeformer.hd import encode_hd
            return encode_hd(x, cfg.timesteps, cfg.hd_dim, cfg.hd_active)
        return encode_digits(x, cfg.timesteps, cfg.levels)

    def augment(self, cfg: "ModelConfig", x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
        return random_shift(x, shift, rng)


register(Digits())
