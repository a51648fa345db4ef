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

import math

import numpy as np
import torch
from snntorch import surrogate

from sim import numerics as nm
from sim.neurons.cuba import CubaLIF

_spike = surrogate.atan(alpha=2.0)


def ste(x: torch.Tensor, forward_value: torch.Tensor) -> torch.Tensor:
    """forward_value in the forward pass, identity gradient w.r.t. x."""
    return x + (forward_value - x).detach()


def spike(v: torch.Tensor, threshold: torch.Tensor | float, scale: float) -> torch.Tensor:
    """H(v − threshold) (strict), arctan surrogate on (v − threshold)/scale."""
    return _spike((v - threshold) / scale).to(v.dtype)


def float_params(p: CubaLIF) -> tuple[float, float, float]:
    """(du_f, dv_f, vth_f) of the float mode: ((du+1)/4096, dv/4096, vth) (``CubaLIF.float_equivalent``)."""
    f = p.float_equivalent()
    return f.du, f.dv, f.vth


def lif_step_loihi(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: CubaLIF
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


def lif_step_float(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: CubaLIF
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One float32 tick with the same dynamics (see module docstring)."""
    du, dv, vth = float_params(p)
    u = u * (1.0 - du) + a
    v = v * (1.0 - dv) + u
    s = spike(v, vth, max(vth, 1.0))
    return u, v * (1 - s.detach()), s


def quantize_mantissa(w: torch.Tensor) -> torch.Tensor:
    """Loihi weight 2·clamp(round(w), −127, 127): even integers in [−254, 254], STE gradient."""
    return 2.0 * ste(w, torch.clamp(torch.round(w), nm.W_MANT_MIN, nm.W_MANT_MAX))


def surrogate_grad(x: torch.Tensor) -> torch.Tensor:
    """d/dx of snnTorch's arctan surrogate (alpha = 2): (α/2) / (1 + (π/2·α·x)²)."""
    return 1.0 / (1.0 + (math.pi * x) ** 2)


class _LifSequence(torch.autograd.Function):
    """T ticks of one population: input currents a (B, T, …) → spikes (B, T, …).

    Forward: the integer arithmetic of ``lif_step_loihi`` (int64, exact) or the
    float32 arithmetic of ``lif_step_float``. Saved for backward, per element and
    tick: the pre-reset voltage (int32 / float32) and, in loihi mode, whether the
    24-bit clip was inactive (bool) — 5 bytes instead of autograd's ~10 float64
    tensors. ``fused`` (default on the CPU): both directions run as numba loops
    (``spikeformer.layers.lif_cpu``, the engine's scalar step); otherwise as torch ops. Backward is the gradient of the per-tick functions above, written out
    (straight-through decay in loihi mode, decay factors in float mode)::

        g_v[t] = g_s[t]·σ'((v[t] − θ)/κ)/κ + g_v[t+1]·c_v·(1 − s[t])·m[t+1]
        g_u[t] = g_v[t]·m[t] + g_u[t+1]·c_u;      g_a[t] = 64·g_u[t] (loihi) | g_u[t] (float)

    with m = clip inactive (loihi; 1 in float), c_u = c_v = 1 (loihi) or
    (1 − du_f), (1 − dv_f) (float), θ the threshold and κ = max(θ, one unit).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, p: CubaLIF, loihi: bool, fused: bool, voltage: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # noqa: D401
        ctx.p, ctx.loihi, ctx.fused = p, loihi, fused
        if fused:                  # fused numba loops (spikeformer.layers.lif_cpu)
            from spikeformer.layers import lif_cpu
            x = a.detach().contiguous().reshape(a.shape[0], a.shape[1], -1).numpy()
            s_out = np.empty_like(x)
            if loihi:
                v_pre, inside = np.empty(x.shape, np.int32), np.empty(x.shape, np.bool_)
                lif_cpu.run(lif_cpu.forward_loihi, x, p.du, p.dv, p.vth, s_out, v_pre, inside)
                ctx.save_for_backward(torch.from_numpy(v_pre), torch.from_numpy(inside))
            else:
                du, dv, vth = float_params(p)
                v_pre = np.empty(x.shape, np.float32)
                lif_cpu.run(lif_cpu.forward_float, x, du, dv, vth, s_out, v_pre)
                ctx.save_for_backward(torch.from_numpy(v_pre))
            return _with_voltage(ctx, torch.from_numpy(s_out).reshape(a.shape), torch.from_numpy(v_pre), voltage)
        T = a.shape[1]
        s_out = torch.empty_like(a)
        if loihi:
            u = torch.zeros_like(a[:, 0], dtype=torch.int64)
            v = torch.zeros_like(u)
            v_pre = torch.empty(a.shape, dtype=torch.int32, device=a.device)
            inside = torch.empty(a.shape, dtype=torch.bool, device=a.device)
            cu, cv = nm.DECAY_UNITY - p.du - nm.DS_OFFSET, nm.DECAY_UNITY - p.dv - nm.DM_OFFSET
            vth = p.vth << nm.VTH_SHIFT
            for t in range(T):
                pu = u * cu
                u = torch.where(pu >= 0, pu >> nm.DECAY_SHIFT, -((-pu) >> nm.DECAY_SHIFT))
                u = u + (a[:, t].to(torch.int64) << nm.ACT_SHIFT)
                u = torch.where(u > nm.UV_MAX, u - 2 * nm.UV_MAX, u)
                u = torch.where(u <= -nm.UV_MAX, u + 2 * nm.UV_MAX, u)
                pv = v * cv
                v = torch.where(pv >= 0, pv >> nm.DECAY_SHIFT, -((-pv) >> nm.DECAY_SHIFT)) + u
                inside[:, t] = (v >= -nm.UV_MAX + 1) & (v <= nm.UV_MAX - 1)
                v = v.clamp(-nm.UV_MAX + 1, nm.UV_MAX - 1)
                s = v > vth
                v_pre[:, t] = v.to(torch.int32)
                s_out[:, t] = s
                v = torch.where(s, 0, v)
            ctx.save_for_backward(v_pre, inside)
        else:
            du, dv, vth_f = float_params(p)
            u = torch.zeros_like(a[:, 0])
            v = torch.zeros_like(u)
            v_pre = torch.empty_like(a)
            for t in range(T):
                u = u * (1.0 - du) + a[:, t]
                v = v * (1.0 - dv) + u
                s = v > vth_f
                v_pre[:, t] = v
                s_out[:, t] = s
                v = torch.where(s, 0.0, v)
            ctx.save_for_backward(v_pre)
        return _with_voltage(ctx, s_out, v_pre, voltage)

    @staticmethod
    def backward(ctx, g_s: torch.Tensor, *_):
        p, loihi = ctx.p, ctx.loihi
        if loihi:
            v_pre, inside = ctx.saved_tensors
            theta = float(p.vth << nm.VTH_SHIFT)
            kappa = max(theta, float(1 << nm.VTH_SHIFT))
            cu = cv = 1.0
        else:
            (v_pre,) = ctx.saved_tensors
            inside = None
            du, dv, theta = float_params(p)
            kappa = max(theta, 1.0)
            cu, cv = 1.0 - du, 1.0 - dv
        if ctx.fused:
            from spikeformer.layers import lif_cpu
            g = g_s.detach().to(torch.float32).contiguous().reshape(v_pre.shape).numpy()
            g_a = np.empty_like(g)
            clip = inside.numpy() if inside is not None else np.zeros((0, 0, 0), np.bool_)
            lif_cpu.run(lif_cpu.backward, g, v_pre.numpy(), clip, theta, kappa, cu, cv,
                             float(1 << nm.ACT_SHIFT) if loihi else 1.0, g_a)
            return torch.from_numpy(g_a).reshape(g_s.shape).to(g_s.dtype), None, None, None, None
        g_s = g_s.to(torch.float32)
        g_a = torch.empty_like(g_s)
        g_v_next = torch.zeros_like(g_s[:, 0])      # ∂L/∂v_pre[t+1], times the clip mask at t+1
        g_u_next = torch.zeros_like(g_v_next)
        for t in range(g_s.shape[1] - 1, -1, -1):
            vp = v_pre[:, t].to(torch.float32)
            s = vp > theta
            g_v = g_s[:, t] * surrogate_grad((vp - theta) / kappa) / kappa + torch.where(s, 0.0, g_v_next * cv)
            if inside is not None:
                g_v = g_v * inside[:, t]
            g_u = g_v + g_u_next * cu
            g_a[:, t] = g_u * (float(1 << nm.ACT_SHIFT) if loihi else 1.0)
            g_v_next, g_u_next = g_v, g_u
        return g_a, None, None, None, None


def _with_voltage(ctx, s: torch.Tensor, v_pre: torch.Tensor, voltage: bool
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """s, or (s, the pre-reset voltage in s's shape) marked non-differentiable."""
    if not voltage:
        return s
    v = v_pre.reshape(s.shape)
    ctx.mark_non_differentiable(v)
    return s, v


def lif_sequence(a: torch.Tensor, p: CubaLIF, loihi: bool, fused: bool | None = None) -> torch.Tensor:
    """Spikes (B, T, …) of a LIF population driven by currents a (B, T, …), 0/1 in a's dtype (see _LifSequence).

    ``fused``: numba kernels (default: when ``a`` is on the CPU) or torch ops (any device)."""
    return _LifSequence.apply(a, p, loihi, a.device.type == "cpu" if fused is None else fused, False)


def lif_sequence_voltage(a: torch.Tensor, p: CubaLIF, loihi: bool, fused: bool | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, v) of ``lif_sequence``: v (B, T, …) is each tick's voltage before the spike test and reset
    (loihi: the 24-bit integer, int32; float: float32) — the value a ``sim.neurons.probe.VoltageProbe`` twin
    compares; no gradient."""
    return _LifSequence.apply(a, p, loihi, a.device.type == "cpu" if fused is None else fused, True)


def fires_at_least(count: torch.Tensor, m: int) -> torch.Tensor:
    """Memoryless count neuron: [count ≥ m] for integer counts; arctan surrogate on (2·count − (2m−1))/(2m−1).

    The same value and gradient as a count_neuron(m) LIF fed weight-2 inputs (one tick, v = 128·count)."""
    return spike(2.0 * count, float(2 * m - 1), float(2 * m - 1))
