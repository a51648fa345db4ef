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
24-bit wrap is one subtraction of 2²⁴, not a modulo.
The steps (``sim.neurons.cuba``) compute in int64.
They agree exactly — and equal a true 24-bit u as Loihi 2 keeps it — only while no int32
sum overflows, so we do not reproduce int32 wrap-around (an artefact of numpy, not of the
chip); validation refuses every loihi graph that could reach it, naming the population and
the bound (``sim.ir.bounds.check_bounds`` on the worst-case input |a| of each LIF neuron):

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

The neuron steps live with their models (``sim.neurons.cuba``); this module holds the constants and the
synapse arithmetic of each mode as an :class:`Arithmetic` (``ARITHMETIC[name]``), so
code asks the mode's type instead of comparing its name.
"""
from __future__ import annotations

from typing import Literal

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


def shift_activation(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense/Sparse output scaling: acc << exp, or arithmetic acc >> −exp (floor)."""
    acc = np.asarray(acc, np.int64)
    return acc << weight_exp if weight_exp >= 0 else acc >> (-weight_exp)


class Arithmetic:
    """Synapse and state arithmetic of one numeric mode (``ARITHMETIC[name]``)."""

    name: str = ""
    fixed_point: bool = False          # integer state, 8-bit weights, shifts floor
    state_dtype: type = np.float32     # u, v
    acc_dtype: type = np.float64       # summed input (event-driven engines)
    dense_dtype: type = np.float32     # summed input and weights of the dense reference
    weight_dtype: type = np.float32    # weights in graph files and the engine
    readout_dtype: type = np.float32   # off-chip readout weights

    def check_weights(self, weights: np.ndarray) -> str | None:
        """The problem with a projection's weights in this mode, or None."""
        return None

    def scale_sum(self, acc: np.ndarray, weight_exp: int) -> np.ndarray:
        """A projection's summed input scaled by 2^weight_exp (the dense reference)."""
        return acc * np.float32(2.0 ** weight_exp)

    def engine_weights(self, weights: np.ndarray, weight_exp: int) -> tuple[np.ndarray, bool]:
        """(per-synapse weights for the event-driven engines, whether the sum needs a private
        accumulator shifted by −weight_exp after summation)."""
        w = weights.astype(np.float32, copy=False)          # 2^exp scaling is exact: no float64 detour
        return (w * np.float32(2.0 ** weight_exp) if weight_exp else w), False

    def continuous_weights(self, weights: np.ndarray, weight_exp: int) -> np.ndarray:
        return weights.astype(np.float64) * 2.0 ** weight_exp


class LoihiArithmetic(Arithmetic):
    """Loihi 2 fixed point: int32 state, 8-bit weights, ``acc << exp`` or floor(acc / 2^−exp)."""

    name = "loihi"
    fixed_point = True
    state_dtype = np.int32
    acc_dtype = np.int64
    dense_dtype = np.int64
    weight_dtype = np.int16
    readout_dtype = np.int32

    def check_weights(self, weights: np.ndarray) -> str | None:
        if not np.issubdtype(weights.dtype, np.integer):
            return f"must be integers for loihi numerics, got {weights.dtype}"
        if weights.size:
            lo, hi = int(weights.min()), int(weights.max())
            if lo < W_MIN or hi > W_MAX:
                return f"must be integers in [{W_MIN}, {W_MAX}] (8-bit Loihi weights), got [{lo}, {hi}]"
            if lo < 0 < hi and np.any(weights % 2):
                return ("mixes signs, so it must hold even integers (Lava drops the LSB "
                        "of a mixed-sign 8-bit weight); single-sign projections may use any integer")
        return None

    def scale_sum(self, acc: np.ndarray, weight_exp: int) -> np.ndarray:
        return shift_activation(acc, weight_exp)

    def engine_weights(self, weights: np.ndarray, weight_exp: int) -> tuple[np.ndarray, bool]:
        w = weights.astype(np.int16, copy=False)          # |w| ≤ 254: w << exp ≤ 254·2⁷ fits int16
        if weight_exp >= 0:
            return (w << np.int16(weight_exp) if weight_exp else w), False
        return w, True                                   # Lava floors the shifted *sum*

    def continuous_weights(self, weights: np.ndarray, weight_exp: int) -> np.ndarray:
        return weights.astype(np.int64) << weight_exp


class FloatArithmetic(Arithmetic):
    """float32 state and weights, weights scaled by 2^exp."""

    name = "float"


ARITHMETIC: dict[str, Arithmetic] = {a.name: a for a in (LoihiArithmetic(), FloatArithmetic())}
assert tuple(ARITHMETIC) == NUMERICS

