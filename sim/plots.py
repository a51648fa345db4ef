"""Plots of events and hardware cost, shared by ``spikeformer report`` and the notebooks.

Every function takes IR objects and arrays (no torch), draws on a given or new
matplotlib Axes/Figure and returns it.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline") else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.cost import energy as cost_model  # noqa: E402
from sim.cost.hardware import Mapping  # noqa: E402
from sim.ir.graph import AerGraph  # noqa: E402


def raster(graph: AerGraph, spikes: dict[str, np.ndarray], sample: int = 0, ax=None):
    """Spike raster of one sample: every population stacked, time on x."""
    ax = ax or plt.subplots(figsize=(10, 6))[1]
    base, ticks, labels = 0, [], []
    for p in graph.populations:
        t, i = np.nonzero(spikes[p.name][sample])
        ax.plot(t, i + base, "|", ms=2, mew=0.6, color=f"C{len(labels) % 10}")
        ax.axhline(base, color="0.85", lw=0.5)
        ticks.append(base + p.size / 2)
        labels.append(f"{p.name} (d={p.depth})")
        base += p.size
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlabel("tick")
    ax.set_xlim(-0.5, graph.ticks - 0.5)
    ax.set_ylim(0, base)
    ax.set_title(f"sample {sample}: {sum(int(spikes[p.name][sample].sum()) for p in graph.populations)} spikes")
    return ax


def firing_rates(graph: AerGraph, spikes: dict[str, np.ndarray], axes=None):
    """Mean firing rate (spikes per neuron per model tick) per population, and per token for token-shaped ones."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = [p.name for p in graph.populations]
    rates = [spikes[p.name].sum(axis=1).mean() / (p.size * graph.timesteps) for p in graph.populations]
    axes[0].bar(range(len(names)), rates, color="C0")
    axes[0].set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    axes[0].set_ylabel("spikes / neuron / tick")
    axes[0].set_title("firing rate per population")
    for p in graph.populations:
        if len(p.shape) == 2 and p.model.spiking:
            per_token = spikes[p.name].reshape(*spikes[p.name].shape[:2], *p.shape).sum(axis=(1, 3)).mean(axis=0)
            axes[1].plot(per_token / (p.shape[1] * graph.timesteps), marker="o", ms=3, label=p.name)
    axes[1].set_xlabel("token")
    axes[1].set_ylabel("spikes / neuron / tick")
    axes[1].set_title("firing rate per token")
    axes[1].legend(fontsize=6, ncol=2)
    return axes


