"""Run-directory files read and written safely: JSON (atomic), weights-only torch checkpoints; errors name the file."""
from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path


from sim.system.files import atomic_write


class CheckpointError(ValueError):
    """A run directory or checkpoint file is missing or unreadable; names the file."""


def write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def torch_load(path: Path) -> dict:
    """torch.load(weights_only=True): refuses pickled code; errors name the file. (torch is imported here, not
    at module level: commands that never read a checkpoint, such as ``import``, start without it.)"""
    import torch

    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        culprit = next((l.strip() for l in str(e).splitlines() if "Unsupported global" in l), "")
        raise CheckpointError(f"{path}: refused by weights-only loading: it holds pickled objects that are not "
                              f"tensors (possibly code){': ' + culprit if culprit else ''}") from None
    except Exception as e:  # torch raises RuntimeError/EOFError/... for truncated or foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable weights-only checkpoint ({type(e).__name__}: {first})") from None
