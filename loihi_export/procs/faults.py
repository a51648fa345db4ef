"""Faults injected into a Lava network to check that failures surface as errors, not hangs.

Both make one Lava OS process raise inside ``run_spk``; lava-nc 0.10's runtime
then waits forever for that process (and prints nothing unless the worker's
``report_child_failures`` is installed):

* ``"raise"``     — ``FaultySink``, whose model raises ``RuntimeError("injected fault")``;
* ``"float-lif"`` — the real mistake: a LIF with float ``du, dv, vth`` run with the
  fixed-point model; ``PyLifModelBitAcc.scale_threshold`` raises
  ``TypeError: ufunc 'left_shift' not supported for the input types ...``.
"""
from __future__ import annotations

import numpy as np

from loihi_export.compat import import_lava

import_lava()
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

MESSAGE = "injected fault"


class FaultySink(AbstractProcess):
    """Receives spikes; its process model raises RuntimeError(MESSAGE) on the first tick."""

    def __init__(self, *, shape: tuple[int, ...]) -> None:
        super().__init__(shape=shape)
        self.s_in = InPort(shape=shape)


@implements(proc=FaultySink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFaultySinkModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def run_spk(self) -> None:
        self.s_in.recv()
        raise RuntimeError(MESSAGE)
