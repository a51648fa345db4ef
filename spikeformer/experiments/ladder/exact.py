"""The exact rungs: ladder models in Loihi fixed point through the project's pipeline (torch model → AER graph →
simulator; Lava on the widest), as ``SpikingTransformer`` configs (``spikeformer.model.transformer``).

    R5  the MLP of R2/R3: depth 0, one token, R = W_emb·in, Z = wta(LIF(R), k), logits = Σ_t W_out·Z
        input: the 40 samples thermometer-coded in 8 levels plus the token's constant position bit (its
        synapses are the bias): F = 40·8 + 1 = 321 spikes-or-not per tick, the same every tick
    R6  the one-block spiking transformer at the MLP rungs' best settings (dense weights, group rule, which beat
        selection by strength on R2/R3): 10 tokens of 4 samples (F = 4·8 + 10 = 42), 4 heads, MLP ratio 2,
        stream_k = hidden_k = k

Variants: the k-WTA rule, "strength" or "group" (``spikeformer.arch.wta``), or "none": the same model without
k-WTA, the dense spiking model (kind ``dense-spiking``). Neurons: CUBA LIF, dv = 1024, vth = 128, loihi numerics.

Training (``fit_exact``, the protocol of ``train.fit``): Adam on the mantissa-unit weights at lr·``LR_SCALE`` (the
float rungs' ``--lrs``; the weights are ~vth/√fan-in), the readout temperature at lr·``LR_SCALE``·0.02
(``spikeformer.train``), cross-entropy of the temperature-scaled integer logits, no augmentation; the weights of
the best validation epoch are kept.

Measured on the 1,000 test signals (``measure_exact``; the names of ``counts``):
* accuracy — the torch model's; agreement_with_model — the fraction of test signals on which every population's
  spikes in the event-driven simulator equal the model's (``runs.run.ModelReference``);
* synaptic_ops_per_inference — the simulator's, Σ over events (input spikes included, every tick, the k-WTA
  circuit's own neurons and the graded relay of R to Z too) of their fan-out, plus the readout's
  Σ_t Σ_c Z_t,c·nnz(W_out[:, c]) (computed off the graph), per signal;
* parameters — Σ trained weight entries (the readout included; no biases: the position bit's synapses are it);
  nonzero_weights — the non-zero effective weights;
* dead_fraction, active — of the read-out population Z's D channels: never spiking on a test signal; spikes per
  tick and token; multi_input_fraction — Z's stream channels with ≥ 2 active input synapses from the embedding
  at tick 0, over channels and tokens.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from sim.ir.graph import AerGraph
from spikeformer.config.model import ModelConfig
from spikeformer.configure.validate import model_config
from spikeformer.data.registry import encode
from spikeformer.experiments.ladder.data import LadderData
from spikeformer.experiments.ladder.train import Budget
from spikeformer.model.transformer import SpikingTransformer
from spikeformer.train.trainer import TEMPERATURE_LR_RATIO, batch_loss

LR_SCALE = 10.0
LEVELS = 8
EXACT_VARIANTS = ("strength", "group", "none")
SHAPES = {   # rung → the model fields besides width, k and ticks
    "R5": {"tokens": 1, "features": 40 * LEVELS + 1, "depth": 0, "heads": 1},
    "R6": {"tokens": 10, "features": 4 * LEVELS + 10, "depth": 1, "heads": 4, "mlp_ratio": 2},
}


@dataclass(frozen=True)
class ExactConfig:
    """One exact ladder model: rung (R5, R6), variant (``EXACT_VARIANTS``), width, k, ticks; validated."""
    rung: str
    variant: str
    dim: int
    k: int
    timesteps: int

    def __post_init__(self) -> None:
        if self.rung not in SHAPES:
            raise ValueError(f"ExactConfig.rung must be one of {tuple(SHAPES)}, got {self.rung!r}")
        if self.variant not in EXACT_VARIANTS:
            raise ValueError(f"ExactConfig.variant must be one of {EXACT_VARIANTS}, got {self.variant!r}")
        self.model_config()

    def model_config(self) -> ModelConfig:
        """The ``ModelConfig`` of the module docstring (ValueError naming the field if it is not a valid model)."""
        return _model_config(self)


@lru_cache(maxsize=64)
def _model_config(c: ExactConfig) -> ModelConfig:
    k = None if c.variant == "none" else c.k
    rule = "group" if c.variant == "none" else c.variant
    hidden = {"hidden_k": k} if SHAPES[c.rung]["depth"] else {}
    return model_config(dataset="mnist1d", levels=LEVELS, dim=c.dim, timesteps=c.timesteps, numerics="loihi",
                        init_gain=2.0, stream_k=k, wta_rule=rule, **hidden, **SHAPES[c.rung])


def encoded(cfg: ModelConfig, x: torch.Tensor) -> torch.Tensor:
    """Signals (n, 40) → the model's input spikes (n, T, N, F) bool."""
    return encode(cfg, x.numpy())


@torch.no_grad()
def logits_of(model: SpikingTransformer, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[b:b + batch])[0] for b in range(0, len(x), batch)])


@dataclass(frozen=True)
class FittedExact:
    model: SpikingTransformer
    val_accuracy: float
    best_epoch: int
    epochs: int
    seconds: float


