"""LIF dynamics for training: pure functions of (state, input, params), torch tensors.

The forward pass is the arithmetic of ``sim.numerics`` exactly; gradients are
straight-through for truncation/rounding and snnTorch's arctan surrogate for the
spike (``snntorch.surrogate.atan``)::

    loihi:  u ← wrap24(trunc(u·(4095−du)/4096) + 64·a)
            v ← clip24(trunc(v·(4096−dv)/4096) + u);  s = H(v − 64·vth);  v ← v·(1−s)
    float:  u ← u·(1−du_f) + a;  v ← v·(1−dv_f) + u;  s = H(v − vth);  v ← v·(1−s)

In ``loihi`` mode tensors are float64 holding integers: every product here is
below 2³⁷ and division by 4096 is exact in binary floating point, so ``trunc``
reproduces Lava's ``sign(p)·(|p| >> 12)`` bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from snntorch import surrogate

from sim import numerics as nm

_spike = surrogate.atan(alpha=2.0)


def ste(x: torch.Tensor, forward_value: torch.Tensor) -> torch.Tensor:
    """forward_value in the forward pass, identity gradient w.r.t. x."""
    return x + (forward_value - x).detach()


def spike(v: torch.Tensor, threshold: torch.Tensor | float, scale: float) -> torch.Tensor:
    """H(v − threshold) (strict), arctan surrogate on (v − threshold)/scale."""
    return _spike((v - threshold) / scale).to(v.dtype)


@dataclass(frozen=True)
class LifParams:
    """One population's Loihi fields (integers); float mode derives its own."""

    du: int
    dv: int
    vth: int

    def __post_init__(self) -> None:
        for name, hi in (("du", nm.DU_MAX), ("dv", nm.DV_MAX), ("vth", nm.VTH_MAX)):
            x = getattr(self, name)
            if not isinstance(x, int) or not 0 <= x <= hi:
                raise ValueError(f"LifParams.{name} must be an integer in [0, {hi}], got {x!r}")

    def as_float(self) -> tuple[float, float, float]:
        """(du_f, dv_f, vth_f) of the float mode: ((du+1)/4096, dv/4096, vth)."""
        return (self.du + nm.DS_OFFSET) / nm.DECAY_UNITY, self.dv / nm.DECAY_UNITY, float(self.vth)


def lif_step_loihi(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: LifParams
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Loihi 2 fixed-point tick (float64 tensors holding integers)."""
    u = ste(u, torch.trunc(u * ((nm.DECAY_UNITY - p.du - nm.DS_OFFSET) / nm.DECAY_UNITY))) + a * (1 << nm.ACT_SHIFT)
    u = torch.where(u > nm.UV_MAX, u - 2 * nm.UV_MAX, u)
    u = torch.where(u <= -nm.UV_MAX, u + 2 * nm.UV_MAX, u)
    v = ste(v, torch.trunc(v * ((nm.DECAY_UNITY - p.dv - nm.DM_OFFSET) / nm.DECAY_UNITY))) + u
    v = torch.clamp(v, -nm.UV_MAX + 1, nm.UV_MAX - 1)
    vth = float(p.vth << nm.VTH_SHIFT)
    s = spike(v, vth, max(vth, float(1 << nm.VTH_SHIFT)))
    return u, v * (1 - s.detach()), s


def lif_step_float(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: LifParams
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One float32 tick with the same dynamics (see module docstring)."""
    du, dv, vth = p.as_float()
    u = u * (1.0 - du) + a
    v = v * (1.0 - dv) + u
    s = spike(v, vth, max(vth, 1.0))
    return u, v * (1 - s.detach()), s


def quantize_mantissa(w: torch.Tensor) -> torch.Tensor:
    """Loihi weight 2·clamp(round(w), −127, 127): even integers in [−254, 254], STE gradient."""
    return 2.0 * ste(w, torch.clamp(torch.round(w), nm.W_MANT_MIN, nm.W_MANT_MAX))
