"""The 64-token event dataset (cluttered 32×32 scenes, 12 classes): physics, split, encoder, configs, presets."""
from __future__ import annotations

import numpy as np
import pytest
from test_events import _motion

from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.data.event_datasets import (
    EVENT_DATASETS,
    encode_events,
    event_dataset,
    load_events_split,
    token_features,
)
from spikeformer.data.event_generator import (
    CLUTTER_CLASSES,
    DIRECTIONS,
    DURATION_US,
    EVENT_DTYPE,
    generate_cluttered_events,
)
from spikeformer.data.registry import load_dataset
from spikeformer.data.sets.events import check_model_config
from spikeformer.data.sets.recordings import save_recordings
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.store.files import CheckpointError
from spikeformer.train.trainer import train

N_PER_CLASS = 3
CLEAN = {"noise_hz": 0.0, "dots": 0, "flickers": 0, "jitter_us": 0.0}   # the class object alone


@pytest.fixture(scope="module")
def scenes():
    return generate_cluttered_events(N_PER_CLASS, seed=3)


def test_same_seed_same_streams_other_seed_other_streams(scenes):
    again, labels = generate_cluttered_events(N_PER_CLASS, seed=3)
    assert len(again) == len(scenes[0]) and all(np.array_equal(a, b) for a, b in zip(scenes[0], again))
    np.testing.assert_array_equal(labels, scenes[1])
    other, _ = generate_cluttered_events(N_PER_CLASS, seed=4)
    assert sum(np.array_equal(a, b) for a, b in zip(scenes[0], other)) == 0


def test_streams_are_sorted_structured_balanced_and_on_the_32x32_sensor(scenes):
    evs, labels = scenes
    np.testing.assert_array_equal(np.bincount(labels), [N_PER_CLASS] * 12)
    assert len(CLUTTER_CLASSES) == 12 and set(DIRECTIONS) < set(CLUTTER_CLASSES)
    for ev in evs:
        assert ev.dtype == EVENT_DTYPE and len(ev) > 100 and not ev.flags.writeable
        assert (np.diff(ev["t"].astype(np.int64)) >= 0).all()
        assert ev["x"].max() < 32 and ev["y"].max() < 32 and ev["t"].max() < DURATION_US
        assert set(np.unique(ev["p"])) == {0, 1}
    assert max(max(ev["x"].max(), ev["y"].max()) for ev in evs) >= 24    # the whole sensor is used


@pytest.mark.parametrize("dark", [0.0, 1.0])
@pytest.mark.parametrize("label", CLUTTER_CLASSES)
def test_each_class_moves_its_own_way_bright_or_dark(label, dark):
    evs, _ = generate_cluttered_events(10, seed=5, classes=(label,), dark=dark, **CLEAN)
    if label in DIRECTIONS:                          # event position along the direction grows with t
        u = np.array([np.cos(DIRECTIONS[label]), np.sin(DIRECTIONS[label])])
        stats = [np.polyfit(ev["t"].astype(float), u[0] * ev["x"] + u[1] * ev["y"], 1)[0] for ev in evs]
        sign = 1
    else:
        base = {"cw": "cw", "ccw": "cw", "expand": "expand", "contract": "expand"}[label]
        stats, sign = [_motion(ev, base) for ev in evs], 1 if label == base else -1
    assert (np.sign(stats) == sign).mean() >= 0.9, stats


def test_a_dark_object_swaps_the_polarity_layout_of_its_motion():
    """Bright moving right: ON leads. Dark moving right: OFF leads, as for a bright bar moving left."""
    for dark, ahead in ((0.0, 1), (1.0, 0)):
        evs, _ = generate_cluttered_events(5, seed=1, classes=("right",), dark=dark, **CLEAN)
        for ev in evs:
            lead = ev["x"][ev["p"] == ahead].mean() - ev["x"][ev["p"] == 1 - ahead].mean()
            assert lead > 0, (dark, lead)


