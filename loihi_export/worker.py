"""Execution inside a throw-away process (started by ``run.run_lava``)::

    python -m loihi_export.worker GRAPH INPUTS OUT [--record packed|monitor] [--payloads]
                                  [--shm-log FILE] [--inject-fault raise|float-lif]

Loads the AER graph file (``sim.io``) and the input npz, builds the network
(``build.to_lava``), runs ``graph.ticks`` steps with
``Loihi2SimCfg(select_tag="fixed_pt")``, checks that Lava picked the bit-accurate
models, writes ``{population: bool (batch, ticks, size)}`` to OUT (npz, atomically;
with ``--payloads`` also ``{"payload:" + graded population: int32 (batch, ticks, size)}``)
and always calls ``stop()``. Every POSIX shared-memory segment Lava creates is
appended to the ``--shm-log`` file, so the parent can remove exactly those if
this process has to be killed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loihi_export.build import LavaNetwork

# Lava process → the model it must run for bit-exact Loihi numerics.
EXPECTED_MODELS = {"LIF": "PyLifModelBitAcc", "Sparse": "PySparseModelBitAcc",
                   "DelaySparse": "PyDelaySparseModelBitAcc", "RingBuffer": "PySendModelFixed",
                   "GradedVec": "PyGradedVecModelFixed"}
PAYLOAD_PREFIX = "payload:"


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


def check_models(net: LavaNetwork) -> str:
    """Raise RuntimeError unless every process ran its bit-accurate model; return a summary."""
    chosen = {}
    for proc in list(net.processes.values()) + list(net.connections.values()):
        chosen[type(proc).__name__] = getattr(getattr(proc, "model_class", None), "__name__", "?")
    wrong = {k: v for k, v in chosen.items() if EXPECTED_MODELS.get(k, v) != v}
    if wrong:
        raise RuntimeError(f"Lava selected {wrong}, expected {EXPECTED_MODELS} (not bit-accurate)")
    return ", ".join(f"{k}:{v}" for k, v in sorted(chosen.items()))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m loihi_export.worker")
    ap.add_argument("graph")
    ap.add_argument("inputs")
    ap.add_argument("out")
    ap.add_argument("--record", default="packed")
    ap.add_argument("--payloads", action="store_true")
    ap.add_argument("--shm-log")
    ap.add_argument("--inject-fault")
    args = ap.parse_args(argv)

    from loihi_export.build import read_payloads, read_spikes, to_lava
    from loihi_export.compat import import_lava
    from sim.io import load_graph

    import_lava()
    report_child_failures()
    if args.shm_log:
        log_shared_memory(args.shm_log)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    graph = load_graph(args.graph)
    with np.load(args.inputs, allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    net = to_lava(graph, inputs, record=args.record, payloads=args.payloads)
    if args.inject_fault:
        from loihi_export.procs.faults import add_fault
        add_fault(net, args.inject_fault)
    anchor = next(iter(net.processes.values()))
    try:
        anchor.run(condition=RunSteps(num_steps=graph.ticks), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        print("lava models:", check_models(net), file=sys.stderr, flush=True)
        spikes = read_spikes(net)
        if args.payloads:
            spikes.update({PAYLOAD_PREFIX + k: v for k, v in read_payloads(net).items()})
    finally:
        anchor.stop()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **spikes)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
