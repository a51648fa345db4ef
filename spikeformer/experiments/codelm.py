"""The language model's comparison table: n-gram figures and the dense baseline on the run's own split.

* ``ngram_bits``: add-α (α = 0.01) unigram, bigram and trigram models counted on the training windows
  (x and its next bytes y: the bytes the models train on) and scored on every held-out target y_n with
  the context inside its window (trigram at n = 0: the bigram, as the windowed models see one byte there):
  bits per byte = mean −log₂ P(y_n | context).
* ``train_dense``: ``spikeformer.model.dense.DenseTransformer`` of the same shape, Adam (lr 3e-3,
  one-cycle) on the same batches' windows for the same number of steps, mean next-byte cross-entropy;
  scored on the first ``test_windows`` held-out windows (None: all).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from spikeformer.config.model import ModelConfig
from spikeformer.config.train import TrainConfig
from spikeformer.data.base import Split
from spikeformer.model.dense import DenseTransformer

ALPHA = 0.01


def ngram_bits(data: Split, vocab: int) -> dict[str, float]:
    """Held-out bits per byte of the unigram, bigram and trigram models (module docstring)."""
    x, y = data.x_train.astype(np.int64), data.y_train
    uni = np.bincount(y.ravel(), minlength=vocab).astype(np.float64)
    bi = np.zeros((vocab, vocab))
    np.add.at(bi, (x.ravel(), y.ravel()), 1)
    tri = np.zeros((vocab, vocab, vocab))
    np.add.at(tri, (x[:, :-1].ravel(), x[:, 1:].ravel(), y[:, 1:].ravel()), 1)
    xt, yt = data.x_test.astype(np.int64), data.y_test
    b_uni = -np.log2((uni[yt] + ALPHA) / (uni.sum() + ALPHA * vocab))
    b_bi = -np.log2((bi[xt, yt] + ALPHA) / (bi[xt].sum(axis=-1) + ALPHA * vocab))
    b_tri = b_bi.copy()
    ctx = (xt[:, :-1], xt[:, 1:])
    b_tri[:, 1:] = -np.log2((tri[(*ctx, yt[:, 1:])] + ALPHA) / (tri[ctx].sum(axis=-1) + ALPHA * vocab))
    return {"unigram": float(b_uni.mean()), "bigram": float(b_bi.mean()), "trigram": float(b_tri.mean())}


def train_dense(cfg: ModelConfig, train_cfg: TrainConfig, data: Split, steps: int | None = None,
                test_windows: int | None = None, lr: float = 3e-3) -> dict:
    """Train the dense baseline for ``steps`` (None: the spiking run's epochs × steps per epoch) batches of
    ``train_cfg.batch_size`` windows in the spiking trainer's order; its held-out bits per byte."""
    torch.manual_seed(train_cfg.seed)
    torch.set_num_threads(train_cfg.threads)
    model = DenseTransformer(cfg)
    bs = train_cfg.batch_size
    per_epoch = min(-(-len(data.y_train) // bs), train_cfg.steps_per_epoch or len(data.y_train))
    steps = steps or train_cfg.epochs * per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    x_tr, y_tr = torch.from_numpy(data.x_train.astype(np.int64)), torch.from_numpy(data.y_train)
    gen, t0, done = torch.Generator(), time.perf_counter(), 0
    model.train()
    for epoch in range(-(-steps // per_epoch)):
        order = torch.randperm(len(x_tr), generator=gen.manual_seed(train_cfg.seed * 1000 + epoch))
        for i in range(min(per_epoch, steps - done)):
            idx = order[i * bs:(i + 1) * bs]
            logits = model(x_tr[idx])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_tr[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
    seconds = time.perf_counter() - t0
    return {"dense_bits_per_byte": dense_bits(model, data, test_windows), "dense_steps": done,
            "dense_seconds": seconds, "dense_parameters": sum(p.numel() for p in model.parameters())}


@torch.no_grad()
def dense_bits(model: DenseTransformer, data: Split, test_windows: int | None = None) -> float:
    """Mean −log₂ softmax(logits)[y] over the first ``test_windows`` held-out windows (None: all)."""
    model.eval()
    x, y = data.x_test[:test_windows].astype(np.int64), data.y_test[:test_windows]
    total = 0.0
    for i in range(0, len(x), 256):
        logits = model(torch.from_numpy(x[i:i + 256]))
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                         torch.from_numpy(y[i:i + 256]).reshape(-1),
                                                         reduction="sum"))
    return total / y.size / float(np.log(2))
