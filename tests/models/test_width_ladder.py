"""The width ladder (spikeformer.experiments.ladder): its selection rules, learned wiring, synaptic-op count,
slope statistics and the resumable CSV; a slow 3-point mini-ladder through the command line."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeformer.arch.wta import first_in_groups
from spikeformer.experiments.ladder import harness
from spikeformer.experiments.ladder.counts import measure, synaptic_ops
from spikeformer.experiments.ladder.mlp import (
    INPUTS,
    LEAK,
    THRESHOLD,
    LadderMLP,
    RungConfig,
    annealed_nonzeros,
    keep_k,
    lif_ticks,
)
from spikeformer.experiments.ladder.rungs import RUNGS
from spikeformer.experiments.ladder.summary import first_break, ols_slope, slopes, t_interval
from spikeformer.experiments.ladder.train import Budget, fit
from spikeformer.layers.lif import spike


def brute_keep(score: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """keep_k by its definition: c kept iff eligible and fewer than k eligible c' beat it (larger, or equal and
    earlier)."""
    out = np.zeros_like(eligible)
    for b in range(score.shape[0]):
        for c in range(score.shape[1]):
            beaten = sum(1 for d in range(score.shape[1]) if eligible[b, d] and
                         (score[b, d] > score[b, c] or (score[b, d] == score[b, c] and d < c)))
            out[b, c] = eligible[b, c] and beaten < k
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2 ** 31 - 1), st.booleans())
def test_keep_k_is_its_definition_ties_to_the_lower_index(k, width, seed, coarse):
    rng = np.random.default_rng(seed)
    score = rng.integers(-2, 3, (4, width)).astype(np.float32) if coarse else rng.normal(size=(4, width)).astype(
        np.float32)
    eligible = rng.random((4, width)) < 0.7
    got = keep_k(torch.from_numpy(score), torch.from_numpy(eligible), k).numpy()
    np.testing.assert_array_equal(got, brute_keep(score, eligible, k))


def test_topk_keeps_exactly_k_largest_by_magnitude_with_their_values():
    m = LadderMLP(RUNGS["R0"].config("dense", 64, 5, 4, 1), 0)
    a = torch.randn(32, 64) + 1.0                          # ≥ 5 positive per row
    z = m.code(a)[:, 0]
    assert ((z != 0).sum(1) == 5).all()
    for row, zr in zip(a, z):
        kept = zr != 0
        assert torch.equal(zr[kept], row[kept])                # kept units keep their value (ReLU > 0)
        assert row[kept].min() >= row[~kept].max()
    binary = LadderMLP(RUNGS["R1"].config("dense", 64, 5, 4, 1), 0).code(a)[:, 0]
    assert torch.equal(binary, (z != 0).float())               # R1: the same units, emitting 1


def test_strength_rule_keeps_the_k_largest_potentials_over_threshold():
    k, T = 3, 4
    m = LadderMLP(RUNGS["R2"].config("dense", 12, k, 4, T), 0)
    a = torch.tensor([[0.1, 2.0, 1.5, 3.0, 1.2, 0.9, 2.5, 1.1, 0.2, 1.05, 2.5, 0.0]])
    ticks = m.code(a)[0]
    # tick 1: v = a; over θ = 1: 2.0, 1.5, 3.0, 1.2, 2.5, 1.1, 1.05, 2.5 → the largest three: 3.0, then the tie
    # 2.5 / 2.5 (channels 6 and 10) → both (3 places); channel 1 (2.0) is over threshold but not kept
    assert ticks[0].nonzero().flatten().tolist() == [3, 6, 10]
    v = torch.zeros_like(a)
    r = torch.zeros_like(a)
    for t in range(T):                                         # the definition, tick by tick
        v = LEAK * v * (1 - r) + a
        r = (v > THRESHOLD).float()
        pot = torch.where(r > 0, v, -torch.inf)[0]
        order = sorted(range(12), key=lambda c: (-pot[c].item(), c))
        want = torch.zeros(12)
        want[[c for c in order[:k] if r[0, c] > 0]] = 1.0
        assert torch.equal(ticks[t], want), t
    tied = torch.tensor([[2.0, 2.0, 2.0, 2.0, 2.0]])            # a tie across the cut: the lower indices win
    assert m_code(tied, k, 1)[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    # potential, not current: at tick 2 channel 0 (a = 0.95, not reset) holds v = 1.75·0.95 = 1.66, above the
    # reset channels' v = a ≤ 1.4, and wins although its current is the smallest
    assert m_code(torch.tensor([[0.95, 1.2, 1.3, 1.4]]), 1, 2).tolist() == [[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]


def m_code(a: torch.Tensor, k: int, ticks: int) -> torch.Tensor:
    """R2's outputs (T, D) for the one signal of current ``a`` (1, D)."""
    return LadderMLP(RUNGS["R2"].config("dense", a.shape[1], k, 4, ticks), 0).code(a)[0]


