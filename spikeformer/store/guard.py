"""``check_out_dir``: a run directory is written only when it is new, empty or this run's own state."""
from __future__ import annotations

import json
from pathlib import Path

from spikeformer.store.files import CheckpointError, read_json, torch_load
from spikeformer.store.layout import OUTPUT_FILES, STATE_FILES


def check_out_dir(out: Path, config: dict) -> None:
    """Refuse ``out`` unless it is new, empty, or this run's own resumable state; nothing is written here.

    Own state: a config.json equal to ``config`` and split.json (a run that stopped before its
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
    same = lambda: read_json(out / "config.json") == json.loads(json.dumps(config))  # noqa: E731
    data_path = (config.get("model") or {}).get("data_path")
    if data_path and Path(data_path).resolve().parent == out.resolve():   # the run's own data (spikeformer.api)
        names = [n for n in names if n != Path(data_path).name]
        if not names:
            return
    if "train_state.pt" in names and "config.json" in names:
        if not same():
            raise CheckpointError(f"{out / 'config.json'}: differs from the requested config; "
                                  f"use a new --out directory")
        finished = int(torch_load(out / "train_state.pt").get("epoch", -1)) == config["train"]["epochs"]
        foreign = [n for n in names if n not in STATE_FILES and not (finished and n in OUTPUT_FILES)]
    else:                                   # no checkpoint: at most this config's config.json (and split.json)
        foreign = [n for n in names if n not in ("config.json", "split.json")]
        if not foreign and ("config.json" not in names or not same()):
            foreign = names
    if foreign:
        raise CheckpointError(f"--out {out}: holds files that are not this run's resumable state "
                              f"({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''}); "
                              f"refusing to overwrite them: give a new or empty directory")
    for n in temps:
        (out / n).unlink(missing_ok=True)
