"""NIR linear nodes → sparse matrices over the C-order index, and sub-graph inlining.

A linear node maps its input x (C-order flattened) to ``M·x + b``: ``Linear``/``Affine`` (M = weight),
``Scale`` (M = diag(scale)), ``Flatten`` (identity), ``Conv2d``/``SumPool2d``/``AvgPool2d``
(M = the sliding-window matrix, average pooling divided by kh·kw).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sps

from spikeformer.interchange.base import ImportError_


def node_error(name: str, node, problem: str) -> ImportError_:
    return ImportError_(f"NIR node '{name}' ({type(node).__name__}): {problem}")


def _pair(x, k: int = 2) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(x)).astype(int).ravel()
    return tuple(int(v) for v in (np.repeat(a, k) if a.size == 1 else a))


def _window_matrix(shape, kernel, stride, padding, dilation=(1, 1), weight=None, groups=1):
    """Sparse (out, in) matrix of a 2-D sliding window over C-order (C, H, W): conv (weight
    (Co, Ci/groups, kh, kw)) or per-channel pooling (weight None: ones)."""
    c_in, h, w = shape
    kh, kw = kernel
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"window {kernel} does not fit the input {shape}")
    c_out = c_in if weight is None else weight.shape[0]
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    rows, cols, vals = [], [], []
    for co in range(c_out):
        if weight is None:
            in_ch = [(co, None)]
        else:
            per = c_in // groups
            g = co // (c_out // groups)
            in_ch = [(g * per + ci, ci) for ci in range(per)]
        for ci, wi in in_ch:
            for dy in range(kh):
                for dx in range(kw):
                    val = 1.0 if weight is None else float(weight[co, wi, dy, dx])
                    if val == 0.0:
                        continue
                    iy = oy * stride[0] - padding[0] + dy * dilation[0]
                    ix = ox * stride[1] - padding[1] + dx * dilation[1]
                    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
                    rows.append((co * ho * wo + oy * wo + ox)[ok])
                    cols.append((ci * h * w + iy * w + ix)[ok])
                    vals.append(np.full(int(ok.sum()), val))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    m = sps.csr_matrix((cat(vals, np.float64), (cat(rows, np.int64), cat(cols, np.int64))),
                       shape=(c_out * ho * wo, c_in * h * w))
    return m, (c_out, ho, wo)


def _conv(name, n, shape):
    w = np.asarray(n.weight, np.float64)
    if w.ndim != 4 or len(shape) != 3:
        raise node_error(name, n, f"needs a (C, H, W) input and a 4-D weight, got input {shape} and weight {w.shape}")
    pad = n.padding
    k = w.shape[2:]
    dil = _pair(n.dilation)
    if isinstance(pad, str):
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same":
            pad = tuple(dil[i] * (k[i] - 1) // 2 for i in range(2))
        else:
            raise node_error(name, n, f"padding {pad!r} is not 'same', 'valid' or integers")
    m, out = _window_matrix(shape, k, _pair(n.stride), _pair(pad), dil, w, int(n.groups))
    bias = None
    if n.bias is not None and np.any(np.asarray(n.bias) != 0):
        bias = np.repeat(np.asarray(n.bias, np.float64), out[1] * out[2])
    return m, bias, out


def _pool(name, n, shape, average: bool):
    if len(shape) != 3:
        raise node_error(name, n, f"needs a (C, H, W) input, got {shape}")
    k = _pair(n.kernel_size)
    m, out = _window_matrix(shape, k, _pair(n.stride), _pair(n.padding))
    return (m / (k[0] * k[1]) if average else m), None, out


def _flatten_shape(n, shape):
    out = n.output_type.get("output") if isinstance(n.output_type, dict) else None
    if out is not None and np.size(out) and int(np.prod(out)) == int(np.prod(shape)):
        return tuple(int(x) for x in np.asarray(out).ravel())
    return (int(np.prod(shape)),)


def linear_map(name: str, n, shape: tuple[int, ...]):
    """(matrix or None for identity, bias or None, output shape) of a linear node."""
    import nir
    size = int(np.prod(shape))
    if isinstance(n, (nir.Linear, nir.Affine)):
        w = np.asarray(n.weight, np.float64)
        if w.ndim != 2 or w.shape[1] != size:
            raise node_error(name, n, f"weight {w.shape} does not take an input of {size} values")
        bias = np.asarray(n.bias, np.float64) if isinstance(n, nir.Affine) and n.bias is not None else None
        return sps.csr_matrix(w), (bias if bias is not None and np.any(bias) else None), (w.shape[0],)
    if isinstance(n, nir.Scale):
        s = np.broadcast_to(np.asarray(n.scale, np.float64), shape).ravel()
        return sps.diags(s).tocsr(), None, shape
    if isinstance(n, nir.Flatten):
        return None, None, _flatten_shape(n, shape)
    if isinstance(n, nir.Conv2d):
        return _conv(name, n, shape)
    if isinstance(n, nir.SumPool2d):
        return _pool(name, n, shape, average=False)
    if isinstance(n, nir.AvgPool2d):
        return _pool(name, n, shape, average=True)
    return None, None, shape                          # Input/Output inside a subgraph: identity


def flatten_graph(g, prefix: str = "") -> tuple[dict, list, set]:
    """Nodes and edges with sub-graphs inlined (their Input/Output nodes become identities)."""
    import nir
    nodes, edges, inner_io = {}, [], set()
    entry, exit_ = {}, {}
    for k, n in g.nodes.items():
        name = f"{prefix}{k}"
        if isinstance(n, nir.NIRGraph):
            sub_nodes, sub_edges, sub_io = flatten_graph(n, f"{name}.")
            nodes.update(sub_nodes)
            edges += sub_edges
            inner_io |= sub_io
            ins = [f"{name}.{j}" for j, m in n.nodes.items() if isinstance(m, nir.Input)]
            outs = [f"{name}.{j}" for j, m in n.nodes.items() if isinstance(m, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise node_error(name, n, "a sub-graph needs exactly one Input and one Output node")
            inner_io |= {ins[0], outs[0]}
            entry[name], exit_[name] = ins[0], outs[0]
        else:
            nodes[name] = n
    for a, b in g.edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        edges.append((exit_.get(a, a), entry.get(b, b)))
    return nodes, edges, inner_io
