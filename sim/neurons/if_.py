"""``IF`` (float): NIR's integrate-and-fire, v ← v + a, spike v > vth, reset to 0::

    v[t] = v' + a[t];   s[t] = v[t] > vth;   v[t] ← 0 where s[t]

in float32 — the ``float_cuba`` kernel with du = 1, dv = 0. (NIR's r scales the input;
the importer folds it into the threshold, vth = v_threshold / r.)
"""
from __future__ import annotations

from typing import ClassVar

from sim.neurons.base import NeuronModel, register
from sim.neurons.cuba import check_threshold, loihi_cuba


@register
class IF(NeuronModel):
    """Integrate-and-fire, float32 (see module doc)."""

    vth: float

    kind: ClassVar[str] = "if"
    numerics: ClassVar[tuple[str, ...]] = ("float",)
    kernel_name: ClassVar[str] = "float_cuba"

    def validate(self) -> None:
        object.__setattr__(self, "vth", check_threshold(self.vth))

    def kernel_params(self) -> tuple[float, float, float]:
        return (0.0, 1.0, self.vth)

    def fixed_point(self, scale: float) -> NeuronModel:
        """The Loihi ``CubaLIF`` closest to this neuron with its voltage scaled by ``scale`` (weights
        scaled alike): du = round(4096·du_f) − 1, dv = round(4096·dv_f), vth = round(scale·vth)."""
        return loihi_cuba(1.0, 0.0, self.vth, scale)
