"""Run an AER graph in Lava safely: a worker process per chunk, a timeout, full cleanup.

Samples run ``batch_size`` side by side and ``sequence`` such groups one after another in one
network (``build``); large graphs default to one at a time, all in one worker, so memory does
not grow with the samples. The weights go to the worker as memory-mapped files
(``build.LavaWeights``). A run whose estimated peak memory exceeds what is available is
refused before it starts.

Lava runs each process in its own OS process, and a process model that raises
leaves lava-nc 0.10's runtime waiting forever. So every run happens in a worker
(``python -m loihi_export.worker``) started in its own session (process group);
the parent

* waits at most ``timeout`` seconds, and stops early when a Lava child has printed
  a traceback and the worker has not exited ``FAILURE_GRACE_S`` later (a run
  with a dead Lava process can never finish: every process takes part in every tick);
* on any failure kills the worker's whole process group, removes the POSIX
  shared-memory segments of that run that are still in /dev/shm (new since the
  start *and* logged by the worker as Lava created them — so segments of other
  runs going on at the same time are never touched), and raises
  :class:`LavaRunError` carrying Lava's own message (from the worker's stderr);
* on success does the same reaping and cleanup, so nothing is left behind;
* takes SIGTERM and SIGHUP like SIGINT while it runs (``sim.signals``): the
  exception runs the same cleanup (itself shielded from a second signal) and
  removes the work directory; if this process is SIGKILLed instead, the worker
  notices its parent's death and cleans up itself (``worker.die_with_parent``).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from loihi_export.build import (  # build imports Lava only inside to_lava
    RECORD_MODES,
    LavaWeights,
    require_loihi,
    rest_period,
    unpack_spikes,
)
from loihi_export.errors import LavaRunError
from loihi_export.worker import PAYLOAD_PREFIX
from sim.ir import AerGraph
from sim.reference import check_inputs
from sim.signals import deferred_interrupts, interrupts_as_exceptions

SHM = Path("/dev/shm")
FAILURE_GRACE_S = 2.0
POLL_S = 0.1
FAULT_KINDS = ("raise", "float-lif")       # see loihi_export.procs.faults
MEMORY_SAMPLE_S = 1.0                      # stats: the worker's process list is refreshed this often
PAGE = os.sysconf("SC_PAGE_SIZE")
BATCH_SYNAPSES = 1 << 24                   # synapses of all samples side by side in one network (auto_batch)
# glibc malloc of the worker and its forked Lava processes: arrays over 1 MiB get their own
# mapping, returned to the system when freed. By default the threshold grows with freed blocks
# (to 32 MiB), so each LIF process's per-tick int64 temporaries stayed resident: k-WTA at D 384
# (20 M neurons) peaked at 14.7 GiB, 12.9 GiB with this (the same speed at depth 1).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 20)}
# Peak PSS of a worker's process tree, fitted (+10 %) to runs at D 384 (benchmarks/test_bench_lava_large.py):
# depth 1 SDSA 2.5 GiB, depth 4 SDSA 9.9 GiB (418 M synapses, 1.3 M neurons, 160 processes),
# depth 4 k-WTA 12.9 GiB (486 M synapses, 20 M neurons, 229 processes).
BYTES_PER_SYNAPSE = 22.0     # each Sparse process's int32 copies (8 B kept; clip + truncate on tick 1: ~24 B)
BYTES_PER_PROCESS = 12 * 2**20             # a forked Python per Lava process
BYTES_PER_NEURON = 64.0                    # LIF state and its int64 temporaries, messages (2 slots)


def _shm_entries() -> set[str]:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL every process of the worker's session, then reap the worker."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _remove_segments(log_file: Path, before: set[str]) -> None:
    """Unlink the segments the worker logged that are new since ``before`` and still present."""
    if not log_file.exists():
        return
    logged = {line.strip() for line in log_file.read_text().splitlines() if line.strip()}
    for name in (logged & _shm_entries()) - before:
        try:
            (SHM / name).unlink()
        except OSError:
            pass


def _error_text(stderr: str) -> str:
    """The most telling lines of a worker's stderr: the exception lines, else the tail."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.strip() for line in lines
              if ("Error" in line or "Exception" in line) and not line.startswith(" ")]
    picked = errors[-3:] if errors else lines[-5:]
    return " | ".join(dict.fromkeys(picked)) or "(no output)"


