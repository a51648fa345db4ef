"""Spiking attention lowered to coincidence neurons and static synapses: SDSA, k-WTA, SSA.

Per tick, Q, K, V ∈ {0,1}^{N×D} (N tokens, D channels, H heads of d = D/H
channels, h(c) = c // d). All circuit neurons are memoryless LIFs (du = dv =
max, so u = a and v = a + trunc(v_prev/4096)): ``count_neuron(m)`` fires iff at
least m of its weight-2 inputs spike (v = 128·x > 64·(2m − 1)); the carried
residual |trunc(v/4096)| < 64 while |v| < 2¹⁸, which the size checks below
guarantee, so every neuron computes its formula exactly on every tick.

**SDSA** (Yao et al. 2023), mask = SN(Σ_n K⊙V), out = Q⊙mask::

    kv_nc = K_nc ∧ V_nc;  mask_c = [Σ_n kv_nc ≥ m];  attn_nc = Q_nc ∧ mask_c
    neurons 2ND + D, synapses 5ND, 3 ticks

**k-WTA** (per head h): score_ijh = Σ_{c∈h} Q_ic ∧ K_jc; the winners of query i
are the keys with score ≥ the k-th largest score of that query (ties kept,
score 0 never wins); out_ic = [#{j ∈ W_ih(c) : V_jc} ≥ m]. Circuit::

    qk_ijc      = Q_ic ∧ K_jc                                   N²D    AND
    rank_ijj'h  = [score_ij'h − score_ijh ≥ 1]   (+2 from qk_ij'c, −2 from qk_ijc)
                                                                N³H    GE1 (j = j' has no synapse)
    score_ijh   = [score_ijh ≥ 1]                               N²H    GE1
    win_ijh     = [k·score_ijh − Σ_j' rank_ijj'h ≥ 1]           N²H    GE1 (weights 2k and −2)
    wv_ijc      = win_ijh(c) ∧ V_jc                             N²D    AND
    attn_ic     = [Σ_j wv_ijc ≥ m]                              ND     count_neuron(m)

win_ijh ⇔ score_ijh ≥ 1 ∧ #{j' : score_ij'h > score_ijh} < k ⇔ score_ijh ≥ the k-th
largest score (with multiplicity) and > 0 — exactly the definition, ties kept.
Cost per block: neurons 2N²D + N³H + 2N²H + ND; synapses 2N²D (Q,K→qk) +
2(N−1)N²D (qk→rank) + N²D (qk→score) + N²H + N³H (→win) + 2N²D (→wv) + N²D
(wv→attn); 5 ticks from Q/K to attn (delay balancing gives V 3 extra ticks).

**SSA** (Spikformer, Zhou et al. 2023), SN(Q·Kᵀ·V·s) per head, with 1/s = m::

    qk_ijc'     = Q_ic' ∧ K_jc'                                 N²D    AND
    qkv_ijce    = qk_ij(h(c)·d+e) ∧ V_jc                        N²D·d  AND
    attn_ic     = [Σ_j Σ_e qkv_ijce ≥ m] = [(Q Kᵀ V)_ic ≥ m]    ND     count_neuron(m)
    synapses 2N²D + 3N²D·d, 3 ticks

SSA needs N²·D·d triple-coincidence neurons; ``SSA_MAX_NEURONS`` bounds it (the
torch model keeps B·T copies of that tensor for backpropagation).
"""
from __future__ import annotations

import numpy as np

from sim.numerics import W_MANT_MAX
from spikeformer.spec import AND, GE1, PopSpec, ProjSpec, count_neuron
from spikeformer.wiring import FIXED_WEIGHT

ATTENTIONS = ("sdsa", "kwta", "ssa")
SSA_MAX_NEURONS = 1 << 18          # triple-coincidence neurons per block (tokens²·dim·dim/heads)
CIRCUIT_MAX_COUNT = 2047           # largest input count a memoryless neuron may see (|v| < 2¹⁸)


def check_attention(attention: str, tokens: int, dim: int, heads: int, kwta_k: int) -> None:
    """Raise ValueError naming the config field when the attention cannot be built or lowered."""
    if attention not in ATTENTIONS:
        raise ValueError(f"config.attention must be one of {ATTENTIONS}, got {attention!r}")
    d = dim // heads
    if attention == "kwta":
        if not isinstance(kwta_k, int) or not 1 <= kwta_k <= tokens:
            raise ValueError(f"config.kwta_k ({kwta_k!r}) must be in [1, tokens={tokens}]: "
                             f"k winners are chosen among the {tokens} keys of each query")
        if kwta_k > W_MANT_MAX:
            raise ValueError(f"config.kwta_k ({kwta_k}) must be ≤ {W_MANT_MAX}: the winner gate's weight is k "
                             f"(a Loihi weight mantissa)")
        if max(d, tokens * kwta_k) > CIRCUIT_MAX_COUNT:
            raise ValueError(f"config.attention='kwta': a head of {d} channels with {tokens} tokens exceeds the "
                             f"exact circuit's input range ({CIRCUIT_MAX_COUNT}); raise config.heads")
    if attention == "ssa":
        n = tokens * tokens * dim * d
        if n > SSA_MAX_NEURONS:
            raise ValueError(f"config.attention='ssa' needs tokens²·dim·(dim/heads) = {tokens}²·{dim}·{d} = {n:,} "
                             f"triple-coincidence neurons per block, above the lowering limit SSA_MAX_NEURONS = "
                             f"{SSA_MAX_NEURONS:,}; reduce config.tokens or config.dim, or raise config.heads")
        if tokens * d > CIRCUIT_MAX_COUNT:
            raise ValueError(f"config.attention='ssa': tokens·dim/heads = {tokens * d} exceeds the exact circuit's "
                             f"input range ({CIRCUIT_MAX_COUNT}); raise config.heads")


