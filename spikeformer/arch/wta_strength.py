"""k-WTA by strength (``wta_rule = "strength"``): the k spiking channels of a token with the highest voltage level.

**Level.** The selected population is a CUBA LIF (du = 4095, dv, vth; ``Potential``); a channel that spikes
at tick t has pre-reset voltage v > 64·θ_0 (loihi integers; float: v > θ_0). With L = ``STRENGTH_LEVELS``
thresholds θ_ℓ = min(vth + ⌊ℓ·vth/(L − 1)⌋, 2¹⁷ − 1) (θ_0 = vth, θ_{L−1} = 2·vth: the voltages of the
trained width-sweep models lie in (vth, 3·vth]) its level is::

    λ(c) = #{ℓ ∈ 1 … L−1 : v_c > 64·θ_ℓ}                       (float: v_c > θ_ℓ)

**Definition** (per token and tick; n_λ spikes at level λ, C_λ = Σ_{λ' ≥ λ} n_λ'; groups G_j as the group
rule's, j = 0 … k−1). If C_0 ≤ k every spike is kept. Otherwise the cut level κ = max{λ : C_λ > k}: every
spike above κ is kept (C_{κ+1} ≤ k of them) and ties at κ are broken by the group rule — the first level-κ
spike of each group, for the first m = k − C_{κ+1} groups (in index order) that hold one. So ≤ k are kept,
every kept spike's level ≥ every dropped one's, and exactly min(k, C_0) unless the cut level's spikes lie
in fewer than m groups; with L = 1 (or all spikes at one level) it is "all spikes if ≤ k, else the group rule".
The torch model keeps s·win (the gradient reaches the kept channels only).

**Circuit.** Ranks r = L − 1 − λ (r = 0 the top level); the leaves are the level one-hots laid out
(N, L·M) rank-major, cut into L·k groups (rank r, group j) of the group rule's sizes; b = ``TREE_ARITY``,
h = ⌈log_b⌈M/k⌉⌉ levels as the group rule (node (ℓ, p): m_ℓ nodes per group, m_h = 1 the group root)::

    T_0 = S,  T_ℓ = VoltageProbe(dv, vth, θ_ℓ) fed S's inputs        [v_S > 64·θ_ℓ]   (sim.neurons.probe)
    X_r,c   = [T_λ − T_λ+1 ≥ 1]                          GE1            rank_step (2, −2)
    C_r     = Σ_{r' ≤ r} Σ_c X_r',c                      graded relay   rank_cumcount (1)    = C_λ
    A_r     = [C_r ≥ 1];  Q_r,x = [C_r − x·A_r ≥ 1], x = 0 … k;  Cs_r = Σ_x Q_r,x = min(C_r, k + 1) (relay)
    F_r     = Q_r,k = [C_r ≥ k + 1]                                                    (rank r not all kept)
    act_ℓ   = the group rule's activity tree over X;  W_r,j = act_h (= X when h = 0)
    acc_r,j = [k·W_r,j − Cs_r−1 − Σ_{j' < j} W_r,j' ≥ 1]  GE1     (group j's first spike fits; Cs_−1 ≡ 0)
    sup_ℓ   = the group rule's suppression, its root input W − acc (a group not accepted is blocked)
    in_h    = [W − F ≥ 1];  in_ℓ,p = [act_ℓ,p + in_ℓ+1,parent ≥ 2]     (every spike of a rank that fits is kept)
    win_r,c = [(b+1)·X + b·in_1 − Σ_{earlier siblings} X − sup_1 ≥ b+1]      count_neuron(b+1)
    out_c   = [Σ_r win_r,c ≥ 1]                          GE1            rank_collapse

(h = 1: sup_1 → W − acc, win = [(b+1)X + b·in_h − E − W + acc ≥ b+1]; h = 0: no tree, W = X, win =
[2·acc + X − F ≥ 1].) Exact: a probe's voltage is S's every tick (same input, update and reset), so
T_ℓ = [v > 64·θ_ℓ] and X is the one-hot level; C_r counts the spikes at rank ≤ r, so F_r = [C_λ > k]
and acc_r,j is the definition's "group j among the first k − C_λ+1 groups holding a level-λ spike"; the
down-sweeps are the group rule's (sup) and an AND chain through active nodes (in), and win keeps a leaf
iff its rank fits (in) or it is its group's first and accepted (sup = 0), as the definition. Every count
neuron's input lies in [−4k − 2b, 2k + 4b + 2] or is a relay count that fires it, so the carried residual
stays below the margin (``count_neuron``); limits k ≤ 127 (weights 2k), none on M.

Cost per population (N tokens, G = L·k; g_j the group sizes, m_ℓ the nodes per group at tree level ℓ,
m_h = 1; pairs(m) = Σ over the blocks of m nodes of C(size, 2), as ``spikeformer.arch.wta``)::

    neurons   3L·NM [probes, X, win, out] + NL(2k + 4) [C, A, Cs; Q, acc]
              + [h ≥ 1]·NG·(2 + 3·Σ_{ℓ=1}^{h−1} m_ℓ) [act, sup, in, in_h]
    synapses  (L−1)·(S's input synapses) [probes] + NM(2L − 1) [T → X] + NM·L(L + 1)/2 [X → C]
              + NL(3k + 3) + N(L−1)k + NLk(k + 1)/2 [counts, acc] + NLM [out] + tree(h), with
              tree(0) = 3NLM,  tree(1) = 5NLM + NL·Σ_j pairs(g_j) + 2NG,
              tree(h ≥ 2) = 4NLM + NL·Σ_j pairs(g_j) + NG·Σ_{ℓ=1}^{h−1} (5m_ℓ + pairs(m_ℓ)) + NG·(m_{h−1} + 2)
    ticks     max(h + 2, 6) + max(h, 1) + 1

A raw spike at level λ makes 3λ + 2 ops to X and C, at its leaf ≤ b + 1, per tree level ≤ 3b + 2 (act:
parent, sup, in, later siblings; sup, in: b children each), at its group root ≤ k + 2b; per token and
tick ≤ L(5k + 3) more (counts, thresholds): O(L + k + b·log_b(M/k)) per spike, independent of M at
fixed M/k. The probes receive S's input again: (L−1) × S's input synaptic ops. Measured on random
spikes (k = 4, each raw spike at a random level, 12 / 32 per token; ``tests/models/test_wta.py::
strength_ops_per_spike``, the probes' input copies included), synaptic ops per raw spike at M/k = 16, 256,
4,096: 51, 66, 83 / 39, 55, 71 (9, 11, 15 ticks); the group rule's 7.5, 19, 31, the index rule's 32, 513
(M/k 16, 256). The mnist1d-width model with this rule (a few training steps) costs 78 k synaptic ops per
inference at D 64 and at D 1,024 (1.8 M neurons, 7.3 M synapses, 61 ticks), simulator = model.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from sim import numerics as nm
from sim.neurons.probe import VoltageProbe
from spikeformer.arch.nodes import GE1, RELAY_WEIGHT, PopSpec, ProjSpec, count_neuron
from spikeformer.arch.wiring import FIXED_WEIGHT, groups_of
from spikeformer.arch.wta import TREE_ARITY, Potential, WtaRule, check_k_by_weight, register, tree_height

STRENGTH_LEVELS = 8          # L: voltage levels per spike (L − 1 probe populations)


def level_thresholds(vth: int, levels: int = STRENGTH_LEVELS) -> list[int]:
    """θ_ℓ = min(vth + ⌊ℓ·vth/(L−1)⌋, 2¹⁷ − 1), ℓ = 0 … L−1 (threshold mantissas; θ_0 = vth)."""
    return [min(vth + (ell * vth) // max(levels - 1, 1), nm.VTH_MAX) for ell in range(levels)]


def spike_levels(v: torch.Tensor, vth: int, unit: int, levels: int = STRENGTH_LEVELS) -> torch.Tensor:
    """λ = #{ℓ ≥ 1 : v > unit·θ_ℓ} (int64, v's shape); meaningful where the channel spikes."""
    bounds = torch.tensor([unit * th for th in level_thresholds(vth, levels)[1:]], dtype=v.dtype, device=v.device)
    return torch.bucketize(v, bounds)                     # #{θ in bounds : θ < v}, exact for int32 and float32 v