@pytest.mark.parametrize("select", ["strength", "group"])
@pytest.mark.parametrize("width", [48, 50])                     # groups of equal size (48 / 6) or not
def test_lif_gradient_in_closed_form_equals_autograd_of_the_tick_loop(select, width):
    """The definition: the tick loop of the mlp docstring with autograd through the surrogates (keep_k a constant,
    first_in_groups with its count surrogate) — lif_ticks must give the same spikes and the same gradient."""
    torch.manual_seed(0)
    a = (torch.randn(16, width) * 2).requires_grad_()
    w = torch.randn(16, 4, width)
    v, r, loop = torch.zeros_like(a), torch.zeros_like(a), []
    for _ in range(4):
        v = LEAK * v * (1 - r.detach()) + a
        r = spike(v, THRESHOLD, THRESHOLD)
        loop.append(r * keep_k(v.detach(), r.detach() > 0, 6).float() if select == "strength"
                    else first_in_groups(r, 6))
    g_loop, = torch.autograd.grad((torch.stack(loop, 1) * w).sum(), a)
    z = lif_ticks(a, 6, 4, select)
    g, = torch.autograd.grad((z * w).sum(), a)
    assert torch.equal(z.detach(), torch.stack(loop, 1).detach())
    assert g.abs().max() > 0
    torch.testing.assert_close(g, g_loop, rtol=1e-4, atol=1e-6)


def test_learned_mask_keeps_exactly_f_largest_weights_per_unit():
    cfg = RungConfig(dim=32, k=4, neuron="lif", select="strength", wiring="fanin-learned", fan=3, timesteps=2,
                     anneal_epochs=2)
    m = LadderMLP(cfg, 0)
    assert int(m.mask.sum()) == 32 * INPUTS                    # starts dense
    assert [annealed_nonzeros(cfg, e) for e in (0, 0.5, 1, 2, 5)] == [40, 31, 22, 3, 3]
    with torch.no_grad():
        m.w_in.normal_()
    m.reselect(3)
    assert (m.mask.sum(1) == 3).all()
    w = m.w_in.detach().abs()
    assert ((w * m.mask + (1 - m.mask) * 1e9).amin(1) >= (w * (1 - m.mask)).amax(1)).all()
    x = torch.randn(8, INPUTS)
    m.current(x).sum().backward()                              # straight-through: pruned weights get gradient too
    assert (m.w_in.grad[m.mask == 0] != 0).any()


def tiny_data(n: int = 400):
    from spikeformer.experiments.ladder.data import ladder_data
    return ladder_data(n, 200)


def test_fit_of_a_learned_wiring_ends_with_f_nonzeros_per_unit_and_is_counted():
    cfg = RUNGS["R4"].config("fanin-learned", 24, 4, 3, 2)
    f = fit(cfg, tiny_data(), 0.01, 0, Budget(max_epochs=2, patience=1))
    assert f.epochs >= cfg.anneal_epochs                       # the annealing epochs do not count for patience
    d = tiny_data()
    m = measure(f.model, d.x_test, d.y_test)
    assert (f.model.mask.sum(1) == 3).all()
    assert m["parameters"] == 24 * 3 + 24 + 10 * 24 + 10
    assert m["nonzero_weights"] <= 24 * 3 + 10 * 24


def test_synaptic_ops_on_a_hand_made_case():
    x = torch.tensor([[1.0, 0.0, -2.0]])                       # inputs 0 and 2 active
    w_in = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    # fan-outs of the inputs: 2, 2, 2 → active inputs 0 and 2: 4 ops
    ticks = torch.tensor([[[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]]])
    w_out = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
    # hidden fan-outs 2, 1, 0, 2: tick 1 units 0, 2 → 2 + 0; tick 2 units 2, 3 → 0 + 2
    assert synaptic_ops(x, w_in, ticks, w_out).tolist() == [4 + 2 + 2]


def test_dense_baselines_are_counted_as_macs_and_widths_match():
    m = LadderMLP(RungConfig(dim=16), 0)
    d = tiny_data()
    got = measure(m, d.x_test, d.y_test)
    assert got["synaptic_ops_per_inference"] == 40 * 16 + 16 * 10 and got["parameters"] == 51 * 16 + 10
    assert harness.params_matched_width(51 * 256 + 10) == 256
    assert harness.synops_matched_width(50 * 100) == 108      # w* = 100 → the grid point 2^(27/4) = 107.6
    assert harness.grid_width(1) == 1 and harness.grid_width(181) == 181


