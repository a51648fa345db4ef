"""NIR and netx files: round trips, and snnTorch's NIR import reproducing our spikes."""
from __future__ import annotations

import json

import nir
import numpy as np
import torch

from loihi_export.nir_export import DT, read_netx, write_netx, write_nir
from sim.engine import simulate
from sim.ir import AerGraph, Population, Projection
from spikeformer.pipeline import load_run_graph


def test_nir_round_trip_of_the_transformer(tiny_run, tmp_path):
    graph = load_run_graph(tiny_run)
    back = nir.read(write_nir(graph, tmp_path / "m.nir"))
    sizes = {p.name: p.size for p in graph.populations}
    for pr in graph.projections:
        node = back.nodes[f"proj:{pr.name}"]
        assert isinstance(node, nir.Linear)
        np.testing.assert_array_equal(node.weight, pr.to_dense(sizes[pr.post]).astype(np.float32) * 2.0 ** pr.weight_exp)
        assert (pr.pre, f"proj:{pr.name}") in back.edges and (f"proj:{pr.name}", pr.post) in back.edges
    for p in graph.populations:
        node = back.nodes[p.name]
        if p.kind == "lif":
            assert isinstance(node, nir.CubaLIF)
            np.testing.assert_allclose(node.v_threshold, p.vth)
            np.testing.assert_allclose(DT / node.tau_syn, (p.du + 1) / 4096)
        else:
            assert isinstance(node, nir.Input)


def feed_forward_float_graph(rng):
    pops = (Population("in", 10, "input"), Population("h", 12, "lif", 0.5, 0.25, 6.0, depth=1),
            Population("o", 5, "lif", 1.0, 0.0, 8.0, depth=2))
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


def test_netx_round_trip(tiny_run, tmp_path):
    graph = load_run_graph(tiny_run)
    back = read_netx(write_netx(graph, tmp_path / "m.net.h5"))
    assert [l["name"] for l in back["layers"]] == [p.name for p in graph.populations]
    sizes = {p.name: p.size for p in graph.populations}
    for pr, s in zip(graph.projections, back["synapses"]):
        assert s["name"] == pr.name and s["delay"] == pr.delay
        np.testing.assert_array_equal(s["weight"], pr.to_dense(sizes[pr.post]))
    lif = next(p for p in graph.populations if p.kind == "lif")
    layer = next(l for l in back["layers"] if l["name"] == lif.name)
    assert (layer["du"], layer["dv"], layer["vThMant"]) == (lif.du, lif.dv, lif.vth)


def test_export_commands(tiny_run, tmp_path):
    import shutil
    from test_cli import assert_user_error, run
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    for kind, name in (("nir", "model.nir"), ("netx", "model.net.h5")):
        p = run("export", kind, str(d), "--json")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)[kind].endswith(name) and (d / name).stat().st_size > 0
    assert_user_error(run("export", "nir", str(tmp_path / "none")), "graph.aer.npz", "spikeformer convert")
