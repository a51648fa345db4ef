"""The language model of Python code (issue #22): the pycode dataset, the per-token readout through the
simulator and Lava, and ``spikeformer generate`` (torch = sim = Lava bytes; bad input → one error line)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_cli import assert_user_error, run

TINY_LM = {"model": {"dataset": "pycode", "tokens": 8, "dim": 16, "heads": 2, "timesteps": 2, "init_gain": 2.0,
                     "test_fraction": 0.02},
           "train": {"epochs": 1, "batch_size": 32, "steps_per_epoch": 40, "lr": 0.5}}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tiny next-byte model of the standard library's code (causal SDSA, per-token readout), converted."""
    from spikeformer.configure.presets import configs_from_dict
    from spikeformer.runs.steps import convert_run
    from spikeformer.train.trainer import train

    out = tmp_path_factory.mktemp("tiny_lm")
    res = train(*configs_from_dict(TINY_LM, "tiny_lm"), out, progress=False)
    assert res.test_bits_per_byte is not None and 0 < res.test_bits_per_byte < 7      # below uniform: log2 128
    convert_run(out)
    return out


def test_simulator_equals_model_on_held_out_windows_with_per_token_logits(tiny_lm):
    from spikeformer.runs.steps import simulate_run
    fig = simulate_run(tiny_lm, samples=24)
    assert fig["agreement_with_model"] == 1.0 and fig["mismatched_spikes"] == 0 and fig["predictions_equal_model"]
    assert fig["bits_per_byte"] == pytest.approx(fig["model_bits_per_byte"], rel=1e-6)
    assert 0 < fig["bits_per_byte"] < 7


def test_per_token_graph_file_is_version_3_and_round_trips(tiny_lm, tmp_path):
    from sim.ir.io import load_graph, save_graph
    graph = load_graph(tiny_lm / "graph.aer.npz")
    assert graph.readout.per_token and graph.readout.weights.shape == (128, 16)
    header = json.loads(bytes(np.load(tiny_lm / "graph.aer.npz")["header"]).decode())
    assert header["version"] == 3 and header["readout"]["per_token"] is True
    spikes = np.random.default_rng(0).random((3, graph.ticks, 8 * 16)) < 0.3
    logits = graph.readout.logits(spikes)
    assert logits.shape == (3, 8, 128)
    counts = spikes[:, graph.readout.start:graph.readout.stop].sum(1).reshape(3, 8, 16)
    np.testing.assert_array_equal(logits[:, 5], counts[:, 5] @ graph.readout.weights.T.astype(np.int64))
    again = load_graph(save_graph(graph, tmp_path / "g.aer.npz"))
    assert again.readout.per_token


def test_generate_torch_equals_sim_greedy_and_seeded(tiny_lm):
    from spikeformer.runs.generate import generate
    for seed in (None, 3):
        t = generate(tiny_lm, "def f(x):\n    return", 20, seed, "torch")
        s = generate(tiny_lm, "def f(x):\n    return", 20, seed, "sim")
        assert t["bytes"] == s["bytes"] and len(t["bytes"]) == 20
        assert s["synaptic_ops_per_byte"] > 0 and s["energy_loihi2_joules_per_byte"] > 0
    assert generate(tiny_lm, "import os", 12, 1, "torch")["bytes"] != generate(tiny_lm, "import os", 12, 2,
                                                                                "torch")["bytes"]


def test_generate_lava_equals_sim_16_bytes(tiny_lm):
    from spikeformer.runs.generate import generate
    lava = generate(tiny_lm, "for i in", 16, 5, "lava")
    assert lava["identical_to_simulator"] and lava["mismatched_spikes"] == 0
    assert lava["bytes"] == generate(tiny_lm, "for i in", 16, 5, "sim")["bytes"]


def test_generate_cli_prints_bytes_and_cost(tiny_lm):
    p = run("generate", str(tiny_lm), "--prompt", "class A:", "--bytes", "4", "--seed", "0", "--backend", "sim",
            "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert len(fig["bytes"]) == 4 and fig["synaptic_ops_per_byte"] > 0 and fig["energy_loihi2_joules_per_byte"] > 0


def test_generate_bad_input_is_one_error_line(tiny_lm, tiny_run):
    assert_user_error(run("generate", str(tiny_lm), "--prompt", "café", "--bytes", "4"), "--prompt", "0xc3",
                      "vocabulary")
    assert_user_error(run("generate", str(tiny_lm), "--prompt", "x", "--bytes", "0"), "--bytes")
    assert_user_error(run("generate", str(tiny_lm), "--prompt", "", "--bytes", "3"), "--prompt", "empty")
    assert_user_error(run("generate", str(tiny_lm), "--prompt", "x", "--bytes", "3", "--backend", "gpu"),
                      "--backend")
    assert_user_error(run("generate", str(tiny_run), "--prompt", "x", "--bytes", "3"), "not a language model")


def test_run_evaluated_on_another_stdlib_names_the_file(tiny_lm, tmp_path):
    import shutil

    from spikeformer.runs.rundir import load_config, run_split
    from spikeformer.store.files import CheckpointError
    copy = tmp_path / "run"
    shutil.copytree(tiny_lm, copy)
    record = json.loads((copy / "split.json").read_text())
    name = sorted(record["files"])[7]
    record["files"][name] = "0" * 16
    (copy / "split.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=f"files '{name}' was 0000000000000000"):
        run_split(copy, load_config(copy)[0])


def test_ngram_figures_and_dense_baseline_on_the_split():
    """Unigram < uniform, bigram < unigram, trigram < bigram on held-out bytes of the same split; the dense
    baseline learns (its held-out bits per byte fall below the unigram's after a few dozen steps)."""
    from spikeformer.configure.presets import configs_from_dict
    from spikeformer.data.registry import load_dataset
    from spikeformer.experiments.codelm import ngram_bits, train_dense
    cfg, train_cfg = configs_from_dict({**TINY_LM, "model": {**TINY_LM["model"], "tokens": 16, "dim": 32}}, "x")
    data = load_dataset(cfg)
    bits = ngram_bits(data, cfg.arch.classes)
    assert 7 > bits["unigram"] > bits["bigram"] > bits["trigram"] > 1
    res = train_dense(cfg, train_cfg, data, steps=150, test_windows=300)
    assert res["dense_bits_per_byte"] < bits["unigram"]
