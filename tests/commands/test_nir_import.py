"""NIR import: snnTorch-exported and hand-written (Norse-, Sinabs-shaped) graphs give the spikes
snnTorch (or the NIR definition) gives, in the engine; loihi quantisation agrees with float and
runs bit-exact in Lava; the transformer's own NIR export comes back with its spikes."""
from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import replace

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from test_cli import assert_user_error, run

from sim.engine.reference import simulate_dense
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph
from sim.ir.quantize import agreement, quantize
from spikeformer.interchange.base import ImportError_
from spikeformer.interchange.nir_import import lower

T = 16


def dyadic(module: torch.nn.Module, k: int = 16) -> torch.nn.Module:
    """Weights and biases on a 1/k grid: every sum of them is exact in float32, in any order."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.round(p * k) / k)
    return module


def feed_forward_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return dyadic(torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), init_hidden=True,
                  reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(10, 4),
        snn.Synaptic(alpha=torch.full((4,), 0.6), beta=torch.full((4,), 0.9), threshold=torch.full((4,), 0.7),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False)))


class Recurrent(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc = torch.nn.Linear(12, 10)
        self.lif = snn.RLeaky(beta=torch.full((10,), 0.85), threshold=torch.full((10,), 0.5), linear_features=10,
                              init_hidden=True, reset_mechanism="zero", reset_delay=False)
        dyadic(self)

    def forward(self, x):
        return self.lif(self.fc(x))


def export(net: torch.nn.Module, n_in: int = 12) -> nir.NIRGraph:
    return export_to_nir(net, torch.zeros(1, n_in), ignore_dims=[0])


def native_spikes(net: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the snnTorch network itself: spikes of every spiking module, (B, T, n)."""
    rec: dict[str, list] = {}
    hooks = [mod.register_forward_hook(lambda m, i, o, name=name: rec.setdefault(name, []).append(
        (o[0] if isinstance(o, tuple) else o).detach().numpy() > 0))
        for name, mod in net.named_modules() if isinstance(mod, snn.SpikingNeuron)]
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(torch.from_numpy(x[:, t]).float())
    for h in hooks:
        h.remove()
    return {k: np.stack(v, 1) for k, v in rec.items()}


def snntorch_import_spikes(g: nir.NIRGraph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``snntorch.import_from_nir(g)`` step by step: spikes per spiking module (its NIR name)."""
    with contextlib.redirect_stdout(io.StringIO()):
        m = import_from_nir(copy.deepcopy(g))          # the importer edits the graph it is given
    rec: dict[str, list] = {}
    for name, mod in m.named_modules():
        if isinstance(mod, snn.SpikingNeuron):
            mod.register_forward_hook(lambda mod, i, o, name=name: rec.setdefault(name, []).append(
                (o[0] if isinstance(o, tuple) else o).detach().numpy() > 0))
    state = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = m(torch.from_numpy(x[:, t]).float(), state)
    return {k: np.stack(v, 1) for k, v in rec.items()}


def engine_window(graph: AerGraph, x: np.ndarray, name: str) -> np.ndarray:
    res = simulate(graph, {graph.inputs[0].name: x})
    p = graph.population(name)
    return res.spikes[name][:, p.depth:p.depth + graph.timesteps]


def inputs(n: int, seed: int = 0, samples: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).random((samples, T, n)) < 0.5


def test_feed_forward_snntorch_export_gives_snntorchs_spikes():
    net = feed_forward_net()
    g = export(net)
    graph = lower(g, T)
    assert [type(p.model).__name__ for p in graph.populations] == ["Input", "Bias", "LIF", "CubaLIFFloat"]
    x = inputs(12)
    native = native_spikes(net, x)
    imported = snntorch_import_spikes(g, x)
    for module, pop in (("1", "1"), ("3", "3")):
        mine = engine_window(graph, x, pop)
        assert mine.any() and not mine.all()
        np.testing.assert_array_equal(mine, native[module])
        np.testing.assert_array_equal(mine, imported[module])


def test_recurrent_snntorch_export_gives_rleakys_spikes():
    net = Recurrent()
    graph = lower(export(net), T)
    self_loop = [pr for pr in graph.projections if pr.pre == pr.post]
    assert len(self_loop) == 1 and self_loop[0].delay == 1
    x = inputs(12, seed=1)
    mine = engine_window(graph, x, "lif.lif")
    assert mine.any()
    np.testing.assert_array_equal(mine, native_spikes(net, x)["lif"])
    # the recurrence matters: without it the spikes differ
    cut = replace(graph, projections=tuple(pr for pr in graph.projections if pr.pre != pr.post))
    assert not np.array_equal(engine_window(cut, x, "lif.lif"), mine)


def norse_shaped(rng) -> nir.NIRGraph:
    """Input → Affine → CubaLIF (w_in ≠ 1) → Linear → LIF (r ≠ τ/dt) → Output, float32, as Norse writes
    graphs (dt 1e-4 so that snnTorch's importer reads the same time constants)."""
    f = np.float32
    w1 = (rng.integers(-16, 17, (8, 10)) / 16).astype(f)
    w2 = (rng.integers(-16, 17, (5, 8)) / 16).astype(f)
    n1, n2 = 8, 5
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([10])}),
        "fc1": nir.Affine(weight=w1, bias=(rng.integers(-4, 5, n1) / 16).astype(f)),
        "cuba": nir.CubaLIF(tau_syn=np.full(n1, 5e-4, f), tau_mem=np.full(n1, 1e-3, f), r=np.full(n1, 10.0, f),
                            v_leak=np.zeros(n1, f), v_threshold=np.full(n1, 1.0, f), w_in=np.full(n1, 2.0, f)),
        "fc2": nir.Linear(weight=w2),
        "lif": nir.LIF(tau=np.full(n2, 2e-3, f), r=np.full(n2, 4.0, f), v_leak=np.zeros(n2, f),
                       v_threshold=np.full(n2, 0.3, f)),
        "output": nir.Output(output_type={"output": np.array([n2])}),
    }, edges=[("input", "fc1"), ("fc1", "cuba"), ("cuba", "fc2"), ("fc2", "lif"), ("lif", "output")])


