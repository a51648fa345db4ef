"""Training step time of a fixed fan-in model at D = 1024: the gather over fixed index tables against the same
model as dense matrices, side by side, each in a fresh process (benchmarks.scripts.train_step, 1 thread).

Shape: the width sweep's base (preset ``mnist1d-width``: 10 tokens, 42 input features, 1 block, 4 heads, MLP ratio
2, T 4) at D = 1024 with k = 4 (group rule) and fan-in F = 4, batch 64. ``dense`` is the same width without fan-in
(every D × D matrix a matmul): what a fan-in model costs when stored and applied as masked dense matrices — the
implementation before the index tables, which also re-ran a top-F argsort over every matrix per step.
Prints seconds per step and the ratio dense / gather.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.common import update_results

pytestmark = pytest.mark.bench

BASE = {"dataset": "mnist1d", "tokens": 10, "levels": 8, "features": 42, "dim": 1024, "depth": 1, "heads": 4,
        "mlp_ratio": 2, "timesteps": 4, "numerics": "loihi", "init_gain": 2.0, "stream_k": 4, "hidden_k": 4,
        "wta_rule": "group"}
CASES = {"gather (fan_in 4)": {**BASE, "fan_in": 4, "emb_fan_out": 1}, "dense": BASE}


def step_seconds(model: dict, batch: int = 64, steps: int = 4) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.scripts.train_step", json.dumps({"model": model}), str(batch),
                          str(steps), "--threads", "1"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fan_in_gather_vs_dense_step_time():
    res = {name: step_seconds(m) for name, m in CASES.items()}
    ratio = res["dense"]["s_per_step"] / res["gather (fan_in 4)"]["s_per_step"]
    for name, r in res.items():
        print(f"{name}: {r['s_per_step']:.3f} s/step, peak RSS {r['peak_rss_gib']:.2f} GiB")
    print(f"dense / gather step time at D = 1024: {ratio:.2f}x")
    update_results(fan_in_step_time={"cases": res, "dense_over_gather": ratio})
    assert res["gather (fan_in 4)"]["s_per_step"] > 0
