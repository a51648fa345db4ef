"""Plain dense clocked simulation of an AER graph: the readable oracle.

Every tick, every neuron: ``a_post[t] = Σ_proj shift(W_proj · s_pre[t − delay], exp)``
then one LIF step (``sim.numerics``); a graded population sends its summed input
``g = a`` as payload (``s_pre`` is then ``g``, an event iff ``g ≠ 0``). O(ticks · synapses) work regardless of
activity — the cost the event-driven engine avoids. Used by tests only.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from sim import numerics as nm
from sim.ir import AerGraph


def check_inputs(graph: AerGraph, inputs: Mapping[str, np.ndarray]) -> int:
    """Validate input spike arrays (batch, timesteps, size); return the batch size."""
    batch = None
    for p in graph.inputs:
        if p.name not in inputs:
            raise ValueError(f"inputs: missing spikes for input population '{p.name}'")
        x = np.asarray(inputs[p.name])
        if x.ndim != 3 or x.shape[2] != p.size or x.shape[1] > graph.timesteps:
            raise ValueError(f"inputs['{p.name}']: expected shape (batch, ≤{graph.timesteps}, {p.size}), got {x.shape}")
        if batch is not None and x.shape[0] != batch:
            raise ValueError(f"inputs['{p.name}']: batch {x.shape[0]} differs from {batch}")
        batch = x.shape[0]
    if batch is None:
        raise ValueError("graph has no input population")
    return batch


def simulate_dense(graph: AerGraph, inputs: Mapping[str, np.ndarray], payloads: dict | None = None
                   ) -> dict[str, np.ndarray]:
    """Spikes of every population, ``{name: bool array (batch, graph.ticks, size)}`` (graded: payload ≠ 0).

    With ``payloads`` (a dict), it is filled with each graded population's payloads (batch, ticks, size)."""
    batch = check_inputs(graph, inputs)
    ticks = graph.ticks
    loihi = graph.numerics == "loihi"
    pops = {p.name: p for p in graph.populations}
    spikes = {p.name: np.zeros((batch, ticks, p.size), bool) for p in graph.populations}
    for p in graph.inputs:
        x = np.asarray(inputs[p.name], bool)
        spikes[p.name][:, :x.shape[1]] = x
    dense = {pr.name: pr.to_dense(pops[pr.post].size).astype(np.int64 if loihi else np.float32)
             for pr in graph.projections}
    state_dtype = np.int32 if loihi else np.float32
    u = {p.name: np.zeros((batch, p.size), state_dtype) for p in graph.populations}
    v = {p.name: np.zeros((batch, p.size), state_dtype) for p in graph.populations}
    step = nm.lif_step_loihi_np if loihi else nm.lif_step_float_np
    graded = {p.name: np.zeros((batch, ticks, p.size), np.int64 if loihi else np.float64)
              for p in graph.populations if p.kind == "graded"}
    for t in range(ticks):
        for p in graph.populations:
            if p.kind == "input":
                continue
            a = np.zeros((batch, p.size), np.int64 if loihi else np.float32)
            for pr in graph.projections:
                if pr.post != p.name or t - pr.delay < 0:
                    continue
                src = graded[pr.pre] if pr.pre in graded else spikes[pr.pre]
                s = src[:, t - pr.delay].astype(a.dtype)
                contrib = s @ dense[pr.name].T
                a += nm.shift_activation(contrib, pr.weight_exp) if loihi else contrib * np.float32(2.0 ** pr.weight_exp)
            if p.kind == "graded":
                graded[p.name][:, t] = a
                spikes[p.name][:, t] = a != 0
                continue
            u[p.name], v[p.name], s_out = step(u[p.name], v[p.name], a, p.du, p.dv, p.vth)
            spikes[p.name][:, t] = s_out
    if payloads is not None:
        payloads.update(graded)
    return spikes
