"""Run an AER graph in Lava safely: a worker process per chunk, a timeout, full cleanup.

Lava runs each process in its own OS process, and a process model that raises
can leave the runtime waiting forever. So every run happens in a worker
(``python -m loihi_export.worker``) started in its own session; the parent

* waits at most ``timeout`` seconds, and stops early when a Lava child prints a
  traceback and the worker does not exit within a grace period;
* on any failure kills the worker's whole process group, removes the POSIX
  shared-memory segments that appeared in /dev/shm during the run, and raises
  :class:`LavaRunError` carrying Lava's own message (the end of the worker's stderr);
* on success also reaps the process group, so nothing is left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from loihi_export.errors import LavaRunError
from sim.io import save_graph
from sim.ir import AerGraph
from sim.reference import check_inputs

SHM = Path("/dev/shm")
FAILURE_GRACE_S = 5.0


def _shm_entries() -> set[str]:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _error_text(stderr: str) -> str:
    """The most telling lines of a worker's stderr: the exception lines, else the tail."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    errors = [l.strip() for l in lines if ("Error" in l or "Exception" in l) and not l.startswith(" ")]
    picked = errors[-3:] if errors else lines[-5:]
    return " | ".join(dict.fromkeys(picked)) or "(no output)"


def _run_chunk(graph_file: Path, inputs: Mapping[str, np.ndarray], workdir: Path, timeout: float,
               inject_fault: bool) -> dict[str, np.ndarray]:
    in_file, out_file, err_file = workdir / "inputs.npz", workdir / "spikes.npz", workdir / "stderr.txt"
    np.savez(in_file, **{k: np.asarray(v, bool) for k, v in inputs.items()})
    out_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "loihi_export.worker", str(graph_file), str(in_file), str(out_file)]
    if inject_fault:
        cmd.append("--inject-fault")
    shm_before = _shm_entries()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    with open(err_file, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, env=env)
    start, failed_at, reason = time.monotonic(), None, None
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - start > timeout:
                reason = f"timed out after {timeout:g} s"
                break
            if failed_at is None and "Traceback" in err_file.read_text(errors="replace"):
                failed_at = now
            if failed_at is not None and now - failed_at > FAILURE_GRACE_S:
                reason = "a Lava process raised and the runtime did not stop"
                break
            time.sleep(0.2)
    finally:
        _kill_group(proc)
        for name in _shm_entries() - shm_before:
            try:
                (SHM / name).unlink()
            except OSError:
                pass
    stderr = err_file.read_text(errors="replace")
    if reason is None and proc.returncode != 0:
        reason = f"worker exited with code {proc.returncode}"
    if reason is None and not out_file.exists():
        reason = "worker wrote no spikes"
    if reason:
        raise LavaRunError(f"Lava run failed ({reason}): {_error_text(stderr)}")
    with np.load(out_file, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def run_lava(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, timeout: float = 600.0,
             batch_size: int = 64, inject_fault: bool = False) -> dict[str, np.ndarray]:
    """Spikes of every population from Lava's Loihi2SimCfg fixed-point run.

    Returns ``{name: bool (batch, graph.ticks, size)}`` (the format of
    ``sim.reference.simulate_dense``). Samples run ``batch_size`` at a time, each
    chunk in a fresh worker with ``timeout`` seconds.
    """
    if graph.numerics != "loihi":
        raise ValueError(f"Lava export needs numerics='loihi' (bit-accurate fixed point); graph has '{graph.numerics}'")
    batch = check_inputs(graph, inputs)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    parts: list[dict[str, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="spikeformer-lava-") as tmp:
        workdir = Path(tmp)
        graph_file = save_graph(graph, workdir / "graph.aer.npz")
        for lo in range(0, batch, batch_size):
            chunk = {k: np.asarray(v)[lo:lo + batch_size] for k, v in inputs.items()}
            parts.append(_run_chunk(graph_file, chunk, workdir, timeout, inject_fault))
    return {p.name: np.concatenate([part[p.name] for part in parts]) for p in graph.populations}
