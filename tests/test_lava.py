"""Lava export: the 3.11 shim, spikes equal to the reference, failures as errors (never hangs)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest

from loihi_export.errors import LavaRunError
from loihi_export.run import run_lava
from sim.ir import AerGraph, Population, Projection, Readout
from sim.reference import simulate_dense

SHIM_CHECK = """
import sys
if sys.argv[1] == "shim":
    from loihi_export import compat
    compat.apply(); compat.apply()          # idempotent
try:
    import lava.magma.compiler.var_model
except ValueError as e:
    print("IMPORT-FAILED", e); sys.exit(3)
import numpy as np
from lava.proc.lif.process import LIF
from lava.proc.io.source import RingBuffer
from lava.proc.dense.process import Dense
from lava.proc.monitor.process import Monitor
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
src = RingBuffer(data=np.ones((2, 4), np.int32))
d = Dense(weights=np.array([[100, 0], [0, 100], [100, 100]]))
lif = LIF(shape=(3,), du=4095, dv=0, vth=150)
src.s_out.connect(d.s_in); d.a_out.connect(lif.a_in)
m = Monitor(); m.probe(lif.s_out, 4)
lif.run(condition=RunSteps(num_steps=4), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
print("SPIKES", m.get_data()[lif.name]["s_out"].astype(int).tolist())
lif.stop()
"""


def test_shim_is_needed_on_311_and_makes_lava_run():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    bare = subprocess.run([sys.executable, "-c", SHIM_CHECK, "bare"], capture_output=True, text=True, env=env, timeout=120)
    assert bare.returncode == 3 and "mutable default" in bare.stdout
    shim = subprocess.run([sys.executable, "-c", SHIM_CHECK, "shim"], capture_output=True, text=True, env=env, timeout=120)
    assert shim.returncode == 0, shim.stderr[-2000:]
    # v = 100·64·k accumulates over ticks (dv = 0); crosses 150·64 at the 2nd input tick; both-input neuron every tick
    assert "SPIKES [[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 0, 1]]" in shim.stdout


def feature_graph() -> AerGraph:
    """Small graph exercising delays 1/2/3, several projections into one population, both
    weight-exponent signs, negative weights, du < 4095 (current memory) and dv = 0."""
    rng = np.random.default_rng(7)

    def w(n_post, n_pre, density=0.6):
        m = rng.integers(-60, 128, size=(n_post, n_pre)) * 2
        return np.where(rng.random((n_post, n_pre)) < density, m, 0).astype(np.int16)

    pops = (Population("in", 12, "input"),
            Population("a", 10, "lif", 4095, 512, 90, depth=1),
            Population("b", 8, "lif", 3000, 0, 120, depth=2),
            Population("c", 6, "lif", 2048, 1024, 60, depth=4))
    projs = (Projection.from_dense("in->a", "in", "a", w(10, 12), delay=1, weight_exp=1),
             Projection.from_dense("in->b", "in", "b", w(8, 12), delay=2),
             Projection.from_dense("a->b", "a", "b", w(8, 10), delay=1, weight_exp=-1),
             Projection.from_dense("a->c", "a", "c", w(6, 10), delay=3, weight_exp=2),
             Projection.from_dense("b->c", "b", "c", w(6, 8), delay=2))
    return AerGraph("loihi", pops, projs, Readout("c", np.eye(6, dtype=np.int32), 4, 10), timesteps=6)


@pytest.fixture(scope="module")
def feature_run():
    g = feature_graph()
    x = {"in": np.random.default_rng(1).random((5, 6, 12)) < 0.35}
    return g, x, run_lava(g, x, timeout=300, batch_size=3)   # two chunks: 3 + 2 samples


def test_lava_equals_reference_on_feature_graph(feature_run):
    g, x, lava = feature_run
    ref = simulate_dense(g, x)
    for p in g.populations:
        np.testing.assert_array_equal(lava[p.name], ref[p.name], err_msg=p.name)
        assert ref[p.name].any(), f"population {p.name} must be active for the test to mean something"
    assert lava["a"].shape == (5, g.ticks, 10)


def test_one_lsb_weight_change_is_detected(feature_run):
    g, x, lava = feature_run
    ref = simulate_dense(g, x)
    pr = g.projections[0]
    for syn in range(pr.n_synapses):          # the first synapse whose +1 LSB changes a spike
        w = pr.weights.copy()
        w[syn] += 2 if w[syn] < 254 else -2
        g2 = replace(g, projections=(replace(pr, weights=w),) + g.projections[1:])
        ref2 = simulate_dense(g2, x)
        if any((ref2[p.name] != ref[p.name]).any() for p in g.populations):
            break
    lava2 = run_lava(g2, x, timeout=300)
    assert any((lava2[p.name] != lava[p.name]).any() for p in g.populations)
    for p in g.populations:
        np.testing.assert_array_equal(lava2[p.name], ref2[p.name])


def _lava_leftovers(before: set[str]) -> tuple[list, set[str]]:
    kids = psutil.Process().children(recursive=True)
    return kids, set(os.listdir("/dev/shm")) - before


def test_raising_process_model_becomes_error_not_hang():
    g = feature_graph()
    x = {"in": np.ones((1, 6, 12), bool)}
    shm_before = set(os.listdir("/dev/shm"))
    t0 = time.monotonic()
    with pytest.raises(LavaRunError, match="injected fault"):
        run_lava(g, x, timeout=120, inject_fault=True)
    assert time.monotonic() - t0 < 120
    kids, shm = _lava_leftovers(shm_before)
    assert kids == [] and shm == set()


def test_timeout_kills_everything():
    g = feature_graph()
    shm_before = set(os.listdir("/dev/shm"))
    with pytest.raises(LavaRunError, match="timed out after 0.2 s"):
        run_lava(g, {"in": np.ones((1, 6, 12), bool)}, timeout=0.2)
    kids, shm = _lava_leftovers(shm_before)
    assert kids == [] and shm == set()


def test_float_graph_is_refused():
    g = feature_graph()
    pops = tuple(replace(p, du=min(p.du / 4096, 1.0), dv=p.dv / 4096) if p.kind == "lif" else p for p in g.populations)
    projs = tuple(replace(pr, weights=pr.weights.astype(np.float32)) for pr in g.projections)
    fg = AerGraph("float", pops, projs, None, g.timesteps)
    with pytest.raises(ValueError, match="numerics='loihi'"):
        run_lava(fg, {"in": np.ones((1, 6, 12), bool)})
