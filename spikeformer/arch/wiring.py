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
index i of group j, so the (N, M) ops below apply to it flattened (M = G·m). Rank ops
(``spikeformer.arch.wta_strength``; R ranks, X entries per rank, i = ``index``): the post (or pre) side
(N, R·X) is R contiguous blocks of X per token, block r = rank r.

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
rank_step           (N, X)           (N, R·X)          (n, x) → (n, i, x) (w), (n, i+1, x) (−w) if i+1 < R
rank_cumcount       (N, R·X)         (N, R)            (n, r, x) → (n, r') ∀r' ≥ r (w)
rank_spread         (N, R)           (N, R·Y)          (n, r) → (n, r + i, y) ∀y, r + i < R (w)
rank_offset         (N, R)           (N, R·Y)          (n, r) → (n, r, y) ∀y ≥ 1 (−w·y)
rank_pick           (N, R, X)        (N, R·Y)          (n, r, i) → (n, r, y) ∀y (w)
rank_sum            (N, R·X)         (N, R)            (n, r, x) → (n, r) (w)
rank_collapse       (N, R·X)         (N, X)            (n, r, x) → (n, x) (w)
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


RANK_OPS = ("rank_step", "rank_cumcount", "rank_spread", "rank_offset", "rank_pick", "rank_sum", "rank_collapse")


def _rank_table(op: str, pre: tuple[int, ...], post: tuple[int, ...], weight: int, index: int) -> Synapses:
    """The rank ops of the module table; the (N, R·X) sides are read flattened."""
    N, n_pre, n_post = pre[0], int(np.prod(pre[1:])), int(np.prod(post[1:]))
    if op == "rank_step":
        R = n_post // n_pre
        if not 0 <= index < R or R * n_pre != n_post:
            raise ValueError(f"rank_step: rank {index} of {post} does not hold the entries of {pre}")
        n, x, up = _grid(N, n_pre, 1 + (index + 1 < R))
        return _table(n * n_pre + x, n * n_post + (index + up) * n_pre + x, (weight * (1 - 2 * up)).ravel())
    if op in ("rank_spread", "rank_offset", "rank_pick"):
        R = n_pre if op != "rank_pick" else pre[1]               # rank_pick: pre shaped (N, R, X)
        Y = n_post // R
        n, r, y = _grid(N, R, Y)
        keep = ((r + (index if op == "rank_spread" else 0) < R) & (y >= (op == "rank_offset"))).ravel()
        src = (n * n_pre + (r * (n_pre // R) + index if op == "rank_pick" else r)).ravel()
        dst = (n * n_post + (r + (index if op == "rank_spread" else 0)) * Y + y).ravel()
        w = (-weight * y).ravel()[keep] if op == "rank_offset" else weight
        return _table(src[keep], dst[keep], w)
    R = n_post if op in ("rank_sum", "rank_cumcount") else n_pre // n_post
    X = n_pre // R
    n, r, x = _grid(N, R, X)
    if op == "rank_cumcount":
        n, r, x, r2 = _grid(N, R, X, R)
        keep = (r2 >= r).ravel()
        return _table((n * n_pre + r * X + x).ravel()[keep], (n * n_post + r2).ravel()[keep], weight)
    return _table(n * n_pre + r * X + x, n * n_post + (r if op == "rank_sum" else x), weight)


@lru_cache(maxsize=64)
def synapses(op: str, pre: tuple[int, ...], post: tuple[int, ...], weight: int = FIXED_WEIGHT,
             groups: int = 1, arity: int = 2, index: int = 0) -> Synapses:
    """The synapse table of ``op`` (see module table); ``weight`` is used by ``identity``, earlier_sibling,
    parent_down and the rank ops, ``groups`` and ``arity`` by the tree ops, ``index`` by the rank ops."""
    w = FIXED_WEIGHT
    if op in ("earlier_sibling", "child_up", "parent_down"):
        return _tree_table(op, pre, post, groups, arity, weight)
    if op in RANK_OPS:
        return _rank_table(op, pre, post, weight, index)
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
