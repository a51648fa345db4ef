"""The ladder's exact rungs (spikeformer.experiments.ladder.exact): the depth-0 model is the one-hidden-layer MLP
of its formula, exact points agree with the simulator on every test signal and with Lava, and the harness writes
the dense spiking model and the Lava rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sim import numerics as nm
from sim.neurons.cuba import lif_step_loihi_np
from spikeformer.configure.validate import model_config
from spikeformer.experiments.ladder import harness
from spikeformer.experiments.ladder.data import ladder_data
from spikeformer.experiments.ladder.exact import ExactConfig, fit_exact, lava_check, measure_exact
from spikeformer.experiments.ladder.rungs import RUNGS
from spikeformer.experiments.ladder.train import Budget
from spikeformer.model.transformer import SpikingTransformer


def small_data():
    return ladder_data(600, 200)


def test_depth_zero_model_is_one_hidden_layer_by_its_formula():
    """logits = Σ_t W_out·Z_t, Z = LIF(W_emb·x) run tick by tick with the numpy Loihi reference (no k-WTA)."""
    cfg = model_config(dataset="mnist1d", tokens=1, levels=8, features=321, dim=24, depth=0, heads=1,
                       timesteps=4, numerics="loihi", init_gain=2.0)
    torch.manual_seed(3)
    model = SpikingTransformer(cfg)
    from spikeformer.data.registry import encode
    x = encode(cfg, small_data().x_test[:30].numpy())
    logits, rec = model(x, record=True)
    w = model.weight("emb").detach().numpy().astype(np.int64)               # loihi units (weight exponent 0)
    readout = model.readout_weight().detach().numpy()
    u = v = np.zeros((30, 24), np.int64)
    counts = np.zeros((30, 24))
    for t in range(4):
        a = x[:, t, 0].numpy().astype(np.int64) @ w.T                       # the synaptic current
        u, v, s = lif_step_loihi_np(u, v, a, nm.DU_MAX, cfg.neuron.dv, cfg.neuron.vth)
        np.testing.assert_array_equal(s, rec["out"][:, t, 0].numpy(), err_msg=f"tick {t}")
        counts += s
    assert counts.sum() > 0
    np.testing.assert_array_equal(logits.detach().numpy(), counts @ readout.T)
    assert [p.name for p in model.spec.populations] == ["input", "r0", "out"]


@pytest.mark.parametrize("rung,variant,dim", [("R5", "strength", 16), ("R5", "none", 16), ("R6", "group", 16)])
def test_exact_points_equal_the_simulator_on_every_test_signal(rung, variant, dim):
    d = small_data()
    f = fit_exact(ExactConfig(rung, variant, dim, 4, 3), d, 0.01, 0, Budget(max_epochs=1, patience=1))
    m = measure_exact(f.model, d.x_test, d.y_test)
    assert m["agreement_with_model"] == 1.0 and 0.0 < m["accuracy"] <= 1.0
    assert m["parameters"] == sum(w.numel() for w in f.model.weights.values()) + 10 * dim
    assert 0.0 <= m["dead_fraction"] < 1.0 and m["synaptic_ops_per_inference"] > 0
    if variant != "none":
        assert m["active"] <= 4 * (1 if rung == "R5" else 1) + 1e-9            # ≤ k kept per tick and token
    if rung == "R5":                                                        # one token: every unit sees ≥ 2 inputs
        assert m["multi_input_fraction"] == 1.0


def test_the_exact_rungs_synaptic_ops_are_the_fan_out_of_every_spike():
    """R5 without k-WTA: ops = Σ_t (input spikes · fan-out + non-zero currents R_t (the relay's graded events, one
    synapse each) + Z spikes · readout fan-out)."""
    d = small_data()
    f = fit_exact(ExactConfig("R5", "none", 16, 4, 3), d, 0.01, 0, Budget(max_epochs=1, patience=1))
    m = measure_exact(f.model, d.x_test, d.y_test)
    from spikeformer.data.registry import encode
    x = encode(f.model.cfg, d.x_test.numpy())
    _, rec = f.model(x, record=True)
    nz_emb = (f.model.weight("emb") != 0).sum(0).double()                   # fan-out per input feature
    nz_out = (f.model.readout_weight() != 0).sum(0).double()
    relay = int(((x.double() @ f.model.weight("emb").T.double()) != 0).sum())
    want = (x.double() @ nz_emb).sum() + relay + (rec["out"].double() @ nz_out).sum()
    assert m["synaptic_ops_per_inference"] == pytest.approx(float(want) / len(x))


def test_widest_exact_point_in_lava_is_identical_to_the_simulator():
    d = small_data()
    f = fit_exact(ExactConfig("R5", "strength", 24, 4, 3), d, 0.01, 0, Budget(max_epochs=1, patience=1))
    got = lava_check(f.model, d.x_test, 3, timeout=300)
    assert got["samples"] == 3 and got["identical"] == 1 and got["mismatched_spikes"] == 0
    assert got["lava_agreement_with_model"] == 1.0


def test_the_harness_trains_the_dense_spiking_model_beside_and_writes_lava_rows(tmp_path):
    kw = dict(k=4, timesteps=2, lrs=(0.01,), train_signals=300, val_signals=100,
              budget=Budget(max_epochs=1, patience=1), progress=False, lava_samples=2)
    rows = harness.run_ladder(["R5"], [8, 16], [0], tmp_path, **kw)
    kinds = {(r["variant"], r["kind"]) for r in rows}
    assert kinds == {(v, k) for v in ("strength", "group") for k in harness.KINDS}
    spiking = [r for r in rows if r["kind"] == "dense-spiking"]
    assert all(r["k"] == "" and r["dim"] == r["matched_dim"] for r in spiking)
    assert all(float(r["agreement_with_model"]) == 1.0 for r in rows if r["kind"] in ("sparse", "dense-spiking"))
    assert all(r["agreement_with_model"] == "" for r in rows if r["kind"] in ("dense-synops", "dense-params"))
    lava = harness.LAVA_ROWS.read(tmp_path / harness.LAVA_FILE)
    assert sorted((r["variant"], r["matched_dim"], r["identical"]) for r in lava) == [("group", 16, 1),
                                                                                     ("strength", 16, 1)]


def test_exact_rung_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        ExactConfig("R5", "index", 16, 4, 2)
    with pytest.raises(ValueError, match="stream_k"):
        ExactConfig("R5", "group", 16, 20, 2)
    with pytest.raises(ValueError, match="k-WTA rules"):
        RUNGS["R6"].config("strength", 16, 4, 4, 2)
    with pytest.raises(ValueError, match="takes no options"):
        harness.run_ladder(["R5"], [8], [0], tmp_path, k=4, options=("auxk",), progress=False)
    with pytest.raises(ValueError, match="--lava-samples"):
        harness.run_ladder(["R5"], [8], [0], tmp_path, k=4, lava_samples=-1, progress=False)
    with pytest.raises(ValueError, match="depth"):
        model_config(dataset="mnist1d", tokens=1, levels=8, features=321, depth=-1, heads=1)
