"""Spike sources: ``Input`` (spikes given with the run) and ``Bias`` (a spike every model tick).

``Bias`` carries constant currents (NIR ``Affine`` biases): one neuron firing at every
tick of [0, timesteps), whose projection's weights are the bias values, so a target
receives ``b`` each model tick exactly as a weight of a spike it never misses.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from sim.neurons.base import NeuronModel, register


@register
class Input(NeuronModel):
    """Spikes given per run: (batch, ≤timesteps, size) booleans."""

    kind: ClassVar[str] = "input"
    numerics: ClassVar[tuple[str, ...]] = ("loihi", "float")
    source: ClassVar[bool] = True
    needs_input: ClassVar[bool] = True

    def source_spikes(self, given: np.ndarray | None, batch: int, timesteps: int, size: int) -> np.ndarray:
        return np.asarray(given, bool)


@register
class Bias(NeuronModel):
    """Fires at every model tick t ∈ [0, timesteps): s[t] = 1."""

    kind: ClassVar[str] = "bias"
    numerics: ClassVar[tuple[str, ...]] = ("loihi", "float")
    source: ClassVar[bool] = True

    def source_spikes(self, given: np.ndarray | None, batch: int, timesteps: int, size: int) -> np.ndarray:
        return np.ones((batch, timesteps, size), bool)
