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
  ``payloads=True`` graded populations also get a ``procs.recorder.PayloadRecorder``.

Weights (memory). A projection's weights go to Lava as a CSR matrix in Lava's
(post, pre) orientation with the smallest integer data type that holds them (int8
for most), int32 indices, and — for one lane — no block-diagonal copy. Lava's
``Sparse`` keeps a private copy of the matrix it is given as its ``weights`` Var's
initial value; ``to_lava`` puts the given matrix back in its place, so a matrix
backed by a memory-mapped file (``LavaWeights``, used by the worker) stays on disk
(page cache, shared by every OS process) instead of being copied into the builder.
Each Lava ``Sparse``/``DelaySparse`` OS process then makes its own int32 copy on its
first tick (``clip_weights``/``truncate_weights``: 8 bytes per synapse kept, ~24
while converting).

Samples in sequence. At the reset tick of slot ``s`` every LIF is fresh; the network
is then exactly at rest — as for a fresh network — when no population sent an event
in the ``D`` ticks before (``D`` = the largest projection delay): every Sparse
buffer and DelaySparse queue is then empty and graded populations hold nothing
(their state is cleared every tick). ``rest_period`` bounds, from the graph, how
long activity can last once the input stops (a LIF keeps firing only while its
input or its decaying current ``u`` is non-zero; ``du`` fixes how fast ``u``
reaches 0), and ``check_rest`` verifies the silence on the recorded spikes of every
run, so a wrong bound is an error, never a wrong spike.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sps

from loihi_export.compat import import_lava
from sim.engine.reference import check_inputs, source_spikes
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.catalog import model_from_dict
from sim.neurons.cuba import CubaLIF
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Bias, Input
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


@dataclass(frozen=True)
class Link:
    """A projection without its synapses."""

    name: str
    pre: str
    post: str
    delay: int
    weight_exp: int
    n_synapses: int


@dataclass(frozen=True)
class GraphShape:
    """Populations, projections without synapses, timing: all ``to_lava`` needs besides weights.

    Duck-types the parts of :class:`~sim.ir.AerGraph` the exporter reads
    (``numerics, timesteps, ticks, populations, projections, inputs, population``).
    """

    numerics: str
    timesteps: int
    ticks: int
    populations: tuple[Population, ...]
    projections: tuple[Link, ...]

    @classmethod
    def of(cls, graph: AerGraph) -> GraphShape:
        links = tuple(Link(pr.name, pr.pre, pr.post, int(pr.delay), int(pr.weight_exp), int(pr.n_synapses))
                      for pr in graph.projections)
        return cls(graph.numerics, int(graph.timesteps), int(graph.ticks), tuple(graph.populations), links)

    @property
    def inputs(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.model.needs_input)

    @property
    def sources(self) -> tuple[Population, ...]:
        return tuple(p for p in self.populations if p.is_source)

    @property
    def n_synapses(self) -> int:
        return sum(pr.n_synapses for pr in self.projections)

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    def to_json(self) -> str:
        pops = [{"name": p.name, "size": int(p.size), "model": p.model.to_dict(),
                 "shape": [int(s) for s in p.shape], "depth": int(p.depth), "role": p.role}
                for p in self.populations]
        return json.dumps({"numerics": self.numerics, "timesteps": self.timesteps, "ticks": self.ticks,
                           "populations": pops, "projections": [vars(pr) for pr in self.projections]})

    @classmethod
    def from_json(cls, text: str) -> GraphShape:
        d = json.loads(text)
        pops = tuple(Population(**{**p, "shape": tuple(p["shape"]), "model": model_from_dict(p["model"])})
                     for p in d["populations"])
        return cls(d["numerics"], d["timesteps"], d["ticks"], pops, tuple(Link(**pr) for pr in d["projections"]))


def weight_dtype(weights: np.ndarray) -> np.dtype:
    """The smallest signed integer type holding every weight."""
    lo, hi = (int(weights.min()), int(weights.max())) if weights.size else (0, 0)
    for t in (np.int8, np.int16, np.int32):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return np.dtype(t)
    raise ValueError(f"weights in [{lo}, {hi}] do not fit int32")


def lava_csr(pr: Projection, n_post: int) -> sps.csr_matrix:
    """One lane's (n_post, n_pre) CSR in Lava's orientation: compact data type, int32 indices.

    The IR stores pre-major CSR (row = pre neuron); its transpose's CSR is the CSC of that
    matrix (one O(synapses) pass, rows stay sorted)."""
    w = pr.weights.astype(weight_dtype(pr.weights), copy=False)
    pre_major = sps.csr_matrix((w, pr.indices.astype(np.int32, copy=False), pr.indptr), shape=(pr.n_pre, n_post))
    csc = pre_major.tocsc()
    return sps.csr_matrix((csc.data, csc.indices.astype(np.int32, copy=False),
                           csc.indptr.astype(np.int32, copy=False)), shape=(n_post, pr.n_pre), copy=False)


def block_diagonal(w: sps.csr_matrix, batch: int) -> sps.csr_matrix:
    """``batch`` copies of ``w`` on the diagonal (CSR, same data type; ``w`` itself for one lane)."""
    if batch == 1:
        return w
    n_post, n_pre = w.shape
    nnz = w.nnz
    if batch * max(nnz, n_pre, n_post) >= 2**31:
        raise ValueError(f"{batch} lanes of a {n_post}×{n_pre} matrix with {nnz} synapses overflow int32 indices")
    lanes = np.arange(batch, dtype=np.int64)
    indptr = np.concatenate([(w.indptr[None, :-1] + (lanes * nnz)[:, None]).ravel(), [batch * nnz]]).astype(np.int32)
    indices = (w.indices[None, :] + (lanes * n_pre)[:, None].astype(np.int32)).ravel().astype(np.int32)
    return sps.csr_matrix((np.tile(w.data, batch), indices, indptr), shape=(batch * n_post, batch * n_pre),
                          copy=False)


