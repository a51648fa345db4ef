"""Slow: the whole chain at the Spikformer-4-384 shape (large-kwta), with a few training steps."""
from __future__ import annotations

import json

import pytest
from test_cli import run


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_large_kwta_trains_converts_simulates_runs_in_lava_and_reports(tmp_path):
    out = tmp_path / "large-kwta"
    p = run("train", "--preset", "large-kwta", "--epochs", "1", "--steps-per-epoch", "2", "--out", str(out), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())["model"]["arch"]
    assert (cfg["tokens"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["attention"]) == (64, 384, 4, 8, "kwta")
    p = run("convert", str(out), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    conv = json.loads(p.stdout)
    assert conv["neurons"] > 10_000_000
    p = run("simulate", str(out), "--samples", "8", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    sim = json.loads(p.stdout)
    assert sim["agreement_with_model"] == 1.0 and sim["mismatched_spikes"] == 0 and sim["predictions_equal_model"]
    p = run("export", "lava", str(out), "--samples", "4", "--timeout", "3000", "--json", timeout=3300)
    assert p.returncode == 0, p.stderr[-3000:]
    lava = json.loads(p.stdout)
    assert lava["identical_to_simulator"] and lava["mismatched_spikes"] == 0 and lava["samples"] == 4
    p = run("report", str(out), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    rep = json.loads(p.stdout)
    assert rep["chips_needed"] >= 2 and rep["inter_chip_messages"] > 0 and rep["energy_loihi2_joules"] > 0
