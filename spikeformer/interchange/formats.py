"""Import formats by name (``spikeformer import <name>``): every built-in format module, registered.

A new format is one module of ``spikeformer.interchange`` that registers its reader with
``spikeformer.interchange.base.register``, imported below.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sim.ir.graph import AerGraph
from spikeformer.interchange import nir_import  # noqa: F401  (registers "nir")
from spikeformer.interchange.base import DESCRIPTIONS, IMPORTERS

__all__ = ["DESCRIPTIONS", "importer", "names"]


def names() -> list[str]:
    return sorted(IMPORTERS)


def importer(name: str) -> Callable[[Path, int, float | None], AerGraph]:
    """The reader registered as import format ``name``; ValueError naming the known formats."""
    if name not in IMPORTERS:
        raise ValueError(f"unknown import format {name!r}; known: {sorted(IMPORTERS)}")
    return IMPORTERS[name]
