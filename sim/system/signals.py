"""SIGTERM and SIGHUP handled like SIGINT: an exception, so ``finally`` blocks clean up.

Python turns SIGINT into ``KeyboardInterrupt``; SIGTERM and SIGHUP kill the process
at once by default, so child processes and temporary files are left behind.

* ``interrupts_as_exceptions()`` — while inside, SIGTERM and SIGHUP raise
  :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, like SIGINT.
  Only signals whose handler is the default are taken over: an ignored SIGHUP
  (``nohup``) stays ignored, a handler the application installed stays in place.
* ``deferred_interrupts()`` — while inside, SIGINT, SIGTERM and SIGHUP are held;
  on leaving, the first one held is raised again (``signal.raise_signal``) and
  handled by whatever handler is then in place. For writes that must finish as a
  group (a checkpoint's weights, optimizer state and metrics).

Both do nothing outside the main thread (Python delivers signals only there).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

TERMINATING = (signal.SIGTERM, signal.SIGHUP)


INTERRUPTING = (signal.SIGINT,) + TERMINATING


class Interrupted(KeyboardInterrupt):
    """A terminating signal (SIGTERM, SIGHUP) received; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def signal_number(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: Interrupted's, else SIGINT."""
    return getattr(exc, "signum", signal.SIGINT)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Interrupted` while inside (see module doc)."""
    if not _main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in TERMINATING}
    for s, h in previous.items():
        if h in (signal.SIG_DFL, None):
            signal.signal(s, _raise_interrupted)
    try:
        yield
    finally:
        for s, h in previous.items():
            if h in (signal.SIG_DFL, None):
                signal.signal(s, signal.SIG_DFL)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while inside; re-raise the first one on leaving."""
    if not _main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in INTERRUPTING}
    for s, h in previous.items():
        if h is not signal.SIG_IGN:
            signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, h in previous.items():
            if h is not signal.SIG_IGN:
                signal.signal(s, h if h is not None else signal.SIG_DFL)
        if held:
            signal.raise_signal(held[0])
