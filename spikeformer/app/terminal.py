"""What a command shows on the terminal: its figures (``emit``: a table, or one JSON object with ``--json``)
and, for bad input, one line ``error: <file or option>: <problem>`` on stderr with exit code 2
(``friendly``); a signal (``sim.system.signals``) gives ``error: interrupted by SIG…`` and exit code
128 + the signal number.
"""
from __future__ import annotations

import json
import signal
import sys
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sim.system.signals import signal_number

err = Console(stderr=True)


JsonOpt = typer.Option(False, "--json", help="Print the figures as one JSON object on stdout.")


def _user_errors() -> tuple[type[BaseException], ...]:
    from loihi_export.protocol import LavaRunError
    from sim.cost.hardware import MappingError
    from sim.engine.trace import TraceError
    from sim.errors import IRError
    from spikeformer.interchange.base import ImportError_
    from spikeformer.store.files import CheckpointError
    return (ImportError_, CheckpointError, IRError, LavaRunError, MappingError, TraceError, ValueError, FileNotFoundError,
            MemoryError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError, NumericWarning)


class NumericWarning(RuntimeWarning):
    """A numpy/torch RuntimeWarning raised by ``friendly``: a value went NaN, infinite or out of range."""


def _numeric_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` inside a command: a RuntimeWarning (numpy's "invalid value encountered", …)
    becomes the command's one error line instead of text before it; other warnings are not output."""
    if issubclass(category, RuntimeWarning):
        raise NumericWarning(f"{Path(filename).name}:{lineno}: {message} (an input or parameter is out of range)")


def friendly(fn: Callable) -> Callable:
    """Turn user-facing errors into one line on stderr and exit code 2, a signal into one line and 128 + its number;
    warnings are not output (a RuntimeWarning is the error line: ``_numeric_warning``)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = _numeric_warning
                return fn(*args, **kwargs)
        except _user_errors() as e:
            msg = " ".join(str(e).split())
            print(f"error: {msg}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:          # SIGINT, SIGTERM, SIGHUP (sim.system.signals): the cleanup has run
            signum = signal_number(e)
            print(f"error: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
            raise typer.Exit(128 + signum) from None
    return wrapper


def emit(figures: dict, as_json: bool, title: str) -> None:
    """``figures`` as one JSON object on stdout (``as_json``), else a two-column table titled ``title``."""
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=title, show_header=False)
    fmt = (lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    for k, v in figures.items():
        if isinstance(v, list):
            v = " ".join(f"{x:.3g}" for x in v)
        if isinstance(v, dict):                     # one row per entry (per-population figures)
            for sub, w in v.items():
                table.add_row(f"{k}.{sub}", " ".join(f"{a}={fmt(b)}" for a, b in w.items()) if isinstance(w, dict)
                              else fmt(w))
            continue
        table.add_row(k, fmt(v))
    Console().print(table)
