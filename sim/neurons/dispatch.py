"""Engine dispatch: kernel code → step function, per state type (numba, cached with the caller).

``kernel_step`` / ``kernel_idle`` are numba overloads built from every registered kernel
(``sim.neurons.catalog`` registers the built-in ones before the first compile).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

from sim.neurons import catalog  # noqa: F401  (registers every built-in kernel)
from sim.neurons.base import KERNELS, Kernel


def _chain(fns: list, arity: int):
    """A numba function ``f(code, *args)`` calling ``fns[code](*args)`` (``arity`` args)."""
    head = fns[0]
    if arity == 6:
        if len(fns) == 1:
            return numba.njit(inline="always")(lambda code, a0, a1, a2, a3, a4, a5: head(a0, a1, a2, a3, a4, a5))
        rest = _chain(fns[1:], arity)

        @numba.njit(inline="always")
        def f6(code, a0, a1, a2, a3, a4, a5):
            if code == 0:
                return head(a0, a1, a2, a3, a4, a5)
            return rest(code - 1, a0, a1, a2, a3, a4, a5)
        return f6
    if len(fns) == 1:
        return numba.njit(inline="always")(lambda code, a0, a1, a2, a3, a4: head(a0, a1, a2, a3, a4))
    rest = _chain(fns[1:], arity)

    @numba.njit(inline="always")
    def f5(code, a0, a1, a2, a3, a4):
        if code == 0:
            return head(a0, a1, a2, a3, a4)
        return rest(code - 1, a0, a1, a2, a3, a4)
    return f5


def _family(integer: bool) -> list[Kernel]:
    return sorted((k for k in KERNELS.values() if k.integer == integer), key=lambda k: k.code)


def kernel_key() -> tuple:
    """A value whose numba type changes with the registered kernels (one int8 per kernel): passed
    to the cached engine functions so that a new kernel compiles them afresh instead of running
    a cached dispatch that does not know it."""
    return tuple(np.int8(k.code) for k in KERNELS.values())


def kernel_step(code, u, v, a, p0, p1, p2):
    """One step of kernel ``code`` (of the state's type): (u, v, spiked). Numba only."""


def kernel_idle(code, v, p0, p1, p2, ticks):
    """``ticks`` input-free steps of kernel ``code`` from u = 0: v. Numba only."""


@overload(kernel_step)
def _kernel_step_impl(code, u, v, a, p0, p1, p2):
    chain = _chain([k.step for k in _family(isinstance(u, types.Integer))], 6)
    return lambda code, u, v, a, p0, p1, p2: chain(code, u, v, a, p0, p1, p2)


@overload(kernel_idle)
def _kernel_idle_impl(code, v, p0, p1, p2, ticks):
    chain = _chain([k.idle for k in _family(isinstance(v, types.Integer))], 5)
    return lambda code, v, p0, p1, p2, ticks: chain(code, v, p0, p1, p2, ticks)
