"""Datasets as plug-ins: the registry, digits/events unchanged, mnist1d, and the split that belongs to the run."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from test_cli import assert_user_error, run

from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.data import base as datasets
from spikeformer.data import registry
from spikeformer.data.base import Dataset, Split
from spikeformer.data.registry import encode, load_dataset
from spikeformer.data.sets.mnist1d import CLASSES
from spikeformer.encode.mnist1d import LENGTH, RANGE, encode_mnist1d, token_features


def test_registry_names_every_builtin_and_errors_list_them():
    assert {"digits", "events", "mnist1d", "recordings", "spikes"} <= set(registry.names())
    with pytest.raises(ValueError, match=r"^config.dataset must be one of \[.*'mnist1d'.*\], got 'dvs'"):
        model_config(dataset="dvs")
    with pytest.raises(ValueError, match=r"config.data_path must be a file or directory path for config.dataset='recordings'"):
        model_config(dataset="recordings")
    with pytest.raises(ValueError, match=r"config.data_path must be null for config.dataset='digits'"):
        model_config(data_path="x.npz")


class Ramp(Dataset):
    """A dataset defined outside the package: 2 classes of rising / falling ramps, 1 token."""
    name = "ramp-test"

    def defaults(self, model: dict) -> dict:
        return {"tokens": 1, "features": 4, "classes": 2, **model}

    def split(self, cfg):
        x = np.tile(np.eye(4, dtype=bool)[None], (20, 1, 1))
        y = np.arange(20) % 2
        x[y == 1] = x[y == 1][:, ::-1]
        return datasets.resplit(Split(x[:16], y[:16], x[16:], y[16:]), cfg)

    def encode(self, cfg, x):
        return x[:, :cfg.arch.timesteps, None, :]                     # (n, T, 1 token, 4 features)


def test_a_registered_dataset_is_looked_up_by_name_everywhere(tmp_path):
    datasets.register(Ramp())
    try:
        with pytest.raises(ValueError, match="already registered"):
            datasets.register(Ramp())
        m, t = presets.configs_from_dict({"model": {"dataset": "ramp-test", "dim": 8, "heads": 2, "timesteps": 4},
                                          "train": {"epochs": 1, "batch_size": 8}}, "test")
        assert (m.arch.tokens, m.arch.features, m.arch.classes) == (1, 4, 2)
        assert encode(m, load_dataset(m).x_test).shape == (4, 4, 1, 4)
        with pytest.raises(ValueError, match=r"train.shift \(1\) has no augmentation for config.dataset='ramp-test'"):
            from spikeformer.train.trainer import train
            train(m, replace(t, shift=1), tmp_path, progress=False)
    finally:
        del datasets.REGISTRY["ramp-test"]


def test_digits_and_events_own_splits_are_unchanged():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    _, x_te, _, y_te = train_test_split(d.images.astype(np.uint8), d.target, test_size=0.2, stratify=d.target,
                                        random_state=0)
    s = load_dataset(model_config())
    assert len(s.y_test) == 360 and (s.y_test == y_te).all() and (s.x_test == x_te).all()
    assert datasets.fingerprint(s) == datasets.fingerprint(load_dataset(model_config(split_seed=0)))
    other = load_dataset(model_config(split_seed=1, test_fraction=0.3))
    assert len(other.y_test) == 540 and datasets.fingerprint(other) != datasets.fingerprint(s)
    m, _ = presets.preset("events")
    assert len(load_dataset(m).y_test) == 360 and len(load_dataset(m.replace(test_fraction=0.5)).y_test) == 780


def test_mnist1d_split_is_the_generators_and_leaves_the_global_rng_alone():
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    m, _ = presets.configs_from_dict({"model": {"dataset": "mnist1d"}}, "test")
    s = load_dataset(m)
    assert (np.random.get_state()[1] == before).all()
    ref = make_dataset(get_dataset_args())
    assert s.x_train.shape == (4000, LENGTH) and s.x_test.shape == (1000, LENGTH)
    np.testing.assert_allclose(s.x_test, ref["x_test"], rtol=1e-6)
    assert (s.y_test == ref["y_test"]).all() and set(np.unique(s.y_train)) == set(range(CLASSES))
    r = load_dataset(m.replace(split_seed=7))                     # pooled and re-split: 4,000 / 1,000 again
    assert len(r.y_test) == 1000 and datasets.fingerprint(r) != datasets.fingerprint(s)


def test_mnist1d_encoding_is_circular_windows_thermometer_coded():
    x = np.linspace(-3, 3, LENGTH)[None]
    spikes = encode_mnist1d(x, timesteps=2, tokens=20, levels=4, window=3)
    assert spikes.shape == (1, 2, 20, 3 * 4 + 20) and (spikes[:, 0] == spikes[:, 1]).all()
    thresholds = -RANGE + 2 * RANGE * (np.arange(4) + 0.5) / 4
    for n in (0, 19):                                              # token 19: samples 38, 39 and (wrapped) 0
        idx = [(2 * n + k) % LENGTH for k in range(3)]
        want = (x[0, idx][:, None] > thresholds).reshape(-1)
        assert (spikes[0, 0, n, :12] == want).all()
        assert spikes[0, 0, n, 12:].nonzero()[0].tolist() == [n]


def test_mnist1d_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"config.tokens \(7\) must divide the 40 samples"):
        model_config(dataset="mnist1d", tokens=7, features=40)
    with pytest.raises(ValueError, match=r"config.features \(50\) must be W·levels \+ tokens"):
        model_config(dataset="mnist1d", tokens=20, features=50, levels=4)
    assert model_config(dataset="mnist1d", tokens=20, features=token_features(20, 4, 5)).arch.features == 40
    with pytest.raises(ValueError, match=r"config.test_fraction must be null or in \(0, 1\), got 1.5"):
        model_config(test_fraction=1.5)
    with pytest.raises(ValueError, match=r"config.split_seed must be null or a non-negative integer"):
        model_config(split_seed=-1)


def test_simulate_evaluates_on_the_runs_own_split(tmp_path):
    """A run trained on another split (seed 1, 30 % test) is simulated on that split's test set, not seed 0's."""
    cfg = tmp_path / "cfg.json"
    tiny = presets.PRESETS["tiny"]
    cfg.write_text(json.dumps({"model": {**tiny["model"], "split_seed": 1, "test_fraction": 0.3},
                               "train": {**tiny["train"], "epochs": 1, "steps_per_epoch": 3}}))
    out = tmp_path / "run"
    assert run("train", "--config", str(cfg), "--out", str(out), "--json").returncode == 0
    recorded = json.loads((out / "split.json").read_text())
    assert (recorded["split_seed"], recorded["test_fraction"], recorded["test"]) == (1, 0.3, 540)
    assert json.loads((out / "config.json").read_text())["model"]["data"]["split_seed"] == 1
    assert run("convert", str(out)).returncode == 0
    p = run("simulate", str(out), "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert fig["samples"] == 540 and fig["agreement_with_model"] == 1.0

    from spikeformer.runs.steps import load_test_batch
    from spikeformer.train.trainer import evaluate
    model, _, x, y = load_test_batch(out, None)
    own, default = load_dataset(model.cfg), load_dataset(model_config())
    assert (y == own.y_test).all() and (x.numpy() == encode(model.cfg, own.x_test).numpy()).all()
    assert fig["model_accuracy"] == evaluate(model, x, y)
    assert datasets.fingerprint(own) != datasets.fingerprint(default)
    recorded["test_fingerprint"] = "0" * 16                         # the data no longer gives the run's test set
    (out / "split.json").write_text(json.dumps(recorded))
    assert_user_error(run("simulate", str(out), "--samples", "2"), "split.json", "the data changed since training")
