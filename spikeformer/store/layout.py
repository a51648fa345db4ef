"""The file names of a run directory, defined once (training state, later steps' outputs, imports)."""
from __future__ import annotations

SPLIT_FILE = "split.json"


STATE_FILES = ("config.json", "split.json", "model.pt", "train_state.pt", "metrics.json")


# what the later steps write into a run directory (spikeformer.pipeline, the CLI's export and report)
OUTPUT_FILES = ("graph.aer.npz", "simulation.json", "simulation.npz", "report.json", "report.png", "lava.json",
                "model.nir", "model.net.h5")
