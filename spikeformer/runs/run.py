"""One run directory, trained or imported: its graph, its inputs and the reference its spikes are compared with.

``open_run(DIR)``: an ``ImportedRun`` when DIR/import.json exists, else a ``TrainedRun``.

    TrainedRun   config.json + model.pt + the run's own test split (``run_split``), encoded;
                 reference: the torch model's spikes, compared spike for spike (``compare_to_model``)
    ImportedRun  import.json + inputs.npz (+ graph.float.aer.npz for loihi imports);
                 reference: the float graph's spikes (``spikeformer.runs.fidelity``)

The steps (``spikeformer.runs.steps``) read every run through this interface only.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from sim.errors import IRError
from sim.ir.graph import AerGraph
from sim.ir.io import load_graph
from spikeformer.data.registry import encode
from spikeformer.lower.convert import compare_to_model
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.runs.fidelity import FloatComparison
from spikeformer.runs.imported import match_inputs, read_inputs
from spikeformer.runs.rundir import load_model, run_split
from spikeformer.store.layout import FLOAT_GRAPH_FILE, GRAPH_FILE, IMPORT_FILE, INPUTS_FILE

Inputs = dict[str, np.ndarray]          # graph inputs: (samples, ticks ≤ T, size) per Input population


@torch.no_grad()
def model_spikes(model, x: torch.Tensor, batch_size: int = 128) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Torch model logits and recorded spikes for a batch, chunked."""
    logits, rec = [], {}
    for i in range(0, len(x), batch_size):
        lg, r = model(x[i:i + batch_size], record=True)
        logits.append(lg.numpy())
        for k, v in r.items():
            rec.setdefault(k, []).append(v.numpy())
    return np.concatenate(logits), {k: np.concatenate(v) for k, v in rec.items()}


def graph_inputs(graph: AerGraph, x: torch.Tensor) -> Inputs:
    """Encoded model inputs (B, T, N, F) → the graph's input: (B, T, N·F)."""
    return {"input": x.numpy().reshape(len(x), graph.timesteps, -1)}


def first_samples(available: int, samples: int | None) -> int:
    """``samples`` (None: all ``available``), checked to lie in [1, available]."""
    n = available if samples is None else samples
    if not 1 <= n <= available:
        raise ValueError(f"--samples must be in [1, {available}], got {n}")
    return n


def predictions(graph: AerGraph, spikes: dict[str, np.ndarray]) -> np.ndarray | None:
    """argmax of the readout's logits per sample (per token with a per-token readout); None without readout."""
    if graph.readout is None:
        return None
    return graph.readout.logits(spikes[graph.readout.pre]).argmax(axis=-1)


class Reference(ABC):
    """A run's reference for its samples: spikes of chunks compared with it, accumulated chunk by chunk."""

    @abstractmethod
    def add(self, start: int, spikes: dict[str, np.ndarray]) -> None:
        """Compare ``spikes`` of samples start … start + len(chunk) − 1 with the reference."""

    @abstractmethod
    def figures(self) -> dict:
        """Everything compared so far (``simulate``'s figures)."""

    @abstractmethod
    def agreement(self) -> dict:
        """The agreement figures alone (``export lava``'s figures)."""


class ModelReference(Reference):
    """The torch model's spikes and predictions on the same encoded samples (``compare_to_model``)."""

    def __init__(self, graph: AerGraph, model: SpikingTransformer, x: torch.Tensor, labels: np.ndarray):
        self.graph, self.model, self.x, self.labels = graph, model, x, labels
        self.equal: list[np.ndarray] = []
        self.preds: list[np.ndarray] = []
        self.model_preds: list[np.ndarray] = []
        self.bits: list[tuple[float, float, int]] = []     # per-token readout: (graph, model) bits × labels
        self.mismatched = 0

    def add(self, start: int, spikes: dict[str, np.ndarray]) -> None:
        from spikeformer.train.trainer import bits_per_label

        n = len(next(iter(spikes.values())))
        logits, rec = model_spikes(self.model, self.x[start:start + n])
        equal, mismatched = compare_to_model(self.graph, rec, spikes)
        self.equal.append(equal)
        self.mismatched += mismatched
        self.preds.append(predictions(self.graph, spikes))
        self.model_preds.append(logits.argmax(axis=-1))
        ro = self.graph.readout
        if ro is not None and ro.per_token:
            y, tau = self.labels[start:start + n], self.model.log_temperature.item()
            self.bits.append((bits_per_label(ro.logits(spikes[ro.pre]), y, tau) * y.size,
                              bits_per_label(logits, y, tau) * y.size, y.size))

    def figures(self) -> dict:
        pred, model_pred = np.concatenate(self.preds), np.concatenate(self.model_preds)
        bits = np.sum(self.bits, axis=0) if self.bits else None
        return {"model_accuracy": float((model_pred == self.labels).mean()), **self.agreement(),
                **({} if bits is None else {"bits_per_byte": float(bits[0] / bits[2]),
                                            "model_bits_per_byte": float(bits[1] / bits[2])}),
                "mismatched_spikes": self.mismatched, "predictions_equal_model": bool((pred == model_pred).all())}

    def agreement(self) -> dict:
        return {"agreement_with_model": float(np.concatenate(self.equal).mean())}


