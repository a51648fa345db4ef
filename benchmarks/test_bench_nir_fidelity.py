"""Loihi quantisation of imported graphs vs their float selves, each beside its ceiling: the NIR paper's
CNN (event-generator inputs at 2×34×34, random 20 % inputs, 50 ticks; N-MNIST-like digits, 300 ticks of
1 ms, with labels) and RNN (random binary inputs), and an snnTorch net trained on digits (whole test set;
Lava = simulator on 20 samples). Prints, per graph and quantisation, the output population's spike
Jaccard and rates, then every population's; and the ceiling: the float graph against itself in float64
and with every weight perturbed by 10⁻⁶…10⁻³ (relative) — what any quantisation of that precision keeps.
Run: .venv/bin/python -m pytest -q -s -m bench benchmarks/test_bench_nir_fidelity.py"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "commands"))
from test_nir_fidelity import (  # noqa: E402
    CNN,
    RNN,
    TICKS,
    ceiling,
    digits_data,
    event_frames,
    fidelity,
    float_comparison,
    nmnist_like,
    random_spikes,
    simulate_float64,
    trained_digits_net,
)
from test_nir_import import export  # noqa: E402

from sim.engine.simulate import simulate  # noqa: E402
from sim.ir.quantize import quantize  # noqa: E402
from spikeformer.interchange.nir_import import import_nir, lower  # noqa: E402
from spikeformer.runs.calibrate import calibrate  # noqa: E402

OPTIONS = {"1 word": {"words": 1}, "2 words": {"words": 2}}
PERTURBATIONS = (1e-6, 1e-5, 1e-4, 1e-3)


def show(name: str, f: dict) -> None:
    extra = "".join(f" {k} {f[k]:.4f}" for k in ("accuracy_float", "accuracy_loihi", "prediction_agreement") if k in f)
    print(f"{name}: output '{f['output_population']}' jaccard {f['output_spike_jaccard']:.3f} rate float "
          f"{f['output_rate_float']:.4f} loihi {f['output_rate_loihi']:.4f}; all populations jaccard "
          f"{f['spike_jaccard_with_float']:.3f}{extra}")
    print("    " + "  ".join(f"{k}: {v['spike_jaccard']:.3f} ({v['rate_float']:.4f}/{v['rate_loihi']:.4f})"
                             for k, v in f["per_population"].items()))


def ceilings(name: str, graph, x: np.ndarray, labels=None) -> dict:
    """The float graph against float64 and against itself with perturbed weights (printed; {rel: figures})."""
    show(f"{name} ceiling: float32 vs float64", float_comparison(graph, x, simulate_float64(graph, x), labels))
    out = {}
    for rel in PERTURBATIONS:
        out[rel] = f = ceiling(graph, x, rel, labels)
        show(f"{name} ceiling: weights x (1 ± {rel:g})", f)
    return out


@pytest.mark.bench
def test_bench_nir_paper_graphs_and_a_trained_snntorch_net():
    cnn, rnn = import_nir(CNN, TICKS), import_nir(RNN, TICKS)
    digits, labels = nmnist_like(64, seed=11)
    print(f"N-MNIST-like inputs: {digits.sum() / len(digits) / digits.shape[1]:.1f} events per 1 ms tick, "
          f"ON fraction {digits.reshape(len(digits), digits.shape[1], 2, -1)[:, :, 1].sum() / digits.sum():.3f}")
    cases = [("CNN events", cnn, event_frames(2, seed=0), None),
             ("CNN random 20%", cnn, random_spikes(16, 2312, seed=0), None),
             ("CNN N-MNIST-like", import_nir(CNN, digits.shape[1]), digits, labels),
             ("RNN random 20%", rnn, random_spikes(64, 12, seed=0), None)]
    results, tops = {}, {}
    for name, graph, x, y in cases:
        for label, options in OPTIONS.items():
            results[name, label] = f = fidelity(graph, x, y, **options)
            show(f"{name} [{label}]", f)
        tops[name] = ceilings(name, graph, x, y)
    graph = cases[2][1]
    units = calibrate(graph, {"input": nmnist_like(16, seed=99)[0]})["threshold_units"]
    calibrated = fidelity(graph, digits, labels, threshold_units=units)
    show(f"CNN N-MNIST-like [2 words, calibrated on 16 other digits: {units}]", calibrated)
    net, torch_acc = trained_digits_net()
    graph = lower(export(net, 320), 8)
    _, _, xte, yte = digits_data()
    f = fidelity(graph, xte.astype(bool), yte)
    show(f"snnTorch digits (torch accuracy {torch_acc:.4f}) [2 words]", f)
    from loihi_export.run.runner import run_lava
    q, _ = quantize(graph)
    t0 = time.perf_counter()
    lava = run_lava(q, {"input": xte[:20].astype(bool)}, timeout=600)
    fixed = simulate(q, {"input": xte[:20].astype(bool)}).spikes
    same = all(np.array_equal(lava[p.name], fixed[p.name]) for p in q.populations)
    print(f"snnTorch digits: Lava = simulator on 20 samples: {same} ({time.perf_counter() - t0:.1f} s)")
    assert results["RNN random 20%", "2 words"]["output_spike_jaccard"] >= 0.8
    assert abs(f["accuracy_loihi"] - f["accuracy_float"]) <= 0.01 and f["prediction_agreement"] >= 0.98 and same
    for name in ("CNN events", "CNN N-MNIST-like"):          # the CNN: at its ceiling, which is below 0.9
        got = results[name, "2 words"]["output_spike_jaccard"]
        assert got >= 0.9 * tops[name][1e-3]["output_spike_jaccard"] and tops[name][1e-4]["output_spike_jaccard"] < 0.9
