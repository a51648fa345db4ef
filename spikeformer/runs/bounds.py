"""Input bounds of an import, checked before any array is built: memory estimated from the declared shapes.

For ``samples`` inputs over ``graph.ticks`` ticks (T = ``--timesteps`` plus the graph's depth), what an
import and the ``simulate`` that follows it hold at once::

    inputs      samples · T · Σ Input sizes · (1 + bytes per encoded value)   (read or encoded, then bool)
    events      samples · T · 16                                            (the engine's per-tick CSR of input events)
    simulation  sim.engine.simulate.estimate_bytes(graph, samples, record=True), twice with loihi numerics
                (the float and the quantised graph are both simulated for their agreement)

Refused (MemoryError, one line with the estimate) when the sum exceeds
``sim.system.memory.available_bytes()`` — as ``train`` and ``simulate`` refuse theirs.
"""
from __future__ import annotations

from sim.ir.graph import AerGraph
from sim.system.memory import available_bytes

EVENT_INDEX_BYTES = 16


def import_bytes(graph: AerGraph, samples: int, fixed_point: bool, encoded_bytes: int = 0) -> dict[str, int]:
    """The estimate of the module docstring, by part (bytes); ``encoded_bytes``: bytes per input value before
    it becomes a bool spike (a dataset's encoder; 0 for a spike file)."""
    from sim.engine.simulate import estimate_bytes

    ticks, width = int(graph.ticks), sum(p.size for p in graph.inputs)
    sim = sum(estimate_bytes(graph, max(samples, 1), record=True, threads=None).values())
    return {"inputs": samples * ticks * width * (1 + encoded_bytes),
            "events": samples * ticks * EVENT_INDEX_BYTES,
            "simulation": sim * (2 if fixed_point else 1)}


def check_import_bounds(graph: AerGraph, samples: int, fixed_point: bool, source: str, encoded_bytes: int = 0) -> None:
    """MemoryError naming ``--timesteps``, the sample count and the estimate when the import would not fit."""
    need, have = import_bytes(graph, samples, fixed_point, encoded_bytes), available_bytes()
    if sum(need.values()) > have:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in need.items())
        raise MemoryError(f"--timesteps {graph.timesteps}: importing {source} and simulating {samples} sample(s) "
                          f"over {graph.ticks:,} ticks needs ~{sum(need.values()) / 2**30:.2f} GiB ({parts}); "
                          f"{have / 2**30:.2f} GiB available — give fewer --timesteps or samples")
