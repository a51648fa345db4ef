"""`spikeformer sweep --over model`: sparse-wide vs dense-narrow at matched synaptic ops; errors before training."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from test_cli import assert_user_error, run

from spikeformer.configure import presets
from spikeformer.configure.validate import model_config
from spikeformer.experiments.sweep import model as ws
from spikeformer.experiments.sweep.figures import parameter_count
from spikeformer.layers.sparsity import fan_in_table, fan_out_table, gather_linear, scatter_dense
from spikeformer.model.transformer import SpikingTransformer

REQUIRED = {"kind", "dim", "hidden", "k", "fan_in", "seed", "accuracy", "synaptic_ops_per_inference",
            "spikes_per_inference", "parameters", "train_seconds", "energy_loihi2_joules", "energy_ann_int8_joules"}


def tiny_configs(epochs: int = 1):
    model_cfg, train_cfg = presets.preset("tiny")
    train_cfg.epochs, train_cfg.threads = epochs, 1
    return model_cfg, train_cfg


def fake_point(calls):
    """run_point stand-in: sparse synops 1000 + D (flat), dense synops w² (grows), accuracy from the seed."""
    def run_point(run_dir, cfg, tcfg, samples, device, progress):
        calls.append(run_dir.name)
        arch, fan_in = cfg.arch, cfg.weights.fan_in
        ops = 1000.0 + arch.dim if fan_in else float(arch.dim ** 2)
        return {"dim": arch.dim, "hidden": arch.dim * arch.mlp_ratio, "k": arch.stream_k or "",
                "fan_in": fan_in or "", "seed": tcfg.seed, "accuracy": 0.5 + 0.01 * tcfg.seed,
                "model_accuracy": 0.5, "agreement_with_model": 1.0, "synaptic_ops_per_inference": ops,
                "spikes_per_inference": 1.0, "parameters": parameter_count(cfg), "synapses": 1,
                "energy_loihi2_joules": 1e-6, "energy_ann_int8_joules": 2e-6, "samples": 40, "epochs": 1,
                "train_seconds": 0.1}
    return run_point


def test_orchestration_matches_dense_widths_and_resumes(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(ws, "run_point", fake_point(calls))
    m, t = tiny_configs()
    dense_dims = [8, 16, 24, 32, 40, 48]
    rows = ws.sweep([16, 32, 64], 4, 4, 2, dense_dims, tmp_path, m, t, samples=40, progress=False)
    sparse = [r for r in rows if r["kind"] == "sparse"]
    assert sorted((r["dim"], r["seed"]) for r in sparse) == [(d, s) for d in (16, 32, 64) for s in (0, 1)]
    # targets 1016…1064 → nearest w² is 32² = 1024; probes visited by bisection only (not every width)
    dense = {(r["dim"], r["seed"]): r["matched"] for r in rows if r["kind"] == "dense"}
    assert dense[(32, 0)] == dense[(32, 1)] == "synops"
    assert {d for d, s in dense if dense[(d, s)] == "probe"} < set(dense_dims) - {32}
    widest = parameter_count(ws.sparse_config(m, 64, 4, 4))
    wp = ws.parameter_matched_width(widest, m)
    assert all(abs(parameter_count(ws.dense_config(m, wp)) - widest)
               <= abs(parameter_count(ws.dense_config(m, w)) - widest) for w in range(2, 256, 2))
    assert "parameters" in dense[(wp, 0)] and "parameters" in dense[(wp, 1)]
    with open(tmp_path / ws.CSV_FILE, newline="") as f:
        reader = csv.DictReader(f)
        assert REQUIRED <= set(reader.fieldnames)
        assert len(list(reader)) == len(rows)
    assert (tmp_path / ws.PNG_FILE).stat().st_size > 5000
    n = len(calls)
    again = ws.sweep([16, 32, 64], 4, 4, 2, dense_dims, tmp_path, m, t, samples=40, progress=False)
    assert len(calls) == n                                       # resumed: nothing retrained
    assert again == ws.ROWS.read(tmp_path / ws.CSV_FILE) == rows
    assert ws.sparse_synops_ratio(rows) == pytest.approx(1064 / 1016)


def test_dense_baseline_that_cannot_match_is_named(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(ws, "run_point", fake_point(calls))
    m, t = tiny_configs()
    with pytest.raises(ValueError, match=r"^--dense-dims: no dense width in \[4, 16\] matches .* sparse D=16"):
        ws.sweep([16], 4, 4, 1, [4, 8, 16], tmp_path, m, t, samples=40, progress=False)
    assert calls[0] == "sparse-d16-s0" and (tmp_path / ws.CSV_FILE).exists()    # the sparse row is kept


def test_match_width_bisects_and_picks_the_nearest_in_log():
    seen = []
    f = lambda w: seen.append(w) or float(w) ** 2  # noqa: E731
    assert ws.match_width(1100.0, list(range(2, 130, 2)), f, "x") == 34
    assert len(seen) <= 7
    with pytest.raises(ValueError, match="nearest, width 128"):
        ws.match_width(1e6, list(range(2, 130, 2)), f, "x")


@pytest.mark.parametrize("k, fan_in, dims, dense, match", [
    (17, 4, [16, 32], [8], r"^--k \(17\) is larger than the width D=16"),
    (4, 17, [16, 32], [8], r"^--fan-in \(17\) is larger than the pre-population"),
    (4, 4, [16, 15], [8], r"^--dims: every width must be a positive multiple of heads=2"),
    (4, 4, [16], [8, 9], r"^--dense-dims"),
])
def test_bad_input_fails_before_training(tmp_path, monkeypatch, k, fan_in, dims, dense, match):
    monkeypatch.setattr(ws, "run_point", lambda *a, **kw: pytest.fail("trained despite bad input"))
    with pytest.raises(ValueError, match=match):
        ws.sweep(dims, k, fan_in, 1, dense, tmp_path / "s", *tiny_configs(), progress=False)
    assert not (tmp_path / "s").exists()


def test_cli_errors_name_the_parameter(tmp_path):
    out = str(tmp_path / "s")
    base = ("sweep", "--over", "model", "--preset", "tiny", "--out", out, "--dense-dims", "8,16")
    assert_user_error(run(*base, "--dims", "16,32", "--k", "20", "--fan-in", "4"), "--k", "D=16")
    assert_user_error(run(*base, "--dims", "16,32", "--k", "4", "--fan-in", "20"), "--fan-in", "pre-population")
    assert_user_error(run(*base, "--dims", "16", "--k", "4"), "--fan-in")
    assert not (tmp_path / "s").exists()


def test_fixed_tables_gather_and_training_keeps_the_support():
    """fan_in_table: F distinct sources per row; fan_out_table: F_e distinct targets per feature, disjoint across
    features when D ≥ features·F_e; gather_linear = the dense product; a training step moves only the F values."""
    g = torch.Generator().manual_seed(1)
    t = fan_in_table(50, 30, 4, g)
    assert t.shape == (50, 4) and all(len(set(r)) == 4 for r in t.tolist()) and t.max() < 30
    assert len(set(t[:, 0].tolist())) > 1                                         # not the same sources everywhere
    e = fan_out_table(10, 40, 3, g)
    assert sorted(e.flatten().tolist()) == sorted(set(e.flatten().tolist())) and e.max() < 40   # 30 distinct of 40
    e = fan_out_table(10, 16, 3, g)                                               # 30 slots over 16 channels
    assert all(len(set(r)) == 3 for r in e.tolist()) and np.bincount(e.flatten(), minlength=16).max() == 2
    x = (torch.rand(2, 3, 30, generator=g) < 0.3).float()
    v = torch.randint(-127, 128, (50, 4), generator=g).float()
    np.testing.assert_array_equal(gather_linear(x, t, v).numpy(), (x @ scatter_dense(v, t, 30).T).numpy())
    m, _ = tiny_configs()
    torch.manual_seed(0)
    model = SpikingTransformer(ws.sparse_config(m, 32, 4, 5))
    before = {p: model.weight(p).detach() != 0 for p in ("emb", "b0.w1")}
    logits, _ = model((torch.rand(4, 4, 8, 40) < 0.4).float())
    torch.nn.functional.cross_entropy(model.loss_logits(logits), torch.arange(4)).backward()
    torch.optim.SGD(model.parameters(), lr=50.0).step()
    for p, mask in before.items():
        assert torch.equal(model.weight(p).detach() != 0, mask), p
    assert (before["emb"].sum(0) == 5).all() and (before["b0.w1"].sum(1) == 5).all()


def test_parameter_count_is_what_the_model_uses():
    m, _ = tiny_configs()
    for cfg in (ws.sparse_config(m, 32, 4, 5), ws.dense_config(m, 32)):
        model = SpikingTransformer(cfg)
        used = sum(int((model.weight(p).detach() != 0).sum()) if cfg.weights.fan_in else model.weight(p).numel()
                   for p in {pr.param for pr in model.spec.projections if pr.op == "linear"})
        assert parameter_count(cfg) == used + model.readout.numel() + 1


@pytest.mark.parametrize("over, match", [({"stream_k": 33}, r"config\.stream_k \(33\)"),
                                         ({"fan_in": 33}, r"config\.fan_in \(33\) is larger than the pre-population"),
                                         ({"fan_in": 4, "weight_sparsity": 0.5}, r"config\.fan_in and"),
                                         ({"emb_fan_out": 2}, r"config\.emb_fan_out needs config\.fan_in"),
                                         ({"fan_in": 4, "emb_fan_out": 33}, r"config\.emb_fan_out \(33\) is larger"),
                                         ({"dim": 4096, "heads": 8, "stream_k": 4}, r"config\.stream_k: .* 4096")])
def test_model_config_refuses_uncomputable_k_and_fan_in(over, match):
    with pytest.raises(ValueError, match=match):
        model_config(**{"dim": 32, "heads": 2, **over})


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_three_point_width_sweep_end_to_end(tmp_path):
    """Three sparse widths (1 seed), their synops-matched and parameter-matched dense baselines: simulator =
    torch model on every simulated sample, CSV + PNG, and a rerun retrains nothing."""
    m, t = tiny_configs()
    rows = ws.sweep([16, 32, 64], 4, 4, 1, [4, 8, 12, 16, 24, 32], tmp_path, m, t, samples=40, progress=False)
    assert all(r["agreement_with_model"] == 1.0 for r in rows)
    assert {r["kind"] for r in rows} == {"sparse", "dense"}
    sparse = sorted((r for r in rows if r["kind"] == "sparse"), key=lambda r: r["dim"])
    assert [r["parameters"] for r in sparse] == sorted(r["parameters"] for r in sparse)
    assert any("synops" in r["matched"] for r in rows) and any("parameters" in r["matched"] for r in rows)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/model.pt")}
    ws.sweep([16, 32, 64], 4, 4, 1, [4, 8, 12, 16, 24, 32], tmp_path, m, t, samples=40, progress=False)
    assert mtimes == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/model.pt")}


def test_synops_breakdown_sums_to_the_simulated_total(tiny_runs, tmp_path):
    import shutil

    from spikeformer.runs.steps import simulate_run
    run_dir = shutil.copytree(tiny_runs("stream_k"), tmp_path / "run")
    total = simulate_run(run_dir, 8)["synaptic_ops_per_inference"]
    b = ws.synops_breakdown(run_dir)
    assert set(b["synops"]) == {"attention", "hidden_wta", "relay", "stream_wta", "trained"}
    assert sum(b["synops"].values()) == pytest.approx(total) and min(b["synops"].values()) > 0
    s = b["spikes"]
    assert s["stream_raw"] > s["stream_kept"] > 0 and s["hidden_raw"] >= s["hidden_kept"] > 0


@pytest.mark.parametrize("chunk", [1 << 20, 1])
def test_gather_linear_gradients_equal_the_dense_products(chunk, monkeypatch):
    """_GatherLinear's backward (transposed-table bags for ∂x, blocked dot products for ∂values) = autograd
    through the dense matrix; chunk 1 byte: one output row per block."""
    import spikeformer.layers.sparsity as sp
    monkeypatch.setattr(sp, "_CHUNK_BYTES", chunk)
    g = torch.Generator().manual_seed(3)
    for n_out, n_in, f in ((50, 30, 4), (7, 9, 9), (3, 40, 2)):       # (3, 40): most pre neurons unused
        t = fan_in_table(n_out, n_in, f, g)
        x = torch.randn(2, 3, n_in, dtype=torch.float64, generator=g, requires_grad=True)
        v = torch.randn(n_out, f, dtype=torch.float64, generator=g, requires_grad=True)
        gy = torch.randn(2, 3, n_out, dtype=torch.float64, generator=g)
        gx, gv = torch.autograd.grad(gather_linear(x, t, v), (x, v), gy)
        dx, dv = torch.autograd.grad(x @ scatter_dense(v, t, n_in).T, (x, v), gy)
        torch.testing.assert_close(gx, dx)
        torch.testing.assert_close(gv, dv)


def test_plot_draws_another_sweeps_sparse_points_as_a_labelled_series(tmp_path):
    from sim.plots import width_sweep_plot

    def write(path, rows):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["kind", "matched", "dim", "accuracy", "synaptic_ops_per_inference"])
            w.writeheader()
            w.writerows(rows)

    row = lambda kind, d, acc, ops, m="": dict(kind=kind, matched=m, dim=d, accuracy=acc,  # noqa: E731
                                                synaptic_ops_per_inference=ops)
    write(tmp_path / "a.csv", [row("sparse", 64, 0.2, 100), row("dense", 4, 0.5, 100, "synops")])
    write(tmp_path / "b.csv", [row("sparse", 64, 0.3, 900), row("sparse", 64, 0.5, 1100),
                               row("sparse", 256, 0.4, 2000), row("dense", 8, 0.9, 50, "synops")])
    ax = width_sweep_plot(tmp_path / "a.csv", also={"no penalty": tmp_path / "b.csv"}, sparse_label="penalty")
    labels = ax.get_legend_handles_labels()[1]
    assert "no penalty" in labels and "penalty" in labels
    line = next(c.lines[0] for c in ax.containers if c.get_label() == "no penalty")
    assert line.get_xdata().tolist() == [1000.0, 2000.0] and line.get_ydata().tolist() == [0.4, 0.4]
    assert 50.0 not in [x for ln in ax.lines for x in ln.get_xdata()]        # the other sweep's dense rows: not drawn
