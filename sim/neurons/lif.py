"""``LIF`` (float): NIR's leaky integrate-and-fire, discretised as snnTorch's importer runs it
(``snn.Leaky``, reset to zero, ``reset_delay=False``)::

    v[t] = v'·(1 − dv) + a[t];   s[t] = v[t] > vth;   v[t] ← 0 where s[t]

in float32 — the ``float_cuba`` kernel with du = 1 (u[t] = a[t]). From NIR (τ, r, v_threshold)
with snnTorch's dt = 10⁻⁴: dv = dt/τ, vth = v_threshold / (r·dt/τ) (the input is not scaled).
"""
from __future__ import annotations

from typing import ClassVar

from sim.neurons.base import NeuronModel, register
from sim.neurons.cuba import check_fraction, check_threshold, decay_factor, loihi_cuba


@register
class LIF(NeuronModel):
    """Leaky integrate-and-fire, float32 (see module doc)."""

    dv: float
    vth: float

    kind: ClassVar[str] = "lif"
    numerics: ClassVar[tuple[str, ...]] = ("float",)
    kernel_name: ClassVar[str] = "float_cuba"

    def validate(self) -> None:
        object.__setattr__(self, "dv", check_fraction("dv", self.dv))
        object.__setattr__(self, "vth", check_threshold(self.vth))

    def kernel_params(self) -> tuple[float, float, float]:
        return (0.0, decay_factor(self.dv), self.vth)

    def fixed_point(self, scale: float) -> NeuronModel:
        """The Loihi ``CubaLIF`` closest to this neuron with its voltage scaled by ``scale`` (weights
        scaled alike): du = round(4096·du_f) − 1, dv = round(4096·dv_f), vth = round(scale·vth)."""
        return loihi_cuba(1.0, self.dv, self.vth, scale)
