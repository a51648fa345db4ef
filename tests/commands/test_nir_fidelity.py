"""Loihi quantisation of imported graphs keeps their behaviour: the NIR paper's CNN and RNN
(tests/fixtures/nir, BSD-3 from neuromorphs/NIR) and an snnTorch net trained here on digits; the CNN's
output spikes at the float graph's own ceiling (its Jaccard with itself under relative weight error,
``ceiling``) on N-MNIST-like digits (``nmnist_like``). benchmarks/test_bench_nir_fidelity.py prints the
same figures on more samples, and the ceilings (docs/import.md)."""
from __future__ import annotations

from dataclasses import replace
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


SACCADES = np.array([[0.0, 0.0], [2.0, 3.5], [4.0, 0.0], [0.0, 0.0]])   # sensor path (x, y px), 100 ms a leg


def nmnist_like(samples: int, seed: int, ticks: int = 300, size: int = 34, box: int = 24, contrast: float = 0.15,
                background: float = 0.3, noise_hz: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Digits seen the way N-MNIST saw MNIST, one tick = 1 ms: (spikes (samples, ticks, 2·size²) bool, labels).

    scikit-learn's 8×8 digits, cubic-upsampled to box×box and sharpened into strokes g = σ(12·(g − 0.6)),
    shown as I = b + (1 − b)·g (b = ``background``) to a size×size sensor that moves along three 100 ms
    saccades (``SACCADES``, linear legs). A pixel emits ON (channel 1) / OFF (channel 0) in a tick when
    log I has moved n = trunc((log I − L_ref) / C_px) ≠ 0 contrast steps from its reference, then
    L_ref += n·C_px; C_px = ``contrast``·clip(1 + 0.1·N(0, 1), 0.5, 1.5), L_ref starts at a random phase;
    plus ``noise_hz`` background events per pixel and second."""
    from scipy.ndimage import map_coordinates, zoom
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(digits.images), samples, replace=False)
    g = np.stack([zoom(im / 16.0, box / 8, order=3) for im in digits.images[pick]])
    g = 1 / (1 + np.exp(-12 * (g - 0.6)))
    corner = (size - box) / 2 - SACCADES.max(axis=0) / 2
    i, yy, xx = np.meshgrid(np.arange(samples), np.arange(size), np.arange(size), indexing="ij")

    def log_intensity(ms: float) -> np.ndarray:
        leg = min(int(ms // 100), 2)
        dx, dy = SACCADES[leg] + min(ms / 100 - leg, 1.0) * (SACCADES[leg + 1] - SACCADES[leg]) + corner
        seen = map_coordinates(g, [i, yy - dy, xx - dx], order=1, cval=0.0)
        return np.log(background + (1 - background) * seen)
    c_px = contrast * np.clip(1 + 0.1 * rng.standard_normal((samples, size, size)), 0.5, 1.5)
    ref = log_intensity(0.0) + rng.uniform(-0.5, 0.5, c_px.shape) * c_px
    x = rng.random((samples, ticks, 2, size, size)) < noise_hz * 1e-3 / 2
    for t in range(ticks):
        n = np.trunc((log_intensity(t + 1.0) - ref) / c_px)
        x[:, t, 1] |= n > 0
        x[:, t, 0] |= n < 0
        ref += n * c_px
    return x.reshape(samples, ticks, -1), digits.target[pick]


def perturbed(graph, rel: float, seed: int = 1):
    """The float graph with every weight w → w·(1 + rel·u), u ~ U(−1, 1): its own tolerance to weight error."""
    rng = np.random.default_rng(seed)
    return replace(graph, projections=tuple(
        replace(pr, weights=(pr.weights * (1 + rel * rng.uniform(-1, 1, pr.weights.shape))).astype(pr.weights.dtype))
        for pr in graph.projections))


def simulate_float64(graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """A float graph's spikes with float64 sums and state (the engine keeps float32), same ticks and delays:
    a = Σ_proj s_pre[t − delay]·W;  u ← u·cu + a;  v ← v·cv + u;  s = v > vth;  v ← 0 where s."""
    import scipy.sparse as sps

    from sim.engine.reference import source_spikes
    batch, ticks = len(x), graph.ticks
    spikes = {p.name: np.zeros((batch, ticks, p.size), bool) for p in graph.populations}
    for name, s in source_spikes(graph, {graph.inputs[0].name: x}, batch).items():
        spikes[name][:, :s.shape[1]] = s
    ins: dict[str, list] = {}
    for pr in graph.projections:
        w = sps.csr_matrix((pr.weights.astype(np.float64) * 2.0 ** pr.weight_exp, pr.indices, pr.indptr),
                           shape=(pr.n_pre, graph.population(pr.post).size))
        ins.setdefault(pr.post, []).append((pr.pre, pr.delay, w))
    neurons = [p for p in graph.populations if not p.is_source]
    u = {p.name: np.zeros((batch, p.size)) for p in neurons}
    v = {p.name: np.zeros((batch, p.size)) for p in neurons}
    for t in range(ticks):
        for p in neurons:
            cu, cv, vth = p.model.kernel_params()
            a = sum((np.asarray(spikes[pre][:, t - d] @ w) for pre, d, w in ins.get(p.name, []) if t >= d),
                    np.zeros((batch, p.size)))
            u[p.name] = u[p.name] * cu + a
            v[p.name] = v[p.name] * cv + u[p.name]
            s = spikes[p.name][:, t] = v[p.name] > vth
            v[p.name][s] = 0.0
    return spikes


def float_comparison(graph, x: np.ndarray, other: dict[str, np.ndarray], labels=None) -> dict:
    """FloatComparison figures of the float graph's spikes on ``x`` against ``other`` spikes of the same inputs."""
    c = FloatComparison(graph, graph)
    c.add(simulate(graph, {graph.inputs[0].name: x}).spikes, other)
    return c.figures(labels)


def ceiling(graph, x: np.ndarray, rel: float, labels=None) -> dict:
    """The float graph against itself with weights perturbed by ``rel`` (``perturbed``): how much of it any
    quantisation with that relative weight error could keep."""
    return float_comparison(graph, x, simulate(perturbed(graph, rel), {graph.inputs[0].name: x}).spikes, labels)


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


def test_sinabs_cnn_on_nmnist_like_digits_keeps_predictions_and_rates_at_its_ceiling():
    """The CNN's output spikes are beyond any 17-bit v: the float graph itself keeps < 0.9 of them under a
    10⁻⁴ relative weight error; loihi keeps what a 10⁻³ error keeps, its predictions and every rate."""
    x, y = nmnist_like(16, seed=3, ticks=100)
    g = import_nir(CNN, 100)
    f = fidelity(g, x, y)
    assert f["accuracy_float"] >= 0.3 and f["prediction_agreement"] >= 0.85, f       # readable digits, same answers
    for name, pop in f["per_population"].items():
        assert abs(pop["rate_loihi"] - pop["rate_float"]) <= 0.1 * pop["rate_float"], (name, pop)
    assert f["per_population"]["1"]["spike_jaccard"] >= 0.95
    assert ceiling(g, x, 1e-4)["output_spike_jaccard"] < 0.9                         # the float graph's own limit
    assert f["output_spike_jaccard"] >= 0.9 * ceiling(g, x, 1e-3)["output_spike_jaccard"], f


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
