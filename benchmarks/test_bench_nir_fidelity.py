"""Loihi quantisation of imported graphs vs their float selves: the NIR paper's CNN (event-generator
inputs at 2×34×34 and random 20 % inputs, 50 ticks) and RNN (random binary inputs), and an snnTorch
net trained on digits (whole test set; Lava = simulator on 20 samples). Prints, per graph and
quantisation, the output population's spike Jaccard and rates, then every population's.
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
    digits_data,
    event_frames,
    fidelity,
    random_spikes,
    trained_digits_net,
)
from test_nir_import import export  # noqa: E402

from sim.engine.simulate import simulate  # noqa: E402
from sim.ir.quantize import quantize  # noqa: E402
from spikeformer.interchange.nir_import import import_nir, lower  # noqa: E402

OPTIONS = {"1 word": {"words": 1}, "2 words": {"words": 2}}


def show(name: str, f: dict) -> None:
    extra = "".join(f" {k} {f[k]:.4f}" for k in ("accuracy_float", "accuracy_loihi", "prediction_agreement") if k in f)
    print(f"{name}: output '{f['output_population']}' jaccard {f['output_spike_jaccard']:.3f} rate float "
          f"{f['output_rate_float']:.4f} loihi {f['output_rate_loihi']:.4f}; all populations jaccard "
          f"{f['spike_jaccard_with_float']:.3f}{extra}")
    print("    " + "  ".join(f"{k}: {v['spike_jaccard']:.3f} ({v['rate_float']:.3f}/{v['rate_loihi']:.3f})"
                             for k, v in f["per_population"].items()))


@pytest.mark.bench
def test_bench_nir_paper_graphs_and_a_trained_snntorch_net():
    cnn, rnn = import_nir(CNN, TICKS), import_nir(RNN, TICKS)
    cases = [("CNN events", cnn, event_frames(2, seed=0)), ("CNN random 20%", cnn, random_spikes(16, 2312, seed=0)),
             ("RNN random 20%", rnn, random_spikes(64, 12, seed=0))]
    results = {}
    for name, graph, x in cases:
        for label, options in OPTIONS.items():
            results[name, label] = f = fidelity(graph, x, **options)
            show(f"{name} [{label}]", f)
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