def test_nir_api_graph_in_norses_shape_gives_snntorchs_spikes():
    g = norse_shaped(np.random.default_rng(2))
    graph = lower(g, T)
    x = inputs(10, seed=3)
    ref = snntorch_import_spikes(g, x)
    for pop in ("cuba", "lif"):
        mine = engine_window(graph, x, pop)
        assert mine.any()
        np.testing.assert_array_equal(mine, ref[pop])


def sinabs_shaped(rng) -> nir.NIRGraph:
    """Input (2, 6, 6) → Conv2d 3×3 pad 1 → IF → SumPool2d 2 → Flatten → Linear → IF → Output."""
    f = np.float32
    conv = nir.Conv2d(input_shape=(6, 6), weight=(rng.integers(-8, 9, (4, 2, 3, 3)) / 8).astype(f), stride=1,
                      padding=1, dilation=1, groups=1, bias=(rng.integers(-2, 3, 4) / 8).astype(f))
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": conv,
        "if1": nir.IF(r=np.ones((4, 6, 6), f), v_threshold=np.full((4, 6, 6), 1.0, f)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
        "fc": nir.Linear(weight=(rng.integers(-8, 9, (3, 36)) / 8).astype(f)),
        "if2": nir.IF(r=np.full(3, 2.0, f), v_threshold=np.full(3, 2.0, f)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "if2"),
              ("if2", "output")])


def if_reference(g: nir.NIRGraph, x: np.ndarray) -> dict[str, np.ndarray]:
    """NIR's IF (v ← v + r·I, spike v > θ, reset 0) on torch's conv2d / sum pooling, float32."""
    c, p, fc, i2 = g.nodes["conv"], g.nodes["pool"], g.nodes["fc"], g.nodes["if2"]
    v1 = torch.zeros(len(x), 4, 6, 6)
    v2 = torch.zeros(len(x), 3)
    out1, out2 = [], []
    for t in range(x.shape[1]):
        xt = torch.from_numpy(x[:, t].reshape(-1, 2, 6, 6)).float()
        v1 = v1 + torch.nn.functional.conv2d(xt, torch.from_numpy(c.weight), torch.from_numpy(c.bias), padding=1)
        s1 = v1 > 1.0
        v1 = torch.where(s1, 0.0, v1)
        pooled = torch.nn.functional.avg_pool2d(s1.float(), 2) * 4
        v2 = v2 + torch.from_numpy(i2.r) * (pooled.flatten(1) @ torch.from_numpy(fc.weight).T)
        s2 = v2 > torch.from_numpy(i2.v_threshold)
        v2 = torch.where(s2, 0.0, v2)
        out1.append(s1.flatten(1).numpy())
        out2.append(s2.numpy())
    return {"if1": np.stack(out1, 1), "if2": np.stack(out2, 1)}


def test_nir_api_graph_in_sinabs_shape_lowers_conv_and_pooling_to_csr():
    g = sinabs_shaped(np.random.default_rng(4))
    graph = lower(g, T)
    assert graph.population("if1").shape == (4, 6, 6) and graph.population("if2").size == 3
    conv = next(pr for pr in graph.projections if pr.name == "input->if1")
    assert conv.n_synapses < 72 * 144                     # sparse: 3×3 windows, not dense
    x = inputs(72, seed=5, samples=8)
    ref = if_reference(g, x)
    for pop in ("if1", "if2"):
        mine = engine_window(graph, x, pop)
        assert mine.any()
        np.testing.assert_array_equal(mine, ref[pop])
    dense = simulate_dense(graph, {"input": x})
    np.testing.assert_array_equal(dense["if2"], simulate(graph, {"input": x}).spikes["if2"])


