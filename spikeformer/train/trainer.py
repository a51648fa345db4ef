"""Training: seeded, resumable, with atomic checkpoints.

A run directory holds::

    config.json        {"model": ModelConfig, "train": TrainConfig}
    model.pt           state_dict (tensors only: loads with torch.load(weights_only=True))
    train_state.pt     optimizer + scheduler state, epoch, RNG state (weights_only too)
    metrics.json       per-epoch loss / accuracy, final test accuracy
    split.json         the run's train/test split: dataset, seed, fraction, sizes, test-set fingerprint

The split is the run's (config.dataset, data_path, split_seed, test_fraction); every command
evaluates on it and refuses data whose test set no longer matches ``split.json``.

Every file is written to a temporary name and renamed, so a crash leaves the
previous checkpoint intact; an epoch's three files are written with SIGINT,
SIGTERM and SIGHUP held (``sim.system.signals.deferred_interrupts``), so a signal never
leaves weights of one epoch beside the optimizer state of another. ``train``
resumes from ``train_state.pt``.

``train`` writes only into an empty (or new) directory or one holding this
run's own resumable state (``check_out_dir``): never over another run's files.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from sim.system.files import atomic_write
from sim.system.signals import deferred_interrupts
from spikeformer.config.model import ModelConfig, canonical_config
from spikeformer.config.train import TrainConfig
from spikeformer.configure.validate import check_model_config
from spikeformer.data import registry as datasets
from spikeformer.data.registry import encode, load_dataset, split_record
from spikeformer.layers.sparsity import project_
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.store.files import CheckpointError, read_json, torch_load, write_json
from spikeformer.store.guard import check_out_dir
from spikeformer.store.layout import CONFIG_FILE, METRICS_FILE, MODEL_FILE, SPLIT_FILE, TRAIN_STATE_FILE
from spikeformer.train.memory import check_training_memory

TEMPERATURE_LR_RATIO = 0.02


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when a CUDA device is present, else cpu; 'cuda' without one is an error."""
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


@torch.no_grad()
def evaluate(model: SpikingTransformer, x: torch.Tensor, y: np.ndarray, batch_size: int = 128) -> float:
    """Fraction of correct argmax predictions (per token with a per-token readout)."""
    return evaluate_lm(model, x, y, batch_size)[0]


@torch.no_grad()
def evaluate_lm(model: SpikingTransformer, x: torch.Tensor | np.ndarray, y: np.ndarray, batch_size: int = 128,
                encoder: Callable[[np.ndarray], torch.Tensor] | None = None) -> tuple[float, float]:
    """(accuracy, bits per label): argmax = label, and Σ −log₂ softmax(loss_logits)[label] / labels
    (``bits_per_label``); ``encoder`` encodes raw samples ``x`` batch by batch."""
    model.eval()
    dev = next(model.parameters()).device
    logits = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size] if encoder is None else encoder(x[i:i + batch_size])
        logits.append(model(xb.to(dev))[0].cpu().numpy())
    lg = np.concatenate(logits)
    return float((lg.argmax(axis=-1) == y).mean()), bits_per_label(lg, y, float(model.log_temperature))


def bits_per_label(logits: np.ndarray, labels: np.ndarray, log_temperature: float) -> float:
    """Mean −log₂ softmax(e^τ·logits)[label] over every label (a language model: bits per byte), in float64."""
    z = np.asarray(logits, np.float64) * np.exp(log_temperature)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.asarray(labels, np.int64)[..., None], axis=-1)
    return float(-picked.mean() / np.log(2))


