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
    a, w, d = cfg.arch, cfg.weights, cfg.data
    check_attention(a.attention, a.tokens, a.dim, a.heads, a.kwta_k, a.causal)
    most = a.tokens * (a.dim // a.heads if a.attention == "ssa" else 1)
    if not isinstance(a.mask_count, int) or not 1 <= a.mask_count <= most:
        raise ValueError(f"config.mask_count must be in [1, {most}] for {a.attention} attention, "
                         f"got {a.mask_count!r}")
    hidden = a.dim * a.mlp_ratio
    check_wta(a.wta_rule, "hidden_k", a.hidden_k, hidden, "hidden")
    check_wta(a.wta_rule, "stream_k", a.stream_k, a.dim, "stream")
    try:
        CubaLIF(du=nm.DU_MAX, dv=cfg.neuron.dv, vth=cfg.neuron.vth)
    except ModelError as e:
        raise ValueError(f"config.{e.field} {e.problem}") from None
    if not w.init_gain > 0:
        raise ValueError(f"config.init_gain must be > 0, got {w.init_gain!r}")
    if w.kind not in WEIGHT_KINDS:
        raise ValueError(f"config.weights must be one of {WEIGHT_KINDS}, got {w.kind!r}")
    check_sparsity(w.sparsity)
    check_fan_in(w.fan_in, a.dim, hidden, w.emb_fan_out)
    data = datasets.get(d.dataset)
    if data.needs_path != (d.data_path is not None) or (d.data_path is not None
                                                        and not isinstance(d.data_path, str)):
        raise ValueError(f"config.data_path must be {'a file or directory path' if data.needs_path else 'null'} "
                         f"for config.dataset={d.dataset!r}, got {d.data_path!r}")
    data.check(cfg)
    return cfg


def model_config(**fields: object) -> ModelConfig:
    """``ModelConfig`` of flat fields (``config.model.FLAT`` names; the others at their defaults), validated."""
    return check_model_config(ModelConfig.from_flat(**fields))
