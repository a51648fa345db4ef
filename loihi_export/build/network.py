"""Declaration: AER graph → Lava processes (nothing runs here).

Samples are laid out in ``batch`` lanes × ``sequence`` slots. Lanes run side by side
(every population replicated ``batch`` times, every weight matrix block-diagonal);
slots run one after another in the same network, ``period`` ticks apart (see
*Samples in sequence* below). Sample ``i`` is lane ``i % batch`` of slot ``i // batch``.

Mapping:

* source (``Input``, ``Bias``) → ``io.source.RingBuffer`` with data (B·n, run ticks): slot ``s``'s
  input at columns ``[s·period, s·period + its timesteps)``, zeros elsewhere;
* ``CubaLIF`` population → ``LIF(shape=(B·n,), du, dv, vth, bias_mant=0, bias_exp=0)``, run
  with the bit-accurate ``PyLifModelBitAcc`` under ``Loihi2SimCfg(select_tag="fixed_pt")``;
  with ``sequence > 1`` Lava's ``LIFReset(reset_interval=period, reset_offset=1)``
  instead (``PyLifResetModelBitAcc``: the same fixed-point update, with ``u = v = 0``
  set before the update of ticks 1, period + 1, 2·period + 1, … — i.e. every slot
  starts from a fresh neuron);
* ``VoltageProbe`` population → ``procs.probe.VoltageProbeLIF`` (the same LIF update, spike test at
  ``level``, reset at ``vth``; fresh every ``period`` as ``LIFReset``);
* ``GradedRelay``      → ``GradedVec(shape=(B·n,), vth=0)`` (``PyGradedVecModelFixed``:
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
  ``procs.recorder.SpikeRecorder``; with ``record_dir`` it writes its spikes to a file
  there on its last tick — no per-element Var read-back) or ``record="monitor"``
  (Lava's ``Monitor``; same spikes, ~32× slower to read back — see
  ``procs.recorder``); a graded population's event is payload ≠ 0. With
  ``payloads=True`` graded populations also get a ``procs.recorder.PayloadRecorder``
  (read back by ``build.readout``).

Weights: ``build.weights`` (one lane's CSR in Lava's orientation, compact data type;
memory-mapped through ``LavaWeights``).

Samples in sequence. At the reset tick of slot ``s`` every LIF is fresh; the network
is then exactly at rest — as for a fresh network — when no population sent an event
in the ``D`` ticks before (``D`` = the largest projection delay): every Sparse
buffer and DelaySparse queue is then empty and graded populations hold nothing
(their state is cleared every tick). ``rest_period`` bounds, from the graph, how
long activity can last once the input stops (a LIF keeps firing only while its
input or its decaying current ``u`` is non-zero; ``du`` fixes how fast ``u``
reaches 0), and ``readout.check_rest`` verifies the silence on the recorded spikes of every
run, so a wrong bound is an error, never a wrong spike.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sps

from loihi_export.build.weights import batched_weights
from loihi_export.compat import import_lava
from sim.engine.reference import check_inputs, source_spikes
from sim.ir.graph import Population
from sim.neurons.cuba import CubaLIF
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Bias, Input
from sim.neurons.probe import VoltageProbe
from sim.numerics import ARITHMETIC

RECORD_MODES = ("packed", "monitor")


GRADED_MESSAGE_BITS = 24                     # Loihi 2 graded spike payload


UV_MAX = 1 << 23                             # |u|, |v| of Loihi's 24-bit LIF state


MAX_REST_GAP = 64                            # slots further apart than max(this, 2·ticks): not worth it


def require_loihi(graph) -> None:
    """Raise ValueError unless the graph uses Loihi fixed-point numerics."""
    if not ARITHMETIC[graph.numerics].fixed_point:
        raise ValueError(f"Lava export needs numerics='loihi' (Lava's bit-accurate fixed-point models); "
                         f"this graph has numerics='{graph.numerics}' — convert it with numerics='loihi'")


def current_settle_ticks(du: int, cap: int) -> int | None:
    """Ticks without input until a Loihi LIF current of any 24-bit value decays to exactly 0
    (``PyLifModelBitAcc``: |u| ← |u|·(4096 − du − 1) >> 12); None if more than ``cap``."""
    factor, u = 4096 - (int(du) + 1), UV_MAX
    for n in range(1, cap + 1):
        u = (u * factor) >> 12
        if u == 0:
            return n
    return None


def rest_period(graph) -> int | None:
    """Ticks between sample slots in one network (≥ graph.ticks + the largest delay), or None
    when activity can outlast the input by more than ``max(MAX_REST_GAP, 2·ticks)`` ticks
    (slow current decay: small ``du``) or never stops (a cycle).

    Last possible event tick (1-based, input at ticks 1…timesteps): an input ``timesteps``; a
    population's last input tick ``I`` = max over projections of (pre's last + delay); a graded
    population ``I``; a LIF ``I + n_u − 1`` with ``n_u`` = ``current_settle_ticks(du)`` (after its
    current is 0 its voltage only decays: it cannot reach the threshold it was below).
    The period adds the largest delay, so every message is delivered before the next reset.
    """
    ticks = int(graph.ticks)
    cap_gap = max(MAX_REST_GAP, 2 * ticks)
    delay = max((int(pr.delay) for pr in graph.projections), default=1)
    last = {p.name: (int(graph.timesteps) if p.is_source else 0) for p in graph.populations}
    settle = {}
    for p in graph.populations:
        if isinstance(p.model, (CubaLIF, VoltageProbe)):
            settle[p.name] = current_settle_ticks(p.model.du, cap_gap + ticks)
            if settle[p.name] is None:
                return None
    graded = {p.name for p in graph.populations if p.is_graded}
    for _ in range(len(last) + 1):              # longest-path relaxation; still changing after n rounds: a cycle
        changed = False
        incoming: dict[str, int] = {}
        for pr in graph.projections:
            if last[pr.pre] > 0:
                incoming[pr.post] = max(incoming.get(pr.post, 0), last[pr.pre] + int(pr.delay))
        for name, i in incoming.items():
            new = i if name in graded else i + settle[name] - 1
            if new > last[name]:
                last[name], changed = new, True
        if not changed:
            break
        if max(last.values()) > ticks + cap_gap:
            return None
    else:
        return None
    period = max(ticks, max(last.values())) + delay
    return period if period - ticks <= cap_gap else None


@dataclass
class LavaNetwork:
    """The Lava processes of one exported graph: ``batch`` lanes × ``sequence`` slots."""

    graph: object                                # AerGraph or GraphShape
    batch: int
    processes: dict[str, object]                 # population name → LIF / LIFReset / GradedVec / RingBuffer
    connections: dict[str, object]               # projection name → Sparse / DelaySparse
    record: str = "packed"
    recorders: dict[str, object] = field(default_factory=dict)   # population → SpikeRecorder / Monitor
    extra: list = field(default_factory=list)    # e.g. fault-injection processes
    payload_recorders: dict[str, object] = field(default_factory=dict)   # graded population → PayloadRecorder
    sequence: int = 1
    period: int = 0                              # ticks between slots (sequence > 1)
    samples: int = 0                             # real samples (the last slot may be padded)
    record_dir: Path | None = None

    @property
    def ticks(self) -> int:
        return self.graph.ticks

    @property
    def run_ticks(self) -> int:
        """Ticks the network must run: every slot's window, the gaps between them."""
        return (self.sequence - 1) * self.period + self.graph.ticks

    @property
    def monitors(self) -> dict[str, object]:
        """The Monitor processes (empty unless ``record="monitor"``)."""
        return self.recorders if self.record == "monitor" else {}

    @property
    def max_delay(self) -> int:
        return max((int(pr.delay) for pr in self.graph.projections), default=1)


