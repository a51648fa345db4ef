"""Sparse binary HD input codes: exactly k active bits, similarity-preserving, bit-exact end to end."""
from __future__ import annotations

import numpy as np
import pytest

from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.data.sets.digits import load_digits_split
from spikeformer.encode.hd import encode_hd, item_memory
from spikeformer.runs.steps import convert_run
from spikeformer.train.trainer import train


@pytest.mark.parametrize("dim, active", [(64, 8), (256, 32), (4096, 32), (16384, 32)])
def test_every_token_has_exactly_k_active_bits(dim, active):
    x = encode_hd(load_digits_split().x_test[:20], 3, dim, active)
    assert x.shape == (20, 3, 8, dim)
    assert (x.sum(axis=3) == active).all()
    np.testing.assert_array_equal(x, encode_hd(load_digits_split().x_test[:20], 3, dim, active))
    assert (x[:, 0] == x[:, 2]).all()


def test_codes_preserve_similarity():
    data = load_digits_split()
    a = data.x_test[0].astype(np.int64)
    near = np.clip(a + (a > 0), 0, 16)                       # same digit, slightly brighter
    other = data.x_test[np.nonzero(data.y_test != data.y_test[0])[0][0]]
    codes = encode_hd(np.stack([a, near, other]).astype(np.uint8), 1, 2048, 64)[:, 0]
    overlap = lambda i, j: int((codes[i] & codes[j]).sum())  # noqa: E731
    assert overlap(0, 1) > overlap(0, 2)
    mem = item_memory(8, 2048, 64)
    assert (mem.sum(axis=1) == 64).all() and len({m.tobytes() for m in mem}) == 8


def test_dimension_smaller_than_active_bits_is_named():
    with pytest.raises(ValueError, match=r"config.hd_active \(64\) must be in \[1, hd_dim=32\]"):
        model_config(encoder="hd", hd_dim=32, hd_active=64, features=32)
    with pytest.raises(ValueError, match="config.features"):
        model_config(encoder="hd", hd_dim=256, hd_active=8, features=40)
    with pytest.raises(ValueError, match="config.encoder"):
        model_config(encoder="rate")


def test_hd_input_model_is_three_way_bit_exact(tmp_path):
    from test_three_way import assert_identical, three_way
    m, t = presets.configs_from_dict({"model": {"dim": 32, "timesteps": 4, "heads": 2, "init_gain": 2.0,
                                                "encoder": "hd", "hd_dim": 256, "hd_active": 16},
                                      "train": {"epochs": 2, "lr": 1.0}}, "test")
    train(m, t, tmp_path, progress=False)
    convert_run(tmp_path)
    assert_identical(*three_way(tmp_path, 20))
