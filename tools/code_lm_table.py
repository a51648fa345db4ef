"""The code-lm table: a trained language-model run's held-out bits per byte beside the dense baseline of the
same shape and budget and the unigram / bigram / trigram models, all on the run's own split.

    .venv/bin/python tools/code_lm_table.py RUN [--dense-steps S] [--test-windows W]

RUN: a run of ``spikeformer train --preset code-lm`` (or any pycode run). The dense baseline trains for the
run's steps (train.epochs × steps per epoch, batch train.batch_size) unless --dense-steps; every figure is on
the whole held-out split unless --test-windows. Prints one markdown table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from spikeformer.experiments.codelm import ngram_bits, train_dense
from spikeformer.runs.rundir import load_config, run_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--dense-steps", type=int, default=None)
    ap.add_argument("--test-windows", type=int, default=None)
    args = ap.parse_args()
    model_cfg, train_cfg = load_config(args.run)
    data = run_split(args.run, model_cfg)
    metrics = json.loads((args.run / "metrics.json").read_text())
    grams = ngram_bits(data, model_cfg.arch.classes)
    dense = train_dense(model_cfg, train_cfg, data, args.dense_steps, args.test_windows)
    n = len(data.y_test) if args.test_windows is None else min(args.test_windows, len(data.y_test))
    print(f"| model | held-out bits per byte | notes |\n|---|---|---|")
    print(f"| spiking (causal SDSA, loihi) | {metrics['test_bits_per_byte']:.3f} | {metrics['seconds']:.0f} s training, "
          f"all {len(data.y_test):,} held-out windows |")
    print(f"| dense transformer, same shape | {dense['dense_bits_per_byte']:.3f} | {dense['dense_steps']} steps, "
          f"{dense['dense_seconds']:.0f} s, {dense['dense_parameters']:,} parameters, {n:,} windows |")
    for k, v in grams.items():
        print(f"| {k} (add-0.01) | {v:.3f} | counted on the training windows |")


if __name__ == "__main__":
    main()
