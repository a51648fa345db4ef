"""Spiking transformer (SDSA / k-WTA / SSA attention, spiking MLP, membrane-potential residuals).

Layer by layer over all T ticks at once (every layer is feed-forward within a tick;
only a population's own u, v carry over ticks, inside ``lif_sequence``). Spikes
X ∈ {0,1}^{B×T×N×D}, N tokens, D channels::

    R = W_emb·in                                     (residual stream: synaptic current)
    block l:  X = LIF(R)
              Q, K, V = LIF(W_q X), LIF(W_k X), LIF(W_v X)
              A = attention(Q, K, V)                  (spikeformer.arch.attention_torch: sdsa | kwta | ssa)
              R = R + W_o·A;   Y = LIF(R)
              H = LIF(W_1 Y)                          (hidden_k: H ← wta(H, hidden_k))
              R = R + W_2·H
    Z = LIF(R);   logits = Σ_t Σ_n W_out·Z      (per_token: logits_n = Σ_t W_out·Z_n, a language model's)

    wta(S, k): ≤ k spikes per token, rule ``wta_rule`` (``spikeformer.arch.wta``):
      index  [k·S_nm − Σ_{m'<m} S_nm' ≥ 1]             (the first k spikes, index order)
      group  [S_nm − Σ_{m'<m, m' ∈ G(m)} S_nm' ≥ 1]     (the first spike of each of k contiguous groups)
      strength  the k of highest voltage level, ties at the cut level by the group rule (``arch.wta_strength``)

With ``stream_k`` every stream population X, Y, Z is replaced by wta(·, stream_k)
of itself before it is used. With ``fan_in`` = F every neuron fed by a trained
matrix has F incoming synapses from pre neurons fixed at init (a gather: cost ∝ D·F),
and every input feature reaches ``emb_fan_out`` (default F) fixed stream channels
(``spikeformer.layers.sparsity``: fan_in_table, fan_out_table).

Linear layers are shared across tokens. In ``loihi`` numerics every current is an
integer below 2²⁴ (checked: ``current_bound``), so float32 tensors hold them exactly
and the LIF arithmetic runs in int64 (``spikeformer.layers.lif``); logits are summed in
float64. ``spikeformer.arch.build.build_spec`` gives the same model as populations and
projections for the converter; the three-way tests prove the two give the same spikes.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.utils.checkpoint
from torch import nn

from sim import numerics as nm
from sim.neurons.cuba import CubaLIF
from spikeformer.arch.attention_torch import ATTENTION
from spikeformer.arch.build import build_spec
from spikeformer.arch.wta import RULES as WTA_RULES
from spikeformer.arch.wta import Potential
from spikeformer.config.model import ModelConfig
from spikeformer.configure.validate import check_model_config
from spikeformer.layers.lif import lif_sequence, lif_sequence_voltage, quantize_mantissa
from spikeformer.layers.sparsity import (
    fan_in_table,
    fan_out_table,
    gather_linear,
    int8_on_support,
    scatter_dense,
    support_mask,
    ternary,
)


def discarded_spikes(s: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
    """Σ_{t,n,c} (s − kept) per sample (B,): the spikes a k-WTA drops (0 when ``kept`` is None)."""
    if kept is None:
        return s.new_zeros(s.shape[0])
    return (s - kept).flatten(1).sum(1)


def current_bound(cfg: ModelConfig) -> int:
    """Largest |synaptic current| any population of the model can receive (loihi units: 2·mantissa)."""
    w = 2 * nm.W_MANT_MAX
    a = cfg.arch
    hidden = a.dim * a.mlp_ratio
    stream = w * (a.features + a.depth * (a.dim + hidden))
    return max(stream, w * hidden, w * a.dim)


FLOAT32_EXACT = 1 << 24          # every integer of magnitude ≤ 2²⁴ is a float32


class SpikingTransformer(nn.Module):
    """The model of the module docstring; parameters are named after ``build_spec(cfg)``'s linear projections."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = check_model_config(cfg)
        self.spec = build_spec(cfg)
        self.checkpoint_blocks = False            # recompute each block in backward (train --checkpoint)
        self.discarded_spikes: torch.Tensor | None = None   # set by forward
        self.lif = CubaLIF(du=nm.DU_MAX, dv=cfg.neuron.dv, vth=cfg.neuron.vth)
        shapes = {p.name: p.shape for p in self.spec.populations}
        self.weights = nn.ParameterDict()
        self.fixed: dict[str, tuple[int, int]] = {}   # fan_in: key → (dense rows, dense columns) of W (out, in)
        wc, vth = cfg.weights, cfg.neuron.vth
        for pr in self.spec.projections:
            key = pr.param.replace(".", "_")
            if pr.op != "linear" or key in self.weights:
                continue
            n_in, n_out = shapes[pr.pre][-1], shapes[pr.post][-1]
            if wc.fan_in is None:
                std = wc.init_gain * vth / (2 * math.sqrt(n_in))
                self.weights[key] = nn.Parameter(torch.randn(n_out, n_in) * std)
                continue
            if pr.param == "emb":              # stored per input feature: (in, F_e), targets in the stream
                fe = wc.emb_fan_out or wc.fan_in
                table = fan_out_table(n_in, n_out, fe)
                per_channel = max(2.0, n_in * table.shape[1] / n_out)      # mean inputs per channel, ≥ 2
            else:                              # stored per neuron: (out, F), sources in the pre population
                table = fan_in_table(n_out, n_in, wc.fan_in)
                per_channel = table.shape[1]
            self.register_buffer(f"table_{key}", table)
            self.fixed[key] = (n_out, n_in)
            std = wc.init_gain * vth / (2 * math.sqrt(per_channel))
            self.weights[key] = nn.Parameter(torch.randn(table.shape) * std)
        z = shapes[self.spec.readout_pre][-1]
        self.readout = nn.Parameter(torch.randn(cfg.arch.classes, z) * 16 / math.sqrt(z))
        self.log_temperature = nn.Parameter(torch.tensor(-math.log(cfg.arch.timesteps * cfg.arch.tokens * 8.0)))

    @property
    def loihi(self) -> bool:
        """Fixed-point (Loihi) arithmetic in training."""
        return nm.ARITHMETIC[self.cfg.neuron.numerics].fixed_point

    @property
    def dtype(self) -> torch.dtype:
        """float32 holds every loihi current exactly below 2²⁴; float64 beyond."""
        return torch.float64 if self.loihi and current_bound(self.cfg) > FLOAT32_EXACT else torch.float32

    def values(self, param: str) -> torch.Tensor:
        """Effective weights in their stored layout: 2·mantissa in loihi mode, 2·w in float mode; ternary and/or
        with a fixed number of non-zeros when configured (spikeformer.layers.sparsity). Dense: (out, in); fixed fan-in:
        (out, F) (the embedding (in, F_e)), every entry a synapse."""
        key = param.replace(".", "_")
        w = self.weights[key].to(self.dtype)
        mask = torch.ones_like(w) if key in self.fixed else support_mask(w, self.cfg.weights.sparsity)
        if self.cfg.weights.kind == "ternary":
            return ternary(w, mask, self.loihi)
        return int8_on_support(w, mask, self.loihi)

    def dense(self, param: str, values: torch.Tensor) -> torch.Tensor:
        """``values`` (of ``values(param)``) as the dense matrix (out, in)."""
        key = param.replace(".", "_")
        if key not in self.fixed:
            return values
        n_out, n_in = self.fixed[key]
        table = getattr(self, f"table_{key}")
        return scatter_dense(values, table, n_out).T if param == "emb" else scatter_dense(values, table, n_in)

    def weight(self, param: str) -> torch.Tensor:
        """Effective weight matrix (out, in) (``values`` laid out dense)."""
        return self.dense(param, self.values(param))

    def linear(self, param: str, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """x (…, in) → W·x (…, out): a matmul, or a gather over the fixed fan-in table (the embedding, whose
        input is narrow, goes through its dense matrix)."""
        key = param.replace(".", "_")
        if key not in self.fixed or param == "emb":
            return x @ self.dense(param, values).T
        return gather_linear(x, getattr(self, f"table_{key}"), values)

    def readout_weight(self) -> torch.Tensor:
        w = self.readout.to(torch.float64 if self.loihi else torch.float32)
        return quantize_mantissa(w) if self.loihi else 2.0 * w

    def _lif(self, a: torch.Tensor) -> torch.Tensor:
        return lif_sequence(a, self.lif, self.loihi)

    def _selected(self, a: torch.Tensor, k: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(LIF(a), its ≤ k spikes per token by ``wta_rule`` given their pre-reset voltages, or None when k is None)."""
        if k is None:
            return self._lif(a), None
        s, v = lif_sequence_voltage(a, self.lif, self.loihi)
        potential = Potential(v, self.lif, 1 << nm.VTH_SHIFT if self.loihi else 1)
        return s, WTA_RULES[self.cfg.arch.wta_rule].select(s, k, potential)

    def _stream(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(LIF(R), its first stream_k spikes per token or None)."""
        return self._selected(r, self.cfg.arch.stream_k)

    def _block(self, b: str, r: torch.Tensor, w: dict[str, torch.Tensor], rec: dict | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(R after the block, the spikes its k-WTA populations discarded per sample (B,))."""
        cfg = self.cfg.arch
        B, T, N, D = r.shape
        x, xk = self._stream(r)
        xs = x if xk is None else xk
        q, k, v = (self._lif(self.linear(f"{b}.w{z}", xs, w[f"{b}.w{z}"])) for z in "qkv")
        inner: dict[str, torch.Tensor] | None = {} if rec is not None else None
        flat = lambda t: t.reshape(B * T, N, D)  # noqa: E731
        attn = ATTENTION[cfg.attention](flat(q), flat(k), flat(v), cfg.heads, cfg.mask_count, cfg.kwta_k,
                                        inner, causal=cfg.causal).reshape(B, T, N, D)
        r = r + self.linear(f"{b}.wo", attn, w[f"{b}.wo"])
        y, yk = self._stream(r)
        h, hk = self._selected(self.linear(f"{b}.w1", y if yk is None else yk, w[f"{b}.w1"]), cfg.hidden_k)
        r = r + self.linear(f"{b}.w2", h if hk is None else hk, w[f"{b}.w2"])
        discarded = sum((discarded_spikes(s, sk) for s, sk in ((x, xk), (y, yk), (h, hk))), r.new_zeros(B))
        if rec is not None:
            for name, s in (("x", x), ("xk", xk), ("q", q), ("k", k), ("v", v), ("attn", attn), ("y", y),
                            ("yk", yk), ("h", h), ("hk", hk)):
                if s is not None:
                    rec[f"{b}.{name}"] = s
            for name, s in inner.items():
                rec[f"{b}.{name}"] = s.reshape(B, T, *s.shape[1:])
        return r, discarded

    def forward(self, x: torch.Tensor, record: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: spikes (B, T, N, F) → (logits (B, classes) of the integer readout — (B, N, classes) with
        ``per_token`` — and recorded spikes).

        Sets ``discarded_spikes`` (B,): Σ over the k-WTA populations of (raw − kept) spikes, differentiable
        through the surrogates (0 without k-WTA); training may penalise it (``train.discard_penalty``).

        With ``record`` the second value maps the model's populations (the graph's, less
        the attention circuits' inner neurons) to their spikes (B, T, *shape) as bool.
        """
        w = {pr.param: self.values(pr.param) for pr in self.spec.projections if pr.op == "linear"}
        x = x.to(self.dtype)
        rec: dict[str, torch.Tensor] | None = {"input": x} if record else None
        r = self.linear("emb", x, w["emb"])
        discarded = r.new_zeros(r.shape[0])
        for l in range(self.cfg.arch.depth):
            run: Callable = lambda r_, b=f"b{l}": self._block(b, r_, w, rec)  # noqa: E731
            if self.checkpoint_blocks and torch.is_grad_enabled() and rec is None:
                r, d = torch.utils.checkpoint.checkpoint(run, r, use_reentrant=False)
            else:
                r, d = run(r)
            discarded = discarded + d
        z, zk = self._stream(r)
        self.discarded_spikes = discarded + discarded_spikes(z, zk)
        if zk is not None:
            z, zk = zk, z                            # read out the k-WTA spikes; record both
        counts = z.sum(dim=1 if self.cfg.arch.per_token else (1, 2)).to(torch.float64 if self.loihi else torch.float32)
        logits = counts @ self.readout_weight().T
        if rec is not None:
            rec.update({"out": z} if zk is None else {"out": zk, "outk": z})
        spikes = {k: v.detach() > 0 for k, v in rec.items()} if rec is not None else {}
        return logits, spikes

    def loss_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits scaled by a learned temperature for the cross-entropy (argmax unchanged)."""
        return logits.float() * self.log_temperature.exp()
