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

from typing import TYPE_CHECKING

import numpy as np

from loihi_export.compat import import_lava
from loihi_export.run import FAULT_KINDS

import_lava()
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

if TYPE_CHECKING:
    from loihi_export.build import LavaNetwork

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


def add_fault(net: LavaNetwork, kind: str) -> None:
    """Attach a failing process of ``kind`` (one of FAULT_KINDS) to the first LIF of ``net``."""
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import Sparse

    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
    first = next(p for p in net.graph.populations if p.model.spiking)
    src = net.processes[first.name]
    n = net.batch * first.size
    if kind == "raise":
        sink = FaultySink(shape=(n,))
        src.s_out.connect(sink.s_in)
        net.extra.append(sink)
    else:
        syn = Sparse(weights=np.full((1, n), 2, np.int32))
        bad = LIF(shape=(1,), du=0.5, dv=0.25, vth=1.5, name="float-params-lif")
        src.s_out.connect(syn.s_in)
        syn.a_out.connect(bad.a_in)
        net.extra += [syn, bad]
