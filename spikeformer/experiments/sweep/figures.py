"""What both sweeps compute: the widths they are given (``parse_dims``), the parameters a model can use
(``parameter_count``, the one definition) and max/min ratios of a measured figure."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def parse_dims(text: str, option: str = "--dims") -> list[int]:
    """``"256,1024,4096"`` → [256, 1024, 4096]; ValueError naming ``option`` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated positive integers like 256,1024,4096, "
                         f"got {text!r}") from None


def parameter_count(cfg: Any) -> int:
    """Trainable entries the model can use, from the spec's shapes: per linear projection n_in·n_out (dense),
    min(F, n_in)·n_out (fan-in F) or min(emb_fan_out or F, n_out)·n_in (fan-in embedding); plus the readout
    (classes × readout width) and the temperature (1)."""
    from spikeformer.arch.build import build_spec
    spec = build_spec(cfg)
    total = 0
    for pr in spec.projections:
        if pr.op != "linear":
            continue
        n_in, n_out = spec.shape(pr.pre)[-1], spec.shape(pr.post)[-1]
        w = cfg.weights
        if w.fan_in is None:
            total += n_in * n_out
        else:
            fe = w.emb_fan_out or w.fan_in
            total += min(fe, n_out) * n_in if pr.param == "emb" else min(w.fan_in, n_in) * n_out
    return total + cfg.arch.classes * spec.shape(spec.readout_pre)[-1] + 1


def max_over_min(values: Sequence[float]) -> float:
    """max / min of ``values``; inf if there are none or the least is not positive."""
    return max(values) / min(values) if values and min(values) > 0 else float("inf")
