"""Every built-in neuron model, registered: look models up here (``model_from_dict``, ``cuba``).

A new model is one module of ``sim.neurons`` (its class with ``@register``, its kernel with
``register_kernel`` if its dynamics are new), imported below.
"""
from __future__ import annotations

from dataclasses import fields

from sim.neurons.base import MODELS, ModelError, NeuronModel
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.graded import GradedRelay
from sim.neurons.if_ import IF
from sim.neurons.input import Bias, Input
from sim.neurons.li import LI
from sim.neurons.lif import LIF
from sim.neurons.probe import VoltageProbe, VoltageProbeFloat

BUILTIN: tuple[type[NeuronModel], ...] = (Input, Bias, GradedRelay, CubaLIF, CubaLIFFloat, LIF, IF, LI, VoltageProbe,
                                          VoltageProbeFloat)


def model_from_dict(d: dict) -> NeuronModel:
    """Inverse of ``NeuronModel.to_dict``; ModelError naming an unknown kind or field."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in MODELS:
        raise ModelError("kind", f"unknown neuron model {kind!r}; known: {sorted(MODELS)}")
    cls = MODELS[kind]
    names = {f.name for f in fields(cls)}
    extra = set(d) - names
    if extra:
        raise ModelError(sorted(extra)[0], f"is not a field of neuron model {kind!r}")
    return cls(**d)


def cuba(numerics: str, du: float, dv: float, vth: float) -> NeuronModel:
    """The CUBA LIF of a numeric mode (``loihi``: ``CubaLIF``, ``float``: ``CubaLIFFloat``)."""
    for cls in MODELS.values():
        if getattr(cls, "cuba", False) and numerics in cls.numerics:
            return cls(du, dv, vth)
    raise ModelError("numerics", f"no CUBA LIF model for numerics {numerics!r}")
