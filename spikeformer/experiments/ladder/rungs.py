"""The ladder's rungs by name (``RUNGS``), each one constraint away from the rung before, and their variants.

    R0  float ReLU, TopK by magnitude at fixed k, dense weights          (the anchors' setting)
    R1  R0 with kept units emitting 1 (arctan surrogate gradient)
    R2  spiking LIF over T ticks (float), k-WTA by strength
    R3  R2 with the project's positional group rule (what position costs)
    R4  R2 with fixed wiring into the hidden units: fan-in F random fixed or learned (top-|w|, annealed), or
        fan-out 1 / F per input (random fixed); dense wiring is R2 itself
    R5  R2 / R3 in Loihi fixed point, exact: the project's spiking model with no block (``exact``), input spikes
    R6  the one-block spiking transformer at the MLP rungs' best settings (``exact``)

A variant names the wiring and, after "+", the options: ``auxk`` (AuxK loss, α = ``AUX_K``) and ``active-init``
(width-aware readout initialisation), e.g. "dense+auxk", "fanin-learned", "fanout-1+active-init". The dense
baselines (``dense_config``) are float ReLU MLPs with dense weights and no selection, their MACs their
synaptic ops: the cheapest dense model at a given cost. The exact rungs' variants are their k-WTA rules
("strength", "group"); beside them the same model without k-WTA (``exact.ExactConfig`` variant "none", kind
``dense-spiking``) is the dense spiking model.
"""
from __future__ import annotations

from dataclasses import dataclass

from spikeformer.experiments.ladder.exact import ExactConfig
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
    dense_spiking: bool = False      # float-trained rungs: no dense spiking model beside them

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

    def variants(self, options: tuple[str, ...] = ("",)) -> list[str]:
        """Each wiring with each option set ("" = none, "a+b" = both), checked."""
        out = ["+".join(filter(None, [w, o])) for o in options for w in self.wirings]
        for v in out:
            parse_variant(v)
        return out

    def spiking_baseline(self, dim: int, k: int, timesteps: int) -> None:
        """The dense spiking model beside a point: none for the float-trained rungs."""
        return None


@dataclass(frozen=True)
class ExactRung:
    """A rung in Loihi fixed point (``exact``): its k-WTA rules, what it changes, whether the dense spiking model
    is trained beside it."""
    name: str
    wirings: tuple[str, ...]
    changes: str
    dense_spiking: bool = True

    def config(self, variant: str, dim: int, k: int, fan_in: int, timesteps: int) -> ExactConfig:
        if variant not in self.wirings:
            raise ValueError(f"rung {self.name} runs with the k-WTA rules {self.wirings}, got {variant!r}")
        return ExactConfig(self.name, variant, dim, k, timesteps)

    def variants(self, options: tuple[str, ...] = ("",)) -> list[str]:
        if any(options):
            raise ValueError(f"--options {','.join(options)}: rung {self.name} takes no options")
        return list(self.wirings)

    def spiking_baseline(self, dim: int, k: int, timesteps: int) -> ExactConfig | None:
        """The same model without k-WTA at the same width (kind ``dense-spiking``), if trained beside this rung."""
        return ExactConfig(self.name, "none", dim, k, timesteps) if self.dense_spiking else None


RUNGS: dict[str, Rung | ExactRung] = {r.name: r for r in (
    Rung("R0", "relu", "topk", ("dense",), "float ReLU, TopK by magnitude"),
    Rung("R1", "binary", "topk", ("dense",), "kept units emit 1"),
    Rung("R2", "lif", "strength", ("dense",), "LIF over T ticks, k-WTA by strength"),
    Rung("R3", "lif", "group", ("dense",), "positional group rule"),
    Rung("R4", "lif", "strength", ("fanin-random", "fanin-learned", "fanout-F", "fanout-1"),
         "fixed wiring into the hidden units"),
    ExactRung("R5", ("strength", "group"), "Loihi fixed point, exact: input spikes, integer LIF, no block"),
    ExactRung("R6", ("group",), "one-block spiking transformer, group rule, Loihi fixed point, exact",
              dense_spiking=False),
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
    return RUNGS[rung].variants(options)


def dense_config(dim: int) -> RungConfig:
    """The dense baseline of width ``dim``: float ReLU, dense weights, no selection."""
    return RungConfig(dim=dim)
