"""Declaration: AER graph → Lava processes (nothing runs here).

Mapping, for a batch of B samples run side by side in one network (samples never
interact: every population is replicated B times, every weight matrix is
block-diagonal):

* input population  → ``io.source.RingBuffer`` with data (B·n, ticks), tick t = column t
  (zeros after the input's own timesteps);
* lif population     → ``LIF(shape=(B·n,), du, dv, vth, bias_mant=0, bias_exp=0)``, run
  with the bit-accurate ``PyLifModelBitAcc`` under ``Loihi2SimCfg(select_tag="fixed_pt")``;
* graded population  → ``GradedVec(shape=(B·n,), vth=0)`` (``PyGradedVecModelFixed``:
  v += a_in; s_out = v·(|v| > 0); v = 0 — its payload is its summed input, sent
  with the same one-tick timing as a LIF's spikes; int32 state, the IR bounds the
  payload to 24 bits);
* projection, delay 1 → ``Sparse(weights, weight_exp)`` (``PySparseModelBitAcc`` adds
  exactly one tick: its ``a_out`` at tick t comes from spikes at t − 1);
* projection, delay d > 1 → ``DelaySparse(weights, delays=d−1, weight_exp)`` (Lava's
  delay k lands k+1 ticks later); ``weight_exp`` reaches the models through
  ``proc_params`` (``AbstractProcess`` keeps every constructor kwarg there);
* a projection from a graded population gets ``num_message_bits=24``: the
  bit-accurate models then compute ``W·s_in`` on the received payloads (with 0 they
  cast ``s_in`` to bool). The channel carries the sender's dtype (int32) and the
  InPort's bool zeros + int32 payload promote to int32, so payloads arrive
  unchanged; the shift by ``weight_exp`` floors the summed ``W·payload``
  (``np.right_shift``), as ``sim.engine`` does;
* several projections into one population all connect to its ``a_in`` (an InPort
  sums its inputs);
* every population   → a recorder on its ``s_out``: ``record="packed"`` (default,
  ``procs.recorder.SpikeRecorder``) or ``record="monitor"`` (Lava's ``Monitor``; same
  spikes, ~32× slower to read back — see ``procs.recorder``); a graded population's
  event is payload ≠ 0. With ``payloads=True`` graded populations also get a
  ``procs.recorder.PayloadRecorder`` (their int32 payloads; the Monitor's data holds
  them already).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sps

from loihi_export.compat import import_lava
from sim.ir import AerGraph, Projection
from sim.reference import check_inputs

RECORD_MODES = ("packed", "monitor")


def require_loihi(graph: AerGraph) -> None:
    """Raise ValueError unless the graph uses Loihi fixed-point numerics."""
    if graph.numerics != "loihi":
        raise ValueError(f"Lava export needs numerics='loihi' (Lava's bit-accurate fixed-point models); "
                         f"this graph has numerics='{graph.numerics}' — convert it with numerics='loihi'")


@dataclass
class LavaNetwork:
    """The Lava processes of one exported graph, B samples side by side."""

    graph: AerGraph
    batch: int
    processes: dict[str, object]                 # population name → LIF / GradedVec / RingBuffer
    connections: dict[str, object]               # projection name → Sparse / DelaySparse
    record: str = "packed"
    recorders: dict[str, object] = field(default_factory=dict)   # population → SpikeRecorder / Monitor
    extra: list = field(default_factory=list)    # e.g. fault-injection processes
    payload_recorders: dict[str, object] = field(default_factory=dict)   # graded population → PayloadRecorder

    @property
    def ticks(self) -> int:
        return self.graph.ticks

    @property
    def monitors(self) -> dict[str, object]:
        """The Monitor processes (empty unless ``record="monitor"``)."""
        return self.recorders if self.record == "monitor" else {}


def batched_weights(pr: Projection, n_post: int, batch: int) -> sps.csr_matrix:
    """(B·n_post, B·n_pre) block-diagonal CSR in Lava's (post, pre) orientation."""
    rows = np.repeat(np.arange(pr.n_pre), np.diff(pr.indptr))
    w = sps.csr_matrix((pr.weights.astype(np.int32), (pr.indices, rows)), shape=(n_post, pr.n_pre))
    return sps.block_diag([w] * batch, format="csr") if batch > 1 else w


def input_data(graph: AerGraph, spikes: np.ndarray) -> np.ndarray:
    """Input spikes (B, ≤timesteps, n) → RingBuffer data (B·n, ticks), zero-padded in time."""
    spikes = np.asarray(spikes, bool)
    batch, steps, n = spikes.shape
    x = np.zeros((batch, graph.ticks, n), np.int32)
    x[:, :steps] = spikes
    return x.transpose(0, 2, 1).reshape(batch * n, graph.ticks)


