"""Python 3.11 compatibility shim for lava-nc 0.10.0, applied before Lava is imported.

lava-nc 0.10.0 declares ``python<3.11``. On 3.11 ``lava/magma/compiler/var_model.py``
fails at import: it uses ``ByteEncoder()`` instances as dataclass field defaults,
and 3.11's ``dataclasses`` rejects unhashable defaults ("mutable default ... use
default_factory"). Declaring ``@dataclass(unsafe_hash=True)`` on ``ByteEncoder``
makes the instances hashable, which is all 3.11 asks; nothing in Lava mutates
these defaults.

``apply()`` installs a meta-path finder that rewrites that one decorator in the
module's source as it is loaded (never touching files on disk). It is
idempotent, does nothing on Python < 3.11, and does nothing if the source no
longer contains the pattern (a fixed Lava). Lava's runtime forks its worker
processes, which inherit the patched module.

``import_netx()`` imports lava-dl's ``netx`` (lava-dl 0.6.0, installed like lava-nc). Importing
it imports all of ``lava.lib.dl.slayer``, whose object-detection helpers import ``torchvision``
at module level (and use it only inside functions netx never calls). PyPI's torchvision does not
import beside the CPU build of torch we pin ("operator torchvision::nms does not exist"). When
``import torchvision`` fails, a stand-in module is registered for the duration of that one
import and removed afterwards: ``slayer`` keeps a reference whose attributes raise ImportError
when used, and any later ``import torchvision`` fails as it would have.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import io
import sys
from types import CodeType, ModuleType

TARGET = "lava.magma.compiler.var_model"
_PATTERN = b"@dataclass\nclass ByteEncoder:"
_REPLACEMENT = b"@dataclass(unsafe_hash=True)\nclass ByteEncoder:"


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Source loader that compiles the patched source (bypasses stale bytecode)."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path).replace(_PATTERN, _REPLACEMENT)
        return self.source_to_code(source, self.path)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: D102 (importlib protocol)
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def needed() -> bool:
    """True on interpreters whose dataclasses reject Lava 0.10's defaults."""
    return sys.version_info >= (3, 11)


def apply() -> None:
    """Install the shim (idempotent). Raise if Lava's module was imported unpatched."""
    if not needed() or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    if TARGET in sys.modules:   # imported before us: only fine if it worked
        return
    sys.meta_path.insert(0, _Finder())


LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"


def import_lava_multiprocessing() -> None:
    """Import Lava's message infrastructure, which calls ``multiprocessing.set_start_method('fork')``.

    That call raises once the start method is set (numba's parallel launch sets it to 'fork', the
    Linux default); when the method already is 'fork' the call is a no-op, so it is made with
    ``force=True`` then. Any other method still raises, as Lava needs fork."""
    if LAVA_MP in sys.modules:
        return
    import multiprocessing as mp
    original = mp.set_start_method

    def set_start_method(method: str, force: bool = False) -> None:
        original(method, force=force or mp.get_start_method(allow_none=True) == method)

    mp.set_start_method = set_start_method
    try:
        importlib.import_module(LAVA_MP)
    finally:
        mp.set_start_method = original


def import_lava() -> None:
    """Apply the shim and import the parts of Lava the exporter uses."""
    apply()
    import_lava_multiprocessing()
    import lava.magma.core.run_configs  # noqa: F401
    import lava.proc.lif.process  # noqa: F401


class _Missing(ModuleType):
    """A stand-in module whose every attribute raises ImportError naming what is missing."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__}.{attr}: torchvision is not importable here (lava-dl was imported "
                          f"with a stand-in; its object-detection helpers need a working torchvision)")


def _torchvision_importable() -> bool:
    try:
        import torchvision  # noqa: F401
        return True
    except Exception:  # noqa: BLE001 (PyPI's wheel raises RuntimeError beside a CPU torch)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def import_netx() -> ModuleType:
    """Apply the shim and return ``lava.lib.dl.netx`` (see module doc; slayer's banner is silenced)."""
    apply()
    if "lava.lib.dl.netx" in sys.modules:
        return sys.modules["lava.lib.dl.netx"]
    import_lava_multiprocessing()
    stand_ins = {}
    if not _torchvision_importable():
        root = _Missing("torchvision")
        stand_ins = {"torchvision": root, "torchvision.ops": _Missing("torchvision.ops"),
                     "torchvision.transforms": _Missing("torchvision.transforms")}
        root.__path__ = []                      # a package, so "from torchvision import ops" resolves
        root.ops, root.transforms = stand_ins["torchvision.ops"], stand_ins["torchvision.transforms"]
        sys.modules.update(stand_ins)
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # "WARNING: Prophesee Dataset Toolbox ..."
            from lava.lib.dl import netx
    finally:
        for name, mod in stand_ins.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]
    return netx
