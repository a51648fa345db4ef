"""Execution inside a throw-away process (started by ``run.runner.run_lava``)::

    python -m loihi_export.worker.main WEIGHTS INPUTS OUT [--record packed|monitor] [--payloads]
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
every Lava process (the worker leads its own session, ``run.runner._run_chunk``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from loihi_export.protocol import PAYLOAD_PREFIX, WORKER_MODULE
from loihi_export.worker.guard import (
    CHANNEL_SLOTS,
    check_models,
    die_with_parent,
    log_shared_memory,
    report_child_failures,
)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {WORKER_MODULE}")
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
    from loihi_export.build.network import to_lava
    from loihi_export.build.readout import read_payloads, read_spikes
    from loihi_export.build.weights import LavaWeights
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
        from loihi_export.build.faults import add_fault
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
