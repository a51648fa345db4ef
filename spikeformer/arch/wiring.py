"""Fixed (untrained) synapse patterns: one table per op, used by the torch model and the converter.

Every op maps a pre population of shape ``pre`` to a post population of shape
``post`` (neuron index = C-order of the shape) and returns the synapse list
``(pre_index, post_index, weight)`` with weights on the Loihi grid (2 = mantissa
1). ``spikeformer.lower.convert`` writes exactly this table as CSR. N tokens, D
channels, H heads, d = D/H, h(c) = c // d, L = d − 1 score levels (k-WTA,
``spikeformer.arch.attention``). Tree ops (``spikeformer.arch.wta``; G = ``groups``, b =
``arity``): the M channels of a token split into G contiguous groups
[⌊jM/G⌋, ⌊(j+1)M/G⌋); channel c of group j has local index i(c) = c − ⌊jM/G⌋ and
sits in block ⌊i/b⌋ (its siblings: the other local indices of that block). A tree
level of m nodes per group is a population (N, G, m), its channel (j, i) local
index i of group j, so the (N, M) ops below apply to it flattened (M = G·m).

==================  ===============  ================  ==========================================
op                  pre              post              synapses (weight)
==================  ===============  ================  ==========================================
identity            any              same              k → k (w)
token_sum           (N, D)           (D,)              (n, c) → c (2)
broadcast           (D,)             (N, D)            c → (n, c) ∀n (2)
pair_first          (N, D)           (N, N, D)         (i, c) → (i, j, c) ∀j (2)
pair_second         (N, D)           (N, N, D)         (j, c) → (i, j, c) ∀i (2)
pair_first_causal   (N, D)           (N, N, D)         (i, c) → (i, j, c) ∀j ≤ i (2)
pair_second_causal  (N, D)           (N, N, D)         (j, c) → (i, j, c) ∀i ≥ j (2)
causal_token_sum    (N, D)           (N, D)            (j, c) → (i, c) ∀i ≥ j (2)
head_sum            (N, N, D)        (N, N, H)         (i, j, c) → (i, j, h(c)) (2)
level_fanout        (N, N, H)        (N, N, H, L)      (i, j, h) → (i, j, h, t) ∀t (2)
level_offset        (N, N, H)        (N, N, H, L)      (i, j, h) → (i, j, h, t) ∀t (−2(t+1)): level θ = t + 2
level_inhibit       (N, H, L)        (N, N, H)         (i, h, t) → (i, j, h) ∀j (−2)
head_broadcast      (N, N, H)        (N, N, D)         (i, j, h) → (i, j, c) ∀c ∈ h (2)
key_sum             (N, N, *X)       (N, *X)           (i, j, x) → (i, x) (2)
triple_score        (N, N, D)        (N, N, D, d)      (i, j, c') → (i, j, c, c' mod d) ∀c ∈ h(c') (2)
triple_value        (N, D)           (N, N, D, d)      (j, c) → (i, j, c, e) ∀i, e (2)
triple_sum          (N, N, D, d)     (N, D)            (i, j, c, e) → (i, c) (2)
earlier_inhibit     (N, M)           (N, M)            (n, a) → (n, b) ∀b > a (−2)
earlier_sibling     (N, M)           (N, M)            (n, c) → (n, c') ∀ later sibling c' of c (w)
child_up            (N, M)           (N, G, m)         (n, c) → (n, j(c), ⌊i(c)/b⌋) (2)
parent_down         (N, G, m)        (N, M)            (n, j, p) → (n, c) ∀c ∈ group j: ⌊i(c)/b⌋ = p (w)
==================  ===============  ================  ==========================================
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FIXED_WEIGHT = 2                                          # mantissa 1


Synapses = tuple[np.ndarray, np.ndarray, np.ndarray]      # (pre, post, weight), int64


def _idx(shape: tuple[int, ...], *axes: np.ndarray) -> np.ndarray:
    return np.ravel_multi_index(np.broadcast_arrays(*axes), shape).ravel()


def _grid(*sizes: int) -> list[np.ndarray]:
    return list(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"))


def _table(pre: np.ndarray, post: np.ndarray, w: int | np.ndarray) -> Synapses:
    pre, post = np.asarray(pre, np.int64).ravel(), np.asarray(post, np.int64).ravel()
    return pre, post, np.broadcast_to(np.asarray(w, np.int64), pre.shape).copy()


def groups_of(width: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(group j(c), local index i(c)) of every channel c < width: groups [⌊jM/G⌋, ⌊(j+1)M/G⌋)."""
    start = np.arange(groups + 1) * width // groups
    j = np.repeat(np.arange(groups), np.diff(start))
    return j, np.arange(width) - start[j]


