"""The events datasets (``config.tokens`` selects one; tokens are 4×4-pixel patches) and their token encoder.

Streams come from ``event_generator``: 16 tokens → ``generate_events``, 64 → ``generate_cluttered_events``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from spikeformer.data.base import Split, stratified
from spikeformer.data.event_generator import (
    CLASSES,
    CLUTTER_CLASSES,
    DURATION_US,
    SENSOR_SIZE,
    generate_cluttered_events,
    generate_events,
)
from spikeformer.encode.patches import encode_patches, patch_features

SPLIT_SEED = 0


SPLIT_PER_CLASS = 195          # 8 · 195 = 1,560 streams → 1,200 train / 360 test


SPLIT_TEST = 360


@dataclass(frozen=True)
class EventDataset:
    """One fixed event dataset, named by its token count (``config.tokens``): 4×4-pixel patches."""

    tokens: int
    size: int                          # sensor side (pixels)
    classes: tuple[str, ...]
    per_class: int                     # streams generated per class
    test: int                          # test streams (stratified)
    generate: Callable[[int, int], tuple[np.ndarray, np.ndarray]]   # (per_class, seed) → streams, labels

    @property
    def features(self) -> int:
        return token_features(self.tokens, self.size)


EVENT_DATASETS = {
    16: EventDataset(16, SENSOR_SIZE, CLASSES, SPLIT_PER_CLASS, SPLIT_TEST, generate_events),
    64: EventDataset(64, 32, CLUTTER_CLASSES, 220, 240, generate_cluttered_events),   # 2,400 train / 240 test
}


def event_dataset(tokens: object, name: str = "config.tokens") -> EventDataset:
    """The events dataset that ``tokens`` selects; the error names ``name``."""
    if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or int(tokens) not in EVENT_DATASETS:
        choices = "; ".join(f"{d.tokens} → {d.size}×{d.size} sensor, {len(d.classes)} classes"
                            for d in EVENT_DATASETS.values())
        raise ValueError(f"{name} ({tokens!r}) must be one of {sorted(EVENT_DATASETS)} for the events dataset "
                         f"(4×4-pixel patches: {choices})")
    return EVENT_DATASETS[int(tokens)]


@lru_cache(maxsize=len(EVENT_DATASETS))
def _generated(tokens: int) -> tuple[np.ndarray, np.ndarray]:
    d = event_dataset(tokens, "tokens")
    return d.generate(d.per_class, SPLIT_SEED)


def load_events_split(tokens: int = 16, split_seed: int = SPLIT_SEED, test: float | int | None = None) -> Split:
    """The split of the events dataset that ``tokens`` selects, stratified, ``random_state=split_seed``:

    * 16: ``generate_events(195, seed=0)`` (8 classes, 16×16 sensor) → 1,200 train / 360 test (45 per class);
    * 64: ``generate_cluttered_events(220, seed=0)`` (12 classes, 32×32 sensor) → 2,400 train /
      240 test (20 per class: the anchor-shape models simulate every test stream event by event,
      ~3–9 s each on 2 cores).

    ``test``: a fraction or count of test streams (None: the counts above).
    x_train / x_test are object arrays of read-only event arrays (generated once per process).
    """
    d = event_dataset(tokens, "tokens")
    streams, labels = _generated(d.tokens)
    s = stratified(streams, labels, d.test if test is None else test, split_seed)
    return Split(s.x_train.copy(), s.y_train.copy(), s.x_test.copy(), s.y_test.copy())


def sensor_size(tokens: int) -> int:
    """The sensor side of the dataset that ``tokens`` selects; 16 for any other token count."""
    known = isinstance(tokens, (int, np.integer)) and not isinstance(tokens, bool) and int(tokens) in EVENT_DATASETS
    return EVENT_DATASETS[int(tokens)].size if known else SENSOR_SIZE


def token_features(tokens: int, size: int | None = None, name: str = "config.tokens") -> int:
    """``encode.patches.patch_features`` on the sensor of the dataset that ``tokens`` selects
    (``size`` None: 16 → 48, 64 → 96)."""
    return patch_features(tokens, event_dataset(tokens, name).size if size is None else size, name)


def encode_events(streams: Sequence[np.ndarray], timesteps: int, tokens: int, size: int | None = None,
                  duration_us: int = DURATION_US) -> np.ndarray:
    """``encode.patches.encode_patches`` with this generator's sensor (``size`` None: ``sensor_size(tokens)``,
    32 for 64 tokens, else 16) and duration."""
    return encode_patches(streams, timesteps, tokens, sensor_size(tokens) if size is None else size, duration_us)
