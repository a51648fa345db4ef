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

from sim.errors import IRError
from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.neurons.cuba import CubaLIFFloat
from sim.neurons.if_ import IF
from sim.neurons.input import Bias, Input
from sim.neurons.li import LI
from sim.neurons.lif import LIF
from spikeformer.interchange.base import ImportError_, register
from spikeformer.interchange.nir_layers import flatten_graph, linear_map, node_error

F32 = np.float32


SNNTORCH_DT = 1e-4


BIAS = "bias"


def _one(name: str, node, field: str, x) -> F32:
    """A parameter shared by the population (float32), else an error naming it."""
    a = np.asarray(x, F32).ravel()
    if np.any(np.isnan(a)):
        raise node_error(name, node, f"'{field}' is nan (from the node's parameters): undefined dynamics")
    if a.size == 0 or not np.all(a == a[0]):
        raise node_error(name, node, f"per-neuron values of '{field}' differ; a population shares its parameters")
    return a[0]


# fields that make a neuron unable to fire or undefined: NaN anywhere, ±inf or 0 where marked
_NEURON_FIELDS = {"tau": "", "tau_syn": "", "tau_mem": "", "r": "nonzero", "w_in": "nonzero",
                  "v_threshold": "finite", "v_leak": "finite", "v_reset": "finite"}


def _check_meaning(name: str, node) -> None:
    """A node error naming the field and value when a neuron parameter is NaN, infinite where that makes the
    neuron unable to fire (v_threshold, r, w_in) or zero where it cuts the neuron off its input (r, w_in)."""
    for field, rule in _NEURON_FIELDS.items():
        x = getattr(node, field, None)
        if x is None:
            continue
        try:
            a = np.asarray(x, np.float64).ravel()
        except (TypeError, ValueError):
            raise node_error(name, node, f"'{field}' is not numeric ({np.asarray(x).dtype})") from None
        bad = (np.isnan(a) | (np.isinf(a) if "finite" in rule else False) | ((a == 0) if "nonzero" in rule else False))
        if np.any(bad):
            why = {"r": "the neuron would never receive input", "w_in": "the neuron would never receive input",
                   "v_threshold": "the neuron could never fire"}.get(field, "undefined dynamics")
            raise node_error(name, node, f"'{field}' is {a[np.argmax(bad)]:g}: {why}")


