"""``spikes``: the user's dense spike arrays, already encoded: an ``.npz`` at ``config.data_path`` with

    spikes   (n, T, tokens, features)  bool or 0/1 integers
    labels   (n,)                      integers ≥ 0
    is_test  (n,) bool, optional       the file's own split

config.timesteps, tokens and features must equal T, tokens and features (defaults: the file's).
Split: the file's own when it has one, else (or with config.split_seed / test_fraction set)
stratified, seed split_seed or 0, fraction test_fraction or 0.2. ``spikeformer.app.api`` writes its
arrays in this format into the run directory.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spikeformer.data.base import DEFAULT_TEST_FRACTION, Dataset, Split, register, resplit, split_source, stratified
from spikeformer.data.files import DataFileError, check_classes, labels_array, stamp, test_mask

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


@lru_cache(maxsize=4)
def _read(key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    path = Path(key[0])
    if path.suffix != ".npz" or not path.is_file():
        raise DataFileError(path, None, "config.data_path must be an .npz file for the spikes dataset")
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in ("spikes", "labels", "is_test") if k in z.files}
    except Exception as e:
        raise DataFileError(path, None, f"not a readable .npz file ({type(e).__name__}: {e})") from None
    for k in ("spikes", "labels"):
        if k not in a:
            raise DataFileError(path, k, f"missing (the file has {sorted(a)})")
    x = a["spikes"]
    if x.ndim != 4 or x.dtype.kind not in "biu" or 0 in x.shape:
        raise DataFileError(path, "spikes", f"expected (n, T, tokens, features) bool, got dtype {x.dtype} "
                                            f"with shape {x.shape}")
    if x.dtype.kind != "b":
        if not np.isin(x, (0, 1)).all():
            raise DataFileError(path, "spikes", "values must be 0 or 1")
        x = x.astype(bool)
    y = labels_array(path, a["labels"], len(x))
    for arr in (x, y):
        arr.flags.writeable = False
    return x, y, test_mask(path, a.get("is_test"), len(x))


def read_spikes(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(spikes bool, labels, is_test or None) of the file (cached while it is unchanged)."""
    return _read(stamp(path))


class Spikes(Dataset):
    name = "spikes"
    needs_path = True

    def defaults(self, model: dict) -> dict:
        if isinstance(model.get("data_path"), str):
            model["data_path"] = str(Path(model["data_path"]).resolve())
            x, y, _ = read_spikes(model["data_path"])
            for k, v in zip(("timesteps", "tokens", "features"), x.shape[1:]):
                model.setdefault(k, int(v))
            model.setdefault("classes", int(y.max()) + 1)
        return model

    def split(self, cfg: "ModelConfig") -> Split:
        a, d = cfg.arch, cfg.data
        x, y, m = read_spikes(d.data_path)
        shape = (a.timesteps, a.tokens, a.features)
        for name, want, got in zip(("timesteps", "tokens", "features"), x.shape[1:], shape):
            if want != got:
                raise ValueError(f"config.{name} ({got}) must equal {want}, the spikes of {d.data_path} "
                                 f"(n, T, tokens, features) = {x.shape}")
        check_classes(d.data_path, y, a.classes, a.dim)
        if m is None:
            return _indexed(stratified(np.arange(len(y)), y,
                                       DEFAULT_TEST_FRACTION if d.test_fraction is None else d.test_fraction,
                                       0 if d.split_seed is None else d.split_seed,
                                       split_source(cfg, d.data_path)), x)
        return _indexed(resplit(Split(np.flatnonzero(~m), y[~m], np.flatnonzero(m), y[m]), cfg), x)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        return np.asarray(x, bool)


def _indexed(s: Split, x: np.ndarray) -> Split:
    return Split(x[s.x_train], s.y_train, x[s.x_test], s.y_test)


register(Spikes())
