"""How closely a loihi import keeps the float graph it was quantised from, chunk by chunk.

Figures (A = the float graph's spikes, B = the loihi graph's, same inputs, (sample, tick, neuron) entries):

* ``output_population``, ``output_spike_jaccard`` = |A ∩ B| / |A ∪ B| of the output population
  (the readout's, else the deepest: ``sim.ir.quantize.output_population``; 1 when both are silent),
  ``output_rate_float`` / ``output_rate_loihi`` (spikes per neuron per tick) — the headline;
* with labels and a readout: ``accuracy_float``, ``accuracy_loihi`` and ``prediction_agreement``
  (fraction of samples whose argmax prediction is the same);
* ``per_population``: per non-source population its ``spike_jaccard``, ``rate_float``, ``rate_loihi``;
* ``spike_jaccard_with_float`` (all non-source populations together) and ``agreement_with_float``
  (equal entries / all entries — dominated by silence, kept for comparison).
"""
from __future__ import annotations

import numpy as np

from sim.ir.graph import AerGraph
from sim.ir.quantize import output_population, population_counts, population_figures


def predictions(graph: AerGraph, spikes: dict[str, np.ndarray]) -> np.ndarray | None:
    """argmax of the readout's logits per sample; None for a graph without readout."""
    if graph.readout is None:
        return None
    return graph.readout.logits(spikes[graph.readout.pre]).argmax(axis=1)


class FloatComparison:
    """Accumulates float-vs-loihi spike counts and predictions over chunks of samples."""

    def __init__(self, float_graph: AerGraph, graph: AerGraph):
        self.float_graph, self.graph = float_graph, graph
        self.counts: dict[str, np.ndarray] = {}
        self.preds: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, float_spikes: dict[str, np.ndarray], spikes: dict[str, np.ndarray]) -> None:
        for k, c in population_counts(float_spikes, spikes, self.float_graph).items():
            self.counts[k] = self.counts[k] + c if k in self.counts else c
        a, b = predictions(self.float_graph, float_spikes), predictions(self.graph, spikes)
        if a is not None and b is not None:
            self.preds.append((a, b))

    def figures(self, labels: np.ndarray | None = None) -> dict:
        """The module docstring's figures for everything added (``labels`` of the same samples)."""
        if not self.counts:
            return {}
        total = sum(self.counts.values())
        pops = population_figures(self.counts)
        out = output_population(self.float_graph)
        figures = {"output_population": out, "output_spike_jaccard": pops[out]["spike_jaccard"],
                   "output_rate_float": pops[out]["rate_float"], "output_rate_loihi": pops[out]["rate_loihi"]}
        if self.preds:
            a, b = (np.concatenate([p[i] for p in self.preds]) for i in (0, 1))
            figures["prediction_agreement"] = float((a == b).mean())
            if labels is not None and len(labels) == len(a):
                figures.update(accuracy_float=float((a == labels).mean()), accuracy_loihi=float((b == labels).mean()))
        equal = int(total[4] - (total[1] - total[0]))           # entries − entries where exactly one spiked
        figures.update(spike_jaccard_with_float=float(total[0] / total[1]) if total[1] else 1.0,
                       agreement_with_float=equal / int(total[4]) if total[4] else 1.0, per_population=pops)
        return figures
