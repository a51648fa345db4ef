"""k-WTA selection rules (``hidden_k``, ``stream_k``): ≤ k spikes per token per tick, lowered exactly.

Per token and tick a population sends s ∈ {0,1}^M (M channels); a rule keeps a
subset sel ⊆ s with |sel| ≤ k. The torch model computes the definition
(``select``), the converter the circuit (``lower``); the three-way tests prove
them equal. ``ModelConfig.wta_rule`` names the rule (``RULES``).

**index** — the first k spikes in index order::

    sel_c = [k·s_c − Σ_{c'<c} s_c' ≥ 1]              GE1, identity (2k) + earlier_inhibit (−2)

neurons NM, synapses NM + NM(M−1)/2, 1 tick; a raw spike at channel c costs
M − c synaptic ops (every later channel of its token is inhibited): O(M) per
spike. Limits: k ≤ 127 (weight 2k is a mantissa), M ≤ 2048 (GE1's carried
residual −(earlier spikes)/32 of a silent tick stays above −64).

**group** — the first spike of each of k contiguous groups
G_j = [⌊jM/k⌋, ⌊(j+1)M/k⌋) (sizes ⌊M/k⌋ or ⌈M/k⌉; local index i(c) = c − ⌊jM/k⌋)::

    sel_c = [s_c − Σ_{c' ∈ G_j(c), c' < c} s_c' ≥ 1]

Circuit: per group a binary tree over P = 2^h local slots, h = ⌈log₂⌈M/k⌉⌉;
node (ℓ, i) spans slots [i·2^ℓ, (i+1)·2^ℓ); act₀ = s; levels ℓ = 1 … h−1 (the
root's activity feeds nothing, its suppression is 0)::

    act_ℓ,i = act_ℓ−1,2i ∨ act_ℓ−1,2i+1                         (N, k, P/2^ℓ)  GE1          (pair_up)
    sup_ℓ,i = [2·act_ℓ,i + [i odd]·act_ℓ,i−1 + sup_ℓ+1,⌊i/2⌋ ≥ 3]   (N, k, P/2^ℓ)  count_neuron(3)
              (identity 4, left_sibling 2, pair_down 2; sup_h ≡ 0)
    sel_c   = [s_c − [i(c) odd]·s_c−1 − sup_1,⌊i(c)/2⌋ ≥ 1]       (N, M)         GE1
              (identity 2, left_sibling −2, pair_down −2)

Exact: let blocked(X) = "a spike of the group lies left of X's span"; then
blocked(root) = 0, blocked(left child) = blocked(X), blocked(right child) =
blocked(X) ∨ act(left sibling), and act(child) ∧ blocked(X) = act(child) ∧
sup(X) because a child's activity implies its parent's; so sup = act ∧ blocked
level by level, and sel = s ∧ ¬blocked(leaf) is the definition. Every input
count is in [−2, 4], far inside the count neuron's range.

Cost per population (h ≥ 2; h = 1 has no tree, h = 0 is sel = s)::

    neurons   NM + 2Nk(P − 2)
    synapses  N·(M + Σ_j ⌊g_j/2⌋ + 2M + k(7P/2 − 11))
              (s→sel M, left_sibling Σ⌊g_j/2⌋, s→act₁ M, sup₁→sel M, act→act k(P − 4),
               act→sup k(P − 2) + k(P/2 − 1), sup→sup k(P − 4))
    ticks     2h − 1  (act_ℓ at ℓ, sup_ℓ at 2h − 1 − ℓ, sel at 2h − 1)

Only active nodes fire: a raw spike makes ≤ 3 synaptic ops at its leaf and ≤ 5 per
tree level above it (act: parent, own sup, right sibling's sup; sup: 2
children), so ≤ 5h − 2 = O(log(M/k)) per spike, independent of M at fixed M/k.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from sim import numerics as nm
from spikeformer.neurons import fires_at_least
from spikeformer.spec import GE1, PopSpec, ProjSpec, count_neuron
from spikeformer.wiring import FIXED_WEIGHT, groups_of

INDEX_MAX_WIDTH = 2048       # index rule: GE1's residual −(earlier spikes)/32 of a silent tick stays > −64
SUP = count_neuron(3)        # 2·act + left sibling + parent's suppression ≥ 3


def first_k(s: torch.Tensor, k: int) -> torch.Tensor:
    """index rule: the first k spikes of each token (last axis) in index order, [k·s_c − Σ_{c'<c} s_c' ≥ 1]."""
    earlier = torch.cumsum(s, dim=-1) - s
    return fires_at_least(k * s - earlier, 1)


def first_in_groups(s: torch.Tensor, k: int) -> torch.Tensor:
    """group rule: the first spike of each of k contiguous groups of the last axis,
    [s_c − Σ_{c' ∈ G(c), c' < c} s_c' ≥ 1]."""
    j, i = groups_of(s.shape[-1], k)
    start = torch.as_tensor(np.arange(s.shape[-1]) - i, device=s.device)
    earlier = torch.cumsum(s, dim=-1) - s                      # Σ_{c' < c}
    return fires_at_least(s - (earlier - earlier.index_select(-1, start)), 1)


def tree_height(width: int, k: int) -> int:
    """h = ⌈log₂⌈M/k⌉⌉ of the group rule's trees."""
    return (-(-width // k) - 1).bit_length()


def lower_index(pre: str, name: str, shape: tuple[int, ...], k: int, role: str
                ) -> tuple[list[PopSpec], list[ProjSpec]]:
    short = name.rsplit(".", 1)[-1]
    return ([PopSpec(name, shape, "lif", GE1, role)],
            [ProjSpec(f"{pre}->{short}", pre, name, "identity", weight=FIXED_WEIGHT * k),
             ProjSpec(f"{pre}-|{short}", pre, name, "earlier_inhibit")])


def lower_group(pre: str, name: str, shape: tuple[int, ...], k: int, role: str
                ) -> tuple[list[PopSpec], list[ProjSpec]]:
    N, M = shape
    h, short = tree_height(M, k), name.rsplit(".", 1)[-1]
    pops = [PopSpec(f"{name}.act{lv}", (N, k, 1 << (h - lv)), "lif", GE1, "wta_tree") for lv in range(1, h)]
    pops += [PopSpec(f"{name}.sup{lv}", (N, k, 1 << (h - lv)), "lif", SUP, "wta_tree") for lv in range(h - 1, 0, -1)]
    pops.append(PopSpec(name, shape, "lif", GE1, role))
    def node(kind: str, lv: int) -> str:
        return pre if lv == 0 else f"{name}.{kind}{lv}"

    projs = [ProjSpec(f"{pre}->{short}", pre, name, "identity")]
    if h >= 1:
        projs.append(ProjSpec(f"{pre}-|{short}", pre, name, "left_sibling", weight=-FIXED_WEIGHT, groups=k))
    for lv in range(1, h):
        child, act, sup = node("act", lv - 1), node("act", lv), node("sup", lv)
        projs += [ProjSpec(f"{child}->{act}", child, act, "pair_up", groups=k),
                  ProjSpec(f"{act}->{sup}", act, sup, "identity", weight=2 * FIXED_WEIGHT),
                  ProjSpec(f"{act}-<{sup}", act, sup, "left_sibling", weight=FIXED_WEIGHT, groups=k)]
        if lv + 1 < h:
            parent = node("sup", lv + 1)
            projs.append(ProjSpec(f"{parent}->{sup}", parent, sup, "pair_down", groups=k))
    if h >= 2:
        sup1 = node("sup", 1)
        projs.append(ProjSpec(f"{sup1}-|{short}", sup1, name, "pair_down", weight=-FIXED_WEIGHT, groups=k))
    return pops, projs


def check_index(name: str, k: int, width: int, what: str) -> None:
    top = min(width, nm.W_MANT_MAX)
    if not 1 <= k <= top:
        raise ValueError(f"config.{name} ({k!r}) must be null or in [1, {top}]: at most k of the {width} {what} "
                         f"neurons of a token spike per tick (k ≤ width, and k ≤ {nm.W_MANT_MAX}, the largest "
                         f"weight mantissa, for wta_rule='index')")
    if width > INDEX_MAX_WIDTH:
        raise ValueError(f"config.{name}: the {what} width {width} exceeds {INDEX_MAX_WIDTH}, the widest "
                         f"population whose first-k circuit (wta_rule='index') is exact; use wta_rule='group'")


def check_group(name: str, k: int, width: int, what: str) -> None:
    if not 1 <= k <= width:
        raise ValueError(f"config.{name} ({k!r}) must be null or in [1, {width}]: at most k of the {width} {what} "
                         f"neurons of a token spike per tick (k ≤ width)")


@dataclass(frozen=True)
class WtaRule:
    """select: torch definition (spikes (…, M) → kept spikes); lower: (pre, name, shape, k, role) → the circuit's
    populations and projections, ``name`` the output; check: raise ValueError naming config.{name}."""

    select: Callable[[torch.Tensor, int], torch.Tensor]
    lower: Callable[[str, str, tuple[int, ...], int, str], tuple[list[PopSpec], list[ProjSpec]]]
    check: Callable[[str, int, int, str], None]


RULES = {"index": WtaRule(first_k, lower_index, check_index),
         "group": WtaRule(first_in_groups, lower_group, check_group)}


def check_wta(rule: str, name: str, k: int | None, width: int, what: str) -> None:
    """Raise ValueError naming config.wta_rule or config.{name} unless ``rule`` can keep k of ``width``."""
    if rule not in RULES:
        raise ValueError(f"config.wta_rule must be one of {tuple(RULES)}, got {rule!r}")
    if k is None:
        return
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"config.{name} ({k!r}) must be null or a positive integer")
    RULES[rule].check(name, k, width, what)
