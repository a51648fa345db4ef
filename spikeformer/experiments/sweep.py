"""Width sweep: one model per HD code width D at a fixed number of active bits k.

For every D the input is the sparse binary HD code of ``spikeformer.hd`` (D
dimensions, exactly k ones per token, ``features = hd_dim = D``); everything
after the embedding (model width ``dim``, depth, heads, T) is the base config's
and does not depend on D. Per inference, with N tokens, T ticks, S stream
populations fed by the embedding (``depth·2 + 1``) and f_i = non-zeros in column
i of W_emb (≤ dim)::

    input synaptic ops   = T · Σ_tokens Σ_{i active} S · f_i   ≤ T · N · k · S · dim      (independent of D)
    trainable parameters = D · dim + (D-independent rest)                                 (linear in D)

so synaptic ops stay flat while parameters grow with D; the downstream spike
counts are measured, not assumed.

Layout of ``out_dir``::

    d{D}/        a run directory per D (train → convert → simulate; train resumes from checkpoints)
    sweep.csv    one row per finished D (``COLUMNS``), rewritten atomically after every D
    sweep.png    accuracy, synaptic ops / inference, parameters against D (``sim.plots.sweep_plot``)

A rerun skips every D whose row exists with the same ``config`` fingerprint
(sha-256 of the base model + train config, k and samples; D excluded).
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from sim.system.files import atomic_write
from spikeformer.config.train import TrainConfig
from spikeformer.runs.rundir import load_model
from spikeformer.store.files import CheckpointError, read_json

CSV_FILE = "sweep.csv"


PNG_FILE = "sweep.png"


COLUMNS = ("dim", "active_bits", "accuracy", "model_accuracy", "agreement_with_model",
           "synaptic_ops_per_inference", "spikes_per_inference", "parameters", "synapses",
           "samples", "epochs", "train_seconds", "config")


INT_COLUMNS = ("dim", "active_bits", "parameters", "synapses", "samples", "epochs")


FLOAT_COLUMNS = ("accuracy", "model_accuracy", "agreement_with_model", "synaptic_ops_per_inference",
                 "spikes_per_inference", "train_seconds")


def parse_dims(text: str) -> list[int]:
    """``"256,1024,4096"`` → [256, 1024, 4096]; ValueError naming ``--dims`` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--dims: expected comma-separated positive integers like 256,1024,4096, "
                         f"got {text!r}") from None
    return dims


def check_sweep(dims: Sequence[int], active_bits: int, samples: int | None, n_test: int) -> None:
    """Validate the sweep's own inputs before anything is trained; errors name the option."""
    if not isinstance(active_bits, int) or active_bits < 1:
        raise ValueError(f"--active-bits must be a positive integer, got {active_bits!r}")
    if not dims:
        raise ValueError("--dims: give at least one width D")
    for d in dims:
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"--dims: every D must be a positive integer, got {d!r}")
        if d < active_bits:
            raise ValueError(f"--dims: D={d} is smaller than --active-bits={active_bits}: "
                             f"a code cannot have more active bits than dimensions")
    dup = sorted({d for d in dims if list(dims).count(d) > 1})
    if dup:
        raise ValueError(f"--dims: D={dup[0]} is given more than once")
    if samples is not None and not (isinstance(samples, int) and 1 <= samples <= n_test):
        raise ValueError(f"--samples must be in [1, {n_test}], got {samples!r}")


def dim_config(model_cfg: Any, dim: int, active_bits: int) -> Any:
    """The base model config with the HD encoder at hd_dim = features = ``dim``, hd_active = ``active_bits``."""
    return replace(model_cfg, encoder="hd", hd_dim=dim, hd_active=active_bits, features=dim)


