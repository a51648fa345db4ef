"""netx export: lava-dl's own loader builds our file and its Lava run equals the engine spike for spike;
a graph netx cannot express (the transformer, skips, weights beyond 8 bits, ...) is a one-line refusal."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_lava import _leftovers, _snapshot  # noqa: E402

from loihi_export.netx.export import NetxError, lava_dense_weights, layer_names, netx_optimize, write_netx
from loihi_export.netx.run import default_ticks, run_netx
from loihi_export.protocol import LavaRunError
from sim.engine.simulate import simulate
from sim.ir.graph import AerGraph, Population, Projection
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.input import Input

ROOT = Path(__file__).resolve().parents[2]


def _mapped() -> set[str]:
    """/dev/shm entries some live process maps."""
    mapped = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps") as f:
                mapped.update(line.rsplit("/dev/shm/", 1)[1].split()[0] for line in f if "/dev/shm/" in line)
        except OSError:
            pass
    return mapped


def _orphans(before) -> tuple[list, set[str]]:
    """``test_lava._leftovers``, less the segments of other Lava runs on this machine at the same time:
    a segment our run leaked is mapped by no live process and still there seconds later."""
    kids, shm = _leftovers(before)
    shm -= _mapped()
    if shm:
        time.sleep(3)                          # another run between unmapping and unlinking its segments
        shm &= set(os.listdir("/dev/shm"))
        shm -= _mapped()
    return kids, shm


def _w(rng, shape, lo, hi, p=0.6):
    return (rng.integers(lo, hi, shape) * 2 * (rng.random(shape) < p)).astype(np.int16)


def chain_graph(seed: int = 0) -> AerGraph:
    """in → h1 (also recurrent) → h2 (delay 2) → o (weight_exp −1): every netx feature we write."""
    rng = np.random.default_rng(seed)
    pops = (Population("in", 20, Input()), Population("h1", 16, CubaLIF(1024, 256, 40), depth=1),
            Population("h2", 12, CubaLIF(4095, 0, 30), depth=3), Population("o", 6, CubaLIF(512, 128, 20), depth=4))
    projs = (Projection.from_dense("a", "in", "h1", _w(rng, (16, 20), -10, 30), weight_exp=1),
             Projection.from_dense("r", "h1", "h1", _w(rng, (16, 16), -40, 20)),
             Projection.from_dense("b", "h1", "h2", _w(rng, (12, 16), -30, 60), delay=2),
             Projection.from_dense("c", "h2", "o", _w(rng, (6, 12), 0, 60) * 2, weight_exp=-1))
    return AerGraph("loihi", pops, projs, None, 10)


def _netx():
    from loihi_export.compat import import_netx
    return import_netx()


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_weight_path_replays_lava_dl_and_lava():
    """netx_optimize = lava-dl's optimize_weight_bits; lava_dense_weights = Lava Dense's clip + truncate
    (per part, as dense_rec splits the jointly optimised matrix)."""
    _netx()
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(1000):
        lo, hi = sorted(int(v) for v in rng.choice([-600, -257, -256, -255, -128, -3, 0, 1, 2, 20, 127, 254,
                                                    255, 256, 600], 2))
        mult = int(rng.choice([1, 2, 4, 8, 32]))
        w = rng.integers(lo // mult, hi // mult + 1, (3, 5)) * mult
        if not w.any():
            continue
        with contextlib.redirect_stdout(io.StringIO()):         # lava-dl prints clipping warnings
            ref, bits, exp, _ = optimize_weight_bits(w.copy())
        mine, my_bits, my_exp = netx_optimize(w)
        assert (my_bits, my_exp) == (bits, exp) and np.array_equal(mine, ref), w
        for part in (ref, ref[:, :2], ref[:, 2:]):
            mode = determine_sign_mode(part)
            want = truncate_weights(clip_weights(part, mode, num_bits=8), mode, bits)
            np.testing.assert_array_equal(lava_dense_weights(part, bits), want)
        checked += 1
    assert checked > 800


def test_file_has_lava_dl_layout_and_loader_builds_our_parameters(tmp_path):
    g = chain_graph()
    path = write_netx(g, tmp_path / "m.net.h5")
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["layer"] and sorted(f["layer"].keys()) == ["0", "1", "2", "3"]
        assert set(f["layer/0"].keys()) == {"type", "shape"} and f["layer/0/type"][()] == b"input"
        assert [f[f"layer/{k}/type"][()] for k in "123"] == [b"dense_rec", b"dense", b"dense"]
        assert "delay" not in f["layer/1"] and f["layer/2/delay"][()] == 1 and "delay" not in f["layer/3"]
        n = f["layer/2/neuron"]
        assert set(n.keys()) == {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}
        assert (n["type"][()], n["iDecay"][()], n["vDecay"][()], n["vThMant"][()]) == (b"CUBA", 4096, 0, 30)
    assert layer_names(path) == ["in", "h1", "h2", "o"]
    assert default_ticks(path) == g.ticks

    net = _netx().hdf5.Network(net_config=str(path))
    assert len(net) == 3 and net.inp.shape == (20,) and net.out.shape == (6,)
    sizes = {p.name: p.size for p in g.populations}
    for layer, name in zip(net.layers, ["h1", "h2", "o"]):
        p = g.population(name)
        lif = layer.neuron
        assert (int(lif.du.init), int(lif.dv.init), int(lif.vth.init)) == (p.model.du, p.model.dv, p.model.vth)
        syn = layer.synapse
        ours = next(pr for pr in g.projections if pr.post == name and pr.pre != name)
        used = lava_dense_weights(syn.weights.init, syn.proc_params["num_weight_bits"])
        np.testing.assert_array_equal(used * 2.0 ** syn.proc_params["weight_exp"],
                                      ours.to_dense(sizes[name]) * 2.0 ** ours.weight_exp)
        if ours.delay > 1:
            assert type(syn).__name__ == "DelayDense" and np.all(syn.delays.init == ours.delay - 1)
    rec = net.layers[0].synapse_rec
    np.testing.assert_array_equal(lava_dense_weights(rec.weights.init, rec.proc_params["num_weight_bits"])
                                  * 2.0 ** rec.proc_params["weight_exp"], g.projections[1].to_dense(16))


def test_lava_dl_run_of_our_netx_file_equals_the_engine(tmp_path):
    """lava-dl's hdf5.Network on Loihi2SimCfg(fixed_pt) vs sim.engine, every layer, spike for spike."""
    g = chain_graph()
    x = np.random.default_rng(2).random((3, g.timesteps, 20)) < 0.4
    path = write_netx(g, tmp_path / "m.net.h5")
    before = _snapshot()
    lava = run_netx(path, x, timeout=300, lanes=2)               # two workers: 2 + 1 samples
    assert _orphans(before) == ([], set())                       # no process or shared memory left
    ours = simulate(g, {"in": x}).spikes
    assert sorted(lava) == ["h1", "h2", "o"]
    for name, spikes in lava.items():
        assert spikes.shape == ours[name].shape == (3, g.ticks, g.population(name).size)
        assert 0 < spikes.mean() < 0.9, name                     # neither silent nor saturated
        np.testing.assert_array_equal(spikes, ours[name], err_msg=name)


