"""The model as data: populations and projections, shared by the torch forward pass and the converter.

The residual stream R (a sum of synaptic currents) is a chain of graded relays
(``sim.ir``: payload = summed input, no dynamics)::

    r_0 = W_emb·input,   r_k = r_{k−1} + W_k·s_k   (W_k: a block's W_o·attn, then W_2·hidden)

and each stream LIF population (b{l}.x, b{l}.y, out) receives only its relay. Relay
links pass the payload exactly: weight 1 (a single-sign projection, so Lava keeps
the odd weight) adds 1·g = g.
So a stream population at depth d sees the zero-delay model's R shifted by d ticks
(``spikeformer.lower.convert`` balances the delays), and the stream has one copy of each
trained projection plus 2 identity links per relay: synapses linear in depth
(a stream population receiving every earlier projection is quadratic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from sim import numerics as nm
from sim.neurons.base import NeuronModel
from sim.neurons.cuba import CubaLIF
from spikeformer.arch.wiring import FIXED_WEIGHT


def count_neuron(m: int) -> CubaLIF:
    """Memoryless neuron that fires iff ≥ m of its weight-2 inputs spike this tick.

    loihi: v = 128·x + r > 64·(2m − 1); float: v = 2x + r > 2m − 1; the carried
    residual r = trunc(v_prev/4096) (float: v_prev/4096) stays below the margin of 64 (0.5)."""
    return CubaLIF(du=nm.DU_MAX, dv=nm.DV_MAX, vth=2 * m - 1)


AND = count_neuron(2)      # coincidence of two inputs (threshold midway: float mode's v/4096 residual can't flip it)


GE1 = count_neuron(1)      # fires iff its summed weight-2 input count is ≥ 1


@dataclass(frozen=True)
class PopSpec:
    name: str
    shape: tuple[int, ...]
    kind: str                 # "input" | "lif" | "graded" (a relay: params None)
    params: NeuronModel | None   # lif: its loihi model (CubaLIF, or a VoltageProbe of the k-WTA by strength)
    role: str


@dataclass(frozen=True)
class ProjSpec:
    """op: 'linear' (token-shared trained W, named by ``param``) or a fixed op of
    ``spikeformer.arch.wiring`` (``weight`` is the identity, tree and rank ops' weight, ``groups``
    and ``arity`` the tree ops' channel groups and fan-in, ``index`` the rank ops' rank or shift);
    ``weight_exp`` is the projection's exponent (``sim.ir.Projection``: the summed input is shifted by it)."""

    name: str
    pre: str
    post: str
    op: str
    param: str = ""
    weight: int = FIXED_WEIGHT
    weight_exp: int = 0
    groups: int = 1
    arity: int = 2
    index: int = 0


@dataclass(frozen=True)
class Spec:
    populations: tuple[PopSpec, ...]
    projections: tuple[ProjSpec, ...]
    readout_pre: str

    def incoming(self, post: str) -> Iterator[ProjSpec]:
        return (p for p in self.projections if p.post == post)

    def shape(self, name: str) -> tuple[int, ...]:
        return next(p.shape for p in self.populations if p.name == name)


RELAY_WEIGHT, RELAY_EXP = 1, 0      # relay link: 1·g = g (single-sign, so Lava keeps the odd weight)
