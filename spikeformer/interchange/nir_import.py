"""NIR import: a ``nir.NIRGraph`` file → a float AER graph with snnTorch's NIR semantics.

Nodes (anything else is refused, one line naming the node and its type):

* ``Input`` → an ``Input`` population (its shape); ``Output`` marks the output population.
* neurons, one population each (parameters shared by the population; per-neuron values
  must be equal), discretised with one tick = ``dt`` seconds (snnTorch's importer:
  10⁻⁴; a graph's ``metadata["dt"]`` or ``--dt`` overrides), exactly as
  ``snntorch.import_from_nir`` runs them (float32, reset to zero, ``reset_delay=False``):

  - ``LIF(τ, r, v_leak=0, v_threshold, v_reset=0)`` → ``LIF(dv = dt/τ, vth = v_threshold / (r·dt/τ))``
    (snnTorch's ``Leaky(β = 1 − dt/τ)`` with the threshold scaled instead of the input);
  - ``CubaLIF(τ_syn, τ_mem, r = τ_mem/dt, v_leak=0, v_threshold, w_in)`` →
    ``CubaLIFFloat(du = dt/τ_syn, dv = dt/τ_mem, vth = v_threshold / (w_in·dt/τ_syn))`` (``Synaptic``);
  - ``IF(r, v_threshold, v_reset=0)`` → ``IF(vth = v_threshold / r)`` — NIR's definition
    (no leak, reset to 0). snnTorch's importer runs an IF as ``Leaky(β = 0.9)`` with reset
    by subtraction; we do not copy that;
  - ``LI(τ, r, v_leak=0)`` → ``LI(dv = dt/τ)``, its input scaled by r·dt/τ (no spikes).
* linear maps between neurons compose into one CSR projection per (source, target)
  population pair: ``Linear``, ``Affine`` (its bias, carried through later maps, reaches
  the target from a ``Bias`` population: a spike every tick with the bias as weight),
  ``Scale``, ``Flatten``, and — lowered to sparse matrices over the C-order index —
  ``Conv2d`` (stride, padding, dilation, groups), ``SumPool2d``, ``AvgPool2d``. Inputs
  into one node add.
* recurrence: a population may feed back into itself through linear maps (snnTorch's
  RLeaky/RSynaptic: ``v ← β·v + I[t] + W_rec·s[t−1] + b_rec``): the projection carries the
  previous tick, the bias is constant. Longer cycles are refused. (snnTorch 1.0's
  ``import_from_nir`` wires its RNN sub-graph as ``W_rec·(I[t] + s[t−1]) + b_rec`` — the
  recurrent weights applied to the feed-forward input too; we follow the graph as written,
  which is what the exported ``RLeaky`` computes.)
* delays: depth = longest feed-forward path from the inputs; each projection's delay is
  the depth difference (``sim.ir``), so every population lags the zero-delay model by its depth.
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sps

from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.neurons.cuba import CubaLIFFloat
from sim.neurons.if_ import IF
from sim.neurons.input import Bias, Input
from sim.neurons.li import LI
from sim.neurons.lif import LIF
from spikeformer.interchange.base import ImportError_, register

F32 = np.float32


SNNTORCH_DT = 1e-4


BIAS = "bias"


def _err(name: str, node, problem: str) -> ImportError_:
    return ImportError_(f"NIR node '{name}' ({type(node).__name__}): {problem}")


def _one(name: str, node, field: str, x) -> F32:
    """A parameter shared by the population (float32), else an error naming it."""
    a = np.asarray(x, F32).ravel()
    if a.size == 0 or not np.all(a == a[0]):
        raise _err(name, node, f"per-neuron values of '{field}' differ; a population shares its parameters")
    return a[0]


def _zero(name: str, node, field: str, x) -> None:
    if x is not None and np.any(np.asarray(x) != 0):
        raise _err(name, node, f"'{field}' must be 0 (snnTorch's importer and Loihi reset to 0 without a leak "
                               f"potential)")


def _lif(name, n, dt):
    _zero(name, n, "v_leak", n.v_leak)
    _zero(name, n, "v_reset", n.v_reset)
    tau, r, vth = (np.asarray(x, F32) for x in (n.tau, n.r, n.v_threshold))
    w_scale = r * F32(dt) / tau                  # snnTorch: vthr / w_scale unless w_scale ≈ 1
    if not np.allclose(w_scale, 1.0):
        vth = vth / _one(name, n, "r·dt/tau", w_scale)
    return LIF(float(_one(name, n, "tau", F32(dt) / tau)), float(_one(name, n, "v_threshold", vth))), 1.0


def _cuba(name, n, dt):
    _zero(name, n, "v_leak", n.v_leak)
    _zero(name, n, "v_reset", n.v_reset)
    tau_syn, tau_mem, r, w_in, vth = (np.asarray(x, F32) for x in (n.tau_syn, n.tau_mem, n.r, n.w_in, n.v_threshold))
    if not np.allclose(r, tau_mem / F32(dt)):
        raise _err(name, n, "r must equal tau_mem / dt (snnTorch's importer refuses other values)")
    w_scale = w_in * (F32(dt) / tau_syn)
    if not np.allclose(w_scale, 1.0):
        vth = vth / w_scale
    return CubaLIFFloat(float(_one(name, n, "tau_syn", F32(dt) / tau_syn)),
                        float(_one(name, n, "tau_mem", F32(dt) / tau_mem)), float(_one(name, n, "v_threshold", vth))), 1.0


def _if(name, n, dt):
    _zero(name, n, "v_reset", n.v_reset)
    vth = np.asarray(n.v_threshold, F32) / np.asarray(n.r, F32)
    return IF(float(_one(name, n, "v_threshold / r", vth))), 1.0


def _li(name, n, dt):
    _zero(name, n, "v_leak", n.v_leak)
    tau, r = np.asarray(n.tau, F32), np.asarray(n.r, F32)
    return LI(float(_one(name, n, "tau", F32(dt) / tau))), float(_one(name, n, "r·dt/tau", r * F32(dt) / tau))


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
        raise _err(name, n, f"needs a (C, H, W) input and a 4-D weight, got input {shape} and weight {w.shape}")
    pad = n.padding
    k = w.shape[2:]
    dil = _pair(n.dilation)
    if isinstance(pad, str):
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same":
            pad = tuple(dil[i] * (k[i] - 1) // 2 for i in range(2))
        else:
            raise _err(name, n, f"padding {pad!r} is not 'same', 'valid' or integers")
    m, out = _window_matrix(shape, k, _pair(n.stride), _pair(pad), dil, w, int(n.groups))
    bias = None
    if n.bias is not None and np.any(np.asarray(n.bias) != 0):
        bias = np.repeat(np.asarray(n.bias, np.float64), out[1] * out[2])
    return m, bias, out


def _pool(name, n, shape, average: bool):
    if len(shape) != 3:
        raise _err(name, n, f"needs a (C, H, W) input, got {shape}")
    k = _pair(n.kernel_size)
    m, out = _window_matrix(shape, k, _pair(n.stride), _pair(n.padding))
    return (m / (k[0] * k[1]) if average else m), None, out


def _flatten_shape(n, shape):
    out = n.output_type.get("output") if isinstance(n.output_type, dict) else None
    if out is not None and np.size(out) and int(np.prod(out)) == int(np.prod(shape)):
        return tuple(int(x) for x in np.asarray(out).ravel())
    return (int(np.prod(shape)),)


def _linear_map(name: str, n, shape: tuple[int, ...]):
    """(matrix or None for identity, bias or None, output shape) of a linear node."""
    import nir
    size = int(np.prod(shape))
    if isinstance(n, (nir.Linear, nir.Affine)):
        w = np.asarray(n.weight, np.float64)
        if w.ndim != 2 or w.shape[1] != size:
            raise _err(name, n, f"weight {w.shape} does not take an input of {size} values")
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


def _flatten_graph(g, prefix: str = "") -> tuple[dict, list, set]:
    """Nodes and edges with sub-graphs inlined (their Input/Output nodes become identities)."""
    import nir
    nodes, edges, inner_io = {}, [], set()
    entry, exit_ = {}, {}
    for k, n in g.nodes.items():
        name = f"{prefix}{k}"
        if isinstance(n, nir.NIRGraph):
            sub_nodes, sub_edges, sub_io = _flatten_graph(n, f"{name}.")
            nodes.update(sub_nodes)
            edges += sub_edges
            inner_io |= sub_io
            ins = [f"{name}.{j}" for j, m in n.nodes.items() if isinstance(m, nir.Input)]
            outs = [f"{name}.{j}" for j, m in n.nodes.items() if isinstance(m, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise _err(name, n, "a sub-graph needs exactly one Input and one Output node")
            inner_io |= {ins[0], outs[0]}
            entry[name], exit_[name] = ins[0], outs[0]
        else:
            nodes[name] = n
    for a, b in g.edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        edges.append((exit_.get(a, a), entry.get(b, b)))
    return nodes, edges, inner_io


def _neuron_builders():
    import nir
    return {nir.LIF: _lif, nir.CubaLIF: _cuba, nir.IF: _if, nir.LI: _li}


def _linear_types():
    import nir
    return (nir.Linear, nir.Affine, nir.Scale, nir.Flatten, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)


def _param_shape(n) -> tuple[int, ...] | None:
    for f in ("v_threshold", "tau", "tau_mem", "r"):
        x = getattr(n, f, None)
        if x is not None and np.size(x) > 1:
            return tuple(np.shape(x))
    return None


def lower(g, timesteps: int, dt: float | None = None, source: str = "NIR graph") -> AerGraph:
    """The float AER graph of NIR graph ``g`` (see module docstring)."""
    import nir
    dt = float(dt if dt is not None else (g.metadata or {}).get("dt", SNNTORCH_DT))
    nodes, edges, inner_io = _flatten_graph(g)
    neurons, linear = _neuron_builders(), _linear_types()
    kind: dict[str, str] = {}
    for name, n in nodes.items():
        if type(n) in neurons:
            kind[name] = "neuron"
        elif isinstance(n, nir.Input) and name not in inner_io:
            kind[name] = "input"
        elif isinstance(n, nir.Output) and name not in inner_io:
            kind[name] = "output"
        elif isinstance(n, linear) or name in inner_io:
            kind[name] = "map"
        else:
            raise _err(name, n, "is not supported; NIR import reads Input, Output, Affine, Linear, Scale, Flatten, "
                                "Conv2d, SumPool2d, AvgPool2d, LIF, CubaLIF, IF and LI nodes")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ImportError_(f"{source}: edge ({a!r}, {b!r}) names an unknown node")
        preds[b].append(a)
    if not any(k == "input" for k in kind.values()):
        raise ImportError_(f"{source}: no Input node")

    shape: dict[str, tuple[int, ...]] = {}
    busy: set[str] = set()

    def out_shape(name: str) -> tuple[int, ...]:
        if name in shape:
            return shape[name]
        n = nodes[name]
        if kind[name] == "input":
            shape[name] = tuple(int(x) for x in np.asarray(n.input_type["input"]).ravel())
            return shape[name]
        if kind[name] == "neuron" and _param_shape(n) is not None:
            shape[name] = _param_shape(n)
            return shape[name]
        if name in busy:
            raise _err(name, n, "its shape depends on itself (a cycle without a neuron)")
        busy.add(name)
        ins = {out_shape(p) for p in preds[name]}
        busy.discard(name)
        if not ins:
            raise _err(name, n, "has no input")
        if len({int(np.prod(s)) for s in ins}) > 1:
            raise _err(name, n, f"its inputs have different sizes {sorted(ins)}")
        s = max(ins, key=len)
        shape[name] = s if kind[name] != "map" else _linear_map(name, n, s)[2]
        return shape[name]

    # expression of a node's output: {population: sparse (n_node, n_pop)}, bias (n_node,) or None, and
    # whether the bias crossed a recurrent edge is decided per target below
    exprs: dict[str, tuple[dict, np.ndarray | None]] = {}

    def expr(name: str):
        if kind[name] in ("input", "neuron"):
            size = int(np.prod(out_shape(name)))
            return {name: sps.identity(size, format="csr")}, None
        if name in exprs:
            return exprs[name]
        if name in busy:
            raise _err(name, nodes[name], "is on a cycle without a neuron")
        busy.add(name)
        terms, bias = _sum_inputs(name)
        busy.discard(name)
        m, b, _ = _linear_map(name, nodes[name], _in_shape(name))
        if m is not None:
            terms = {k: (m @ v).tocsr() for k, v in terms.items()}
            bias = None if bias is None else m @ bias
        if b is not None:
            bias = b if bias is None else bias + b
        exprs[name] = (terms, bias)
        return exprs[name]

    def _in_shape(name: str) -> tuple[int, ...]:
        ins = [out_shape(p) for p in preds[name]]
        return max(ins, key=len)

    def _sum_inputs(name: str):
        terms: dict[str, sps.csr_matrix] = {}
        bias = None
        for p in preds[name]:
            t, b = expr(p)
            for k, v in t.items():
                terms[k] = v if k not in terms else terms[k] + v
            if b is not None:
                bias = b if bias is None else bias + b
        return terms, bias

    order = list(nodes)                                       # file order: populations keep it
    pops_in = [k for k in order if kind[k] == "input"]
    pops_n = [k for k in order if kind[k] == "neuron"]
    models, incoming = {}, {}
    for name in pops_n:
        model, scale = neurons[type(nodes[name])](name, nodes[name], dt)
        models[name] = model
        terms, bias = _sum_inputs(name)
        size = int(np.prod(out_shape(name)))
        for k, v in terms.items():
            if v.shape != (size, int(np.prod(out_shape(k)))):
                raise _err(name, nodes[name], f"receives {v.shape[0]} values from '{k}', has {size} neurons")
        if scale != 1.0:
            terms = {k: v * scale for k, v in terms.items()}
            bias = None if bias is None else bias * scale
        incoming[name] = (terms, bias)

    # depths: longest feed-forward path; a population feeding itself is recurrence (previous tick)
    dag = nx.DiGraph()
    dag.add_nodes_from(pops_in + pops_n)
    for post, (terms, _) in incoming.items():
        dag.add_edges_from((pre, post) for pre in terms if pre != post)
    if not nx.is_directed_acyclic_graph(dag):
        cycle = [a for a, _ in nx.find_cycle(dag)]
        raise ImportError_(f"{source}: recurrence through several populations ({' → '.join(cycle + cycle[:1])}) is "
                           f"not supported; a population may feed back only into itself")
    depth: dict[str, int] = {}
    for k in nx.topological_sort(dag):
        preds_k = list(dag.predecessors(k))
        depth[k] = 0 if k in pops_in else max([depth[p] + 1 for p in preds_k] + [1])

    pops = [Population(k, int(np.prod(out_shape(k))), Input(), out_shape(k), 0) for k in pops_in]
    if any(b is not None for _, b in incoming.values()):
        pops.append(Population(BIAS, 1, Bias(), (1,), 0, role="bias"))
    pops += [Population(k, int(np.prod(out_shape(k))), models[k], out_shape(k), depth[k]) for k in pops_n]
    projs = []
    for post in pops_n:
        terms, bias = incoming[post]
        for pre, m in terms.items():
            m = sps.csr_matrix(m)
            m.eliminate_zeros()
            if m.nnz:
                delay = depth[post] - depth[pre] + (pre == post)
                projs.append(Projection.from_dense(f"{pre}->{post}", pre, post, m.toarray().astype(F32), delay=delay))
        if bias is not None and np.any(bias):
            projs.append(Projection.from_dense(f"{BIAS}->{post}", BIAS, post, bias.astype(F32)[:, None],
                                               delay=depth[post]))
    readout = None
    out_nodes = [k for k in order if kind[k] == "output"]
    if out_nodes:
        terms, _ = _sum_inputs(out_nodes[0])
        if len(terms) == 1:
            (pre, m), = terms.items()
            if pre in models:
                readout = Readout(pre, m.toarray().astype(F32), depth[pre], depth[pre] + timesteps)
    graph = AerGraph("float", tuple(pops), tuple(projs), readout, timesteps,
                     {"imported": {"format": "nir", "dt": dt, "source": source}})
    graph.check_delays()
    return graph


@register("nir", "NIR graph (.nir / .h5): Input, Output, Affine, Linear, Scale, Flatten, Conv2d, SumPool2d, "
                 "AvgPool2d, LIF, CubaLIF, IF, LI; snnTorch's discretisation")
def import_nir(path: Path, timesteps: int, dt: float | None = None) -> AerGraph:
    """Read a NIR file and lower it (see module docstring)."""
    import nir
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: does not exist")
    try:
        g = nir.read(path)
    except Exception as e:                            # h5py/nir raise many kinds
        raise ImportError_(f"{path}: is not a readable NIR file ({type(e).__name__}: {e})") from None
    try:
        return lower(g, timesteps, dt, str(path))
    except ImportError_ as e:
        raise ImportError_(f"{path}: {e}") from None