def test_netx_run_timeout_kills_everything(tmp_path):
    path = write_netx(chain_graph(), tmp_path / "m.net.h5")
    before = _snapshot()
    with pytest.raises(LavaRunError, match=r"timed out after 0\.5 s"):
        run_netx(path, np.ones((1, 10, 20), bool), timeout=0.5)
    assert _orphans(before) == ([], set())


def _graph(pops, projs, numerics="loihi"):
    return AerGraph(numerics, pops, projs, None, 4)


IN, H, O = Population("in", 3, Input()), Population("h", 2, CubaLIF(0, 0, 5)), Population("o", 2, CubaLIF(0, 0, 5))
W = np.array([[2, 0, 4], [0, -6, 2]], np.int16)


@pytest.mark.parametrize("make, needles", [
    (lambda: _graph((Population("in", 3, Input()), Population("h", 2, CubaLIFFloat(0.5, 0.5, 5.0))),
                    (Projection.from_dense("a", "in", "h", W.astype(np.float32)),), "float"),
     ("float numerics", "Loihi fixed-point")),
    (lambda: _graph((IN, Population("in2", 3, Input()), H),
                    (Projection.from_dense("a", "in", "h", W), Projection.from_dense("b", "in2", "h", W))),
     ("one input layer", "2 input populations")),
    (lambda: _graph((IN, H, O), (Projection.from_dense("a", "in", "h", W), Projection.from_dense("b", "in", "o", W))),
     ("'in' feeds 2 populations", "sequential")),
    (lambda: _graph((IN, H, O), (Projection.from_dense("a", "in", "h", W),
                                 Projection.from_dense("b", "h", "o", W[:, :2]),
                                 Projection.from_dense("c", "in", "o", W, delay=2))),
     ("'in' feeds 2 populations",)),
    (lambda: _graph((IN, H, O), (Projection.from_dense("a", "in", "h", W),
                                 Projection.from_dense("b", "h", "o", W[:, :2]),
                                 Projection.from_dense("c", "o", "h", W[:, :2]))),
     ("'h' receives 2 projections", "skip connection")),
    (lambda: _graph((IN, H, O), (Projection.from_dense("a", "in", "h", W),)),
     ("['o'] are not on the chain",)),
    (lambda: _graph((IN, H), (Projection.from_dense("a", "in", "h", W, weight_exp=-2),)),
     ("projection 'a'", "not integers")),
    (lambda: _graph((IN, H), (Projection.from_dense("a", "in", "h", W * 40, weight_exp=1),)),
     ("projection 'a'", "8-bit", "320 becomes 254")),
    (lambda: _graph((IN, H), (Projection.from_dense("a", "in", "h", W, delay=64),)),
     ("projection 'a' has delay 64", "63 ticks")),
    (lambda: _graph((IN, H), (Projection("a", "in", "h", np.array([0, 1, 1, 1]), np.array([0]),
                                         np.array([0], np.int16)),)),
     ("projection 'a'", "no non-zero weight")),
    (lambda: _graph((IN, H), (Projection.from_dense("a", "in", "h", W),
                              Projection.from_dense("r", "h", "h", W[:, :2], delay=2))),
     ("recurrent layer 'h'", "one delay")),
])
def test_what_netx_cannot_express_is_refused_in_one_line(make, needles, tmp_path):
    with pytest.raises(NetxError) as e:
        write_netx(make(), tmp_path / "m.net.h5")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("netx export: ")
    for n in needles:
        assert n in msg, (n, msg)
    assert not (tmp_path / "m.net.h5").exists()


