"""AER event traces: exact round trips, Perfetto JSON that loads back, bounded-memory streaming."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sim.engine.simulate import simulate
from sim.engine.trace import TraceError, events_from_spikes, read_trace, write_perfetto, write_trace
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input


def busy_graph(n_in=200, n_out=300, timesteps=20, seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.integers(-20, 60, (n_out, n_in)) * 2 * (rng.random((n_out, n_in)) < 0.1)).astype(np.int16)
    pops = (Population("in", n_in, Input()), Population("out", n_out, CubaLIF(4095, 512, 30), depth=1))
    return AerGraph("loihi", pops, (Projection.from_dense("w", "in", "out", w),), None, timesteps)


def test_hdf5_trace_round_trip_equals_spikes(tmp_path):
    g = busy_graph()
    x = np.random.default_rng(1).random((5, 20, 200)) < 0.3
    res = simulate(g, {"in": x})
    path, n = write_trace(tmp_path / "t.h5", g, res.spikes, samples_per_chunk=2)
    names, ev = read_trace(path)
    assert names == ["in", "out"] and n == len(ev) == res.events
    back = {p.name: np.zeros_like(res.spikes[p.name]) for p in g.populations}
    for e in ev:
        back[names[e["population"]]][e["sample"], int(e["time"]), e["neuron"]] = True
    for p in g.populations:
        np.testing.assert_array_equal(back[p.name], res.spikes[p.name])


def test_perfetto_json_follows_trace_event_format(tmp_path):
    g = busy_graph()
    res = simulate(g, {"in": np.random.default_rng(2).random((2, 20, 200)) < 0.2})
    ev = events_from_spikes(g, res.spikes)
    data = json.loads(write_perfetto(tmp_path / "t.json", [p.name for p in g.populations], ev).read_text())
    events = data["traceEvents"]
    spikes = [e for e in events if e["ph"] == "i"]
    meta = [e for e in events if e["ph"] == "M"]
    assert len(spikes) == res.events
    for e in spikes:                                  # required fields of instant events
        assert {"name", "ph", "ts", "pid", "tid", "s"} <= set(e) and e["s"] == "t" and e["ts"] >= 0
    tracks = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert set(tracks.values()) == {"in", "out"} and len(tracks) == 2 * 2     # one track per population per sample
    by_track = {}
    for e in spikes:
        by_track.setdefault(tracks[(e["pid"], e["tid"])], 0)
        by_track[tracks[(e["pid"], e["tid"])]] += 1
    assert by_track["out"] == int(res.spike_counts["out"].sum())


def test_unwritable_trace_paths_are_refused(tmp_path):
    g = busy_graph()
    spikes = simulate(g, {"in": np.zeros((1, 20, 200), bool)}).spikes
    with pytest.raises(TraceError, match="does not exist"):
        write_trace(tmp_path / "missing" / "t.h5", g, spikes)
    with pytest.raises(TraceError, match="is a directory"):
        write_trace(tmp_path, g, spikes)
    with pytest.raises(TraceError, match=r"\.h5"):
        write_trace(tmp_path / "t.csv", g, spikes)


STREAM = """
import sys, numpy as np
from benchmarks.common import proc_status, reset_peak   # this process's own peak, not ru_maxrss (a parent's carries over)
sys.path.insert(0, "tests/engine_ir")
from test_trace import busy_graph
from sim.engine.trace import stream_simulation, read_chunks
g = busy_graph(n_in=2000, n_out=2000, timesteps=100)
x = np.random.default_rng(0).random((64, 100, 2000)) < 0.5
stream_simulation(g, {"in": x[:2]}, sys.argv[1] + ".warm.h5", samples_per_chunk=2)   # compile, warm caches
base = proc_status("VmRSS")
assert reset_peak()                                    # VmHWM := VmRSS: the peak of the run below
n = stream_simulation(g, {"in": x}, sys.argv[1], samples_per_chunk=2)
peak = proc_status("VmHWM")
total = sum(len(c) for c in read_chunks(sys.argv[1])[1])
print(n, total, (peak - base) / 2**20)
"""


def test_ten_million_events_stream_in_bounded_memory(tmp_path):
    out = subprocess.run([sys.executable, "-c", STREAM, str(tmp_path / "big.h5")], capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    n, total, growth_mib = out.stdout.split()
    assert int(n) == int(total) >= 10_000_000
    assert float(growth_mib) <= 200, f"peak memory grew by {growth_mib} MiB"
    print(f"streamed {int(n):,} events, peak RSS growth {float(growth_mib):.0f} MiB")
