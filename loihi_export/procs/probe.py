"""``VoltageProbe`` (``sim.neurons.probe``) as a Lava process: Lava's bit-accurate LIF whose spike test
and reset test differ.

Declaration ``VoltageProbeLIF``: Lava's ``LIFReset`` (fresh every ``reset_interval`` ticks, as the
network resets its LIFs between sample slots) plus the Var ``level``. Model
``PyVoltageProbeModelBitAcc``: the tick of ``PyLifResetModelBitAcc`` (Lava forbids subclassing a model
that implements a process, so it is written out over ``AbstractPyLifModelFixed``) with::

    s = v > (level << 6);   v ← 0 where v > (vth << 6)

(the update of ``subthr_dynamics`` unchanged; du = 4095).
"""
from __future__ import annotations

import numpy as np

from loihi_export.compat import import_lava

import_lava()
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed  # noqa: E402
from lava.proc.lif.process import LIFReset  # noqa: E402


class VoltageProbeLIF(LIFReset):
    """``LIFReset(shape, du=4095, dv, vth, reset_interval, reset_offset)`` that spikes at ``level`` (≥ vth)."""

    def __init__(self, *, shape: tuple[int, ...], dv: int, vth: int, level: int, reset_interval: int,
                 reset_offset: int, name: str | None = None) -> None:
        super().__init__(shape=shape, du=4095, dv=dv, vth=vth, bias_mant=0, bias_exp=0,
                         reset_interval=reset_interval, reset_offset=reset_offset, name=name)
        self.level = Var(shape=(1,), init=level)


@implements(proc=VoltageProbeLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyVoltageProbeModelBitAcc(AbstractPyLifModelFixed):
    """``PyLifResetModelBitAcc``'s tick, spike at v > level << 6, reset where v > vth << 6 (module doc)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    level: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.effective_vth = 0
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self) -> np.ndarray:
        return self.v > np.left_shift(self.level, self.vth_shift)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        if (self.time_step % self.reset_interval) == self.reset_offset:
            self.u *= 0
            self.v *= 0
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = self.spiking_activation()
        self.v[self.v > self.effective_vth] = 0                  # the twin's reset
        self.s_out.send(s_out)
