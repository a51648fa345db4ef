"""CUBA LIF in both numerics: ``CubaLIF`` (Loihi 2 fixed point, bit-exact with Lava's
``PyLifModelBitAcc``) and ``CubaLIFFloat`` (float32, snnTorch's ``Synaptic``).

``CubaLIF`` per tick (``sim.numerics`` holds the constants)::

    u[t] = wrap24( sgn(u')·(|u'·(4096 − (du+1))| >> 12) + (a[t] << 6) )
    v[t] = clip24( sgn(v')·(|v'·(4096 − dv)| >> 12) + u[t] )
    s[t] = v[t] > (vth << 6);   v[t] ← 0 where s[t]

with wrap24(x) = x − 2²⁴ if x > 2²³, x + 2²⁴ if x ≤ −2²³ and clip24(x) = clip(x, −(2²³−1), 2²³−1).
Parameters: integers du, dv ∈ [0, 4095], vth ∈ [0, 2¹⁷−1].

``CubaLIFFloat`` (α = 1 − du, β = 1 − dv, reset to zero, ``reset_delay=False``)::

    u[t] = u'·(1 − du) + a[t];   v[t] = v'·(1 − dv) + u[t];   s[t] = v[t] > vth;   v[t] ← 0 where s[t]

each operation rounded to float32, with (1 − du) computed as float32(1) − float32(du) (kernel
parameters ``cu, cv``). Parameters du, dv ∈ [0, 1] (the fraction lost per tick, dt/τ), vth finite ≥ 0
(NaN and ``inf``, a neuron that can never fire, are refused naming the field).
"""
from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

from sim.neurons.base import Kernel, ModelError, NeuronModel, register, register_kernel
from sim.numerics import (
    ACT_SHIFT,
    DECAY_SHIFT,
    DECAY_UNITY,
    DM_OFFSET,
    DS_OFFSET,
    DU_MAX,
    DV_MAX,
    UV_MAX,
    VTH_MAX,
    VTH_SHIFT,
)
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


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


LOIHI_KERNEL = register_kernel(Kernel("loihi_cuba", True, lif_step_loihi_np, lif_step_loihi, lif_idle_loihi, rests=True,
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
        check_loihi_integers(self, (("du", DU_MAX), ("dv", DV_MAX), ("vth", VTH_MAX)))

    def kernel_params(self) -> tuple[int, int, int]:
        return (self.du, self.dv, self.vth)

    def float_equivalent(self) -> NeuronModel:
        """CUBA LIF in float with du_f = (du+1)/4096, dv_f = dv/4096, vth_f = vth (a unit of ``a``
        is a unit of ``v``)."""
        return CubaLIFFloat((self.du + DS_OFFSET) / DECAY_UNITY, self.dv / DECAY_UNITY, float(self.vth))


F32 = np.float32


def cuba_step_float_np(u: np.ndarray, v: np.ndarray, a: np.ndarray, cu: np.ndarray | float, cv: np.ndarray | float,
                       vth: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One float tick (numpy reference): u ← u·cu + a; v ← v·cv + u; s = v > vth; v ← 0 if s."""
    u_new = (np.asarray(u, F32) * np.asarray(cu, F32) + np.asarray(a, F32)).astype(F32)
    v_new = (np.asarray(v, F32) * np.asarray(cv, F32) + u_new).astype(F32)
    s = v_new > np.asarray(vth, F32)
    v_new = np.where(s, F32(0), v_new).astype(F32)
    return u_new, v_new, s


@numba.njit(cache=True, inline="always")
def cuba_step_float(u: float, v: float, a: float, cu: float, cv: float, vth: float):
    """Scalar float32 tick for the engine; returns (u, v, spiked)."""
    un = np.float32(np.float32(u) * np.float32(cu) + np.float32(a))
    vn = np.float32(np.float32(v) * np.float32(cv) + un)
    spiked = vn > np.float32(vth)
    if spiked:
        vn = np.float32(0.0)
    return un, vn, spiked


@numba.njit(cache=True, inline="always")
def cuba_idle_float(v: float, cu: float, cv: float, vth: float, ticks: int):
    """``ticks`` input-free ticks from u = 0: v ← v·cv + 0 (stops at v = 0 or cv = 1)."""
    for _ in range(ticks):
        if v == 0.0 or cv == 1.0:
            break
        v = np.float32(np.float32(v) * np.float32(cv) + np.float32(0.0))
    return v


FLOAT_KERNEL = register_kernel(Kernel("float_cuba", False, cuba_step_float_np, cuba_step_float, cuba_idle_float, rests=True,
                                full_decay=lambda cu, cv, vth: cu == 0.0))


def decay_factor(d: float) -> float:
    """float32(1) − float32(d), the multiplier the float kernels use."""
    return float(F32(1) - F32(d))


def loihi_cuba(du: float, dv: float, vth: float, scale: float) -> NeuronModel:
    """Loihi ``CubaLIF`` of float (du, dv, vth) with voltages scaled by ``scale`` (``fixed_point``)."""
    t = round(scale * vth)
    if not np.isfinite(vth) or t > VTH_MAX:
        raise ModelError("vth", f"{vth}·{scale:.4g} does not fit Loihi's 17-bit threshold (≤ {VTH_MAX})")
    return CubaLIF(int(np.clip(round(4096 * du) - 1, 0, DU_MAX)), int(np.clip(round(4096 * dv), 0, DV_MAX)), int(t))


def check_loihi_integers(model: NeuronModel, bounds: tuple[tuple[str, int], ...]) -> None:
    """Each field ``name`` of ``model`` (frozen) is an integer in [0, hi] (an int, a numpy integer or an integral
    float, stored as int), for each ``(name, hi)`` of ``bounds``; else ``ModelError(name, …)``."""
    for name, hi in bounds:
        x = getattr(model, name)
        if isinstance(x, bool) or not isinstance(x, (int, np.integer, float)) or float(x) != int(x) \
                or not 0 <= int(x) <= hi:
            raise ModelError(name, f"must be an integer in [0, {hi}] for loihi numerics, got {x}")
        object.__setattr__(model, name, int(x))


def check_fraction(name: str, x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)) or not 0.0 <= float(x) <= 1.0:
        raise ModelError(name, f"must be in [0, 1] for float numerics, got {x}")
    return float(x)


def check_threshold(x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)) or not 0 <= x < np.inf:
        raise ModelError("vth", f"must be finite and ≥ 0 (an infinite threshold never fires), got {x}")
    return float(x)


@register
class CubaLIFFloat(NeuronModel):
    """CUBA LIF, float32 (see module doc)."""

    du: float
    dv: float
    vth: float

    kind: ClassVar[str] = "cuba_lif_float"
    numerics: ClassVar[tuple[str, ...]] = ("float",)
    kernel_name: ClassVar[str] = "float_cuba"
    cuba: ClassVar[bool] = True

    def validate(self) -> None:
        object.__setattr__(self, "du", check_fraction("du", self.du))
        object.__setattr__(self, "dv", check_fraction("dv", self.dv))
        object.__setattr__(self, "vth", check_threshold(self.vth))

    def kernel_params(self) -> tuple[float, float, float]:
        return (decay_factor(self.du), decay_factor(self.dv), self.vth)

    def fixed_point(self, scale: float) -> NeuronModel:
        """The Loihi ``CubaLIF`` closest to this neuron with its voltage scaled by ``scale`` (weights
        scaled alike): du = round(4096·du_f) − 1, dv = round(4096·dv_f), vth = round(scale·vth)."""
        return loihi_cuba(self.du, self.dv, self.vth, scale)
