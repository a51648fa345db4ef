"""A sweep's CSV: one typed row per finished point, all of one config fingerprint, rewritten atomically.

``fingerprint(shared)`` = the first 12 hex digits of sha-256(JSON of ``shared``, keys sorted), where
``shared`` is what every point of a sweep has in common (each mode says what that is). A rerun keeps
the rows of the same fingerprint as done and refuses a CSV or a run directory of another config.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sim.system.files import atomic_write
from spikeformer.config.model import ModelConfig, canonical_config
from spikeformer.config.train import TrainConfig
from spikeformer.store.files import CheckpointError, read_json
from spikeformer.store.layout import CONFIG_FILE, TRAIN_STATE_FILE


def fingerprint(shared: dict) -> str:
    """sha-256 (12 hex) of ``shared`` as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:12]


def model_fields(cfg: ModelConfig) -> dict:
    """The model config as the fingerprints take it: ``{flat name: value}`` and ``"extra": {}`` (the flat form
    of the config files the CSVs in docs/ were made with, so that their rows still count as done)."""
    return {**{k: v for k, v in cfg.flat().items() if k not in LATER_FIELDS or v is not False}, "extra": {}}


LATER_FIELDS = ("causal", "per_token")     # added after the CSVs in docs/: left out at their default (False)


@dataclass(frozen=True)
class RowSchema:
    """The columns of a sweep CSV: ``ints`` and ``floats`` typed, ``optional_ints`` int or "", ``optional_floats``
    float or "", the rest text;
    ``key`` = the columns naming a point (rows are written sorted by it); ``name`` names the CSV in errors."""
    name: str
    columns: tuple[str, ...]
    ints: tuple[str, ...]
    floats: tuple[str, ...]
    key: tuple[str, ...]
    optional_ints: tuple[str, ...] = ()
    optional_floats: tuple[str, ...] = ()

    def key_of(self, row: dict) -> tuple:
        return tuple(row[c] for c in self.key)

    def read(self, path: Path) -> list[dict]:
        """Rows of an existing CSV, typed; [] if there is none; CheckpointError naming the file if it is not one."""
        if not path.exists():
            return []
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                missing = set(self.columns) - set(reader.fieldnames or ())
                if missing:
                    raise CheckpointError(f"{path}: not a {self.name} CSV (missing columns {sorted(missing)})")
                rows = [{c: r[c] for c in self.columns} for r in reader]
            for r in rows:
                for c in self.optional_ints:
                    r[c] = int(r[c]) if r[c] else ""
                for c in self.optional_floats:
                    r[c] = float(r[c]) if r[c] else ""
                for c in self.ints:
                    r[c] = int(r[c])
                for c in self.floats:
                    r[c] = float(r[c])
        except (ValueError, UnicodeDecodeError, csv.Error) as e:
            raise CheckpointError(f"{path}: not a readable {self.name} CSV ({e})") from None
        return rows

    def write(self, path: Path, rows: Sequence[dict]) -> Path:
        """Write ``rows`` sorted by ``key`` to ``path`` atomically (temp file + rename)."""
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.columns)
                w.writeheader()
                w.writerows(sorted(rows, key=self.key_of))
        return atomic_write(path, write)


class SweepRows:
    """The finished rows of the CSV at ``path``, keyed by ``schema.key``; all of fingerprint ``config``."""

    def __init__(self, path: Path, schema: RowSchema, config: str) -> None:
        """Read ``path``; CheckpointError naming it if it holds rows of another fingerprint."""
        rows = schema.read(path)
        foreign = [r for r in rows if r["config"] != config]
        if foreign:
            raise CheckpointError(f"{path}: holds runs of a different configuration (fingerprint "
                                  f"{foreign[0]['config']}, requested {config}); use a new --out directory")
        self.path, self.schema, self.config = path, schema, config
        self.done = {schema.key_of(r): r for r in rows}

    def add(self, row: dict) -> dict:
        """Store ``row`` under its key and rewrite the CSV."""
        self.done[self.schema.key_of(row)] = row
        self.save()
        return row

    def save(self) -> Path:
        return self.schema.write(self.path, list(self.done.values()))


def check_run_dir(run_dir: Path, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """CheckpointError naming ``run_dir``/config.json if it holds a checkpoint of another config
    (training would fail mid-sweep)."""
    if (run_dir / TRAIN_STATE_FILE).exists():
        want = json.loads(json.dumps({"model": model_cfg.to_dict(), "train": asdict(train_cfg)}))
        if canonical_config(read_json(run_dir / CONFIG_FILE)) != canonical_config(want):
            raise CheckpointError(f"{run_dir / CONFIG_FILE}: differs from the requested config; "
                                  f"use a new --out directory")
