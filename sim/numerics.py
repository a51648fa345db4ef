"""Neuron and synapse arithmetic shared by every backend: the single definition.

Two numeric modes, ``loihi`` and ``float``, named the same in the CLI, configs and code.

``loihi`` — Loihi 2 CUBA LIF, bit-exact with Lava's ``PyLifModelBitAcc``
(``lava/proc/lif/models.py``) fed by ``PyDenseModelBitAcc``/``PySparseModelBitAcc``::

    u[t] = wrap24( sgn(u')·(|u'·(4096 − (du+1))| >> 12) + (a[t] << 6) )
    v[t] = clip24( sgn(v')·(|v'·(4096 − dv)| >> 12) + u[t] )
    s[t] = v[t] > (vth << 6);   v[t] ← 0 where s[t]
    a[t] = (Σ_i w_i · s_i[t − delay]) << weight_exp   (>> −weight_exp if negative)

with wrap24(x) = x − 2²⁴ if x > 2²³, x + 2²⁴ if x ≤ −2²³, and
clip24(x) = clip(x, −(2²³−1), 2²³−1). Weights: 8-bit; Lava clips to
[−256, 255] and, when a matrix mixes signs, truncates the LSB — so the
representable weights are the even integers in [−256, 254] (any sign mix) and
every integer in [0, 255] / [−255, 0] for single-sign matrices. We use the
even grid that survives every sign mode: ``w = 2·m``, ``m ∈ [−127, 127]``.

Integer widths (the int32 rule). Lava's ``PyLifModelBitAcc`` promotes only the decay
products to int64; ``a << 6``, ``u_dec + (a << 6)`` and ``v_dec + u`` are int32, and the
24-bit wrap is one subtraction of 2²⁴, not a modulo. These functions compute in int64.
They agree exactly — and equal a true 24-bit u as Loihi 2 keeps it — only while no int32
sum overflows, so we do not reproduce int32 wrap-around (an artefact of numpy, not of the
chip); validation refuses every loihi graph that could reach it, naming the population and
the bound (``sim.ir.check_bounds`` on the worst-case input |a| of each LIF neuron):

* du = 4095 (u_dec = 0, nothing carries): |a| ≤ ``LIF_INPUT_MAX`` = (2³¹ − 2²³)/64 − 1, so
  a << 6 and v_dec + u fit int32 (u = a << 6 may exceed 24 bits: Lava's one-subtraction
  wrap, reproduced here);
* du < 4095 (u carries): |a| ≤ ``LIF_CARRY_INPUT_MAX`` = 2¹⁸, i.e. |a << 6| ≤ 2²⁴; then
  |u| ≤ 2²³ every tick and one subtraction is the 24-bit wrap. Beyond it u drifts past
  24 bits and u_dec + (a << 6) overflows int32 within a few ticks (fan-in 1 028, weights
  254, weight_exp 7, du 0: Lava and int64 differ from the 2nd tick on).

``float`` — the same dynamics in float32 with du_f = (du+1)/4096,
dv_f = dv/4096, vth_f = vth (a unit of ``a`` is a unit of ``v``)::

    u[t] = u'·(1 − du_f) + a[t];   v[t] = v'·(1 − dv_f) + u[t];   s = v > vth

The scalar kernels are numba-compiled so the engine inlines them; the
vectorised numpy versions are the readable references the tests use.
"""
from __future__ import annotations

from typing import Literal

import numba
import numpy as np

Numerics = Literal["loihi", "float"]
NUMERICS: tuple[str, ...] = ("loihi", "float")

DECAY_SHIFT = 12            # du, dv are 12-bit fractions of 4096
DECAY_UNITY = 1 << DECAY_SHIFT
DS_OFFSET = 1               # Lava adds 1 to du (lets the current decay fully)
DM_OFFSET = 0
ACT_SHIFT = 6               # synaptic input is MSB-aligned by 6 bits
VTH_SHIFT = 6               # so is the threshold
UV_MAX = 1 << 23            # u, v are 24-bit signed
DU_MAX = DV_MAX = 4095      # 12-bit unsigned
VTH_MAX = (1 << 17) - 1     # 17-bit unsigned threshold mantissa
W_MIN, W_MAX = -254, 254    # even grid, valid for any sign mix (−256 is not: inhibitory mode clips to −255)
W_MANT_MIN, W_MANT_MAX = -127, 127
MAX_DELAY = 64              # Lava DelaySparse: 0..63 extra ticks (6 bits) + 1


