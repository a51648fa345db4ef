"""``CubaLIF``: Loihi 2 CUBA LIF in fixed point, bit-exact with Lava's ``PyLifModelBitAcc``.

Per tick (``sim.numerics`` holds the constants)::

    u[t] = wrap24( sgn(u')·(|u'·(4096 − (du+1))| >> 12) + (a[t] << 6) )
    v[t] = clip24( sgn(v')·(|v'·(4096 − dv)| >> 12) + u[t] )
    s[t] = v[t] > (vth << 6);   v[t] ← 0 where s[t]

with wrap24(x) = x − 2²⁴ if x > 2²³, x + 2²⁴ if x ≤ −2²³ and clip24(x) = clip(x, −(2²³−1), 2²³−1).
Parameters: integers du, dv ∈ [0, 4095], vth ∈ [0, 2¹⁷−1].
"""
from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

from sim.neurons import Kernel, ModelError, NeuronModel, register, register_kernel
from sim.numerics import (ACT_SHIFT, DECAY_SHIFT, DECAY_UNITY, DM_OFFSET, DS_OFFSET, DU_MAX, DV_MAX, UV_MAX,
                          VTH_MAX, VTH_SHIFT)


def lif_step_loihi_np(u: np.ndarray, v: np.ndarray, a: np.ndarray,
                      du: np.ndarray | int, dv: np.ndarray | int,
                      vth: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Loihi tick for a vector of neurons (numpy reference; see module doc)."""
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    du = np.asarray(du, np.int64)
    dv = np.asarray(dv, np.int64)
    du_prod = u * (DECAY_UNITY - (du + DS_OFFSET))
    u_new = np.sign(du_prod) * (np.abs(du_prod) >> DECAY_SHIFT) + (np.asarray(a, np.int64) << ACT_SHIFT)
    u_new = np.where(u_new > UV_MAX, u_new - 2 * UV_MAX, u_new)
    u_new = np.where(u_new <= -UV_MAX, u_new + 2 * UV_MAX, u_new)
    dv_prod = v * (DECAY_UNITY - (dv + DM_OFFSET))
    v_new = np.sign(dv_prod) * (np.abs(dv_prod) >> DECAY_SHIFT) + u_new
    v_new = np.clip(v_new, -UV_MAX + 1, UV_MAX - 1)
    s = v_new > (np.asarray(vth, np.int64) << VTH_SHIFT)
    v_new = np.where(s, 0, v_new)
    return u_new.astype(np.int32), v_new.astype(np.int32), s


@numba.njit(cache=True, inline="always")
def _decay(x: int, d: int) -> int:
    """sgn(p)·(|p| >> 12) for p = x·d, branch-free: (p + (4095 if p < 0 else 0)) >> 12 (arithmetic shift)."""
    p = np.int64(x) * d
    return (p + ((p >> 63) & (DECAY_UNITY - 1))) >> DECAY_SHIFT


@numba.njit(cache=True, inline="always")
def lif_step_loihi_pre(u: int, v: int, a: int, du: int, dv: int, vth: int):
    """Scalar Loihi tick before the spike test and reset: (u, v clipped to 24 bits, whether the clip acted)."""
    un = _decay(u, DECAY_UNITY - (du + DS_OFFSET)) + (np.int64(a) << ACT_SHIFT)
    un = un - 2 * UV_MAX if un > UV_MAX else un
    un = un + 2 * UV_MAX if un <= -UV_MAX else un
    vn = _decay(v, DECAY_UNITY - (dv + DM_OFFSET)) + un
    clipped = (vn > UV_MAX - 1) | (vn < -UV_MAX + 1)
    vn = min(max(vn, -UV_MAX + 1), UV_MAX - 1)
    return un, vn, clipped


@numba.njit(cache=True, inline="always")
def lif_step_loihi(u: int, v: int, a: int, du: int, dv: int, vth: int):
    """Scalar Loihi tick for the engine; returns (u, v, spiked). Same as the numpy reference."""
    un, vn, _ = lif_step_loihi_pre(u, v, a, du, dv, vth)
    spiked = vn > (np.int64(vth) << VTH_SHIFT)
    return np.int32(un), np.int32(0 if spiked else vn), spiked


@numba.njit(cache=True, inline="always")
def lif_idle_loihi(v: int, du: int, dv: int, vth: int, ticks: int):
    """``ticks`` input-free ticks from u = 0: v ← sgn(v)·(|v·(4096 − dv)| >> 12) (stops at v = 0).
    No spike is possible: after an update v ≤ vth·64, and |v| only shrinks."""
    for _ in range(ticks):
        if v == 0 or dv == 0:
            break
        _, v, _ = lif_step_loihi(0, v, 0, DU_MAX, dv, VTH_MAX)
    return v


KERNEL = register_kernel(Kernel("loihi_cuba", True, lif_step_loihi_np, lif_step_loihi, lif_idle_loihi, rests=True,
                                full_decay=lambda du, dv, vth: du == DU_MAX))


@register
class CubaLIF(NeuronModel):
    """Loihi 2 CUBA LIF, fixed point (see module doc)."""

    du: int
    dv: int
    vth: int

    kind: ClassVar[str] = "cuba_lif"
    numerics: ClassVar[tuple[str, ...]] = ("loihi",)
    kernel_name: ClassVar[str] = "loihi_cuba"
    cuba: ClassVar[bool] = True

    def validate(self) -> None:
        for name, hi in (("du", DU_MAX), ("dv", DV_MAX), ("vth", VTH_MAX)):
            x = getattr(self, name)
            if isinstance(x, bool) or not isinstance(x, (int, np.integer, float)) or float(x) != int(x) \
                    or not 0 <= int(x) <= hi:
                raise ModelError(name, f"must be an integer in [0, {hi}] for loihi numerics, got {x}")
            object.__setattr__(self, name, int(x))

    def kernel_params(self) -> tuple[int, int, int]:
        return (self.du, self.dv, self.vth)

    def float_equivalent(self) -> NeuronModel:
        """CUBA LIF in float with du_f = (du+1)/4096, dv_f = dv/4096, vth_f = vth (a unit of ``a``
        is a unit of ``v``)."""
        from sim.neurons.cuba_lif_float import CubaLIFFloat
        return CubaLIFFloat((self.du + DS_OFFSET) / DECAY_UNITY, self.dv / DECAY_UNITY, float(self.vth))
