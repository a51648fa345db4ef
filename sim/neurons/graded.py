"""``GradedRelay``: a stateless relay (Loihi 2 graded spikes, Lava's ``GradedVec`` with vth = 0).

Its payload at tick t is its summed input g[t] = a[t], sent as a graded event iff g[t] ≠ 0;
a synapse from it adds w·g (then the projection's exponent shift) instead of w. The IR
bounds the payload (``sim.ir``: |g| < 2²³, Σ|w·g| < 2³¹ per target in loihi numerics).
"""
from __future__ import annotations

from typing import ClassVar

from sim.neurons.base import NeuronModel, register


@register
class GradedRelay(NeuronModel):
    """g[t] = a[t]; event iff g ≠ 0; no state."""

    kind: ClassVar[str] = "graded"
    numerics: ClassVar[tuple[str, ...]] = ("loihi", "float")
    relay: ClassVar[bool] = True