def strongest(s: torch.Tensor, k: int, potential: Potential, levels: int = STRENGTH_LEVELS) -> torch.Tensor:
    """The definition (module doc): s·win, win the kept channels of each token (last axis) and tick."""
    M, L, dev, lead = s.shape[-1], levels, s.device, s.shape[:-1]
    spk = s > 0
    lev = spike_levels(potential.v, potential.neuron.vth, potential.unit, levels)
    n = torch.zeros(*lead, L, dtype=torch.int64, device=dev).scatter_add_(-1, lev, spk.to(torch.int64))
    c = torch.flip(torch.cumsum(torch.flip(n, [-1]), -1), [-1])                   # C_λ = Σ_{λ' ≥ λ} n_λ'
    above = torch.nn.functional.pad(c[..., 1:], (0, 1))                           # C_λ+1
    j, _ = groups_of(M, k)
    key = torch.as_tensor(j, device=dev) * L + lev                                # (group, level) of each channel
    index = torch.arange(M, device=dev).expand_as(lev)
    first_at = torch.full((*lead, k * L), M, dtype=torch.int64, device=dev).scatter_reduce_(
        -1, key, torch.where(spk, index, M), "amin")                              # first spike per (group, level)
    first = spk & (first_at.gather(-1, key) == index)                             # the group rule, per level
    held = (first_at < M).unflatten(-1, (k, L)).transpose(-1, -2)                 # (…, L, k): group holds a spike
    earlier = torch.cumsum(held, -1) - held.to(torch.int64)
    accept = (held & (above.unsqueeze(-1) + earlier <= k - 1)).transpose(-1, -2).flatten(-2)
    fits = c.gather(-1, lev) <= k                                                 # C_λ(c) ≤ k
    return s * (spk & (fits | (first & accept.gather(-1, key)))).to(s.dtype)