def attention_block(kind: str, b: str, tokens: int, dim: int, heads: int, count: int, kwta_k: int
                    ) -> tuple[list[PopSpec], list[ProjSpec]]:
    """Populations and projections from ``{b}.q/k/v`` (N, D) to ``{b}.attn`` (N, D); see module doc."""
    N, D, H = tokens, dim, heads
    out = PopSpec(f"{b}.attn", (N, D), "lif", AND if kind == "sdsa" else count_neuron(count), "attn")
    if kind == "sdsa":
        pops = [PopSpec(f"{b}.kv", (N, D), "lif", AND, "and"),
                PopSpec(f"{b}.mask", (D,), "lif", count_neuron(count), "mask"), out]
        projs = [ProjSpec(f"{b}.k->kv", f"{b}.k", f"{b}.kv", "identity"),
                 ProjSpec(f"{b}.v->kv", f"{b}.v", f"{b}.kv", "identity"),
                 ProjSpec(f"{b}.kv->mask", f"{b}.kv", f"{b}.mask", "token_sum"),
                 ProjSpec(f"{b}.q->attn", f"{b}.q", f"{b}.attn", "identity"),
                 ProjSpec(f"{b}.mask->attn", f"{b}.mask", f"{b}.attn", "broadcast")]
        return pops, projs
    qk = [PopSpec(f"{b}.qk", (N, N, D), "lif", AND, "and")]
    qk_projs = [ProjSpec(f"{b}.q->qk", f"{b}.q", f"{b}.qk", "pair_first"),
                ProjSpec(f"{b}.k->qk", f"{b}.k", f"{b}.qk", "pair_second")]
    if kind == "kwta":
        pops = qk + [PopSpec(f"{b}.rank", (N, N, N, H), "lif", GE1, "rank"),
                     PopSpec(f"{b}.score", (N, N, H), "lif", GE1, "score"),
                     PopSpec(f"{b}.win", (N, N, H), "lif", GE1, "win"),
                     PopSpec(f"{b}.wv", (N, N, D), "lif", AND, "and"), out]
        projs = qk_projs + [
            ProjSpec(f"{b}.qk->rank", f"{b}.qk", f"{b}.rank", "score_greater"),
            ProjSpec(f"{b}.qk->score", f"{b}.qk", f"{b}.score", "head_sum"),
            ProjSpec(f"{b}.score->win", f"{b}.score", f"{b}.win", "identity", weight=FIXED_WEIGHT * kwta_k),
            ProjSpec(f"{b}.rank->win", f"{b}.rank", f"{b}.win", "rank_inhibit"),
            ProjSpec(f"{b}.win->wv", f"{b}.win", f"{b}.wv", "head_broadcast"),
            ProjSpec(f"{b}.v->wv", f"{b}.v", f"{b}.wv", "pair_second"),
            ProjSpec(f"{b}.wv->attn", f"{b}.wv", f"{b}.attn", "key_sum")]
        return pops, projs
    if kind == "ssa":
        pops = qk + [PopSpec(f"{b}.qkv", (N, N, D, D // H), "lif", AND, "and"), out]
        projs = qk_projs + [ProjSpec(f"{b}.qk->qkv", f"{b}.qk", f"{b}.qkv", "triple_score"),
                            ProjSpec(f"{b}.v->qkv", f"{b}.v", f"{b}.qkv", "triple_value"),
                            ProjSpec(f"{b}.qkv->attn", f"{b}.qkv", f"{b}.attn", "triple_sum")]
        return pops, projs
    raise ValueError(f"config.attention must be one of {ATTENTIONS}, got {kind!r}")


def kwta_winners(q: np.ndarray, k: np.ndarray, heads: int, kwta_k: int) -> np.ndarray:
    """Brute-force definition: (…, N, D) spikes → winners (…, N queries, N keys, H) bool.

    score_ijh = Σ_{c∈h} q_ic·k_jc; j wins iff score_ijh > 0 and score_ijh ≥ the
    kwta_k-th largest of score_i·h (ties kept).
    """
    *batch, N, D = q.shape
    d = D // heads
    qh = np.asarray(q, np.int64).reshape(*batch, N, heads, d)
    kh = np.asarray(k, np.int64).reshape(*batch, N, heads, d)
    score = np.einsum("...ihc,...jhc->...ijh", qh, kh)
    kth = -np.sort(-score, axis=-2)[..., kwta_k - 1:kwta_k, :]       # k-th largest over keys j
    return (score > 0) & (score >= kth)


def ssa_counts(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    """Definition: (Q·Kᵀ·V)_ic per head, (…, N, D) integers."""
    *batch, N, D = q.shape
    d = D // heads
    qh, kh, vh = (np.asarray(x, np.int64).reshape(*batch, N, heads, d) for x in (q, k, v))
    score = np.einsum("...ihc,...jhc->...ijh", qh, kh)
    return np.einsum("...ijh,...jhc->...ihc", score, vh).reshape(*batch, N, D)
