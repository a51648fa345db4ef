"""`spikeformer sweep` (--over hd): CSV + PNG from one call, resumable without retraining, errors before any training;
the shared sweep rows (fingerprints of earlier versions still match)."""
from __future__ import annotations

import csv
import json

import pytest
from test_cli import assert_user_error, run

from spikeformer.configure import presets
from spikeformer.experiments.sweep import hd as sweep_mod
from spikeformer.experiments.sweep import model as model_sweep
from spikeformer.experiments.sweep.figures import parameter_count, parse_dims
from spikeformer.experiments.sweep.hd import ROWS, sweep, synops_ratio
from spikeformer.experiments.sweep.rows import fingerprint

COLUMNS = ROWS.columns
read_rows = ROWS.read

REQUIRED = {"dim", "active_bits", "accuracy", "synaptic_ops_per_inference", "parameters"}
TINY_ARGS = ("--preset", "tiny", "--epochs", "1", "--samples", "40", "--active-bits", "8", "--threads", "1")


def tiny_configs(epochs: int = 1):
    model_cfg, train_cfg = presets.preset("tiny")
    train_cfg.epochs, train_cfg.threads = epochs, 1        # 1 torch thread: 3x faster on a busy 2-core machine
    return model_cfg, train_cfg


def checkpoint_mtimes(out):
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns
            for p in sorted(out.glob("d*/*")) if p.name in ("model.pt", "train_state.pt")}


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    rows = sweep([64, 128], 8, out, *tiny_configs(), samples=40, progress=False)
    return out, rows


