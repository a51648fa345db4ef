"""Attach an injected fault (``procs.faults``) to a built network: failures must surface as errors."""
from __future__ import annotations

import numpy as np

from loihi_export.build.network import LavaNetwork
from loihi_export.procs.faults import FaultySink
from loihi_export.protocol import FAULT_KINDS


def add_fault(net: LavaNetwork, kind: str) -> None:
    """Attach a failing process of ``kind`` (one of FAULT_KINDS) to the first LIF of ``net``."""
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import Sparse

    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
    first = next(p for p in net.graph.populations if p.model.spiking)
    src = net.processes[first.name]
    n = net.batch * first.size
    if kind == "raise":
        sink = FaultySink(shape=(n,))
        src.s_out.connect(sink.s_in)
        net.extra.append(sink)
    else:
        syn = Sparse(weights=np.full((1, n), 2, np.int32))
        bad = LIF(shape=(1,), du=0.5, dv=0.25, vth=1.5, name="float-params-lif")
        src.s_out.connect(syn.s_in)
        syn.a_out.connect(bad.a_in)
        net.extra += [syn, bad]
