"""Batches sharded over a Dask LocalCluster give exactly the single-process result."""
from __future__ import annotations

import numpy as np
import pytest

from sim.engine.distributed import shard_bounds, simulate_sharded
from sim.engine.simulate import simulate
from spikeformer.runs.steps import graph_inputs, load_test_batch


def test_shard_bounds_cover_the_batch_once():
    for batch, shards in [(10, 3), (3, 8), (1, 1), (7, 7)]:
        b = shard_bounds(batch, shards)
        assert b[0][0] == 0 and b[-1][1] == batch and all(x[1] == y[0] for x, y in zip(b, b[1:]))
        assert all(stop > start for start, stop in b)


def test_sharded_simulation_equals_one_process(tiny_run):
    _, graph, x, _ = load_test_batch(tiny_run, 9)
    inputs = graph_inputs(graph, x)
    one = simulate(graph, inputs)
    sharded = simulate_sharded(graph, inputs, shards=2)
    for name in one.spikes:
        np.testing.assert_array_equal(sharded.spikes[name], one.spikes[name], err_msg=name)
        np.testing.assert_array_equal(sharded.spike_counts[name], one.spike_counts[name])
    for name in one.synaptic_ops:
        np.testing.assert_array_equal(sharded.synaptic_ops[name], one.synaptic_ops[name])
    np.testing.assert_array_equal(sharded.neuron_updates, one.neuron_updates)
    assert sharded.synaptic_ops_per_inference == one.synaptic_ops_per_inference > 0


def test_bad_shard_count_is_named(tiny_run):
    _, graph, x, _ = load_test_batch(tiny_run, 2)
    with pytest.raises(ValueError, match="shards must be a positive integer, got 0"):
        simulate_sharded(graph, graph_inputs(graph, x), shards=0)
