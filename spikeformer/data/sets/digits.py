"""``digits``: scikit-learn's bundled 8×8 digits as token sequences, and their spike encoders.

Split: 1,797 digits; own split 1,437 train / 360 test, ``train_test_split(test_size=0.2,
stratify=y, random_state=0)`` (``config.split_seed`` / ``config.test_fraction`` change seed / fraction).

Encoding (deterministic, identical every tick): an 8×8 image becomes N = 8
tokens (its rows). Token ``r`` carries, for each of its 8 pixels ``x ∈ [0, 16]``,
a thermometer code of L levels ``x > 16·(l + ½)/L`` for l = 0…L−1, followed by
a one-hot code of its position r (N bits). Features per token F = 8·L + N.
``config.encoder.kind = "hd"``: the sparse binary HD code of ``spikeformer.encode.hd`` (F = hd_dim).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikeformer.data.base import DEFAULT_TEST_FRACTION, Dataset, Split, register, stratified
from spikeformer.encode.digits import encode_digits, random_shift, token_features

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


SPLIT_SEED = 0


TEST_FRACTION = DEFAULT_TEST_FRACTION


ENCODERS = ("thermometer", "hd")


def load_digits_split(split_seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> Split:
    """The stratified split of scikit-learn's digits (see module docstring)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return stratified(d.images.astype(np.uint8), d.target.astype(np.int64), test_fraction, split_seed)


class Digits(Dataset):
    name = "digits"

    def defaults(self, model: dict) -> dict:
        model.setdefault("features", model.get("hd_dim", 1024) if model.get("encoder") == "hd"
                         else token_features(model.get("levels", 4)))
        return model

    def check(self, cfg: "ModelConfig") -> None:
        from spikeformer.encode.hd import check_hd

        enc = cfg.encoder
        if enc.kind not in ENCODERS:
            raise ValueError(f"config.encoder must be one of {ENCODERS} for the digits dataset, got {enc.kind!r}")
        if enc.kind == "hd":
            check_hd(enc.hd_dim, enc.hd_active)
            if cfg.arch.features != enc.hd_dim:
                raise ValueError(f"config.features ({cfg.arch.features}) must equal config.hd_dim ({enc.hd_dim}) "
                                 f"for the hd encoder")

    def split(self, cfg: "ModelConfig") -> Split:
        d = cfg.data
        return load_digits_split(SPLIT_SEED if d.split_seed is None else d.split_seed,
                                 TEST_FRACTION if d.test_fraction is None else d.test_fraction)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        enc = cfg.encoder
        if enc.kind == "hd":
            from spikeformer.encode.hd import encode_hd
            return encode_hd(x, cfg.arch.timesteps, enc.hd_dim, enc.hd_active)
        return encode_digits(x, cfg.arch.timesteps, enc.levels)

    def augment(self, cfg: "ModelConfig", x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
        return random_shift(x, shift, rng)


register(Digits())