def test_leaky_integrator_imports_without_spikes():
    f = np.float32
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                            "fc": nir.Linear(weight=np.ones((2, 3), f)),
                            "li": nir.LI(tau=np.full(2, 1e-3, f), r=np.full(2, 10.0, f), v_leak=np.zeros(2, f)),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "fc"), ("fc", "li"), ("li", "output")])
    graph = lower(g, 4)
    assert type(graph.population("li").model).__name__ == "LI"
    assert not simulate(graph, {"input": np.ones((1, 4, 3), bool)}).spikes["li"].any()
    with pytest.raises(ValueError, match="LI has no Loihi fixed-point form"):
        quantize(graph)


def test_unsupported_node_and_long_cycles_are_refused_by_name():
    f = np.float32
    g = norse_shaped(np.random.default_rng(0))
    g.nodes["thr"] = nir.Threshold(threshold=np.ones(5, f))
    g.edges.append(("lif", "thr"))
    with pytest.raises(ImportError_, match="NIR node 'thr' \\(Threshold\\): is not supported"):
        lower(g, T)
    g = norse_shaped(np.random.default_rng(0))
    g.nodes["back"] = nir.Linear(weight=np.ones((8, 5), f))
    g.edges += [("lif", "back"), ("back", "cuba")]
    with pytest.raises(ImportError_, match="recurrence through several populations"):
        lower(g, T)


def test_loihi_quantisation_agrees_with_float_and_runs_in_lava():
    from loihi_export.run.runner import run_lava
    for net in (feed_forward_net(), Recurrent()):
        graph = lower(export(net), T)
        q, scales = quantize(graph)
        assert q.numerics == "loihi" and all(s > 0 for s in scales.values())
        x = inputs(12, seed=7, samples=6)
        flt = simulate(graph, {"input": x}).spikes
        fixed = simulate(q, {"input": x}).spikes
        agree = agreement(flt, fixed, graph)
        assert agree["entries"] >= 0.99, agree
        lava = run_lava(q, {"input": x}, timeout=300)
        for p in q.populations:
            np.testing.assert_array_equal(lava[p.name], fixed[p.name], err_msg=p.name)


def test_transformers_nir_export_imported_back_gives_the_engines_spikes(tiny_run, tmp_path):
    from sim.ir.relays import collapse_relays
    from spikeformer.interchange.nir_export import write_nir
    from spikeformer.runs.steps import load_run_graph
    graph = load_run_graph(tiny_run)
    g = nir.read(write_nir(graph, tmp_path / "m.nir"))
    back = lower(g, graph.timesteps)
    flat = collapse_relays(graph)                       # what the NIR file describes, in its float form
    pops = tuple(replace(p, model=p.model.float_equivalent()) for p in flat.populations)
    projs = tuple(replace(pr, weights=pr.weights.astype(np.float32) * np.float32(2.0 ** pr.weight_exp), weight_exp=0)
                  for pr in flat.projections)
    ref = AerGraph("float", pops, projs, None, flat.timesteps)
    x = {"input": np.random.default_rng(8).random((4, graph.timesteps, flat.population("input").size)) < 0.3}
    a, b = simulate(ref, x).spikes, simulate(back, x).spikes
    spiking = 0
    for p in back.populations:
        if p.is_source:
            continue
        q = ref.population(p.name)
        np.testing.assert_array_equal(b[p.name][:, p.depth:p.depth + graph.timesteps],
                                      a[p.name][:, q.depth:q.depth + graph.timesteps], err_msg=p.name)
        spiking += int(b[p.name].sum())
    assert spiking > 0


def test_cli_import_simulate_report_and_export(tmp_path):
    nir.write(tmp_path / "ff.nir", export(feed_forward_net()))
    x = inputs(12, seed=9, samples=10)
    np.savez(tmp_path / "in.npz", input=x, labels=np.arange(10) % 4)
    out = tmp_path / "run"
    figures = json.loads(run("import", "nir", str(tmp_path / "ff.nir"), "--out", str(out), "--inputs",
                             str(tmp_path / "in.npz"), "--numerics", "loihi", "--json").stdout)
    assert figures["numerics"] == "loihi" and figures["samples"] == 10 and figures["agreement_with_float"] >= 0.99
    sim = json.loads(run("simulate", str(out), "--json").stdout)
    assert sim["agreement_with_float"] == figures["agreement_with_float"] and sim["accuracy"] is not None
    rep = json.loads(run("report", str(out), "--json").stdout)
    assert rep["samples"] == 10
    exp = json.loads(run("export", "nir", str(out), "--json").stdout)
    assert nir.read(exp["nir"]).nodes
    bad = tmp_path / "bad.nir"
    g = export(feed_forward_net())
    g.nodes["d"] = nir.Delay(delay=np.ones(4, np.float32))
    g.edges.append(("3", "d"))
    nir.write(bad, g)
    assert_user_error(run("import", "nir", str(bad), "--out", str(tmp_path / "r2"), "--inputs",
                          str(tmp_path / "in.npz")), "NIR node 'd' (Delay)")
    assert_user_error(run("import", "nir", str(tmp_path / "ff.nir"), "--out", str(tmp_path / "r3")), "--inputs")
