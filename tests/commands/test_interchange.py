"""NIR files: round trips, snnTorch's NIR import reproducing our spikes, graded relays collapsed (NIR and netx)."""
from __future__ import annotations

import json

import h5py
import nir
import numpy as np
import pytest
import torch

from loihi_export.netx.export import layer_names, write_netx
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.ir.relays import RelayError, collapse_relays
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.graded import GradedRelay
from sim.neurons.input import Input
from spikeformer.configure.validate import model_config
from spikeformer.interchange.nir_export import DT, to_nir, write_nir
from spikeformer.runs.steps import load_run_graph


def test_nir_round_trip_of_the_transformer(tiny_run, tmp_path):
    relays = load_run_graph(tiny_run)
    graph = collapse_relays(relays)              # NIR has no graded relay: the stream as the model defines it
    back = nir.read(write_nir(relays, tmp_path / "m.nir"))
    assert not any(p.name in back.nodes for p in relays.populations if p.is_graded)
    assert {k for k in back.nodes if k.startswith("proj:")} == {f"proj:{pr.name}" for pr in graph.projections}
    sizes = {p.name: p.size for p in graph.populations}
    for pr in graph.projections:
        node = back.nodes[f"proj:{pr.name}"]
        assert isinstance(node, nir.Linear)
        np.testing.assert_array_equal(node.weight, pr.to_dense(sizes[pr.post]).astype(np.float32) * 2.0 ** pr.weight_exp)
        assert (pr.pre, f"proj:{pr.name}") in back.edges and (f"proj:{pr.name}", pr.post) in back.edges
    for p in graph.populations:
        node = back.nodes[p.name]
        if p.model.spiking:
            assert isinstance(node, nir.CubaLIF)
            np.testing.assert_allclose(node.v_threshold, p.model.vth)
            np.testing.assert_allclose(DT / node.tau_syn, (p.model.du + 1) / 4096)
        else:
            assert isinstance(node, nir.Input)


def feed_forward_float_graph(rng):
    pops = (Population("in", 10, Input()), Population("h", 12, CubaLIFFloat(0.5, 0.25, 6.0), depth=1),
            Population("o", 5, CubaLIFFloat(1.0, 0.0, 8.0), depth=2))
    # integer-valued weights and power-of-two decays: float sums are exact in any order
    w1 = (rng.integers(-3, 6, (12, 10)) * (rng.random((12, 10)) < .6)).astype(np.float32)
    w2 = (rng.integers(-3, 6, (5, 12)) * (rng.random((5, 12)) < .6)).astype(np.float32)
    return AerGraph("float", pops, (Projection.from_dense("w1", "in", "h", w1),
                                    Projection.from_dense("w2", "h", "o", w2)), None, 8)


def test_snntorch_nir_import_gives_the_same_spikes(tmp_path):
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(0)
    g = feed_forward_float_graph(rng)
    net = import_from_nir(nir.read(write_nir(g, tmp_path / "ff.nir")))
    x = rng.random((4, 8, 10)) < 0.5
    outs = [net(torch.tensor(x[:, t], dtype=torch.float32))[0] for t in range(8)]
    spk = torch.stack(outs, 1).detach().numpy() > 0
    ours = simulate(g, {"in": x}).spikes["o"][:, 2:10]          # engine lags by the depth (2)
    assert spk.sum() > 0
    np.testing.assert_array_equal(spk, ours)


def test_export_commands(tiny_run, tmp_path):
    import shutil

    from test_cli import assert_user_error, run
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    p = run("export", "nir", str(d), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["nir"].endswith("model.nir") and (d / "model.nir").stat().st_size > 0
    assert_user_error(run("export", "nir", str(tmp_path / "none")), "graph.aer.npz", "spikeformer convert")


def _random_transformer(depth: int = 2):
    from spikeformer.configure import presets
    from spikeformer.lower.convert import to_graph
    from spikeformer.model.transformer import SpikingTransformer

    cfg = model_config(**{**presets.preset("tiny")[0].flat(), "depth": depth})
    torch.manual_seed(0)
    return to_graph(SpikingTransformer(cfg))


def test_nir_of_relay_stream_feeds_every_stream_lif_all_earlier_currents():
    """The exported NIR is the pre-relay graph: each stream LIF receives emb and every earlier W_o, W_2
    through Linear nodes with the trained weights; snnTorch's importer builds and runs it."""
    from snntorch.import_nir import import_from_nir

    g = _random_transformer()
    n = to_nir(g)
    stream = ["b0.x", "b0.y", "b1.x", "b1.y", "out"]
    currents = ["emb", "b0.wo", "b0.w2", "b1.wo", "b1.w2"]
    for k, post in enumerate(stream):
        pres = [a[len("proj:"):-len(f"->{post}")] for a, b in n.edges if b == post]
        assert pres == currents[:k + 1], post
    trained = {pr.name.split("->")[0]: pr for pr in g.projections if pr.pre in ("input", "b0.attn", "b0.h",
                                                                                   "b1.attn", "b1.h")
               and pr.post.startswith("r")}
    for name in currents:
        src = trained[name]
        np.testing.assert_array_equal(n.nodes[f"proj:{name}->out"].weight,
                                      src.to_dense(g.population(src.post).size).astype(np.float32))
        assert n.nodes[f"proj:{name}->out"].metadata["delay"] == g.population("out").depth - g.population(src.pre).depth
    net = import_from_nir(n)
    out = net(torch.zeros(2, g.population("input").size))
    assert isinstance(out, tuple)


def test_graded_population_that_is_not_a_relay_is_refused(tmp_path):
    pops = (Population("in", 3, Input()), Population("g", 2, GradedRelay(), depth=1),
            Population("o", 2, CubaLIF(4095, 0, 10), depth=2))
    w = np.array([[2, 0], [0, 4]], np.int16)                 # 4·2^-1 = 2: the payload is doubled, not relayed
    g = AerGraph("loihi", pops, (Projection.from_dense("a", "in", "g", np.full((2, 3), 2, np.int16)),
                                 Projection.from_dense("b", "g", "o", w, weight_exp=-1)), None, 2)
    for write, name in ((write_nir, "m.nir"), (write_netx, "m.net.h5")):
        with pytest.raises(RelayError, match=r"graded population 'g' cannot be expressed.*projection 'b'") as e:
            write(g, tmp_path / name)
        assert "\n" not in str(e.value)
    ok = AerGraph("loihi", pops, (g.projections[0], Projection.from_dense("b", "g", "o", np.eye(2, dtype=np.int16) * 2,
                                                                        weight_exp=-1)), None, 2)
    path = write_netx(ok, tmp_path / "ok.net.h5")                # collapsed: the chain in → o, delay 2
    assert layer_names(path) == ["in", "o"]
    with h5py.File(path, "r") as f:
        assert f["layer/1"].attrs["projection"] == "a->o" and f["layer/1/delay"][()] == 1