def lava_weights(w: np.ndarray) -> np.ndarray:
    """What Lava's bit-accurate Dense/Sparse does to a weight matrix before use.

    sign mode = excitatory if min ≥ 0, inhibitory if max ≤ 0, else mixed;
    clip to [−256·mixed, 255] (negated for inhibitory); in mixed mode drop the LSB.
    """
    w = np.asarray(w).astype(np.int64)
    if w.size == 0:
        return w.astype(np.int32)
    if w.min() >= 0:
        return np.clip(w, 0, 255).astype(np.int32)
    if w.max() <= 0:
        return -np.clip(-w, 0, 255).astype(np.int32)
    return ((np.clip(w, -256, 255) >> 1) << 1).astype(np.int32)


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


def lif_step_float_np(u: np.ndarray, v: np.ndarray, a: np.ndarray,
                      du: np.ndarray | float, dv: np.ndarray | float,
                      vth: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One float tick (numpy reference): u ← u(1−du)+a; v ← v(1−dv)+u; s = v>vth; v ← 0 if s."""
    f32 = np.float32
    u_new = (np.asarray(u, f32) * (f32(1) - np.asarray(du, f32)) + np.asarray(a, f32)).astype(f32)
    v_new = (np.asarray(v, f32) * (f32(1) - np.asarray(dv, f32)) + u_new).astype(f32)
    s = v_new > np.asarray(vth, f32)
    v_new = np.where(s, f32(0), v_new).astype(f32)
    return u_new, v_new, s


@numba.njit(cache=True, inline="always")
def lif_step_loihi(u: int, v: int, a: int, du: int, dv: int, vth: int):
    """Scalar Loihi tick for the engine; returns (u, v, spiked). Same as the numpy reference."""
    un, vn, _ = lif_step_loihi_pre(u, v, a, du, dv, vth)
    spiked = vn > (np.int64(vth) << VTH_SHIFT)
    if spiked:
        vn = 0
    return np.int32(un), np.int32(vn), spiked


@numba.njit(cache=True, inline="always")
def lif_step_loihi_pre(u: int, v: int, a: int, du: int, dv: int, vth: int):
    """Scalar Loihi tick before the spike test and reset: (u, v clipped to 24 bits, whether the clip acted)."""
    p = np.int64(u) * (DECAY_UNITY - (du + DS_OFFSET))
    if p >= 0:
        un = p >> DECAY_SHIFT
    else:
        un = -((-p) >> DECAY_SHIFT)
    un += np.int64(a) << ACT_SHIFT
    if un > UV_MAX:
        un -= 2 * UV_MAX
    elif un <= -UV_MAX:
        un += 2 * UV_MAX
    q = np.int64(v) * (DECAY_UNITY - (dv + DM_OFFSET))
    if q >= 0:
        vn = q >> DECAY_SHIFT
    else:
        vn = -((-q) >> DECAY_SHIFT)
    vn += un
    clipped = False
    if vn > UV_MAX - 1:
        vn = UV_MAX - 1
        clipped = True
    elif vn < -UV_MAX + 1:
        vn = -UV_MAX + 1
        clipped = True
    return un, vn, clipped


@numba.njit(cache=True, inline="always")
def lif_step_float(u: float, v: float, a: float, du: float, dv: float, vth: float):
    """Scalar float32 tick for the engine; returns (u, v, spiked)."""
    un = np.float32(np.float32(u) * (np.float32(1.0) - np.float32(du)) + np.float32(a))
    vn = np.float32(np.float32(v) * (np.float32(1.0) - np.float32(dv)) + un)
    spiked = vn > np.float32(vth)
    if spiked:
        vn = np.float32(0.0)
    return un, vn, spiked


def shift_activation(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense/Sparse output scaling: acc << exp, or arithmetic acc >> −exp (floor)."""
    acc = np.asarray(acc, np.int64)
    return acc << weight_exp if weight_exp >= 0 else acc >> (-weight_exp)
