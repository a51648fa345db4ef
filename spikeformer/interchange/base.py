"""Import formats: one module per format, registered under its name (``spikeformer import <name>``).

An importer turns a model file into a float AER graph (``sim.ir``) whose spikes are the
format's semantics; ``spikeformer.runs.imported`` writes the run directory around it (inputs,
optional Loihi quantisation) that ``simulate``, ``export lava``, ``report`` and ``export nir`` read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from sim.ir.graph import AerGraph


class ImportError_(ValueError):
    """A model file cannot be imported (one line, naming the file, node or field)."""


class Importer(Protocol):
    def __call__(self, path: Path, timesteps: int, dt: float | None) -> AerGraph: ...


IMPORTERS: dict[str, Callable[[Path, int, float | None], AerGraph]] = {}


DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str) -> Callable:
    """Decorator: register ``fn(path, timesteps, dt) -> float AerGraph`` as import format ``name``."""
    def wrap(fn: Callable) -> Callable:
        if name in IMPORTERS:
            raise ValueError(f"import format {name!r} is registered twice")
        IMPORTERS[name], DESCRIPTIONS[name] = fn, description
        return fn
    return wrap

