"""A dense, non-spiking transformer of a language model's shape: the baseline of the spiking one.

Same N (tokens), D (dim), depth, heads and MLP ratio as the ``ModelConfig``; float32, softmax attention
with a causal mask, pre-norm blocks::

    h_0 = E[x_n] + P[n];   h ← h + MHA(LN(h), causal);   h ← h + W_2·GELU(W_1·LN(h));   logits_n = W_out·LN(h_n)
"""
from __future__ import annotations

import torch
from torch import nn

from spikeformer.config.model import ModelConfig


class DenseTransformer(nn.Module):
    """The dense baseline of the module docstring: byte windows (B, N) int64 → logits (B, N, classes)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        a = cfg.arch
        self.embed = nn.Embedding(a.classes, a.dim)
        self.position = nn.Parameter(torch.randn(a.tokens, a.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(a.dim, a.heads, a.dim * a.mlp_ratio, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, a.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(a.dim)
        self.out = nn.Linear(a.dim, a.classes)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(a.tokens), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[:x.shape[1]]
        h = self.blocks(h, mask=self.mask[:x.shape[1], :x.shape[1]], is_causal=True)
        return self.out(self.norm(h))
