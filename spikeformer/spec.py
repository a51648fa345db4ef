"""The model as data: populations and projections, shared by the torch forward pass and the converter."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from spikeformer.neurons import LifParams
from spikeformer.wiring import FIXED_WEIGHT
from sim import numerics as nm


def count_neuron(m: int) -> LifParams:
    """Memoryless neuron that fires iff ≥ m of its weight-2 inputs spike this tick.

    loihi: v = 128·x + r > 64·(2m − 1); float: v = 2x + r > 2m − 1; the carried
    residual r = trunc(v_prev/4096) (float: v_prev/4096) stays below the margin of 64 (0.5)."""
    return LifParams(du=nm.DU_MAX, dv=nm.DV_MAX, vth=2 * m - 1)


AND = count_neuron(2)      # coincidence of two inputs (threshold midway: float mode's v/4096 residual can't flip it)
GE1 = count_neuron(1)      # fires iff its summed weight-2 input count is ≥ 1


@dataclass(frozen=True)
class PopSpec:
    name: str
    shape: tuple[int, ...]
    kind: str                 # "input" | "lif"
    params: LifParams | None
    role: str


@dataclass(frozen=True)
class ProjSpec:
    """op: 'linear' (token-shared trained W, named by ``param``) or a fixed op of
    ``spikeformer.wiring`` (``weight`` is the identity op's weight)."""

    name: str
    pre: str
    post: str
    op: str
    param: str = ""
    weight: int = FIXED_WEIGHT


@dataclass(frozen=True)
class Spec:
    populations: tuple[PopSpec, ...]
    projections: tuple[ProjSpec, ...]
    readout_pre: str

    def incoming(self, post: str) -> Iterator[ProjSpec]:
        return (p for p in self.projections if p.post == post)

    def shape(self, name: str) -> tuple[int, ...]:
        return next(p.shape for p in self.populations if p.name == name)