def _pss(pid: int) -> tuple[int, int]:
    """(proportional set size, its anonymous + shared-memory part) of one process, bytes; (0, 0) if gone.

    PSS splits pages shared between processes (Lava forks every OS process from the
    worker) among them, so the sum over a process tree is its real footprint. The
    second figure leaves out file pages (the memory-mapped weights: page cache, which
    the kernel can drop and re-read)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:                     # "Pss_Anon:   1234 kB" (the first line is the address range)
                key, *rest = line.split()
                if key.endswith(":") and len(rest) == 2 and rest[1] == "kB":
                    fields[key[:-1]] = int(rest[0]) * 1024
    except (OSError, ValueError):
        return 0, 0
    return fields.get("Pss", 0), fields.get("Pss_Anon", 0) + fields.get("Pss_Shmem", 0)


def _rss(pid: int) -> int:
    """Resident set size of one process, bytes (``/proc/PID/statm``: cheap); 0 if gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class TreeMemory:
    """Peak PSS of this process plus a worker's process tree.

    ``poll`` (every few tenths of a second) sums the tree's RSS (``statm``: microseconds per
    process). RSS counts the pages Lava's forked processes share once per process, so only
    PSS (``smaps_rollup``: a page-table walk, ~1–3 ms per process) gives the footprint; it is
    sampled when the RSS sum reaches a new high (memory being allocated: the peak is then
    seen when it happens, e.g. the first tick's weight conversion in every Sparse process)
    and at least every ``MEMORY_SAMPLE_S``·10, spaced so PSS sampling takes ≤ 25 % of a core."""

    def __init__(self) -> None:
        self.peak = self.peak_anon = self.peak_worker = self.processes = 0
        self.samples, self.seconds = 0, 0.0
        self._tree: list[int] = []
        self._tree_at = self._pss_at = -1e9
        self._rss_high = 0
        self._cost = 0.0

    def poll(self, worker_pid: int, now: float) -> None:
        import psutil

        if now - self._tree_at >= MEMORY_SAMPLE_S:
            try:
                self._tree = [worker_pid] + [c.pid for c in psutil.Process(worker_pid).children(recursive=True)]
            except psutil.Error:
                return
            self._tree_at = now
            self.processes = max(self.processes, len(self._tree))
        rss = sum(_rss(pid) for pid in self._tree)
        rising = rss > self._rss_high * 1.005
        self._rss_high = max(self._rss_high, rss)
        if now - self._pss_at < max(4 * self._cost, MEMORY_SAMPLE_S / 4):
            return
        if rising or now - self._pss_at >= 10 * MEMORY_SAMPLE_S:
            self.sample()

    def sample(self) -> None:
        t0 = time.monotonic()
        own = _pss(os.getpid())
        worker = [_pss(pid) for pid in self._tree]
        total, anon = own[0] + sum(w[0] for w in worker), own[1] + sum(w[1] for w in worker)
        self.peak, self.peak_anon = max(self.peak, total), max(self.peak_anon, anon)
        self.peak_worker = max(self.peak_worker, sum(w[0] for w in worker))
        self._pss_at = time.monotonic()
        self._cost = self._pss_at - t0
        self.samples, self.seconds = self.samples + 1, self.seconds + self._cost


