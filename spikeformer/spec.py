"""The model as data: populations and projections, shared by the torch forward pass and the converter.

The residual stream R (a sum of synaptic currents) is a chain of graded relays
(``sim.ir``: payload = summed input, no dynamics)::

    r_0 = W_emb·input,   r_k = r_{k−1} + W_k·s_k   (W_k: a block's W_o·attn, then W_2·hidden)

and each stream LIF population (b{l}.x, b{l}.y, out) receives only its relay. Relay
links pass the payload exactly: weight 1 (a single-sign projection, so Lava keeps
the odd weight) adds 1·g = g.
So a stream population at depth d sees the zero-delay model's R shifted by d ticks
(``spikeformer.convert`` balances the delays), and the stream has one copy of each
trained projection plus 2 identity links per relay: synapses linear in depth
(a stream population receiving every earlier projection is quadratic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from spikeformer.neurons import LifParams
from spikeformer.wiring import FIXED_WEIGHT
from sim import numerics as nm

if TYPE_CHECKING:
    from spikeformer.model import ModelConfig


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
    kind: str                 # "input" | "lif" | "graded" (a relay: params None)
    params: LifParams | None
    role: str


@dataclass(frozen=True)
class ProjSpec:
    """op: 'linear' (token-shared trained W, named by ``param``) or a fixed op of
    ``spikeformer.wiring`` (``weight`` is the identity and tree ops' weight, ``groups``
    and ``arity`` the tree ops' channel groups and fan-in); ``weight_exp`` is the projection's exponent
    (``sim.ir.Projection``: the summed input is shifted by it)."""

    name: str
    pre: str
    post: str
    op: str
    param: str = ""
    weight: int = FIXED_WEIGHT
    weight_exp: int = 0
    groups: int = 1
    arity: int = 2


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


def build_spec(cfg: "ModelConfig") -> Spec:
    """Populations (in execution order) and projections of the model (see module doc)."""
    N, D, H = cfg.tokens, cfg.dim, cfg.dim * cfg.mlp_ratio
    lif = LifParams(du=nm.DU_MAX, dv=cfg.dv, vth=cfg.vth)
    pops = [PopSpec("input", (N, cfg.features), "input", None, "input")]
    projs: list[ProjSpec] = []
    relays: list[str] = []                                     # the stream so far: r_0, r_1, …

    def relay(pre: str, param: str) -> None:
        """r_k = r_{k−1} (exact link) + W_param·pre."""
        name = f"r{len(relays)}"
        pops.append(PopSpec(name, (N, D), "graded", None, "relay"))
        if relays:
            projs.append(ProjSpec(f"{relays[-1]}->{name}", relays[-1], name, "identity",
                                  weight=RELAY_WEIGHT, weight_exp=RELAY_EXP))
        projs.append(ProjSpec(f"{param}->{name}", pre, name, "linear", param))
        relays.append(name)

    from spikeformer.wta import RULES
    wta = RULES[cfg.wta_rule]

    def first_k(pre: str, name: str, k: int | None, role: str) -> str:
        """≤ k spikes per token per tick of ``pre`` (``spikeformer.wta``, rule ``cfg.wta_rule``) in population
        ``name``; returns ``name``, or ``pre`` when k is None."""
        if k is None:
            return pre
        shape = next(p.shape for p in pops if p.name == pre)
        new_pops, new_projs = wta.lower(pre, name, shape, k, role)
        pops.extend(new_pops)
        projs.extend(new_projs)
        return name

    def stream_pop(name: str, role: str) -> str:
        """LIF(R) of the stream so far; with ``stream_k`` its first k spikes per token (``{name}k``)."""
        pops.append(PopSpec(name, (N, D), "lif", lif, role))
        projs.append(ProjSpec(f"{relays[-1]}->{name}", relays[-1], name, "identity",
                              weight=RELAY_WEIGHT, weight_exp=RELAY_EXP))
        return first_k(name, f"{name}k", cfg.stream_k, "stream_kwta")

    relay("input", "emb")
    for l in range(cfg.depth):
        b = f"b{l}"
        x = stream_pop(f"{b}.x", "stream")
        for z in "qkv":
            pops.append(PopSpec(f"{b}.{z}", (N, D), "lif", lif, z))
            projs.append(ProjSpec(f"{b}.w{z}", x, f"{b}.{z}", "linear", f"{b}.w{z}"))
        from spikeformer.attention import attention_block
        att_pops, att_projs = attention_block(cfg.attention, b, N, D, cfg.heads, cfg.mask_count, cfg.kwta_k)
        pops += att_pops
        projs += att_projs
        relay(f"{b}.attn", f"{b}.wo")
        y = stream_pop(f"{b}.y", "stream")
        pops.append(PopSpec(f"{b}.h", (N, H), "lif", lif, "hidden"))
        projs.append(ProjSpec(f"{b}.w1", y, f"{b}.h", "linear", f"{b}.w1"))
        hidden = first_k(f"{b}.h", f"{b}.hk", cfg.hidden_k, "hidden_kwta")
        relay(hidden, f"{b}.w2")
    out = stream_pop("out", "stream")
    return Spec(tuple(pops), tuple(projs), out)
