"""``ModelConfig``: everything that defines a model, saved as JSON next to its weights.

A model config is five sections, each checking its own fields on construction (exact
types, ranges that need no plug-in):

* ``arch``    — ``ArchConfig``: token shape, widths, depth, heads, ticks, attention, k-WTA;
* ``neuron``  — ``NeuronConfig``: arithmetic and CUBA LIF parameters;
* ``weights`` — ``WeightsConfig``: weight kind, init gain, sparsity, fan-in;
* ``encoder`` — ``EncoderConfig``: the dataset's input encoder;
* ``data``    — ``DataConfig``: dataset, its file, its split.

``to_dict`` writes the nested form ``{"arch": {...}, "neuron": {...}, ...}``; ``flat_model``
reads either it or the flat form of earlier config files (one object of ``FLAT`` names,
plus an ignored ``"extra"``). Errors name the flat field: ``config.<flat name>``.
``spikeformer.configure.validate`` checks the config as a whole against the registered
datasets, attention kinds, k-WTA rules, neuron and weight types.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from sim import numerics as nm
from spikeformer.config.fields import check_fields


def _positive(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(obj, name) < 1:
            raise ValueError(f"config.{name} must be a positive integer, got {getattr(obj, name)!r}")


@dataclass
class ArchConfig:
    """The network: N tokens of F features, D = dim, depth blocks, heads, MLP ratio, T ticks, attention, k-WTA."""

    tokens: int = 8
    features: int = 40
    dim: int = 64
    depth: int = 1            # blocks; 0: R = W_emb·in read out through Z = LIF(R) (a one-hidden-layer MLP)
    heads: int = 4
    mlp_ratio: int = 2
    timesteps: int = 8
    classes: int = 10
    attention: str = "sdsa"
    mask_count: int = 1       # attention output fires at ≥ this many inputs: SDSA tokens with K∧V,
                              # k-WTA winners with V, SSA Q·K·V coincidences (= 1/s)
    kwta_k: int = 2           # k-WTA attention: winners per query and head (ties kept)
    hidden_k: int | None = None   # k-WTA on the MLP hidden layer: ≤ k spikes per token per tick; None = off
    stream_k: int | None = None   # k-WTA on each residual-stream population (x, y, out): ≤ k spikes per token per tick
    wta_rule: str = "index"   # which spikes hidden_k / stream_k keep: "index" | "group" | "strength" (arch.wta*)
    causal: bool = False      # attention: token i sees tokens j ≤ i only (sdsa, kwta; spikeformer.arch.attention)
    per_token: bool = False   # readout: logits per token (B, N, classes), Σ_t W_out·Z_n (a language model's
                              # next-token logits), instead of pooled over tokens (B, classes)

    def __post_init__(self) -> None:
        check_fields(self, "config")                       # exact types: a bool is not an int
        _positive(self, ("tokens", "features", "dim", "heads", "mlp_ratio", "timesteps", "classes"))
        if self.depth < 0:
            raise ValueError(f"config.depth must be ≥ 0 (0: no blocks, the embedding straight to the readout "
                             f"population), got {self.depth}")
        if self.dim % self.heads:
            raise ValueError(f"config.dim ({self.dim}) must be divisible by config.heads ({self.heads})")


@dataclass
class NeuronConfig:
    """The arithmetic (``sim.numerics``) and the CUBA LIF: v ← v·(1 − dv/4096), spike at v > 64·vth."""

    numerics: str = "loihi"
    dv: int = 1024            # voltage decay: v ← v·(1 − dv/4096)
    vth: int = 128            # threshold mantissa (v > 64·vth)

    def __post_init__(self) -> None:
        check_fields(self, "config")
        if self.numerics not in nm.NUMERICS:
            raise ValueError(f"config.numerics must be one of {nm.NUMERICS}, got {self.numerics!r}")


@dataclass
class WeightsConfig:
    """Weight kind, init std = init_gain·vth/(2·√fan-in), and at most one of sparsity / fan_in."""

    kind: str = "int8"        # flat "weights": "int8" | "ternary" (BitNet b1.58 absmean), see spikeformer.layers.sparsity
    init_gain: float = 1.0
    sparsity: float | None = None   # flat "weight_sparsity": fraction of zeros per linear matrix, fixed count;
                                    # None = dense
    fan_in: int | None = None  # incoming synapses per neuron of every trained matrix, fixed at init and as the
                               # width grows; None = dense
    emb_fan_out: int | None = None  # with fan_in: stream channels each input feature reaches (fixed at init);
                                    # None = fan_in

    def __post_init__(self) -> None:
        check_fields(self, "config", _FLAT_OF["weights"])
        if self.fan_in is not None and self.sparsity is not None:
            raise ValueError("config.fan_in and config.weight_sparsity: give at most one of them")


@dataclass
class EncoderConfig:
    """The dataset's input encoder: thermometer ``levels``, or the HD code (D = hd_dim, k = hd_active)."""

    kind: str = "thermometer"   # flat "encoder"; digits: "thermometer" | "hd" (hd.encode_hd: features = hd_dim)
    levels: int = 4           # input thermometer levels (the dataset's encoder)
    hd_dim: int = 1024        # HD code dimension D
    hd_active: int = 32       # active bits k per token

    def __post_init__(self) -> None:
        check_fields(self, "config", _FLAT_OF["encoder"])
        _positive(self, ("levels",))


