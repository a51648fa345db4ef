"""``TrainConfig``: how a model is trained (epochs, batch, optimiser, seed, threads, augmentation, penalties)."""
from __future__ import annotations

from dataclasses import dataclass

from spikeformer.config.fields import check_fields


@dataclass
class TrainConfig:
    """Training settings; saved in config.json beside the model config (section ``train``)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.5
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 2
    shift: int = 0            # augmentation: random translation by up to ±shift pixels (0 = off)
    steps_per_epoch: int | None = None   # at most this many batches per epoch (smoke runs); None = all
    discard_penalty: float = 0.0   # loss += this · mean discarded k-WTA spikes per sample (model.discarded_spikes)

    def __post_init__(self) -> None:
        check_fields(self, "train")                         # exact types: a bool is not an int, floats finite
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"train.steps_per_epoch must be null or a positive integer, got {self.steps_per_epoch!r}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"train.weight_decay must be ≥ 0, got {self.weight_decay!r}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ValueError(f"train.seed must be in [0, {SEED_LIMIT}), got {self.seed!r}")
        if self.shift < 0:
            raise ValueError(f"train.shift must be ≥ 0, got {self.shift!r}")
        if not self.discard_penalty >= 0:
            raise ValueError(f"train.discard_penalty must be ≥ 0, got {self.discard_penalty!r}")


SEED_LIMIT = 1 << 32          # seeds torch (seed·1000 + epoch) and numpy ([seed, epoch]: non-negative)