def test_slopes_and_their_interval():
    assert ols_slope([0, 1, 2, 3], [1.0, 1.5, 2.0, 2.5]) == pytest.approx(0.5)
    mean, _, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    rows = [{"rung": r, "variant": "dense", "kind": "sparse", "matched_dim": d, "seed": s, "selected": 1,
             "accuracy": (0.5 + 0.05 * np.log2(d) + 0.01 * s) if r == "R0" else 0.5 + 0.01 * s - 0.001 * d}
            for r in ("R0", "R1") for d in (16, 64, 256) for s in (0, 1, 2)]
    by = {s["rung"]: s for s in slopes(rows)}
    assert by["R0"]["slope"] == pytest.approx(0.05) and by["R0"]["trend"] and by["R0"]["slope_low"] > 0
    assert not by["R1"]["trend"] and first_break(list(by.values()))["rung"] == "R1"


def test_a_second_run_trains_nothing_and_a_new_point_only_itself(tmp_path, monkeypatch):
    kw = dict(k=2, fan_in=2, timesteps=2, lrs=(0.01, 0.03), train_signals=300, val_signals=100,
              budget=Budget(max_epochs=1, patience=1), progress=False)
    rows = harness.run_ladder(["R0"], [8, 16], [0, 1], tmp_path, **kw)
    assert len(rows) == 2 * 3 * (2 + 1)                        # widths × kinds × (lrs on seed 0 + seed 1)
    assert {r["selected"] for r in rows} == {0, 1}
    calls = []
    monkeypatch.setattr(harness, "fit", lambda *a, **k: calls.append(a) or pytest.fail("trained again"))
    again = harness.run_ladder(["R0"], [8, 16], [0, 1], tmp_path, **kw)
    assert again == rows and not calls
    monkeypatch.undo()
    trained = []
    real_fit = harness.fit
    monkeypatch.setattr(harness, "fit", lambda *a, **k: trained.append(a[0]) or real_fit(*a, **k))
    more = harness.run_ladder(["R0", "R1"], [8, 16], [0, 1], tmp_path, **kw)
    # R1: its sparse points are new; its dense baselines are R0's models (same fingerprint): copied, not trained
    assert trained and all(c.neuron == "binary" for c in trained)
    assert len(more) == 2 * len(rows)
    with open(tmp_path / harness.CSV_FILE) as f:
        assert len(list(csv.DictReader(f))) == len(more)


def test_bad_options_are_one_line_errors_naming_them(tmp_path):
    for args, needle in ((dict(rungs=["R9"]), "--rungs"), (dict(dims=[8, 8]), "--dims"), (dict(k=20), "--k"),
                         (dict(lrs=(2.0,)), "--lrs"), (dict(seeds=[-1]), "--seeds")):
        kw = dict(rungs=["R0"], dims=[8, 16], seeds=[0], out=tmp_path, k=2, lrs=(0.01,), progress=False)
        kw.update(args)
        with pytest.raises(ValueError, match=needle):
            harness.run_ladder(**kw)
    assert not (tmp_path / harness.CSV_FILE).exists()


@pytest.mark.slow
def test_three_point_mini_ladder_through_the_command_line(tmp_path):
    args = [sys.executable, "-m", "spikeformer.app.cli", "ladder", "--rungs", "R0,R2,R5", "--dims", "8,16,32",
            "--seeds", "0,1", "--k", "4", "--out", str(tmp_path), "--train-signals", "1000", "--val-signals", "200",
            "--max-epochs", "3", "--lrs", "0.01", "--lava-samples", "3", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout)
    for name in ("width-ladder.csv", "width-ladder.png", "width-ladder.md"):
        assert (tmp_path / name).stat().st_size > 0
    rows = fig["rows"]
    # R0, R2: 3 widths × 3 kinds × 2 seeds; R5: 2 k-WTA rules × 3 widths × 4 kinds (dense spiking too) × 2 seeds
    assert len(rows) == 2 * 3 * 3 * 2 + 2 * 3 * 4 * 2 and all(0 <= r["accuracy"] <= 1 for r in rows)
    assert {s["rung"] for s in fig["slopes"] if s["kind"] == "sparse"} == {"R0", "R2", "R5"}
    assert all(r["agreement_with_model"] == 1.0 for r in rows if r["rung"] == "R5" and r["kind"] == "sparse")
    assert [(r["variant"], r["matched_dim"], r["identical"]) for r in fig["lava"]] == [("group", 32, 1),
                                                                                      ("strength", 32, 1)]
    assert {c["rung"] for c in fig["equal_ops"]} == {"R5"}
    md = (tmp_path / "width-ladder.md").read_text()
    assert "slope per doubling" in md and "Best spiking configuration" in md and "Exact rungs in Lava" in md
    p2 = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert p2.returncode == 0 and json.loads(p2.stdout)["rows"] == rows      # nothing trained, same rows
