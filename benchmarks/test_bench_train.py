"""Training memory and time at the anchor shapes, each configuration in a fresh process, side by side.

Prints, per configuration: the up-front estimate, the measured peak RSS (VmHWM of the training process), seconds
per step and per epoch (steps of the 64-token events training split), and the ratio of the peak
to its goal. Goals (issue "anchor-scale"): 64 tokens × D 128 × 2 blocks, T 8, batch 64: SDSA ≤ 4 GB,
k-WTA ≤ 8 GB; the `large` shapes (64 × 384 × 4 blocks, heads 8, mlp 4, T 4) at batch 32 ≤ 8 GB.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.common import update_results

pytestmark = pytest.mark.bench

MID = {"tokens": 64, "features": 96, "classes": 12, "dim": 128, "depth": 2, "heads": 4, "timesteps": 8, "init_gain": 2.0,
       "kwta_k": 2, "mask_count": 2}
LARGE = {"tokens": 64, "features": 96, "classes": 12, "dim": 384, "depth": 4, "heads": 8, "mlp_ratio": 4, "timesteps": 4,
         "init_gain": 2.0, "kwta_k": 2, "mask_count": 2}
CASES = [  # name, model, batch, goal GiB
    ("64x128x2 sdsa", {**MID, "attention": "sdsa"}, 64, 4.0),
    ("64x128x2 kwta", {**MID, "attention": "kwta"}, 64, 8.0),
    ("large sdsa", {**LARGE, "attention": "sdsa"}, 32, 8.0),
    ("large kwta", {**LARGE, "attention": "kwta"}, 32, 8.0),
]


def measure(model: dict, batch: int, steps: int = 3, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.scripts.train_step", json.dumps({"model": model}), str(batch),
                          str(steps), *extra], capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_memory_and_time(capsys):
    from spikeformer.data.event_datasets import load_events_split

    train_samples = len(load_events_split(64).y_train)           # the 64-token events training split
    rows, results = [], {}
    for name, model, batch, goal in CASES:
        m = measure(model, batch)
        epoch = m["s_per_step"] * -(-train_samples // batch)
        rows.append(f"{name:14s} batch {batch:3d}: estimate {m['estimate_gib']:5.2f} GiB, peak RSS "
                    f"{m['peak_rss_gib']:5.2f} GiB (goal {goal:.0f}, ratio {m['peak_rss_gib'] / goal:.2f}), "
                    f"{m['s_per_step']:6.2f} s/step, {epoch:7.0f} s/epoch")
        results[name] = {**m, "batch": batch, "s_per_epoch": epoch}
        assert m["peak_rss_gib"] <= goal, (name, m)
        assert m["estimate_gib"] >= 0.9 * m["peak_rss_gib"], (name, m)     # the refusal must not be optimistic
    update_results(train_memory=results)
    with capsys.disabled():
        print("\n" + "\n".join(rows))
