"""What keeps a worker process from hanging or leaking: child-failure reports, shared-memory logging and
cleanup, death with the parent, and the check that Lava ran the bit-accurate models."""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loihi_export.build.network import LavaNetwork


# Lava process → the model it must run for bit-exact Loihi numerics.
EXPECTED_MODELS = {"LIF": "PyLifModelBitAcc", "LIFReset": "PyLifResetModelBitAcc", "Sparse": "PySparseModelBitAcc",
                   "DelaySparse": "PyDelaySparseModelBitAcc", "RingBuffer": "PySendModelFixed",
                   "GradedVec": "PyGradedVecModelFixed", "Dense": "PyDenseModelBitAcc",
                   "DelayDense": "PyDelayDenseModelBitAcc"}


# Messages a port-to-port channel can hold (Lava's default: 64, i.e. 64 × 4 bytes per neuron of
# shared memory per connection). LoihiProtocol runs every process through each tick before the
# next, so a channel never holds more than one tick's message; 2 leaves one slot of slack.
CHANNEL_SLOTS = 2


def report_child_failures() -> None:
    """Make every Lava OS process print its traceback to stderr when it fails.

    Lava's ``SystemProcess`` sends a child's exception through a pipe the runtime
    only reads on join; when the runtime hangs waiting for the others, the
    message is lost. Printing it lets the parent (``run.py``) see it and stop.
    """
    import multiprocessing as mp
    import traceback

    from lava.magma.runtime.message_infrastructure.multiprocessing import SystemProcess

    def run(self) -> None:
        try:
            mp.Process.run(self)
            self._cconn.send(None)
        except Exception as e:  # noqa: BLE001 (re-reported, as Lava does)
            tb = traceback.format_exc()
            print(f"Lava process failed:\n{tb}", file=sys.stderr, flush=True)
            self._cconn.send((e, tb))

    SystemProcess.run = run


def _append_name(log_file: str, name: str) -> None:
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (name.lstrip("/") + "\n").encode())
    finally:
        os.close(fd)


def log_shared_memory(log_file: str) -> None:
    """Append the name of every shared-memory segment this process (and its forks) creates to ``log_file``,
    *before* the segment exists: ``multiprocessing.shared_memory`` draws a name (``_make_filename``) and
    then creates it, so a kill between the two leaves nothing unlogged; Lava's ``SharedMemoryManager``
    logs the handle it got as well."""
    import multiprocessing.shared_memory as shared_memory

    from lava.magma.runtime.message_infrastructure.shared_memory_manager import (
        SharedMemoryManager,
    )

    make_name = shared_memory._make_filename
    create = SharedMemoryManager.create_shared_memory

    def make_name_logged() -> str:
        name = make_name()
        _append_name(log_file, name)
        return name

    def create_logged(self, size: int):
        handle = create(self, size)
        _append_name(log_file, handle.name)
        return handle

    shared_memory._make_filename = make_name_logged
    SharedMemoryManager.create_shared_memory = create_logged


PR_SET_PDEATHSIG = 1


def unlink_logged_segments(log_file: str | None) -> None:
    """Unlink every shared-memory segment named in ``log_file`` that still exists."""
    if not log_file or not os.path.exists(log_file):
        return
    with open(log_file) as f:
        names = {line.strip() for line in f if line.strip()}
    for name in names:
        try:
            os.unlink(os.path.join("/dev/shm", name))
        except OSError:
            pass


def die_with_parent(parent_pid: int, shm_log: str | None, workdir: str) -> None:
    """Clean up and SIGKILL this process group on SIGTERM / SIGHUP / SIGINT, or when ``parent_pid`` dies."""
    worker = os.getpid()

    def cleanup(signum: int, frame: object) -> None:
        if os.getpid() == worker:                       # (Lava's forked processes inherit this handler)
            unlink_logged_segments(shm_log)
            if os.getppid() != parent_pid:              # orphaned: nobody else removes the work directory
                shutil.rmtree(workdir, ignore_errors=True)
        if os.getpgrp() == worker:
            os.killpg(worker, signal.SIGKILL)           # this worker and every Lava process it forked
        os.kill(os.getpid(), signal.SIGKILL)

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, cleanup)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (AttributeError, OSError):                   # not Linux: the parent's cleanup only
        pass
    if os.getppid() != parent_pid:                      # the parent died before prctl took effect
        cleanup(signal.SIGTERM, None)


def check_models(net: LavaNetwork) -> str:
    """Raise RuntimeError unless every process ran its bit-accurate model; return a summary."""
    return check_processes(list(net.processes.values()) + list(net.connections.values()))


def check_processes(procs) -> str:
    """``check_models`` for any Lava processes (after a run)."""
    chosen = {}
    for proc in procs:
        chosen[type(proc).__name__] = getattr(getattr(proc, "model_class", None), "__name__", "?")
    wrong = {k: v for k, v in chosen.items() if EXPECTED_MODELS.get(k, v) != v}
    if wrong:
        raise RuntimeError(f"Lava selected {wrong}, expected {EXPECTED_MODELS} (not bit-accurate)")
    return ", ".join(f"{k}:{v}" for k, v in sorted(chosen.items()))