def select_strength(s: torch.Tensor, k: int, potential: Potential) -> torch.Tensor:
    return strongest(s, k, potential)


def lower_strength(pre: PopSpec, inputs: tuple[ProjSpec, ...], name: str, k: int, role: str,
                   arity: int = TREE_ARITY, levels: int = STRENGTH_LEVELS) -> tuple[list[PopSpec], list[ProjSpec]]:
    """The circuit of the module doc: populations and projections, ``name`` the output (N, M)."""
    p = pre.params
    if p.du != nm.DU_MAX:
        raise ValueError(f"population '{pre.name}': the k-WTA by strength reads voltages through probes with "
                         f"du = {nm.DU_MAX}; this LIF has du = {p.du}")
    (N, M), L, b = pre.shape, levels, arity
    h, G = tree_height(M, k, b), levels * k
    theta = level_thresholds(p.vth, L)
    tree = {"groups": G, "arity": b}
    pops: list[PopSpec] = []
    projs: list[ProjSpec] = []

    def pop(suffix: str, shape: tuple[int, ...], params, kind: str = "lif", role_: str = "wta_tree") -> str:
        pops.append(PopSpec(f"{name}.{suffix}", shape, kind, params, role_))
        return f"{name}.{suffix}"

    def link(src: str, dst: str, op: str, weight: int = FIXED_WEIGHT, **kw) -> None:
        projs.append(ProjSpec(f"{src}->{dst}:{op}", src, dst, op, weight=weight, **kw))

    t = [pre.name] + [pop(f"probe{ell}", (N, M), VoltageProbe(p.dv, p.vth, theta[ell]), role_="wta_probe")
                      for ell in range(1, L)]
    for ell in range(1, L):
        projs += [replace(pr, name=f"{pr.name}@{t[ell]}", post=t[ell]) for pr in inputs]
    x = pop("level", (N, L * M), GE1)
    for lam in range(L):
        link(t[lam], x, "rank_step", index=L - 1 - lam)
    c = pop("count", (N, L), None, "graded")
    link(x, c, "rank_cumcount", RELAY_WEIGHT)
    some, least = pop("some", (N, L), GE1), pop("least", (N, L, k + 1), GE1)
    above = pop("above", (N, L), None, "graded")
    link(c, some, "identity")
    link(c, least, "rank_spread")
    link(some, least, "rank_offset")
    link(least, above, "rank_sum", RELAY_WEIGHT)
    g = -(-M // k)
    width = [0] + [-(-g // b ** lv) for lv in range(1, h + 1)]                # m_ℓ
    act = [x] + [pop(f"act{lv}", (N, G, width[lv]), GE1) for lv in range(1, h + 1)]
    for lv in range(1, h + 1):
        link(act[lv - 1], act[lv], "child_up", **tree)
    accept = pop("accept", (N, G, 1), GE1)
    link(act[h], accept, "identity", FIXED_WEIGHT * k)
    link(act[h], accept, "earlier_sibling", -FIXED_WEIGHT, groups=L, arity=k)
    link(above, accept, "rank_spread", -FIXED_WEIGHT, index=1)
    win = pop("win", (N, L * M), GE1 if h == 0 else count_neuron(b + 1))
    _down_sweeps(pop, link, act, [(N, G, m) for m in width], accept, least, win, k, b, tree)
    link(win, name, "rank_collapse")
    pops.append(PopSpec(name, (N, M), "lif", GE1, role))
    return pops, projs


def _down_sweeps(pop, link, act: list[str], shapes: list[tuple[int, ...]], accept: str, least: str, win: str, k: int,
                 b: int, tree: dict) -> None:
    """Into ``win``: sup (the group rule's, root input W − acc), in (AND chain, root input W − F), the leaves;
    F_r = Q_r,k (``least``: C_r ≥ k + 1)."""
    h = len(act) - 1
    w, x = act[h], act[0]
    if h == 0:                                                     # one channel per group: W = X
        link(accept, win, "identity", 2 * FIXED_WEIGHT)
        link(x, win, "identity")
        link(least, win, "rank_pick", -FIXED_WEIGHT, index=k)
        return
    fits = pop("fits", shapes[h], GE1)                             # in_h = [W − F ≥ 1]: the group's rank fits
    link(w, fits, "identity")
    link(least, fits, "rank_pick", -FIXED_WEIGHT, index=k)
    link(x, win, "identity", FIXED_WEIGHT * (b + 1))
    link(x, win, "earlier_sibling", -FIXED_WEIGHT, **tree)
    if h == 1:                                                     # the leaves' parent is the group root
        link(fits, win, "parent_down", FIXED_WEIGHT * b, **tree)
        link(w, win, "parent_down", -FIXED_WEIGHT, **tree)
        link(accept, win, "parent_down", FIXED_WEIGHT, **tree)
        return
    sup = {lv: pop(f"sup{lv}", shapes[lv], count_neuron(b + 1)) for lv in range(h - 1, 0, -1)}
    inn = {lv: pop(f"in{lv}", shapes[lv], count_neuron(2)) for lv in range(h - 1, 0, -1)}
    inn[h] = fits
    for lv in range(h - 1, 0, -1):
        link(act[lv], sup[lv], "identity", FIXED_WEIGHT * b)
        link(act[lv], sup[lv], "earlier_sibling", FIXED_WEIGHT, **tree)
        link(act[lv], inn[lv], "identity")
        link(inn[lv + 1], inn[lv], "parent_down", **tree)
        if lv == h - 1:                                            # the group root: W − acc
            link(w, sup[lv], "parent_down", **tree)
            link(accept, sup[lv], "parent_down", -FIXED_WEIGHT, **tree)
        else:
            link(sup[lv + 1], sup[lv], "parent_down", **tree)
    link(inn[1], win, "parent_down", FIXED_WEIGHT * b, **tree)
    link(sup[1], win, "parent_down", -FIXED_WEIGHT, **tree)


def check_strength(name: str, k: int, width: int, what: str) -> None:
    check_k_by_weight("strength", name, k, width, what)


register("strength", WtaRule(select_strength, lower_strength, check_strength))
