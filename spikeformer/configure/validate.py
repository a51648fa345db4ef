"""The one validator of a model config: ``check_model_config(cfg)`` against every registry.

``ModelConfig`` checks its fields one by one; this checks them together and against the
plug-ins that names select: the attention kind (sizes of its circuit), the k-WTA rule,
the CUBA LIF parameters, the weight kind and sparsity, and the dataset (its file, its
token shape). Errors are one-line ValueErrors naming the ``config.`` field.
"""
from __future__ import annotations

from sim import numerics as nm
from sim.neurons.base import ModelError
from sim.neurons.cuba import CubaLIF
from spikeformer.arch.attention import check_attention
from spikeformer.arch.wta import check_wta
from spikeformer.config.model import ModelConfig
from spikeformer.data import registry as datasets
from spikeformer.layers.sparsity import WEIGHT_KINDS, check_fan_in, check_sparsity


def check_model_config(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` if it is a valid model of its dataset; ValueError naming the field otherwise."""
    check_attention(cfg.attention, cfg.tokens, cfg.dim, cfg.heads, cfg.kwta_k)
    most = cfg.tokens * (cfg.dim // cfg.heads if cfg.attention == "ssa" else 1)
    if not isinstance(cfg.mask_count, int) or not 1 <= cfg.mask_count <= most:
        raise ValueError(f"config.mask_count must be in [1, {most}] for {cfg.attention} attention, "
                         f"got {cfg.mask_count!r}")
    hidden = cfg.dim * cfg.mlp_ratio
    check_wta(cfg.wta_rule, "hidden_k", cfg.hidden_k, hidden, "hidden")
    check_wta(cfg.wta_rule, "stream_k", cfg.stream_k, cfg.dim, "stream")
    try:
        CubaLIF(du=nm.DU_MAX, dv=cfg.dv, vth=cfg.vth)
    except ModelError as e:
        raise ValueError(f"config.{e.field} {e.problem}") from None
    if not cfg.init_gain > 0:
        raise ValueError(f"config.init_gain must be > 0, got {cfg.init_gain!r}")
    if cfg.weights not in WEIGHT_KINDS:
        raise ValueError(f"config.weights must be one of {WEIGHT_KINDS}, got {cfg.weights!r}")
    check_sparsity(cfg.weight_sparsity)
    check_fan_in(cfg.fan_in, cfg.dim, hidden, cfg.emb_fan_out)
    data = datasets.get(cfg.dataset)
    if data.needs_path != (cfg.data_path is not None) or (cfg.data_path is not None
                                                            and not isinstance(cfg.data_path, str)):
        raise ValueError(f"config.data_path must be {'a file or directory path' if data.needs_path else 'null'} "
                         f"for config.dataset={cfg.dataset!r}, got {cfg.data_path!r}")
    data.check(cfg)
    return cfg


def model_config(**fields: object) -> ModelConfig:
    """``ModelConfig(**fields)``, validated (``check_model_config``)."""
    return check_model_config(ModelConfig(**fields))  # type: ignore[arg-type]
