"""Checks of the command line's numeric options: a one-line ValueError naming the option.

Counts are integers in ``[lo, hi]`` (``hi`` defaults to ``COUNT_MAX``, the C int range
torch and numpy take); seconds are finite and > 0 (NaN compares false both ways and
would mean "never").
"""
from __future__ import annotations

import math

COUNT_MAX = (1 << 31) - 1


def check_count(option: str, value: int | None, lo: int = 1, hi: int = COUNT_MAX) -> None:
    """``value`` is None (option not given) or an integer in [lo, hi]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{option} must be an integer in [{lo}, {hi}], got {value!r}")


def check_seconds(option: str, value: float | None) -> None:
    """``value`` is None (option not given) or a finite number of seconds > 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{option} must be a finite number of seconds > 0, got {value!r}")