def attention_maps(graph: AerGraph, spikes: dict[str, np.ndarray], block: int = 0, sample: int = 0, fig=None):
    """Q, K, V and the attention output as token × channel spike counts over the sample's window,
    then the attention's own signal: SDSA mask (channel × tick), k-WTA winners (query × key,
    all ticks), SSA Q∧K coincidences (query × key)."""
    names = {p.name for p in graph.populations}
    roles = [r for r in ("q", "k", "v", "kv", "attn") if f"b{block}.{r}" in names]
    fig = fig or plt.figure(figsize=(3 * len(roles) + 3, 3), layout="constrained")
    axes = fig.subplots(1, len(roles) + 1)
    for ax, r in zip(axes, roles):
        p = graph.population(f"b{block}.{r}")
        counts = spikes[p.name][sample].sum(axis=0).reshape(p.shape)
        ax.imshow(counts, aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_title(f"{r.upper()} (spikes)")
        ax.set_xlabel("channel")
        ax.set_ylabel("token")
    ax = axes[-1]
    if f"b{block}.mask" in names:
        ax.imshow(spikes[f"b{block}.mask"][sample].T, aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set(title="SDSA mask per tick", xlabel="tick", ylabel="channel")
    elif f"b{block}.win" in names:
        p = graph.population(f"b{block}.win")
        wins = spikes[p.name][sample].reshape(-1, *p.shape).sum(axis=(0, 3))
        ax.imshow(wins, cmap="viridis", interpolation="nearest")
        ax.set(title="k-WTA wins (ticks × heads)", xlabel="key", ylabel="query")
    else:
        p = graph.population(f"b{block}.qk")
        ax.imshow(spikes[p.name][sample].reshape(-1, *p.shape).sum(axis=(0, 3)), cmap="viridis",
                  interpolation="nearest")
        ax.set(title="Q∧K coincidences", xlabel="key", ylabel="query")
    return fig


def kwta_winners(graph: AerGraph, spikes: dict[str, np.ndarray], block: int = 0, sample: int = 0,
                 head: int = 0, fig=None):
    """Which keys won for each query, tick by tick: one query × key panel per tick of the model window."""
    p = graph.population(f"b{block}.win")
    window = spikes[p.name][sample, p.depth:p.depth + graph.timesteps].reshape(-1, *p.shape)[..., head]
    fig = fig or plt.figure(figsize=(1.8 * len(window) + 1, 2.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(window), sharey=True))
    for t, (ax, w) in enumerate(zip(axes, window)):
        ax.imshow(w, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"tick {t}: {int(w.sum())} wins", fontsize=8)
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.suptitle(f"k-WTA winners, block {block}, head {head}", fontsize=9)
    return fig


def cost_per_layer(graph: AerGraph, synaptic_ops: dict[str, np.ndarray], axes=None):
    """Synaptic ops per inference and Loihi synaptic energy per projection."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = [pr.name for pr in graph.projections]
    ops = np.array([synaptic_ops[n].mean() for n in names])
    axes[0].barh(range(len(names)), ops, color="C1")
    axes[0].set_yticks(range(len(names)), names, fontsize=7)
    axes[0].set_xlabel("synaptic ops / inference")
    axes[1].barh(range(len(names)), ops * cost_model.E_SYNOP * 1e6, color="C3")
    axes[1].set_yticks(range(len(names)), [""] * len(names))
    axes[1].set_xlabel("Loihi synaptic energy / inference (µJ)")
    for ax in axes:
        ax.invert_yaxis()
    return axes


def core_map(mapping: Mapping, ops_per_core: np.ndarray, messages_per_core: np.ndarray, fig=None):
    """Heat maps over the cores: utilisation of each limit, synaptic ops and messages received."""
    fig = fig or plt.figure(figsize=(12, 3.5), layout="constrained")
    util = mapping.utilisation()
    rows = np.vstack([util[k] for k in ("neurons", "synapses", "fan_in", "fan_out")])
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    im = ax1.imshow(rows, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax1.set_yticks(range(4), ["neurons", "synapses", "fan-in", "fan-out"])
    if mapping.cores <= 64:                    # one labelled tick per core while they stay legible
        ax1.set_xticks(range(mapping.cores), [f"{c}\n{mapping.core_population[c]}" for c in range(mapping.cores)],
                       fontsize=6)
    ax1.set_title(f"utilisation of each core ({mapping.cores} cores on {mapping.chips_needed} chip(s) "
                  f"of {mapping.hw.cores_per_chip}; white lines: chip boundaries)")
    fig.colorbar(im, ax=ax1, fraction=0.03)
    traffic = np.vstack([ops_per_core / max(ops_per_core.max(), 1), messages_per_core / max(messages_per_core.max(), 1)])
    ax2.imshow(traffic, aspect="auto", cmap="inferno", interpolation="nearest")
    ax2.set_yticks([0, 1], ["syn ops", "messages in"])
    if mapping.cores <= 64:
        ax2.set_xticks(range(mapping.cores))
    for ax in (ax1, ax2):
        for b in range(mapping.hw.cores_per_chip, mapping.cores, mapping.hw.cores_per_chip):
            ax.axvline(b - 0.5, color="white", lw=0.8)
    ax2.set_title("spike traffic per core (normalised)")
    return fig


def report_figure(graph: AerGraph, mapping: Mapping, result, figures: dict, path: str | Path) -> Path:
    """The PNG of ``spikeformer report``: cost per layer, core map, energy comparison."""
    from sim.cost.energy import per_tick_core_load

    fig = plt.figure(figsize=(14, 11), layout="constrained")
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.2, 1, 1])
    cost_per_layer(graph, result.synaptic_ops, axes=top.subplots(1, 2))
    ops, msgs = per_tick_core_load(graph, mapping, result.spikes)
    core_map(mapping, ops.sum(axis=1).mean(axis=0), msgs.sum(axis=1).mean(axis=0), fig=mid)
    ax = bottom.subplots(1, 1)
    labels = ["Loihi 2\n(Davies 2018 consts)", "45 nm AC\n(paper convention)", "45 nm dense MAC\n(paper convention)",
              "SNN 45 nm\n+ memory", "int8 ANN 45 nm\n+ memory"]
    keys = ["energy_loihi2_joules", "energy_45nm_joules", "energy_45nm_dense_joules",
            "energy_snn_memory_joules", "energy_ann_int8_memory_joules"]
    ax.bar(labels, [figures[k] * 1e6 for k in keys], color=["C0", "C2", "C2", "C1", "C3"])
    ax.set_ylabel("µJ / inference")
    ax.set_yscale("log")
    ax.set_title(f"energy per inference — with memory, {figures['winner']} wins at spike rate "
                 f"{figures['spike_rate']:.3f} (crossover {figures['crossover_rate']:.3f})\nLoihi 2 total includes "
                 f"{figures['inter_chip_messages']:.3g} inter-chip messages = "
                 f"{figures['energy_inter_chip_joules'] * 1e6:.3g} µJ (assumed link cost)")
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def sweep_plot(csv_path: str | Path, ax=None, path: str | Path | None = None):
    """Three panels against width D (log x) from a sweep CSV: accuracy, synaptic ops / inference, parameters.

    Columns used: dim, accuracy, synaptic_ops_per_inference, parameters; optional
    model_accuracy, synapses and active_bits are drawn when present. The synaptic-ops
    panel starts at 0 and its title gives max/min. With ``path`` the figure is saved
    there as PNG (atomically) and closed. Returns the three Axes.
    """
    import csv

    with open(csv_path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: float(r["dim"]))
    dims = [float(r["dim"]) for r in rows]
    col = lambda key: [float(r[key]) for r in rows]  # noqa: E731
    has = lambda key: bool(rows) and key in rows[0] and all(r[key] not in ("", None) for r in rows)  # noqa: E731
    if ax is None:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    else:
        axes = ax
        fig = axes[0].figure
    a_acc, a_ops, a_par = axes
    a_acc.plot(dims, col("accuracy"), marker="o", label="simulator")
    if has("model_accuracy"):
        a_acc.plot(dims, col("model_accuracy"), marker="x", ls="--", label="torch model")
        a_acc.legend(fontsize=7)
    a_acc.set_ylim(0, 1.02)
    a_acc.set_title("test accuracy")
    ops = col("synaptic_ops_per_inference")
    a_ops.plot(dims, ops, marker="o", color="C1")
    a_ops.set_ylim(0, max(ops, default=1) * 1.15)
    ratio = max(ops) / min(ops) if ops and min(ops) > 0 else float("nan")
    a_ops.set_title(f"synaptic ops / inference (max/min {ratio:.2f})")
    a_par.plot(dims, col("parameters"), marker="o", color="C2", label="trainable parameters")
    if has("synapses"):
        a_par.plot(dims, col("synapses"), marker="s", color="C3", label="non-zero synapses (graph)")
    a_par.set_yscale("log")
    a_par.legend(fontsize=7)
    a_par.set_title("parameters")
    for a in axes:
        a.set_xscale("log", base=2)
        a.set_xlabel("D (HD code width)")
        a.grid(alpha=0.3)
    if has("active_bits"):
        fig.suptitle(f"width sweep at k = {rows[0]['active_bits']} active bits")
    if path is not None:
        from sim.system.files import atomic_write
        atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
        plt.close(fig)
    return axes


def width_sweep_plot(csv_path: str | Path, ax=None, path: str | Path | None = None,
                     also: dict[str, str | Path] | None = None, sparse_label: str = "sparse-wide (k-WTA, fan-in F)"):
    """Accuracy against synaptic ops per inference (log x) from a width-sweep CSV, mean ± std over seeds.

    Columns used: kind (sparse | dense), matched, dim, accuracy, synaptic_ops_per_inference.
    Sparse points are labelled with D, dense with their width; dense points matched on
    parameters are drawn with a square, seed-0 probes without error bars. ``also`` maps a
    label to another width-sweep CSV whose sparse points are drawn as a further series
    (dashed, grey tones): e.g. the same sweep trained another way. With ``path`` the figure
    is saved there as PNG (atomically) and closed. Returns the Axes.
    """
    import csv

    def read(p: str | Path) -> dict[tuple[str, int], list[dict]]:
        with open(p, newline="") as f:
            out: dict[tuple[str, int], list[dict]] = {}
            for r in csv.DictReader(f):
                out.setdefault((r["kind"], int(r["dim"])), []).append(r)
            return out

    def stats(pts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean ops, mean accuracy, accuracy std) per (dim, rows) point."""
        col = lambda rs, c: [float(r[c]) for r in rs]  # noqa: E731
        return (np.array([np.mean(col(rs, "synaptic_ops_per_inference")) for _, rs in pts]),
                np.array([np.mean(col(rs, "accuracy")) for _, rs in pts]),
                np.array([np.std(col(rs, "accuracy")) for _, rs in pts]))

    groups = read(csv_path)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    else:
        fig = ax.figure
    for i, (label, other) in enumerate((also or {}).items()):
        pts = sorted((d, rs) for (k, d), rs in read(other).items() if k == "sparse")
        xs, ys, es = stats(pts)
        color = ("0.35", "0.6", "0.8")[i % 3]
        ax.errorbar(xs, ys, yerr=es, color=color, marker="o", ls="--", capsize=3, mfc="white", label=label)
        for (d, _), x, y in zip(pts, xs, ys):
            ax.annotate(f"{d}", (x, y), textcoords="offset points", xytext=(4, -9), fontsize=7, color=color)
    style = {"sparse": ("C0", "o", sparse_label), "dense": ("C1", "D", "dense-narrow")}
    for kind in ("sparse", "dense"):
        pts = sorted((d, rs) for (k, d), rs in groups.items() if k == kind)
        if not pts:
            continue
        color, marker, label = style[kind]
        xs, ys, es = stats(pts)
        order = np.argsort(xs)
        ax.plot(xs[order], ys[order], color=color, alpha=0.4)
        for (d, rs), x, y, e in zip(pts, xs, ys, es):
            tags = set("+".join(r["matched"] for r in rs).split("+"))
            m = "s" if "parameters" in tags else marker
            ax.errorbar([x], [y], yerr=[e], color=color, marker=m, capsize=3,
                        mfc="white" if tags <= {"probe", ""} and kind == "dense" else color)
            ax.annotate(f"{d}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
        ax.plot([], [], color=color, marker=marker, label=label)
    ax.plot([], [], color="C1", marker="s", ls="", label="dense, matched on parameters")
    ax.set_xscale("log")
    ax.set_xlabel("synaptic ops per inference (simulator)")
    ax.set_ylabel("test accuracy (simulator)")
    seeds = max((len(rs) for rs in groups.values()), default=0)
    ax.set_title(f"accuracy vs synaptic ops (mean ± std over ≤ {seeds} seeds; labels: width)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if path is not None:
        from sim.system.files import atomic_write
        atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
        plt.close(fig)
    return ax
