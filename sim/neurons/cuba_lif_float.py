"""``CubaLIFFloat``: CUBA LIF in float32 — the float numerics of the converter and snnTorch's
``Synaptic`` (α = 1 − du, β = 1 − dv, reset to zero, ``reset_delay=False``)::

    u[t] = u'·(1 − du) + a[t];   v[t] = v'·(1 − dv) + u[t];   s[t] = v[t] > vth;   v[t] ← 0 where s[t]

each operation rounded to float32, with (1 − du) computed as float32(1) − float32(du) (kernel
parameters ``cu, cv``). Parameters du, dv ∈ [0, 1] (the fraction lost per tick, dt/τ), vth ≥ 0
(``inf``: never fires).
"""
from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

from sim.neurons import Kernel, ModelError, NeuronModel, register, register_kernel

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


KERNEL = register_kernel(Kernel("float_cuba", False, cuba_step_float_np, cuba_step_float, cuba_idle_float, rests=True,
                                full_decay=lambda cu, cv, vth: cu == 0.0))


def decay_factor(d: float) -> float:
    """float32(1) − float32(d), the multiplier the float kernels use."""
    return float(F32(1) - F32(d))


def loihi_cuba(du: float, dv: float, vth: float, scale: float) -> NeuronModel:
    """Loihi ``CubaLIF`` of float (du, dv, vth) with voltages scaled by ``scale`` (``fixed_point``)."""
    from sim.neurons.cuba_lif import CubaLIF
    from sim.numerics import DU_MAX, DV_MAX, VTH_MAX
    t = round(scale * vth)
    if not np.isfinite(vth) or t > VTH_MAX:
        raise ModelError("vth", f"{vth}·{scale:.4g} does not fit Loihi's 17-bit threshold (≤ {VTH_MAX})")
    return CubaLIF(int(np.clip(round(4096 * du) - 1, 0, DU_MAX)), int(np.clip(round(4096 * dv), 0, DV_MAX)), int(t))


def check_fraction(name: str, x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)) or not 0.0 <= float(x) <= 1.0:
        raise ModelError(name, f"must be in [0, 1] for float numerics, got {x}")
    return float(x)


def check_threshold(x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)) or np.isnan(x) or x < 0:
        raise ModelError("vth", f"must be ≥ 0, got {x}")
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
    infinite: ClassVar[tuple[str, ...]] = ("vth",)

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
