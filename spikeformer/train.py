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
SIGTERM and SIGHUP held (``sim.signals.deferred_interrupts``), so a signal never
leaves weights of one epoch beside the optimizer state of another. ``train``
resumes from ``train_state.pt``.

``train`` writes only into an empty (or new) directory or one holding this
run's own resumable state (``check_out_dir``): never over another run's files.
"""
from __future__ import annotations

import json
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
import numpy as np
import torch
from tqdm.auto import tqdm

from sim.io import atomic_write
from sim.signals import deferred_interrupts
from spikeformer import datasets
from spikeformer.config import check_fields
from spikeformer.datasets import Split
from spikeformer.memory import check_training_memory
from spikeformer.model import ModelConfig, SpikingTransformer
from spikeformer.sparsity import project_


@dataclass
class TrainConfig:
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


TEMPERATURE_LR_RATIO = 0.02


class CheckpointError(ValueError):
    """A run directory or checkpoint file is missing or unreadable; names the file."""


def write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def torch_load(path: Path) -> dict:
    """torch.load(weights_only=True): refuses pickled code; errors name the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        culprit = next((l.strip() for l in str(e).splitlines() if "Unsupported global" in l), "")
        raise CheckpointError(f"{path}: refused by weights-only loading: it holds pickled objects that are not "
                              f"tensors (possibly code){': ' + culprit if culprit else ''}") from None
    except Exception as e:  # torch raises RuntimeError/EOFError/... for truncated or foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable weights-only checkpoint ({type(e).__name__}: {first})") from None


def load_config(run_dir: Path) -> tuple[ModelConfig, TrainConfig]:
    """The run's config.json, through the one validator (``presets.configs_from_dict``)."""
    from spikeformer.presets import configs_from_dict

    path = Path(run_dir) / "config.json"
    return configs_from_dict(read_json(path), str(path))


def load_model(run_dir: str | os.PathLike) -> SpikingTransformer:
    """The trained model of a run directory (weights-only load)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: run directory not found")
    cfg, _ = load_config(run_dir)
    model = SpikingTransformer(cfg)
    state = torch_load(run_dir / "model.pt")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{run_dir / 'model.pt'}: does not match config.json ({str(e).splitlines()[0]})") from None
    model.eval()
    return model


def load_dataset(model_cfg: ModelConfig) -> Split:
    """The train/test split of the model's dataset (``spikeformer.datasets``) under its split settings."""
    return datasets.get(model_cfg.dataset).split(model_cfg)


def encode(model_cfg: ModelConfig, samples: np.ndarray) -> torch.Tensor:
    """The model's input spikes (n, T, tokens, features) bool from its dataset's encoder."""
    return torch.from_numpy(np.ascontiguousarray(datasets.get(model_cfg.dataset).encode(model_cfg, samples)))


SPLIT_FILE = "split.json"


def split_record(model_cfg: ModelConfig, data: Split) -> dict:
    return {"dataset": model_cfg.dataset, "data_path": model_cfg.data_path, "split_seed": model_cfg.split_seed,
            "test_fraction": model_cfg.test_fraction, "train": int(len(data.y_train)), "test": int(len(data.y_test)),
            "test_fingerprint": datasets.fingerprint(data)}


def run_split(run_dir: str | os.PathLike, model_cfg: ModelConfig) -> Split:
    """The run's own split; CheckpointError if the data no longer gives the test set recorded in split.json."""
    data = load_dataset(model_cfg)
    path = Path(run_dir) / SPLIT_FILE
    if path.exists():                                   # runs from before split.json: the config alone
        want, got = read_json(path), split_record(model_cfg, data)
        if want != got:
            diff = next(k for k in got if want.get(k) != got[k])
            raise CheckpointError(f"{path}: the run's test set was {want.get('test')} samples with fingerprint "
                                  f"{want.get('test_fingerprint')}, its data now gives {got['test']} with "
                                  f"{got['test_fingerprint']} ({diff} differs): the data changed since training")
    return data


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
    model.eval()
    dev = next(model.parameters()).device
    pred = torch.cat([model(x[i:i + batch_size].to(dev))[0].argmax(dim=1).cpu() for i in range(0, len(x), batch_size)])
    return float((pred.numpy() == y).mean())


