"""Lower a trained model to the AER graph IR (one population per PopSpec, one projection per ProjSpec).

CSR synapse tables, population index = token·C + channel (C-order of the shape):

* ``linear`` (token-shared W, shape (out, in)): pre (n, i) → post (n, j), weight W[j, i],
  only for W[j, i] ≠ 0 — block-diagonal over tokens.
* fixed ops (``identity``, ``token_sum``, attention circuits, …): the synapse
  tables of ``spikeformer.arch.wiring``, the same ones the torch model multiplies by.
* populations → neuron models (``sim.neurons``): ``input`` → ``Input``, ``graded`` (the
  residual stream's relays, ``spikeformer.arch``) → ``GradedRelay``, ``lif`` → its spec's model (``CubaLIF``,
  or the k-WTA by strength's ``VoltageProbe``) in loihi numerics, its float form (``float_equivalent``) in
  float; a projection keeps its spec's ``weight_exp``.

Delays: depth(p) = longest path from the input (``sim.ir.balance_delays``);
delay = depth(post) − depth(pre), so a population at depth d sees the
zero-delay model's inputs shifted by exactly d ticks. The readout window is
[depth(out), depth(out) + T).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from sim.ir.graph import AerGraph, Population, Projection, Readout, balance_delays
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Input
from sim.numerics import ARITHMETIC
from spikeformer.arch import wiring
from spikeformer.arch.nodes import ProjSpec, Spec
from spikeformer.model.transformer import SpikingTransformer

SPEC_MODELS = {"input": lambda params: Input(), "graded": lambda params: GradedRelay(),
               "lif": lambda params: params}             # its loihi model: CubaLIF or VoltageProbe


MODEL_ROLES = frozenset({"input", "stream", "stream_kwta", "q", "k", "v", "attn", "hidden", "hidden_kwta"})   # recorded by the model


def token_shared_csr(w: np.ndarray, tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of kron(I_tokens, w) with pre as rows; w has shape (out, in). Zeros are dropped."""
    n_out, n_in = w.shape
    wt = w.T                                                    # (in, out)
    row_len = (wt != 0).sum(axis=1)                             # synapses per pre channel
    pre_ch, post_ch = np.nonzero(wt)
    vals = wt[pre_ch, post_ch]
    indptr = np.concatenate([[0], np.cumsum(np.tile(row_len, tokens))]).astype(np.int64)
    offsets = np.repeat(np.arange(tokens) * n_out, len(post_ch))
    indices = (np.tile(post_ch, tokens) + offsets).astype(np.int32)
    return indptr, indices, np.tile(vals, tokens)


def lower_spec(spec: Spec, numerics: str, timesteps: int, linear: Callable[[ProjSpec], tuple] | None = None,
               readout: Callable[[dict[str, int]], Readout | None] = lambda depth: None,
               metadata: dict | None = None) -> AerGraph:
    """The AER graph of a spec: populations with balanced depths, fixed ops from
    ``spikeformer.arch.wiring``, ``linear(pr)`` → CSR for trained projections."""
    depth = balance_delays(spec.populations, [(p.pre, p.post) for p in spec.projections])
    pops = []
    for p in spec.populations:
        model = SPEC_MODELS[p.kind](p.params)
        if numerics not in model.numerics:
            model = model.float_equivalent()
        pops.append(Population(p.name, int(np.prod(p.shape)), model, p.shape, depth[p.name], p.role))
    wdtype = ARITHMETIC[numerics].weight_dtype
    projs = []
    for pr in spec.projections:
        if pr.op == "linear":
            if linear is None:
                raise ValueError(f"projection {pr.name!r}: a linear projection needs trained weights")
            indptr, indices, weights = linear(pr)
        else:
            pre, post = spec.shape(pr.pre), spec.shape(pr.post)
            indptr, indices, weights = wiring.csr(wiring.synapses(pr.op, pre, post, pr.weight, pr.groups, pr.arity,
                                                                  pr.index), int(np.prod(pre)))
        projs.append(Projection(pr.name, pr.pre, pr.post, indptr, indices, np.asarray(weights).astype(wdtype),
                                delay=depth[pr.post] - depth[pr.pre], weight_exp=pr.weight_exp))
    graph = AerGraph(numerics, tuple(pops), tuple(projs), readout(depth), timesteps, metadata or {})
    graph.check_delays()
    return graph


@torch.no_grad()
def to_graph(model: SpikingTransformer) -> AerGraph:
    """The AER graph of ``model`` in its numeric mode (see module docstring)."""
    cfg, spec = model.cfg, model.spec
    arith = ARITHMETIC[cfg.neuron.numerics]

    def linear(pr: ProjSpec) -> tuple:
        w = model.weight(pr.param).cpu().numpy()
        return token_shared_csr(w.astype(arith.weight_dtype), cfg.arch.tokens)

    def readout(depth: dict[str, int]) -> Readout:
        ro_w = model.readout_weight().cpu().numpy()
        z = spec.readout_pre
        n_tok = spec.shape(z)[0]
        if cfg.arch.per_token:                                   # next-token logits at every token
            return Readout(z, ro_w.astype(arith.readout_dtype), depth[z], depth[z] + cfg.arch.timesteps, True)
        return Readout(z, np.tile(ro_w, (1, n_tok)).astype(arith.readout_dtype),
                       depth[z], depth[z] + cfg.arch.timesteps)

    return lower_spec(spec, cfg.neuron.numerics, cfg.arch.timesteps, linear, readout,
                      {"model": cfg.to_dict(), "attention": cfg.arch.attention})


def compare_to_model(graph: AerGraph, model_spikes: dict[str, np.ndarray], spikes: dict[str, np.ndarray]
                     ) -> tuple[np.ndarray, int]:
    """Compare backend spikes with the zero-delay model's, population by population.

    ``model_spikes[name]``: (B, T, *shape); ``spikes[name]``: (B, ticks, size). Ticks
    [0, depth + T) of each population the model records must equal the model's
    spikes shifted by depth (silent before); the model records every population but
    the attention circuits' inner neurons and the stream's graded relays, which the
    equality of their outputs covers. Returns (per-sample "every spike equal" flags,
    number of mismatched (sample, tick, neuron) entries).
    """
    missing = [p.name for p in graph.populations if p.role in MODEL_ROLES and p.name not in model_spikes]
    if missing:
        raise ValueError(f"model spikes: no record of population(s) {missing[:4]} that the model computes")
    equal, mismatched = None, 0
    for p in graph.populations:
        if p.name not in model_spikes:
            continue
        m = np.asarray(model_spikes[p.name]).reshape(-1, graph.timesteps, p.size)
        window = np.asarray(spikes[p.name])[:, :p.depth + graph.timesteps]
        expect = np.zeros_like(window)
        expect[:, p.depth:] = m
        diff = window != expect
        mismatched += int(diff.sum())
        ok = ~diff.reshape(len(diff), -1).any(axis=1)
        equal = ok if equal is None else equal & ok
    return equal, mismatched
