"""k-WTA selection rules (``hidden_k``, ``stream_k``): ≤ k spikes per token per tick, lowered exactly.

Per token and tick a population sends s ∈ {0,1}^M (M channels); a rule keeps a
subset sel ⊆ s with |sel| ≤ k, given also the channels' pre-reset voltages (``Potential``).
The torch model computes the definition (``select``), the converter the circuit (``lower``,
fed the population and its incoming projections); the three-way tests prove them equal.
``ModelConfig.wta_rule`` names the rule (``RULES``): index and group below, each further rule
one module ``spikeformer.arch.wta_*`` that registers itself (``register``; ``wta_strength``).

**index** — the first k spikes in index order::

    sel_c = [k·s_c − Σ_{c'<c} s_c' ≥ 1]              GE1, identity (2k) + earlier_inhibit (−2)

neurons NM, synapses NM + NM(M−1)/2, 1 tick; a raw spike at channel c costs
M − c synaptic ops (every later channel of its token is inhibited): O(M) per
spike. Limits: k ≤ 127 (weight 2k is a mantissa), M ≤ 2048 (GE1's carried
residual −(earlier spikes)/32 of a silent tick stays above −64).

**group** — the first spike of each of k contiguous groups
G_j = [⌊jM/k⌋, ⌊(j+1)M/k⌋) (sizes ⌊M/k⌋ or ⌈M/k⌉; local index i(c) = c − ⌊jM/k⌋)::

    sel_c = [s_c − Σ_{c' ∈ G_j(c), c' < c} s_c' ≥ 1]

Circuit: per group a tree of arity b (``TREE_ARITY``) over its local indices,
h = ⌈log_b⌈M/k⌉⌉ levels; node (ℓ, p) spans local indices [p·b^ℓ, (p+1)·b^ℓ), its
siblings are the other nodes of block ⌊p/b⌋ (the last block may be short);
act₀ = s; levels ℓ = 1 … h−1 are populations of m_ℓ = ⌈⌈M/k⌉/b^ℓ⌉ nodes per group
(the root's activity feeds nothing, its suppression is 0)::

    act_ℓ,p = [Σ_{children} act_ℓ−1 ≥ 1]                                  GE1             child_up
    sup_ℓ,p = [b·act_ℓ,p + Σ_{earlier siblings p'} act_ℓ,p' + sup_ℓ+1,⌊p/b⌋ ≥ b + 1]
                                                                           count_neuron(b+1)
              (identity 2b, earlier_sibling 2, parent_down 2; sup_h ≡ 0)
    sel_c   = [s_c − Σ_{earlier siblings c'} s_c' − sup_1,⌊i(c)/b⌋ ≥ 1]   GE1
              (identity 2, earlier_sibling −2, parent_down −2)

Exact: let blocked(X) = "a spike of the group lies left of X's span"; then
blocked(root) = 0, blocked(child) = blocked(X) ∨ (an earlier sibling is active),
and act(child) ∧ blocked(X) = act(child) ∧ sup(X) because a child's activity
implies its parent's; so sup = act ∧ blocked level by level, and sel =
s ∧ ¬blocked(leaf) is the definition. Input counts lie in [−b, 2b] (b ≤ 127:
identity weight 2b is a mantissa), far inside the count neuron's range.

Cost per population, with pairs(m) = Σ over the blocks of m nodes of C(size, 2)
(N·k·pairs(m_ℓ) sibling synapses per level; at the leaves N·Σ_j pairs(g_j))::

    neurons   NM + 2Nk·Σ_{ℓ=1}^{h−1} m_ℓ
    synapses  N·(M + Σ_j pairs(g_j)) + [h ≥ 2]·N·(2M + k·Σ_{ℓ=1}^{h−1} (m_ℓ + pairs(m_ℓ))
              + 2k·Σ_{ℓ=1}^{h−2} m_ℓ)
              (s→sel, earlier siblings; s→act₁, sup₁→sel; act→sup, act→later siblings' sup;
               act→act, sup→sup)
    ticks     max(1, 2h − 1)  (act_ℓ at ℓ, sup_ℓ at 2h − 1 − ℓ, sel at 2h − 1)

Only active nodes fire: a raw spike makes ≤ 1 + (b−1) + 1 synaptic ops at its leaf
and ≤ 2 + (b−1) + b per tree level above it (act: parent, own sup, later
siblings' sup; sup: b children), so ≤ b + 1 + (h−1)(2b + 1) = O(b·log_b(M/k)) per
spike, independent of M at fixed M/k. Limits: k ≤ M, none on M. Measured on random spikes (k = 8, 4…32 spikes
per token), synaptic ops per raw spike at M/k = 8, 32, 128: b = 2: 7, 13, 20 (5, 9, 13 ticks); b = 4: 5, 10, 15
(3, 5, 7 ticks); b = 8: 4.5, 10, 16 (1, 3, 5 ticks). On the trained width-sweep models (MNIST-1D, no discard
penalty, D 64 / 1,024, k = 4, 3 seeds, 300 signals) the mean synaptic ops per inference for b = 2, 3, 4, 5, 8:
16.4 / 28.2 k, 15.2 / 25.1 k, 13.8 / 23.0 k, 14.5 / 23.7 k, 14.5 / 25.1 k — b = 4 (``TREE_ARITY``), the fewest
ops, at 7 ticks instead of 5 for b = 8 where M/k = 256.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from sim import numerics as nm
from sim.neurons.cuba import CubaLIF
from spikeformer import arch
from spikeformer.arch.nodes import GE1, PopSpec, ProjSpec, count_neuron
from spikeformer.arch.wiring import FIXED_WEIGHT, groups_of
from spikeformer.layers.lif import fires_at_least

INDEX_MAX_WIDTH = 2048       # index rule: GE1's residual −(earlier spikes)/32 of a silent tick stays > −64


TREE_ARITY = 4               # group rule: children per tree node (b); see the module doc


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


def tree_height(width: int, k: int, arity: int = TREE_ARITY) -> int:
    """h = ⌈log_b⌈M/k⌉⌉: the group rule's tree levels (0 when every group has one channel)."""
    g, h = -(-width // k), 0
    while arity ** h < g:
        h += 1
    return h


def lower_index(pre: str, name: str, shape: tuple[int, ...], k: int, role: str
                ) -> tuple[list[PopSpec], list[ProjSpec]]:
    short = name.rsplit(".", 1)[-1]
    return ([PopSpec(name, shape, "lif", GE1, role)],
            [ProjSpec(f"{pre}->{short}", pre, name, "identity", weight=FIXED_WEIGHT * k),
             ProjSpec(f"{pre}-|{short}", pre, name, "earlier_inhibit")])


def lower_group(pre: str, name: str, shape: tuple[int, ...], k: int, role: str, arity: int = TREE_ARITY
                ) -> tuple[list[PopSpec], list[ProjSpec]]:
    N, M = shape
    b, g, h = arity, -(-M // k), tree_height(M, k, arity)
    short = name.rsplit(".", 1)[-1]
    width = [0] + [-(-g // b ** lv) for lv in range(1, h)]                  # m_ℓ
    pops = [PopSpec(f"{name}.act{lv}", (N, k, width[lv]), "lif", GE1, "wta_tree") for lv in range(1, h)]
    pops += [PopSpec(f"{name}.sup{lv}", (N, k, width[lv]), "lif", count_neuron(b + 1), "wta_tree")
             for lv in range(h - 1, 0, -1)]
    pops.append(PopSpec(name, shape, "lif", GE1, role))

    def node(kind: str, lv: int) -> str:
        return pre if lv == 0 else f"{name}.{kind}{lv}"

    tree = {"groups": k, "arity": b}
    projs = [ProjSpec(f"{pre}->{short}", pre, name, "identity")]
    if h >= 1:
        projs.append(ProjSpec(f"{pre}-|{short}", pre, name, "earlier_sibling", weight=-FIXED_WEIGHT, **tree))
    for lv in range(1, h):
        child, act, sup = node("act", lv - 1), node("act", lv), node("sup", lv)
        projs += [ProjSpec(f"{child}->{act}", child, act, "child_up", **tree),
                  ProjSpec(f"{act}->{sup}", act, sup, "identity", weight=b * FIXED_WEIGHT),
                  ProjSpec(f"{act}-<{sup}", act, sup, "earlier_sibling", **tree)]
        if lv + 1 < h:
            parent = node("sup", lv + 1)
            projs.append(ProjSpec(f"{parent}->{sup}", parent, sup, "parent_down", **tree))
    if h >= 2:
        sup1 = node("sup", 1)
        projs.append(ProjSpec(f"{sup1}-|{short}", sup1, name, "parent_down", weight=-FIXED_WEIGHT, **tree))
    return pops, projs


def check_k_by_weight(rule: str, name: str, k: int, width: int, what: str) -> None:
    """1 ≤ k ≤ min(width, W_MANT_MAX): a rule whose circuit carries k in a weight mantissa."""
    top = min(width, nm.W_MANT_MAX)
    if not 1 <= k <= top:
        raise ValueError(f"config.{name} ({k!r}) must be null or in [1, {top}]: at most k of the {width} {what} "
                         f"neurons of a token spike per tick (k ≤ width, and k ≤ {nm.W_MANT_MAX}, the largest "
                         f"weight mantissa, for wta_rule='{rule}')")


def check_index(name: str, k: int, width: int, what: str) -> None:
    check_k_by_weight("index", name, k, width, what)
    if width > INDEX_MAX_WIDTH:
        raise ValueError(f"config.{name}: the {what} width {width} exceeds {INDEX_MAX_WIDTH}, the widest "
                         f"population whose first-k circuit (wta_rule='index') is exact; use wta_rule='group'")


def check_group(name: str, k: int, width: int, what: str) -> None:
    if not 1 <= k <= width:
        raise ValueError(f"config.{name} ({k!r}) must be null or in [1, {width}]: at most k of the {width} {what} "
                         f"neurons of a token spike per tick (k ≤ width)")


@dataclass(frozen=True)
class Potential:
    """The population a rule selects from, as the torch model sees it: ``v`` (…, M) the voltage of every
    channel and tick before its spike test and reset (``spikeformer.layers.lif.lif_sequence_voltage``), in
    the units where a channel of ``neuron`` spikes iff v > ``unit``·vth (loihi: integers, unit 64; float: 1)."""

    v: torch.Tensor
    neuron: CubaLIF
    unit: int


@dataclass(frozen=True)
class WtaRule:
    """select: the torch definition, (spikes (…, M), k, their Potential) → kept spikes; lower: (the population
    ``pre``, the projections into it, ``name``, k, role) → the circuit's populations and projections, ``name``
    the output (shape of ``pre``); check: (config field, k, width, what) → raise ValueError naming config.{name}."""

    select: Callable[[torch.Tensor, int, Potential], torch.Tensor]
    lower: Callable[[PopSpec, tuple[ProjSpec, ...], str, int, str], tuple[list[PopSpec], list[ProjSpec]]]
    check: Callable[[str, int, int, str], None]


class RuleTable(Mapping):
    """name → WtaRule; the plug-in modules ``spikeformer.arch.wta_*`` are imported on first use (each
    calls ``register``), so the table is complete wherever it is read."""

    def __init__(self, rules: dict[str, WtaRule]) -> None:
        self._rules, self._loaded = dict(rules), False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for info in pkgutil.iter_modules(arch.__path__):
                if info.name.startswith("wta_"):
                    importlib.import_module(f"{arch.__name__}.{info.name}")

    def __getitem__(self, name: str) -> WtaRule:
        self._load()
        return self._rules[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._rules)

    def __len__(self) -> int:
        self._load()
        return len(self._rules)


def select_index(s: torch.Tensor, k: int, potential: Potential) -> torch.Tensor:
    return first_k(s, k)


def select_group(s: torch.Tensor, k: int, potential: Potential) -> torch.Tensor:
    return first_in_groups(s, k)


def lower_index_rule(pre: PopSpec, inputs: tuple[ProjSpec, ...], name: str, k: int, role: str
                     ) -> tuple[list[PopSpec], list[ProjSpec]]:
    return lower_index(pre.name, name, pre.shape, k, role)


def lower_group_rule(pre: PopSpec, inputs: tuple[ProjSpec, ...], name: str, k: int, role: str
                     ) -> tuple[list[PopSpec], list[ProjSpec]]:
    return lower_group(pre.name, name, pre.shape, k, role)


RULES = RuleTable({"index": WtaRule(select_index, lower_index_rule, check_index),
                   "group": WtaRule(select_group, lower_group_rule, check_group)})


def register(name: str, rule: WtaRule) -> None:
    """Add the rule ``wta_rule = name`` (a plug-in module calls this when imported)."""
    if name in RULES._rules:
        raise ValueError(f"k-WTA rule {name!r} is registered twice")
    RULES._rules[name] = rule


def check_wta(rule: str, name: str, k: int | None, width: int, what: str) -> None:
    """Raise ValueError naming config.wta_rule or config.{name} unless ``rule`` can keep k of ``width``."""
    if rule not in RULES:
        raise ValueError(f"config.wta_rule must be one of {tuple(RULES)}, got {rule!r}")
    if k is None:
        return
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"config.{name} ({k!r}) must be null or a positive integer")
    RULES[rule].check(name, k, width, what)