def fit_exact(c: ExactConfig, data: LadderData, lr: float, seed: int, budget: Budget) -> FittedExact:
    """Train ``c`` from ``seed`` at ``lr``·LR_SCALE until validation accuracy stops improving (module docstring)."""
    if not (isinstance(lr, float) and 0 < lr < 1):
        raise ValueError(f"ladder learning rate must be a float in (0, 1), got {lr!r}")
    start = time.perf_counter()
    cfg = c.model_config()
    torch.manual_seed(seed)
    model = SpikingTransformer(cfg)
    step = lr * LR_SCALE
    opt = torch.optim.Adam([{"params": [p for n, p in model.named_parameters() if n != "log_temperature"]},
                            {"params": [model.log_temperature], "lr": step * TEMPERATURE_LR_RATIO}], lr=step)
    x_train, x_val = encoded(cfg, data.x_train), encoded(cfg, data.x_val)
    order = np.random.default_rng(seed)
    best, best_state, best_epoch, epoch = -1.0, None, 0, 0
    while epoch < budget.max_epochs and epoch - best_epoch < budget.patience:
        perm = torch.from_numpy(order.permutation(len(x_train)))
        model.train()
        for b in range(0, len(x_train), budget.batch):
            idx = perm[b:b + budget.batch]
            logits, _ = model(x_train[idx])
            loss = batch_loss(model, logits, data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epoch += 1
        val = float((logits_of(model, x_val).argmax(-1) == data.y_val).double().mean())
        if val > best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return FittedExact(model, best, best_epoch, epoch, time.perf_counter() - start)


@torch.no_grad()
def code_figures(model: SpikingTransformer, x: torch.Tensor, batch: int = 250) -> dict:
    """dead_fraction, active, multi_input_fraction and the readout's synaptic ops per signal (module docstring) on
    input spikes ``x``."""
    cfg = model.cfg
    emb = (model.weight("emb") != 0).to(torch.float32)                       # (D, F)
    fan_out = (model.readout_weight() != 0).sum(0).to(torch.float64)        # (D,) readout synapses per channel
    sent = torch.zeros(cfg.arch.dim, dtype=torch.bool)
    active, multi, readout_ops = 0.0, 0.0, 0.0
    for b in range(0, len(x), batch):
        xb = x[b:b + batch]
        _, rec = model(xb, record=True)
        z = rec["outk" if "outk" in rec else "out"]                          # (n, T, N, D) the read-out spikes
        sent |= z.flatten(0, 2).any(0)
        readout_ops += float((z.to(torch.float64) @ fan_out).sum())
        active += float(z.sum()) / (z.shape[1] * z.shape[2])
        multi += float(((xb[:, 0].to(torch.float32) @ emb.T) >= 2).sum()) / (z.shape[2] * z.shape[3])
    n = len(x)
    return {"dead_fraction": 1.0 - float(sent.sum()) / cfg.arch.dim, "active": active / n,
            "multi_input_fraction": multi / n, "readout_ops": readout_ops / n}


def measure_exact(model: SpikingTransformer, x_test: torch.Tensor, y_test: torch.Tensor,
                  graph: AerGraph | None = None) -> dict:
    """The figures of the module docstring on the test signals (simulator run included); ``graph``: the model's
    AER graph if converted already."""
    from spikeformer.lower.convert import to_graph
    from spikeformer.runs.run import ModelReference, graph_inputs
    from spikeformer.runs.steps import simulate_chunks

    cfg = model.cfg
    x = encoded(cfg, x_test)
    graph = to_graph(model) if graph is None else graph
    reference = ModelReference(graph, model, x, y_test.numpy())
    result, _, _ = simulate_chunks(graph, graph_inputs(graph, x), reference)
    figures = reference.figures()
    ops = sum(np.asarray(v, np.float64) for v in result.synaptic_ops.values())
    params = [model.values(p) for p in (pr.param for pr in model.spec.projections if pr.op == "linear")]
    code = code_figures(model, x)
    return {"accuracy": figures["model_accuracy"], "agreement_with_model": figures["agreement_with_model"],
            "synaptic_ops_per_inference": float(ops.mean()) + code.pop("readout_ops"),
            "parameters": int(sum(w.numel() for w in model.weights.values()) + model.readout.numel()),
            "nonzero_weights": int(sum(int((w != 0).sum()) for w in params)
                                   + int((model.readout_weight() != 0).sum())),
            **code}


def lava_check(model: SpikingTransformer, x_test: torch.Tensor, samples: int, timeout: float = 900.0,
               graph: AerGraph | None = None) -> dict:
    """The first ``samples`` test signals in Lava (Loihi2SimCfg, fixed point) against the simulator:
    {samples, mismatched_spikes, identical, seconds} (``loihi_export.run``)."""
    from loihi_export.run.runner import run_lava
    from spikeformer.lower.convert import to_graph
    from spikeformer.runs.run import ModelReference, graph_inputs
    from spikeformer.runs.steps import compare_chunks

    x = encoded(model.cfg, x_test[:samples])
    graph = to_graph(model) if graph is None else graph
    inputs = graph_inputs(graph, x)
    t0 = time.perf_counter()
    spikes = run_lava(graph, inputs, timeout=timeout)
    seconds = time.perf_counter() - t0
    reference = ModelReference(graph, model, x, np.zeros(len(x), np.int64))
    mismatched = compare_chunks(graph, inputs, spikes, reference)
    return {"samples": len(x), "mismatched_spikes": int(mismatched), "identical": int(mismatched == 0),
            "lava_agreement_with_model": reference.agreement()["agreement_with_model"], "lava_seconds": seconds}
