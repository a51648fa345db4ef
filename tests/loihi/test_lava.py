"""Lava export: the 3.11 shim, spikes equal to the reference, failures as errors (never hangs).

Lava itself only ever runs in subprocesses (the shim check, ``run_lava``'s
workers); this test process never imports it. Runs are shared through
module-scoped fixtures; each Lava worker takes about a second.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest

from loihi_export.build.network import rest_period, to_lava
from loihi_export.protocol import LavaRunError
from loihi_export.run.runner import run_lava
from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection, Readout
from sim.neurons.cuba import CubaLIF
from sim.neurons.input import Input
from spikeformer.configure.validate import model_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHIM_CHECK = """
import sys
if sys.argv[1] == "shim":
    from loihi_export import compat
    compat.apply(); compat.apply()
    print("FINDERS", sum(isinstance(f, compat._Finder) for f in sys.meta_path))
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
    env = {**os.environ, "PYTHONPATH": ROOT}
    bare = subprocess.run([sys.executable, "-c", SHIM_CHECK, "bare"], capture_output=True, text=True, check=False,
                          env=env, cwd=ROOT, timeout=120)
    assert bare.returncode == 3 and "mutable default" in bare.stdout, bare.stdout + bare.stderr[-2000:]
    shim = subprocess.run([sys.executable, "-c", SHIM_CHECK, "shim"], capture_output=True, text=True, check=False,
                          env=env, cwd=ROOT, timeout=120)
    assert shim.returncode == 0, shim.stderr[-2000:]
    assert "FINDERS 1" in shim.stdout                # apply() twice installs one finder
    # v = 100·64·k accumulates (dv = 0), crosses 150·64 at the 2nd input tick; the two-input neuron fires every tick
    assert "SPIKES [[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 0, 1]]" in shim.stdout


# -- graphs ----------------------------------------------------------------------------------------

def feature_graph() -> AerGraph:
    """Hand-built: delays 1/2/3, several projections into one population, both weight-exponent
    signs, negative weights, du < 4095 (current memory) and dv = 0."""
    rng = np.random.default_rng(7)

    def w(n_post, n_pre, density=0.6):
        m = rng.integers(-60, 128, size=(n_post, n_pre)) * 2
        return np.where(rng.random((n_post, n_pre)) < density, m, 0).astype(np.int16)

    pops = (Population("in", 12, Input()),
            Population("a", 10, CubaLIF(4095, 512, 90), depth=1),
            Population("b", 8, CubaLIF(3000, 0, 120), depth=2),
            Population("c", 6, CubaLIF(2048, 1024, 60), depth=4))
    projs = (Projection.from_dense("in->a", "in", "a", w(10, 12), delay=1, weight_exp=1),
             Projection.from_dense("in->b", "in", "b", w(8, 12), delay=2),
             Projection.from_dense("a->b", "a", "b", w(8, 10), delay=1, weight_exp=-1),
             Projection.from_dense("a->c", "a", "c", w(6, 10), delay=3, weight_exp=2),
             Projection.from_dense("b->c", "b", "c", w(6, 8), delay=2))
    return AerGraph("loihi", pops, projs, Readout("c", np.eye(6, dtype=np.int32), 4, 10), timesteps=6)


