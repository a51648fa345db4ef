"""Read-back: recorded spikes and payloads → (samples, ticks, n) per population, and the rest check.

Run ticks are laid out as in ``loihi_export.build.network``: slot ``s`` is ticks
``[s·period, s·period + ticks)``, lane ``b`` of slot ``s`` is sample ``s·batch + b``.
``check_rest`` verifies that no population had an event in the ``max_delay`` ticks
before each slot after the first, so a wrong ``rest_period`` is an error, never a wrong spike.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from loihi_export.build.network import LavaNetwork
from sim.ir.graph import Population


def _recorded(net: LavaNetwork, p: Population) -> np.ndarray:
    """Everything recorded for population p: bool (run ticks, B·n)."""
    rec = net.recorders[p.name]
    if net.record == "monitor":
        return np.asarray(rec.get_data()[net.processes[p.name].name]["s_out"]) != 0
    return rec.spikes()


def _windows(net: LavaNetwork, arr: np.ndarray, size: int) -> np.ndarray:
    """(run ticks, B·n) → (samples, ticks, n): each slot's window, lanes as samples."""
    parts = [arr[s * net.period:s * net.period + net.ticks].reshape(net.ticks, net.batch, size).transpose(1, 0, 2)
             for s in range(net.sequence)]
    return np.concatenate(parts)[:net.samples]


def _check_rest(net: LavaNetwork, name: str, arr: np.ndarray) -> None:
    d = net.max_delay
    for s in range(1, net.sequence):
        lo, hi = s * net.period - d, s * net.period
        if arr[lo:hi].any():
            t = lo + int(np.flatnonzero(arr[lo:hi].any(axis=1))[0])
            raise RuntimeError(f"network not at rest before sample slot {s}: population {name!r} had an event "
                               f"at tick {t + 1} (slot starts at tick {hi + 1}); period {net.period} too short")


def check_rest(net: LavaNetwork, recorded: Mapping[str, np.ndarray]) -> None:
    """Raise RuntimeError unless no population had an event in the ``max_delay`` ticks before each
    slot after the first (then every slot started from rest; see the module docstring).
    ``recorded``: ``{population: bool (run ticks, B·n)}``."""
    for name, arr in recorded.items():
        _check_rest(net, name, arr)


def read_spikes(net: LavaNetwork, packed: bool = False) -> dict[str, np.ndarray]:
    """Recorded spikes → ``{population: bool (samples, ticks, size)}``; call after run, before stop.
    With ``sequence > 1`` also checks that each slot started at rest (``check_rest``). One
    population at a time; ``packed``: each as ``np.packbits(..., axis=-1, bitorder="little")``
    (8× smaller; ``unpack_spikes`` undoes it)."""
    out = {}
    for p in net.graph.populations:
        arr = _recorded(net, p)
        _check_rest(net, p.name, arr)
        w = _windows(net, arr, p.size)
        del arr
        out[p.name] = np.packbits(w, axis=-1, bitorder="little") if packed else w
    return out


def unpack_spikes(packed: np.ndarray, size: int) -> np.ndarray:
    """``read_spikes(..., packed=True)``'s array → bool (samples, ticks, size)."""
    return np.unpackbits(packed, axis=-1, count=size, bitorder="little").view(bool)


def read_payloads(net: LavaNetwork) -> dict[str, np.ndarray]:
    """Graded populations' payloads → ``{population: int32 (samples, ticks, size)}`` (the network
    must have been declared with ``payloads=True`` or ``record="monitor"``); after run, before stop."""
    out = {}
    for p in net.graph.populations:
        if not p.is_graded:
            continue
        if net.record == "monitor":
            arr = np.asarray(net.recorders[p.name].get_data()[net.processes[p.name].name]["s_out"])
        elif p.name in net.payload_recorders:
            arr = net.payload_recorders[p.name].payloads()
        else:
            raise ValueError(f"graded population {p.name!r} was not recorded with payloads=True")
        out[p.name] = _windows(net, arr.astype(np.int32), p.size)
    return out