def batch_loss(model: SpikingTransformer, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the temperature-scaled logits: mean over samples, or over every position (per-token)."""
    scaled = model.loss_logits(logits)
    return torch.nn.functional.cross_entropy(scaled.reshape(-1, scaled.shape[-1]), y.reshape(-1))


@dataclass
class TrainResult:
    test_accuracy: float
    train_accuracy: float
    epochs: int
    seconds: float
    test_bits_per_byte: float | None = None     # a language model's (per-token readout) held-out bits per byte


def _optimiser(model: SpikingTransformer, train_cfg: TrainConfig,
               steps: int) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.OneCycleLR]:
    """Adam over (weights: lr, log-temperature: lr·TEMPERATURE_LR_RATIO), one-cycle schedule over ``steps``."""
    # weights live in integer mantissa units (lr ~ 0.5); the log-temperature wants a small step
    groups = [{"params": [p for n, p in model.named_parameters() if n != "log_temperature"]},
              {"params": [model.log_temperature], "lr": train_cfg.lr * TEMPERATURE_LR_RATIO}]
    opt = torch.optim.Adam(groups, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[train_cfg.lr, train_cfg.lr * TEMPERATURE_LR_RATIO],
                                                total_steps=steps, pct_start=0.15)
    return opt, sched


def _resume(out: Path, model: SpikingTransformer, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LRScheduler, dev: torch.device) -> tuple[int, list[dict], float]:
    """(start epoch, history, seconds) of the run in ``out``, restoring weights, optimizer, scheduler and
    torch RNG from its train state; (0, [], 0.0) without one."""
    start_epoch, history, seconds = 0, [], 0.0
    state_path = out / TRAIN_STATE_FILE
    if state_path.exists():                                 # check_out_dir: config.json equals config
        st = torch_load(state_path)
        model.load_state_dict(torch_load(out / MODEL_FILE))
        model.to(dev)
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["rng"])
        start_epoch, seconds = int(st["epoch"]), float(st["seconds"])
        history = read_json(out / METRICS_FILE).get("history", [])
    return start_epoch, history, seconds


def _train_epoch(model: SpikingTransformer, opt: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LRScheduler, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 dataset, data, x_tr: torch.Tensor, y_tr: torch.Tensor, dev: torch.device,
                 order: torch.Tensor, rng: np.random.Generator, per_epoch: int, epoch: int,
                 progress: bool) -> tuple[float, int, int]:
    """One epoch over ``per_epoch`` batches of ``order``: (Σ loss·labels, correct, labels) (labels: one per sample,
    or one per token with a per-token readout)."""
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    bar = tqdm(range(0, per_epoch * train_cfg.batch_size, train_cfg.batch_size), desc=f"epoch {epoch + 1}/{train_cfg.epochs}",
               disable=not (progress and sys.stderr.isatty()), leave=False, unit="batch")
    for i in bar:
        idx = order[i:i + train_cfg.batch_size]
        if train_cfg.shift:
            xb = encode(model_cfg, dataset.augment(model_cfg, data.x_train[idx.numpy()], train_cfg.shift, rng))
        else:
            xb = encode(model_cfg, data.x_train[idx.numpy()]) if x_tr is None else x_tr[idx]
        logits, _ = model(xb.to(dev))
        yb = y_tr[idx.to(dev)]
        loss = batch_loss(model, logits, yb)
        if train_cfg.discard_penalty:
            loss = loss + train_cfg.discard_penalty * model.discarded_spikes.float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        project_(model.weights, model_cfg.weights.sparsity)   # keep the fixed non-zero count
        sched.step()
        loss_sum += loss.item() * yb.numel()         # the loss is the mean over the batch's labels
        correct += int((logits.argmax(-1) == yb).sum())
        total += yb.numel()
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    return loss_sum, correct, total


def _save_epoch(out: Path, model: SpikingTransformer, opt: torch.optim.Optimizer,
                sched: torch.optim.lr_scheduler.LRScheduler, epoch: int, seconds: float,
                history: list[dict]) -> None:
    """Weights, train state and metrics after epoch ``epoch + 1``: all three files or none."""
    state_path = out / TRAIN_STATE_FILE
    with deferred_interrupts():                          # the three files of one epoch, or none
        atomic_write(out / MODEL_FILE,
                     lambda p: torch.save({k: v.cpu() for k, v in model.state_dict().items()}, p))
        atomic_write(state_path, lambda p: torch.save({"optimizer": opt.state_dict(),
                                                       "scheduler": sched.state_dict(),
                                                       "rng": torch.get_rng_state(), "epoch": epoch + 1,
                                                       "seconds": seconds}, p))
        write_json(out / METRICS_FILE, {"history": history})


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | os.PathLike,
          progress: bool = True, device: str = "auto",
          checkpoint: bool = False) -> TrainResult:
    """Train (or resume) into ``out_dir``; return final accuracies. Deterministic for a seed.

    ``device``: auto | cpu | cuda (loihi numerics give the same spikes on both);
    ``checkpoint``: recompute each block in backward (less memory, ~1.3× the time).
    The training memory is estimated first (``spikeformer.train.memory``); a run that
    cannot fit raises MemoryError before anything is written."""
    out = Path(out_dir)
    check_model_config(model_cfg)
    config = {"model": model_cfg.to_dict(), "train": asdict(train_cfg)}
    check_out_dir(out, config, canonical_config)
    dataset = datasets.get(model_cfg.data.dataset)
    data = load_dataset(model_cfg)
    if train_cfg.shift:                                 # an error where the dataset has no such augmentation
        dataset.augment(model_cfg, data.x_train[:1], train_cfg.shift, np.random.default_rng(0))
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False       # TF32 would round the integer currents
    torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    lazy = dataset.encode_per_batch                      # else all at once: bool spikes
    x_tr, x_te = (None, None) if lazy else (encode(model_cfg, data.x_train), encode(model_cfg, data.x_test))
    y_tr = torch.from_numpy(data.y_train).to(dev)
    model = SpikingTransformer(model_cfg).to(dev)
    check_training_memory(model, encode(model_cfg, data.x_train[:1]).to(dev), train_cfg.batch_size, checkpoint)
    model.checkpoint_blocks = checkpoint
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    per_epoch = (len(data.y_train) + train_cfg.batch_size - 1) // train_cfg.batch_size
    per_epoch = min(per_epoch, train_cfg.steps_per_epoch or per_epoch)
    steps = train_cfg.epochs * per_epoch
    opt, sched = _optimiser(model, train_cfg, steps)
    start_epoch, history, seconds = _resume(out, model, opt, sched, dev)
    write_json(out / CONFIG_FILE, config)
    write_json(out / SPLIT_FILE, split_record(model_cfg, data))
    gen = torch.Generator().manual_seed(train_cfg.seed)
    for epoch in range(start_epoch, train_cfg.epochs):
        t0 = time.perf_counter()
        gen.manual_seed(train_cfg.seed * 1000 + epoch)
        order = torch.randperm(len(data.y_train), generator=gen)
        rng = np.random.default_rng([train_cfg.seed, epoch])
        loss_sum, correct, total = _train_epoch(model, opt, sched, model_cfg, train_cfg, dataset, data, x_tr,
                                                y_tr, dev, order, rng, per_epoch, epoch, progress)
        seconds += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": loss_sum / total, "train_accuracy": correct / total})
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{train_cfg.epochs}  loss {loss_sum / total:.4f}  "
                       f"train acc {correct / total:.4f}  ({seconds:.0f} s)")
        _save_epoch(out, model, opt, sched, epoch, seconds, history)
    test_acc, bits = evaluate_lm(model, data.x_test if lazy else x_te, data.y_test,
                                 encoder=(lambda xb: encode(model_cfg, xb)) if lazy else None)
    bits = bits if model_cfg.arch.per_token else None
    train_acc = history[-1]["train_accuracy"] if history else float("nan")
    write_json(out / METRICS_FILE, {"history": history, "test_accuracy": test_acc,
                                    **({} if bits is None else {"test_bits_per_byte": bits}),
                                    "epochs": train_cfg.epochs, "seconds": seconds})
    return TrainResult(test_acc, train_acc, train_cfg.epochs, seconds, bits)
