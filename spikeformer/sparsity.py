"""Weight sparsity and ternary quantisation, kept through training.

* Fixed number of non-zeros: a matrix W of size n with sparsity s ∈ (0, 1) keeps
  exactly ``k = max(1, n − ⌈s·n⌉)`` entries (sparsity ≥ s), the k largest |W|
  (``topk_mask``). The forward pass uses W ⊙ mask, and ``project_`` re-applies
  it to the parameters after every optimiser step (W ← W ⊙ mask(W)), so the
  count holds at every step and only those k weights become synapses.
* Ternary, BitNet b1.58 "absmean" (Ma et al., 2024): γ = mean|W| over the kept
  entries, W_t = clamp(round(W/γ), −1, 1) ∈ {−1, 0, +1}; the effective weight is
  W_t·γ. With a fixed non-zero count the zero pattern is the mask and every kept
  entry is sign(W) (so exactly k non-zeros). In loihi numerics γ is an integer
  mantissa g = clamp(round(γ), 1, 127) and the synapse weight is 2·g·W_t ∈
  {−2g, 0, 2g} — on the Loihi weight grid. Gradients are straight-through.
* int8 with a fixed count: kept entries that would round to 0 become ±1.
"""
from __future__ import annotations

import math

import torch

from sim import numerics as nm
from spikeformer.neurons import ste

WEIGHT_KINDS = ("int8", "ternary")


def check_sparsity(sparsity: float | None) -> None:
    """None (dense) or a fraction of zeros strictly between 0 and 1."""
    if sparsity is not None and not (isinstance(sparsity, (int, float)) and 0.0 < sparsity < 1.0):
        raise ValueError(f"config.weight_sparsity must be in (0, 1) (fraction of zero weights) or null, got {sparsity!r}")


def kept(numel: int, sparsity: float | None) -> int:
    """Non-zeros a matrix of ``numel`` entries keeps: numel − ⌈s·numel⌉ (≥ 1), so its sparsity is ≥ s."""
    if sparsity is None:
        return numel
    zeros = math.ceil(sparsity * numel - 1e-9)               # tolerance: 0.9·10 is 9.000000000000002
    return max(1, numel - zeros)


def topk_mask(w: torch.Tensor, k: int) -> torch.Tensor:
    """1 at the k largest |w| (ties broken by index), 0 elsewhere."""
    if k >= w.numel():
        return torch.ones_like(w)
    idx = torch.topk(w.detach().abs().flatten(), k, sorted=False).indices
    mask = torch.zeros(w.numel(), dtype=w.dtype, device=w.device)
    mask[idx] = 1
    return mask.view_as(w)


def _sign(w: torch.Tensor) -> torch.Tensor:
    return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)


def ternary(w: torch.Tensor, mask: torch.Tensor | None, loihi: bool) -> torch.Tensor:
    """absmean ternary weights (see module doc), straight-through gradients."""
    m = torch.ones_like(w) if mask is None else mask
    gamma = (w.detach().abs() * m).sum() / m.sum().clamp(min=1)
    scale = float(min(max(round(float(gamma)), 1), nm.W_MANT_MAX)) if loihi else gamma.clamp(min=1e-8)
    levels = _sign(w) * m if mask is not None else torch.clamp(torch.round(w / scale), -1, 1)
    return 2.0 * scale * ste(w / scale, levels)


def int8_on_support(w: torch.Tensor, mask: torch.Tensor | None, loihi: bool) -> torch.Tensor:
    """2·mantissa (loihi) or 2·w (float) on the kept entries; kept entries never round to 0."""
    if not loihi:
        return 2.0 * (w if mask is None else w * mask)
    q = torch.clamp(torch.round(w), nm.W_MANT_MIN, nm.W_MANT_MAX)
    if mask is not None:
        q = torch.where(q == 0, _sign(w), q) * mask
    return 2.0 * ste(w, q)


@torch.no_grad()
def project_(weights: torch.nn.ParameterDict, sparsity: float | None) -> None:
    """W ← W ⊙ topk_mask(W): re-impose the fixed non-zero count after an optimiser step."""
    if sparsity is None:
        return
    for w in weights.values():
        w.mul_(topk_mask(w, kept(w.numel(), sparsity)))
