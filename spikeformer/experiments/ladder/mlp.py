"""The ladder's rung model: one hidden layer of D units between an MNIST-1D signal (40 samples) and 10 classes.

    a = (W_in ⊙ M) x + b_in          (D,)  M: the wiring mask, below
    z = the hidden code, per rung
    y = W_out z + b_out               logits (10,)

Hidden code (``RungConfig.neuron`` / ``select``):

* relu / topk (R0):    z = a ⊙ keep_k(a, a > 0)            the k largest positive a keep their value (TopK)
* binary / topk (R1):  z = keep_k(a, a > 0) · H(a)          1 per kept unit; backward ∂z/∂a = kept · atan′(a)
                       (snnTorch's arctan surrogate, α = 2: ``spikeformer.layers.lif.spike``; kept is a constant)
* lif / strength (R2): T ticks in float, a the constant input current:
                           v_t = β·v_{t−1}·(1 − r_{t−1}) + a,   r_t = H(v_t − θ) (atan surrogate),
                           s_t = r_t · keep_k(v_t, r_t),   z = (1/T)·Σ_t s_t
                       (every raw spike resets its unit, kept or not, as a LIF population read by a k-WTA does)
* lif / group (R3):    the same with s_t = first_in_groups(r_t, k) (``spikeformer.arch.wta``: the first raw spike
                       of each of k contiguous channel groups; its count surrogate included)
* relu / none:         z = ReLU(a)   (the dense baselines)

    keep_k(score, eligible, k)_c = 1[eligible_c ∧ |{c' eligible : s_c' > s_c ∨ (s_c' = s_c ∧ c' < c)}| < k]  (s: score)

— the k largest scores among the eligible units, ties to the lower index; fewer than k eligible: all of them.
β = 1 − dv/4096 with the project's default dv = 1024 (0.75); θ = 1.

Wiring (``wiring``; the mask M, the same at every tick):

* dense: all ones;
* fanin-random: each unit reads F distinct inputs drawn uniformly at init, fixed;
* fanout-random: each input reaches F distinct units, the 40·F pairs on distinct units while D ≥ 40·F (as the
  transformer's ``emb_fan_out``), fixed;
* fanin-learned: the F largest |w| per unit of dense shadow weights W, re-chosen before every training step, the
  number kept per unit annealed linearly from 40 to F over the first ``anneal_epochs`` epochs (Gao et al. 2025,
  "Weight-sparse transformers have interpretable circuits": top-|w| masks, L0 annealed during training); the
  forward pass uses W ⊙ M, the gradient reaches every shadow weight (straight-through), so a pruned weight can
  grow back; the trained model holds only the final F·D non-zeros.

Initialisation (``init``): W_in ~ U(±1/√n) with n the inputs M gives a unit (≥ 1), b_in ~ U(±1/√40);
"default": W_out, b_out ~ U(±1/√D) (torch's Linear); "active" (width-aware): U(±1/√k), the scale of k active
inputs, so the initial logits do not shrink as D grows at fixed k.

AuxK (``aux_k`` = α > 0; Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): a unit is dead when it was
not kept in the last ``DEAD_STEPS`` training steps; z_aux = a ⊙ keep_k(a, dead ∧ a > 0) and the loss adds
α·CE(y.detach() + W_out z_aux, label): the k strongest dead units are trained to explain what the live code misses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spikeformer.arch.wiring import groups_of
from spikeformer.arch.wta import first_in_groups
from spikeformer.layers.lif import spike, ste

INPUTS, CLASSES = 40, 10
LEAK = 1.0 - 1024 / 4096          # β: the project's default dv = 1024
THRESHOLD = 1.0                   # θ
DEAD_STEPS = 50                   # AuxK: not kept in this many training steps → dead
NEURONS = ("relu", "binary", "lif")
SELECTS = ("topk", "strength", "group", "none")
WIRINGS = ("dense", "fanin-random", "fanout-random", "fanin-learned")
INITS = ("default", "active")


@dataclass(frozen=True)
class RungConfig:
    """One model of the ladder (module docstring); validated on construction, errors name the field."""
    dim: int
    k: int | None = None
    neuron: str = "relu"
    select: str = "none"
    wiring: str = "dense"
    fan: int | None = None
    timesteps: int = 1
    init: str = "default"
    aux_k: float = 0.0
    anneal_epochs: int = 5

    def __post_init__(self) -> None:
        for name, value, allowed in (("neuron", self.neuron, NEURONS), ("select", self.select, SELECTS),
                                     ("wiring", self.wiring, WIRINGS), ("init", self.init, INITS)):
            if value not in allowed:
                raise ValueError(f"RungConfig.{name} must be one of {allowed}, got {value!r}")
        _positive("dim", self.dim)
        _positive("timesteps", self.timesteps)
        _positive("anneal_epochs", self.anneal_epochs)
        if (self.select == "none") != (self.k is None):
            raise ValueError(f"RungConfig.k must be given exactly when select is not 'none' (select "
                             f"{self.select!r}, k {self.k!r})")
        if self.k is not None:
            _positive("k", self.k)
            if self.k > self.dim:
                raise ValueError(f"RungConfig.k ({self.k}) is larger than the width dim ({self.dim})")
        if (self.wiring == "dense") != (self.fan is None):
            raise ValueError(f"RungConfig.fan must be given exactly when wiring is not 'dense' (wiring "
                             f"{self.wiring!r}, fan {self.fan!r})")
        if self.fan is not None:
            _positive("fan", self.fan)
            limit = self.dim if self.wiring == "fanout-random" else INPUTS
            if self.fan > limit:
                raise ValueError(f"RungConfig.fan ({self.fan}) is larger than the {limit} units it draws from")
        if (self.neuron == "lif") != (self.select in ("strength", "group")):
            raise ValueError(f"RungConfig: select {self.select!r} needs neuron 'lif' and lif needs strength or "
                             f"group, got neuron {self.neuron!r}")
        if self.neuron != "lif" and self.timesteps != 1:
            raise ValueError(f"RungConfig.timesteps must be 1 for a {self.neuron} neuron, got {self.timesteps}")
        if self.neuron == "binary" and self.select != "topk":
            raise ValueError("RungConfig: a binary neuron needs select 'topk'")
        if self.aux_k < 0 or (self.aux_k > 0 and self.k is None):
            raise ValueError(f"RungConfig.aux_k must be ≥ 0 and needs k, got {self.aux_k!r}")


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RungConfig.{name} must be a positive integer, got {value!r}")


def keep_k(score: torch.Tensor, eligible: torch.Tensor, k: int) -> torch.Tensor:
    """keep_k of the module docstring along the last axis (bool): the k largest eligible scores, ties to the
    lower index."""
    key = torch.where(eligible, score, -torch.inf)
    k = min(k, score.shape[-1])
    cut = key.topk(k, dim=-1).values[..., -1:]                   # the k-th largest key
    kept = eligible & (key >= cut)
    if bool((kept.sum(-1) <= k).all()):                          # no tie across the cut (the usual case)
        return kept
    above = eligible & (key > cut)
    tied = kept & ~above
    return above | (tied & (torch.cumsum(tied, -1) <= k - above.sum(-1, keepdim=True)))


def earlier_in_group(x: torch.Tensor, k: int) -> torch.Tensor:
    """E(x)_c = Σ_{c' ∈ G(c), c' < c} x_c' along the last axis, G the k contiguous groups of the group rule (the
    count ``first_in_groups`` subtracts)."""
    if x.shape[-1] % k == 0:                                   # equal groups: a cumsum inside each
        g = x.unflatten(-1, (k, x.shape[-1] // k))
        return (torch.cumsum(g, dim=-1) - g).flatten(-2)
    _, i = groups_of(x.shape[-1], k)
    start = torch.as_tensor(np.arange(x.shape[-1]) - i, device=x.device)
    earlier = torch.cumsum(x, dim=-1) - x
    return earlier - earlier.index_select(-1, start)


def lif_ticks(a: torch.Tensor, k: int, timesteps: int, select: str) -> torch.Tensor:
    """lif / strength or group over T ticks, (B, T, D): the forward pass of the module docstring without autograd,
    and its gradient in closed form — the one autograd gives the tick loop (the tests compare them).

    The reset uses r detached, so v_t is linear in a: ∂v_t/∂a = m_t, m_t = 1 + β·(1 − r_{t−1})·m_{t−1} (m_0 = 0);
    with p_t = atan′((v_t − θ)/θ)/θ·m_t:
      strength:  ∂s_t/∂a = kept_t·p_t                                  (keep_k a constant)
      group:     s_t = [2·n_t − 1 > 0], n_t = r_t − E(r_t) (``first_in_groups``), so
                 ds_t = 2·atan′(2·n_t − 1)·(dr_t − E(dr_t)), dr_t = p_t·da  (E: ``earlier_in_group``)
    returned as s + (the linear map of δ = a − a.detach(), zero in value) so that autograd applies its transpose."""
    delta = a - a.detach()
    ticks = []
    with torch.no_grad():
        v, m, r = torch.zeros_like(a), torch.zeros_like(a), torch.zeros_like(a, dtype=torch.bool)
    for _ in range(timesteps):
        with torch.no_grad():
            m = torch.where(r, 1.0, m.mul_(LEAK).add_(1.0))
            v = torch.where(r, a, v.mul_(LEAK).add_(a))
            r = v > THRESHOLD
            p = m / (v - THRESHOLD).mul_(math.pi / THRESHOLD).square_().add_(1.0) / THRESHOLD
        if select == "strength":
            with torch.no_grad():
                kept = keep_k(v, r, k)
                p = torch.where(kept, p, 0.0)
            ticks.append(kept.to(a.dtype) + delta * p)
            continue
        with torch.no_grad():
            rf = r.to(a.dtype)
            s = first_in_groups(rf, k)
            q = 2.0 / (1.0 + (math.pi * (2.0 * (rf - earlier_in_group(rf, k)) - 1.0)) ** 2)
        dr = delta * p
        ticks.append(s + q * (dr - earlier_in_group(dr, k)))
    return torch.stack(ticks, 1)


def wiring_mask(cfg: RungConfig, gen: torch.Generator) -> torch.Tensor:
    """The fixed mask M (D, 40) of ``cfg.wiring`` (fanin-learned starts dense)."""
    D, F = cfg.dim, cfg.fan
    if cfg.wiring in ("dense", "fanin-learned"):
        return torch.ones(D, INPUTS)
    m = torch.zeros(D, INPUTS)
    if cfg.wiring == "fanin-random":
        src = torch.rand(D, INPUTS, generator=gen).argsort(dim=1)[:, :F]
        return m.scatter_(1, src, 1.0)
    if D >= INPUTS * F:
        dst = torch.randperm(D, generator=gen)[:INPUTS * F].view(INPUTS, F)
    else:
        dst = torch.rand(INPUTS, D, generator=gen).argsort(dim=1)[:, :F]
    m[dst, torch.arange(INPUTS).unsqueeze(1).expand(-1, F)] = 1.0
    return m


def top_weights_mask(w: torch.Tensor, n: int) -> torch.Tensor:
    """1 at the n largest |w| of every row (exactly n per row), 0 elsewhere."""
    return torch.zeros_like(w).scatter_(1, w.abs().topk(n, dim=1).indices, 1.0)


def annealed_nonzeros(cfg: RungConfig, epoch: float) -> int:
    """fanin-learned: weights kept per unit after ``epoch`` (fractional) epochs: 40 → F linearly, then F."""
    frac = min(max(epoch / cfg.anneal_epochs, 0.0), 1.0)
    return int(round(INPUTS - (INPUTS - cfg.fan) * frac))


class LadderMLP(nn.Module):
    """The model of the module docstring; ``seed`` draws the weights and the fixed wiring."""

    def __init__(self, cfg: RungConfig, seed: int) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed)
        mask = wiring_mask(cfg, gen)
        fan_in = mask.sum(1, keepdim=True).clamp(min=1.0)
        uniform = lambda shape, bound: (torch.rand(shape, generator=gen) * 2 - 1) * bound  # noqa: E731
        self.w_in = nn.Parameter(uniform((cfg.dim, INPUTS), 1.0) / fan_in.sqrt())
        self.b_in = nn.Parameter(uniform((cfg.dim,), INPUTS ** -0.5))
        out_bound = (cfg.k if cfg.init == "active" else cfg.dim) ** -0.5
        self.w_out = nn.Parameter(uniform((CLASSES, cfg.dim), out_bound))
        self.b_out = nn.Parameter(uniform((CLASSES,), out_bound))
        self.register_buffer("mask", mask)
        self.register_buffer("last_kept", torch.zeros(cfg.dim, dtype=torch.long))
        self.steps = 0

    def reselect(self, nonzeros: int) -> None:
        """fanin-learned: M ← the ``nonzeros`` largest |w| per unit of the shadow weights."""
        if self.cfg.wiring != "fanin-learned":
            raise ValueError(f"reselect: wiring {self.cfg.wiring!r} is fixed, only fanin-learned re-chooses")
        self.mask = top_weights_mask(self.w_in.detach(), nonzeros)

    def input_weights(self) -> torch.Tensor:
        """W_in ⊙ M, the gradient straight through to every shadow weight when the wiring is learned."""
        masked = self.w_in * self.mask
        return ste(self.w_in, masked) if self.cfg.wiring == "fanin-learned" else masked

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """a = (W_in ⊙ M) x + b_in, (B, D)."""
        return x @ self.input_weights().t() + self.b_in

    def code(self, a: torch.Tensor) -> torch.Tensor:
        """The hidden outputs per tick, (B, T, D): z = their mean over T."""
        cfg = self.cfg
        if cfg.select == "none":
            return torch.relu(a).unsqueeze(1)
        if cfg.select == "topk":
            kept = keep_k(a.detach(), a.detach() > 0, cfg.k).to(a.dtype)
            out = a * kept if cfg.neuron == "relu" else spike(a, 0.0, 1.0) * kept
            return out.unsqueeze(1)
        return lif_ticks(a, cfg.k, cfg.timesteps, cfg.select)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.code(self.current(x)))

    def logits(self, ticks: torch.Tensor) -> torch.Tensor:
        return ticks.mean(1) @ self.w_out.t() + self.b_out

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, plus α·AuxK (module docstring) when ``aux_k`` > 0; counts the step for dead units."""
        a = self.current(x)
        ticks = self.code(a)
        logits = self.logits(ticks)
        loss = nn.functional.cross_entropy(logits, y)
        self.steps += 1
        if self.cfg.aux_k > 0:
            self.last_kept[(ticks.detach() != 0).any(1).any(0)] = self.steps
            dead = (self.steps - self.last_kept) > DEAD_STEPS
            if bool(dead.any()):
                aux = a * keep_k(a.detach(), dead & (a.detach() > 0), self.cfg.k).to(a.dtype)
                loss = loss + self.cfg.aux_k * nn.functional.cross_entropy(
                    logits.detach() + aux @ self.w_out.t(), y)
        return loss