def test_noise_rate_and_distractors():
    quiet = {"contrast": 9.0, "dots": 0, "flickers": 0}            # threshold never reached: noise only
    evs, _ = generate_cluttered_events(10, seed=0, classes=("up",), noise_hz=50.0, **quiet)
    expected = 50.0 * 32 * 32 * DURATION_US * 1e-6
    assert abs(np.mean([len(e) for e in evs]) / expected - 1) < 0.05
    silent, _ = generate_cluttered_events(2, seed=0, classes=("up",), noise_hz=0.0, **quiet)
    assert all(len(e) == 0 for e in silent)
    count = lambda **kw: np.mean([len(e) for e in generate_cluttered_events(40, seed=2, classes=("cw",),  # noqa: E731
                                                                            noise_hz=0.0, **kw)[0]])
    alone = count(dots=0, flickers=0)                 # other draws, other scenes: compare means
    assert count(dots=8, flickers=0) > 1.3 * alone and count(dots=0, flickers=4) > 1.3 * alone, alone


def test_split_is_fixed_stratified_sized_and_small_when_encoded():
    a, b = load_events_split(64), load_events_split(64)
    assert len(a.y_train) == 2400 and len(a.y_test) == 240
    np.testing.assert_array_equal(np.bincount(a.y_train), [200] * 12)
    np.testing.assert_array_equal(np.bincount(a.y_test), [20] * 12)
    assert all(np.array_equal(x, y) for x, y in zip(a.x_test, b.x_test))
    assert max(max(e["x"].max(), e["y"].max()) for e in a.x_test) == 31
    x = encode_events(a.x_test, timesteps=4, tokens=64)
    assert x.shape == (240, 4, 64, 96)
    assert 0.02 < x[..., :32].mean() < 0.3                          # sparse, but every tick carries events
    assert (x[..., :32].sum(axis=(2, 3)) > 0).all()
    assert (len(a.y_train) + len(a.y_test)) * x[0].size * 4 < 300e6    # whole split as float32 tensors
    assert len(load_events_split(16).y_train) == 1200                 # the 16-token dataset is still there


def test_encoder_puts_an_event_in_its_tick_token_and_feature_on_the_32x32_sensor():
    ev = np.zeros(2, EVENT_DTYPE)
    ev[0] = (31, 31, 79_999, 1)                      # x, y, t, p: last tick, last token
    ev[1] = (5, 9, 25_000, 0)                        # tick 1, token (9//4)·8 + 5//4 = 17
    x = encode_events([ev], timesteps=4, tokens=64)  # size defaults to 32 for 64 tokens
    assert x.shape == (1, 4, 64, 96) and token_features(64) == 96 and token_features(16) == 48
    pixels = x[0, :, :, :32]
    assert pixels.sum() == 2
    assert pixels[3, 63, 2 * (3 * 4 + 3) + 1] and pixels[1, 17, 2 * (1 * 4 + 1) + 0]
    np.testing.assert_array_equal(x[0, :, :, 32:], np.broadcast_to(np.eye(64, dtype=bool), (4, 64, 64)))
    with pytest.raises(ValueError, match=r"streams\[0\]"):
        encode_events([ev], timesteps=4, tokens=16)  # 16 tokens: the 16×16 sensor, x = 31 is off it


def test_bad_arguments_are_named():
    for kwargs, name in [({"dots": -1}, "dots"), ({"flickers": 1.5}, "flickers"), ({"dark": 1.5}, "dark"),
                         ({"classes": ("sideways",)}, "classes"), ({"size": 4}, "size"), ({"seed": -1}, "seed"),
                         ({"noise_hz": -1.0}, "noise_hz"), ({"n_per_class": 0}, "n_per_class")]:
        with pytest.raises(ValueError, match=name):
            generate_cluttered_events(**{"n_per_class": 1, "seed": 0, **kwargs})
    with pytest.raises(ValueError, match=r"tokens \(32\)"):
        load_events_split(32)


