"""One run abstraction (spikeformer.runs.run): trained and imported runs take the same simulate, report and Lava path."""
from __future__ import annotations

import shutil

import nir
import numpy as np
import pytest
from test_nir_import import export, feed_forward_net, inputs

from sim.ir.io import load_graph
from sim.ir.quantize import agreement
from spikeformer.runs import steps
from spikeformer.runs.imported import import_run
from spikeformer.runs.run import FloatReference, ImportedRun, ModelReference, TrainedRun, open_run
from spikeformer.store.files import CheckpointError
from spikeformer.store.layout import FLOAT_GRAPH_FILE, GRAPH_FILE, LAVA_FILE, REPORT_FILE, RESULT_FILE, SIMULATION_FILE

COMMON = {"samples", "accuracy", "synaptic_ops_per_inference", "spikes_per_inference", "neurons", "synapses",
          "ticks", "seconds"}


def imported_run(tmp_path, numerics: str = "loihi", samples: int = 10):
    nir.write(tmp_path / "ff.nir", export(feed_forward_net()))
    np.savez(tmp_path / "in.npz", input=inputs(12, seed=9, samples=samples), labels=np.arange(samples) % 4)
    figures = import_run("nir", tmp_path / "ff.nir", tmp_path / "run", numerics=numerics, inputs=tmp_path / "in.npz")
    return tmp_path / "run", figures


@pytest.fixture
def trained(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "trained")
    return tmp_path / "trained"


def test_trained_and_imported_runs_are_simulated_and_reported_by_the_same_code(trained, tmp_path, monkeypatch):
    imported, _ = imported_run(tmp_path)
    assert isinstance(open_run(trained), TrainedRun) and isinstance(open_run(imported), ImportedRun)
    references = []
    real = steps.simulate_chunks

    def spy(graph, x, reference, *args):
        references.append(type(reference))
        return real(graph, x, reference, *args)
    monkeypatch.setattr(steps, "simulate_chunks", spy)
    tr = steps.simulate_run(trained, 6)
    im = steps.simulate_run(imported, trace=tmp_path / "imported.json")     # trace: imported runs too
    assert references == [ModelReference, FloatReference]
    assert COMMON <= set(tr) and COMMON <= set(im)
    assert set(tr) - COMMON == {"model_accuracy", "agreement_with_model", "mismatched_spikes",
                                "predictions_equal_model"}
    assert set(im) - COMMON == {"numerics", "agreement_with_float", "spike_jaccard_with_float", "trace",
                                "trace_events", "output_population", "output_spike_jaccard", "output_rate_float",
                                "output_rate_loihi", "accuracy_float", "accuracy_loihi", "prediction_agreement",
                                "per_population"}
    for figures in (tr, im):
        assert list(figures) == [k for k in steps.SIMULATE_FIGURES if k in figures]
    assert tr["samples"] == 6 and tr["agreement_with_model"] == 1.0 and tr["mismatched_spikes"] == 0
    assert im["samples"] == 10 and im["numerics"] == "loihi" and im["trace_events"] > 0
    for run, figures in ((trained, tr), (imported, im)):
        assert (run / SIMULATION_FILE).is_file() and (run / RESULT_FILE).is_file()
        report, _, result, _ = steps.report_run(run)
        assert report["samples"] == figures["samples"] == len(result.neuron_updates)
        assert (run / REPORT_FILE).is_file()
    assert set(steps.report_run(trained)[0]) == set(steps.report_run(imported)[0])


def test_float_agreement_summed_over_chunks_equals_the_whole_batchs(tmp_path, monkeypatch):
    from sim.engine.simulate import simulate

    run, imported = imported_run(tmp_path)
    monkeypatch.setattr(steps, "RECORD_BYTES", 1)               # one sample per chunk
    figures = steps.simulate_run(run)
    graph, flt = load_graph(run / GRAPH_FILE), load_graph(run / FLOAT_GRAPH_FILE)
    x, labels = open_run(run).inputs(None)
    whole = agreement(simulate(flt, x).spikes, simulate(graph, x).spikes, graph)
    assert figures["agreement_with_float"] == whole["entries"] == imported["agreement_with_float"]
    assert figures["spike_jaccard_with_float"] == whole["spikes"] == imported["spike_jaccard_with_float"]
    assert figures["per_population"] == imported["per_population"] and figures["output_population"] == "3"
    assert figures["accuracy_loihi"] == figures["accuracy"] and 0 <= figures["prediction_agreement"] <= 1
    assert labels.tolist() == (np.arange(10) % 4).tolist()
    with pytest.raises(ValueError, match=r"--samples must be in \[1, 10\], got 11"):
        open_run(run).inputs(11)


def test_lava_refuses_a_float_graph_of_either_kind_naming_the_file(tmp_path):
    run, _ = imported_run(tmp_path, numerics="float")
    with pytest.raises(CheckpointError, match=r"graph\.aer\.npz: Lava export needs numerics='loihi', graph has "
                                              r"'float' — import with --numerics loihi"):
        steps.lava_run(run, 2)
    assert not (run / LAVA_FILE).exists()


def test_imported_run_in_lava_equals_the_engine(tmp_path):
    run, _ = imported_run(tmp_path, samples=3)
    figures = steps.lava_run(run, 2, timeout=300)
    assert figures["identical_to_simulator"] and figures["mismatched_spikes"] == 0 and figures["samples"] == 2
    assert list(figures) == [k for k in steps.LAVA_FIGURES if k in figures]
    assert {"agreement_with_float", "spike_jaccard_with_float", "seconds_per_sample"} <= set(figures)
    assert (run / LAVA_FILE).is_file()
