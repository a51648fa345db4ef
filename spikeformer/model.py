"""Spiking transformer (SDSA / k-WTA / SSA attention, spiking MLP, membrane-potential residuals).

The whole model is a list of populations and projections (:class:`Spec`) that
the forward pass executes tick by tick and that ``spikeformer.convert`` lowers
one-to-one to the AER graph — one definition, so names and wiring can't drift.

Per tick t, with tokens n = 1…N, channels D, spikes X ∈ {0,1}^{N×D}::

    R_0   = W_emb·in                                  (residual stream: synaptic current)
    block l:  X = LIF(R)
              Q, K, V = LIF(W_q X), LIF(W_k X), LIF(W_v X)
              A = attention(Q, K, V)                   (spikeformer.attention: sdsa | kwta | ssa)
              R += W_o·A;   Y = LIF(R)
              H = LIF(W_1 Y)                          (hidden_k: H ← first k spikes of each token,
                                                       H'_nm = [k·H_nm − Σ_{m'<m} H_nm' ≥ 1])
              R += W_2·H
    Z = LIF(R);   logits = Σ_t Σ_n W_out·Z

"Membrane-potential residual": R is a sum of synaptic currents, so a later
stream population receives a copy of every earlier stream projection (exact
on hardware: currents add in the dendrite). Linear layers are shared across
tokens; fixed (untrained) projections are the tables of ``spikeformer.wiring``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from sim import numerics as nm
from spikeformer.attention import check_attention
from spikeformer.events import check_model_config as check_events_config
from spikeformer.hd import check_hd
from spikeformer.neurons import LifParams, lif_step_float, lif_step_loihi, quantize_mantissa
from spikeformer.sparsity import WEIGHT_KINDS, check_sparsity, int8_on_support, kept, ternary, topk_mask
from spikeformer.spec import ProjSpec, build_spec
from spikeformer.wiring import FIXED_WEIGHT, synapses

DATASETS = ("digits", "events")


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
    levels: int = 4           # input thermometer levels (data.encode_digits)
    encoder: str = "thermometer"   # "thermometer" (data.encode_digits) | "hd" (hd.encode_hd: features = hd_dim)
    hd_dim: int = 1024        # HD code dimension D
    hd_active: int = 32       # active bits k per token
    init_gain: float = 1.0
    weights: str = "int8"     # "int8" | "ternary" (BitNet b1.58 absmean), see spikeformer.sparsity
    weight_sparsity: float | None = None   # fraction of zeros per linear matrix, fixed count; None = dense
    dataset: str = "digits"   # "digits" (data.py) | "events" (events.py: DVS-like streams, tokens = patches)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("tokens", "features", "dim", "depth", "heads", "mlp_ratio", "timesteps", "classes", "levels"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.numerics not in nm.NUMERICS:
            raise ValueError(f"config.numerics must be one of {nm.NUMERICS}, got {self.numerics!r}")
        if self.dim % self.heads:
            raise ValueError(f"config.dim ({self.dim}) must be divisible by config.heads ({self.heads})")
        check_attention(self.attention, self.tokens, self.dim, self.heads, self.kwta_k)
        most = self.tokens * (self.dim // self.heads if self.attention == "ssa" else 1)
        if not isinstance(self.mask_count, int) or not 1 <= self.mask_count <= most:
            raise ValueError(f"config.mask_count must be in [1, {most}] for {self.attention} attention, "
                             f"got {self.mask_count!r}")
        hidden = self.dim * self.mlp_ratio
        if self.hidden_k is not None and (not isinstance(self.hidden_k, int)
                                          or not 1 <= self.hidden_k <= min(hidden, nm.W_MANT_MAX)):
            raise ValueError(f"config.hidden_k ({self.hidden_k!r}) must be null or in [1, {min(hidden, nm.W_MANT_MAX)}]: "
                             f"at most k of the {hidden} hidden neurons of a token spike per tick "
                             f"(k ≤ {nm.W_MANT_MAX}, the largest weight mantissa)")
        LifParams(du=nm.DU_MAX, dv=self.dv, vth=self.vth)   # validates dv, vth
        if self.weights not in WEIGHT_KINDS:
            raise ValueError(f"config.weights must be one of {WEIGHT_KINDS}, got {self.weights!r}")
        check_sparsity(self.weight_sparsity)
        if self.encoder not in ("thermometer", "hd"):
            raise ValueError(f"config.encoder must be 'thermometer' or 'hd', got {self.encoder!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"config.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset == "events":
            check_events_config(self.tokens, self.features, self.encoder)
        if self.encoder == "hd":
            check_hd(self.hd_dim, self.hd_active)
            if self.features != self.hd_dim:
                raise ValueError(f"config.features ({self.features}) must equal config.hd_dim ({self.hd_dim}) "
                                 f"for the hd encoder")

    def to_dict(self) -> dict:
        return asdict(self)


class SpikingTransformer(nn.Module):
    """The model of ``build_spec(cfg)``; ``forward`` runs T ticks, all layers inside one tick."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = build_spec(cfg)
        self._fixed: dict[tuple[str, torch.dtype], torch.Tensor] = {}
        shapes = {p.name: p.shape for p in self.spec.populations}
        self.weights = nn.ParameterDict()
        for pr in self.spec.projections:
            if pr.op == "linear" and pr.param.replace(".", "_") not in self.weights:
                fan_in, fan_out = shapes[pr.pre][-1], shapes[pr.post][-1]
                std = cfg.init_gain * cfg.vth / (2 * math.sqrt(fan_in))
                self.weights[pr.param.replace(".", "_")] = nn.Parameter(torch.randn(fan_out, fan_in) * std)
        z = shapes[self.spec.readout_pre][-1]
        self.readout = nn.Parameter(torch.randn(cfg.classes, z) * 16 / math.sqrt(z))
        self.log_temperature = nn.Parameter(torch.tensor(-math.log(cfg.timesteps * cfg.tokens * 8.0)))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.cfg.numerics == "loihi" else torch.float32

    def weight(self, param: str) -> torch.Tensor:
        """Effective weight matrix (out, in): 2·mantissa in loihi mode, 2·w in float mode;
        ternary and/or with a fixed number of non-zeros when configured (spikeformer.sparsity)."""
        w = self.weights[param.replace(".", "_")].to(self.dtype)
        loihi = self.cfg.numerics == "loihi"
        mask = None if self.cfg.weight_sparsity is None else topk_mask(w, kept(w.numel(), self.cfg.weight_sparsity))
        if self.cfg.weights == "ternary":
            return ternary(w, mask, loihi)
        return int8_on_support(w, mask, loihi)

    def readout_weight(self) -> torch.Tensor:
        w = self.readout.to(self.dtype)
        return quantize_mantissa(w) if self.cfg.numerics == "loihi" else 2.0 * w

    def fixed_matrix(self, pr: ProjSpec) -> torch.Tensor:
        """The (post, pre) sparse matrix of a fixed op: ``spikeformer.wiring.synapses``, cached."""
        key = (pr.name, self.dtype)
        if key not in self._fixed:
            pre, post = self.spec.shape(pr.pre), self.spec.shape(pr.post)
            i, j, wv = synapses(pr.op, pre, post, pr.weight)
            self._fixed[key] = torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([j, i])), torch.from_numpy(wv).to(self.dtype),
                (math.prod(post), math.prod(pre)), check_invariants=False).coalesce()
        return self._fixed[key]

    def _stream_current(self, pr: ProjSpec, s: dict[str, torch.Tensor], w: dict[str, torch.Tensor],
                        cache: dict[tuple[str, str], torch.Tensor]) -> torch.Tensor:
        if pr.op != "linear":
            return self._current(pr, s[pr.pre], w)
        key = (pr.pre, pr.param)
        if key not in cache:
            cache[key] = self._current(pr, s[pr.pre], w)
        return cache[key]

    def _current(self, pr: ProjSpec, s: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
        if pr.op == "linear":
            return s @ w[pr.param].T
        if pr.op == "identity":
            return pr.weight * s
        m = self.fixed_matrix(pr)
        a = torch.sparse.mm(m, s.reshape(len(s), -1).T).T
        return a.reshape(len(s), *self.spec.shape(pr.post))

    def forward(self, x: torch.Tensor, record: bool = False
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: spikes (B, T, N, F) → (logits (B, classes) of the integer readout, recorded spikes).

        With ``record`` the second value maps every population name to its spikes
        (B, T, *shape) as bool; otherwise it is empty.
        """
        B, T = x.shape[:2]
        dt = self.dtype
        step = lif_step_loihi if self.cfg.numerics == "loihi" else lif_step_float
        w = {pr.param: self.weight(pr.param) for pr in self.spec.projections if pr.op == "linear"}
        state: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        counts = None
        rec: dict[str, list[torch.Tensor]] = {p.name: [] for p in self.spec.populations} if record else {}
        for t in range(T):
            s: dict[str, torch.Tensor] = {"input": x[:, t].to(dt)}
            stream: dict[tuple[str, str], torch.Tensor] = {}      # W·s shared by every stream population
            for p in self.spec.populations[1:]:
                a = sum(self._stream_current(pr, s, w, stream) for pr in self.spec.incoming(p.name))
                u, v = state.get(p.name, (torch.zeros_like(a), torch.zeros_like(a)))
                u, v, s[p.name] = step(u, v, a, p.params)
                state[p.name] = (u, v)
            z = s[self.spec.readout_pre].sum(dim=1)                 # Σ over tokens
            counts = z if counts is None else counts + z
            for name in rec:
                rec[name].append(s[name].detach() > 0)
        logits = counts @ self.readout_weight().T
        spikes = {k: torch.stack(v, dim=1) for k, v in rec.items()}
        return logits, spikes

    def loss_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits scaled by a learned temperature for the cross-entropy (argmax unchanged)."""
        return logits.float() * self.log_temperature.exp()
