"""The file names of a run directory, defined once (training state, later steps' outputs, imports)."""
from __future__ import annotations

# training state (spikeformer.train)
CONFIG_FILE = "config.json"                 # {"model": {...}, "train": {...}}
SPLIT_FILE = "split.json"                   # the test split's size and fingerprint
MODEL_FILE = "model.pt"                     # the weights (state dict)
TRAIN_STATE_FILE = "train_state.pt"         # optimizer, epoch: what a resumed run continues from
METRICS_FILE = "metrics.json"               # per-epoch history, final accuracies
DATA_FILE = "data.npz"                      # the run's own data (spikeformer.app.api)

# what the later steps write (spikeformer.runs.steps, the CLI's export and report)
GRAPH_FILE = "graph.aer.npz"                # the AER graph simulated
SIMULATION_FILE = "simulation.json"         # simulate's figures
RESULT_FILE = "simulation.npz"              # simulate's recorded SimResult
REPORT_FILE = "report.json"                 # report's figures
REPORT_PNG = "report.png"                   # report's figure
LAVA_FILE = "lava.json"                     # export lava's figures
NIR_FILE = "model.nir"                      # export nir
NETX_FILE = "model.net.h5"                  # export netx

# an imported run (spikeformer import)
IMPORT_FILE = "import.json"                 # format, source, numerics, timesteps, dt, inputs
FLOAT_GRAPH_FILE = "graph.float.aer.npz"    # loihi imports: the float graph quantised from
INPUTS_FILE = "inputs.npz"                  # input spikes per Input population, optional labels


STATE_FILES = (CONFIG_FILE, SPLIT_FILE, MODEL_FILE, TRAIN_STATE_FILE, METRICS_FILE)


OUTPUT_FILES = (GRAPH_FILE, SIMULATION_FILE, RESULT_FILE, REPORT_FILE, REPORT_PNG, LAVA_FILE, NIR_FILE, NETX_FILE)