def supervise(cmd: list[str], workdir: Path, timeout: float, memory: TreeMemory | None = None) -> str:
    """Run a Lava worker command (``python -m ...``; it must log its shared-memory segments to
    ``workdir/shm.txt``) in its own session, under the rules of the module doc; return its stderr.

    Raises :class:`LavaRunError` (with Lava's own message) on a timeout, a Lava process that raised,
    or a non-zero exit. Whatever happens, the worker's process group is killed and reaped and its
    segments removed."""
    err_file, shm_log = workdir / "stderr.txt", workdir / "shm.txt"
    shm_log.unlink(missing_ok=True)
    root = str(Path(__file__).resolve().parents[1])
    env = {**MALLOC_ENV, **os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    shm_before = _shm_entries()
    start, failed_at, reason = time.monotonic(), None, None
    with open(err_file, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, env=env, cwd=root)
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - start > timeout:
                reason = f"timed out after {timeout:g} s"
                break
            if failed_at is None and "Traceback" in err_file.read_text(errors="replace"):
                failed_at = now
            if failed_at is not None and now - failed_at > FAILURE_GRACE_S:
                reason = "a Lava process raised and the runtime did not stop (it never does in lava-nc 0.10)"
                break
            if memory is not None:
                memory.poll(proc.pid, now)
            time.sleep(POLL_S)
    finally:
        with deferred_interrupts():                 # a second signal must not stop the cleanup
            _kill_group(proc)
            _remove_segments(shm_log, shm_before)
    stderr = err_file.read_text(errors="replace")
    if reason is None and proc.returncode != 0:
        reason = f"worker exited with code {proc.returncode}"
    if reason:
        raise LavaRunError(f"Lava run failed ({reason}): {_error_text(stderr)}")
    return stderr


def _run_chunk(graph_shape, weights_dir: Path, inputs: Mapping[str, np.ndarray], workdir: Path, timeout: float,
               record: str, inject_fault: str | None, payloads: bool = False, sequence: int = 1,
               period: int | None = None, memory: TreeMemory | None = None) -> tuple[dict[str, np.ndarray], dict]:
    in_file, out_file, stats_file = workdir / "inputs.npz", workdir / "spikes.npz", workdir / "stats.json"
    np.savez(in_file, **{k: np.asarray(v, bool) for k, v in inputs.items()})
    for f in (out_file, stats_file):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "loihi_export.worker", str(weights_dir), str(in_file), str(out_file),
           "--record", record, "--shm-log", str(workdir / "shm.txt"), "--sequence", str(sequence),
           "--stats", str(stats_file), "--parent-pid", str(os.getpid())]
    if period is not None:
        cmd += ["--period", str(period)]
    if inject_fault:
        cmd += ["--inject-fault", inject_fault]
    if payloads:
        cmd.append("--payloads")
    stderr = supervise(cmd, workdir, timeout, memory)
    if not out_file.exists():
        raise LavaRunError(f"Lava run failed (worker wrote no spikes): {_error_text(stderr)}")
    sizes = {p.name: p.size for p in graph_shape.populations}
    with np.load(out_file, allow_pickle=False) as z:
        spikes = {k: (z[k] if k.startswith(PAYLOAD_PREFIX) else unpack_spikes(z[k], sizes[k])) for k in z.files}
    out_file.unlink()
    return spikes, (json.loads(stats_file.read_text()) if stats_file.exists() else {})


