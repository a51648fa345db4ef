"""``ModelConfig``: everything that defines a model, saved as JSON next to its weights.

Construction checks each field on its own (exact types, ranges that need no plug-in);
``spikeformer.configure.validate`` checks the config as a whole against the registered
datasets, attention kinds, k-WTA rules, neuron and weight types.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sim import numerics as nm
from spikeformer.config.fields import check_fields


@dataclass
class ModelConfig:
    """Everything that defines a model; saved as JSON next to the weights."""

    tokens: int = 8
    features: int = 40
    dim: int = 64
    depth: int = 1
    heads: int = 4
    mlp_ratio: int = 2
    timesteps: int = 8
    classes: int = 10
    numerics: str = "loihi"
    attention: str = "sdsa"
    dv: int = 1024            # voltage decay: v ← v·(1 − dv/4096)
    vth: int = 128            # threshold mantissa (v > 64·vth)
    mask_count: int = 1       # attention output fires at ≥ this many inputs: SDSA tokens with K∧V,
                              # k-WTA winners with V, SSA Q·K·V coincidences (= 1/s)
    kwta_k: int = 2           # k-WTA attention: winners per query and head (ties kept)
    hidden_k: int | None = None   # k-WTA on the MLP hidden layer: ≤ k spikes per token per tick; None = off
    stream_k: int | None = None   # k-WTA on each residual-stream population (x, y, out): ≤ k spikes per token per tick
    wta_rule: str = "index"   # which spikes hidden_k / stream_k keep: "index" | "group" (spikeformer.wta)
    levels: int = 4           # input thermometer levels (the dataset's encoder)
    encoder: str = "thermometer"   # digits: "thermometer" | "hd" (hd.encode_hd: features = hd_dim)
    hd_dim: int = 1024        # HD code dimension D
    hd_active: int = 32       # active bits k per token
    init_gain: float = 1.0
    weights: str = "int8"     # "int8" | "ternary" (BitNet b1.58 absmean), see spikeformer.sparsity
    weight_sparsity: float | None = None   # fraction of zeros per linear matrix, fixed count; None = dense
    fan_in: int | None = None  # incoming synapses per neuron of every trained matrix, fixed at init and as the
                               # width grows; None = dense
    emb_fan_out: int | None = None  # with fan_in: stream channels each input feature reaches (fixed at init);
                                    # None = fan_in
    dataset: str = "digits"   # a name registered in spikeformer.datasets (digits, events, mnist1d, recordings, spikes)
    data_path: str | None = None        # the user's file or directory (datasets recordings, spikes)
    split_seed: int | None = None       # train/test split seed; None (and test_fraction None): the dataset's own split
    test_fraction: float | None = None  # test share of a re-split; None: 0.2, or the dataset's own split
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "config")                       # exact types: a bool is not an int
        for name in ("tokens", "features", "dim", "depth", "heads", "mlp_ratio", "timesteps", "classes", "levels"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.numerics not in nm.NUMERICS:
            raise ValueError(f"config.numerics must be one of {nm.NUMERICS}, got {self.numerics!r}")
        if self.dim % self.heads:
            raise ValueError(f"config.dim ({self.dim}) must be divisible by config.heads ({self.heads})")
        if self.fan_in is not None and self.weight_sparsity is not None:
            raise ValueError("config.fan_in and config.weight_sparsity: give at most one of them")
        if self.split_seed is not None and (isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int)
                                            or self.split_seed < 0):
            raise ValueError(f"config.split_seed must be null or a non-negative integer, got {self.split_seed!r}")
        if self.test_fraction is not None and (isinstance(self.test_fraction, bool)
                                               or not isinstance(self.test_fraction, (int, float))
                                               or not 0 < self.test_fraction < 1):
            raise ValueError(f"config.test_fraction must be null or in (0, 1), got {self.test_fraction!r}")
    def to_dict(self) -> dict:
        return asdict(self)
