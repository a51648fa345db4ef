"""Named configurations: ``spikeformer train --preset NAME``.

``demo`` is what ``make demo`` trains: 1 block, D = 64, T = 8, loihi numerics.
``kwta``: the demo with k-WTA attention (k = 2 keys per query and head; a channel
of the output fires when ≥ 2 winning keys' V spike in it).
``ternary``: ternary weights with 90 % zeros in every matrix.
``kwta`` and ``ternary`` train on one thread: that is how their README figures were
measured, and float64 sums in another thread count take a slightly different path.
``events`` trains on the DVS-like event streams (spikeformer.data.event_generator): 4×4 patches of the
16×16 sensor as 16 tokens, 1 block, D = 64, T = 8, loihi numerics, one thread (~2.5 min).
``mnist1d``: MNIST-1D (spikeformer.data.sets.mnist1d): 20 tokens of 12 samples each (stride 2,
circular), 8 thermometer levels (F = 116), 1 block, D = 128, T = 4, loihi numerics; 60 epochs
with circular shifts of ±2 samples (D = 64: 0.908 after 60 epochs, 0.892 after 30; D = 128: 0.930).
``mnist1d-width``: the base of the model-width sweep (``sweep --over model``, docs in the README):
MNIST-1D as 10 tokens of 4 samples (stride 4, no overlap), 8 levels (F = 42), so that with
``emb_fan_out`` = 1 the 42 input features reach 42 distinct stream channels at every D ≥ 64;
1 block, 4 heads, MLP ratio 2, T = 4, k = 4 (group rule), fan-in 4; 10 epochs (the sweep's CPU budget:
~15 min per model at D = 1,024 on one thread).
``code-lm``: a next-byte language model of the standard library's Python code (``pycode``: windows of 64
bytes, ASCII vocabulary, causal SDSA, per-token readout), 2 blocks, D = 128, 4 heads, MLP ratio 2, T = 2,
loihi numerics; 2 epochs of the 65,536 sampled windows in batches of 32 (2 × 2,048 = 4,096 steps;
steps_per_epoch 6,000 caps nothing): 1,420 s of training on the shared 2-core machine plus the held-out
bits per byte on all 21,678 windows, 26 min in all, within 60 min (docs/code-lm.md, 2026-12-04).
``tiny`` is a seconds-long run for tests (accuracy is not its point).
``large`` / ``large-kwta``: the Spikformer-4-384 shape (4 blocks, D = 384, 8 heads, MLP ratio 4,
~7.1 M parameters), T = 4, loihi numerics, SDSA / k-WTA attention (k = 2, mask_count 2), on the
64-token event dataset (4×4 patches of the 32×32 sensor, 12 classes: events.EVENT_DATASETS[64]).
``events64``: the demo shape (1 block, D = 64, 4 heads, MLP ratio 2), T = 4, on the same data.
All three share one budget, EVENTS64_TRAIN: 2 epochs of batch 32, lr 0.5 (150 steps), sized
for 2 CPU cores: a training step costs ~0.08 s per sample for ``large`` and ~0.10 s for
``large-kwta`` (~3–4 min per epoch of 2,400 streams, ~7–8 min in all), ~0.002 s for ``events64``.
A config file has the same shape: ``{"model": {...}, "train": {...}}``, ``model`` either flat (field
names as in the presets) or in sections (``{"arch": {...}, "neuron": {...}, "weights": {...},
"encoder": {...}, "data": {...}}``, as run directories' config.json hold it); its dataset
(``spikeformer.data``) fills in the token shape it leaves out (``Dataset.defaults``; events:
tokens = 16, features = events.token_features(tokens), classes = max(10, the class count)), and a
relative ``data_path`` is taken from the config file's folder.
"""
from __future__ import annotations

import json
from pathlib import Path

from spikeformer.config.fields import check_keys
from spikeformer.config.model import DataConfig, ModelConfig, flat_model, is_nested
from spikeformer.config.train import TrainConfig
from spikeformer.configure.validate import check_model_config
from spikeformer.data import registry as datasets
from spikeformer.store.files import CheckpointError

# Spikformer-4-384 shape on the 64-token event dataset (events.EVENT_DATASETS[64])
LARGE = {"dataset": "events", "tokens": 64, "classes": 12, "dim": 384, "depth": 4, "heads": 8, "mlp_ratio": 4,
         "timesteps": 4, "numerics": "loihi", "init_gain": 2.0}


EVENTS64_TRAIN = {"epochs": 2, "batch_size": 32, "lr": 0.5}


# a next-byte language model of Python code (spikeformer.data.sets.pycode): causal SDSA, per-token readout
CODE_LM = {"dataset": "pycode", "tokens": 64, "classes": 128, "dim": 128, "depth": 2, "heads": 4, "mlp_ratio": 2,
           "timesteps": 2, "numerics": "loihi", "init_gain": 2.0}


CODE_LM_TRAIN = {"epochs": 2, "batch_size": 32, "lr": 0.5, "steps_per_epoch": 6000, "threads": 2}


