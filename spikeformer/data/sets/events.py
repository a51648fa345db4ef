"""``events``: the seeded DVS-like event streams of ``spikeformer.data.event_generator``; ``config.tokens`` selects one.

16 tokens: 16×16 sensor, 8 classes, 1,200 train / 360 test; 64 tokens: 32×32 sensor, 12 classes,
2,400 train / 240 test (own splits: stratified, seed 0). Tokens are 4×4-pixel patches,
F = 2·4² + tokens (``spikeformer.data.event_datasets.encode_events``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spikeformer.data import event_datasets as events
from spikeformer.data.base import Dataset, Split, register

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


def check_model_config(tokens: int, features: int, encoder: str, classes: int | None = None) -> None:
    """Errors for a ModelConfig with dataset='events' whose tokens/features/encoder/classes do not fit."""
    if encoder != "thermometer":
        raise ValueError(f"config.encoder must stay 'thermometer' (unused) for the events dataset, got {encoder!r}")
    d = events.event_dataset(tokens)
    if features != d.features:
        raise ValueError(f"config.features ({features}) must equal 2·4² + tokens = {d.features} for the events "
                         f"dataset with tokens={tokens}")
    if classes is not None and classes < len(d.classes):
        raise ValueError(f"config.classes ({classes}) must be ≥ {len(d.classes)}, the class count of the events "
                         f"dataset with tokens={tokens}")


class Events(Dataset):
    name = "events"

    def defaults(self, model: dict) -> dict:
        model.setdefault("tokens", 16)                  # 4×4 patches of the 16×16 sensor
        d = events.event_dataset(model["tokens"])
        model.setdefault("features", d.features)
        model.setdefault("classes", max(10, len(d.classes)))
        return model

    def check(self, cfg: "ModelConfig") -> None:
        check_model_config(cfg.arch.tokens, cfg.arch.features, cfg.encoder.kind, cfg.arch.classes)

    def split(self, cfg: "ModelConfig") -> Split:
        d = cfg.data
        return events.load_events_split(cfg.arch.tokens, 0 if d.split_seed is None else d.split_seed,
                                        d.test_fraction)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        return events.encode_events(x, cfg.arch.timesteps, cfg.arch.tokens)


register(Events())
