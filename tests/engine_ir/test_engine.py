"""Event-driven engine = dense clocked reference, tick by tick (hypothesis), and it is event-driven."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.input import Input


@st.composite
def random_graph(draw, numerics: str):
    loihi = numerics == "loihi"
    n_in = draw(st.integers(1, 2))
    n_lif = draw(st.integers(1, 5))
    names = [f"in{i}" for i in range(n_in)] + [f"p{i}" for i in range(n_lif)]
    sizes = {n: draw(st.integers(1, 20)) for n in names}
    edges = []
    for j in range(n_lif):                          # DAG: sources are inputs or earlier populations
        pres = draw(st.lists(st.sampled_from(names[:n_in + j]), min_size=1, max_size=3, unique=True))
        edges += [(pre, f"p{j}") for pre in pres]
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    pops = []
    for n in names:
        if n.startswith("in"):
            pops.append(Population(n, sizes[n], Input()))
            continue
        if loihi:
            du = int(rng.choice([0, 4095, rng.integers(0, 4096)]))
            dv = int(rng.choice([0, 4095, rng.integers(0, 4096)]))
            vth = int(rng.choice([0, 1, rng.integers(0, 400)]))
        else:
            du, dv = float(rng.choice([0.0, 1.0, rng.random()])), float(rng.choice([0.0, 1.0, rng.random()]))
            vth = float(rng.choice([0.0, rng.integers(1, 400)]))
        pops.append(Population(n, sizes[n], (CubaLIF if loihi else CubaLIFFloat)(du, dv, vth)))
    projs = []
    for k, (pre, post) in enumerate(edges):
        density = rng.random()
        w = rng.integers(-127, 128, (sizes[post], sizes[pre])) * 2
        w = np.where(rng.random(w.shape) < density, w, 0)
        # float mode: integer-valued weights keep sums exact whatever the summation order
        w = w.astype(np.int16 if loihi else np.float32)
        exp = int(rng.choice([0, 0, 1, -1, 3, -3])) if loihi else int(rng.choice([0, 1, -1]))
        projs.append(Projection.from_dense(f"e{k}", pre, post, w, delay=int(rng.integers(1, 5)), weight_exp=exp))
    timesteps = draw(st.integers(1, 8))
    g = AerGraph(numerics, tuple(pops), tuple(projs), None, timesteps)
    x = {p.name: rng.random((draw(st.integers(1, 3)), timesteps, p.size)) < rng.random() for p in g.inputs}
    batch = min(len(v) for v in x.values())
    return g, {k: v[:batch] for k, v in x.items()}


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_engine_equals_dense_reference(numerics):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(random_graph(numerics))
    def check(case):
        g, x = case
        ref = simulate_dense(g, x)
        res = simulate(g, x)
        for p in g.populations:
            np.testing.assert_array_equal(res.spikes[p.name], ref[p.name], err_msg=p.name)
        for pr in g.projections:                 # synaptic ops = Σ pre spikes × out-degree
            expect = ref[pr.pre].sum(axis=1) @ np.diff(pr.indptr)
            np.testing.assert_array_equal(res.synaptic_ops[pr.name], expect)
        for p in g.populations:
            np.testing.assert_array_equal(res.spike_counts[p.name], ref[p.name].sum(axis=(1, 2)))
    check()


def test_cost_follows_events_not_size():
    """A wide layer with a few active inputs: the engine touches only what receives events."""
    rng = np.random.default_rng(0)
    n_in, n_out = 1000, 20000
    pre = np.arange(n_in)
    indptr = np.arange(0, 5 * n_in + 1, 5)
    indices = (np.arange(5) * (n_out // 5) + rng.integers(0, n_out // 5, (n_in, 5))).ravel()
    g = AerGraph("loihi", (Population("in", n_in, Input()), Population("out", n_out, CubaLIF(4095, 4095, 0), depth=1)),
                 (Projection("w", "in", "out", indptr, indices, np.full(5 * n_in, 2, np.int16)),), None, 10)
    x = np.zeros((1, 10, n_in), bool)
    x[0, :, pre[:3]] = True                       # 3 active inputs → ≤ 15 targets per tick
    res = simulate(g, {"in": x})
    assert res.neuron_updates[0] <= 15 * 10
    assert res.neuron_updates[0] < 0.001 * n_out * g.ticks
    assert res.synaptic_ops["w"][0] == 3 * 5 * 10
    np.testing.assert_array_equal(res.spikes["out"], simulate_dense(g, {"in": x})["out"])


def test_lazy_leak_matches_clocked_decay():
    """Neuron left alone for many ticks with dv > 0 and u = 0 decays exactly as if stepped."""
    g = AerGraph("loihi", (Population("in", 1, Input()), Population("o", 1, CubaLIF(4095, 37, 200), depth=3)),
                 (Projection("w", "in", "o", [0, 1], [0], np.array([254], np.int16), delay=3),), None, 30)
    x = np.zeros((1, 30, 1), bool)
    x[0, [0, 9, 10, 20, 21, 22]] = True
    np.testing.assert_array_equal(simulate(g, {"in": x}).spikes["o"], simulate_dense(g, {"in": x})["o"])
    assert simulate(g, {"in": x}).spikes["o"].any()


def test_bad_inputs_are_named():
    g = AerGraph("loihi", (Population("in", 3, Input()), Population("o", 2, CubaLIF(0, 0, 1), depth=1)),
                 (Projection.from_dense("w", "in", "o", np.full((2, 3), 2, np.int16)),), None, 4)
    with pytest.raises(ValueError, match="missing spikes for input population 'in'"):
        simulate(g, {})
    with pytest.raises(ValueError, match=r"inputs\['in'\].*shape"):
        simulate(g, {"in": np.zeros((2, 4, 5), bool)})


def test_run_that_cannot_fit_in_memory_is_refused_before_allocating():
    huge = 10**10                                            # 10 G neurons: the spike record alone is > 100 GB
    g = AerGraph("loihi", (Population("in", 4, Input()), Population("big", huge, CubaLIF(0, 0, 1), depth=1)),
                 (Projection("w", "in", "big", np.arange(5), np.arange(4), np.full(4, 2, np.int16)),), None, 10)
    with pytest.raises(MemoryError, match=r"needs ~\d+.*GiB.*available"):
        simulate(g, {"in": np.ones((1, 10, 4), bool)})


def test_batch_equals_samples_run_one_by_one():
    """Working buffers are reused across samples; nothing may leak from one sample to the next."""
    rng = np.random.default_rng(3)
    w1 = (rng.integers(-40, 128, (30, 20)) * 2).astype(np.int16)
    w2 = (rng.integers(-40, 128, (10, 30)) * 2).astype(np.int16)
    g = AerGraph("loihi", (Population("in", 20, Input()), Population("a", 30, CubaLIF(1000, 300, 120), depth=1),
                           Population("b", 10, CubaLIF(4095, 0, 200), depth=4)),
                 (Projection.from_dense("w1", "in", "a", w1), Projection.from_dense("w2", "a", "b", w2, delay=3,
                                                                                    weight_exp=-1)), None, 12)
    x = rng.random((7, 12, 20)) < 0.3
    batch = simulate(g, {"in": x})
    for b in range(7):
        one = simulate(g, {"in": x[b:b + 1]})
        for p in g.populations:
            np.testing.assert_array_equal(batch.spikes[p.name][b], one.spikes[p.name][0])
        assert all(batch.synaptic_ops[k][b] == one.synaptic_ops[k][0] for k in one.synaptic_ops)
    assert batch.spikes["b"].any()


def test_update_modes_follow_the_kernel_promises():
    """FULL where the kernel says the current never carries, REST otherwise; BUSY (a kernel that does
    not promise ``rests``: updated every tick once touched) gives the same spikes with more updates."""
    from dataclasses import replace

    from sim.engine.flatgraph import BUSY, FULL, REST, flatten
    pops = (Population("in", 3, Input()), Population("a", 4, CubaLIF(4095, 100, 3), depth=1),
            Population("b", 4, CubaLIF(1000, 100, 3), depth=2))
    rng = np.random.default_rng(0)
    projs = (Projection.from_dense("w", "in", "a", (rng.integers(-40, 80, (4, 3)) * 2).astype(np.int16)),
             Projection.from_dense("v", "a", "b", (rng.integers(-40, 80, (4, 4)) * 2).astype(np.int16)))
    g = AerGraph("loihi", pops, projs, None, 20)
    flat = flatten(g)
    assert list(flat.mode[1:]) == [FULL, REST]
    x = {"in": rng.random((2, 20, 3)) < 0.3}
    ref = simulate_dense(g, x)
    rest = simulate(g, x, flat=flat)
    busy = simulate(g, x, flat=replace(flat, mode=np.full_like(flat.mode, BUSY)))
    for res in (rest, busy):
        for p in ("a", "b"):
            np.testing.assert_array_equal(res.spikes[p], ref[p], err_msg=p)
    assert (busy.neuron_updates > rest.neuron_updates).all()


def test_buffers_kept_for_the_next_run_leave_no_trace():
    """``simulate`` keeps its working buffers for the next run of the same shape (the page faults of fresh
    buffers are paid once); a kept set, dirtied by other inputs or with its epoch counter about to wrap,
    gives the spikes of a fresh one."""
    import sim.engine.simulate as simulate_module
    from sim.engine.kernels import EPOCH_MAX
    rng = np.random.default_rng(5)
    g = AerGraph("loihi", (Population("in", 20, Input()), Population("a", 30, CubaLIF(1000, 300, 120), depth=1),
                           Population("b", 10, CubaLIF(4095, 0, 200), depth=4)),
                 (Projection.from_dense("w1", "in", "a", (rng.integers(-40, 128, (30, 20)) * 2).astype(np.int16)),
                  Projection.from_dense("w2", "a", "b", (rng.integers(-40, 128, (10, 30)) * 2).astype(np.int16),
                                        delay=3, weight_exp=-1)), None, 12)
    x, other = rng.random((5, 12, 20)) < 0.3, rng.random((5, 12, 20)) < 0.5
    simulate_module.release_working_buffers()
    fresh = simulate(g, {"in": x})
    simulate(g, {"in": other})
    (kept,) = simulate_module._kept.values()
    reused = simulate(g, {"in": x})
    assert next(iter(simulate_module._kept.values()))[0] is kept[0]          # the same accumulators
    kept[6][:] = EPOCH_MAX - 2 * g.ticks                                     # epochs: wraps within this run
    wrapped = simulate(g, {"in": x})
    for res in (reused, wrapped):
        for p in g.populations:
            np.testing.assert_array_equal(res.spikes[p.name], fresh.spikes[p.name], err_msg=p.name)
    assert fresh.spikes["a"].any() and fresh.spikes["b"].any()


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_identity_and_pooling_maps_are_sent_without_synapse_reads(numerics):
    """Projections where source r feeds the f targets of block r // g alone, all with one weight (relays, k-WTA
    wiring), are sent from (g, f, weight) (``flatgraph.pool_factor``): spikes and synaptic ops equal the dense
    reference for g = 1, 2, 4 and f = 1, 2, delays 1 to 5 (the delayed-spike queue), a graded source and a
    negative exponent."""
    from sim.engine.flatgraph import flatten
    from sim.neurons.graded import GradedRelay
    loihi = numerics == "loihi"
    lif = (lambda du, dv, vth: CubaLIF(du, dv, vth)) if loihi else (lambda du, dv, vth: CubaLIFFloat(
        (du + 1) / 4096, dv / 4096, float(vth)))
    dt = np.int16 if loihi else np.float32
    pops = (Population("in", 8, Input()), Population("g", 8, GradedRelay(), depth=1),
            Population("a", 8, lif(4095, 300, 9), depth=3), Population("b", 2, lif(4095, 0, 20), depth=1),
            Population("c", 4, lif(1000, 500, 12), depth=6))
    eye = np.eye(8)
    projs = (Projection.from_dense("in->g", "in", "g", (6 * eye).astype(dt)),
             Projection.from_dense("g->a", "g", "a", (4 * eye).astype(dt), delay=2, weight_exp=-1 if loihi else 0),
             Projection.from_dense("in-<b", "in", "b", (8 * np.kron(np.eye(2), np.ones((1, 4)))).astype(dt)),
             Projection.from_dense("a-<c", "a", "c", (10 * np.kron(np.eye(4), np.ones((1, 2)))).astype(dt), delay=3),
             Projection.from_dense("in->c", "in", "c", (np.arange(32).reshape(4, 8) % 5 * 2 - 4).astype(dt), delay=6),
             Projection.from_dense("b>-c", "b", "c", (6 * np.kron(np.eye(2), np.ones((2, 1)))).astype(dt), delay=5))
    g = AerGraph(numerics, pops, projs, None, 12)
    flat = flatten(g)
    assert list(flat.proj["pool"]) == [1, 1, 4, 2, 0, 1] and flat.proj["fan"][-1] == 2
    x = {"in": np.random.default_rng(7).random((4, 12, 8)) < 0.4}
    ref, res = simulate_dense(g, x), simulate(g, x)
    for p in g.populations:
        np.testing.assert_array_equal(res.spikes[p.name], ref[p.name], err_msg=p.name)
        assert ref[p.name].any(), p.name
    for pr in g.projections:
        np.testing.assert_array_equal(res.synaptic_ops[pr.name], ref[pr.pre].sum(axis=1) @ np.diff(pr.indptr))


def test_full_delay_queue_grows_and_the_batch_is_redone(monkeypatch):
    """Events of delay ≥ 2 wait in a queue per slot, sized from ``QUEUE_START``; a run that overflows it
    redoes the unfinished samples on larger fresh buffers, with the spikes and counts of an ample queue."""
    import sim.engine.simulate as simulate_module
    rng = np.random.default_rng(11)
    g = AerGraph("loihi", (Population("in", 30, Input()), Population("a", 40, CubaLIF(4095, 200, 40), depth=3),
                           Population("b", 20, CubaLIF(2000, 100, 60), depth=5)),
                 (Projection.from_dense("w1", "in", "a", (rng.integers(-20, 128, (40, 30)) * 2).astype(np.int16),
                                        delay=3),
                  Projection.from_dense("w2", "a", "b", (rng.integers(-20, 128, (20, 40)) * 2).astype(np.int16),
                                        delay=2)), None, 10)
    x = {"in": rng.random((5, 10, 30)) < 0.5}
    simulate_module.release_working_buffers()
    ample = simulate(g, x)
    monkeypatch.setattr(simulate_module, "QUEUE_START", 8)
    simulate_module.release_working_buffers()
    grown = simulate(g, x)
    (kept,) = simulate_module._kept.values()
    assert kept[4].shape[1] > 8 * (3 + 1)                               # the queue (8 spikes per slot) grew
    for p in g.populations:
        np.testing.assert_array_equal(grown.spikes[p.name], ample.spikes[p.name], err_msg=p.name)
        np.testing.assert_array_equal(grown.spike_counts[p.name], ample.spike_counts[p.name])
    for k in ample.synaptic_ops:
        np.testing.assert_array_equal(grown.synaptic_ops[k], ample.synaptic_ops[k])
    np.testing.assert_array_equal(grown.neuron_updates, ample.neuron_updates)
    assert ample.spikes["b"].any()


def test_flatten_bits_writes_every_set_bit_in_order():
    """``update._flatten_bits``: idx[n:] ← base + the set bits of a word, ascending, for words of 0 … 64 bits
    (the first four written without a data-dependent branch); entries before n are kept."""
    from sim.engine.update import _flatten_bits
    rng = np.random.default_rng(3)
    for bits in list(range(65)) + [5] * 20:
        pos = np.sort(rng.choice(64, bits, replace=False))
        m = np.uint64(sum(1 << int(p) for p in pos))
        idx = np.full(7 + 64 + 4, -1, np.int32)
        n = _flatten_bits(m, 128, idx, 7)
        assert n == 7 + bits
        np.testing.assert_array_equal(idx[7:n], 128 + pos)
        assert (idx[:7] == -1).all()


@pytest.mark.parametrize("numerics", ["loihi", "float"])
@pytest.mark.parametrize("density,rate", [(0.004, 0.05), (0.02, 0.3), (0.2, 0.1), (0.5, 0.6)])
def test_wide_populations_at_every_mark_density_equal_the_reference(numerics, density, rate):
    """Populations of hundreds of neurons, starting mid-bitmap-word, reached by sparse to dense projections:
    bitmap words with 1 … 64 marks (``_collect``), dense deliveries scanned (``_scan``) and ones of ≥ 1 event per
    neuron stepped whole (``_step_all``), FULL and REST modes, delays 1 and 3: spikes, synaptic ops and counts
    equal the dense reference."""
    loihi = numerics == "loihi"
    rng = np.random.default_rng(int(density * 1000) + int(rate * 10))
    lif = (lambda du, dv, vth: CubaLIF(du, dv, vth)) if loihi else (lambda du, dv, vth: CubaLIFFloat(
        (du + 1) / 4096, dv / 4096, float(vth)))
    dt = np.int16 if loihi else np.float32
    sizes = {"in": 301, "a": 257, "b": 190, "c": 77}
    pops = (Population("in", 301, Input()), Population("a", 257, lif(4095, 700, 60), depth=1),
            Population("b", 190, lif(1500, 300, 90), depth=2), Population("c", 77, lif(4095, 0, 30), depth=4))

    def w(pre, post, d):
        m = (rng.integers(-40, 128, (sizes[post], sizes[pre])) * 2).astype(dt)
        return np.where(rng.random(m.shape) < d, m, 0).astype(dt)
    projs = (Projection.from_dense("in-a", "in", "a", w("in", "a", density)),
             Projection.from_dense("a-b", "a", "b", w("a", "b", density), delay=3),
             Projection.from_dense("in-b", "in", "b", w("in", "b", density / 2)),
             Projection.from_dense("b-c", "b", "c", w("b", "c", min(1.0, 4 * density))),
             Projection.from_dense("in-c", "in", "c", w("in", "c", min(1.0, 8 * density)), delay=2))
    g = AerGraph(numerics, pops, projs, None, 10)
    x = {"in": rng.random((3, 10, 301)) < rate}
    ref, res = simulate_dense(g, x), simulate(g, x)
    for p in g.populations:
        np.testing.assert_array_equal(res.spikes[p.name], ref[p.name], err_msg=p.name)
        np.testing.assert_array_equal(res.spike_counts[p.name], ref[p.name].sum(axis=(1, 2)))
    assert ref["a"].any() and ref["c"].any()
    for pr in g.projections:
        np.testing.assert_array_equal(res.synaptic_ops[pr.name], ref[pr.pre].sum(axis=1) @ np.diff(pr.indptr))
