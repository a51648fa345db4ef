"""One training configuration in a fresh process: estimate, then measured peak RSS and seconds per step.

``python -m benchmarks.train_step '{"model": {...}}' BATCH STEPS [--checkpoint] [--device cpu|cuda]`` prints one
JSON line: estimate_gib, peak_rss_gib (VmHWM of this process: ``benchmarks.common.proc_status``), s_per_step (mean over steps after the first),
and (cuda) peak_cuda_gib. Random input spikes at 20 % density: the cost does not depend on the data.
"""
from __future__ import annotations

import json
import sys
import time

import torch

from spikeformer.configure.validate import model_config


def main(argv: list[str]) -> dict:
    from benchmarks.common import proc_status
    from spikeformer.model.transformer import SpikingTransformer
    from spikeformer.train.memory import estimate_training_bytes

    cfg = model_config(**json.loads(argv[0])["model"])
    batch, steps = int(argv[1]), int(argv[2])
    checkpoint = "--checkpoint" in argv
    dev = torch.device(argv[argv.index("--device") + 1] if "--device" in argv else "cpu")
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    model = SpikingTransformer(cfg).to(dev)
    x = torch.rand(batch, cfg.arch.timesteps, cfg.arch.tokens, cfg.arch.features, device=dev) < 0.2
    y = torch.randint(0, cfg.arch.classes, (batch,), device=dev)
    est = sum(estimate_training_bytes(model, x[:1], batch, checkpoint).values())
    model.checkpoint_blocks = checkpoint
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(model.loss_logits(logits), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out = {"estimate_gib": est / 2**30, "peak_rss_gib": proc_status("VmHWM") / 2**30,
           "s_per_step": sum(times[1:]) / max(len(times) - 1, 1), "first_step_s": times[0]}
    if dev.type == "cuda":
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