def auto_batch(graph) -> int:
    """Samples side by side in one network: block-diagonal weights multiply the synapses, so
    at most ``BATCH_SYNAPSES`` of them in all (and at most 64 samples); at least 1."""
    return int(max(1, min(64, BATCH_SYNAPSES // max(1, graph.n_synapses))))


def plan(graph, samples: int, batch_size: int | None = None, sequence: int | None = None
         ) -> tuple[int, int, int | None]:
    """(lanes, slots per worker, period) for ``samples`` samples; see ``run_lava``."""
    batch = auto_batch(graph) if batch_size is None else int(batch_size)
    slots = -(-samples // batch)
    if sequence == 1 or slots == 1:
        return batch, 1, None
    period = rest_period(graph)
    if period is None:
        if sequence is not None:
            raise ValueError("sequence > 1: this graph does not come to rest soon enough after its input "
                             "(a LIF with a slowly decaying current, or a cycle); use sequence=1")
        return batch, 1, None
    return batch, (slots if sequence is None else min(int(sequence), slots)), period


def estimate_bytes(graph, batch: int, run_ticks: int) -> int:
    """Peak PSS of a worker's process tree (bytes) for ``batch`` lanes running ``run_ticks``
    ticks: the measured costs per synapse, neuron and Lava OS process (constants above)
    plus the recordings (a bit per neuron and tick, in the recorder and read back)."""
    n_procs = 2 * len(graph.populations) + len(graph.projections) + 1
    neurons = batch * sum(p.size for p in graph.populations)
    return int(BYTES_PER_SYNAPSE * batch * graph.n_synapses + BYTES_PER_PROCESS * n_procs
               + BYTES_PER_NEURON * neurons + neurons * run_ticks / 4)


def _available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def run_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, timeout: float = 300.0,
             batch_size: int | None = None, sequence: int | None = None, record: str = "packed",
             inject_fault: str | None = None, payloads: dict | None = None,
             stats: dict | None = None, check_memory: bool = True) -> dict[str, np.ndarray]:
    """Spikes of every population from a Lava ``Loihi2SimCfg`` fixed-point run.

    ``inputs``: ``{input population: bool (batch, ≤timesteps, size)}``. Returns
    ``{population: bool (batch, graph.ticks, size)}`` — the format of
    ``sim.reference.simulate_dense``.

    Layout: ``batch_size`` samples side by side in one network (block-diagonal weights;
    default ``auto_batch``: 64 for small graphs, 1 for one of more than ``BATCH_SYNAPSES``
    synapses), and ``sequence`` such groups one after another in the same network, reset
    between them (``build.rest_period``; default: every group in one worker when the graph
    comes to rest after its input, else 1 = a fresh worker per group). Each worker is a
    fresh process allowed ``timeout`` seconds. ``record``: ``"packed"`` (default) or
    ``"monitor"`` (Lava's Monitor). ``payloads``: a dict to fill with graded populations'
    payloads, ``{population: int32 (batch, ticks, size)}`` = ``simulate_dense``'s
    ``payloads``. ``stats``: a dict to fill with the layout, seconds (total, per sample, per
    worker phase) and the peak PSS of this process plus the worker's tree (``TreeMemory``).
    With ``check_memory``, a run whose ``estimate_bytes`` exceeds the available memory is
    refused before it starts (MemoryError). Raises :class:`LavaRunError` on failure or
    timeout, ValueError for a non-``loihi`` graph or bad arguments.
    """
    require_loihi(graph)
    batch = check_inputs(graph, inputs)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if sequence is not None and sequence < 1:
        raise ValueError(f"sequence must be ≥ 1, got {sequence}")
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
    if inject_fault is not None and inject_fault not in FAULT_KINDS:
        raise ValueError(f"inject_fault must be None or one of {FAULT_KINDS}, got {inject_fault!r}")
    if not 0 < timeout < math.inf:                  # NaN fails both: it would never time out
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    lanes, slots, period = plan(graph, batch, batch_size, sequence)
    lanes = min(lanes, batch)
    need = estimate_bytes(graph, lanes, (slots - 1) * (period or 0) + graph.ticks)
    available = _available_bytes() if check_memory else need
    if need > available:
        raise MemoryError(f"a Lava run of this graph ({graph.n_synapses:,} synapses, {lanes} sample(s) side by side) "
                          f"needs about {need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available")
    memory = TreeMemory() if stats is not None else None
    parts: list[dict[str, np.ndarray]] = []
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    with interrupts_as_exceptions(), tempfile.TemporaryDirectory(prefix="spikeformer-lava-") as tmp:
        workdir = Path(tmp)
        weights_dir = LavaWeights.save(graph, workdir / "weights")
        phases["weights_s"] = time.perf_counter() - t0
        step = lanes * slots
        for lo in range(0, batch, step):
            chunk = {p.name: np.asarray(inputs[p.name])[lo:lo + step] for p in graph.inputs}
            n = min(step, batch - lo)
            seq = min(slots, -(-n // lanes))
            spikes, worker_stats = _run_chunk(graph, weights_dir, chunk, workdir, timeout, record, inject_fault,
                                              payloads is not None, seq, period if seq > 1 else None, memory)
            parts.append(spikes)
            for k, v in worker_stats.items():
                if k.endswith("_s"):
                    phases[k] = phases.get(k, 0.0) + v
    seconds = time.perf_counter() - t0
    if stats is not None:
        stats.update(samples=batch, workers=len(parts), batch=lanes, sequence=slots, period=period,
                     seconds=seconds, seconds_per_sample=seconds / batch, phases=phases,
                     estimate_bytes=need, peak_pss_bytes=memory.peak, peak_worker_pss_bytes=memory.peak_worker,
                     peak_anon_bytes=memory.peak_anon, processes=memory.processes,
                     memory_samples=memory.samples, memory_sample_s=memory.seconds / max(1, memory.samples))

    def joined(key: str) -> np.ndarray:
        return parts[0].pop(key) if len(parts) == 1 else np.concatenate([part.pop(key) for part in parts])

    if payloads is not None:
        payloads.update({p.name: joined(PAYLOAD_PREFIX + p.name) for p in graph.populations if p.is_graded})
    return {p.name: joined(p.name) for p in graph.populations}
