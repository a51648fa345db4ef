"""Batches sharded over a Dask cluster.

    simulate_sharded(graph, x) = concat_k simulate(graph, x[k-th shard])   (along the batch axis)

Samples are independent, so the result is identical to one ``simulate`` call
whatever the shard count or worker placement. The graph is scattered to every
worker once; each shard runs the numba engine in a worker. Without a client a
``LocalCluster`` (one process per shard, one thread each) is started and shut
down; ``scheduler="tcp://host:8786"`` points at a real cluster.
"""
from __future__ import annotations

import sys
from typing import Mapping

import numpy as np
from tqdm.auto import tqdm

from sim.engine.reference import check_inputs
from sim.engine.results import SimResult
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph


def merge_results(parts: list[SimResult]) -> SimResult:
    """Concatenate per-shard results along the batch axis (shard order)."""
    cat = lambda key: {k: np.concatenate([getattr(p, key)[k] for p in parts]) for k in getattr(parts[0], key)}  # noqa: E731
    return SimResult(cat("spikes"), cat("spike_counts"), cat("synaptic_ops"),
                     np.concatenate([p.neuron_updates for p in parts]), parts[0].ticks)


def shard_bounds(batch: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) sample ranges, sizes differing by at most one."""
    edges = np.linspace(0, batch, min(shards, batch) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def simulate_sharded(graph: AerGraph, inputs: Mapping[str, np.ndarray], *, shards: int = 2,
                     client=None, scheduler: str | None = None, record: bool = True,
                     progress: bool = False) -> SimResult:
    """``simulate`` with the batch split into ``shards`` tasks on a Dask cluster (see module doc)."""
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer, got {shards!r}")
    batch = check_inputs(graph, inputs)
    from distributed import Client, LocalCluster, as_completed

    own = client is None
    if own:
        client = (Client(scheduler, timeout="30s") if scheduler else
                  Client(LocalCluster(n_workers=min(shards, batch), threads_per_worker=1, processes=True,
                                      dashboard_address=None)))
    try:
        g = client.scatter(graph, broadcast=True)
        bounds = shard_bounds(batch, shards)
        futures = [client.submit(simulate, g, {k: np.asarray(v)[a:b] for k, v in inputs.items()},
                                 record=record, pure=False) for a, b in bounds]
        index = {f.key: i for i, f in enumerate(futures)}
        parts: list[SimResult | None] = [None] * len(futures)
        for fut in tqdm(as_completed(futures), total=len(futures), desc="shards", disable=not (progress and sys.stderr.isatty())):
            parts[index[fut.key]] = fut.result()
        return merge_results(parts)
    finally:
        if own:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
