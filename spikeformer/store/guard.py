"""One output-directory rule for every command that writes a run (train, import, ``spikeformer.app.api``):
a new or empty directory, or one holding this same command's own resumable state
(``check_out_dir``: train; ``check_empty_out_dir``: import, which has none); anything else is refused
before any byte is written, naming what is there."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from spikeformer.store.files import CheckpointError, read_json, torch_load
from spikeformer.store.layout import CONFIG_FILE, OUTPUT_FILES, SPLIT_FILE, STATE_FILES, TRAIN_STATE_FILE


def check_out_dir(out: Path, config: dict, canonical: Callable[[object], object] = lambda d: d) -> None:
    """Refuse ``out`` unless it is new, empty, or this run's own resumable state; nothing is written here.

    Own state: a config.json equal to ``config`` (both through ``canonical``: an earlier file
    format compares equal to its current form) and split.json (a run that stopped before its
    first checkpoint), plus model.pt, train_state.pt and metrics.json when train_state.pt
    exists; the later steps' OUTPUT_FILES only beside a finished checkpoint (resuming
    an unfinished one would change the weights under them). Leftover temporary files
    of an interrupted write of a state file are removed."""
    names = _entries(out)
    if names is None:
        return
    temps = [n for n in names if n.endswith(".tmp") and n.startswith(STATE_FILES)]
    names = [n for n in names if n not in temps]
    if not names:
        return
    same = lambda: canonical(read_json(out / CONFIG_FILE)) == canonical(json.loads(json.dumps(config)))  # noqa: E731
    data_path = ((config.get("model") or {}).get("data") or {}).get("data_path")      # ModelConfig.to_dict()
    if data_path and Path(data_path).resolve().parent == out.resolve():   # the run's own data (spikeformer.app.api)
        names = [n for n in names if n != Path(data_path).name]
        if not names:
            return
    if TRAIN_STATE_FILE in names and CONFIG_FILE in names:
        if not same():
            raise CheckpointError(f"{out / CONFIG_FILE}: differs from the requested config; "
                                  f"use a new --out directory")
        finished = int(torch_load(out / TRAIN_STATE_FILE).get("epoch", -1)) == config["train"]["epochs"]
        foreign = [n for n in names if n not in STATE_FILES and not (finished and n in OUTPUT_FILES)]
    else:                                   # no checkpoint: at most this config's config.json (and split.json)
        foreign = [n for n in names if n not in (CONFIG_FILE, SPLIT_FILE)]
        if not foreign and (CONFIG_FILE not in names or not same()):
            foreign = names
    if foreign:
        raise CheckpointError(f"--out {out}: holds files that are not this run's resumable state "
                              f"({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''}); "
                              f"refusing to overwrite them: give a new or empty directory")
    for n in temps:
        (out / n).unlink(missing_ok=True)


def _entries(out: Path) -> list[str] | None:
    """The names in ``out`` (sorted), None when it does not exist yet and can be created; CheckpointError when
    ``out`` is a file, lies under a file, or cannot be read."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out}: is an existing file, not a run directory; give a new or empty directory")
    if not out.is_dir():
        parent = next((p for p in out.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise CheckpointError(f"--out {out}: {parent} is a file, not a directory; give a new or empty directory")
        return None
    try:
        return sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise CheckpointError(f"--out {out}: cannot be read ({e.strerror})") from None


def check_empty_out_dir(out: Path) -> None:
    """Refuse ``out`` unless it is new or empty (a command without resumable state: ``import``); nothing is
    written here."""
    names = _entries(Path(out))
    if names:
        raise CheckpointError(f"--out {out}: holds {len(names)} file(s) ({', '.join(names[:5])}"
                              f"{', …' if len(names) > 5 else ''}); refusing to overwrite them: give a new or "
                              f"empty directory")


@contextmanager
def fresh_out_dir(out: Path) -> Iterator[Path]:
    """Around the writes into ``out`` (new or empty: ``check_empty_out_dir``): on any failure or interrupt,
    remove what was written there (and ``out`` itself when it was created here), so a refused or failed
    command leaves nothing behind."""
    out = Path(out)
    before = set(_entries(out) or [])
    created = not out.exists()
    try:
        yield out
    except BaseException:
        if out.is_dir():
            for p in out.iterdir():
                if p.name not in before:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            if created and not any(out.iterdir()):
                out.rmdir()
        raise
