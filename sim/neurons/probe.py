"""``VoltageProbe``: a CUBA LIF that reads a level of a twin ``CubaLIF``'s voltage (du = 4095 for both).

Fed exactly the input ``a`` of a ``CubaLIF(du=4095, dv, vth)`` (its twin), it resets where the
twin resets and spikes where the twin's voltage exceeds a higher threshold ``level`` ≥ vth::

    loihi:  v[t] = clip24( sgn(v')·(|v'·(4096 − dv)| >> 12) + (a[t] << 6) )      (u[t] = a[t] << 6)
            s[t] = v[t] > (level << 6);   v[t] ← 0 where v[t] > (vth << 6)
    float:  v[t] = v'·(1 − dv) + a[t];   s[t] = v[t] > level;   v[t] ← 0 where v[t] > vth

By induction its v equals the twin's every tick (same input, same update, same reset), so its
spikes are [v_twin[t] > 64·level]: the twin spikes at least as often. Loihi 2 runs it as a
microcode neuron whose reset and spike tests differ (``loihi_export.procs.probe``); used by the
k-WTA by strength (``spikeformer.arch.wta_strength``) to read the level of a spiking channel's
potential. Parameters: integers dv ∈ [0, 4095], 0 ≤ vth ≤ level ≤ 2¹⁷ − 1 (loihi); float
dv ∈ [0, 1], 0 ≤ vth ≤ level finite.
"""
from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np

from sim.neurons.base import Kernel, ModelError, NeuronModel, register, register_kernel
from sim.neurons.cuba import (
    check_fraction,
    check_loihi_integers,
    check_threshold,
    cuba_idle_float,
    decay_factor,
    lif_idle_loihi,
    lif_step_loihi_pre,
)
from sim.numerics import ACT_SHIFT, DECAY_SHIFT, DECAY_UNITY, DU_MAX, DV_MAX, UV_MAX, VTH_MAX, VTH_SHIFT

F32 = np.float32


