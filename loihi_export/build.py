"""Declaration: AER graph → Lava processes (nothing runs here).

Mapping, for a batch of B samples run side by side in one network (samples never
interact: every population is replicated B times, every weight matrix is
block-diagonal):

* input population  → ``io.source.RingBuffer`` with data (B·n, ticks), tick t = column t;
* lif population     → ``LIF(shape=(B·n,), du, dv, vth, bias_mant=0)`` (run with the
  bit-accurate ``PyLifModelBitAcc`` under ``Loihi2SimCfg(select_tag="fixed_pt")``);
* projection, delay 1 → ``Sparse(weights, weight_exp)`` (adds exactly one tick);
* projection, delay d > 1 → ``DelaySparse(weights, delays=d−1)`` (Lava's delay k
  lands k+1 ticks later);
* every population   → a ``Monitor`` probing its ``s_out`` for ``ticks`` steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import scipy.sparse as sps

from loihi_export.compat import import_lava
from sim.ir import AerGraph, Projection
from sim.reference import check_inputs


@dataclass
class LavaNetwork:
    """The processes of one exported graph (B samples side by side)."""

    graph: AerGraph
    batch: int
    processes: dict[str, object]                 # population name → LIF / RingBuffer
    connections: dict[str, object]               # projection name → Sparse / DelaySparse
    monitors: dict[str, object] = field(default_factory=dict)
    extra: list = field(default_factory=list)    # e.g. fault-injection processes

    @property
    def ticks(self) -> int:
        return self.graph.ticks


def batched_weights(pr: Projection, n_post: int, batch: int) -> sps.csr_matrix:
    """(B·n_post, B·n_pre) block-diagonal CSR in Lava's (post, pre) orientation."""
    rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
    w = sps.csr_matrix((pr.weights.astype(np.int32), (pr.indices, rows)), shape=(n_post, pr.n_pre))
    return sps.block_diag([w] * batch, format="csr") if batch > 1 else w


def to_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], monitor: bool = True) -> LavaNetwork:
    """Build (not run) the Lava processes of ``graph`` fed with ``inputs`` (batch, ≤T, n)."""
    if graph.numerics != "loihi":
        raise ValueError(f"Lava export needs numerics='loihi' (bit-accurate fixed point); graph has '{graph.numerics}'")
    batch = check_inputs(graph, inputs)
    import_lava()
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse

    procs: dict[str, object] = {}
    for p in graph.populations:
        n = batch * p.size
        if p.kind == "input":
            x = np.zeros((batch, graph.ticks, p.size), np.int32)
            given = np.asarray(inputs[p.name], bool)
            x[:, :given.shape[1]] = given
            procs[p.name] = RingBuffer(data=x.transpose(0, 2, 1).reshape(n, graph.ticks))
        else:
            procs[p.name] = LIF(shape=(n,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                                bias_mant=0, bias_exp=0, name=p.name)
    conns: dict[str, object] = {}
    sizes = {p.name: p.size for p in graph.populations}
    for pr in graph.projections:
        w = batched_weights(pr, sizes[pr.post], batch)
        if pr.delay == 1:
            c = Sparse(weights=w, weight_exp=int(pr.weight_exp), name=pr.name)
        else:
            d = w.astype(np.int64)                  # Lava insists on dtype int for delays
            d.data[:] = pr.delay - 1
            c = DelaySparse(weights=w, delays=d, weight_exp=int(pr.weight_exp), name=pr.name)
        procs[pr.pre].s_out.connect(c.s_in)
        c.a_out.connect(procs[pr.post].a_in)
        conns[pr.name] = c
    net = LavaNetwork(graph, batch, procs, conns)
    if monitor:
        for p in graph.populations:
            m = Monitor()
            m.probe(target=procs[p.name].s_out, num_steps=graph.ticks)
            net.monitors[p.name] = m
    return net


def read_spikes(net: LavaNetwork) -> dict[str, np.ndarray]:
    """Monitor data → {population: bool (batch, ticks, size)} (call after run, before stop)."""
    out = {}
    for p in net.graph.populations:
        mon = net.monitors[p.name]
        data = mon.get_data()
        proc = net.processes[p.name]
        arr = np.asarray(data[proc.name]["s_out"])          # (ticks, B·n)
        out[p.name] = arr.reshape(net.ticks, net.batch, p.size).transpose(1, 0, 2) != 0
    return out
