"""Run a netx HDF5 file the way lava-dl deploys it: ``netx.hdf5.Network`` in Lava, fixed point.

``run_netx`` (parent) hands chunks of samples to a throw-away worker
(``python -m loihi_export.netx.run``), supervised like every Lava run here
(``run.supervise``: timeout, process group killed, shared memory removed). The worker loads
the file once per sample — ``lava.lib.dl.netx.hdf5.Network(net_config=path)``, lava-dl's own
loader — and runs the samples side by side in one Lava runtime under
``Loihi2SimCfg(select_tag="fixed_pt")``:

* sample ``i``'s input spikes → an ``io.source.RingBuffer`` (column ``t`` is sent at Lava tick
  ``t + 1``) → the network's ``inp`` (layer 1's synapse, see ``netx_export``);
* every layer's neuron ``s_out`` → a ``procs.recorder.SpikeRecorder`` (Lava tick ``t + 1`` →
  row ``t``), so row ``t`` is the engine's tick ``t``;
* every network's ``out`` → one shared ``io.sink.RingBuffer`` (buffer 1, never read): Lava
  compiles the processes connected to the one it is started from, and this ties the samples'
  networks into one graph;
* after the run the worker checks that Lava chose the bit-accurate models
  (``worker.check_processes``), and always calls ``stop()``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from loihi_export.protocol import NETX_WORKER_MODULE

LANES = 8                      # samples (netx networks) per worker run


def default_ticks(path: str | Path) -> int:
    """Ticks until the last layer has seen all of the input: timesteps + Σ per layer (1 + delay)."""
    import h5py

    with h5py.File(path, "r") as f:
        layers = [f["layer"][str(k)] for k in range(len(f["layer"]))]
        lag = sum(1 + int(g["delay"][()]) if "delay" in g else 1 for g in layers if "weight" in g)
        return int(f.attrs["timesteps"]) + lag


def run_netx(path: str | Path, inputs: np.ndarray, ticks: int | None = None, *, timeout: float = 300.0,
             lanes: int = LANES) -> dict[str, np.ndarray]:
    """Spikes of every dense layer of the netx file ``path`` run in Lava:
    ``{population name: bool (samples, ticks, size)}`` (names from ``netx_export.layer_names``).

    ``inputs``: bool (samples, ≤ ticks, input size). ``ticks``: default ``default_ticks``.
    Raises LavaRunError on failure or timeout (``run.supervise``)."""
    from loihi_export.netx.export import layer_names
    from loihi_export.protocol import LavaRunError
    from loihi_export.run.supervise import error_text, supervise

    path = Path(path).resolve()
    names = layer_names(path)
    ticks = default_ticks(path) if ticks is None else int(ticks)
    x = np.asarray(inputs, bool)
    if x.ndim != 3 or x.shape[1] > ticks:
        raise ValueError(f"inputs must be (samples, ≤{ticks} ticks, neurons), got shape {x.shape}")
    if timeout <= 0 or lanes < 1:
        raise ValueError(f"timeout must be > 0 and lanes ≥ 1, got {timeout}, {lanes}")
    parts: list[dict[str, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="spikeformer-netx-") as tmp:
        workdir = Path(tmp)
        in_file, out_file = workdir / "inputs.npy", workdir / "spikes.npz"
        for lo in range(0, len(x), lanes):
            np.save(in_file, x[lo:lo + lanes])
            out_file.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", NETX_WORKER_MODULE, str(path), str(in_file), str(out_file),
                   "--ticks", str(ticks), "--shm-log", str(workdir / "shm.txt")]
            stderr = supervise(cmd, workdir, timeout)
            if not out_file.exists():
                raise LavaRunError(f"Lava run failed (worker wrote no spikes): {error_text(stderr)}")
            with np.load(out_file, allow_pickle=False) as z:
                parts.append({names[int(k)]: z[k] for k in z.files})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {NETX_WORKER_MODULE}")
    ap.add_argument("net")
    ap.add_argument("inputs")
    ap.add_argument("out")
    ap.add_argument("--ticks", type=int, required=True)
    ap.add_argument("--shm-log")
    args = ap.parse_args(argv)

    from loihi_export.compat import import_netx
    from loihi_export.worker.guard import CHANNEL_SLOTS, check_processes, log_shared_memory, report_child_failures

    netx = import_netx()
    report_child_failures()
    if args.shm_log:
        log_shared_memory(args.shm_log)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer

    from loihi_export.procs.recorder import SpikeRecorder

    x = np.load(args.inputs)
    record_dir = tempfile.mkdtemp(prefix="record-", dir=os.path.dirname(os.path.abspath(args.out)))
    sources, nets, recorders = [], [], []
    for i, sample in enumerate(x):
        net = netx.hdf5.Network(net_config=args.net)
        data = np.zeros((sample.shape[1], args.ticks), np.int32)
        data[:, :sample.shape[0]] = sample.T
        src = RingBuffer(data=data)
        src.s_out.connect(net.inp)
        recs = []
        for k, layer in enumerate(net.layers, start=1):      # file layer 0 is the input: no process
            r = SpikeRecorder(size=int(np.prod(layer.neuron.s_out.shape)), ticks=args.ticks,
                              path=os.path.join(record_dir, f"{i}.{k}.npy"))
            layer.neuron.s_out.connect(r.s_in)
            recs.append((k, r))
        sources.append(src)
        nets.append(net)
        recorders.append(recs)
    tie = Sink(shape=nets[0].out.shape, buffer=1)
    for net in nets:
        net.out.connect(tie.a_in)
    anchor = sources[0]
    try:
        anchor.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt"),
                              compile_config={"pypy_channel_size": CHANNEL_SLOTS})
        anchor.run(condition=RunSteps(num_steps=args.ticks))
        procs = [p for net in nets for layer in net.layers
                 for p in (layer.neuron, layer.synapse, getattr(layer, "synapse_rec", None)) if p is not None]
        print("lava models:", check_processes(procs), file=sys.stderr, flush=True)
        spikes = {str(k): np.stack([dict(recs)[k].spikes() for recs in recorders]) for k, _ in recorders[0]}
    finally:
        anchor.stop()
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **spikes)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