def test_export_netx_refuses_the_transformer_and_writes_a_chain(tiny_run, tmp_path):
    from test_cli import assert_user_error, run

    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    assert_user_error(run("export", "netx", str(d)), "netx export:", "population 'input' feeds",
                      "netx layers are sequential")
    assert not (d / "model.net.h5").exists()
    from sim.ir.io import save_graph
    from spikeformer.runs.steps import graph_path

    chain = tmp_path / "chain"
    chain.mkdir()
    save_graph(chain_graph(), graph_path(chain))
    p = run("export", "netx", str(chain), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["netx"].endswith("model.net.h5") and out["layers"] == 4
    assert layer_names(chain / "model.net.h5") == ["in", "h1", "h2", "o"]


def _python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(extra_path or "")]))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_netx_imports_beside_a_torchvision_that_does_not():
    """No importable torchvision: lava-dl gets a stand-in for its import only; using it says why."""
    p = _python("""
import sys
from loihi_export.compat import _torchvision_importable, import_netx
assert not _torchvision_importable()
netx = import_netx()
assert netx.hdf5.Network and "torchvision" not in sys.modules
from lava.lib.dl.slayer.object_detection.boundingbox import utils
try:
    utils.transforms.ToPILImage
except ImportError as e:
    print("stand-in:", e)
try:
    import torchvision
except ImportError:
    print("later import fails")
""")
    assert p.returncode == 0, p.stderr
    assert "stand-in: torchvision.transforms.ToPILImage: torchvision is not importable" in p.stdout
    assert "later import fails" in p.stdout and "Prophesee" not in p.stdout


