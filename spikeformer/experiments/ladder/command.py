"""``spikeformer ladder``: the command line's options parsed, the ladder run, its plot and report written.

Comma-separated options (``--rungs R0,R1``, ``--dims 16,64``, ``--seeds 0,1,2``, ``--lrs 0.003,0.01``,
``--options auxk,active-init``; an empty entry of ``--options`` is the variant without options) are parsed here,
every value checked before anything is trained (one-line ValueError naming the option). Every distinct command
that wrote into ``OUT`` is kept in ``OUT/width-ladder.commands`` and listed in the report.
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from sim.system.files import atomic_write
from spikeformer.experiments.ladder.figure import ladder_plot
from spikeformer.experiments.ladder.harness import CSV_FILE, LAVA_FILE, LAVA_ROWS, MD_FILE, PNG_FILE, run_ladder
from spikeformer.experiments.ladder.report import write_report
from spikeformer.experiments.ladder.summary import equal_ops, first_break, points, slopes
from spikeformer.experiments.ladder.train import Budget
from spikeformer.experiments.sweep.figures import parse_dims

COMMANDS_FILE = "width-ladder.commands"


def parse_floats(text: str, option: str) -> list[float]:
    """"0.003,0.01" → [0.003, 0.01]; ValueError naming ``option`` otherwise."""
    try:
        return [float(p) for p in str(text).split(",")]
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated numbers like 0.003,0.01, got {text!r}") from None


def parse_options(text: str) -> tuple[str, ...]:
    """"none,auxk,auxk+active-init" → ("", "auxk", "auxk+active-init")."""
    return tuple("" if p.strip() in ("", "none") else p.strip() for p in str(text).split(","))


def ladder_command(rungs: str, dims: str, seeds: str, out: Path, k: int, fan_in: int, timesteps: int, lrs: str,
                   train_signals: int, val_signals: int, patience: int, max_epochs: int, options: str,
                   progress: bool, argv: Sequence[str] | None = None, lava_samples: int = 0) -> dict:
    """Run ``run_ladder`` with the parsed options, then write ``OUT/width-ladder.png`` and ``.md``; the figures."""
    rung_list = [r.strip() for r in rungs.split(",")]
    budget = Budget(patience=patience, max_epochs=max_epochs)
    rows = run_ladder(rung_list, parse_dims(dims), parse_dims(seeds, "--seeds"), out, k=k, fan_in=fan_in,
                      timesteps=timesteps, lrs=parse_floats(lrs, "--lrs"), train_signals=train_signals,
                      val_signals=val_signals, budget=budget, options=parse_options(options), progress=progress,
                      lava_samples=lava_samples)
    command = "spikeformer " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    log = Path(out) / COMMANDS_FILE
    commands = log.read_text().splitlines() if log.exists() else []
    if command not in commands:
        commands.append(command)
        atomic_write(log, lambda p: p.write_text("\n".join(commands) + "\n"))
    png = ladder_plot(rows, Path(out) / PNG_FILE)
    lava_path = Path(out) / LAVA_FILE
    lava_rows = sorted(LAVA_ROWS.read(lava_path), key=LAVA_ROWS.key_of) if lava_path.exists() else []
    md = write_report(rows, Path(out) / MD_FILE, commands, lava_rows=lava_rows)
    sl = slopes(rows)
    return {"rows": rows, "points": points(rows), "slopes": sl, "first_break": first_break(sl),
            "equal_ops": equal_ops(rows), "lava": lava_rows,
            "csv": str(Path(out) / CSV_FILE), "png": str(png), "md": str(md)}
