"""``pycode``: the bytes of this interpreter's standard-library ``.py`` files, as next-byte windows.

Corpus: every ``*.py`` under ``sysconfig.get_paths()["stdlib"]`` outside folders named ``test``,
``tests``, ``idle_test`` and ``site-packages``, whose bytes all lie in the vocabulary [0, V)
(V = ``config.classes``: 128 keeps the ASCII files — CPython 3.11.7: 717 of 734 files, 10.94 MB —
256 keeps them all). Files sorted by their path relative to that folder.

Split by file: a permutation of the files by ``np.random.default_rng(seed)`` (seed
``config.split_seed``, default 0); the first ⌈f·files⌉ (f = ``config.test_fraction``, default 0.1)
are held out. ``split.json`` records the interpreter version and every file's name and
sha-256 (16 hex), so a run evaluated on another interpreter's standard library is an error
naming the first file that differs (``spikeformer.runs.rundir.run_split``).

Samples: windows of N = ``config.tokens`` input bytes x_n and their next bytes y_n = x_{n+1}
(labels (n, N)). Test: the held-out files' bytes concatenated, cut into consecutive
windows (stride N; the tail shorter than N + 1 bytes dropped) — every held-out byte after the
first is a target once. Train: ``TRAIN_WINDOWS`` windows at offsets drawn by
``np.random.default_rng([seed, 1])`` from the training files' concatenated bytes.

Encoding (``spikeformer.encode.bytes``, ``config.encoder = "onehot"``): byte one-hot (V) and position
one-hot (N), F = V + N, every tick. A language model: ``config.causal`` and ``config.per_token`` are required.
"""
from __future__ import annotations

import hashlib
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spikeformer.data.base import Dataset, Split, register
from spikeformer.encode.bytes import byte_features, encode_bytes

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


EXCLUDED_FOLDERS = frozenset({"test", "tests", "idle_test", "site-packages"})


VOCABULARIES = (128, 256)


TEST_FRACTION = 0.1


TRAIN_WINDOWS = 65536


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@lru_cache(maxsize=4)
def corpus(vocab: int) -> tuple[tuple[str, bytes], ...]:
    """(relative path, bytes) of the corpus files (module docstring), sorted by path."""
    root = stdlib_root()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if EXCLUDED_FOLDERS & set(rel.parts[:-1]):
            continue
        data = path.read_bytes()
        if data and max(data) >= vocab:
            continue
        out.append((rel.as_posix(), data))
    if not out:
        raise ValueError(f"dataset pycode: no .py files under {root}")
    return tuple(out)


def split_files(names: list[str], seed: int, fraction: float) -> set[str]:
    """The held-out file names: the first ⌈fraction·files⌉ of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:max(1, int(np.ceil(fraction * len(names))))]}


def windows(stream: np.ndarray, tokens: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, N) uint8, y (n, N) int64): x = stream[o : o+N], y = stream[o+1 : o+N+1] for each offset o."""
    idx = offsets[:, None] + np.arange(tokens + 1)
    w = stream[idx]
    return w[:, :-1].copy(), w[:, 1:].astype(np.int64)


def load_pycode_split(vocab: int, tokens: int, seed: int = 0, fraction: float = TEST_FRACTION,
                      train_windows: int = TRAIN_WINDOWS) -> Split:
    files = corpus(vocab)
    test = split_files([n for n, _ in files], seed, fraction)
    held = np.frombuffer(b"".join(d for n, d in files if n in test), np.uint8)
    train = np.frombuffer(b"".join(d for n, d in files if n not in test), np.uint8)
    x_te, y_te = windows(held, tokens, np.arange(0, len(held) - tokens, tokens))
    offsets = np.random.default_rng([seed, 1]).integers(0, len(train) - tokens, train_windows)
    x_tr, y_tr = windows(train, tokens, np.sort(offsets))
    record = {"python": sys.version.split()[0], "test_files": sorted(test),
              "files": {n: hashlib.sha256(d).hexdigest()[:16] for n, d in files}}
    return Split(x_tr, y_tr, x_te, y_te, record)


class PyCode(Dataset):
    name = "pycode"
    encode_per_batch = True

    def defaults(self, model: dict) -> dict:
        model.setdefault("tokens", 64)
        model.setdefault("classes", 128)
        model.setdefault("features", byte_features(model["classes"], model["tokens"]))
        model.setdefault("encoder", "onehot")
        model.setdefault("causal", True)
        model.setdefault("per_token", True)
        return model

    def check(self, cfg: "ModelConfig") -> None:
        a = cfg.arch
        if a.classes not in VOCABULARIES:
            raise ValueError(f"config.classes must be one of {VOCABULARIES} for the pycode dataset (the byte "
                             f"vocabulary), got {a.classes}")
        if cfg.encoder.kind != "onehot":
            raise ValueError(f"config.encoder must be 'onehot' for the pycode dataset, got {cfg.encoder.kind!r}")
        if a.features != byte_features(a.classes, a.tokens):
            raise ValueError(f"config.features ({a.features}) must be classes + tokens = "
                             f"{byte_features(a.classes, a.tokens)} for the pycode dataset")
        for name in ("causal", "per_token"):
            if not getattr(a, name):
                raise ValueError(f"config.{name} must be true for the pycode dataset (a next-byte language model)")

    def split(self, cfg: "ModelConfig") -> Split:
        d = cfg.data
        return load_pycode_split(cfg.arch.classes, cfg.arch.tokens, 0 if d.split_seed is None else d.split_seed,
                                 TEST_FRACTION if d.test_fraction is None else d.test_fraction)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        return encode_bytes(x, cfg.arch.timesteps, cfg.arch.classes)


register(PyCode())
