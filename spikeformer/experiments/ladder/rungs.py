"""The ladder's rungs by name (``RUNGS``), each one constraint away from the rung before, and their variants.

    R0  float ReLU, TopK by magnitude at fixed k, dense weights          (the anchors' setting)
    R1  R0 with kept units emitting 1 (arctan surrogate gradient)
    R2  spiking LIF over T ticks (float), k-WTA by strength
    R3  R2 with the project's positional group rule (what position costs)
    R4  R2 with fixed wiring into the hidden units: fan-in F random fixed or learned (top-|w|, annealed), or
        fan-out 1 / F per input (random fixed); dense wiring is R2 itself

A variant names the wiring and, after "+", the options: ``auxk`` (AuxK loss, α = ``AUX_K``) and ``active-init``
(width-aware readout initialisation), e.g. "dense+auxk", "fanin-learned", "fanout-1+active-init". The dense
baselines (``dense_config``) are float ReLU MLPs with dense weights and no selection, their MACs their
synaptic ops: the cheapest dense model at a given cost.
"""
from __future__ import annotations

from dataclasses import dataclass

from spikeformer.experiments.ladder.mlp import RungConfig

AUX_K = 1 / 32                    # Gao et al. 2024's AuxK coefficient
OPTIONS = ("auxk", "active-init")
WIRINGS = ("dense", "fanin-random", "fanin-learned", "fanout-1", "fanout-F")


@dataclass(frozen=True)
class Rung:
    """A rung: its hidden neuron and selection rule, the wirings it is run with, what it changes."""
    name: str
    neuron: str
    select: str
    wirings: tuple[str, ...]
    changes: str

    def config(self, variant: str, dim: int, k: int, fan_in: int, timesteps: int) -> RungConfig:
        """The RungConfig of ``variant`` (module docstring) at width ``dim``."""
        wiring, options = parse_variant(variant)
        if wiring not in self.wirings:
            raise ValueError(f"rung {self.name} runs with wiring {self.wirings}, got {wiring!r} (variant {variant!r})")
        fan = None if wiring == "dense" else 1 if wiring == "fanout-1" else fan_in
        return RungConfig(dim=dim, k=k, neuron=self.neuron, select=self.select,
                          wiring="fanout-random" if wiring.startswith("fanout") else wiring, fan=fan,
                          timesteps=timesteps if self.neuron == "lif" else 1,
                          init="active" if "active-init" in options else "default",
                          aux_k=AUX_K if "auxk" in options else 0.0)


RUNGS = {r.name: r for r in (
    Rung("R0", "relu", "topk", ("dense",), "float ReLU, TopK by magnitude"),
    Rung("R1", "binary", "topk", ("dense",), "kept units emit 1"),
    Rung("R2", "lif", "strength", ("dense",), "LIF over T ticks, k-WTA by strength"),
    Rung("R3", "lif", "group", ("dense",), "positional group rule"),
    Rung("R4", "lif", "strength", ("fanin-random", "fanin-learned", "fanout-F", "fanout-1"),
         "fixed wiring into the hidden units"),
)}


def parse_variant(variant: str) -> tuple[str, tuple[str, ...]]:
    """"wiring+option+…" → (wiring, options); ValueError naming the variant if a part is unknown."""
    wiring, *options = str(variant).split("+")
    if wiring not in WIRINGS:
        raise ValueError(f"ladder variant {variant!r}: wiring must be one of {WIRINGS}, got {wiring!r}")
    for o in options:
        if o not in OPTIONS:
            raise ValueError(f"ladder variant {variant!r}: options must be among {OPTIONS}, got {o!r}")
    return wiring, tuple(options)


def variants(rung: str, options: tuple[str, ...] = ("",)) -> list[str]:
    """The variants run for ``rung``: each of its wirings with each option set ("" = none, "a+b" = both)."""
    if rung not in RUNGS:
        raise ValueError(f"--rungs: unknown rung {rung!r}; known: {', '.join(RUNGS)}")
    out = ["+".join(filter(None, [w, o])) for o in options for w in RUNGS[rung].wirings]
    for v in out:
        parse_variant(v)
    return out


def dense_config(dim: int) -> RungConfig:
    """The dense baseline of width ``dim``: float ReLU, dense weights, no selection."""
    return RungConfig(dim=dim)
