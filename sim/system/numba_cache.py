"""numba's on-disk cache is an optimisation, never a reason to fail: a writable cache folder before any
``@numba.njit(cache=True)`` is decorated.

Every module with cached functions imports this one first. numba looks for a cache folder when a
cached function is decorated (``numba.core.caching``: ``NUMBA_CACHE_DIR``, else the source's
``__pycache__``, else the user's cache folder) and raises ``cannot cache function … no locator
available`` at import when none is writable (a read-only install, a service account without a
home). Here, when ``NUMBA_CACHE_DIR`` is unset or not writable and the package's own
``__pycache__`` folders are not writable either, ``NUMBA_CACHE_DIR`` (and numba's config) is set
to ``<tmp>/sim-numba-cache-<uid>`` (created 0700, ours), or a fresh temporary folder.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]        # sim/


def writable(folder: str | os.PathLike) -> bool:
    """numba's own test: the folder can be created and a file written in it."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def _in_tree_writable() -> bool:
    """Every ``__pycache__`` beside sim's modules is writable (the packages installed beside it alike)."""
    folders = [d for d in [PACKAGE, *PACKAGE.rglob("*")] if d.is_dir() and d.name != "__pycache__"
               and any(d.glob("*.py"))]
    return all(writable(d / "__pycache__") for d in folders)


def _private_temp() -> str:
    path = Path(tempfile.gettempdir()) / f"sim-numba-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        if path.stat().st_uid == (os.getuid() if hasattr(os, "getuid") else path.stat().st_uid) and writable(path):
            return str(path)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="sim-numba-cache-")


def ensure_cache_dir() -> str | None:
    """The folder numba caches in when this module had to choose one (None: numba's own choice works)."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and writable(given):
        return None
    if not given and _in_tree_writable():
        return None
    folder = _private_temp()
    os.environ["NUMBA_CACHE_DIR"] = folder          # child processes (Lava, Dask workers) too
    from numba.core import config
    config.CACHE_DIR = folder
    return folder


CACHE_DIR = ensure_cache_dir()
