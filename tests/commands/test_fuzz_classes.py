"""Issue 24's classes that the fuzz table (``test_fuzz_inputs``) cannot tell by exit code and line count alone,
each checked by what it says: OSError kinds and RuntimeWarnings as the one error line (other warnings not
output), ``report`` on a graph without neurons, ``export lava`` on a run with fewer samples than its
default, split errors citing only the settings the user gave, progress bars only on a terminal. Each test
fails with its fix reverted (a one-line mutation of the check)."""
from __future__ import annotations

import errno
import io
import json
import shutil
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nir
import numpy as np
import pytest
import typer
from test_fuzz_inputs import cli
from test_nir_import import export, feed_forward_net, inputs


class Terminal(io.StringIO):
    """stderr as a terminal would be (``isatty``), captured."""

    def isatty(self) -> bool:
        return True


def friendly_call(body) -> tuple[int, str]:
    """(exit code, stderr) of ``body`` run as a command (``spikeformer.app.cli.friendly``)."""
    from spikeformer.app.cli import friendly
    err = io.StringIO()
    with redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")        # as a fresh process: warnings shown on stderr (not pytest's log)
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(m, c, f, n, line))
        try:
            friendly(body)()
            code = 0
        except typer.Exit as e:
            code = e.exit_code
    return code, err.getvalue()


@pytest.mark.parametrize("kind", [NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError])
def test_os_errors_are_one_line_naming_the_path(kind):
    def body():
        raise kind(errno.EIO, "cannot write", "/some/run/graph.aer.npz")
    code, err = friendly_call(body)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "/some/run/graph.aer.npz" in err


def test_runtime_warning_is_the_one_error_line_and_other_warnings_are_not_output():
    code, err = friendly_call(lambda: np.log(np.zeros(3) - 1))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "invalid value" in err, err
    code, err = friendly_call(lambda: warnings.warn("an old keyword", DeprecationWarning))
    assert code == 0 and err == "", err


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A float and a loihi import of a small feed-forward net, 10 samples each."""
    root = tmp_path_factory.mktemp("classes")
    nir.write(root / "ff.nir", export(feed_forward_net()))
    np.savez(root / "in.npz", input=inputs(12, seed=9, samples=10), labels=np.arange(10) % 4)
    for numerics in ("float", "loihi"):
        code, _, err = cli("import", "nir", str(root / "ff.nir"), "--out", str(root / numerics), "--inputs",
                           str(root / "in.npz"), "--numerics", numerics)
        assert code == 0, err
    return root


def test_report_on_a_graph_without_neurons_is_refused_and_writes_nothing(imported, tmp_path):
    from sim.ir.graph import AerGraph
    from sim.ir.io import load_graph, save_graph
    run = tmp_path / "run"
    shutil.copytree(imported / "float", run)
    g = load_graph(run / "graph.aer.npz")
    save_graph(AerGraph(numerics=g.numerics, populations=tuple(p for p in g.populations if p.is_source),
                        projections=(), readout=None, timesteps=g.timesteps), run / "graph.aer.npz")
    cli("simulate", str(run))                   # refused or not: report must refuse the graph itself
    code, _, err = cli("report", str(run))
    assert code == 2 and err.count("\n") == 1 and "no neuron population" in err and "graph.aer.npz" in err, err
    assert not (run / "report.json").exists()


def test_export_lava_names_the_real_reason_and_defaults_to_the_samples_there_are(imported, tmp_path, monkeypatch):
    code, _, err = cli("export", "lava", str(imported / "float"))     # 10 samples, the default was 20
    assert code == 2 and "numerics='loihi'" in err and "--samples" not in err, err
    from loihi_export.run import runner
    from sim.engine.simulate import simulate
    seen = []

    def lava_as_simulator(graph, x, timeout=600.0, stats=None):     # Lava itself: tests/loihi
        n = len(next(iter(x.values())))
        seen.append(n)
        stats.update(batch=n, sequence=1, workers=1, peak_pss_bytes=0)
        return simulate(graph, x).spikes

    monkeypatch.setattr(runner, "run_lava", lava_as_simulator)
    run = tmp_path / "loihi"
    shutil.copytree(imported / "loihi", run)
    code, out, err = cli("export", "lava", str(run), "--json")
    assert code == 0 and json.loads(out)["samples"] == 10 and seen == [10], err
    code, _, err = cli("export", "lava", str(run), "--samples", "11")   # a count the user gave is still checked
    assert code == 2 and "--samples must be in [1, 10], got 11" in err, err


def test_split_errors_cite_the_file_and_only_the_settings_given(tmp_path):
    s = np.random.default_rng(0).random((3, 3, 2, 5)) < 0.3
    np.savez(tmp_path / "three.npz", spikes=s, labels=np.arange(3))          # 3 classes, 1 sample each
    for extra, cited in (({}, None), ({"test_fraction": 0.5}, "config.test_fraction (0.5)")):
        (tmp_path / "cfg.json").write_text(json.dumps(
            {"model": {"dataset": "spikes", "data_path": str(tmp_path / "three.npz"), "dim": 8, "heads": 2, **extra},
             "train": {"epochs": 1}}))
        code, _, err = cli("train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "out"))
        assert code == 2 and "three.npz" in err and "cannot split" in err, err
        assert "split_seed (0)" not in err and "test_fraction (0.2)" not in err, err
        assert cited is None or cited in err, err


def progress_output(stderr: io.StringIO, *args: str) -> str:
    from spikeformer.app.cli import main
    with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
        try:
            main(list(args))
        except SystemExit as e:
            assert not e.code, stderr.getvalue()
    return stderr.getvalue()


def test_progress_bars_only_on_a_terminal(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    train = ("train", "--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "2", "--out")
    assert "\r" not in progress_output(io.StringIO(), "simulate", str(run), "--samples", "4")     # a log
    assert "\r" not in progress_output(io.StringIO(), *train, str(tmp_path / "log"))
    assert "\r" in progress_output(Terminal(), "simulate", str(run), "--samples", "4")           # a terminal
    assert "\r" in progress_output(Terminal(), *train, str(tmp_path / "tty"))
