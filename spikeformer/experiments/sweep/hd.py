"""HD-code width sweep (``sweep --over hd``): one model per HD code width D at a fixed number of active bits k.

For every D the input is the sparse binary HD code of ``spikeformer.encode.hd`` (D
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
    sweep.csv    one row per finished D (``ROWS``), rewritten atomically after every D
    sweep.png    accuracy, synaptic ops / inference, parameters against D (``sim.plots.sweep_plot``)

A rerun skips every D whose row exists with the same ``config`` fingerprint
(``rows.fingerprint`` of ``shared_config``: the base model + train config, k and samples; D excluded).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from spikeformer.config.train import TrainConfig
from spikeformer.experiments.sweep.figures import max_over_min, parameter_count
from spikeformer.experiments.sweep.rows import RowSchema, SweepRows, check_run_dir, fingerprint, model_fields

CSV_FILE = "sweep.csv"


PNG_FILE = "sweep.png"


ROWS = RowSchema(
    name="sweep",
    columns=("dim", "active_bits", "accuracy", "model_accuracy", "agreement_with_model",
             "synaptic_ops_per_inference", "spikes_per_inference", "parameters", "synapses",
             "samples", "epochs", "train_seconds", "config"),
    ints=("dim", "active_bits", "parameters", "synapses", "samples", "epochs"),
    floats=("accuracy", "model_accuracy", "agreement_with_model", "synaptic_ops_per_inference",
            "spikes_per_inference", "train_seconds"),
    key=("dim",))


def check_inputs(dims: Sequence[int], active_bits: int, samples: int | None, n_test: int) -> None:
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
    return model_cfg.replace(encoder="hd", hd_dim=dim, hd_active=active_bits, features=dim)


def shared_config(model_cfg: Any, train_cfg: TrainConfig, active_bits: int, samples: int | None) -> dict:
    """What every D shares: model (HD encoder at k = ``active_bits``, without hd_dim, features), train, samples."""
    model = {k: v for k, v in model_fields(dim_config(model_cfg, active_bits, active_bits)).items()
             if k not in ("hd_dim", "features")}
    return {"model": model, "train": asdict(train_cfg), "samples": samples}


def synops_ratio(rows: Sequence[dict]) -> float:
    """max / min synaptic ops per inference over ``rows``."""
    return max_over_min([r["synaptic_ops_per_inference"] for r in rows])


def run_point(run_dir: Path, model_cfg: Any, train_cfg: TrainConfig, samples: int | None, progress: bool) -> dict:
    """Train (or resume), convert and simulate one width; the measured figures of its CSV row."""
    from spikeformer.runs.steps import convert_run, simulate_run
    from spikeformer.train.trainer import train

    tr = train(model_cfg, train_cfg, run_dir, progress=progress)
    cv = convert_run(run_dir)
    sm = simulate_run(run_dir, samples, progress=progress)
    return {"dim": model_cfg.encoder.hd_dim, "active_bits": model_cfg.encoder.hd_active, "accuracy": sm["accuracy"],
            "model_accuracy": sm["model_accuracy"], "agreement_with_model": sm["agreement_with_model"],
            "synaptic_ops_per_inference": sm["synaptic_ops_per_inference"],
            "spikes_per_inference": sm["spikes_per_inference"], "parameters": parameter_count(model_cfg),
            "synapses": int(cv["synapses"]), "samples": sm["samples"], "epochs": tr.epochs,
            "train_seconds": tr.seconds}


def sweep(dims: Sequence[int], active_bits: int, out_dir: str | Path, model_cfg: Any, train_cfg: TrainConfig,
          samples: int | None = None, progress: bool = True) -> list[dict]:
    """Train, convert and simulate one model per D in ``dims`` (HD input, k = ``active_bits``) into ``out_dir``.

    Returns the CSV rows of ``dims`` in the given order (the CSV and PNG keep every
    finished D of ``out_dir`` with the same fingerprint, also from earlier calls). ``parameters`` =
    ``parameter_count`` (all weight matrices incl. W_emb of D·dim, readout, temperature);
    ``synapses`` = non-zero synapses of the AER graph (token-shared
    weights counted once per token and per stream population they feed).
    ``samples`` = first N test samples (None: all). Skips D with a finished row of
    the same config fingerprint; raises before training if any input is invalid.
    """
    from spikeformer.data.registry import load_dataset

    dims = list(dims)
    check_inputs(dims, active_bits, samples, len(load_dataset(model_cfg).y_test))
    configs = {d: dim_config(model_cfg, d, active_bits) for d in dims}   # validates via ModelConfig
    out = Path(out_dir)
    fp = fingerprint(shared_config(model_cfg, train_cfg, active_bits, samples))
    rows = SweepRows(out / CSV_FILE, ROWS, fp)
    for d, cfg in configs.items():
        check_run_dir(out / f"d{d}", cfg, train_cfg)
    bar = tqdm(dims, desc="sweep", unit="D", disable=not (progress and sys.stderr.isatty()))
    for d in bar:
        bar.set_postfix(D=d)
        if (d,) not in rows.done:
            rows.add({**run_point(out / f"d{d}", configs[d], train_cfg, samples, progress), "config": fp})
    from sim.plots import sweep_plot
    sweep_plot(rows.path, path=out / PNG_FILE)
    return [rows.done[(d,)] for d in dims]
