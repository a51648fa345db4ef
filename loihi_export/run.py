"""Run an AER graph in Lava safely: a worker process per chunk, a timeout, full cleanup.

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
* on success does the same reaping and cleanup, so nothing is left behind.
"""
from __future__ import annotations

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
    require_loihi,
)
from loihi_export.errors import LavaRunError
from loihi_export.worker import PAYLOAD_PREFIX
from sim.io import save_graph
from sim.ir import AerGraph
from sim.reference import check_inputs

SHM = Path("/dev/shm")
FAILURE_GRACE_S = 2.0
POLL_S = 0.1
FAULT_KINDS = ("raise", "float-lif")       # see loihi_export.procs.faults


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


def _run_chunk(graph_file: Path, inputs: Mapping[str, np.ndarray], workdir: Path, timeout: float,
               record: str, inject_fault: str | None, payloads: bool = False) -> dict[str, np.ndarray]:
    in_file, out_file = workdir / "inputs.npz", workdir / "spikes.npz"
    err_file, shm_log = workdir / "stderr.txt", workdir / "shm.txt"
    np.savez(in_file, **{k: np.asarray(v, bool) for k, v in inputs.items()})
    for f in (out_file, shm_log):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "loihi_export.worker", str(graph_file), str(in_file), str(out_file),
           "--record", record, "--shm-log", str(shm_log)]
    if inject_fault:
        cmd += ["--inject-fault", inject_fault]
    if payloads:
        cmd.append("--payloads")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
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
            time.sleep(POLL_S)
    finally:
        _kill_group(proc)
        _remove_segments(shm_log, shm_before)
    stderr = err_file.read_text(errors="replace")
    if reason is None and proc.returncode != 0:
        reason = f"worker exited with code {proc.returncode}"
    if reason is None and not out_file.exists():
        reason = "worker wrote no spikes"
    if reason:
        raise LavaRunError(f"Lava run failed ({reason}): {_error_text(stderr)}")
    with np.load(out_file, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def run_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, timeout: float = 300.0,
             batch_size: int = 64, record: str = "packed",
             inject_fault: str | None = None, payloads: dict | None = None) -> dict[str, np.ndarray]:
    """Spikes of every population from a Lava ``Loihi2SimCfg`` fixed-point run.

    ``inputs``: ``{input population: bool (batch, ≤timesteps, size)}``. Returns
    ``{population: bool (batch, graph.ticks, size)}`` — the format of
    ``sim.reference.simulate_dense``. Samples run ``batch_size`` at a time, each
    chunk in a fresh worker process allowed ``timeout`` seconds. ``record``:
    ``"packed"`` (fast ``SpikeRecorder``) or ``"monitor"`` (Lava ``Monitor``s; same
    spikes, slow to read back). ``inject_fault`` (``"raise"`` or ``"float-lif"``)
    adds a failing process, for testing. ``payloads`` (a dict) is filled with every
    graded population's payloads, int32 (batch, ticks, size) — the format of
    ``simulate_dense``'s ``payloads`` (slow to read back: one message per value). Raises :class:`LavaRunError` on failure
    or timeout, ValueError for a non-``loihi`` graph or bad arguments.
    """
    require_loihi(graph)
    batch = check_inputs(graph, inputs)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if record not in RECORD_MODES:
        raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
    if inject_fault is not None and inject_fault not in FAULT_KINDS:
        raise ValueError(f"inject_fault must be None or one of {FAULT_KINDS}, got {inject_fault!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    parts: list[dict[str, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="spikeformer-lava-") as tmp:
        workdir = Path(tmp)
        graph_file = save_graph(graph, workdir / "graph.aer.npz")
        for lo in range(0, batch, batch_size):
            chunk = {p.name: np.asarray(inputs[p.name])[lo:lo + batch_size] for p in graph.inputs}
            parts.append(_run_chunk(graph_file, chunk, workdir, timeout, record, inject_fault,
                                    payloads is not None))
    if payloads is not None:
        payloads.update({p.name: np.concatenate([part[PAYLOAD_PREFIX + p.name] for part in parts])
                         for p in graph.populations if p.kind == "graded"})
    return {p.name: np.concatenate([part[p.name] for part in parts]) for p in graph.populations}
