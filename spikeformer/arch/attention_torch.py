"""Spiking attention by its definition, in torch: what the model's forward pass computes.

Q, K, V ∈ {0,1}^{B'×N×D} (B' = batch·ticks: every attention neuron is memoryless,
so all ticks are computed at once), H heads of d = D/H channels. Each kind gives
the spikes its lowered circuit (``spikeformer.arch.attention``) produces — the
three-way tests prove it — with surrogate gradients through ``fires_at_least``::

    sdsa:  kv = [K + V ≥ 2];  mask_c = [Σ_n kv_nc ≥ m];  out = [Q + mask ≥ 2]
    kwta:  score_ijh = Σ_{c∈h} Q_ic K_jc;  θ_ih = max(k-th largest_j score_ijh, 1)
           win_ijh = [score_ijh ≥ θ_ih]       (ties kept, 0 never wins; arctan surrogate
                                               on score − θ + ½, θ held constant)
           out_ic = [Σ_j win_ijh(c) V_jc ≥ m]
    ssa:   out_ic = [Σ_j Σ_{c'∈h(c)} Q_ic' K_jc' V_jc ≥ m]

``causal`` (sdsa, kwta): query i sees keys j ≤ i only::

    sdsa:  mask_ic = [Σ_{j≤i} kv_jc ≥ m];  out_ic = [Q_ic + mask_ic ≥ 2]
    kwta:  score_ijh = 0 for j > i         (0 never wins, and θ ≥ 1 is unchanged by the extra zeros)

``record`` collects named intermediate spikes (``kv``, ``mask`` for SDSA) for the
model-vs-graph comparison. Memory: SDSA O(N·D), k-WTA and SSA O(N²·H + N·D)
per tick — never the circuit's N²·D neurons.
"""
from __future__ import annotations

from typing import Callable

import torch

from spikeformer.layers.lif import fires_at_least, spike

Record = dict[str, torch.Tensor]


def sdsa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask_count: int, kwta_k: int,
         record: Record | None = None, causal: bool = False) -> torch.Tensor:
    kv = fires_at_least(k + v, 2)
    total = kv.cumsum(dim=-2) if causal else kv.sum(dim=-2, keepdim=True)
    mask = fires_at_least(total, mask_count)                                # (B', N or 1, D)
    if record is not None:
        record["kv"], record["mask"] = kv, (mask if causal else mask[..., 0, :])
    return fires_at_least(q + mask, 2)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)             # (B', N, H, d)


def causal_mask(n: int, like: torch.Tensor) -> torch.Tensor:
    """(N, N, 1): 1 where key j ≤ query i."""
    return torch.tril(torch.ones(n, n, dtype=like.dtype, device=like.device))[..., None]


def kwta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask_count: int, kwta_k: int,
         record: Record | None = None, causal: bool = False) -> torch.Tensor:
    score = torch.einsum("bihc,bjhc->bijh", _heads(q, heads), _heads(k, heads))   # (B', N, N, H)
    if causal:
        score = score * causal_mask(q.shape[-2], score)
    kth = torch.topk(score.detach(), kwta_k, dim=2).values[:, :, kwta_k - 1:kwta_k]   # (B', N, 1, H)
    win = spike(score, kth.clamp(min=1.0) - 0.5, 1.0)                       # score ≥ max(kth, 1)
    counts = torch.einsum("bijh,bjhc->bihc", win, _heads(v, heads))
    return fires_at_least(counts.reshape(q.shape), mask_count)


def ssa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask_count: int, kwta_k: int,
        record: Record | None = None, causal: bool = False) -> torch.Tensor:
    score = torch.einsum("bihc,bjhc->bijh", _heads(q, heads), _heads(k, heads))
    counts = torch.einsum("bijh,bjhc->bihc", score, _heads(v, heads))
    return fires_at_least(counts.reshape(q.shape), mask_count)


ATTENTION: dict[str, Callable[..., torch.Tensor]] = {"sdsa": sdsa, "kwta": kwta, "ssa": ssa}
