"""AER graph IR: construction-time validation and the file format round trip."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from sim.errors import IRError
from sim.ir.graph import AerGraph, Population, Projection, Readout, balance_delays
from sim.ir.io import load_graph, save_graph
from sim.neurons.cuba import CubaLIF, CubaLIFFloat
from sim.neurons.input import Input
from sim.neurons.probe import VoltageProbe


def small_graph(numerics: str = "loihi", delay: int = 1) -> AerGraph:
    loihi = numerics == "loihi"
    pops = (Population("in", 4, Input(), shape=(2, 2)),
            Population("a", 3, CubaLIF(4095, 100, 10) if loihi else CubaLIFFloat(1.0, 0.1, 10), depth=1),
            Population("b", 2, CubaLIF(0, 0, 5) if loihi else CubaLIFFloat(0.0, 0, 5), depth=1 + delay))
    w1 = np.array([[2, 0, -4, 0], [0, 6, 0, 8], [10, 0, 0, -254]])
    w2 = np.array([[2, 4, 0], [0, 0, 254]])
    dt = np.int16 if loihi else np.float32
    projs = (Projection.from_dense("in->a", "in", "a", w1.astype(dt)),
             Projection.from_dense("a->b", "a", "b", w2.astype(dt), delay=delay, weight_exp=1))
    ro = Readout("b", np.array([[1, -1], [0, 3]], np.int32 if loihi else np.float32), 1 + delay, 3 + delay)
    return AerGraph(numerics, pops, projs, ro, timesteps=2, metadata={"note": "test"})


@pytest.mark.parametrize("numerics", ["loihi", "float"])
def test_round_trip_preserves_everything(tmp_path, numerics):
    g = small_graph(numerics, delay=3)
    h = load_graph(save_graph(g, tmp_path / "g.aer.npz"))
    assert h.numerics == numerics and h.timesteps == 2 and h.ticks == g.ticks == 6
    assert [p.name for p in h.populations] == ["in", "a", "b"]
    for p, q in zip(g.populations, h.populations):
        assert (p.size, p.model, p.shape, p.depth) == (q.size, q.model, q.shape, q.depth)
    for p, q in zip(g.projections, h.projections):
        np.testing.assert_array_equal(p.to_dense(5), q.to_dense(5))
        assert (p.delay, p.weight_exp) == (q.delay, q.weight_exp)
    np.testing.assert_array_equal(g.readout.weights, h.readout.weights)
    assert h.metadata == {"note": "test"}
    h.check_delays()
    assert set(h.to_networkx().edges()) == {("in", "a"), ("a", "b")}


def test_odd_weights_are_accepted_in_single_sign_projections():
    pops = (Population("x", 2, Input()), Population("y", 2, CubaLIF(4095, 0, 1), depth=1))
    for w in ([[1, 0], [0, 3]], [[-1, 0], [0, -253]]):
        AerGraph("loihi", pops, (Projection.from_dense("p", "x", "y", np.array(w, np.int16)),), None, 1)


def test_from_dense_keeps_only_nonzero_synapses():
    pr = Projection.from_dense("p", "x", "y", np.array([[0, 2], [4, 0], [0, 0]]))
    assert pr.n_synapses == 2
    np.testing.assert_array_equal(pr.to_dense(3), [[0, 2], [4, 0], [0, 0]])


@pytest.mark.parametrize("change, field", [
    (dict(indices=np.array([0, 7])), "indices"),               # out of range for post of size 3
    (dict(weights=np.array([-2, 3], np.int16)), "weights"),    # odd in a mixed-sign projection: Lava drops the LSB
    (dict(weights=np.array([2, 256], np.int16)), "weights"),   # beyond 8-bit mantissa
    (dict(weights=np.array([2.0, 4.0])), "weights"),           # float weights in loihi mode
    (dict(delay=0), "delay"),
    (dict(delay=-1), "delay"),
    (dict(indptr=np.array([0, 2, 1, 2])), "indptr"),
    (dict(weights=np.array([2], np.int16)), "weights"),        # length mismatch
    (dict(indptr=np.array([0, 2, 2, 2]), indices=np.array([1, 1])), "indices"),   # duplicate synapse in a row
    (dict(indptr=np.array([0, 2, 2, 2]), indices=np.array([2, 0])), "indices"),   # unsorted row (canonical CSR)
])
def test_bad_projection_fields_are_named(change, field):
    fields = dict(name="p", pre="x", post="y", indptr=np.array([0, 1, 1, 2]), indices=np.array([0, 2]),
                  weights=np.array([2, 4], np.int16), delay=1)
    fields.update(change)
    pops = (Population("x", 3, Input()), Population("y", 3, CubaLIF(4095, 0, 1), depth=1))
    with pytest.raises(IRError) as e:
        AerGraph("loihi", pops, (Projection(**fields),), None, 1)
    assert e.value.field == field and "'p'" in str(e.value)


def test_nan_weights_and_bad_population_fields_are_named():
    with pytest.raises(IRError, match="weights.*NaN"):
        Projection("p", "x", "y", [0, 1], [0], np.array([np.nan], np.float32))
    with pytest.raises(IRError, match="'dv'"):
        AerGraph("loihi", (Population("y", 2, CubaLIF(0, 5000, 1)),), (), None, 1)
    with pytest.raises(IRError, match="'du'"):
        AerGraph("float", (Population("y", 2, CubaLIFFloat(1.5, 0.0, 1.0)),), (), None, 1)
    with pytest.raises(IRError, match="CubaLIF has no float form"):
        AerGraph("float", (Population("y", 2, CubaLIF(1, 0, 1)),), (), None, 1)
    with pytest.raises(IRError, match="'model'.*neuron model"):
        Population("y", 2, "lif")
    with pytest.raises(IRError, match="shape"):
        Population("y", 5, CubaLIF(0, 0, 0), shape=(2, 2))
    with pytest.raises(IRError, match="unknown population 'zz'"):
        AerGraph("loihi", (Population("y", 2, CubaLIF(0, 0, 0)),), (Projection("p", "zz", "y", [0, 0], [], np.array([], np.int16)),), None, 1)


@pytest.mark.parametrize("cls, fields", [(CubaLIF, {"du": 0, "dv": 0, "vth": 1}),
                                         (VoltageProbe, {"dv": 0, "vth": 1, "level": 1})])
def test_loihi_integer_fields_are_checked_alike(cls, fields):
    """CubaLIF and VoltageProbe (``sim.neurons.cuba.check_loihi_integers``): an int, a numpy integer or an integral
    float in [0, hi] is stored as an int; a bool, a fraction or a value outside [0, hi] is refused naming the field."""
    m = cls(**{**fields, "dv": np.int64(7), "vth": 1.0})
    assert (m.dv, m.vth) == (7, 1) and type(m.dv) is int and type(m.vth) is int
    for name, value, hi in (("dv", True, 4095), ("dv", 1.5, 4095), ("dv", -1, 4095), ("dv", 4096, 4095),
                            ("vth", 2**17, 2**17 - 1)):
        with pytest.raises(IRError, match=rf"^neuron model {cls.__name__}: field '{name}': must be an integer in "
                                          rf"\[0, {hi}\] for loihi numerics, got {value}$"):
            cls(**{**fields, name: value})


def test_balance_delays_uses_longest_path_and_rejects_cycles():
    pops = [Population(n, 1, Input()) for n in "abcd"]
    depth = balance_delays(pops, [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")])
    assert depth == {"a": 0, "b": 1, "c": 2, "d": 3}
    with pytest.raises(IRError, match="cycle"):
        balance_delays(pops, [("a", "b"), ("b", "a")])


def test_file_with_out_of_range_index_is_refused(tmp_path):
    path = save_graph(small_graph(), tmp_path / "g.aer.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["p0.indices"] = arrays["p0.indices"].copy()
    arrays["p0.indices"][0] = 99
    np.savez(tmp_path / "bad.aer.npz", **arrays)
    with pytest.raises(IRError) as e:
        load_graph(tmp_path / "bad.aer.npz")
    msg = str(e.value)
    assert "bad.aer.npz" in msg and "'in->a'" in msg and "indices" in msg and "99 out of range" in msg


@pytest.mark.parametrize("corrupt, field", [
    (lambda a: a.update({"p1.weights": a["p1.weights"].astype(np.float64)}), "p1.weights"),
    (lambda a: a.pop("p0.indptr"), "p0.indptr"),
    (lambda a: a.update({"header": np.frombuffer(b"{not json", np.uint8)}), "header"),
])
def test_corrupt_arrays_are_named(tmp_path, corrupt, field):
    path = save_graph(small_graph(), tmp_path / "g.aer.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    corrupt(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(IRError) as e:
        load_graph(tmp_path / "bad.npz")
    assert e.value.field == field


def test_truncated_or_wrong_version_file_is_refused(tmp_path):
    path = save_graph(small_graph(), tmp_path / "g.aer.npz")
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IRError, match="trunc.npz.*not a readable AER graph"):
        load_graph(tmp_path / "trunc.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]))
    header["version"] = 99
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(IRError, match="version"):
        load_graph(tmp_path / "v99.npz")
    with pytest.raises(IRError, match="does not exist"):
        load_graph(tmp_path / "missing.npz")


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as z:
        with z.open("header.npy", "w") as f:
            np.save(f, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(IRError):
        load_graph(path)
