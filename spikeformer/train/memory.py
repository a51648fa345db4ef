"""Training memory, estimated before the first step; a run that cannot fit is refused.

Saved activations are *measured*, not modelled: one forward pass at batch 1 and one
at batch 2 under ``torch.autograd.graph.saved_tensors_hooks`` count the bytes of
every distinct storage autograd keeps for backward, so per-sample bytes
``S = S₂ − S₁`` and batch-independent bytes (weights saved by matmuls) ``S₀ = 2S₁ − S₂``.
With block checkpointing the pass keeps only the block inputs, and backward
recomputes one block at a time: ``S_ckpt + (S_full − S_ckpt)/depth``. Then::

    peak ≈ resident + 4·P·4 + S₀ + b·(S + TRANSIENT·A)

with ``resident`` the process's RSS now (libraries, datasets), P parameters (value,
gradient, two Adam moments; float32), b the batch size and A the bytes of the
largest single activation of one sample (B·T·N·width float32): forward and backward
hold a few of those besides what is saved (the LIF's int64 state and temporaries,
gradients of the layer being processed). ``TRANSIENT`` was measured with
``benchmarks/test_bench_train_memory.py`` (estimate and measured peak printed side by side).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from sim.system.memory import available_bytes

TRANSIENT = 20          # largest-activation equivalents alive besides saved tensors (benchmark)


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def _count_saved(total: list[int]) -> Iterator[None]:
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            total[0] += st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def _saved_bytes(model: torch.nn.Module, sample: torch.Tensor, batch: int) -> int:
    total = [0]
    x = sample.expand(batch, *sample.shape[1:]).clone()
    with _count_saved(total):
        logits, _ = model(x)
        loss = model.loss_logits(logits).sum()
    del loss, logits
    return total[0]


def estimate_training_bytes(model: torch.nn.Module, sample: torch.Tensor, batch: int, checkpoint: bool
                            ) -> dict[str, int]:
    """Peak bytes of a training step (see module docstring); ``sample``: one input (1, T, N, F), on the model's device."""
    was, model.checkpoint_blocks = model.checkpoint_blocks, False
    try:
        s1, s2 = _saved_bytes(model, sample, 1), _saved_bytes(model, sample, 2)
        per_sample, fixed = s2 - s1, 2 * s1 - s2
        if checkpoint:
            model.checkpoint_blocks = True
            c1, c2 = _saved_bytes(model, sample, 1), _saved_bytes(model, sample, 2)
            per_sample = (c2 - c1) + (per_sample - (c2 - c1)) // max(model.cfg.arch.depth, 1)
            fixed = 2 * c1 - c2
    finally:
        model.checkpoint_blocks = was
    cfg = model.cfg.arch
    widest = max(cfg.dim * cfg.mlp_ratio, cfg.features, cfg.dim)
    activation = cfg.timesteps * cfg.tokens * widest * 4
    params = sum(p.numel() for p in model.parameters())
    return {"resident": rss_bytes() if sample.device.type == "cpu" else 0,
            "parameters_and_adam": 16 * params,
            "saved_activations": max(fixed, 0) + batch * per_sample,
            "transient": batch * TRANSIENT * activation}


def check_training_memory(model: torch.nn.Module, sample: torch.Tensor, batch: int, checkpoint: bool) -> dict[str, int]:
    """Refuse (MemoryError, one line) a training run whose estimated peak exceeds the memory available."""
    need = estimate_training_bytes(model, sample, batch, checkpoint)
    total = sum(need.values())
    if sample.device.type == "cuda":
        have = torch.cuda.mem_get_info(sample.device)[0]
        where = f"free on {torch.cuda.get_device_name(sample.device)}"
    else:
        have = available_bytes() + need["resident"]
        where = "available (MemAvailable + this process)"
    if total > have:
        per = (need["saved_activations"] + need["transient"]) / max(batch, 1)
        room = have - total + need["saved_activations"] + need["transient"]
        fits = max(int(room // per), 0) if per else 0
        hint = f"set train.batch_size ≤ {fits}" if fits else "use a smaller model"
        parts = ", ".join(f"{k.replace('_', ' ')} {v / 2**30:.2f}" for k, v in need.items())
        raise MemoryError(f"training at batch size {batch} needs ~{total / 2**30:.1f} GiB ({parts} GiB); "
                          f"{have / 2**30:.1f} GiB {where} — {hint}"
                          f"{'' if checkpoint else ', or train with --checkpoint (recompute blocks in backward)'}")
    return need
