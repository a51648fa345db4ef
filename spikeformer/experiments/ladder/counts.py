"""What a trained ladder model measures on the test signals (``measure``), per inference, means over signals.

With W = W_in ⊙ M (D, 40), s_t the hidden outputs of tick t (T = 1 for the float rungs) and nnz(·) the non-zero
entries of a column:

* synaptic_ops_per_inference — sparse rungs (k given): the ops that active units cause,
      Σ_i [x_i ≠ 0]·nnz(W[:, i])  +  Σ_t Σ_c [s_t,c ≠ 0]·nnz(W_out[:, c])
  (the input current is computed once per inference and held over the T ticks); dense baselines: the MACs of
  dense hardware, 40·D + D·10, whatever the values;
* parameters — trainable entries the model uses: Σ M (the final mask) + D + 10·D + 10 (biases included);
* nonzero_weights — nnz(W) + nnz(W_out) (no biases);
* dead_fraction — units with no non-zero output on any test signal at any tick, over D;
* active — units with a non-zero output per tick (the realised k);
* multi_input_fraction — units with ≥ 2 active inputs, Σ_i [x_i ≠ 0]·[W_ci ≠ 0] ≥ 2, over D.
"""
from __future__ import annotations

import torch

from spikeformer.experiments.ladder.mlp import CLASSES, LadderMLP


def synaptic_ops(x: torch.Tensor, w_in: torch.Tensor, ticks: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    """Per signal (B,): Σ_i [x_i ≠ 0]·nnz(w_in[:, i]) + Σ_t Σ_c [ticks_t,c ≠ 0]·nnz(w_out[:, c]);
    x (B, 40), w_in (D, 40), ticks (B, T, D), w_out (10, D)."""
    fan_out_in = (w_in != 0).sum(0).to(torch.float64)
    fan_out_hidden = (w_out != 0).sum(0).to(torch.float64)
    return (x != 0).to(torch.float64) @ fan_out_in + ((ticks != 0).to(torch.float64) @ fan_out_hidden).sum(1)


def dense_macs(dim: int, inputs: int = 40) -> int:
    """Multiply-accumulates of a dense one-hidden-layer MLP: inputs·D + D·10."""
    return inputs * dim + dim * CLASSES


@torch.no_grad()
def measure(model: LadderMLP, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> dict:
    """The figures of the module docstring and the accuracy on (x, y)."""
    cfg = model.cfg
    w_in = model.input_weights().detach()
    correct, ops, active, multi = 0, 0.0, 0.0, 0.0
    sent = torch.zeros(cfg.dim, dtype=torch.bool)
    for b in range(0, len(x), batch):
        xb = x[b:b + batch]
        ticks = model.code(model.current(xb))
        correct += int((model.logits(ticks).argmax(1) == y[b:b + batch]).sum())
        ops += float(synaptic_ops(xb, w_in, ticks, model.w_out).sum())
        active += float((ticks != 0).sum()) / ticks.shape[1]
        multi += float((((xb != 0).to(torch.float32) @ (w_in != 0).to(torch.float32).t()) >= 2).sum())
        sent |= (ticks != 0).any(1).any(0)
    n = len(x)
    return {"accuracy": correct / n,
            "synaptic_ops_per_inference": ops / n if cfg.k is not None else float(dense_macs(cfg.dim)),
            "parameters": int(model.mask.sum()) + cfg.dim + CLASSES * cfg.dim + CLASSES,
            "nonzero_weights": int((w_in != 0).sum() + (model.w_out != 0).sum()),
            "dead_fraction": 1.0 - float(sent.sum()) / cfg.dim,
            "active": active / n,
            "multi_input_fraction": multi / (n * cfg.dim)}