def input_data(graph, spikes: np.ndarray, sequence: int = 1, period: int = 0) -> np.ndarray:
    """Input spikes (N, ≤timesteps, n) → RingBuffer data (B·n, run ticks), B = ceil(N / sequence);
    sample i = lane i % B of slot i // B; zero elsewhere (gaps, padding)."""
    spikes = np.asarray(spikes, bool)
    samples, steps, n = spikes.shape
    batch = -(-samples // sequence)
    run_ticks = (sequence - 1) * period + graph.ticks
    x = np.zeros((batch, run_ticks, n), np.int32)
    for s in range(sequence):
        part = spikes[s * batch:(s + 1) * batch]
        x[:len(part), s * period:s * period + steps] = part
    return x.transpose(0, 2, 1).reshape(batch * n, run_ticks)


def to_lava(graph, inputs: Mapping[str, np.ndarray], record: str = "packed", payloads: bool = False, *,
            sequence: int = 1, period: int | None = None,
            weights: Callable[[object, int], sps.csr_matrix] | None = None,
            record_dir: str | Path | None = None) -> LavaNetwork:
    """Declare (not run) the Lava processes of ``graph`` fed with ``inputs``.

    ``inputs``: ``{input population: bool (N, ≤timesteps, size)}``, laid out in ``sequence``
    slots of ``ceil(N / sequence)`` lanes. ``period``: ticks between slots (default
    ``rest_period(graph)``; ValueError if the graph never comes to rest). ``weights(projection,
    batch)``: the (B·n_post, B·n_pre) CSR of a projection (default: built from ``graph``, which
    must then be an AerGraph; the worker passes a :class:`LavaWeights`). ``payloads``: also record
    graded populations' payloads. ``record_dir``: recorders write their data there (packed).
    Imports Lava (after the 3.11 shim).
    """
    require_loihi(graph)
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
    samples = check_inputs(graph, inputs)
    if not 1 <= sequence <= samples:
        raise ValueError(f"sequence must be in [1, {samples}] (samples), got {sequence}")
    if sequence > 1 and period is None:
        period = rest_period(graph)
        if period is None:
            raise ValueError("this graph does not come to rest soon enough after its input to run samples "
                             "in sequence in one network (a LIF with a slowly decaying current, or a cycle); "
                             "use sequence=1")
    period = int(period or graph.ticks)
    if sequence > 1 and period < graph.ticks + max((int(pr.delay) for pr in graph.projections), default=1):
        raise ValueError(f"period {period} is shorter than ticks + largest delay")
    batch = -(-samples // sequence)
    if weights is None:
        sizes = {p.name: p.size for p in graph.populations}
        weights = lambda pr, b: batched_weights(pr, sizes[pr.post], b)  # noqa: E731
    import_lava()
    from lava.proc.sparse.process import DelaySparse, Sparse

    net = LavaNetwork(graph, batch, {}, {}, record, sequence=sequence, period=period, samples=samples,
                      record_dir=None if record_dir is None else Path(record_dir))
    procs = net.processes
    spikes = source_spikes(graph, inputs, samples)
    for p in graph.populations:
        make = LAVA_PROCESSES.get(type(p.model))
        if make is None:
            raise ValueError(f"population '{p.name}': neuron model {type(p.model).__name__} has no Lava process "
                             f"(Lava runs {', '.join(c.__name__ for c in LAVA_PROCESSES)})")
        procs[p.name] = make(p, batch, sequence, period, lambda: input_data(graph, spikes[p.name], sequence, period))
    graded = {p.name for p in graph.populations if p.is_graded}
    for pr in graph.projections:
        w = weights(pr, batch)
        bits = GRADED_MESSAGE_BITS if pr.pre in graded else 0
        if pr.delay == 1:
            c = Sparse(weights=w, weight_exp=int(pr.weight_exp), num_message_bits=bits, name=pr.name)
        else:                                   # DelaySparse insists on dtype int, same sparsity as w
            d = sps.csr_matrix((np.full(w.nnz, pr.delay - 1, dtype=int), w.indices, w.indptr), shape=w.shape)
            c = DelaySparse(weights=w, delays=d, weight_exp=int(pr.weight_exp), num_message_bits=bits,
                            name=pr.name)
        c.weights.init = w                      # not Sparse's private copy: w may be memory-mapped
        del w
        procs[pr.pre].s_out.connect(c.s_in)
        c.a_out.connect(procs[pr.post].a_in)
        net.connections[pr.name] = c
    for p in graph.populations:
        net.recorders[p.name] = _recorder(net, p, "spikes")
        if payloads and p.is_graded and record != "monitor":
            net.payload_recorders[p.name] = r = _recorder(net, p, "payloads")
            procs[p.name].s_out.connect(r.s_in)
    return net


def _ring_buffer(p: Population, batch: int, sequence: int, period: int, data: Callable[[], np.ndarray]):
    """A source → ``io.source.RingBuffer`` replaying its spikes (given inputs, or a Bias's ones)."""
    from lava.proc.io.source import RingBuffer
    return RingBuffer(data=data())


def _graded_vec(p: Population, batch: int, sequence: int, period: int, data):
    """``GradedRelay`` → ``GradedVec(vth=0)``: payload = summed input."""
    from lava.proc.graded.process import GradedVec
    proc = GradedVec(shape=(batch * p.size,), vth=0)
    proc.name = p.name                          # GradedVec takes no name argument
    return proc


def _lif(p: Population, batch: int, sequence: int, period: int, data):
    """``CubaLIF`` → ``LIF`` (one slot) or ``LIFReset`` (slots in sequence, fresh every ``period``)."""
    from lava.proc.lif.process import LIF, LIFReset
    m = p.model
    if sequence > 1:
        return LIFReset(shape=(batch * p.size,), du=m.du, dv=m.dv, vth=m.vth, bias_mant=0, bias_exp=0,
                        reset_interval=period, reset_offset=1 % period, name=p.name)
    return LIF(shape=(batch * p.size,), du=m.du, dv=m.dv, vth=m.vth, bias_mant=0, bias_exp=0, name=p.name)


def _probe(p: Population, batch: int, sequence: int, period: int, data):
    """``VoltageProbe`` → ``procs.probe.VoltageProbeLIF`` (fresh every ``period`` ticks; once, at tick 1,
    with one slot — its state starts at 0 anyway)."""
    from loihi_export.procs.probe import VoltageProbeLIF
    m = p.model
    interval = period if sequence > 1 else (1 << 30)
    return VoltageProbeLIF(shape=(batch * p.size,), dv=m.dv, vth=m.vth, level=m.level, reset_interval=interval,
                           reset_offset=1 % interval, name=p.name)


LAVA_PROCESSES: dict[type, Callable] = {Input: _ring_buffer, Bias: _ring_buffer, GradedRelay: _graded_vec,
                                        CubaLIF: _lif, VoltageProbe: _probe}


def _file(net: LavaNetwork, name: str, what: str) -> str | None:
    if net.record_dir is None:
        return None
    return str(net.record_dir / f"{what}.{list(net.processes).index(name)}.npy")


def _recorder(net: LavaNetwork, p: Population, what: str):
    proc, size = net.processes[p.name], net.batch * p.size
    if what == "payloads":
        from loihi_export.procs.recorder import PayloadRecorder
        return PayloadRecorder(size=size, ticks=net.run_ticks, path=_file(net, p.name, what))
    if net.record == "monitor":
        from lava.proc.monitor.process import Monitor
        m = Monitor()
        m.probe(target=proc.s_out, num_steps=net.run_ticks)
        return m
    from loihi_export.procs.recorder import SpikeRecorder
    r = SpikeRecorder(size=size, ticks=net.run_ticks, path=_file(net, p.name, what))
    proc.s_out.connect(r.s_in)
    return r