def _zero(name: str, node, field: str, x) -> None:
    if x is not None and np.any(np.asarray(x) != 0):
        raise node_error(name, node, f"'{field}' must be 0 (snnTorch's importer and Loihi reset to 0 without a leak "
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
        raise node_error(name, n, "r must equal tau_mem / dt (snnTorch's importer refuses other values)")
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


def _node_kinds(nodes: dict, inner_io: set) -> dict[str, str]:
    """Each node's role: "input", "output", "neuron" or "map" (a linear node, or a sub-graph's Input/Output)."""
    import nir
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
            raise node_error(name, n, "is not supported; NIR import reads Input, Output, Affine, Linear, Scale, "
                                      "Flatten, Conv2d, SumPool2d, AvgPool2d, LIF, CubaLIF, IF and LI nodes")
    return kind


def _predecessors(nodes: dict, edges: list, kind: dict[str, str], source: str) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ImportError_(f"{source}: edge ({a!r}, {b!r}) names an unknown node")
        preds[b].append(a)
    if not any(k == "input" for k in kind.values()):
        raise ImportError_(f"{source}: no Input node")
    return preds


class _Flow:
    """Shapes and linear expressions of node outputs: a node's output = Σ_pop M_pop·s_pop + bias,
    held as ({population: sparse (n_node, n_pop)}, bias (n_node,) or None)."""

    def __init__(self, nodes: dict, kind: dict[str, str], preds: dict[str, list[str]]):
        self.nodes, self.kind, self.preds = nodes, kind, preds
        self.shape: dict[str, tuple[int, ...]] = {}
        self.exprs: dict[str, tuple[dict, np.ndarray | None]] = {}
        self.busy: set[str] = set()

    def out_shape(self, name: str) -> tuple[int, ...]:
        if name in self.shape:
            return self.shape[name]
        n, kind = self.nodes[name], self.kind[name]
        if kind == "input":
            self.shape[name] = tuple(int(x) for x in np.asarray(n.input_type["input"]).ravel())
            return self.shape[name]
        if kind == "neuron" and _param_shape(n) is not None:
            self.shape[name] = _param_shape(n)
            return self.shape[name]
        if name in self.busy:
            raise node_error(name, n, "its shape depends on itself (a cycle without a neuron)")
        self.busy.add(name)
        ins = {self.out_shape(p) for p in self.preds[name]}
        self.busy.discard(name)
        if not ins:
            raise node_error(name, n, "has no input")
        if len({int(np.prod(s)) for s in ins}) > 1:
            raise node_error(name, n, f"its inputs have different sizes {sorted(ins)}")
        s = max(ins, key=len)
        self.shape[name] = s if kind != "map" else linear_map(name, n, s)[2]
        return self.shape[name]

    def size(self, name: str) -> int:
        return int(np.prod(self.out_shape(name)))

    def expr(self, name: str):
        if self.kind[name] in ("input", "neuron"):
            return {name: sps.identity(self.size(name), format="csr")}, None
        if name in self.exprs:
            return self.exprs[name]
        if name in self.busy:
            raise node_error(name, self.nodes[name], "is on a cycle without a neuron")
        self.busy.add(name)
        terms, bias = self.sum_inputs(name)
        self.busy.discard(name)
        m, b, _ = linear_map(name, self.nodes[name], max((self.out_shape(p) for p in self.preds[name]), key=len))
        if m is not None:
            terms = {k: (m @ v).tocsr() for k, v in terms.items()}
            bias = None if bias is None else m @ bias
        if b is not None:
            bias = b if bias is None else bias + b
        self.exprs[name] = (terms, bias)
        return self.exprs[name]

    def sum_inputs(self, name: str):
        terms: dict[str, sps.csr_matrix] = {}
        bias = None
        for p in self.preds[name]:
            t, b = self.expr(p)
            for k, v in t.items():
                terms[k] = v if k not in terms else terms[k] + v
            if b is not None:
                bias = b if bias is None else bias + b
        return terms, bias


def _neuron_inputs(flow: _Flow, pops_n: list[str], dt: float) -> tuple[dict, dict]:
    """Each neuron population's model and its input (terms, bias), scaled by the model's input scale."""
    neurons = _neuron_builders()
    models, incoming = {}, {}
    for name in pops_n:
        node = flow.nodes[name]
        _check_meaning(name, node)
        try:
            with np.errstate(all="ignore"):           # a parameter out of range is refused by name just below
                model, scale = neurons[type(node)](name, node, dt)
        except IRError as e:                          # the neuron model's own check (sim.neurons)
            raise node_error(name, node, f"{e.field} {e.problem} (dt = {dt:g} s)") from None
        models[name] = model
        terms, bias = flow.sum_inputs(name)
        size = flow.size(name)
        for k, v in terms.items():
            if v.shape != (size, flow.size(k)):
                raise node_error(name, node, f"receives {v.shape[0]} values from '{k}', has {size} neurons")
        if scale != 1.0:
            terms = {k: v * scale for k, v in terms.items()}
            bias = None if bias is None else bias * scale
        incoming[name] = (terms, bias)
    return models, incoming


def _depths(pops_in: list[str], pops_n: list[str], incoming: dict, source: str) -> dict[str, int]:
    """depth = longest feed-forward path from the inputs; a population feeding itself is recurrence."""
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
    return depth


def _projections(pops_n: list[str], incoming: dict, depth: dict[str, int]) -> list[Projection]:
    """delay(pre → post) = depth[post] − depth[pre] (+1 for recurrence); bias from ``BIAS`` at depth[post]."""
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
    return projs


def _readout(flow: _Flow, order: list[str], models: dict, depth: dict[str, int], timesteps: int) -> Readout | None:
    """The first Output node's readout, when it reads one neuron population."""
    out_nodes = [k for k in order if flow.kind[k] == "output"]
    if not out_nodes:
        return None
    terms, _ = flow.sum_inputs(out_nodes[0])
    if len(terms) == 1:
        (pre, m), = terms.items()
        if pre in models:
            return Readout(pre, m.toarray().astype(F32), depth[pre], depth[pre] + timesteps)
    return None


def lower(g, timesteps: int, dt: float | None = None, source: str = "NIR graph") -> AerGraph:
    """The float AER graph of NIR graph ``g`` (see module docstring)."""
    dt = float(dt if dt is not None else (g.metadata or {}).get("dt", SNNTORCH_DT))
    if not 0 < dt < np.inf:
        raise ImportError_(f"{source}: metadata 'dt' is {dt:g}; seconds per tick must be finite and > 0")
    nodes, edges, inner_io = flatten_graph(g)
    kind = _node_kinds(nodes, inner_io)
    flow = _Flow(nodes, kind, _predecessors(nodes, edges, kind, source))
    order = list(nodes)                                       # file order: populations keep it
    pops_in = [k for k in order if kind[k] == "input"]
    pops_n = [k for k in order if kind[k] == "neuron"]
    models, incoming = _neuron_inputs(flow, pops_n, dt)
    depth = _depths(pops_in, pops_n, incoming, source)
    pops = [Population(k, flow.size(k), Input(), flow.out_shape(k), 0) for k in pops_in]
    if any(b is not None for _, b in incoming.values()):
        pops.append(Population(BIAS, 1, Bias(), (1,), 0, role="bias"))
    pops += [Population(k, flow.size(k), models[k], flow.out_shape(k), depth[k]) for k in pops_n]
    graph = AerGraph("float", tuple(pops), tuple(_projections(pops_n, incoming, depth)),
                     _readout(flow, order, models, depth, timesteps), timesteps,
                     {"imported": {"format": "nir", "dt": dt, "source": source}})
    graph.check_delays()
    graph.check_has_neurons(source)
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
    except IRError as e:                              # the graph's own checks; they name the object and field
        msg = str(e)
        raise ImportError_(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
