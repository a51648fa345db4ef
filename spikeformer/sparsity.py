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
* Fixed fan-in F (``fan_in_mask``): every row of W (out, in) keeps its F largest
  |W| (ties by index), so each neuron has exactly F incoming synapses whatever the
  width; the embedding (in = the fixed-width input) keeps F per column instead — F
  synapses out of every input feature — so its cost does not grow with the model
  width either. Kept through training like the fixed count (``project_``).
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


def check_fan_in(fan_in: int | None, dim: int, hidden: int) -> None:
    """None (dense) or F ∈ [1, dim]: every trained matrix's pre population (stream, hidden) has ≥ dim neurons,
    and the embedding's post (the stream) has dim."""
    if fan_in is None:
        return
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 1:
        raise ValueError(f"config.fan_in must be a positive integer or null, got {fan_in!r}")
    if fan_in > min(dim, hidden):
        raise ValueError(f"config.fan_in ({fan_in}) is larger than the pre-population: a neuron fed by the "
                         f"{dim}-wide stream cannot keep {fan_in} incoming weights (fan_in ≤ dim = {dim})")


def fan_in_mask(w: torch.Tensor, fan_in: int, axis: int = 1) -> torch.Tensor:
    """1 at the ``fan_in`` largest |w| of every row (axis 1) or column (axis 0), ties broken by index."""
    if fan_in >= w.shape[axis]:
        return torch.ones_like(w)
    a = w.detach().abs()
    a = a if axis == 1 else a.T
    # stable ordering: larger |w| first, then lower index
    order = torch.argsort(-a, dim=1, stable=True)[:, :fan_in]
    mask = torch.zeros_like(a).scatter_(1, order, 1.0)
    return (mask if axis == 1 else mask.T).to(w.dtype)


def support_mask(w: torch.Tensor, embedding: bool, sparsity: float | None, fan_in: int | None
                 ) -> torch.Tensor | None:
    """The kept entries of a trained matrix (out, in): fixed count, fixed fan-in (embedding: per column), or None."""
    if fan_in is not None:
        return fan_in_mask(w, fan_in, axis=0 if embedding else 1)
    if sparsity is not None:
        return topk_mask(w, kept(w.numel(), sparsity))
    return None


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
def project_(weights: torch.nn.ParameterDict, sparsity: float | None, fan_in: int | None = None) -> None:
    """W ← W ⊙ support_mask(W): re-impose the fixed non-zero count / fan-in after an optimiser step."""
    if sparsity is None and fan_in is None:
        return
    for name, w in weights.items():
        w.mul_(support_mask(w, name == "emb", sparsity, fan_in))