def _tree_table(op: str, pre: tuple[int, ...], post: tuple[int, ...], groups: int, arity: int,
                weight: int) -> Synapses:
    """earlier_sibling, child_up, parent_down (module table): the flat (N, M) side holds the children."""
    flat = pre if op != "parent_down" else post
    N, M = flat[0], int(np.prod(flat[1:]))
    j, i = groups_of(M, groups)
    if op == "earlier_sibling":
        size = np.bincount(j, minlength=groups)
        a, d = np.repeat(np.arange(M), arity - 1), np.tile(np.arange(1, arity), M)    # c → c + d
        keep = (i[a] % arity + d < arity) & (i[a] + d < size[j[a]])
        n, a, d = np.repeat(np.arange(N), keep.sum()), np.tile(a[keep], N), np.tile(d[keep], N)
        return _table(n * M + a, n * M + a + d, weight)
    tree = post if op == "child_up" else pre                   # (N, G, m): the parents
    if len(tree) != 3 or tree[1] != groups or tree[2] * arity < i.max(initial=0) + 1:
        raise ValueError(f"{op}: parent level {tree} cannot hold the {groups} groups of {M} channels")
    n, c = _grid(N, M)
    parent, child = _idx(tree, n, j[c], i[c] // arity), _idx((N, M), n, c)
    return _table(child, parent, FIXED_WEIGHT) if op == "child_up" else _table(parent, child, weight)


@lru_cache(maxsize=64)
def synapses(op: str, pre: tuple[int, ...], post: tuple[int, ...], weight: int = FIXED_WEIGHT,
             groups: int = 1, arity: int = 2) -> Synapses:
    """The synapse table of ``op`` (see module table); ``weight`` is used by ``identity``, earlier_sibling and
    parent_down, ``groups`` and ``arity`` by the tree ops."""
    w = FIXED_WEIGHT
    if op in ("earlier_sibling", "child_up", "parent_down"):
        return _tree_table(op, pre, post, groups, arity, weight)
    if op == "identity":
        n = int(np.prod(pre))
        return _table(np.arange(n), np.arange(n), weight)
    if op == "token_sum":
        n, c = _grid(*pre)
        return _table(_idx(pre, n, c), c, w)
    if op == "broadcast":
        c, n = _grid(pre[0], post[0])
        return _table(c, _idx(post, n, c), w)
    if op in ("pair_first", "pair_second", "pair_first_causal", "pair_second_causal"):
        N, D = pre
        i, j, c = _grid(N, N, D)
        keep = (j <= i).ravel() if op.endswith("_causal") else np.ones(N * N * D, bool)
        src = _idx(pre, i, c) if op.startswith("pair_first") else _idx(pre, j, c)
        return _table(src[keep], _idx(post, i, j, c)[keep], w)
    if op == "causal_token_sum":
        N, D = pre
        i, j, c = _grid(N, N, D)
        keep = (j <= i).ravel()
        return _table(_idx(pre, j, c)[keep], _idx(post, i, c)[keep], w)
    if op == "head_sum":
        N, _, D = pre
        d = D // post[2]
        i, j, c = _grid(N, N, D)
        return _table(_idx(pre, i, j, c), _idx(post, i, j, c // d), w)
    if op in ("level_fanout", "level_offset"):
        i, j, h, t = _grid(*post)
        weights = w if op == "level_fanout" else (-w * (t + 1)).ravel()      # level θ = t + 2: offset −(θ − 1)
        return _table(_idx(pre, i, j, h), _idx(post, i, j, h, t), weights)
    if op == "level_inhibit":
        N, H, L = pre
        i, j, h, t = _grid(N, N, H, L)
        return _table(_idx(pre, i, h, t), _idx(post, i, j, h), -w)
    if op == "head_broadcast":
        N, _, D = post
        d = D // pre[2]
        i, j, c = _grid(N, N, D)
        return _table(_idx(pre, i, j, c // d), _idx(post, i, j, c), w)
    if op == "key_sum":
        N, _, *rest = pre
        X = int(np.prod(rest))
        i, j, x = _grid(N, N, X)
        return _table(_idx((N, N, X), i, j, x), _idx((N, X), i, x), w)
    if op == "triple_score":
        N, _, D, d = post
        i, j, c, e = _grid(N, N, D, d)
        return _table(_idx(pre, i, j, (c // d) * d + e), _idx(post, i, j, c, e), w)
    if op == "triple_value":
        N, _, D, d = post
        i, j, c, e = _grid(N, N, D, d)
        return _table(_idx(pre, j, c), _idx(post, i, j, c, e), w)
    if op == "triple_sum":
        i, j, c, e = _grid(*pre)
        return _table(_idx(pre, i, j, c, e), _idx(post, i, c), w)
    if op == "earlier_inhibit":
        N, M = pre
        n, a, b = _grid(N, M, M)
        keep = (b > a).ravel()
        return _table(_idx(pre, n, a)[keep], _idx(post, n, b)[keep], -w)
    raise ValueError(f"unknown fixed projection op {op!r}")


def csr(table: Synapses, pre_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, weights) with rows = pre, sorted by (pre, post)."""
    pre, post, w = table
    order = np.lexsort((post, pre))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=pre_size))]).astype(np.int64)
    return indptr, post[order].astype(np.int32), w[order]
