"""Training one ladder point: Adam at a fixed learning rate, until validation accuracy stops improving.

Per epoch: the training signals in a random order (NumPy generator of the point's seed), batches of
``Budget.batch``, one Adam step each (fanin-learned: the mask re-chosen before every step, ``mlp``); then the
accuracy on the validation signals. Training stops after ``patience`` epochs without a new best (or at
``max_epochs``); the model returned holds the weights of the best epoch. A fanin-learned model's epochs count
only once its annealing has ended (before that it holds more than F weights per unit).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from spikeformer.experiments.ladder.data import LadderData
from spikeformer.experiments.ladder.mlp import LadderMLP, RungConfig, annealed_nonzeros


@dataclass(frozen=True)
class Budget:
    """How every point is trained (part of each point's fingerprint)."""
    batch: int = 256
    patience: int = 3
    max_epochs: int = 40

    def __post_init__(self) -> None:
        for name in ("batch", "patience", "max_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ladder budget {name} must be a positive integer, got {v!r}")


@dataclass(frozen=True)
class Fitted:
    """A trained model (weights of the best validation epoch) and how it got there."""
    model: LadderMLP
    val_accuracy: float
    best_epoch: int
    epochs: int
    seconds: float


@torch.no_grad()
def accuracy(model: LadderMLP, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    return sum(int((model(x[b:b + batch]).argmax(1) == y[b:b + batch]).sum()) for b in range(0, len(x), batch)) / len(x)


def fit(cfg: RungConfig, data: LadderData, lr: float, seed: int, budget: Budget) -> Fitted:
    """Train ``cfg`` from ``seed`` at learning rate ``lr`` (module docstring)."""
    if not (isinstance(lr, float) and 0 < lr < 1):
        raise ValueError(f"ladder learning rate must be a float in (0, 1), got {lr!r}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = LadderMLP(cfg, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = np.random.default_rng(seed)
    n = len(data.x_train)
    steps_per_epoch = -(-n // budget.batch)
    learned = cfg.wiring == "fanin-learned"
    first_counted = cfg.anneal_epochs if learned else 1
    best, best_state, best_epoch, epoch = -1.0, None, 0, 0
    last = budget.max_epochs + first_counted - 1
    while epoch < last and epoch - max(best_epoch, first_counted - 1) < budget.patience:
        perm = torch.from_numpy(order.permutation(n))
        model.train()
        for step, b in enumerate(range(0, n, budget.batch)):
            if learned:
                model.reselect(annealed_nonzeros(cfg, epoch + (step + 1) / steps_per_epoch))
            idx = perm[b:b + budget.batch]
            loss = model.loss(data.x_train[idx], data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epoch += 1
        if epoch < first_counted:
            continue
        model.eval()
        val = accuracy(model, data.x_val, data.y_val)
        if val > best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return Fitted(model, best, best_epoch, epoch, time.perf_counter() - start)
