"""Continuous-time mode: integer latencies reproduce the clocked engine; real latencies are deterministic."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_engine import random_graph

from sim.engine.continuous import simulate_continuous
from sim.engine.simulate import simulate
from spikeformer.runs.steps import graph_inputs, load_test_batch


def test_integer_latencies_equal_clocked_on_converted_transformer(tiny_run):
    _, graph, x, _ = load_test_batch(tiny_run, 8)
    inputs = graph_inputs(graph, x)
    clocked = simulate(graph, inputs)
    cont = simulate_continuous(graph, inputs)
    spikes = cont.to_spikes(graph, 8)
    for p in graph.populations:
        np.testing.assert_array_equal(spikes[p.name], clocked.spikes[p.name], err_msg=p.name)
    assert len(cont.events) == clocked.events > 0
    out = graph.population(graph.readout.pre)
    fired = clocked.spikes[out.name].any(axis=2)
    expect = np.where(fired.any(axis=1), fired.argmax(axis=1), np.nan)    # first input spike is at tick 0
    np.testing.assert_array_equal(cont.first_output_latency, expect)


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_integer_latencies_equal_clocked_on_random_graphs(numerics):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(random_graph(numerics))
    def check(case):
        g, x = case
        g = replace(g, projections=tuple(replace(pr, weight_exp=max(pr.weight_exp, 0)) for pr in g.projections))
        clocked = simulate(g, x)
        spikes = simulate_continuous(g, x).to_spikes(g, len(next(iter(x.values()))))
        for p in g.populations:
            np.testing.assert_array_equal(spikes[p.name], clocked.spikes[p.name], err_msg=p.name)
    check()


def test_real_latencies_are_deterministic_and_shorten_latency(tiny_run):
    _, graph, x, _ = load_test_batch(tiny_run, 4)
    inputs = graph_inputs(graph, x)
    fast = {pr.name: 0.5 * pr.delay + 0.01 for pr in graph.projections}
    a = simulate_continuous(graph, inputs, fast, t_end=graph.ticks)
    b = simulate_continuous(graph, inputs, fast, t_end=graph.ticks)
    np.testing.assert_array_equal(a.events, b.events)
    assert not np.all(a.events["time"] == np.round(a.events["time"]))
    slow = simulate_continuous(graph, inputs, t_end=graph.ticks)
    assert np.nanmax(a.first_output_latency) < np.nanmin(slow.first_output_latency)


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_latencies_are_named(tiny_run, bad):
    _, graph, x, _ = load_test_batch(tiny_run, 1)
    name = graph.projections[2].name
    with pytest.raises(ValueError, match=f"latencies\\['{name}'\\].*> 0"):
        simulate_continuous(graph, graph_inputs(graph, x), {name: bad})
    with pytest.raises(ValueError, match="unknown projection"):
        simulate_continuous(graph, graph_inputs(graph, x), {"nope": 1.0})
