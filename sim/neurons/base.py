"""Neuron models of the IR: one small frozen dataclass per model, registered by name.

A model owns its parameters (validated on construction, NIR style), the numeric
modes it exists in (``numerics``), its place in the graph (``source``: spikes
given or generated, no input; ``relay``: stateless graded relay; otherwise a
stateful neuron) and, for neurons, the :class:`Kernel` that steps it: pure
functions of (state, input, params) (Norse style), one set per back end::

    step_np(u, v, a, p0, p1, p2) -> (u, v, s)      numpy, vectorised (dense reference, tests)
    step(u, v, a, p0, p1, p2)    -> (u, v, spiked)  numba scalar (event-driven engine, continuous mode)
    idle(v, p0, p1, p2, ticks)   -> v               numba: ``ticks`` input-free steps from u = 0

Two optional promises let the engine skip work; a kernel that makes neither is still exact,
only updated every tick once touched (``sim.engine``):

    rests            the dynamics are CUBA-shaped, u' = f(u) + g(a) and v' = h(v) + u' with
                     f(0) = 0, and ``idle`` never spikes: a neuron whose decayed current
                     step(u, 0, 0)[0] is 0 and that gets no input may be left untouched and
                     caught up by ``idle`` on its next update;
    full_decay(p0, p1, p2) -> bool   (Python) at these parameters f ≡ 0 (u' = g(a)): nothing is
                     ever carried into the next tick.

``kernel_params()`` maps the model's parameters onto the kernel's ``(p0, p1, p2)``.
Kernels are grouped by state type (``Kernel.integer``: int32 state, else float32);
``sim.engine`` dispatches on ``(code, state type)`` through :func:`kernel_step` /
:func:`kernel_idle`, built from this registry, so a new model is one module here: its
class (``@register``) and, if its dynamics are new, its kernel (``register_kernel``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, ClassVar

import numpy as np

from sim.errors import IRError


class ModelError(IRError):
    """A neuron model parameter is invalid (an IRError naming the model and field)."""

    def __init__(self, field_name: str, problem: str, model: str = "neuron model") -> None:
        super().__init__(model, field_name, problem)


@dataclass(frozen=True)
class Kernel:
    """The step functions of one neuron dynamics (see module docstring)."""

    name: str
    integer: bool                 # int32 state (fixed point) or float32
    step_np: Callable
    step: Any                     # numba dispatcher
    idle: Any                     # numba dispatcher
    code: int = -1                # index among the kernels of the same state type (set by register_kernel)
    rests: bool = False           # see module docstring
    full_decay: Callable | None = None


KERNELS: dict[str, Kernel] = {}


MODELS: dict[str, type["NeuronModel"]] = {}


def register_kernel(kernel: Kernel) -> Kernel:
    """Add a kernel; its code is its index among the registered kernels of the same state type."""
    if kernel.name in KERNELS:
        raise ValueError(f"kernel {kernel.name!r} is registered twice")
    code = sum(k.integer == kernel.integer for k in KERNELS.values())
    KERNELS[kernel.name] = k = replace(kernel, code=code)
    return k


def register(cls: type["NeuronModel"]) -> type["NeuronModel"]:
    """Class decorator: make ``cls`` a frozen dataclass and register it under ``cls.kind``."""
    cls = dataclass(frozen=True)(cls)
    if cls.kind in MODELS:
        raise ValueError(f"neuron model {cls.kind!r} is registered twice")
    MODELS[cls.kind] = cls
    return cls


class NeuronModel:
    """Base of every neuron model (subclasses are frozen dataclasses; see ``register``)."""

    kind: ClassVar[str] = ""
    numerics: ClassVar[tuple[str, ...]] = ()
    source: ClassVar[bool] = False          # emits spikes without input (Input, Bias)
    needs_input: ClassVar[bool] = False     # its spikes must be given (Input)
    relay: ClassVar[bool] = False           # stateless graded relay
    kernel_name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        try:
            self.validate()
        except ModelError as e:
            raise ModelError(e.field, e.problem, f"neuron model {type(self).__name__}") from None

    def validate(self) -> None:
        """Raise ModelError naming the bad field (subclasses extend)."""
        for f in fields(self):
            x = getattr(self, f.name)
            if isinstance(x, (int, float, np.number)) and not np.isfinite(x) and f.name not in self.infinite:
                raise ModelError(f.name, f"is {x}")

    infinite: ClassVar[tuple[str, ...]] = ()

    @property
    def spiking(self) -> bool:
        """A stateful neuron that emits binary spikes."""
        return not self.source and not self.relay

    @property
    def kernel(self) -> Kernel:
        return KERNELS[self.kernel_name]

    def kernel_params(self) -> tuple:
        """(p0, p1, p2) of the kernel; neurons override."""
        return (0, 0, 0)

    def source_spikes(self, given: np.ndarray | None, batch: int, timesteps: int, size: int) -> np.ndarray:
        """A source's spikes (batch, ≤timesteps, size); sources override."""
        raise TypeError(f"{self.kind} is not a spike source")

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{k: (v.item() if isinstance(v, np.generic) else v) for k, v in asdict(self).items()}}

    def float_equivalent(self) -> "NeuronModel":
        """The same neuron in float numerics (NIR export, quantisation checks); float models return themselves."""
        return self