@dataclass
class TrainResult:
    test_accuracy: float
    train_accuracy: float
    epochs: int
    seconds: float


STATE_FILES = ("config.json", "split.json", "model.pt", "train_state.pt", "metrics.json")
# what the later steps write into a run directory (spikeformer.pipeline, the CLI's export and report)
OUTPUT_FILES = ("graph.aer.npz", "simulation.json", "simulation.npz", "report.json", "report.png", "lava.json",
                "model.nir", "model.net.h5")


def check_out_dir(out: Path, config: dict) -> None:
    """Refuse ``out`` unless it is new, empty, or this run's own resumable state; nothing is written here.

    Own state: a config.json equal to ``config`` and split.json (a run that stopped before its
    first checkpoint), plus model.pt, train_state.pt and metrics.json when train_state.pt
    exists; the later steps' OUTPUT_FILES only beside a finished checkpoint (resuming
    an unfinished one would change the weights under them). Leftover temporary files
    of an interrupted write of a state file are removed."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out}: is an existing file, not a run directory; give a new or empty directory")
    if not out.is_dir():
        return
    names = sorted(p.name for p in out.iterdir())
    temps = [n for n in names if n.endswith(".tmp") and n.startswith(STATE_FILES)]
    names = [n for n in names if n not in temps]
    if not names:
        return
    same = lambda: read_json(out / "config.json") == json.loads(json.dumps(config))  # noqa: E731
    data_path = (config.get("model") or {}).get("data_path")
    if data_path and Path(data_path).resolve().parent == out.resolve():   # the run's own data (spikeformer.api)
        names = [n for n in names if n != Path(data_path).name]
        if not names:
            return
    if "train_state.pt" in names and "config.json" in names:
        if not same():
            raise CheckpointError(f"{out / 'config.json'}: differs from the requested config; "
                                  f"use a new --out directory")
        finished = int(torch_load(out / "train_state.pt").get("epoch", -1)) == config["train"]["epochs"]
        foreign = [n for n in names if n not in STATE_FILES and not (finished and n in OUTPUT_FILES)]
    else:                                   # no checkpoint: at most this config's config.json (and split.json)
        foreign = [n for n in names if n not in ("config.json", "split.json")]
        if not foreign and ("config.json" not in names or not same()):
            foreign = names
    if foreign:
        raise CheckpointError(f"--out {out}: holds files that are not this run's resumable state "
                              f"({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''}); "
                              f"refusing to overwrite them: give a new or empty directory")
    for n in temps:
        (out / n).unlink(missing_ok=True)


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | os.PathLike,
          progress: bool = True, device: str = "auto",
          checkpoint: bool = False) -> TrainResult:
    """Train (or resume) into ``out_dir``; return final accuracies. Deterministic for a seed.

    ``device``: auto | cpu | cuda (loihi numerics give the same spikes on both);
    ``checkpoint``: recompute each block in backward (less memory, ~1.3× the time).
    The training memory is estimated first (``spikeformer.memory``); a run that
    cannot fit raises MemoryError before anything is written."""
    out = Path(out_dir)
    config = {"model": model_cfg.to_dict(), "train": asdict(train_cfg)}
    check_out_dir(out, config)
    dataset = datasets.get(model_cfg.dataset)
    data = load_dataset(model_cfg)
    if train_cfg.shift:                                 # an error where the dataset has no such augmentation
        dataset.augment(model_cfg, data.x_train[:1], train_cfg.shift, np.random.default_rng(0))
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False       # TF32 would round the integer currents
    torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    x_tr, x_te = encode(model_cfg, data.x_train), encode(model_cfg, data.x_test)     # bool spikes
    y_tr = torch.from_numpy(data.y_train).to(dev)
    model = SpikingTransformer(model_cfg).to(dev)
    check_training_memory(model, x_tr[:1].to(dev), train_cfg.batch_size, checkpoint)
    model.checkpoint_blocks = checkpoint
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    # weights live in integer mantissa units (lr ~ 0.5); the log-temperature wants a small step
    groups = [{"params": [p for n, p in model.named_parameters() if n != "log_temperature"]},
              {"params": [model.log_temperature], "lr": train_cfg.lr * TEMPERATURE_LR_RATIO}]
    opt = torch.optim.Adam(groups, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    per_epoch = (len(x_tr) + train_cfg.batch_size - 1) // train_cfg.batch_size
    per_epoch = min(per_epoch, train_cfg.steps_per_epoch or per_epoch)
    steps = train_cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[train_cfg.lr, train_cfg.lr * TEMPERATURE_LR_RATIO],
                                                total_steps=steps, pct_start=0.15)
    start_epoch, history, seconds = 0, [], 0.0
    state_path = out / "train_state.pt"
    if state_path.exists():                                 # check_out_dir: config.json equals config
        st = torch_load(state_path)
        model.load_state_dict(torch_load(out / "model.pt"))
        model.to(dev)
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["rng"])
        start_epoch, seconds = int(st["epoch"]), float(st["seconds"])
        history = read_json(out / "metrics.json").get("history", [])
    write_json(out / "config.json", config)
    write_json(out / SPLIT_FILE, split_record(model_cfg, data))
    gen = torch.Generator().manual_seed(train_cfg.seed)
    for epoch in range(start_epoch, train_cfg.epochs):
        t0 = time.perf_counter()
        gen.manual_seed(train_cfg.seed * 1000 + epoch)
        order = torch.randperm(len(x_tr), generator=gen)
        rng = np.random.default_rng([train_cfg.seed, epoch])
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(range(0, per_epoch * train_cfg.batch_size, train_cfg.batch_size), desc=f"epoch {epoch + 1}/{train_cfg.epochs}",
                   disable=not progress, leave=False, unit="batch")
        for i in bar:
            idx = order[i:i + train_cfg.batch_size]
            xb = (encode(model_cfg, dataset.augment(model_cfg, data.x_train[idx.numpy()], train_cfg.shift, rng))
                  if train_cfg.shift else x_tr[idx])
            logits, _ = model(xb.to(dev))
            loss = torch.nn.functional.cross_entropy(model.loss_logits(logits), y_tr[idx.to(dev)])
            if train_cfg.discard_penalty:
                loss = loss + train_cfg.discard_penalty * model.discarded_spikes.float().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            project_(model.weights, model_cfg.weight_sparsity)   # keep the fixed non-zero count
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_tr[idx.to(dev)]).sum())
            total += len(idx)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
        seconds += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": loss_sum / total, "train_accuracy": correct / total})
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{train_cfg.epochs}  loss {loss_sum / total:.4f}  "
                       f"train acc {correct / total:.4f}  ({seconds:.0f} s)")
        with deferred_interrupts():                          # the three files of one epoch, or none
            atomic_write(out / "model.pt",
                         lambda p: torch.save({k: v.cpu() for k, v in model.state_dict().items()}, p))
            atomic_write(state_path, lambda p: torch.save({"optimizer": opt.state_dict(),
                                                           "scheduler": sched.state_dict(),
                                                           "rng": torch.get_rng_state(), "epoch": epoch + 1,
                                                           "seconds": seconds}, p))
            write_json(out / "metrics.json", {"history": history})
    test_acc = evaluate(model, x_te, data.y_test)
    train_acc = history[-1]["train_accuracy"] if history else float("nan")
    write_json(out / "metrics.json", {"history": history, "test_accuracy": test_acc,
                                      "epochs": train_cfg.epochs, "seconds": seconds})
    return TrainResult(test_acc, train_acc, train_cfg.epochs, seconds)