@dataclass
class DataConfig:
    """The dataset (a name registered in spikeformer.data), its file, and its train/test split."""

    dataset: str = "digits"   # digits, events, mnist1d, recordings, spikes
    data_path: str | None = None        # the user's file or directory (datasets recordings, spikes)
    split_seed: int | None = None       # train/test split seed; None (and test_fraction None): the dataset's own split
    test_fraction: float | None = None  # test share of a re-split; None: 0.2, or the dataset's own split

    def __post_init__(self) -> None:
        check_fields(self, "config")
        if self.split_seed is not None and self.split_seed < 0:
            raise ValueError(f"config.split_seed must be null or a non-negative integer, got {self.split_seed!r}")
        if self.test_fraction is not None and not 0 < self.test_fraction < 1:
            raise ValueError(f"config.test_fraction must be null or in (0, 1), got {self.test_fraction!r}")


SECTIONS: dict[str, type] = {"arch": ArchConfig, "neuron": NeuronConfig, "weights": WeightsConfig,
                             "encoder": EncoderConfig, "data": DataConfig}
_RENAMED = {("weights", "kind"): "weights", ("weights", "sparsity"): "weight_sparsity", ("encoder", "kind"): "encoder"}
_FLAT_OF = {s: {f.name: _RENAMED.get((s, f.name), f.name) for f in fields(cls)} for s, cls in SECTIONS.items()}
FLAT: dict[str, tuple[str, str]] = {flat: (s, name) for s, names in _FLAT_OF.items() for name, flat in names.items()}
"""Flat field name (earlier config files, ``model_config(**fields)``) → (section, field)."""


@dataclass
class ModelConfig:
    """Everything that defines a model, in sections; saved as JSON next to the weights."""

    arch: ArchConfig = field(default_factory=ArchConfig)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        check_fields(self, "config")                       # each section of its own class

    def to_dict(self) -> dict:
        """The nested form: ``{section: {field: value}}``."""
        return asdict(self)

    def flat(self) -> dict:
        """The flat form: ``{flat name: value}`` (``FLAT``)."""
        return {name: getattr(getattr(self, s), f) for name, (s, f) in FLAT.items()}

    @classmethod
    def from_flat(cls, **flat: object) -> ModelConfig:
        """The config of flat fields (``FLAT`` names; the others at their defaults)."""
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise TypeError(f"unknown config field '{unknown[0]}'")
        parts: dict[str, dict] = {s: {} for s in SECTIONS}
        for name, value in flat.items():
            s, f = FLAT[name]
            parts[s][f] = value
        return cls(**{s: SECTIONS[s](**kw) for s, kw in parts.items()})

    @classmethod
    def from_dict(cls, model: dict) -> ModelConfig:
        """The config of a ``model`` section in either form (``flat_model``)."""
        return cls.from_flat(**flat_model(model))

    def replace(self, **flat: object) -> ModelConfig:
        """A copy with the given flat fields (``FLAT`` names) changed, checked again."""
        return ModelConfig.from_flat(**{**self.flat(), **flat})


def is_nested(model: dict) -> bool:
    """Whether a ``model`` section is in the nested form: a section name holds an object."""
    return any(isinstance(model.get(s), dict) for s in SECTIONS)


def flat_model(model: object) -> dict:
    """A ``model`` section, nested or flat, as ``{flat name: value}``; ValueError naming an unknown key.

    Flat: the keys are ``FLAT`` names, and ``"extra"`` (an object, ignored: earlier files).
    Nested: the keys are section names, each an object of that section's fields."""
    if not isinstance(model, dict):
        raise ValueError(f"section 'model' must be an object, got {model!r}")
    if not is_nested(model):
        unknown = sorted(set(model) - set(FLAT) - {"extra"})
        if unknown:
            raise ValueError(f"unknown key 'model.{unknown[0]}' (known: {', '.join(FLAT)}; "
                             f"or the sections {', '.join(SECTIONS)})")
        if not isinstance(model.get("extra", {}), dict):
            raise ValueError(f"model.extra must be an object, got {model['extra']!r}")
        return {k: v for k, v in model.items() if k != "extra"}
    out = {}
    for s, part in model.items():
        if s not in SECTIONS:
            raise ValueError(f"unknown section 'model.{s}' (known: {', '.join(SECTIONS)})")
        if not isinstance(part, dict):
            raise ValueError(f"section 'model.{s}' must be an object, got {part!r}")
        for name, value in part.items():
            if name not in _FLAT_OF[s]:
                raise ValueError(f"unknown key 'model.{s}.{name}' (known: {', '.join(_FLAT_OF[s])})")
            out[_FLAT_OF[s][name]] = value
    return out


def nested_model(flat: dict) -> dict:
    """``{flat name: value}`` → ``{section: {field: value}}``, no defaults added, values unchecked."""
    out: dict[str, dict] = {}
    for name, value in flat.items():
        s, f = FLAT[name]
        out.setdefault(s, {})[f] = value
    return out


def canonical_config(config: object) -> object:
    """A config object ``{"model": …, "train": …}`` with its model section nested and complete (flat files and
files written before a field existed too); else as is."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        return config
    try:                                  # fields added since the file was written take their defaults
        model = ModelConfig.from_dict(config["model"]).to_dict()
    except (TypeError, ValueError):
        try:
            model = nested_model(flat_model(config["model"]))
        except ValueError:
            return config
    return {**config, "model": model}
