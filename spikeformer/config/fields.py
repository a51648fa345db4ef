"""Exact field types of the config dataclasses (``ModelConfig``, ``TrainConfig``).

A config is ``{"model": {...}, "train": {...}}`` (``model`` in sections: ``spikeformer.config.model``) (``presets.configs_from_dict`` reads
it, for every command: config files, presets and run directories alike). Each field
holds exactly its annotated type:

* ``int`` — a Python int, never a bool (JSON ``true`` is not 1);
* ``float`` — an int or float, not a bool, finite (JSON ``NaN``/``Infinity`` refused);
* ``str``, ``bool``, ``dict`` — that type;
* ``X | None`` — ``null`` or an ``X``.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache

_NAMES = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false", dict: "an object"}


def _fits(value: object, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


@cache
def field_kinds(cls: type) -> dict[str, tuple[tuple[type, ...], bool]]:
    """Field name → (accepted types, whether None is accepted), from the annotations."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
            else (hint,)
        kinds = tuple(typing.get_origin(a) or a for a in args if a is not type(None))
        out[f.name] = (kinds, type(None) in args)
    return out


def check_fields(obj: object, section: str, names: dict[str, str] | None = None) -> None:
    """Raise ValueError naming ``section.field`` (``names[field]`` where given) for the first field not of its type."""
    for name, (kinds, optional) in field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if value is None and optional:
            continue
        if not any(_fits(value, k) for k in kinds):
            want = " or ".join(_NAMES.get(k, k.__name__) for k in kinds) + (" or null" if optional else "")
            raise ValueError(f"{section}.{(names or {}).get(name, name)} must be {want}, got {value!r}")


def check_keys(d: object, cls: type, section: str) -> None:
    """Raise ValueError unless ``d`` is an object whose keys are fields of ``cls``."""
    if not isinstance(d, dict):
        raise ValueError(f"section '{section}' must be an object, got {d!r}")
    unknown = sorted(set(d) - set(field_kinds(cls)))
    if unknown:
        raise ValueError(f"unknown key '{section}.{unknown[0]}' (known: {', '.join(field_kinds(cls))})")
