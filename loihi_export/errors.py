"""Errors raised by the Lava export (importable without importing Lava)."""
from __future__ import annotations


class LavaRunError(RuntimeError):
    """A Lava run failed or timed out; the message carries Lava's own error text."""
