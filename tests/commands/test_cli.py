"""The command line: figures contract (--json) and one-line errors with exit code 2."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent / "spikeformer"


def run(*args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})


def assert_user_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    for n in needles:
        assert n in lines[0], (n, lines[0])


# every command: the words of its own help (its summary, each option and argument), so a command
# whose help is another's, or has lost an option, fails
HELP = {
    (): ["Usage: spikeformer [OPTIONS] COMMAND", "simulate them event by event", "train", "convert", "simulate",
         "report", "demo", "sweep", "export", "import"],
    ("train",): ["Train a spiking transformer on its dataset", "--out", "--config", "--preset", "--epochs",
                 "--batch-size", "--steps-per-epoch", "--device", "--checkpoint", "--no-checkpoint", "--json"],
    ("convert",): ["Lower the trained model to an AER graph file", "run_dir", "--json"],
    ("simulate",): ["Run test samples through the event-driven simulator", "run_dir", "--samples", "--trace",
                    "--shards", "--scheduler", "--json"],
    ("export",): ["Export a converted model to another runtime", "lava", "nir", "netx"],
    ("export", "lava"): ["Build Lava processes from the graph", "run_dir", "--samples", "--timeout", "--json"],
    ("export", "nir"): ["Write the graph as a NIR file", "run_dir", "--json"],
    ("export", "netx"): ["Write the graph as a lava-dl netx HDF5 file", "run_dir", "--json"],
    ("import",): ["Import a model from another framework into a run directory", "nir"],
    ("import", "nir"): ["Import a NIR graph (.nir / .h5) into a run directory", "source", "--out", "--numerics",
                        "--inputs", "--dataset", "--timesteps", "--dt", "--json"],
    ("report",): ["Map onto Loihi 2 cores/chips and estimate energy", "run_dir", "--chips", "--cores-per-chip",
                  "--json"],
    ("demo",): ["Train the demo preset, convert, simulate all test digits", "--out", "--lava-samples", "--json"],
    ("sweep",): ["Train, convert and simulate one model per width", "--over", "--dims", "--active-bits", "--k",
                 "--fan-in", "--dense-dims", "--wta-rule", "--out",
                 "--preset", "--config", "--epochs", "--samples", "--threads", "--json"],
}


def test_every_command_has_its_own_help(monkeypatch):
    import re

    from test_faults import cli
    monkeypatch.setenv("COLUMNS", "400")                  # one line per option: phrases are not wrapped
    for args, words in HELP.items():
        p = cli(*args, "--help")
        text = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)
        assert p.returncode == 0, (args, p.stderr)
        for w in words:
            assert re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text), (args, w, text)
        usage = f"Usage: spikeformer {' '.join(args)}".rstrip()
        assert usage in text, (args, usage)


def test_train_convert_simulate_json_contract(tmp_path):
    out = tmp_path / "run"
    p = run("train", "--preset", "tiny", "--epochs", "1", "--out", str(out), "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert {"test_accuracy", "epochs", "seconds"} <= set(fig) and fig["epochs"] == 1
    p = run("convert", str(out), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["synapses"] > 0 and (out / "graph.aer.npz").exists()
    p = run("simulate", str(out), "--samples", "12", "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert fig["samples"] == 12 and fig["agreement_with_model"] == 1.0
    for key in ("accuracy", "synaptic_ops_per_inference", "spikes_per_inference"):
        assert isinstance(fig[key], float)
    assert fig["synaptic_ops_per_inference"] > 0
    p = run("simulate", str(out), "--samples", "12", "--shards", "2", "--json")   # Dask LocalCluster
    assert p.returncode == 0, p.stderr
    sharded = json.loads(p.stdout)
    for key in ("accuracy", "agreement_with_model", "synaptic_ops_per_inference", "spikes_per_inference"):
        assert sharded[key] == fig[key], key


def test_missing_inputs(tmp_path):
    assert_user_error(run("convert", str(tmp_path / "nope")), "nope", "not found")
    assert_user_error(run("train", "--out", str(tmp_path / "x")), "--config", "--preset")
    assert_user_error(run("train", "--preset", "huge", "--out", str(tmp_path / "x")), "unknown preset")
    (tmp_path / "cfg.json").write_text('{"model": {"dim": -3}}')
    assert_user_error(run("train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "x")),
                      "cfg.json", "config.dim")
    (tmp_path / "broken.json").write_text('{"model": ')
    assert_user_error(run("train", "--config", str(tmp_path / "broken.json"), "--out", str(tmp_path / "x")),
                      "broken.json", "not valid JSON")


def test_simulate_before_convert_says_what_to_run(tiny_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    (d / "graph.aer.npz").unlink()
    assert_user_error(run("simulate", str(d)), "graph.aer.npz", "spikeformer convert")


def test_truncated_checkpoint(tiny_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    data = (d / "model.pt").read_bytes()
    (d / "model.pt").write_bytes(data[:100])
    assert_user_error(run("convert", str(d)), "model.pt")


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoint_with_code_is_refused(tiny_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    with open(d / "model.pt", "wb") as f:
        pickle.dump(Payload(), f)
    assert_user_error(run("convert", str(d), cwd=tmp_path), "model.pt", "refused by weights-only loading")
    assert not (tmp_path / "PWNED").exists()


def test_graph_with_out_of_range_index(tiny_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    with np.load(d / "graph.aer.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["p3.indices"] = arrays["p3.indices"].copy()
    arrays["p3.indices"][5] = 10 ** 6
    with open(d / "graph.aer.npz", "wb") as f:
        np.savez(f, **arrays)
    assert_user_error(run("simulate", str(d), "--samples", "2"), "graph.aer.npz", "indices", "out of range")