GRADED_MESSAGE_BITS = 24                     # Loihi 2 graded spike payload


def to_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], record: str = "packed",
            payloads: bool = False) -> LavaNetwork:
    """Declare (not run) the Lava processes of ``graph`` fed with ``inputs``.

    ``inputs``: ``{input population: bool (batch, ≤timesteps, size)}``; the whole
    batch becomes one network. ``payloads``: also record graded populations'
    payloads (``read_payloads``). Imports Lava (after the 3.11 shim).
    """
    require_loihi(graph)
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
    batch = check_inputs(graph, inputs)
    import_lava()
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import DelaySparse, Sparse

    procs: dict[str, object] = {}
    for p in graph.populations:
        if p.kind == "input":
            procs[p.name] = RingBuffer(data=input_data(graph, inputs[p.name]))
        elif p.kind == "graded":
            procs[p.name] = GradedVec(shape=(batch * p.size,), vth=0)
            procs[p.name].name = p.name             # GradedVec takes no name argument
        else:
            procs[p.name] = LIF(shape=(batch * p.size,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                                bias_mant=0, bias_exp=0, name=p.name)
    conns: dict[str, object] = {}
    sizes = {p.name: p.size for p in graph.populations}
    graded = {p.name for p in graph.populations if p.kind == "graded"}
    for pr in graph.projections:
        w = batched_weights(pr, sizes[pr.post], batch)
        bits = GRADED_MESSAGE_BITS if pr.pre in graded else 0
        if pr.delay == 1:
            c = Sparse(weights=w, weight_exp=int(pr.weight_exp), num_message_bits=bits, name=pr.name)
        else:
            d = w.astype(int)                       # DelaySparse insists on dtype int, same sparsity as w
            d.data[:] = pr.delay - 1
            c = DelaySparse(weights=w, delays=d, weight_exp=int(pr.weight_exp), num_message_bits=bits,
                            name=pr.name)
        procs[pr.pre].s_out.connect(c.s_in)
        c.a_out.connect(procs[pr.post].a_in)
        conns[pr.name] = c
    net = LavaNetwork(graph, batch, procs, conns, record)
    for p in graph.populations:
        net.recorders[p.name] = _recorder(procs[p.name], batch * p.size, graph.ticks, record)
        if payloads and p.kind == "graded" and record != "monitor":
            from loihi_export.procs.recorder import PayloadRecorder
            net.payload_recorders[p.name] = r = PayloadRecorder(size=batch * p.size, ticks=graph.ticks)
            procs[p.name].s_out.connect(r.s_in)
    return net


def _recorder(proc, size: int, ticks: int, record: str):
    if record == "monitor":
        from lava.proc.monitor.process import Monitor
        m = Monitor()
        m.probe(target=proc.s_out, num_steps=ticks)
        return m
    from loihi_export.procs.recorder import SpikeRecorder
    r = SpikeRecorder(size=size, ticks=ticks)
    proc.s_out.connect(r.s_in)
    return r


def read_spikes(net: LavaNetwork) -> dict[str, np.ndarray]:
    """Recorded spikes → ``{population: bool (batch, ticks, size)}``; call after run, before stop."""
    out = {}
    for p in net.graph.populations:
        rec = net.recorders[p.name]
        if net.record == "monitor":
            arr = np.asarray(rec.get_data()[net.processes[p.name].name]["s_out"]) != 0   # (ticks, B·n)
        else:
            arr = rec.spikes()
        out[p.name] = arr.reshape(net.ticks, net.batch, p.size).transpose(1, 0, 2)
    return out


def read_payloads(net: LavaNetwork) -> dict[str, np.ndarray]:
    """Graded populations' payloads → ``{population: int32 (batch, ticks, size)}`` (the network
    must have been declared with ``payloads=True`` or ``record="monitor"``); after run, before stop."""
    out = {}
    for p in net.graph.populations:
        if p.kind != "graded":
            continue
        if net.record == "monitor":
            arr = np.asarray(net.recorders[p.name].get_data()[net.processes[p.name].name]["s_out"])
        elif p.name in net.payload_recorders:
            arr = net.payload_recorders[p.name].payloads()
        else:
            raise ValueError(f"graded population {p.name!r} was not recorded with payloads=True")
        out[p.name] = arr.astype(np.int32).reshape(net.ticks, net.batch, p.size).transpose(1, 0, 2)
    return out
