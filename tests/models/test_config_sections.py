"""ModelConfig in sections: the flat config.json of earlier runs still loads, converts and simulates the same;
each section refuses its own bad fields, naming them."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from spikeformer.config.model import (
    FLAT,
    ArchConfig,
    DataConfig,
    EncoderConfig,
    ModelConfig,
    NeuronConfig,
    WeightsConfig,
)
from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.store.files import CheckpointError

# what the flat ModelConfig(...).to_dict() wrote for the `tiny` preset before the sections (31 keys)
OLD_TINY = {"tokens": 8, "features": 40, "dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2, "timesteps": 4,
            "classes": 10, "numerics": "loihi", "attention": "sdsa", "dv": 1024, "vth": 128, "mask_count": 1,
            "kwta_k": 2, "hidden_k": None, "stream_k": None, "wta_rule": "index", "levels": 4,
            "encoder": "thermometer", "hd_dim": 1024, "hd_active": 32, "init_gain": 2.0, "weights": "int8",
            "weight_sparsity": None, "fan_in": None, "emb_fan_out": None, "dataset": "digits", "data_path": None,
            "split_seed": None, "test_fraction": None, "extra": {}}


def without_seconds(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "seconds"}


def test_flat_and_nested_forms_read_to_the_same_config():
    added_since = {"causal", "per_token"}                 # fields newer than the flat format: their defaults
    assert len(OLD_TINY) == 31 and set(OLD_TINY) - {"extra"} == set(FLAT) - added_since
    tiny = presets.preset("tiny")[0]
    flat = presets.configs_from_dict({"model": OLD_TINY}, "old")[0]
    nested = presets.configs_from_dict({"model": tiny.to_dict()}, "new")[0]
    assert flat == nested == tiny == ModelConfig.from_dict(OLD_TINY) == model_config(**tiny.flat())
    assert tiny.flat() == {**{k: v for k, v in OLD_TINY.items() if k != "extra"}, "causal": False, "per_token": False}
    assert set(tiny.to_dict()) == {"arch", "neuron", "weights", "encoder", "data"}
    assert tiny.to_dict()["weights"] == {"kind": "int8", "init_gain": 2.0, "sparsity": None, "fan_in": None,
                                         "emb_fan_out": None}
    assert tiny.replace(dim=64, weight_sparsity=0.5).weights.sparsity == 0.5


def test_nested_data_path_is_taken_from_the_config_files_folder(tmp_path):
    x, y = np.random.default_rng(0).random((20, 3, 2, 5)) < 0.3, np.arange(20) % 2
    np.savez(tmp_path / "s.npz", spikes=x.astype(np.uint8), labels=y)
    (tmp_path / "cfg.json").write_text(json.dumps(
        {"model": {"data": {"dataset": "spikes", "data_path": "s.npz"}, "arch": {"dim": 8, "heads": 2}}}))
    m = presets.from_file(tmp_path / "cfg.json")[0]
    assert m.data.data_path == str((tmp_path / "s.npz").resolve()) and m.arch.tokens == 2


@pytest.mark.timeout(600)
def test_an_old_flat_run_directory_converts_simulates_and_resumes_the_same(tmp_path):
    from spikeformer.runs.steps import convert_run, simulate_run
    from spikeformer.train.trainer import train

    model_cfg, train_cfg = presets.preset("tiny")
    train_cfg.epochs, train_cfg.steps_per_epoch = 1, 2
    run = tmp_path / "run"
    train(model_cfg, train_cfg, run, progress=False)
    path = run / "config.json"
    written = json.loads(path.read_text())
    assert written["model"] == model_cfg.to_dict()
    before = convert_run(run), without_seconds(simulate_run(run, samples=40))
    path.write_text(json.dumps({"model": OLD_TINY, "train": asdict(train_cfg)}))        # the earlier format
    after = convert_run(run), without_seconds(simulate_run(run, samples=40))
    assert after == before and before[1]["mismatched_spikes"] == 0
    train(model_cfg, train_cfg, run, progress=False)           # resume guard: the flat file is this run's config
    assert json.loads(path.read_text()) == written              # rewritten in the nested form
    path.write_text(json.dumps({"model": OLD_TINY, "train": asdict(train_cfg)}))
    with pytest.raises(CheckpointError, match="differs from the requested config"):
        train(model_cfg.replace(dim=64), train_cfg, run, progress=False)


BAD_FIELDS = [
    # (model section, the error)
    ({"arch": {"dim": True}}, r"config\.dim must be an integer, got True"),
    ({"arch": {"dim": 30, "heads": 4}}, r"config\.dim \(30\) must be divisible by config\.heads \(4\)"),
    ({"arch": {"timesteps": 0}}, r"config\.timesteps must be a positive integer, got 0"),
    ({"neuron": {"numerics": "fp8"}}, r"config\.numerics must be one of"),
    ({"neuron": {"vth": 1.5}}, r"config\.vth must be an integer, got 1.5"),
    ({"weights": {"kind": 8}}, r"config\.weights must be a string, got 8"),
    ({"weights": {"sparsity": "most"}}, r"config\.weight_sparsity must be a finite number or null, got 'most'"),
    ({"weights": {"fan_in": 4, "sparsity": 0.5}}, r"config\.fan_in and config\.weight_sparsity: give at most one"),
    ({"encoder": {"levels": 0}}, r"config\.levels must be a positive integer, got 0"),
    ({"encoder": {"kind": None}}, r"config\.encoder must be a string, got None"),
    ({"data": {"split_seed": -1}}, r"config\.split_seed must be null or a non-negative integer, got -1"),
    ({"data": {"test_fraction": 1.0}}, r"config\.test_fraction must be null or in \(0, 1\), got 1.0"),
    ({"arch": {"depht": 2}}, r"unknown key 'model\.arch\.depht' \(known: tokens, "),
    ({"layers": {}}, (r"unknown key 'model\.layers' \(known: tokens, .*; or the sections arch, neuron, weights, "
                      r"encoder, data\)")),
    ({"arch": {}, "dim": 64}, r"unknown section 'model\.dim'"),
    ({"weight_sparsity": "most"}, r"config\.weight_sparsity must be a finite number or null"),   # flat
    ({"depht": 2}, r"unknown key 'model\.depht'"),                                                  # flat
]


@pytest.mark.parametrize("model, message", BAD_FIELDS, ids=[str(m) for m, _ in BAD_FIELDS])
def test_a_sections_bad_field_is_refused_naming_it(model, message):
    with pytest.raises(CheckpointError, match=rf"^cfg\.json: {message}"):
        presets.configs_from_dict({"model": model}, "cfg.json")


def test_sections_check_their_own_fields():
    with pytest.raises(ValueError, match=r"^config\.dim \(65\) must be divisible"):
        ArchConfig(dim=65)
    with pytest.raises(ValueError, match=r"^config\.dv must be an integer"):
        NeuronConfig(dv=None)
    with pytest.raises(ValueError, match=r"^config\.weights must be a string"):
        WeightsConfig(kind=1)
    with pytest.raises(ValueError, match=r"^config\.hd_dim must be an integer"):
        EncoderConfig(hd_dim="1024")
    with pytest.raises(ValueError, match=r"^config\.data_path must be a string or null"):
        DataConfig(data_path=3)
    with pytest.raises(ValueError, match=r"^config\.arch must be ArchConfig, got \{'dim': 64\}"):
        ModelConfig(arch={"dim": 64})
    with pytest.raises(TypeError, match=r"unknown config field 'depht'"):
        model_config(depht=2)
