"""``LI`` (float): NIR's leaky integrator, no spikes::

    v[t] = v'·(1 − dv) + a[t]

in float32 — the ``float_cuba`` kernel with du = 1 and vth = ∞. Its output is its voltage,
which the spike-recording back ends do not observe; it has no Loihi form.
"""
from __future__ import annotations

from typing import ClassVar

from sim.neurons.base import NeuronModel, register
from sim.neurons.cuba import check_fraction, decay_factor


@register
class LI(NeuronModel):
    """Leaky integrator, float32 (see module doc)."""

    dv: float

    kind: ClassVar[str] = "li"
    numerics: ClassVar[tuple[str, ...]] = ("float",)
    kernel_name: ClassVar[str] = "float_cuba"

    def validate(self) -> None:
        object.__setattr__(self, "dv", check_fraction("dv", self.dv))

    @property
    def spiking(self) -> bool:
        return False

    def kernel_params(self) -> tuple[float, float, float]:
        return (0.0, decay_factor(self.dv), float("inf"))
