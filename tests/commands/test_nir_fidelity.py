"""Loihi quantisation of imported graphs keeps their behaviour: the NIR paper's CNN and RNN
(tests/fixtures/nir, BSD-3 from neuromorphs/NIR) and an snnTorch net trained here on digits.
benchmarks/test_bench_nir_fidelity.py prints the same figures on more samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from test_nir_import import export

from sim.engine.simulate import simulate
from sim.ir.bounds import check_bounds
from sim.ir.quantize import balanced_round, quantize, synapse_words
from spikeformer.interchange.nir_import import import_nir, lower
from spikeformer.runs.fidelity import FloatComparison

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nir"
CNN, RNN = FIXTURES / "cnn_sinabs.nir", FIXTURES / "braille_noDelay_bias_zero.nir"
TICKS = 50


def event_frames(n_per_class: int, seed: int, ticks: int = TICKS, size: int = 34) -> np.ndarray:
    """The project's event generator at the CNN's 2×size×size sensor, binned: (samples, ticks, 2·size²) bool."""
    from spikeformer.data.event_generator import DURATION_US, generate_events
    streams, _ = generate_events(n_per_class, seed, size=size)
    x = np.zeros((len(streams), ticks, 2, size, size), bool)
    for i, e in enumerate(streams):
        t = np.minimum(e["t"].astype(np.int64) * ticks // DURATION_US, ticks - 1)
        x[i, t, e["p"].astype(int), e["y"].astype(int), e["x"].astype(int)] = True
    return x.reshape(len(x), ticks, -1)


def random_spikes(samples: int, size: int, seed: int, density: float = 0.2, ticks: int = TICKS) -> np.ndarray:
    return np.random.default_rng(seed).random((samples, ticks, size)) < density


def fidelity(graph, x: np.ndarray, labels=None, **options) -> dict:
    """FloatComparison figures of ``quantize(graph, **options)`` on inputs ``x``."""
    q, _ = quantize(graph, **options)
    check_bounds(q)
    c = FloatComparison(graph, q)
    inp = {graph.inputs[0].name: x}
    c.add(simulate(graph, inp).spikes, simulate(q, inp).spikes)
    return c.figures(labels)


def digits_data(timesteps: int = 8):
    """(x_train, y_train, x_test, y_test) of the digits dataset encoded as ``--dataset digits`` encodes it."""
    from spikeformer.configure.validate import model_config
    from spikeformer.data import registry as datasets
    from spikeformer.data.registry import encode, load_dataset
    cfg = model_config(**datasets.get("digits").defaults({"dataset": "digits", "timesteps": timesteps}))
    data = load_dataset(cfg)
    flat = (lambda x: encode(cfg, x).numpy().reshape(len(x), timesteps, -1).astype(np.float32))
    return flat(data.x_train), np.asarray(data.y_train), flat(data.x_test), np.asarray(data.y_test)


def trained_digits_net(epochs: int = 4, hidden: int = 48) -> tuple[torch.nn.Module, float]:
    """A 320-hidden-10 snnTorch Leaky net trained on digits (rate-coded output); (net, its test accuracy)."""
    xtr, ytr, xte, yte = digits_data()
    torch.manual_seed(0)
    lif = (lambda n: snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.full((n,), 1.0), init_hidden=True,
                               reset_mechanism="zero", reset_delay=False))
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[2], hidden), lif(hidden), torch.nn.Linear(hidden, 10), lif(10))
    opt = torch.optim.Adam(net.parameters(), 3e-3)

    def counts(x):
        snn_utils.reset(net)
        return sum(net(x[:, t]) for t in range(x.shape[1]))
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for _ in range(epochs):
        for b in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(counts(x[b]), y[b]).backward()
            opt.step()
    with torch.no_grad():
        acc = float((counts(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    return net.eval(), acc


def test_balanced_rounding_cancels_each_targets_summed_error():
    rng = np.random.default_rng(0)
    indptr, n_post = np.arange(0, 41 * 30, 30), 30
    indices = np.tile(np.arange(30), 40).astype(np.int32)
    x = rng.random(40 * 30) * 20
    q = balanced_round(indptr, indices, x, np.ones(40), n_post, 254.0)
    drift = np.bincount(indices, q - x, minlength=n_post)
    nearest = np.bincount(indices, np.round(x) - x, minlength=n_post)
    assert np.abs(q - x).max() < 1 and np.abs(drift).max() <= 0.5 + 1e-9 < np.abs(nearest).max()


def test_two_synapse_words_carry_each_weight_to_half_an_input_unit():
    g = import_nir(RNN, TICKS)
    pr = next(p for p in g.projections if p.name == "lif1.lif->lif1.lif")
    lam = 2000.0
    parts = synapse_words(pr, lam, g.population(pr.post).size)
    assert {p.name for p in parts} == {f"{pr.name}:{s}" for s in ("pos", "neg", "pos:lo", "neg:lo")}
    dense = sum(p.to_dense(38).astype(np.float64) * 2.0 ** p.weight_exp for p in parts)
    want = pr.to_dense(38).astype(np.float64) * lam
    assert np.abs(dense - want).max() <= 1.0 and all(abs(int(p.weights.max(initial=0))) <= 254 for p in parts)
    one = sum(p.to_dense(38).astype(np.float64) * 2.0 ** p.weight_exp
              for p in synapse_words(pr, lam, 38, words=1))
    assert np.abs(one - want).max() > 8                          # one 8-bit word cannot: the second word matters


def test_braille_rnn_keeps_its_output_spikes_on_loihi():
    g = import_nir(RNN, TICKS)
    f = fidelity(g, random_spikes(16, 12, seed=3))
    assert f["output_population"] == "lif2"
    assert f["output_spike_jaccard"] >= 0.9, f["per_population"]
    assert f["per_population"]["lif1.lif"]["spike_jaccard"] >= 0.9
    old = fidelity(g, random_spikes(16, 12, seed=3), words=1)          # one word: coarser, still far above 0.35
    assert old["output_spike_jaccard"] < f["output_spike_jaccard"]


def test_sinabs_cnn_first_layers_keep_their_spikes_on_event_inputs():
    g = import_nir(CNN, TICKS)
    f = fidelity(g, event_frames(1, seed=0)[:4])
    pops = f["per_population"]
    assert pops["1"]["spike_jaccard"] >= 0.95 and pops["3"]["spike_jaccard"] >= 0.85, pops
    assert f["output_population"] == "12" and 0 < f["output_rate_float"]
    assert abs(f["output_rate_loihi"] - f["output_rate_float"]) <= 0.5 * f["output_rate_float"], f


@pytest.fixture(scope="module")
def digits_net():
    return trained_digits_net()


def test_snntorch_digits_net_keeps_accuracy_and_predictions_and_runs_in_lava(digits_net):
    from loihi_export.run.runner import run_lava
    net, torch_acc = digits_net
    graph = lower(export(net, 320), 8)
    _, _, xte, yte = digits_data()
    x = xte.astype(bool)
    f = fidelity(graph, x, yte)
    assert torch_acc > 0.85 and abs(f["accuracy_float"] - torch_acc) < 0.02, (f, torch_acc)
    assert abs(f["accuracy_loihi"] - f["accuracy_float"]) <= 0.01 and f["prediction_agreement"] >= 0.98, f
    q, _ = quantize(graph)
    lava = run_lava(q, {"input": x[:20]}, timeout=300)
    fixed = simulate(q, {"input": x[:20]}).spikes
    for p in q.populations:
        np.testing.assert_array_equal(lava[p.name], fixed[p.name], err_msg=p.name)


def test_import_calibrates_on_its_file_and_reports_the_output_first(tmp_path):
    from spikeformer.runs.imported import import_run
    np.savez(tmp_path / "in.npz", input=random_spikes(8, 12, seed=4))
    np.savez(tmp_path / "cal.npz", input=random_spikes(8, 12, seed=5))
    f = import_run("nir", RNN, tmp_path / "run", numerics="loihi", inputs=tmp_path / "in.npz",
                   calibrate=tmp_path / "cal.npz")
    assert f["calibrated_on"].endswith("cal.npz") and set(f["threshold_units"]) == {"lif1.lif", "lif2"}
    assert f["output_population"] == "lif2" and f["output_spike_jaccard"] >= 0.9 and f["populations"] == 4
    assert f["loihi_synapses"] > f["synapses"]                   # two words per weight
    with pytest.raises(ValueError, match="--calibrate tunes the loihi quantisation"):
        import_run("nir", RNN, tmp_path / "run2", inputs=tmp_path / "in.npz", calibrate=tmp_path / "cal.npz")
