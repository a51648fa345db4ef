"""Execution inside a throw-away process (started by ``run.run_lava``)::

    python -m loihi_export.worker WEIGHTS INPUTS OUT [--record packed|monitor] [--payloads]
                                  [--sequence S] [--period P] [--stats FILE]
                                  [--shm-log FILE] [--parent-pid PID] [--inject-fault raise|float-lif]

WEIGHTS is a ``build.LavaWeights`` directory (the graph's shape and its Lava weight
matrices, memory-mapped: they stay in the page cache, shared with every Lava OS
process, instead of being copied into this one). Reads the input npz, builds the
network (``build.to_lava``: the samples in ``S`` slots ``P`` ticks apart), runs it
with ``Loihi2SimCfg(select_tag="fixed_pt")``, checks that Lava picked the
bit-accurate models and that every slot started at rest, writes ``{population:
bool (samples, ticks, size)}`` to OUT (npz, atomically; bits packed along the neuron
axis, ``build.unpack_spikes``; with ``--payloads`` also
``{"payload:" + graded population: int32 (samples, ticks, size)}``) and always
calls ``stop()``. ``--stats`` gets the seconds of each phase (JSON). Every POSIX
shared-memory segment Lava creates is appended to the ``--shm-log`` file, so the
parent can remove exactly those if this process has to be killed.

If the parent dies without cleaning up (SIGKILL), the worker cleans up itself:
with ``--parent-pid`` it asks the kernel for SIGTERM when its parent dies
(Linux ``PR_SET_PDEATHSIG``), and on SIGTERM, SIGHUP or SIGINT it unlinks the
segments of its ``--shm-log``, removes the parent's work directory (the folder
of OUT) when the parent is gone, and SIGKILLs its own process group: itself and
every Lava process (the worker leads its own session, ``run._run_chunk``).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loihi_export.build import LavaNetwork

# Lava process → the model it must run for bit-exact Loihi numerics.
EXPECTED_MODELS = {"LIF": "PyLifModelBitAcc", "LIFReset": "PyLifResetModelBitAcc", "Sparse": "PySparseModelBitAcc",
                   "DelaySparse": "PyDelaySparseModelBitAcc", "RingBuffer": "PySendModelFixed",
                   "GradedVec": "PyGradedVecModelFixed", "Dense": "PyDenseModelBitAcc",
                   "DelayDense": "PyDelayDenseModelBitAcc"}
PAYLOAD_PREFIX = "payload:"
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


def log_shared_memory(log_file: str) -> None:
    """Append the name of every shared-memory segment Lava creates to ``log_file``."""
    from lava.magma.runtime.message_infrastructure.shared_memory_manager import (
        SharedMemoryManager,
    )

    create = SharedMemoryManager.create_shared_memory

    def create_logged(self, size: int):
        handle = create(self, size)
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (handle.name.lstrip("/") + "\n").encode())
        finally:
            os.close(fd)
        return handle

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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m loihi_export.worker")
    ap.add_argument("weights")
    ap.add_argument("inputs")
    ap.add_argument("out")
    ap.add_argument("--record", default="packed")
    ap.add_argument("--payloads", action="store_true")
    ap.add_argument("--sequence", type=int, default=1)
    ap.add_argument("--period", type=int)
    ap.add_argument("--stats")
    ap.add_argument("--channel-slots", type=int, default=CHANNEL_SLOTS)
    ap.add_argument("--shm-log")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--inject-fault")
    args = ap.parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid, args.shm_log, os.path.dirname(os.path.abspath(args.out)))

    t0 = time.perf_counter()
    from loihi_export.build import LavaWeights, read_payloads, read_spikes, to_lava
    from loihi_export.compat import import_lava

    import_lava()
    report_child_failures()
    if args.shm_log:
        log_shared_memory(args.shm_log)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    weights = LavaWeights(args.weights)
    with np.load(args.inputs, allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    record_dir = tempfile.mkdtemp(prefix="record-", dir=os.path.dirname(os.path.abspath(args.out)))
    stats: dict = {"import_s": time.perf_counter() - t0}
    t = time.perf_counter()
    net = to_lava(weights.shape, inputs, record=args.record, payloads=args.payloads, sequence=args.sequence,
                  period=args.period, weights=weights, record_dir=record_dir)
    if args.inject_fault:
        from loihi_export.procs.faults import add_fault
        add_fault(net, args.inject_fault)
    stats.update(build_s=time.perf_counter() - t, batch=net.batch, sequence=net.sequence, period=net.period,
                 run_ticks=net.run_ticks)
    anchor = next(iter(net.processes.values()))
    try:
        t = time.perf_counter()
        anchor.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt"),  # compile, fork the processes
                              compile_config={"pypy_channel_size": args.channel_slots})
        stats["compile_start_s"] = time.perf_counter() - t
        t = time.perf_counter()
        anchor.run(condition=RunSteps(num_steps=net.run_ticks))
        stats["run_s"] = time.perf_counter() - t
        print("lava models:", check_models(net), file=sys.stderr, flush=True)
        t = time.perf_counter()
        spikes = read_spikes(net, packed=True)
        if args.payloads:
            spikes.update({PAYLOAD_PREFIX + k: v for k, v in read_payloads(net).items()})
        stats["read_s"] = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        anchor.stop()
        stats["stop_s"] = time.perf_counter() - t
    t = time.perf_counter()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **spikes)
    os.replace(tmp, args.out)
    stats["write_s"] = time.perf_counter() - t
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(stats, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
