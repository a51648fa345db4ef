"""Training scales with what it needs: memory estimate and refusal, block checkpointing, CUDA = CPU spikes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli import assert_user_error, run

from spikeformer.config.model import ModelConfig
from spikeformer.configure.validate import model_config
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.train.memory import estimate_training_bytes

SHAPE = dict(tokens=16, features=24, dim=32, depth=3, heads=2, timesteps=4, init_gain=2.0)


def spikes_in(cfg: ModelConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, cfg.arch.timesteps, cfg.arch.tokens, cfg.arch.features, generator=g) < 0.3


def test_estimate_grows_with_batch_and_checkpointing_lowers_it():
    cfg = model_config(**SHAPE)
    model = SpikingTransformer(cfg)
    x = spikes_in(cfg, 1)
    small, big = (estimate_training_bytes(model, x, b, False)["saved_activations"] for b in (8, 16))
    per_sample = (big - small) / 8
    # every LIF element of a sample keeps ≥ 5 bytes (int32 voltage + clip flag) for backward
    lif_elements = cfg.arch.timesteps * cfg.arch.tokens * (cfg.arch.depth * (5 * cfg.arch.dim + cfg.arch.dim * cfg.arch.mlp_ratio) + cfg.arch.dim)
    assert per_sample >= 5 * lif_elements
    ckpt = estimate_training_bytes(model, x, 16, True)["saved_activations"]
    assert ckpt < 0.7 * big


def test_checkpointed_blocks_give_the_same_loss_and_gradients():
    cfg = model_config(**SHAPE)
    torch.manual_seed(0)
    model = SpikingTransformer(cfg)
    x, y = spikes_in(cfg, 6), torch.arange(6) % cfg.arch.classes
    grads = []
    for ckpt in (False, True):
        model.zero_grad()
        model.checkpoint_blocks = ckpt
        logits, _ = model(x)
        torch.nn.functional.cross_entropy(model.loss_logits(logits), y).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-6)
    assert sum(float(g.abs().sum()) for g in grads[0].values()) > 0


def test_training_that_cannot_fit_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    p = run("train", "--preset", "tiny", "--batch-size", "200000000", "--out", str(out))
    assert_user_error(p, "training at batch size 200000000 needs", "GiB available", "batch_size ≤")
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_steps_and_spikes_equal_the_cpu(tmp_path):
    from dataclasses import replace

    from spikeformer.configure import presets
    from spikeformer.data.registry import encode, load_dataset
    from spikeformer.runs.rundir import load_model
    from spikeformer.train.trainer import train

    cfg = model_config(**{**presets.preset("tiny")[0].flat(), "attention": "kwta", "kwta_k": 2, "hidden_k": 4})
    train_cfg = replace(presets.preset("tiny")[1], epochs=1)
    data = load_dataset(cfg)
    train(cfg, replace(train_cfg, batch_size=32, steps_per_epoch=2), tmp_path / "run", progress=False, device="cuda")
    model = load_model(tmp_path / "run")
    x = encode(cfg, data.x_test[:32])
    with torch.no_grad():
        lg_cpu, rec_cpu = model(x, record=True)
        model.cuda()
        lg_gpu, rec_gpu = model(x.cuda(), record=True)
    np.testing.assert_array_equal(lg_gpu.cpu().numpy(), lg_cpu.numpy())
    for k in rec_cpu:
        np.testing.assert_array_equal(rec_gpu[k].cpu().numpy(), rec_cpu[k].numpy(), err_msg=k)
    assert sum(int(v.sum()) for v in rec_cpu.values()) > 0