class FloatReference(Reference):
    """The float graph a loihi import was quantised from, on the same inputs (none for float imports):
    per-population spike Jaccard and rates, the output population's, and — with labels — accuracy
    float vs loihi and prediction agreement (``spikeformer.runs.fidelity``)."""

    def __init__(self, graph: AerGraph, float_graph: AerGraph | None, inputs: Inputs,
                 labels: np.ndarray | None = None):
        self.graph, self.float_graph, self.inputs, self.labels = graph, float_graph, inputs, labels
        self.comparison = None if float_graph is None else FloatComparison(float_graph, graph)

    def add(self, start: int, spikes: dict[str, np.ndarray]) -> None:
        from sim.engine.simulate import simulate
        if self.comparison is None:
            return
        n = len(next(iter(spikes.values())))
        ref = simulate(self.float_graph, {k: v[start:start + n] for k, v in self.inputs.items()}).spikes
        self.comparison.add(ref, spikes)

    def figures(self) -> dict:
        return {"numerics": self.graph.numerics, **self.agreement()}

    def agreement(self) -> dict:
        return {} if self.comparison is None else self.comparison.figures(self.labels)


class Run(ABC):
    """A run directory: its AER graph (loaded once), its samples and their reference."""

    LAVA_HINT = ""                      # appended to the error for a graph Lava cannot run

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @cached_property
    def graph(self) -> AerGraph:
        path = self.path / GRAPH_FILE
        if not path.exists():
            raise IRError(str(path), "file", f"does not exist; run `spikeformer convert {self.path}` first")
        return load_graph(path)

    @abstractmethod
    def inputs(self, samples: int | None) -> tuple[Inputs, np.ndarray | None]:
        """(graph inputs of the first ``samples`` (None: all), their labels or None)."""

    @abstractmethod
    def reference(self, samples: int | None) -> Reference:
        """The reference for the same samples as ``inputs(samples)``."""

    @abstractmethod
    def available(self) -> int:
        """How many samples ``inputs(None)`` gives (without encoding them)."""


class TrainedRun(Run):
    """``spikeformer train``'s run directory: the model and the run's own test split."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._encoded: dict[int | None, tuple[torch.Tensor, np.ndarray]] = {}

    @cached_property
    def model(self) -> SpikingTransformer:
        return load_model(self.path)

    def encoded(self, samples: int | None) -> tuple[torch.Tensor, np.ndarray]:
        """(encoded inputs (B, T, N, F), labels) of the first ``samples`` of the run's test split."""
        if samples not in self._encoded:
            model = self.model
            data = run_split(self.path, model.cfg)
            n = first_samples(len(data.y_test), samples)
            self._encoded[samples] = encode(model.cfg, data.x_test[:n]), data.y_test[:n]
        return self._encoded[samples]

    def inputs(self, samples: int | None) -> tuple[Inputs, np.ndarray]:
        x, y = self.encoded(samples)
        return graph_inputs(self.graph, x), y

    def available(self) -> int:
        return len(run_split(self.path, self.model.cfg).y_test)

    def reference(self, samples: int | None) -> ModelReference:
        x, y = self.encoded(samples)
        return ModelReference(self.graph, self.model, x, y)


class ImportedRun(Run):
    """``spikeformer import``'s run directory: inputs.npz and, for loihi imports, the float graph."""

    LAVA_HINT = " — import with --numerics loihi"

    @cached_property
    def float_graph(self) -> AerGraph | None:
        path = self.path / FLOAT_GRAPH_FILE
        return load_graph(path) if path.is_file() else None

    @cached_property
    def _all_inputs(self) -> tuple[Inputs, np.ndarray | None]:
        path = self.path / INPUTS_FILE
        arrays, labels = read_inputs(path)
        return match_inputs(self.graph, arrays, str(path)), labels

    def inputs(self, samples: int | None) -> tuple[Inputs, np.ndarray | None]:
        x, labels = self._all_inputs
        n = first_samples(len(next(iter(x.values()))), samples)
        return {k: v[:n] for k, v in x.items()}, (None if labels is None else labels[:n])

    def available(self) -> int:
        return len(next(iter(self._all_inputs[0].values())))

    def reference(self, samples: int | None) -> FloatReference:
        return FloatReference(self.graph, self.float_graph, *self.inputs(samples))


def is_imported(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / IMPORT_FILE).is_file()


def open_run(run_dir: str | os.PathLike) -> Run:
    """The run in ``run_dir``: imported when it holds import.json, trained otherwise."""
    return ImportedRun(run_dir) if is_imported(run_dir) else TrainedRun(run_dir)