PRESETS: dict[str, dict] = {
    "demo": {"model": {"dim": 64, "depth": 1, "timesteps": 8, "init_gain": 2.0},
             "train": {"epochs": 30, "lr": 0.5}},
    "kwta": {"model": {"dim": 64, "depth": 1, "timesteps": 8, "init_gain": 2.0, "attention": "kwta", "kwta_k": 2,
                       "mask_count": 2},
             "train": {"epochs": 30, "lr": 0.5, "threads": 1}},
    "ternary": {"model": {"dim": 256, "depth": 1, "timesteps": 8, "init_gain": 2.0, "weights": "ternary",
                          "weight_sparsity": 0.9},
                "train": {"epochs": 30, "lr": 0.5, "threads": 1}},
    "events": {"model": {"dataset": "events", "tokens": 16, "dim": 64, "depth": 1, "timesteps": 8,
                         "init_gain": 2.0},
               "train": {"epochs": 20, "lr": 0.5, "threads": 1}},
    "tiny": {"model": {"dim": 32, "depth": 1, "timesteps": 4, "heads": 2, "init_gain": 2.0},
             "train": {"epochs": 3, "lr": 1.0}},
    "large": {"model": LARGE},
    "large-kwta": {"model": {**LARGE, "attention": "kwta", "kwta_k": 2, "mask_count": 2}},
    "events64": {"model": {"dataset": "events", "tokens": 64, "classes": 12, "dim": 64, "depth": 1, "heads": 4,
                           "mlp_ratio": 2, "timesteps": 4, "numerics": "loihi", "init_gain": 2.0}},
    "mnist1d": {"model": {"dataset": "mnist1d", "tokens": 20, "levels": 8, "dim": 128, "depth": 1, "heads": 4,
                          "mlp_ratio": 2, "timesteps": 4, "numerics": "loihi", "init_gain": 2.0},
                "train": {"epochs": 60, "batch_size": 64, "lr": 0.5, "shift": 2, "threads": 1}},
    "mnist1d-width": {"model": {"dataset": "mnist1d", "tokens": 10, "levels": 8, "features": 42, "dim": 64,
                                "depth": 1, "heads": 4, "mlp_ratio": 2, "timesteps": 4, "numerics": "loihi",
                                "init_gain": 2.0, "stream_k": 4, "hidden_k": 4, "wta_rule": "group", "fan_in": 4,
                                "emb_fan_out": 1},
                      "train": {"epochs": 10, "batch_size": 64, "lr": 0.5, "shift": 2, "threads": 1,
                                "discard_penalty": 0.0002}},
    "code-lm": {"model": CODE_LM, "train": CODE_LM_TRAIN},
}


for _name in ("large", "large-kwta", "events64"):      # one budget, so the accuracies compare
    PRESETS[_name]["train"] = dict(EVENTS64_TRAIN)


SECTIONS = ("model", "train")


def configs_from_dict(d: dict, source: str) -> tuple[ModelConfig, TrainConfig]:
    """The one config validator: ``{"model": {...}, "train": {...}}`` → configs; errors name ``source``.

    Used for config files, presets and every run directory's config.json, so all
    commands refuse the same things: a missing ``model`` section (``train`` may be left
    out: TrainConfig's defaults), unknown sections or keys, and any field not exactly of
    its type (``spikeformer.config``: a bool is not an int, floats are finite). ``model``
    is nested (``{"arch": {...}, "neuron": {...}, ...}``, as ``ModelConfig.to_dict`` writes)
    or flat (earlier files and the presets): ``config.model.flat_model``; the dataset's
    ``defaults`` fill in the flat form."""
    if not isinstance(d, dict):
        raise CheckpointError(f"{source}: expected an object with sections 'model' and 'train'")
    unknown = sorted(set(d) - set(SECTIONS))
    if unknown:
        raise CheckpointError(f"{source}: unknown section '{unknown[0]}' (expected 'model' and 'train')")
    if "model" not in d:
        raise CheckpointError(f"{source}: missing section 'model' (the model to train; e.g. {{\"model\": {{}}}} "
                              f"for the defaults)")
    try:
        model = flat_model(d["model"])                      # the flat form of earlier files, or sections
        check_keys(d.get("train", {}), TrainConfig, "train")
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from None
    try:
        model = datasets.get(model.get("dataset", DataConfig.dataset)).defaults(model)
        return check_model_config(ModelConfig.from_flat(**model)), TrainConfig(**d.get("train", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def preset(name: str) -> tuple[ModelConfig, TrainConfig]:
    if name not in PRESETS:
        raise CheckpointError(f"--preset: unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return configs_from_dict(PRESETS[name], f"preset {name!r}")


def from_file(path: str | Path) -> tuple[ModelConfig, TrainConfig]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: config file not found")
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    model = d.get("model") if isinstance(d, dict) else None
    nested = isinstance(model, dict) and is_nested(model)
    where = model.get("data") if nested else model                  # the section holding data_path
    if isinstance(where, dict) and isinstance(where.get("data_path"), str):      # relative to the config file
        where = {**where, "data_path": str((path.parent / where["data_path"]).resolve())}
        d = {**d, "model": {**model, "data": where} if nested else where}
    return configs_from_dict(d, str(path))
