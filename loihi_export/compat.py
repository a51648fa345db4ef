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
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import CodeType

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


def import_lava() -> None:
    """Apply the shim and import the parts of Lava the exporter uses."""
    apply()
    import lava.magma.core.run_configs  # noqa: F401
    import lava.proc.lif.process  # noqa: F401