def probe_step_loihi_np(u: np.ndarray, v: np.ndarray, a: np.ndarray, dv: np.ndarray | int, vth: np.ndarray | int,
                        level: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Loihi tick for a vector of neurons (numpy reference): the twin's update with du = 4095
    (``sim.neurons.cuba.lif_step_loihi_np``), spike at ``level``, reset at ``vth``."""
    u_new = np.asarray(a, np.int64) << ACT_SHIFT                       # du = 4095: nothing carries
    u_new = np.where(u_new > UV_MAX, u_new - 2 * UV_MAX, u_new)
    u_new = np.where(u_new <= -UV_MAX, u_new + 2 * UV_MAX, u_new)
    dv_prod = np.asarray(v, np.int64) * (DECAY_UNITY - np.asarray(dv, np.int64))
    v_new = np.clip(np.sign(dv_prod) * (np.abs(dv_prod) >> DECAY_SHIFT) + u_new, -UV_MAX + 1, UV_MAX - 1)
    s = v_new > (np.asarray(level, np.int64) << VTH_SHIFT)
    v_new = np.where(v_new > (np.asarray(vth, np.int64) << VTH_SHIFT), 0, v_new)
    return u_new.astype(np.int32), v_new.astype(np.int32), s


@numba.njit(cache=True, inline="always")
def probe_step_loihi(u: int, v: int, a: int, dv: int, vth: int, level: int):
    """Scalar Loihi tick for the engine; returns (u, v, spiked)."""
    un, vn, _ = lif_step_loihi_pre(u, v, a, DU_MAX, dv, vth)
    spiked = vn > (np.int64(level) << VTH_SHIFT)
    reset = vn > (np.int64(vth) << VTH_SHIFT)
    return np.int32(un), np.int32(0 if reset else vn), spiked


@numba.njit(cache=True, inline="always")
def probe_idle_loihi(v: int, dv: int, vth: int, level: int, ticks: int):
    """``ticks`` input-free ticks from u = 0 (no spike: after an update v ≤ 64·vth ≤ 64·level)."""
    return lif_idle_loihi(v, DU_MAX, dv, vth, ticks)


PROBE_LOIHI_KERNEL = register_kernel(Kernel("loihi_probe", True, probe_step_loihi_np, probe_step_loihi,
                                            probe_idle_loihi, rests=True, full_decay=lambda dv, vth, level: True))


def probe_step_float_np(u: np.ndarray, v: np.ndarray, a: np.ndarray, cv: np.ndarray | float, vth: np.ndarray | float,
                        level: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One float tick (numpy reference): u ← a; v ← v·cv + u; s = v > level; v ← 0 where v > vth."""
    u_new = (np.asarray(u, F32) * F32(0) + np.asarray(a, F32)).astype(F32)
    v_new = (np.asarray(v, F32) * np.asarray(cv, F32) + u_new).astype(F32)
    s = v_new > np.asarray(level, F32)
    v_new = np.where(v_new > np.asarray(vth, F32), F32(0), v_new).astype(F32)
    return u_new, v_new, s


@numba.njit(cache=True, inline="always")
def probe_step_float(u: float, v: float, a: float, cv: float, vth: float, level: float):
    """Scalar float32 tick for the engine; returns (u, v, spiked) (the twin's ``cuba_step_float`` with cu = 0)."""
    un = np.float32(np.float32(u) * np.float32(0.0) + np.float32(a))
    vn = np.float32(np.float32(v) * np.float32(cv) + un)
    spiked = vn > np.float32(level)
    if vn > np.float32(vth):
        vn = np.float32(0.0)
    return un, vn, spiked


@numba.njit(cache=True, inline="always")
def probe_idle_float(v: float, cv: float, vth: float, level: float, ticks: int):
    """``ticks`` input-free ticks from u = 0: v ← v·cv."""
    return cuba_idle_float(v, 0.0, cv, vth, ticks)


PROBE_FLOAT_KERNEL = register_kernel(Kernel("float_probe", False, probe_step_float_np, probe_step_float,
                                            probe_idle_float, rests=True, full_decay=lambda cv, vth, level: True))


def _check_levels(vth: float, level: float) -> None:
    if level < vth:
        raise ModelError("level", f"must be ≥ vth ({vth}): the probe spikes only where its twin does, got {level}")


@register
class VoltageProbe(NeuronModel):
    """Loihi fixed point (see module doc)."""

    dv: int
    vth: int
    level: int

    kind: ClassVar[str] = "voltage_probe"
    numerics: ClassVar[tuple[str, ...]] = ("loihi",)
    kernel_name: ClassVar[str] = "loihi_probe"

    def validate(self) -> None:
        check_loihi_integers(self, (("dv", DV_MAX), ("vth", VTH_MAX), ("level", VTH_MAX)))
        _check_levels(self.vth, self.level)

    @property
    def du(self) -> int:
        """The current decays fully every tick (u = a << 6), as the twin's."""
        return DU_MAX

    def kernel_params(self) -> tuple[int, int, int]:
        return (self.dv, self.vth, self.level)

    def float_equivalent(self) -> NeuronModel:
        """dv_f = dv/4096, vth_f = vth, level_f = level (``CubaLIF.float_equivalent``'s units)."""
        return VoltageProbeFloat(self.dv / DECAY_UNITY, float(self.vth), float(self.level))


@register
class VoltageProbeFloat(NeuronModel):
    """float32 (see module doc)."""

    dv: float
    vth: float
    level: float

    kind: ClassVar[str] = "voltage_probe_float"
    numerics: ClassVar[tuple[str, ...]] = ("float",)
    kernel_name: ClassVar[str] = "float_probe"

    def validate(self) -> None:
        object.__setattr__(self, "dv", check_fraction("dv", self.dv))
        object.__setattr__(self, "vth", check_threshold(self.vth))
        try:
            level = check_threshold(self.level)
        except ModelError as e:
            raise ModelError("level", e.problem) from None
        object.__setattr__(self, "level", level)
        _check_levels(self.vth, self.level)

    def kernel_params(self) -> tuple[float, float, float]:
        return (decay_factor(self.dv), self.vth, self.level)