def test_config_tokens_select_the_dataset_and_errors_name_the_field():
    m = model_config(dataset="events", tokens=64, features=96, classes=12)
    assert (m.arch.tokens, m.arch.features) == (64, 96)
    for tokens in (4, 32, 256):
        with pytest.raises(ValueError, match=rf"^config.tokens \({tokens}\) must be one of \[16, 64\]"):
            model_config(dataset="events", tokens=tokens, features=2 * 16 + tokens)
    with pytest.raises(ValueError, match=r"config.features \(72\) must equal .* = 96"):
        model_config(dataset="events", tokens=64, features=72, classes=12)
    with pytest.raises(ValueError, match=r"config.classes \(10\) must be ≥ 12"):
        check_model_config(64, 96, "thermometer", classes=10)
    check_model_config(16, 48, "thermometer", classes=10)
    m, _ = presets.configs_from_dict({"model": {"dataset": "events", "tokens": 64}}, "test")
    assert (m.arch.features, m.arch.classes) == (96, 12)
    m, _ = presets.configs_from_dict({"model": {"dataset": "events"}}, "test")
    assert (m.arch.tokens, m.arch.features, m.arch.classes) == (16, 48, 10)         # unchanged for the 16-token dataset
    with pytest.raises(CheckpointError, match=r"^cfg.json: config.classes \(10\)"):
        presets.configs_from_dict({"model": {"dataset": "events", "tokens": 64, "classes": 10}}, "cfg.json")
    with pytest.raises(CheckpointError, match=r"^cfg.json: config.tokens \(32\)"):
        presets.configs_from_dict({"model": {"dataset": "events", "tokens": 32}}, "cfg.json")
    assert event_dataset(64).size == 32 and EVENT_DATASETS[16].classes[:4] == CLUTTER_CLASSES[:4]


@pytest.mark.parametrize("name", ["large", "large-kwta", "events64"])
def test_64_token_presets_build_valid_configs(name):
    m, t = presets.preset(name)
    assert (m.data.dataset, m.arch.tokens, m.arch.features, m.arch.classes, m.arch.timesteps, m.neuron.numerics) == ("events", 64, 96, 12, 4, "loihi")
    assert (t.epochs, t.batch_size) == (presets.EVENTS64_TRAIN["epochs"], 32)
    if name == "events64":
        assert (m.arch.dim, m.arch.depth, m.arch.heads, m.arch.mlp_ratio, m.arch.attention) == (64, 1, 4, 2, "sdsa")
        return
    assert (m.arch.dim, m.arch.depth, m.arch.heads, m.arch.mlp_ratio) == (384, 4, 8, 4)      # Spikformer-4-384
    assert (m.arch.attention, m.arch.kwta_k, m.arch.mask_count) == (("sdsa", 2, 1) if name == "large" else ("kwta", 2, 2))
    params = sum(p.numel() for p in SpikingTransformer(m).parameters())
    assert 6.5e6 < params < 7.5e6, params


def test_a_64_token_model_trains_on_cluttered_streams(tmp_path):
    evs, labels = generate_cluttered_events(4, seed=1)                # saved as the user's recordings
    data = save_recordings(tmp_path / "clutter.npz", evs, labels, (32, 32), is_test=np.arange(len(labels)) % 2 == 1)
    m, t = presets.configs_from_dict({"model": {"dataset": "recordings", "data_path": str(data), "tokens": 64,
                                                "dim": 16, "heads": 2, "timesteps": 2, "init_gain": 2.0},
                                      "train": {"epochs": 1, "batch_size": 16, "threads": 1}}, "test")
    assert (m.arch.features, m.arch.classes) == (96, 12)
    res = train(m, t, tmp_path / "run", progress=False)
    assert 0 <= res.test_accuracy <= 1 and (tmp_path / "run" / "model.pt").exists()


def test_train_loads_the_split_that_the_tokens_select():
    m, _ = presets.preset("events64")
    data = load_dataset(m)
    assert len(data.y_test) == 240 and max(e["x"].max() for e in data.x_test) == 31
