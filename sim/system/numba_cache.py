"""numba's on-disk cache is an optimisation, never a reason to fail: a writable cache folder before any
``@numba.njit(cache=True)`` is decorated.

Every module with cached functions imports this one first. numba looks for a cache folder when a
cached function is decorated (``numba.core.caching``: ``NUMBA_CACHE_DIR``, else the source's
``__pycache__``, else the user's cache folder) and raises ``cannot cache function … no locator
available`` at import when none is writable (a read-only install, a service account without a
home). Here, when ``NUMBA_CACHE_DIR`` is unset or not writable and the package's own
``__pycache__`` folders are not writable either, ``NUMBA_CACHE_DIR`` (and numba's config) is set
to ``<tmp>/sim-numba-cache-<uid>`` (created 0700, ours), or a fresh temporary folder.

numba re-validates a cached function against its own file's stamp only, not against the files whose
``inline="always"`` functions it compiled in (a neuron step inside the engine's kernels): edit
``sim/neurons/cuba.py`` and ``sim/engine/kernels.py``'s cache would keep the old step. ``drop_stale``:
when the SHA-1 of every sim source differs from the one recorded beside the caches
(``sim-sources.sha1``), every cache file of sim's folders is removed (numba recompiles on demand).
A cached module outside sim that compiles sim's functions in (``spikeformer.layers.lif_cpu``) calls
``drop_stale_module(__file__, sources, …)`` before its first ``njit``: its own cache files
(``<stem>.*.nbi``, ``.nbc``) go when the SHA-1 of ``sources`` differs from ``<stem>-sources.sha1``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
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


def sim_sources() -> list[Path]:
    """Every ``.py`` file of the sim package."""
    return [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]


def digest(files: Iterable[str | os.PathLike], root: Path) -> str:
    """SHA-1 over (path relative to ``root``, bytes) of ``files``, in path order."""
    h = hashlib.sha1()
    for path in sorted(Path(f).resolve() for f in files):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def sources_digest() -> str:
    """``digest`` of every ``.py`` file of the sim package, relative to sim/."""
    return digest(sim_sources(), PACKAGE)


def cache_folder(module_file: str | os.PathLike, cache_dir: str | None) -> Path:
    """Where numba keeps the caches of ``module_file``: its ``__pycache__`` in the tree, or under ``cache_dir``
    (``numba.config.CACHE_DIR``) the folder numba's ``UserProvidedCacheLocator`` picks."""
    from numba.core.caching import UserProvidedCacheLocator

    path = Path(module_file).resolve()
    if not cache_dir:
        return path.parent / "__pycache__"
    return Path(cache_dir) / UserProvidedCacheLocator.get_suitable_cache_subpath(str(path))


def cache_folders(cache_dir: str | None) -> list[Path]:
    """``cache_folder`` of every folder of sim's modules."""
    folders = sorted({p.parent for p in sim_sources()})
    return [cache_folder(d / "m.py", cache_dir) for d in folders]


def _replace_if_stale(stamp: Path, digest_now: str, folders: Iterable[Path], pattern: str) -> int:
    """Unless ``stamp`` holds ``digest_now``: remove the files ``pattern`` matches in ``folders``, then write
    ``digest_now`` to ``stamp``. Returns the number of files removed; never raises for file-system reasons."""
    try:
        if stamp.read_text() == digest_now:
            return 0
    except OSError:
        pass
    removed = 0
    for folder in folders:
        for f in folder.glob(pattern):
            try:
                f.unlink()
                removed += 1
            except OSError:
                pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(digest_now)
        os.replace(tmp, stamp)
    except OSError:
        pass
    return removed


def drop_stale(cache_dir: str | None) -> int:
    """Remove sim's numba cache files (``*.nbi``, ``*.nbc``) unless ``sources_digest()`` equals the recorded
    one; then record it. Returns the number of files removed. Never raises for file-system reasons."""
    stamp = (Path(cache_dir) if cache_dir else PACKAGE / "__pycache__") / "sim-sources.sha1"
    return _replace_if_stale(stamp, sources_digest(), cache_folders(cache_dir), "*.nb[ic]")


def drop_stale_module(module_file: str | os.PathLike, sources: Iterable[str | os.PathLike],
                      cache_dir: str | None) -> int:
    """Remove the numba cache files of ``module_file`` (``<stem>.*.nbi``, ``.nbc`` in ``cache_folder``) unless
    the ``digest`` of ``sources`` (relative to their common folder) equals the one recorded beside them
    (``<stem>-sources.sha1``); then record it. Returns the number of files removed; call it before the module's
    first ``@numba.njit(cache=True)``. Never raises for file-system reasons."""
    files = [Path(f).resolve() for f in sources]
    root = Path(os.path.commonpath([f.parent for f in files]))
    folder = cache_folder(module_file, cache_dir)
    stem = Path(module_file).stem
    return _replace_if_stale(folder / f"{stem}-sources.sha1", digest(files, root), [folder], f"{stem}.*.nb[ic]")


CACHE_DIR = ensure_cache_dir()
from numba.core import config as _numba_config  # noqa: E402  (after ensure_cache_dir has set it)

STALE_REMOVED = drop_stale(_numba_config.CACHE_DIR or None)
