"""Continuous-time mode: events with real timestamps, a real latency per projection.

A spike of neuron i at time τ is delivered through projection p at τ + L_p
(L_p > 0, finite; default L_p = its integer delay). Events are processed in
timestamp order from a heap; tie-breaking is deterministic: every delivery
carrying the same timestamp is accumulated first, then the neurons it touched
are updated in index order. A neuron updated at τ after its previous update at
τ' takes ⌈τ − τ'⌉ − 1 input-free steps (its leak) and then one LIF step with the
accumulated input (its model's kernel, ``sim.neurons``); a neuron left with u ≠ 0 wakes itself at
τ + 1 (the clocked engine steps it every tick). With integer latencies every
time is an integer and this is exactly the clocked engine (tested).

Input spikes of tick t happen at time t. The result lists every spike as an
event (``sim.engine.trace.EVENT_DTYPE``, real ``time``) and, per sample, the latency
from the first input spike to the first spike of the readout population.
A graded population (``sim.ir``) sends its summed input g as the payload of its
event (``payload`` field; w·g is delivered), only where g ≠ 0; it keeps no state.
Limitation: weight_exp < 0 (Lava's floor of a shifted sum) is refused here.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Mapping

import numba
import numpy as np
from numba import types
from numba.typed import List

from sim.engine.flatgraph import KIND_GRADED, KIND_INPUT, flatten
from sim.engine.reference import check_inputs, source_spikes
from sim.engine.trace import EVENT_DTYPE
from sim.ir.graph import AerGraph
from sim.neurons.dispatch import kernel_idle, kernel_key, kernel_step
from sim.system import numba_cache  # noqa: F401  (before any @numba.njit(cache=True): a writable cache folder)


def check_latencies(graph: AerGraph, latencies: Mapping[str, float] | None) -> np.ndarray:
    """Latency per projection (graph order); ValueError naming a bad projection or value."""
    latencies = dict(latencies or {})
    names = {pr.name for pr in graph.projections}
    unknown = set(latencies) - names
    if unknown:
        raise ValueError(f"latencies: unknown projection(s) {sorted(unknown)}")
    out = np.empty(len(graph.projections))
    for k, pr in enumerate(graph.projections):
        lat = float(latencies.get(pr.name, pr.delay))
        if not np.isfinite(lat) or lat <= 0:
            raise ValueError(f"latencies['{pr.name}']: must be a finite number > 0, got {lat}")
        if pr.weight_exp < 0:
            raise ValueError(f"projection '{pr.name}': weight_exp < 0 is not supported in continuous time")
        out[k] = lat
    return out


@numba.njit(cache=True)
def _run_sample(pop_of, params, code, kernels, kind, row_ptr, row_base, pre_start, target, weight, lat,
                src_ptr, src_proj, in_t, in_i, acc_zero, state_zero, t_end):
    """One sample; returns (spike times, spike neurons, payloads).

    Heap entries (time, kind, a, b, g): kind 0 = neuron b is due (input spike or
    self wake-up), kind 1 = delivery of presynaptic neuron b through projection a
    with payload g (1 for a spike).
    Projection a's row for local presynaptic index r is
    ``target/weight[row_ptr[row_base[a] + r] : row_ptr[row_base[a] + r + 1]]``.
    """
    n = len(pop_of)
    one = acc_zero + 1
    heap = [(0.0, 0, 0, 0, one)]
    heap.pop()
    for k in range(len(in_t)):
        heapq.heappush(heap, (float(in_t[k]), 0, 0, int(in_i[k]), one))
    acc = np.full(n, acc_zero)
    u = np.full(n, state_zero)
    v = np.full(n, state_zero)
    last = np.full(n, -1.0)
    mark = np.zeros(n, np.bool_)
    touched = np.empty(n, np.int64)
    out_t = List.empty_list(types.float64)
    out_i = List.empty_list(types.int64)
    out_g = [one]
    out_g.pop()
    while len(heap) > 0 and heap[0][0] <= t_end:
        now = heap[0][0]
        n_touched = 0
        spikers = List.empty_list(types.int64)
        payloads = [one]
        payloads.pop()
        while len(heap) > 0 and heap[0][0] == now:          # everything carrying this timestamp
            _, ev, a, b, g = heapq.heappop(heap)
            if ev == 0:
                if kind[pop_of[b]] == KIND_INPUT:
                    spikers.append(b)
                    payloads.append(one)
                elif not mark[b]:
                    mark[b] = True
                    touched[n_touched] = b
                    n_touched += 1
            else:
                r = row_base[a] + b - pre_start[a]
                for s in range(row_ptr[r], row_ptr[r + 1]):
                    j = target[s]
                    acc[j] += weight[s] * g
                    if not mark[j]:
                        mark[j] = True
                        touched[n_touched] = j
                        n_touched += 1
        for i in np.sort(touched[:n_touched]):               # deterministic: index order
            mark[i] = False
            p = pop_of[i]
            if kind[p] == KIND_GRADED:                       # stateless relay: payload = summed input
                g = acc[i]
                acc[i] = acc_zero
                if g != acc_zero:
                    spikers.append(i)
                    payloads.append(g)
                continue
            gap = 1 if last[i] < 0 else int(np.ceil(now - last[i]))
            if gap > 1 and v[i] != 0:
                v[i] = kernel_idle(code[p], v[i], params[p, 0], params[p, 1], params[p, 2], gap - 1)
            un, vn, fired = kernel_step(code[p], u[i], v[i], acc[i], params[p, 0], params[p, 1], params[p, 2])
            acc[i] = acc_zero
            u[i] = un
            v[i] = vn
            last[i] = now
            if un != 0:
                heapq.heappush(heap, (now + 1.0, 0, 0, i, one))
            if fired:
                spikers.append(i)
                payloads.append(one)
        for e in range(len(spikers)):
            i, g = spikers[e], payloads[e]
            out_t.append(now)
            out_i.append(i)
            out_g.append(g)
            for q in range(src_ptr[i], src_ptr[i + 1]):
                k = src_proj[q]
                heapq.heappush(heap, (now + lat[k], 1, k, i, g))
    return out_t, out_i, out_g


@dataclass
class ContinuousResult:
    """Spike events per sample (time real) and input→first-output latency per sample (NaN if none)."""

    events: np.ndarray
    first_output_latency: np.ndarray

    def to_spikes(self, graph: AerGraph, batch: int) -> dict[str, np.ndarray]:
        """Dense (batch, ticks, size) arrays; valid when every time is an integer tick."""
        if not np.all(self.events["time"] == np.round(self.events["time"])):
            raise ValueError("to_spikes needs integer event times (integer latencies)")
        out = {p.name: np.zeros((batch, graph.ticks, p.size), bool) for p in graph.populations}
        for k, p in enumerate(graph.populations):
            e = self.events[(self.events["population"] == k) & (self.events["time"] < graph.ticks)]
            out[p.name][e["sample"], e["time"].astype(np.int64), e["neuron"]] = True
        return out


def simulate_continuous(graph: AerGraph, inputs: Mapping[str, np.ndarray],
                        latencies: Mapping[str, float] | None = None, t_end: float | None = None) -> ContinuousResult:
    """Run every sample in continuous time (see module docstring) until ``t_end`` (default graph.ticks − 1)."""
    batch = check_inputs(graph, inputs)
    lat = check_latencies(graph, latencies)
    arith = graph.arith
    flat = flatten(graph)
    offsets = graph.offsets()
    row_ptrs, targets, weights, row_base, pre_start = [], [], [], [], []
    base = syn = 0
    for pr in graph.projections:
        row_base.append(base)
        pre_start.append(offsets[pr.pre])
        row_ptrs.append(pr.indptr[:-1] + syn)
        base += pr.n_pre
        syn += pr.n_synapses
        targets.append(pr.indices.astype(np.int64) + offsets[pr.post])
        weights.append(arith.continuous_weights(pr.weights, pr.weight_exp))
    row_ptr = np.concatenate(row_ptrs + [np.array([syn])]).astype(np.int64)
    src = np.concatenate([np.arange(graph.population(pr.pre).size) + offsets[pr.pre] for pr in graph.projections]
                         or [np.zeros(0, np.int64)])
    proj_of = np.concatenate([np.full(graph.population(pr.pre).size, k) for k, pr in enumerate(graph.projections)]
                             or [np.zeros(0, np.int64)])
    order = np.argsort(src, kind="stable")
    src_ptr = np.zeros(graph.n_neurons + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=graph.n_neurons), out=src_ptr[1:])
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    args = (flat.pop_of, flat.params, flat.code, kernel_key(), flat.kind, row_ptr, np.array(row_base, np.int64),
            np.array(pre_start, np.int64), cat(targets, np.int64), cat(weights, arith.acc_dtype),
            lat, src_ptr, proj_of[order].astype(np.int64))
    zero = (arith.acc_dtype(0), arith.state_dtype(0))
    t_end = float(graph.ticks - 1 if t_end is None else t_end)
    parts, first = [], np.full(batch, np.nan)
    pop_index = np.searchsorted(np.array(list(offsets.values())), np.arange(graph.n_neurons), side="right") - 1
    readout = graph.readout.pre if graph.readout is not None else graph.populations[-1].name
    r_lo, r_hi = offsets[readout], offsets[readout] + graph.population(readout).size
    spikes = source_spikes(graph, inputs, batch)
    for b in range(batch):
        in_t, in_i = [], []
        for p in graph.sources:
            t, i = np.nonzero(spikes[p.name][b])
            in_t.append(t); in_i.append(i + offsets[p.name])
        ts, ids, gs = _run_sample(*args, np.concatenate(in_t).astype(np.float64), np.concatenate(in_i).astype(np.int64),
                              zero[0], zero[1], t_end)
        ts, ids = np.asarray(ts, np.float64), np.asarray(ids, np.int64)
        ev = np.empty(len(ts), EVENT_DTYPE)
        ev["time"], ev["sample"], ev["population"] = ts, b, pop_index[ids]
        ev["neuron"], ev["payload"] = ids - np.array(list(offsets.values()))[pop_index[ids]], np.asarray(gs)
        parts.append(ev)
        out = (ids >= r_lo) & (ids < r_hi)
        inp = np.isin(pop_index[ids], [k for k, p in enumerate(graph.populations) if p.model.needs_input])
        if out.any() and inp.any():
            first[b] = ts[out].min() - ts[inp].min()
    return ContinuousResult(np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE), first)