def test_netx_uses_a_working_torchvision(tmp_path):
    tv = tmp_path / "torchvision"
    tv.mkdir()
    (tv / "__init__.py").write_text("ops = 'real ops'\ntransforms = 'real transforms'\n")
    p = _python("""
from loihi_export.compat import import_netx
import_netx()
from lava.lib.dl.slayer.object_detection.boundingbox import utils
print(utils.transforms)
""", tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "real transforms"


def test_lava_imports_after_the_start_method_was_set():
    """numba's parallel launch sets multiprocessing's start method; Lava's import must still work."""
    code = ("import multiprocessing as mp; mp.get_start_method()\n"
            "from loihi_export import compat\ncompat.import_lava(); compat.import_netx()\n"
            "print(mp.get_start_method())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "fork"


def test_imported_snntorch_net_quantised_exported_to_netx_runs_in_lava_dl_like_the_engine(tmp_path):
    """snnTorch → NIR → `import nir` (loihi) → netx → lava-dl's loader in Lava = sim.engine, spike for spike."""
    import snntorch as snn
    import torch
    from test_nir_import import T, dyadic, export, inputs

    from sim.ir.quantize import quantize
    from spikeformer.interchange.nir_import import lower
    torch.manual_seed(0)
    net = dyadic(torch.nn.Sequential(
        torch.nn.Linear(12, 10, bias=False),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), init_hidden=True,
                  reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(10, 4, bias=False),
        snn.Synaptic(alpha=torch.full((4,), 0.6), beta=torch.full((4,), 0.9), threshold=torch.full((4,), 0.2),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False)))
    q, _ = quantize(lower(export(net), T), words=1, signs="mixed")    # netx: one matrix per layer
    x = inputs(12, seed=7, samples=4)
    before = _snapshot()
    lava = run_netx(write_netx(q, tmp_path / "ff.net.h5"), x, timeout=300)
    assert _orphans(before) == ([], set())
    ours = simulate(q, {"input": x}).spikes
    assert len(lava) == 2
    for name, spikes in lava.items():
        assert spikes.sum() >= 20, name                          # both layers spike
        np.testing.assert_array_equal(spikes, ours[name], err_msg=name)


def test_split_sign_quantisation_is_refused_by_netx_with_the_layout_it_needs(tmp_path):
    """The default import layout (a projection per sign) has no netx form; the error names the option that has."""
    import snntorch as snn
    import torch
    from test_nir_import import T, dyadic, export

    from sim.ir.quantize import quantize
    from spikeformer.interchange.nir_import import lower
    torch.manual_seed(0)
    net = dyadic(torch.nn.Sequential(
        torch.nn.Linear(12, 10, bias=False),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), init_hidden=True,
                  reset_mechanism="zero", reset_delay=False)))
    split, _ = quantize(lower(export(net), T))
    assert len(split.projections) >= 2                                   # one per sign
    with pytest.raises(NetxError, match=r"parallel projections .* --synapse-words 1 --signs mixed"):
        write_netx(split, tmp_path / "split.net.h5")
    mixed, _ = quantize(lower(export(net), T), words=1, signs="mixed")
    assert len(mixed.projections) == 1 and mixed.projections[0].weight_exp == 0
    assert write_netx(mixed, tmp_path / "mixed.net.h5").exists()


def test_import_with_mixed_signs_exports_to_netx_and_split_is_named(tmp_path):
    """`import nir --numerics loihi --synapse-words 1 --signs mixed` → `export netx` works; the default layout
    is refused naming the option; --signs mixed with two words is one line."""
    import nir
    import snntorch as snn
    import torch
    from test_cli import assert_user_error, run
    from test_nir_import import dyadic, export, inputs

    torch.manual_seed(0)
    net = dyadic(torch.nn.Sequential(
        torch.nn.Linear(12, 10, bias=False),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), init_hidden=True,
                  reset_mechanism="zero", reset_delay=False)))
    nir.write(tmp_path / "net.nir", export(net))
    np.savez(tmp_path / "x.npz", spikes=inputs(12, seed=3, samples=4))
    common = ["import", "nir", str(tmp_path / "net.nir"), "--inputs", str(tmp_path / "x.npz"), "--numerics", "loihi"]
    p = run(*common, "--out", str(tmp_path / "mixed"), "--synapse-words", "1", "--signs", "mixed", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["signs"] == "mixed"
    e = run("export", "netx", str(tmp_path / "mixed"), "--json")
    assert e.returncode == 0, e.stderr
    p = run(*common, "--out", str(tmp_path / "split"), "--json")
    assert p.returncode == 0, p.stderr
    assert_user_error(run("export", "netx", str(tmp_path / "split")), "--synapse-words 1 --signs mixed")
    assert_user_error(run(*common, "--out", str(tmp_path / "bad"), "--signs", "mixed"), "signs must be one of")
    assert not (tmp_path / "bad").exists()
