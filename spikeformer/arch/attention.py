"""Spiking attention lowered to count neurons, static synapses and graded relays: SDSA, k-WTA, SSA.

Per tick, Q, K, V ∈ {0,1}^{N×D} (N tokens, D channels, H heads of d = D/H
channels, h(c) = c // d). All circuit neurons are memoryless LIFs (du = dv =
max, so u = a and v = a + trunc(v_prev/4096)): ``count_neuron(m)`` fires iff its
signed input count x (a = 2x: weight-2 spikes, −2 inhibition, 2·payload from a
relay) is ≥ m (v = 128·x > 64·(2m − 1), margin 64); the carried residual
|trunc(v/4096)| < 64 while |v| < 2¹⁸, i.e. |x| ≤ 2047, which the size checks
below guarantee, so every neuron computes its formula exactly on every tick
(float numerics: margin 1, residual |v_prev|/4096 < 1 — exact too). k-WTA also
uses graded relays (``sim.ir``: stateless, payload = summed input).

**SDSA** (Yao et al. 2023), mask = SN(Σ_n K⊙V), out = Q⊙mask::

    kv_nc = K_nc ∧ V_nc;  mask_c = [Σ_n kv_nc ≥ m];  attn_nc = Q_nc ∧ mask_c
    neurons 2ND + D, synapses 5ND, 3 ticks

**k-WTA** (per head h): score_ijh = Σ_{c∈h} Q_ic ∧ K_jc; the winners of query i
are the keys with score ≥ the k-th largest score s_ih of that query (with
multiplicity, ties kept, score 0 never wins); out_ic = [#{j ∈ W_ih(c) : V_jc} ≥ m].
Circuit, d ≥ 2, score levels θ = 2 … d (L = d − 1 of them)::

    qk_ijc     = Q_ic ∧ K_jc                          N²D     AND
    score_ijh  = Σ_{c∈h} qk_ijc                       N²H     graded relay (weight 2, exp −1: payload = score)
    lev1_ijh   = [score_ijh ≥ 1]                      N²H     GE1 (from qk, beside the relay)
    lev_ijhθ   = [score_ijh − (θ−1)·lev1_ijh ≥ 1]     N²H·L   GE1 (+2·payload, −2(θ−1)·lev1)
               = [score_ijh ≥ θ]
    ge_ihθ     = [Σ_j lev_ijhθ ≥ k]                   N·H·L   count_neuron(k)
    win_ijh    = [score_ijh − Σ_θ ge_ihθ ≥ 1]         N²H     GE1 (+2·payload, −2·ge_ihθ for each θ)
    wv_ijc     = win_ijh(c) ∧ V_jc                    N²D     AND
    attn_ic    = [Σ_j wv_ijc ≥ m]                     N·D     count_neuron(m)

Exact: #{j : score_ijh ≥ θ} ≥ k ⇔ s_ih ≥ θ, so ge_ihθ = [θ ≤ s_ih] and
Σ_{θ=2..d} ge_ihθ = max(s_ih − 1, 0); win ⇔ score ≥ max(s_ih, 1) ⇔ score ≥ 1 ∧
score ≥ s_ih — the definition, ties kept. lev: score = 0 gives lev1 = 0 and input
0; score ≥ 1 gives input score − θ + 1. (A population has one threshold, hence
the lev1 offset rather than a threshold per level; the relay fans the score out
with one synapse per level instead of d.) No N³ term: every neuron sees one
(i, h) pair of rows, not the pairwise key comparisons of a rank circuit.

Cost per block (d ≥ 2): neurons 3N²D + 2N²H + 2ND − NH (N²H of them graded
relays); synapses 11N²D − 3N²H = 2N²D (Q,K→qk) + N²D (qk→score) + N²D (qk→lev1)
+ 4N²(D − H) (score→lev, lev1→lev, lev→ge, ge→win) + N²H (score→win) + 3N²D
(win→wv, V→wv, wv→attn); 7 ticks from Q/K to attn (qk 1, score and lev1 2, lev 3,
ge 4, win 5, wv 6, attn 7; delay balancing gives V 6). d = 1 (score ∈ {0, 1}, so
win = [score ≥ 1] for every k): no lev1/lev/ge, win fed by the relay alone —
neurons 2N²D + 2N²H + ND, synapses 6N²D + N²H, 5 ticks.

**Causal** (``config.causal``; sdsa, kwta), query i sees keys j ≤ i by static wiring alone:
SDSA's mask becomes one neuron per (token, channel), mask_ic = [Σ_{j≤i} kv_jc ≥ m]
(``causal_token_sum``: (j, c) → (i, c) ∀ i ≥ j, N(N+1)/2·D synapses), attn_ic = Q_ic ∧ mask_ic
(``identity``); k-WTA wires Q, K → qk and V → wv for j ≤ i only (``pair_first_causal``,
``pair_second_causal``), so qk_ijc, score, lev, win and wv stay silent for j > i: score 0,
which never wins and leaves θ = max(s_ih, 1) as the definition's.

At N = 64, D = 384, H = 8 (d = 48): 4,832,768 neurons (32,768 graded) and
17,203,200 synapses; the former pairwise rank circuit (rank_ijj'h = [score_ij'h >
score_ijh], N³H neurons, 2(N−1)N²D synapses into them) needed 5,332,992 neurons
and 209,747,968 synapses. Limits (``check_attention``): d ≤ 128 (lev1's weight
−2(θ−1) is a Loihi mantissa ≥ −127) and N ≤ 2047 (count range below).

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

from sim.numerics import W_MANT_MIN
from spikeformer.arch.nodes import AND, GE1, PopSpec, ProjSpec, count_neuron

ATTENTIONS = ("sdsa", "kwta", "ssa")


CAUSAL = ("sdsa", "kwta")          # kinds with a causal form (config.causal)


SSA_MAX_NEURONS = 1 << 18          # triple-coincidence neurons per block (tokens²·dim·dim/heads)


CIRCUIT_MAX_COUNT = 2047           # largest input count a memoryless neuron may see (|v| < 2¹⁸)


KWTA_MAX_HEAD_DIM = 1 - W_MANT_MIN  # k-WTA levels θ ≤ d: lev1 → lev weight mantissa −(θ−1) ≥ −127


def check_attention(attention: str, tokens: int, dim: int, heads: int, kwta_k: int, causal: bool = False) -> None:
    """Raise ValueError naming the config field when the attention cannot be built or lowered."""
    if attention not in ATTENTIONS:
        raise ValueError(f"config.attention must be one of {ATTENTIONS}, got {attention!r}")
    if causal and attention not in CAUSAL:
        raise ValueError(f"config.causal is defined for attention {CAUSAL}, got attention={attention!r}")
    d = dim // heads
    if tokens > CIRCUIT_MAX_COUNT:
        raise ValueError(f"config.tokens ({tokens}) exceeds the exact circuits' input range ({CIRCUIT_MAX_COUNT}): "
                         f"an attention neuron counts up to one input per token")
    if attention == "kwta":
        if not isinstance(kwta_k, int) or not 1 <= kwta_k <= tokens:
            raise ValueError(f"config.kwta_k ({kwta_k!r}) must be in [1, tokens={tokens}]: "
                             f"k winners are chosen among the {tokens} keys of each query")
        if d > KWTA_MAX_HEAD_DIM:
            raise ValueError(f"config.heads ({heads}) too small for attention='kwta': a head of dim/heads = {d} "
                             f"channels exceeds {KWTA_MAX_HEAD_DIM}, the largest score the level circuit encodes "
                             f"(its offset −(θ−1) is a Loihi mantissa ≥ {W_MANT_MIN}); raise config.heads")
    if attention == "ssa":
        n = tokens * tokens * dim * d
        if n > SSA_MAX_NEURONS:
            raise ValueError(f"config.attention='ssa' needs tokens²·dim·(dim/heads) = {tokens}²·{dim}·{d} = {n:,} "
                             f"triple-coincidence neurons per block, above the lowering limit SSA_MAX_NEURONS = "
                             f"{SSA_MAX_NEURONS:,}; reduce config.tokens or config.dim, or raise config.heads")
        if tokens * d > CIRCUIT_MAX_COUNT:
            raise ValueError(f"config.attention='ssa': tokens·dim/heads = {tokens * d} exceeds the exact circuit's "
                             f"input range ({CIRCUIT_MAX_COUNT}); raise config.heads")


def attention_block(kind: str, b: str, tokens: int, dim: int, heads: int, count: int, kwta_k: int,
                    causal: bool = False) -> tuple[list[PopSpec], list[ProjSpec]]:
    """Populations and projections from ``{b}.q/k/v`` (N, D) to ``{b}.attn`` (N, D); see module doc
    (``causal``: the causal wiring of its section)."""
    N, D, H = tokens, dim, heads
    c = "_causal" if causal else ""
    out = PopSpec(f"{b}.attn", (N, D), "lif", AND if kind == "sdsa" else count_neuron(count), "attn")
    if kind == "sdsa":
        pops = [PopSpec(f"{b}.kv", (N, D), "lif", AND, "and"),
                PopSpec(f"{b}.mask", (N, D) if causal else (D,), "lif", count_neuron(count), "mask"), out]
        projs = [ProjSpec(f"{b}.k->kv", f"{b}.k", f"{b}.kv", "identity"),
                 ProjSpec(f"{b}.v->kv", f"{b}.v", f"{b}.kv", "identity"),
                 ProjSpec(f"{b}.kv->mask", f"{b}.kv", f"{b}.mask", "causal_token_sum" if causal else "token_sum"),
                 ProjSpec(f"{b}.q->attn", f"{b}.q", f"{b}.attn", "identity"),
                 ProjSpec(f"{b}.mask->attn", f"{b}.mask", f"{b}.attn", "identity" if causal else "broadcast")]
        return pops, projs
    qk = [PopSpec(f"{b}.qk", (N, N, D), "lif", AND, "and")]
    qk_projs = [ProjSpec(f"{b}.q->qk", f"{b}.q", f"{b}.qk", "pair_first" + c),
                ProjSpec(f"{b}.k->qk", f"{b}.k", f"{b}.qk", "pair_second" + c)]
    if kind == "kwta":
        d, L = D // H, D // H - 1
        pops = qk + [PopSpec(f"{b}.score", (N, N, H), "graded", None, "score")]
        projs = qk_projs + [ProjSpec(f"{b}.qk->score", f"{b}.qk", f"{b}.score", "head_sum", weight_exp=-1)]
        if d > 1:                                              # levels θ = 2..d and the k-th largest score
            pops += [PopSpec(f"{b}.lev1", (N, N, H), "lif", GE1, "level"),
                     PopSpec(f"{b}.lev", (N, N, H, L), "lif", GE1, "level"),
                     PopSpec(f"{b}.ge", (N, H, L), "lif", count_neuron(kwta_k), "kth")]
            projs += [ProjSpec(f"{b}.qk->lev1", f"{b}.qk", f"{b}.lev1", "head_sum"),
                      ProjSpec(f"{b}.score->lev", f"{b}.score", f"{b}.lev", "level_fanout"),
                      ProjSpec(f"{b}.lev1->lev", f"{b}.lev1", f"{b}.lev", "level_offset"),
                      ProjSpec(f"{b}.lev->ge", f"{b}.lev", f"{b}.ge", "key_sum"),
                      ProjSpec(f"{b}.ge->win", f"{b}.ge", f"{b}.win", "level_inhibit")]
        pops += [PopSpec(f"{b}.win", (N, N, H), "lif", GE1, "win"),
                 PopSpec(f"{b}.wv", (N, N, D), "lif", AND, "and"), out]
        projs += [ProjSpec(f"{b}.score->win", f"{b}.score", f"{b}.win", "identity"),
                  ProjSpec(f"{b}.win->wv", f"{b}.win", f"{b}.wv", "head_broadcast"),
                  ProjSpec(f"{b}.v->wv", f"{b}.v", f"{b}.wv", "pair_second" + c),
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
