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
* Fixed fan-in F (``fan_in_table``): every neuron fed by a trained matrix W (out, in)
  has exactly F incoming synapses, from F distinct pre neurons drawn uniformly at
  model init and kept through training (only their F weights train): W is stored as
  values (out, F) and an index table (out, F), W[o, table[o, f]] = values[o, f], and
  applied as a gather (cost ∝ out·F, not out·in; ``gather_linear``).
* The embedding with fan-in F has a fixed fan-out F_e (``fan_out_table``; F_e =
  ``emb_fan_out``, default F): input feature i reaches the channels
  perm[(i·F_e + f) mod D], f < F_e, perm a random permutation of the D channels drawn at
  init; so its targets are distinct across features when D ≥ features·F_e (every channel
  reached at most once: the same current pattern at every width D), and each input
  spike costs F_e synaptic ops whatever D.
"""
from __future__ import annotations

import math

import torch

from sim import numerics as nm
from spikeformer.layers.lif import ste

WEIGHT_KINDS = ("int8", "ternary")


def check_sparsity(sparsity: float | None) -> None:
    """None (dense) or a fraction of zeros strictly between 0 and 1."""
    if sparsity is not None and not (isinstance(sparsity, (int, float)) and 0.0 < sparsity < 1.0):
        raise ValueError(f"config.weight_sparsity must be in (0, 1) (fraction of zero weights) or null, got {sparsity!r}")


def check_fan_in(fan_in: int | None, dim: int, hidden: int, emb_fan_out: int | None = None) -> None:
    """None (dense) or F ∈ [1, dim]: every trained matrix's pre population (stream, hidden) has ≥ dim neurons;
    the embedding's fan-out F_e ∈ [1, dim] (only with fan_in)."""
    if fan_in is None:
        if emb_fan_out is not None:
            raise ValueError("config.emb_fan_out needs config.fan_in (a dense embedding has no fixed fan-out)")
        return
    for name, v in (("fan_in", fan_in), ("emb_fan_out", emb_fan_out)):
        if v is None and name == "emb_fan_out":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"config.{name} must be a positive integer or null, got {v!r}")
        if v > min(dim, hidden):
            what = "a neuron fed by the" if name == "fan_in" else "an input feature cannot reach more channels than the"
            raise ValueError(f"config.{name} ({v}) is larger than the pre-population: {what} {dim}-wide stream "
                             f"cannot keep {v} {'incoming weights' if name == 'fan_in' else 'targets'} "
                             f"({name} ≤ dim = {dim})")


def fan_in_table(n_out: int, n_in: int, fan_in: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """(n_out, F) int64: row o holds F distinct pre indices (sorted), drawn uniformly without replacement."""
    f = min(fan_in, n_in)
    return torch.rand(n_out, n_in, generator=gen).argsort(dim=1)[:, :f].sort(dim=1).values


def fan_out_table(n_in: int, n_out: int, fan_out: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """(n_in, F_e) int64: feature i reaches perm[(i·F_e + f) mod n_out] (module doc): distinct per feature,
    distinct across features when n_out ≥ n_in·F_e."""
    f = min(fan_out, n_out)
    perm = torch.randperm(n_out, generator=gen)
    return perm[(torch.arange(n_in)[:, None] * f + torch.arange(f)[None, :]) % n_out]


_CHUNK_BYTES = 1 << 20        # per block of output rows in ∂values: small temporaries come from the heap, not fresh pages


def _bags(table: torch.Tensor, n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The table transposed, as embedding-bag arguments: (o of each entry sorted by pre index, bag offsets
    (n_in,), the order of the entries) — bag i holds the (o, f) with table[o, f] = i."""
    flat = table.reshape(-1)
    order = torch.argsort(flat, stable=True)
    offsets = torch.zeros(n_in, dtype=torch.long, device=table.device)
    offsets[1:] = torch.bincount(flat, minlength=n_in).cumsum(0)[:-1]
    return order // table.shape[1], offsets, order


class _GatherLinear(torch.autograd.Function):
    """y[r, o] = Σ_f x[r, table[o, f]]·values[o, f] on 2-D x (rows, in), with its gradients
    ∂x[r, i] = Σ_{o,f: table[o,f] = i} values[o, f]·∂y[r, o] (an embedding bag over the transposed table) and
    ∂values[o, f] = Σ_r x[r, table[o, f]]·∂y[r, o] (batched dot products over blocks of output rows)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        xt = x.T.contiguous()                                 # (in, rows): one embedding row per pre neuron
        n_out, f = table.shape
        offsets = torch.arange(0, n_out * f, f, device=x.device)
        y = torch.nn.functional.embedding_bag(table.reshape(-1), xt, offsets, mode="sum",
                                              per_sample_weights=values.reshape(-1))
        ctx.save_for_backward(xt, table, values)
        return y.T

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        xt, table, values = ctx.saved_tensors
        (n_in, rows), (n_out, f) = xt.shape, table.shape
        gyt = gy.T.contiguous()                               # (out, rows)
        gx = gv = None
        if ctx.needs_input_grad[0]:
            bag_o, offsets, order = _bags(table, n_in)
            gx = torch.nn.functional.embedding_bag(bag_o, gyt, offsets, mode="sum",
                                                   per_sample_weights=values.reshape(-1)[order]).T
        if ctx.needs_input_grad[2]:
            gv = torch.empty_like(values)
            step = max(1, _CHUNK_BYTES // max(1, f * rows * xt.element_size()))
            for o in range(0, n_out, step):
                pre = xt.index_select(0, table[o:o + step].reshape(-1)).view(-1, f, rows)
                gv[o:o + step] = torch.bmm(pre, gyt[o:o + step, :, None])[:, :, 0]
        return gx, None, gv


def gather_linear(x: torch.Tensor, table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """y[..., o] = Σ_f x[..., table[o, f]]·values[o, f]: a fixed fan-in matrix applied at cost ∝ out·F.

    Forward: one ``embedding_bag`` over the transposed input (bags = rows of the table), so neither the
    dense matrix nor an (…, out·F) intermediate is built; exact for integer-valued float inputs below 2²⁴.
    Backward: ``_GatherLinear`` (torch's own per-sample-weight gradient of ``embedding_bag`` is ~15× slower)."""
    lead, n_in = x.shape[:-1], x.shape[-1]
    y = _GatherLinear.apply(x.reshape(-1, n_in), table, values.to(x.dtype))
    return y.reshape(*lead, table.shape[0])


def scatter_dense(values: torch.Tensor, table: torch.Tensor, n_cols: int) -> torch.Tensor:
    """The dense (rows, n_cols) matrix with values[r, f] at column table[r, f], zeros elsewhere."""
    return torch.zeros(values.shape[0], n_cols, dtype=values.dtype, device=values.device).scatter(1, table, values)


def support_mask(w: torch.Tensor, sparsity: float | None) -> torch.Tensor | None:
    """The kept entries of a trained matrix with a fixed non-zero count, or None."""
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
def project_(weights: torch.nn.ParameterDict, sparsity: float | None) -> None:
    """W ← W ⊙ support_mask(W): re-impose the fixed non-zero count after an optimiser step (a fixed fan-in keeps
    its support in its index tables: nothing to do)."""
    if sparsity is None:
        return
    for w in weights.values():
        w.mul_(support_mask(w, sparsity))
