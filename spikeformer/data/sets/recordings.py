"""``recordings``: the user's event recordings (``config.data_path``), tonic-style, and their patch encoder.

A recording is a structured array with fields ``x``, ``y`` (int16), ``t`` (int64, µs), ``p`` (bool)
— tonic's layout; any integer x, y, t and a 0/1 integer p are accepted — on a sensor of W×H
pixels, with an integer label ≥ 0. ``data_path`` is one of

* an ``.npz`` or ``.h5``/``.hdf5`` file with ``events`` (every recording, concatenated),
  ``lengths`` (n,) events per recording, ``labels`` (n,), ``sensor_size`` [W, H] (or [W, H, 2]),
  optionally ``is_test`` (n,) bool (the file's own split) and ``duration_us``;
* a directory of recordings — ``NAME.npy`` (a structured array as above) or ``NAME.aedat4``
  (an iniVation AEDAT4 file, read with the ``aedat`` package: its first event stream) — with
  ``dataset.json``: ``{"sensor_size": [W, H], "labels": {"NAME.npy": 3, …}, "test": [names]?,
  "duration_us": D?}``. Every recording in the directory needs a label.

Time starts at each recording's first event; D (``duration_us``) defaults to the longest
recording's span + 1 µs. Encoding (``encode_recordings``): T ticks, tick ⌊t·T/D⌋; tokens are
P×P patches in a ⌈W/P⌉×⌈H/P⌉ grid, row-major (``config.tokens`` picks the smallest P giving
that many; default: the smallest P with ≤ 64 tokens); feature 2·((y mod P)·P + x mod P) + p fires
when an event of polarity p fell on that pixel in that tick, then the token's one-hot position:
F = 2P² + N. On a sensor that P divides this is ``spikeformer.data.event_datasets.encode_events``.
Split: the file's own (``is_test`` / ``test``) when it has one, else (or with config.split_seed /
test_fraction set) stratified, seed split_seed or 0, fraction test_fraction or 0.2.
Errors name the file and the field (``DataFileError``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from spikeformer.data.base import DEFAULT_TEST_FRACTION, Dataset, Split, register, resplit, split_source, stratified
from spikeformer.data.files import DataFileError, check_classes, int_array, labels_array, stamp, test_mask
from spikeformer.encode.recordings import encode_recordings, grid, patch_side, token_features

if TYPE_CHECKING:
    from spikeformer.config.model import ModelConfig


TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


INDEX = "dataset.json"


SUFFIXES = (".npy", ".aedat4")


MAX_DEFAULT_TOKENS = 64


@dataclass(frozen=True)
class Recordings:
    """Checked recordings: streams (object array of TONIC_DTYPE arrays, t from 0), labels, own split."""

    streams: np.ndarray
    labels: np.ndarray
    is_test: np.ndarray | None
    width: int
    height: int
    duration_us: int


def checked_events(file: object, ev: object, width: int, height: int, what: str = "events") -> np.ndarray:
    """``ev`` as TONIC_DTYPE with t from the first event; DataFileError naming the field otherwise."""
    if not isinstance(ev, np.ndarray) or ev.dtype.names is None:
        raise DataFileError(file, what, f"expected a structured array with fields x, y, t, p, got "
                                        f"{getattr(ev, 'dtype', type(ev).__name__)}")
    fields = {(ev.dtype.fields[n][2] if len(ev.dtype.fields[n]) > 2 else None) or n: n for n in ev.dtype.names}
    fields.update({n: n for n in ev.dtype.names})
    for f in ("x", "y", "t", "p"):
        if f not in fields:
            raise DataFileError(file, f, f"missing from the {what} array (fields: {list(ev.dtype.names)})")
        kind = ev.dtype[fields[f]].kind
        if kind not in ("iub" if f == "p" else "iu") or ev.ndim != 1:
            raise DataFileError(file, f, f"dtype {ev.dtype[fields[f]]} (expected {TONIC_DTYPE[f]}: an integer"
                                         f"{' or bool' if f == 'p' else ''} type) in a 1-d array")
    if len(ev) == 0:
        raise DataFileError(file, what, "empty recording (no events)")
    out = np.empty(len(ev), TONIC_DTYPE)
    for f, lo, hi in (("x", 0, width), ("y", 0, height)):
        v = ev[fields[f]].astype(np.int64)
        if v.min() < lo or v.max() >= hi:
            bad = v[(v < lo) | (v >= hi)][0]
            raise DataFileError(file, f, f"event at {f} = {bad} outside the {width}×{height} sensor "
                                         f"(sensor_size [{width}, {height}])")
        out[f] = v
    p = ev[fields["p"]]
    if p.dtype.kind != "b" and not np.isin(p, (0, 1)).all():
        raise DataFileError(file, "p", "polarity must be bool or 0/1")
    t = ev[fields["t"]].astype(np.int64)
    out["t"], out["p"] = t - t.min(), p.astype(bool)
    return out


def read_aedat4(path: Path) -> tuple[np.ndarray, int, int]:
    """(events of the first event stream, width, height) of an AEDAT4 file, via ``aedat``."""
    import aedat

    try:
        dec = aedat.Decoder(str(path))
        streams = {i: s for i, s in dec.id_to_stream().items() if s.get("type") == "events"}
        if not streams:
            raise DataFileError(path, "events", "the AEDAT4 file has no event stream")
        sid = min(streams)
        parts = [p["events"] for p in dec if p.get("stream_id") == sid and "events" in p]
    except DataFileError:
        raise
    except Exception as e:                       # aedat raises RuntimeError/OSError on truncated or foreign files
        raise DataFileError(path, None, f"not a readable AEDAT4 file ({type(e).__name__}: "
                                        f"{str(e).strip() or 'no detail'})") from None
    ev = np.concatenate(parts) if parts else np.empty(0, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    return ev, int(streams[sid]["width"]), int(streams[sid]["height"])


def _sensor(file: object, value: object) -> tuple[int, int]:
    s = np.asarray(value)
    if s.dtype.kind not in "iu" or s.shape not in ((2,), (3,)) or (s[:2] < 1).any():
        raise DataFileError(file, "sensor_size", f"expected [W, H] or [W, H, 2] positive integers, got {value!r}")
    return int(s[0]), int(s[1])


def _finish(file: object, streams: list[np.ndarray], labels: np.ndarray, is_test: np.ndarray | None, width: int,
            height: int, duration: object) -> Recordings:
    if not streams:
        raise DataFileError(file, "labels", "no recordings")
    span = max(int(s["t"].max()) for s in streams)
    if duration is None:
        duration_us = span + 1
    else:
        duration_us = int(int_array(file, "duration_us", duration, ndim=0))
        if duration_us <= span:
            raise DataFileError(file, "t", f"a recording spans {span} µs, not below duration_us = {duration_us}")
    out = np.empty(len(streams), dtype=object)
    for i, s in enumerate(streams):
        s.flags.writeable = False
        out[i] = s
    return Recordings(out, labels, is_test, width, height, duration_us)


def _read_arrays(path: Path) -> dict:
    """The named arrays of an .npz / .h5 file (absent names: missing)."""
    names = ("events", "lengths", "labels", "sensor_size", "is_test", "duration_us")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in names if k in z.files}
        import h5py
        with h5py.File(path, "r") as f:
            return {k: f[k][()] for k in names if k in f}
    except Exception as e:
        raise DataFileError(path, None, f"not a readable {path.suffix} file ({type(e).__name__}: "
                                        f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no detail'})") from None


def _read_file(path: Path) -> Recordings:
    a = _read_arrays(path)
    for k in ("events", "lengths", "labels", "sensor_size"):
        if k not in a:
            raise DataFileError(path, k, f"missing (the file has {sorted(a)})")
    width, height = _sensor(path, a["sensor_size"])
    lengths = int_array(path, "lengths", a["lengths"])
    events = a["events"]
    if len(lengths) and (lengths.min() < 0 or lengths.sum() != len(events)):
        raise DataFileError(path, "lengths", f"must be ≥ 0 and sum to the {len(events)} events, "
                                             f"sum to {lengths.sum()}")
    labels = labels_array(path, a["labels"], len(lengths))
    streams = []
    for i, part in enumerate(np.split(events, np.cumsum(lengths)[:-1]) if len(lengths) else []):
        streams.append(checked_events(path, part, width, height, f"events (recording {i})"))
    return _finish(path, streams, labels, test_mask(path, a.get("is_test"), len(labels)), width, height,
                   a.get("duration_us"))


def _read_dir(path: Path) -> Recordings:
    index = path / INDEX
    if not index.is_file():
        raise DataFileError(index, None, "missing: a directory of recordings needs dataset.json with "
                                         "sensor_size and labels")
    try:
        meta = json.loads(index.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise DataFileError(index, None, f"not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise DataFileError(index, None, "expected an object with sensor_size and labels")
    if "sensor_size" not in meta:
        raise DataFileError(index, "sensor_size", "missing")
    width, height = _sensor(index, meta["sensor_size"])
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        raise DataFileError(index, "labels", "missing or not an object {recording file name: integer label}")
    files = sorted(f.name for f in path.iterdir() if f.suffix in SUFFIXES)
    for name in files:
        if name not in labels:
            raise DataFileError(index, "labels", f"no label for recording {name!r}")
    for name, label in labels.items():
        if name not in files:
            raise DataFileError(index, "labels", f"recording {name!r} is not in {path} (files: .npy, .aedat4)")
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise DataFileError(index, "labels", f"label of {name!r} must be an integer ≥ 0, got {label!r}")
    test = meta.get("test")
    if test is not None and (not isinstance(test, list) or any(t not in labels for t in test)):
        raise DataFileError(index, "test", "must be a list of recording names that have labels")
    streams = []
    for name in files:
        f = path / name
        if f.suffix == ".aedat4":
            ev, w, h = read_aedat4(f)
            if w > width or h > height:
                raise DataFileError(f, "sensor_size", f"the AEDAT4 stream is {w}×{h}, larger than the "
                                                      f"{width}×{height} of {INDEX}")
        else:
            try:
                ev = np.load(f, allow_pickle=False)
            except Exception as e:
                raise DataFileError(f, None, f"not a readable .npy file ({type(e).__name__}: {e})") from None
        streams.append(checked_events(f, ev, width, height))
    y = np.array([labels[n] for n in files], np.int64)
    is_test = None if test is None else test_mask(index, np.isin(files, test), len(files), "test")
    return _finish(index, streams, y, is_test, width, height, meta.get("duration_us"))


@lru_cache(maxsize=4)
def _read(key: tuple) -> Recordings:
    path = Path(key[0])
    if path.is_dir():
        return _read_dir(path)
    if path.suffix not in (".npz", ".h5", ".hdf5"):
        raise DataFileError(path, None, "config.data_path must be a directory of recordings or an .npz, .h5 or "
                                        ".hdf5 file")
    return _read_file(path)


def read_recordings(path: str | Path) -> Recordings:
    """The checked recordings at ``path`` (cached while the files are unchanged)."""
    return _read(stamp(path))


def save_recordings(path: str | Path, streams: Sequence[np.ndarray], labels: Sequence[int],
                    sensor_size: tuple[int, int], is_test: Sequence[bool] | None = None,
                    duration_us: int | None = None) -> Path:
    """Write recordings (any structured arrays with x, y, t, p) in this format: ``.npz``, ``.h5`` or a directory."""
    path = Path(path)
    ev = [np.asarray(s) for s in streams]
    conv = []
    for s in ev:
        c = np.empty(len(s), TONIC_DTYPE)
        for f in TONIC_DTYPE.names:
            c[f] = s[f]
        conv.append(c)
    arrays = {"lengths": np.array([len(c) for c in conv], np.int64), "labels": np.asarray(labels, np.int64),
              "sensor_size": np.array([*sensor_size, 2], np.int64)}
    if is_test is not None:
        arrays["is_test"] = np.asarray(is_test, bool)
    if duration_us is not None:
        arrays["duration_us"] = np.int64(duration_us)
    if path.suffix == ".npz":
        np.savez(path, events=np.concatenate(conv), **arrays)
    elif path.suffix in (".h5", ".hdf5"):
        import h5py
        with h5py.File(path, "w") as f:
            f["events"] = np.concatenate(conv)
            for k, v in arrays.items():
                f[k] = v
    else:
        path.mkdir(parents=True, exist_ok=True)
        names = [f"r{i:05d}.npy" for i in range(len(conv))]
        for n, c in zip(names, conv):
            np.save(path / n, c)
        meta = {"sensor_size": list(map(int, sensor_size)),
                "labels": {n: int(y) for n, y in zip(names, arrays["labels"])}}
        if is_test is not None:
            meta["test"] = [n for n, t in zip(names, arrays["is_test"]) if t]
        if duration_us is not None:
            meta["duration_us"] = int(duration_us)
        (path / INDEX).write_text(json.dumps(meta, indent=1) + "\n")
    return path


class RecordingsDataset(Dataset):
    name = "recordings"
    needs_path = True

    def defaults(self, model: dict) -> dict:
        if isinstance(model.get("data_path"), str):
            model["data_path"] = str(Path(model["data_path"]).resolve())
            rec = read_recordings(model["data_path"])
            if "tokens" not in model:
                counts = (gx * gy for gx, gy in (grid(p, rec.width, rec.height)
                                                 for p in range(1, max(rec.width, rec.height) + 1)))
                model["tokens"] = max(n for n in counts if n <= MAX_DEFAULT_TOKENS)
            model.setdefault("features", token_features(model["tokens"], rec.width, rec.height))
            model.setdefault("classes", int(rec.labels.max()) + 1)
        return model

    def _checked(self, cfg: "ModelConfig") -> Recordings:
        a, path = cfg.arch, cfg.data.data_path
        rec = read_recordings(path)
        want = token_features(a.tokens, rec.width, rec.height)
        if a.features != want:
            raise ValueError(f"config.features ({a.features}) must equal 2·P² + tokens = {want} for "
                             f"{path} (P = {patch_side(a.tokens, rec.width, rec.height)})")
        check_classes(path, rec.labels, a.classes, a.dim)
        return rec

    def split(self, cfg: "ModelConfig") -> Split:
        rec = self._checked(cfg)
        d = cfg.data
        if rec.is_test is None:
            return stratified(rec.streams, rec.labels,
                              DEFAULT_TEST_FRACTION if d.test_fraction is None else d.test_fraction,
                              0 if d.split_seed is None else d.split_seed, split_source(cfg, d.data_path))
        m = rec.is_test
        return resplit(Split(rec.streams[~m], rec.labels[~m], rec.streams[m], rec.labels[m]), cfg)

    def encode(self, cfg: "ModelConfig", x: np.ndarray) -> np.ndarray:
        rec = self._checked(cfg)
        return encode_recordings(x, cfg.arch.timesteps, cfg.arch.tokens, rec.width, rec.height, rec.duration_us)


register(RecordingsDataset())