def test_csv_and_png_are_written(tiny_sweep):
    out, rows = tiny_sweep
    with open(out / "sweep.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert REQUIRED <= set(reader.fieldnames) and tuple(reader.fieldnames) == COLUMNS
        written = list(reader)
    assert [int(r["dim"]) for r in written] == [64, 128] == [r["dim"] for r in rows]
    for r in rows:
        assert r["active_bits"] == 8 and r["samples"] == 40 and r["epochs"] == 1
        assert r["agreement_with_model"] == 1.0 and r["accuracy"] == r["model_accuracy"]
        assert r["synaptic_ops_per_inference"] > 0 and r["synapses"] > 0
        assert (out / f"d{r['dim']}" / "graph.aer.npz").exists()
    # trainable parameters: only W_emb (dim × D) depends on D
    assert rows[1]["parameters"] - rows[0]["parameters"] == (128 - 64) * presets.preset("tiny")[0].arch.dim
    assert read_rows(out / "sweep.csv") == rows
    png = out / "sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_rerun_does_not_retrain(tiny_sweep, monkeypatch):
    out, rows = tiny_sweep
    before = checkpoint_mtimes(out)
    assert len(before) == 4

    def no_work(*a, **k):
        raise AssertionError("a finished D was run again")
    monkeypatch.setattr(sweep_mod, "run_point", no_work)
    assert sweep([64, 128], 8, out, *tiny_configs(), samples=40, progress=False) == rows
    assert checkpoint_mtimes(out) == before


def test_lost_row_is_redone_from_the_checkpoint(tiny_sweep, monkeypatch):
    """A crash after training D=128 but before its CSV row: the rerun simulates it again, trains nothing."""
    out, rows = tiny_sweep
    ROWS.write(out / "sweep.csv", rows[:1])
    before = checkpoint_mtimes(out)
    calls = []
    real = sweep_mod.run_point
    monkeypatch.setattr(sweep_mod, "run_point",
                        lambda run_dir, cfg, *a: calls.append(cfg.encoder.hd_dim) or real(run_dir, cfg, *a))
    again = sweep([64, 128], 8, out, *tiny_configs(), samples=40, progress=False)
    assert calls == [128]
    assert checkpoint_mtimes(out) == before
    strip = lambda r: {k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
    assert [strip(r) for r in again] == [strip(r) for r in rows]


def test_other_config_in_same_directory_is_refused(tiny_sweep):
    out, _ = tiny_sweep
    with pytest.raises(ValueError, match="sweep.csv: holds runs of a different configuration"):
        sweep([64, 128], 8, out, *tiny_configs(epochs=2), samples=40, progress=False)


def test_cli_json_on_finished_sweep(tiny_sweep):
    out, rows = tiny_sweep
    p = run("sweep", "--dims", "64,128", *TINY_ARGS, "--out", str(out), "--json")
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    assert [r["dim"] for r in fig["rows"]] == [64, 128]
    assert fig["synops_max_over_min"] == pytest.approx(synops_ratio(rows))
    ops = [r["synaptic_ops_per_inference"] for r in rows]
    assert fig["synops_max_over_min"] == pytest.approx(max(ops) / min(ops))


def test_cost_notebook_draws_the_sweep_of_a_width_run(tiny_sweep, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from test_notebooks import NOTEBOOKS
    out, _ = tiny_sweep
    monkeypatch.setenv("SPIKEFORMER_RUN", str(out / "d64"))
    monkeypatch.setenv("SPIKEFORMER_FIGURES", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(next(p for p in NOTEBOOKS if p.name == "03_cost.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "sweep.png").stat().st_size > 5000


def test_dimension_below_active_bits_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "run_point", lambda *a, **k: pytest.fail("trained despite D < k"))
    with pytest.raises(ValueError, match=r"--dims: D=16 is smaller than --active-bits=32"):
        sweep([256, 16], 32, tmp_path / "s", *tiny_configs(), progress=False)
    assert not (tmp_path / "s").exists()


def test_parse_dims():
    assert parse_dims("256, 1024,4096") == [256, 1024, 4096]
    for bad in ("", "256,,1024", "256;1024", "1e3", "abc"):
        with pytest.raises(ValueError, match="--dims"):
            parse_dims(bad)


# sweep.fingerprint values computed by the two sweep modules before they were merged (commit e5ec799):
# a changed value would make every existing CSV row (docs/width-sweep*.csv among them) count as not done.
HD_FINGERPRINTS = [("tiny", 8, 40, "5ad4b6d9f9e1"),          # preset tiny, --active-bits 8 --samples 40
                   ("demo", 32, None, "3680704e9660")]       # preset demo, --active-bits 32, all samples
MODEL_FINGERPRINTS = [("mnist1d-width", 4, 4, None, "group", "bdea28357a42"),   # docs/width-sweep.csv
                      ("tiny", 4, 4, 40, "group", "0211e4a88b8a"),
                      ("tiny", 4, 4, 40, "index", "009935384b02")]


@pytest.mark.parametrize("preset, k, samples, want", HD_FINGERPRINTS)
def test_hd_fingerprint_is_unchanged(preset, k, samples, want):
    assert fingerprint(sweep_mod.shared_config(*presets.preset(preset), k, samples)) == want


@pytest.mark.parametrize("preset, k, fan_in, samples, rule, want", MODEL_FINGERPRINTS)
def test_model_fingerprint_is_unchanged(preset, k, fan_in, samples, rule, want):
    assert fingerprint(model_sweep.shared_config(*presets.preset(preset), k, fan_in, samples, rule)) == want


def test_committed_width_sweeps_count_as_done():
    """Each docs/width-sweep*.csv: one fingerprint, the one its config gives (preset or its --config file)."""
    from pathlib import Path
    docs = Path(__file__).parents[2] / "docs"
    penalty = presets.from_file(docs / "width-sweep-penalty-5e-4.json")
    for csv_name, configs in (("width-sweep.csv", presets.preset("mnist1d-width")),
                              ("width-sweep-penalty-5e-4.csv", penalty)):
        rows = model_sweep.ROWS.read(docs / csv_name)
        assert {r["config"] for r in rows} == {fingerprint(model_sweep.shared_config(*configs, 4, 4, None))}, csv_name
        for r in rows:              # the parameters column = parameter_count of the row's model
            base = configs[0]
            cfg = (model_sweep.sparse_config(base, r["dim"], 4, 4) if r["kind"] == "sparse"
                   else model_sweep.dense_config(base, r["dim"]))
            assert r["parameters"] == parameter_count(cfg), (csv_name, r["kind"], r["dim"])


def test_parameter_count_is_every_trainable_entry_of_a_dense_model():
    """One definition for both modes: a dense model (the HD sweep's) uses every entry of its parameters."""
    from spikeformer.model.transformer import SpikingTransformer
    m, _ = tiny_configs()
    for cfg in (m, sweep_mod.dim_config(m, 64, 8), sweep_mod.dim_config(m.replace(weight_sparsity=0.5), 256, 8)):
        assert parameter_count(cfg) == sum(p.numel() for p in SpikingTransformer(cfg).parameters())


def test_corrupt_csv_is_named(tmp_path):
    (tmp_path / "sweep.csv").write_text("dim,accuracy\n256,0.5\n")
    with pytest.raises(ValueError, match="sweep.csv: not a sweep CSV"):
        sweep([256], 8, tmp_path, *tiny_configs(), progress=False)


def test_cli_errors_name_the_option(tmp_path):
    out = str(tmp_path / "s")
    assert_user_error(run("sweep", "--dims", "256,abc", "--active-bits", "32", "--out", out), "--dims", "256,abc")
    assert_user_error(run("sweep", "--dims", "256,16", "--active-bits", "32", "--out", out),
                      "--dims", "D=16", "--active-bits=32")
    assert_user_error(run("sweep", "--dims", "256", "--active-bits", "-1", "--out", out), "--active-bits")
    assert_user_error(run("sweep", "--dims", "256", "--active-bits", "8", "--epochs", "0", "--out", out), "--epochs")
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
@pytest.mark.timeout(3600)          # minutes of training and/or the whole test split (default timeout 900 s)
def test_synops_flat_over_64x_width(tmp_path):
    """Acceptance (#3): D = 256 … 16384 at k = 32, synaptic ops per inference vary by ≤ 1.5×."""
    rows = sweep([256, 1024, 4096, 16384], 32, tmp_path, *tiny_configs(epochs=2), progress=False)
    assert all(r["agreement_with_model"] == 1.0 for r in rows)
    params = [r["parameters"] for r in rows]
    assert params == sorted(params) and params[-1] > 10 * params[0]
    assert synops_ratio(rows) <= 1.5, [r["synaptic_ops_per_inference"] for r in rows]
    assert (tmp_path / "sweep.png").exists()
