"""Execution, inside a throw-away process: ``python -m loihi_export.worker GRAPH INPUTS OUT [--inject-fault]``.

Builds the network (``build.to_lava``), runs ``graph.ticks`` steps with
``Loihi2SimCfg(select_tag="fixed_pt")``, writes the monitored spikes to OUT
(npz, {population: bool (batch, ticks, size)}) and always stops the runtime.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np


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


def main(argv: list[str]) -> int:
    graph_file, inputs_file, out_file, *flags = argv
    from loihi_export.build import read_spikes, to_lava
    from loihi_export.compat import import_lava
    from sim.io import load_graph

    import_lava()
    report_child_failures()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    graph = load_graph(graph_file)
    with np.load(inputs_file, allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    net = to_lava(graph, inputs)
    if "--inject-fault" in flags:
        from loihi_export.faults import FaultySink
        first = next(p for p in graph.populations if p.kind == "lif")
        sink = FaultySink(shape=(net.batch * first.size,))
        net.processes[first.name].s_out.connect(sink.s_in)
        net.extra.append(sink)
    anchor = next(iter(net.processes.values()))
    try:
        anchor.run(condition=RunSteps(num_steps=graph.ticks), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        spikes = read_spikes(net)
        models = sorted({type(p).__name__ + ":" + getattr(p, "model_class", type(None)).__name__
                         for p in list(net.processes.values()) + list(net.connections.values())})
        print("lava models:", ", ".join(models), file=sys.stderr, flush=True)
    finally:
        anchor.stop()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out_file)), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **spikes)
    os.replace(tmp, out_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