def batched_weights(pr: Projection, n_post: int, batch: int) -> sps.csr_matrix:
    """(B·n_post, B·n_pre) block-diagonal CSR in Lava's (post, pre) orientation."""
    return block_diagonal(lava_csr(pr, n_post), batch)


class LavaWeights:
    """One lane's Lava weight matrices as .npy files in a directory, read back memory-mapped.

    ``save`` writes ``{k}.data.npy, {k}.indices.npy, {k}.indptr.npy`` per projection ``k``
    and ``shape.json`` (:class:`GraphShape`); ``__call__(link, batch)`` returns the CSR —
    memory-mapped (page cache, shared by every process forked later) for one lane,
    block-diagonal in memory for more.
    """

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.shape = GraphShape.from_json((self.dir / "shape.json").read_text())
        self._index = {pr.name: k for k, pr in enumerate(self.shape.projections)}
        self._sizes = {p.name: p.size for p in self.shape.populations}

    @staticmethod
    def save(graph: AerGraph, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sizes = {p.name: p.size for p in graph.populations}
        for k, pr in enumerate(graph.projections):
            w = lava_csr(pr, sizes[pr.post])
            for part in ("data", "indices", "indptr"):
                np.save(d / f"{k}.{part}.npy", getattr(w, part))
            del w
        (d / "shape.json").write_text(GraphShape.of(graph).to_json())
        return d

    def __call__(self, link, batch: int = 1) -> sps.csr_matrix:
        k = self._index[link.name]
        data, indices, indptr = (np.load(self.dir / f"{k}.{part}.npy", mmap_mode="r")
                                 for part in ("data", "indices", "indptr"))
        shape = (self._sizes[link.post], self._sizes[link.pre])
        return block_diagonal(sps.csr_matrix((data, indices, indptr), shape=shape, copy=False), batch)


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
        if isinstance(p.model, CubaLIF):
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


LAVA_PROCESSES: dict[type, Callable] = {Input: _ring_buffer, Bias: _ring_buffer, GradedRelay: _graded_vec,
                                        CubaLIF: _lif}


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


def _recorded(net: LavaNetwork, p: Population) -> np.ndarray:
    """Everything recorded for population p: bool (run ticks, B·n)."""
    rec = net.recorders[p.name]
    if net.record == "monitor":
        return np.asarray(rec.get_data()[net.processes[p.name].name]["s_out"]) != 0
    return rec.spikes()


def _windows(net: LavaNetwork, arr: np.ndarray, size: int) -> np.ndarray:
    """(run ticks, B·n) → (samples, ticks, n): each slot's window, lanes as samples."""
    parts = [arr[s * net.period:s * net.period + net.ticks].reshape(net.ticks, net.batch, size).transpose(1, 0, 2)
             for s in range(net.sequence)]
    return np.concatenate(parts)[:net.samples]


def _check_rest(net: LavaNetwork, name: str, arr: np.ndarray) -> None:
    d = net.max_delay
    for s in range(1, net.sequence):
        lo, hi = s * net.period - d, s * net.period
        if arr[lo:hi].any():
            t = lo + int(np.flatnonzero(arr[lo:hi].any(axis=1))[0])
            raise RuntimeError(f"network not at rest before sample slot {s}: population {name!r} had an event "
                               f"at tick {t + 1} (slot starts at tick {hi + 1}); period {net.period} too short")


def check_rest(net: LavaNetwork, recorded: Mapping[str, np.ndarray]) -> None:
    """Raise RuntimeError unless no population had an event in the ``max_delay`` ticks before each
    slot after the first (then every slot started from rest; see the module docstring).
    ``recorded``: ``{population: bool (run ticks, B·n)}``."""
    for name, arr in recorded.items():
        _check_rest(net, name, arr)


def read_spikes(net: LavaNetwork, packed: bool = False) -> dict[str, np.ndarray]:
    """Recorded spikes → ``{population: bool (samples, ticks, size)}``; call after run, before stop.
    With ``sequence > 1`` also checks that each slot started at rest (``check_rest``). One
    population at a time; ``packed``: each as ``np.packbits(..., axis=-1, bitorder="little")``
    (8× smaller; ``unpack_spikes`` undoes it)."""
    out = {}
    for p in net.graph.populations:
        arr = _recorded(net, p)
        _check_rest(net, p.name, arr)
        w = _windows(net, arr, p.size)
        del arr
        out[p.name] = np.packbits(w, axis=-1, bitorder="little") if packed else w
    return out


def unpack_spikes(packed: np.ndarray, size: int) -> np.ndarray:
    """``read_spikes(..., packed=True)``'s array → bool (samples, ticks, size)."""
    return np.unpackbits(packed, axis=-1, count=size, bitorder="little").view(bool)


def read_payloads(net: LavaNetwork) -> dict[str, np.ndarray]:
    """Graded populations' payloads → ``{population: int32 (samples, ticks, size)}`` (the network
    must have been declared with ``payloads=True`` or ``record="monitor"``); after run, before stop."""
    out = {}
    for p in net.graph.populations:
        if not p.is_graded:
            continue
        if net.record == "monitor":
            arr = np.asarray(net.recorders[p.name].get_data()[net.processes[p.name].name]["s_out"])
        elif p.name in net.payload_recorders:
            arr = net.payload_recorders[p.name].payloads()
        else:
            raise ValueError(f"graded population {p.name!r} was not recorded with payloads=True")
        out[p.name] = _windows(net, arr.astype(np.int32), p.size)
    return out
