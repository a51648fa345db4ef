"""Figures of NIR import: snnTorch nets (tests/commands/test_nir_import.py) → NIR → `spikeformer import nir
--numerics loihi` → `spikeformer export lava`; prints each command's JSON (agreement with float,
Lava = simulator). Run: PYTHONPATH=. python benchmarks/scripts/nir_import_figures.py [OUT_DIR]."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "commands"))
from test_nir_import import Recurrent, export, feed_forward_net, inputs  # noqa: E402

BIN = Path(sys.executable).parent / "spikeformer"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "in.npz", input=inputs(12, seed=11, samples=20))
    for name, net in (("feed_forward", feed_forward_net()), ("recurrent", Recurrent())):
        nir.write(out / f"{name}.nir", export(net))
        for args in (["import", "nir", str(out / f"{name}.nir"), "--out", str(out / name), "--inputs",
                      str(out / "in.npz"), "--numerics", "loihi"], ["export", "lava", str(out / name)]):
            p = subprocess.run([str(BIN), *args, "--json"], capture_output=True, text=True, check=True)
            print(name, args[0], p.stdout.strip())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="nir-import-")))