def fingerprint(model_cfg: Any, train_cfg: TrainConfig, active_bits: int, samples: int | None) -> str:
    """sha-256 (12 hex) of the config shared by all D: model (without hd_dim, features), train, k, samples."""
    model = {k: v for k, v in dim_config(model_cfg, active_bits, active_bits).to_dict().items()
             if k not in ("hd_dim", "features")}
    blob = json.dumps({"model": model, "train": asdict(train_cfg), "samples": samples}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def read_csv(path: Path, columns: Sequence[str], ints: Sequence[str], floats: Sequence[str], what: str,
             optional_ints: Sequence[str] = ()) -> list[dict]:
    """Rows of an existing ``what`` CSV with ``columns``, typed (``optional_ints``: int or "");
    [] if there is none; CheckpointError naming the file if it is not one."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = set(columns) - set(reader.fieldnames or ())
            if missing:
                raise CheckpointError(f"{path}: not a {what} CSV (missing columns {sorted(missing)})")
            rows = [{c: r[c] for c in columns} for r in reader]
        for r in rows:
            for c in optional_ints:
                r[c] = int(r[c]) if r[c] else ""
            for c in ints:
                r[c] = int(r[c])
            for c in floats:
                r[c] = float(r[c])
    except (ValueError, UnicodeDecodeError, csv.Error) as e:
        raise CheckpointError(f"{path}: not a readable {what} CSV ({e})") from None
    return rows


def read_rows(path: Path) -> list[dict]:
    """Rows of an existing sweep CSV (typed); CheckpointError naming the file if it is not one."""
    return read_csv(path, COLUMNS, INT_COLUMNS, FLOAT_COLUMNS, "sweep")


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` sorted by D to ``path`` atomically (temp file + rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(sorted(rows, key=lambda r: r["dim"]))
    return atomic_write(path, write)


def synops_ratio(rows: Sequence[dict]) -> float:
    """max / min synaptic ops per inference over ``rows``."""
    ops = [r["synaptic_ops_per_inference"] for r in rows]
    return max(ops) / min(ops) if ops and min(ops) > 0 else float("inf")


def run_dim(run_dir: Path, model_cfg: Any, train_cfg: TrainConfig, samples: int | None, progress: bool) -> dict:
    """Train (or resume), convert and simulate one width; the measured figures of its CSV row."""
    from spikeformer.runs.steps import convert_run, simulate_run
    from spikeformer.train.trainer import train

    tr = train(model_cfg, train_cfg, run_dir, progress=progress)
    cv = convert_run(run_dir)
    sm = simulate_run(run_dir, samples, progress=progress)
    params = sum(p.numel() for p in load_model(run_dir).parameters())
    return {"dim": model_cfg.hd_dim, "active_bits": model_cfg.hd_active, "accuracy": sm["accuracy"],
            "model_accuracy": sm["model_accuracy"], "agreement_with_model": sm["agreement_with_model"],
            "synaptic_ops_per_inference": sm["synaptic_ops_per_inference"],
            "spikes_per_inference": sm["spikes_per_inference"], "parameters": int(params),
            "synapses": int(cv["synapses"]), "samples": sm["samples"], "epochs": tr.epochs,
            "train_seconds": tr.seconds}


def sweep(dims: Sequence[int], active_bits: int, out_dir: str | Path, model_cfg: Any, train_cfg: TrainConfig,
          samples: int | None = None, progress: bool = True) -> list[dict]:
    """Train, convert and simulate one model per D in ``dims`` (HD input, k = ``active_bits``) into ``out_dir``.

    Returns the CSV rows of ``dims`` in the given order (the CSV and PNG keep every
    finished D of ``out_dir`` with the same fingerprint, also from earlier calls). ``parameters`` = trainable
    parameters Σ numel (all weight matrices incl. W_emb of D·dim, readout,
    temperature); ``synapses`` = non-zero synapses of the AER graph (token-shared
    weights counted once per token and per stream population they feed).
    ``samples`` = first N test samples (None: all). Skips D with a finished row of
    the same config fingerprint; raises before training if any input is invalid.
    """
    from spikeformer.data.registry import load_dataset

    dims = list(dims)
    check_sweep(dims, active_bits, samples, len(load_dataset(model_cfg).y_test))
    configs = {d: dim_config(model_cfg, d, active_bits) for d in dims}   # validates via ModelConfig
    out = Path(out_dir)
    csv_path = out / CSV_FILE
    fp = fingerprint(model_cfg, train_cfg, active_bits, samples)
    rows = read_rows(csv_path)
    foreign = [r for r in rows if r["config"] != fp]
    if foreign:
        raise CheckpointError(f"{csv_path}: holds runs of a different configuration (fingerprint "
                              f"{foreign[0]['config']}, requested {fp}); use a new --out directory")
    for d, cfg in configs.items():                   # a checkpoint of another config would fail mid-sweep
        run_dir = out / f"d{d}"
        if (run_dir / "train_state.pt").exists():
            want = json.loads(json.dumps({"model": cfg.to_dict(), "train": asdict(train_cfg)}))
            if read_json(run_dir / "config.json") != want:
                raise CheckpointError(f"{run_dir / 'config.json'}: differs from the requested config; "
                                      f"use a new --out directory")
    done = {r["dim"]: r for r in rows}
    bar = tqdm(dims, desc="sweep", unit="D", disable=not progress)
    for d in bar:
        bar.set_postfix(D=d)
        if d in done:
            continue
        row = run_dim(out / f"d{d}", configs[d], train_cfg, samples, progress)
        done[d] = {**row, "config": fp}
        write_rows(csv_path, list(done.values()))
    from sim.plots import sweep_plot
    sweep_plot(csv_path, path=out / PNG_FILE)
    return [done[d] for d in dims]
