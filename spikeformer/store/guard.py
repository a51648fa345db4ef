"""``check_out_dir``: a run directory is written only when it is new, empty or this run's own state."""
from __future__ import annotations

import json
from collections.abc import Callable
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
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out}: is an existing file, not a run directory; give a new or empty directory")
    if not out.is_dir():
        return
    names = sorted(p.name for p in out.iterdir())
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
