"""``build_spec(cfg)``: the model of a config as populations and projections (``arch.nodes``).

Stream and MLP as in ``spikeformer.model.transformer``; attention from ``arch.attention``;
k-WTA populations from ``arch.wta``; fixed wiring from ``arch.wiring``.
"""
from __future__ import annotations

from sim import numerics as nm
from sim.neurons.cuba import CubaLIF
from spikeformer.arch.nodes import RELAY_EXP, RELAY_WEIGHT, PopSpec, ProjSpec, Spec
from spikeformer.config.model import ModelConfig


def build_spec(cfg: "ModelConfig") -> Spec:
    """Populations (in execution order) and projections of the model (see module doc)."""
    a = cfg.arch
    N, D, H = a.tokens, a.dim, a.dim * a.mlp_ratio
    lif = CubaLIF(du=nm.DU_MAX, dv=cfg.neuron.dv, vth=cfg.neuron.vth)
    pops = [PopSpec("input", (N, a.features), "input", None, "input")]
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

    from spikeformer.arch.wta import RULES
    wta = RULES[a.wta_rule]

    def first_k(pre: str, name: str, k: int | None, role: str) -> str:
        """≤ k spikes per token per tick of ``pre`` (``spikeformer.arch.wta``, rule ``cfg.arch.wta_rule``) in population
        ``name``; returns ``name``, or ``pre`` when k is None."""
        if k is None:
            return pre
        spec = next(p for p in pops if p.name == pre)
        new_pops, new_projs = wta.lower(spec, tuple(pr for pr in projs if pr.post == pre), name, k, role)
        pops.extend(new_pops)
        projs.extend(new_projs)
        return name

    def stream_pop(name: str, role: str) -> str:
        """LIF(R) of the stream so far; with ``stream_k`` its first k spikes per token (``{name}k``)."""
        pops.append(PopSpec(name, (N, D), "lif", lif, role))
        projs.append(ProjSpec(f"{relays[-1]}->{name}", relays[-1], name, "identity",
                              weight=RELAY_WEIGHT, weight_exp=RELAY_EXP))
        return first_k(name, f"{name}k", a.stream_k, "stream_kwta")

    relay("input", "emb")
    for l in range(a.depth):
        b = f"b{l}"
        x = stream_pop(f"{b}.x", "stream")
        for z in "qkv":
            pops.append(PopSpec(f"{b}.{z}", (N, D), "lif", lif, z))
            projs.append(ProjSpec(f"{b}.w{z}", x, f"{b}.{z}", "linear", f"{b}.w{z}"))
        from spikeformer.arch.attention import attention_block
        att_pops, att_projs = attention_block(a.attention, b, N, D, a.heads, a.mask_count, a.kwta_k, a.causal)
        pops += att_pops
        projs += att_projs
        relay(f"{b}.attn", f"{b}.wo")
        y = stream_pop(f"{b}.y", "stream")
        pops.append(PopSpec(f"{b}.h", (N, H), "lif", lif, "hidden"))
        projs.append(ProjSpec(f"{b}.w1", y, f"{b}.h", "linear", f"{b}.w1"))
        hidden = first_k(f"{b}.h", f"{b}.hk", a.hidden_k, "hidden_kwta")
        relay(hidden, f"{b}.w2")
    out = stream_pop("out", "stream")
    return Spec(tuple(pops), tuple(projs), out)