def random_graph(seed: int) -> tuple[AerGraph, dict[str, np.ndarray]]:
    """A random DAG (1–2 inputs, 3–5 LIF populations, 1–3 projections each, delays 1–5,
    weight_exp −2…3, full even weight range incl. ±254) whose every population spikes
    in the reference, with a batch of 4 random input samples."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n_in, n_lif = int(rng.integers(1, 3)), int(rng.integers(3, 6))
        pops: list[Population] = [Population(f"in{i}", int(rng.integers(4, 16)), Input()) for i in range(n_in)]
        projs: list[Projection] = []
        depth = {p.name: 0 for p in pops}
        for j in range(n_lif):
            name, size = f"l{j}", int(rng.integers(3, 20))
            pres = rng.choice(len(pops), size=min(len(pops), int(rng.integers(1, 4))), replace=False)
            for k in pres:
                pre = pops[k]
                m = rng.integers(-127, 128, size=(size, pre.size)) * 2
                m[0, 0] = 254 if rng.random() < 0.5 else -254
                m = np.where(rng.random(m.shape) < rng.uniform(0.2, 0.9), m, 0)
                delay = int(rng.integers(1, 6))
                projs.append(Projection.from_dense(f"{pre.name}->{name}", pre.name, name, m, delay=delay,
                                                   weight_exp=int(rng.integers(-2, 4))))
                depth[name] = max(depth.get(name, 0), depth[pre.name] + delay)
            pops.append(Population(name, size, CubaLIF(du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                                   vth=int(rng.integers(20, 400))), depth=depth[name]))
        timesteps = int(rng.integers(3, 9))
        graph = AerGraph("loihi", tuple(pops), tuple(projs), None, timesteps)
        inputs = {p.name: rng.random((4, timesteps, p.size)) < rng.uniform(0.2, 0.6) for p in graph.inputs}
        ref = simulate_dense(graph, inputs)
        if all(ref[p.name].any() for p in graph.populations):
            return graph, inputs
    raise AssertionError(f"seed {seed}: no random graph with activity everywhere")


def assert_same_spikes(graph: AerGraph, got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == {p.name for p in graph.populations}
    for p in graph.populations:
        assert got[p.name].dtype == bool and got[p.name].shape == want[p.name].shape, p.name
        np.testing.assert_array_equal(got[p.name], want[p.name], err_msg=p.name)


def _snapshot() -> tuple[set[int], set[str]]:
    """Child pids of this test process and /dev/shm entries before a run (earlier tests may have
    left Python's own multiprocessing resource tracker, e.g. after a Dask LocalCluster)."""
    return {c.pid for c in psutil.Process().children(recursive=True)}, set(os.listdir("/dev/shm"))


def _leftovers(before: tuple[set[int], set[str]]) -> tuple[list, set[str]]:
    """Child processes and /dev/shm entries that appeared since ``before`` and are still there."""
    kids_before, shm_before = before
    kids = [c for c in psutil.Process().children(recursive=True) if c.pid not in kids_before]
    return kids, set(os.listdir("/dev/shm")) - shm_before


# -- equality with the reference -------------------------------------------------------------------

@pytest.fixture(scope="module")
def feature_run():
    g = feature_graph()
    x = {"in": np.random.default_rng(1).random((5, 6, 12)) < 0.35}
    before = _snapshot()
    spikes = run_lava(g, x, timeout=300, batch_size=3, sequence=1)       # two fresh workers: 3 + 2 samples
    return g, x, spikes, _leftovers(before)


def test_lava_equals_reference_on_feature_graph(feature_run):
    g, x, lava, _ = feature_run
    ref = simulate_dense(g, x)
    assert_same_spikes(g, lava, ref)
    for p in g.populations:
        assert ref[p.name].any(), f"population {p.name} must spike for the test to mean something"
    assert lava["a"].shape == (5, g.ticks, 10)


def test_successful_run_leaves_no_processes_or_shared_memory(feature_run):
    kids, shm = feature_run[3]
    assert kids == [] and shm == set()


def test_batched_run_equals_samples_one_by_one(feature_run):
    g, x, lava, _ = feature_run
    stats: dict = {}
    one_by_one = run_lava(g, {"in": x["in"][1:3]}, batch_size=1, sequence=1, stats=stats)   # two fresh workers
    assert stats["workers"] == 2 and stats["sequence"] == 1
    assert_same_spikes(g, one_by_one, {k: v[1:3] for k, v in lava.items()})


def test_samples_in_sequence_in_one_network_equal_the_reference(feature_run):
    """One sample at a time through one network (LIFReset between them, a rest gap): the same
    spikes as fresh networks; the feature graph's slow currents (du 2048, 3000) need a long gap."""
    g, x, lava, _ = feature_run
    stats: dict = {}
    before = _snapshot()
    seq = run_lava(g, x, batch_size=1, stats=stats)
    assert stats["workers"] == 1 and stats["batch"] == 1 and stats["sequence"] == 5
    assert stats["period"] == rest_period(g) > g.ticks + 3
    assert_same_spikes(g, seq, lava)
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()
    assert stats["peak_pss_bytes"] > stats["peak_worker_pss_bytes"] > 0 and stats["processes"] > 10
    assert stats["seconds_per_sample"] > 0 and stats["phases"]["run_s"] > 0


def test_lanes_and_slots_together_with_a_padded_slot():
    """2 lanes × 3 slots for 5 samples (the last slot's second lane is padding), payloads too."""
    g, x = random_graph(12)
    x = {k: np.concatenate([v, v[:1]]) for k, v in x.items()}
    stats: dict = {}
    payloads: dict = {}
    got = run_lava(g, x, batch_size=2, stats=stats, payloads=payloads)
    assert (stats["batch"], stats["sequence"], stats["workers"]) == (2, 3, 1)
    assert_same_spikes(g, got, simulate_dense(g, x))
    assert payloads == {}                                     # no graded population


def test_too_short_rest_gap_is_an_error_not_wrong_spikes(monkeypatch):
    """If the bound were wrong, the recorded silence check in the worker catches it."""
    import loihi_export.run.plan as run_mod

    g = feature_graph()
    x = {"in": np.random.default_rng(1).random((3, 6, 12)) < 0.35}
    ref = simulate_dense(g, x)
    last = max(int(np.flatnonzero(ref[p.name].any(axis=(0, 2)))[-1]) for p in g.populations)
    assert last >= g.ticks - 3                          # activity right up to the end of the window
    monkeypatch.setattr(run_mod, "rest_period", lambda graph: graph.ticks + 3)
    before = _snapshot()
    with pytest.raises(LavaRunError, match="not at rest before sample slot 1"):
        run_lava(g, x, batch_size=1, timeout=120)
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()


def test_rest_period_bounds():
    from loihi_export.build.network import current_settle_ticks

    assert current_settle_ticks(4095, 10) == 1              # du = 4095: u is only this tick's input
    assert current_settle_ticks(2047, 100) == 24            # halves each tick: 2²³ → 0 in 24
    assert current_settle_ticks(0, 1000) is None            # du = 0 never decays
    g = feature_graph()
    assert rest_period(g) == 46
    slow = replace(g, populations=tuple(replace(p, model=replace(p.model, du=0)) if p.name == "b" else p for p in g.populations))
    assert rest_period(slow) is None
    with pytest.raises(ValueError, match="does not come to rest"):
        run_lava(slow, {"in": np.ones((2, 6, 12), bool)}, batch_size=1, sequence=2)
    fast = replace(g, populations=tuple(replace(p, model=replace(p.model, du=4095)) if p.model.spiking else p for p in g.populations))
    assert rest_period(fast) == fast.ticks + 3              # silent after the window, + the largest delay


def _file_backed(a: np.ndarray) -> bool:
    import mmap

    while a is not None and not isinstance(a, mmap.mmap):
        a = getattr(a, "base", None)
    return a is not None


def test_lava_weights_are_compact_memory_mapped_and_block_diagonal(tmp_path):
    import scipy.sparse as sps

    from loihi_export.build.weights import LavaWeights, batched_weights, block_diagonal, lava_csr, weight_dtype

    assert [weight_dtype(np.array(w)) for w in ([-128, 127], [-2, 254], [0, 40000])] == [np.int8, np.int16, np.int32]
    g = feature_graph()
    small = replace(g.projections[0], weights=(g.projections[0].weights // 4) * 2)     # within int8
    g = replace(g, projections=(small,) + g.projections[1:])
    sizes = {p.name: p.size for p in g.populations}
    lw = LavaWeights(LavaWeights.save(g, tmp_path / "w"))
    for pr in g.projections:
        dense = pr.to_dense(sizes[pr.post])            # (n_post, n_pre)
        w = lw(pr, 1)
        assert all(_file_backed(a) for a in (w.data, w.indices, w.indptr))            # no copy in memory
        assert w.indices.dtype == np.int32 and w.indptr.dtype == np.int32
        assert w.data.dtype == (np.int8 if -128 <= pr.weights.min() and pr.weights.max() <= 127 else np.int16)
        np.testing.assert_array_equal(w.toarray(), dense)
        np.testing.assert_array_equal(lava_csr(pr, sizes[pr.post]).toarray(), dense)
        want = sps.block_diag([dense] * 3).toarray()
        np.testing.assert_array_equal(lw(pr, 3).toarray(), want)
        np.testing.assert_array_equal(batched_weights(pr, sizes[pr.post], 3).toarray(), want)
        assert block_diagonal(w, 1) is w
    assert {np.dtype(lw(pr, 1).data.dtype) for pr in g.projections} == {np.dtype(np.int8), np.dtype(np.int16)}
    assert lw.shape.to_json() == type(lw.shape).of(g).to_json()


def test_run_that_cannot_fit_is_refused_before_it_starts(monkeypatch):
    import loihi_export.run.runner as run_mod

    g = feature_graph()
    monkeypatch.setattr(run_mod, "available_bytes", lambda: 2**20)
    before = _snapshot()
    with pytest.raises(MemoryError, match=r"needs about .* GiB, 0\.0 GiB available"):
        run_lava(g, {"in": np.ones((1, 6, 12), bool)})
    assert _leftovers(before) == ([], set())


def test_monitor_recording_equals_packed_recording(feature_run):
    g, x, lava, _ = feature_run
    assert_same_spikes(g, run_lava(g, x, record="monitor"), lava)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_lava_equals_reference_on_random_graph(seed):
    g, x = random_graph(seed)
    assert_same_spikes(g, run_lava(g, x, timeout=300), simulate_dense(g, x))


def test_one_lsb_weight_change_is_detected(feature_run):
    g, x, _, _ = feature_run
    ref = simulate_dense(g, x)
    pr = g.projections[0]
    for syn in range(pr.n_synapses):          # the first synapse whose one-LSB change flips a spike
        w = pr.weights.copy()
        w[syn] += 2 if w[syn] < 254 else -2
        g2 = replace(g, projections=(replace(pr, weights=w),) + g.projections[1:])
        ref2 = simulate_dense(g2, x)
        if any((ref2[p.name] != ref[p.name]).any() for p in g.populations):
            break
    else:
        pytest.fail("no one-LSB change flips a spike in this graph")
    lava2 = run_lava(g2, x, timeout=300)
    with pytest.raises(AssertionError):
        assert_same_spikes(g, lava2, ref)     # the old expectation no longer holds ...
    assert_same_spikes(g, lava2, ref2)        # ... and Lava follows the changed weight exactly


# -- failures --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault, message", [
    ("raise", "RuntimeError: injected fault"),
    ("float-lif", "TypeError: ufunc 'left_shift' not supported"),   # a fixed-point LIF with float vth
])
def test_failing_process_model_becomes_error_not_hang(fault, message):
    g = feature_graph()
    before = _snapshot()
    t0 = time.monotonic()
    with pytest.raises(LavaRunError, match="did not stop") as err:
        run_lava(g, {"in": np.ones((2, 6, 12), bool)}, timeout=60, inject_fault=fault)
    assert message in str(err.value)
    assert time.monotonic() - t0 < 30            # found by the traceback, long before the timeout
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()


def test_timeout_kills_everything():
    g = feature_graph()
    before = _snapshot()
    t0 = time.monotonic()
    with pytest.raises(LavaRunError, match=r"timed out after 0\.5 s"):
        run_lava(g, {"in": np.ones((1, 6, 12), bool)}, timeout=0.5)
    assert time.monotonic() - t0 < 5
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()


def test_float_graph_is_refused_with_a_clear_message():
    g = feature_graph()
    pops = tuple(replace(p, model=p.model.float_equivalent()) if p.model.spiking else p
                 for p in g.populations)
    projs = tuple(replace(pr, weights=pr.weights.astype(np.float32)) for pr in g.projections)
    fg = AerGraph("float", pops, projs, None, g.timesteps)
    x = {"in": np.ones((1, 6, 12), bool)}
    lava_was_imported = "lava" in sys.modules
    for export in (run_lava, to_lava):
        with pytest.raises(ValueError, match="Lava export needs numerics='loihi'.*numerics='float'"):
            export(fg, x)
    assert ("lava" in sys.modules) == lava_was_imported     # refused before Lava is imported


def test_bad_arguments_are_refused():
    g, x = feature_graph(), {"in": np.ones((1, 6, 12), bool)}
    with pytest.raises(ValueError, match="batch_size"):
        run_lava(g, x, batch_size=0)
    with pytest.raises(ValueError, match="sequence"):
        run_lava(g, x, sequence=0)
    with pytest.raises(ValueError, match="record"):
        run_lava(g, x, record="probe")
    with pytest.raises(ValueError, match="inject_fault"):
        run_lava(g, x, inject_fault="segfault")
    with pytest.raises(ValueError, match="inputs"):
        run_lava(g, {"in": np.ones((1, 6, 11), bool)})
    for t in (0, -1.0, float("nan"), float("inf")):             # NaN would never time out
        with pytest.raises(ValueError, match="timeout must be a finite number of seconds > 0"):
            run_lava(g, x, timeout=t)


def test_lava_equals_engine_at_the_int32_bounds():
    """The largest inputs validation accepts (sim.numerics: the int32 rule), saturating: 1 028 inputs of
    ±254 << 7 into a du = 4095 LIF (|a| = 33 422 336 ≤ LIF_INPUT_MAX) and 8 into carried currents
    (du 0 and 2048: |a| = 260 096 ≤ 2¹⁸)."""
    from sim.ir.bounds import LIF_CARRY_INPUT_MAX, LIF_INPUT_MAX
    w = np.full((3, 1028), 254, np.int16)
    w[1] = -254
    w[2, ::2] = -254
    carry = np.where(np.arange(1028) < 8, w, 0).astype(np.int16)
    pops = (Population("in", 1028, Input()), Population("sat", 3, CubaLIF(4095, 0, 1000), depth=1),
            Population("c0", 3, CubaLIF(0, 0, 1000), depth=1), Population("c1", 3, CubaLIF(2048, 7, 1000), depth=1))
    projs = tuple(Projection.from_dense(f"in->{p}", "in", p, m, weight_exp=7)
                  for p, m in (("sat", w), ("c0", carry), ("c1", carry)))
    g = AerGraph("loihi", pops, projs, None, 6)
    assert 1028 * 254 * 128 <= LIF_INPUT_MAX and 8 * 254 * 128 <= LIF_CARRY_INPUT_MAX
    rng = np.random.default_rng(3)
    x = {"in": np.concatenate([np.ones((1, 6, 1028), bool), rng.random((1, 6, 1028)) < 0.8])}
    before = _snapshot()
    lava = run_lava(g, x, timeout=300)
    assert_same_spikes(g, lava, simulate(g, x).spikes)
    assert_same_spikes(g, lava, simulate_dense(g, x))
    assert all(lava[p].any() for p in ("sat", "c0", "c1"))
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()


# -- graded relays ---------------------------------------------------------------------------------

def assert_same_payloads(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want) and want
    for name in want:
        assert got[name].dtype == np.int32 and got[name].shape == want[name].shape, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("seed, record", [(21, "packed"), (24, "monitor")])
def test_lava_equals_engine_on_graded_graph(seed, record):
    """Input, LIF and graded populations mixed, delays > 1, negative weight_exp out of graded ones:
    Lava's GradedVec + Sparse/DelaySparse (num_message_bits = 24) = the engine, spike for spike, and
    Lava's payloads = the dense reference's (int32, not cast to bool by the bool-typed s_in ports)."""
    from test_graded import graded_graph

    g, x = graded_graph(np.random.default_rng(seed), active=True)
    graded = {p.name for p in g.populations if p.is_graded}
    from_graded = [pr for pr in g.projections if pr.pre in graded]
    assert any(pr.delay > 1 for pr in from_graded) and all(pr.weight_exp < 0 for pr in from_graded)
    assert any(pr.post in graded for pr in from_graded) and any(p.model.spiking for p in g.populations)
    ref_payloads: dict = {}
    simulate_dense(g, x, ref_payloads)
    assert any((np.abs(v) > 1).any() for k, v in ref_payloads.items() if any(pr.pre == k for pr in from_graded))
    before = _snapshot()
    payloads: dict = {}
    lava = run_lava(g, x, timeout=300, record=record, payloads=payloads)
    assert_same_spikes(g, lava, simulate(g, x).spikes)
    assert_same_payloads(payloads, ref_payloads)
    kids, shm = _leftovers(before)
    assert kids == [] and shm == set()


def test_lava_equals_engine_on_relay_stream_of_converted_model():
    """A converted tiny model (random init, depth 2): its residual stream is a chain of 5 graded relays."""
    import torch

    from spikeformer.configure import presets
    from spikeformer.lower.convert import to_graph
    from spikeformer.model.transformer import SpikingTransformer

    cfg = model_config(**{**presets.preset("tiny")[0].flat(), "depth": 2})
    torch.manual_seed(0)
    g = to_graph(SpikingTransformer(cfg))
    relays = [p.name for p in g.populations if p.is_graded]
    assert relays == ["r0", "r1", "r2", "r3", "r4"]
    x = {"input": np.random.default_rng(5).random((2, cfg.arch.timesteps, g.population("input").size)) < 0.3}
    ref_payloads: dict = {}
    ref = simulate_dense(g, x, ref_payloads)
    assert all(ref[p.name].any() for p in g.populations if p.role in ("stream", "relay"))
    payloads: dict = {}
    lava = run_lava(g, x, timeout=300, payloads=payloads)
    assert_same_spikes(g, lava, simulate(g, x).spikes)
    assert_same_payloads(payloads, ref_payloads)
