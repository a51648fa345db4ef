"""The central promise: torch model (loihi mode) = event-driven simulator = Lava, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from spikeformer.lower.convert import compare_to_model
from spikeformer.runs.steps import graph_inputs, load_test_batch, model_spikes


def three_way(run_dir, samples):
    from loihi_export.run.runner import run_lava
    from sim.engine.simulate import simulate

    model, graph, x, y = load_test_batch(run_dir, samples)
    logits, rec = model_spikes(model, x)
    inputs = graph_inputs(graph, x)
    sim = simulate(graph, inputs).spikes
    lava = run_lava(graph, inputs, timeout=900)
    return graph, logits, rec, sim, lava


def assert_identical(graph, logits, rec, sim, lava):
    eq_sim, mism_sim = compare_to_model(graph, rec, sim)
    eq_lava, mism_lava = compare_to_model(graph, rec, lava)
    assert mism_sim == 0 and eq_sim.all()
    assert mism_lava == 0 and eq_lava.all()
    for p in graph.populations:                     # every tick, including after the model's window
        np.testing.assert_array_equal(lava[p.name], sim[p.name], err_msg=p.name)
    total = sum(int(s.sum()) for s in sim.values())
    assert total > 0 and all(sim[p.name].any() for p in graph.populations), "populations must spike"
    pred = graph.readout.logits(sim[graph.readout.pre])
    np.testing.assert_array_equal(pred, logits)      # integer readout identical too


@pytest.mark.parametrize("kind", ["sdsa", "kwta", "ssa", "stream_k", "sdsa_causal", "kwta_causal", "depth0"])
def test_three_way_bit_exact_20_test_digits(tiny_runs, kind):
    from conftest import TINY_VARIANTS
    graph, *rest = three_way(tiny_runs(kind), 20)
    assert graph.metadata["attention"] == TINY_VARIANTS[kind][0].get("attention", "sdsa")
    assert graph.metadata["model"]["arch"]["depth"] == TINY_VARIANTS[kind][0].get("depth", 1)
    assert graph.metadata["model"]["arch"]["causal"] == kind.endswith("_causal")
    assert_identical(graph, *rest)


def test_stream_kwta_and_fan_in_hold_in_the_lowered_graph(tiny_runs):
    """stream_k (group rule): every stream k-WTA population spikes ≤ k per token per tick, and its raw population more
    (so the circuit acts); fan_in: every neuron fed by a trained matrix has exactly F synapses per pre token."""
    graph, logits, rec, sim, lava = three_way(tiny_runs("stream_k"), 20)
    cfg = graph.metadata["model"]
    k, F, N = cfg["arch"]["stream_k"], cfg["weights"]["fan_in"], cfg["arch"]["tokens"]
    kwta = [p for p in graph.populations if p.role == "stream_kwta"]
    assert [p.name for p in kwta] == ["b0.xk", "b0.yk", "outk"] and graph.readout.pre == "outk"
    assert cfg["arch"]["wta_rule"] == "group" and any(p.role == "wta_tree" for p in graph.populations)   # the tree circuit
    for p in kwta:
        per_token = sim[p.name].reshape(*sim[p.name].shape[:2], N, -1).sum(axis=-1)
        raw = sim[p.name[:-1]].reshape(*sim[p.name].shape[:2], N, -1).sum(axis=-1)
        assert per_token.max() <= k < raw.max(), p.name
    for pr in graph.projections:
        if pr.name in ("b0.wq", "b0.wk", "b0.wv", "b0.wo->r1", "b0.w1", "b0.w2->r2"):
            post = graph.population(pr.post)
            fan = np.bincount(pr.indices, minlength=post.size)
            assert (fan == F).all(), pr.name
        if pr.name == "emb->r0":
            assert (np.diff(pr.indptr) == F).all()          # embedding: F synapses out of every input feature


def test_strength_rule_three_way_and_its_circuit_in_the_lowered_graph(tiny_runs):
    """wta_rule = "strength" on the stream and hidden layer (spikeformer.arch.wta_strength): torch = sim = Lava on 8
    test digits (its ~360 Lava processes cost ~4 s per sample), every k-WTA population ≤ k spikes per token per tick
    where its raw population spikes more, and every voltage probe spikes only where its twin does."""
    graph, logits, rec, sim, lava = three_way(tiny_runs("strength"), 8)
    assert_identical(graph, logits, rec, sim, lava)
    cfg, N = graph.metadata["model"]["arch"], graph.metadata["model"]["arch"]["tokens"]
    kwta = {p.name: p for p in graph.populations if p.role in ("stream_kwta", "hidden_kwta")}
    assert cfg["wta_rule"] == "strength" and sorted(kwta) == ["b0.hk", "b0.xk", "b0.yk", "outk"]
    for name, p in kwta.items():
        k = cfg["hidden_k" if p.role == "hidden_kwta" else "stream_k"]
        per_token = sim[name].reshape(*sim[name].shape[:2], N, -1).sum(axis=-1)
        raw = sim[name[:-1]].reshape(*sim[name].shape[:2], N, -1).sum(axis=-1)
        assert per_token.max() <= k < raw.max(), name
    probes = [p for p in graph.populations if p.role == "wta_probe"]
    assert len(probes) == 4 * 7 and all(type(p.model).__name__ == "VoltageProbe" for p in probes)
    for p in probes:
        twin = p.name.split(".probe")[0][:-1]                       # b0.xk.probe3 → b0.x
        d = graph.population(twin).depth - p.depth
        assert d == 0 and not (sim[p.name] & ~sim[twin]).any(), p.name


@pytest.mark.slow
@pytest.mark.timeout(3600)          # minutes of training and/or the whole test split (default timeout 900 s)
@pytest.mark.parametrize("kind", ["kwta", "ssa"])
def test_three_way_bit_exact_all_360_test_digits(tiny_runs, kind):
    assert_identical(*three_way(tiny_runs(kind), None))


@pytest.mark.slow
@pytest.mark.timeout(3600)          # minutes of training and/or the whole test split (default timeout 900 s)
def test_three_way_bit_exact_all_360_test_digits_demo_preset(tmp_path_factory):
    from spikeformer.configure import presets
    from spikeformer.runs.steps import convert_run
    from spikeformer.train.trainer import train

    out = tmp_path_factory.mktemp("demo")
    model_cfg, train_cfg = presets.preset("demo")
    res = train(model_cfg, train_cfg, out, progress=False)
    assert res.test_accuracy >= 0.95 and model_cfg.arch.timesteps <= 8
    convert_run(out)
    assert_identical(*three_way(out, None))
