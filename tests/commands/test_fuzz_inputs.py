"""Fuzz table of bad inputs over the newer doors (NIR import, recordings, dense spikes, the Python API):
each is refused with exit code 2 and exactly one stderr line ``error: …`` (the API: one ValueError line),
every file the user had keeps its digest, no run directory is half-written, and no child process or
/dev/shm entry is left. Cases run in-process through ``spikeformer.app.cli.main``; a few, and the
memory-bound and numba-cache checks, as real processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import psutil
import pytest
from test_cli import BIN, assert_user_error, run
from test_faults import cli as faults_cli
from test_faults import digests
from test_nir_import import export, feed_forward_net, inputs

from spikeformer.data.event_generator import generate_events
from spikeformer.data.sets.recordings import save_recordings

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> tuple[int, str, str]:
    """``spikeformer ARGS`` in this process (``test_faults.cli``): (exit code, stdout, stderr)."""
    p = faults_cli(*args)
    return (p.returncode if isinstance(p.returncode, int) else 1), p.stdout, p.stderr


def lif_graph(**over) -> nir.NIRGraph:
    """Input(12) → Affine → LIF(10) → Output, with the LIF's fields overridden."""
    rng = np.random.default_rng(0)
    lif = dict(tau=np.full(10, 5e-4), r=np.full(10, 1.0), v_leak=np.zeros(10), v_threshold=np.full(10, 0.5))
    lif.update({k: np.full(10, v) if np.ndim(v) == 0 else v for k, v in over.items()})
    return nir.NIRGraph.from_list(nir.Input(input_type=np.array([12])),
                                  nir.Affine(weight=rng.normal(size=(10, 12)).astype(np.float32),
                                             bias=np.zeros(10, np.float32)),
                                  nir.LIF(**lif), nir.Output(output_type=np.array([10])))


def nir_variants() -> dict[str, nir.NIRGraph]:
    """Graphs whose meaning is broken (each one a named case)."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(10, 12)).astype(np.float32)
    g = {
        "lif_threshold_inf": lif_graph(v_threshold=np.inf),
        "lif_threshold_nan": lif_graph(v_threshold=np.nan),
        "lif_r_zero": lif_graph(r=0.0),
        "lif_tau_nan": lif_graph(tau=np.nan),
        "lif_tau_zero": lif_graph(tau=0.0),
        "lif_threshold_negative": lif_graph(v_threshold=-1.0),
        "lif_v_reset_nonzero": lif_graph(v_reset=0.3),
        "lif_thresholds_differ": lif_graph(v_threshold=np.linspace(0.1, 1, 10)),
        "if_r_zero": nir.NIRGraph.from_list(nir.Input(input_type=np.array([12])), nir.Linear(weight=w),
                                            nir.IF(r=np.zeros(10), v_threshold=np.ones(10)),
                                            nir.Output(output_type=np.array([10]))),
        "cuba_w_in_zero": nir.NIRGraph.from_list(
            nir.Input(input_type=np.array([12])), nir.Linear(weight=w),
            nir.CubaLIF(tau_syn=np.full(10, 2e-4), tau_mem=np.full(10, 5e-4), r=np.full(10, 5.0), v_leak=np.zeros(10),
                        v_threshold=np.ones(10), w_in=np.zeros(10)), nir.Output(output_type=np.array([10]))),
        "no_neuron": nir.NIRGraph.from_list(nir.Input(input_type=np.array([12])), nir.Linear(weight=w),
                                            nir.Output(output_type=np.array([10]))),
        "unsupported_node": nir.NIRGraph.from_list(nir.Input(input_type=np.array([12])),
                                                   nir.Delay(delay=np.ones(12, np.float32)),
                                                   nir.Output(output_type=np.array([12]))),
    }
    dt_nan = lif_graph()
    dt_nan.metadata = {"dt": float("nan")}
    g["metadata_dt_nan"] = dt_nan
    g["lif_v_leak_nonzero"] = lif_graph(v_leak=0.1)
    return g                # (a graph without Input node is not here: nir.read infers one, and it imports fine)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_run):
    """The user's files: a NIR model, input spikes, a trained run, an imported run, bad files of every kind."""
    root = tmp_path_factory.mktemp("fuzz")
    u = root / "user"
    u.mkdir()
    nir.write(u / "ff.nir", export(feed_forward_net()))
    x = inputs(12, seed=9, samples=10)
    np.savez(u / "in.npz", input=x, labels=np.arange(10) % 4)
    shutil.copytree(tiny_run, u / "trained")
    assert cli("import", "nir", str(u / "ff.nir"), "--out", str(u / "imported"), "--inputs", str(u / "in.npz"))[0] == 0
    (u / "mine").mkdir()
    shutil.copy(u / "in.npz", u / "mine" / "inputs.npz")
    (u / "a_file").write_text("not a directory\n")
    (u / "garbage.nir").write_bytes(os.urandom(256))
    (u / "empty.nir").write_bytes(b"")
    (u / "adir").mkdir()
    for name, g in nir_variants().items():
        nir.write(u / f"{name}.nir", g)
    bad_inputs = {
        "in_wrong_name": dict(spikes=x, other=x),
        "in_wrong_shape": dict(input=x[..., :5]),
        "in_values_2": dict(input=x.astype(np.int8) * 2),
        "in_zero_samples": dict(input=x[:0]),
        "in_1d": dict(input=np.ones(12, bool)),
        "in_labels_nan": dict(input=x, labels=np.full(10, np.nan)),
        "in_labels_negative": dict(input=x, labels=-np.ones(10, np.int64)),
        "in_labels_past_classes": dict(input=x, labels=np.full(10, 4)),
        "in_labels_huge": dict(input=x, labels=np.full(10, 10**9)),
        "in_labels_short": dict(input=x, labels=np.arange(9) % 4),
        "in_labels_2d": dict(input=x, labels=np.zeros((10, 2), np.int64)),
        "in_too_long": dict(input=np.zeros((10, 40, 12), bool)),            # with --timesteps 16
    }
    for name, arrays in bad_inputs.items():
        np.savez(u / f"{name}.npz", **arrays)
    (u / "in_not_npz.npz").write_text("hello")
    # dense spike files (the `spikes` dataset) and recordings, with a train config for each
    rng = np.random.default_rng(0)
    s, y = rng.random((30, 3, 2, 5)) < 0.3, np.arange(30) % 3
    spikes = {
        "sp_label_huge": dict(spikes=s, labels=np.where(np.arange(30) == 7, 10**9, y)),
        "sp_label_negative": dict(spikes=s, labels=y - 1),
        "sp_label_nan": dict(spikes=s, labels=np.full(30, np.nan)),
        "sp_single_class": dict(spikes=s, labels=np.zeros(30, np.int64)),
        "sp_zero_samples": dict(spikes=s[:0], labels=y[:0]),
        "sp_values_2": dict(spikes=s.astype(np.uint8) * 2, labels=y),
        "sp_3d": dict(spikes=s[..., 0], labels=y),
        "sp_no_labels": dict(spikes=s),
        "sp_all_test": dict(spikes=s, labels=y, is_test=np.ones(30, bool)),
        "sp_short_labels": dict(spikes=s, labels=y[:-1]),
        "sp_labels_float": dict(spikes=s, labels=y.astype(np.float32)),
        "sp_tiny_classes": dict(spikes=s[:3], labels=np.arange(3)),
    }
    for name, arrays in spikes.items():
        np.savez(u / f"{name}.npz", **arrays)
    evs, labels = generate_events(2, seed=3, classes=("right", "left", "expand"))
    for name, ys in {"rec_label_huge": np.where(np.arange(len(labels)) == 1, 10**9, labels),
                     "rec_label_negative": labels - 1, "rec_single_class": np.zeros_like(labels)}.items():
        save_recordings(u / f"{name}.npz", evs, ys, (16, 16))
    (u / "rec_not_npz.npz").write_text("no")
    for name in [*spikes, "rec_label_huge", "rec_label_negative", "rec_single_class", "rec_not_npz", "missing"]:
        dataset = "recordings" if name.startswith("rec") else "spikes"
        (u / f"cfg_{name}.json").write_text(json.dumps(
            {"model": {"dataset": dataset, "data_path": str(u / f"{name}.npz"), "dim": 8, "heads": 2},
             "train": {"epochs": 1}}))
    return root


def import_cases(u: Path, o: Path) -> dict[str, list[str]]:
    ff, good = str(u / "ff.nir"), ["--inputs", str(u / "in.npz")]
    imp = lambda src, *rest: ["import", "nir", src, "--out", str(o / "new"), *rest]  # noqa: E731
    c = {
        "out_trained_run": ["import", "nir", ff, "--out", str(u / "trained"), *good],
        "out_imported_run": ["import", "nir", ff, "--out", str(u / "imported"), *good],
        "out_users_inputs": ["import", "nir", ff, "--out", str(u / "mine"), *good],
        "out_users_inputs_same_file": ["import", "nir", ff, "--out", str(u / "mine"), "--inputs",
                                       str(u / "mine" / "inputs.npz")],
        "out_is_file": ["import", "nir", ff, "--out", str(u / "a_file"), *good],
        "out_under_file": ["import", "nir", ff, "--out", str(u / "a_file" / "run"), *good],
        "timesteps_zero": imp(ff, *good, "--timesteps", "0"),
        "timesteps_negative": imp(ff, *good, "--timesteps", "-3"),
        "timesteps_word": imp(ff, *good, "--timesteps", "fast"),
        "timesteps_huge": imp(ff, *good, "--timesteps", "100000000"),
        "numerics_unknown": imp(ff, *good, "--numerics", "double"),
        "dt_zero": imp(ff, *good, "--dt", "0"),
        "dt_nan": imp(ff, *good, "--dt", "nan"),
        "dt_negative": imp(ff, *good, "--dt", "-1e-4"),
        "source_missing": imp(str(u / "nope.nir"), *good),
        "source_dir": imp(str(u / "adir"), *good),
        "source_garbage": imp(str(u / "garbage.nir"), *good),
        "source_empty": imp(str(u / "empty.nir"), *good),
        "source_npz": imp(str(u / "in.npz"), *good),
        "inputs_and_dataset": imp(ff, *good, "--dataset", "digits"),
        "no_inputs": imp(ff),
        "dataset_unknown": imp(ff, "--dataset", "cifar"),
        "dataset_wrong_size": imp(ff, "--dataset", "digits"),
        "inputs_missing": imp(ff, "--inputs", str(u / "none.npz")),
        "inputs_not_npz": imp(ff, "--inputs", str(u / "in_not_npz.npz")),
        "format_unknown": ["import", "onnx", ff, "--out", str(o / "new"), *good],
    }
    for name in nir_variants():
        c[f"nir_{name}"] = imp(str(u / f"{name}.nir"), *good)
    for p in sorted(u.glob("in_*.npz")):
        if p.stem != "in_not_npz":
            c[f"inputs_{p.stem}"] = imp(ff, "--inputs", str(p), *(["--timesteps", "16"] if "long" in p.stem else []))
    return c


def train_cases(u: Path, o: Path) -> dict[str, list[str]]:
    return {f"train_{p.stem[4:]}": ["train", "--config", str(p), "--out", str(o / "new")]
            for p in sorted(u.glob("cfg_*.json"))}


def other_cases(u: Path, o: Path) -> dict[str, list[str]]:
    return {"report_no_simulation": ["report", str(u / "imported")],
            "export_lava_float_import": ["export", "lava", str(u / "imported")],
            "simulate_samples_past_end": ["simulate", str(u / "imported"), "--samples", "11"]}


def shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def test_fuzz_table_of_bad_inputs_is_refused_cleanly(world, tmp_path):
    u, o = world / "user", tmp_path
    cases = {**import_cases(u, o), **train_cases(u, o), **other_cases(u, o)}
    assert len(cases) >= 60, len(cases)
    before, shm_before = digests(u), shm()
    failures = []
    for name, args in cases.items():
        code, out, err = cli(*args)
        lines = err.strip().splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in err + out:
            failures.append((name, code, err[-400:]))
        if (o / "new").exists():
            failures.append((name, "left", sorted(p.name for p in (o / "new").iterdir())))
            shutil.rmtree(o / "new")
    assert not failures, failures
    assert digests(u) == before
    assert not psutil.Process().children(recursive=True)
    assert shm() <= shm_before


def test_errors_name_the_file_the_node_and_the_value(world, tmp_path):
    u, o = world / "user", tmp_path
    expect = {
        "nir_lif_threshold_inf": ("lif_threshold_inf.nir", "'v_threshold' is inf", "could never fire"),
        "nir_lif_r_zero": ("lif_r_zero.nir", "'r' is 0"),
        "nir_lif_tau_nan": ("lif_tau_nan.nir", "'tau' is nan"),
        "nir_lif_threshold_nan": ("lif_threshold_nan.nir", "'v_threshold' is nan"),
        "nir_lif_tau_zero": ("lif_tau_zero.nir", "NIR node", "dv must be in [0, 1]"),
        "nir_no_neuron": ("no_neuron.nir", "no neuron population"),
        "nir_metadata_dt_nan": ("metadata_dt_nan.nir", "metadata 'dt' is nan"),
        "out_trained_run": ("trained", "refusing to overwrite", "graph.aer.npz"),
        "out_imported_run": ("imported", "import.json"),
        "out_users_inputs": ("mine", "inputs.npz"),
        "out_is_file": ("a_file", "is an existing file"),
        "out_under_file": ("a_file", "is a file, not a directory"),
        "timesteps_huge": ("--timesteps 100000000", "GiB", "available"),
        "inputs_in_labels_nan": ("in_labels_nan.npz", "'labels' must be 1-d integers"),
        "inputs_in_labels_past_classes": ("in_labels_past_classes.npz", "is 4", "[0, 4)"),
        "inputs_in_zero_samples": ("in_zero_samples.npz", "no samples"),
    }
    cases = import_cases(u, o)
    for name, needles in expect.items():
        code, _, err = cli(*cases[name])
        assert code == 2 and all(n in err for n in needles), (name, err)
    for name, needles in {"train_sp_label_huge": ("sp_label_huge.npz", "label 1000000000", "sample 7"),
                          "train_rec_label_huge": ("rec_label_huge.npz", "label 1000000000"),
                          "train_sp_single_class": ("sp_single_class.npz", "single class"),
                          "train_rec_single_class": ("rec_single_class.npz", "single class")}.items():
        code, _, err = cli(*train_cases(u, o)[name])
        assert code == 2 and all(n in err for n in needles), (name, err)
        assert "split_seed (0)" not in err and "test_fraction (0.2)" not in err, err   # defaults not cited


def test_api_refuses_before_writing_and_leaves_other_runs_alone(world, tmp_path):
    from spikeformer.app import api
    u = world / "user"
    before = digests(u)
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 2, 2, 4)) < 0.4, np.arange(12) % 2
    bad = {"out_trained_run": dict(out=u / "trained"), "out_imported_run": dict(out=u / "imported"),
           "out_users_folder": dict(out=u / "mine"), "out_is_file": dict(out=u / "a_file"),
           "out_under_file": dict(out=u / "a_file" / "run"),
           "label_huge": dict(out=tmp_path / "a", labels=np.where(y == 1, 10**9, 0)),
           "label_negative": dict(out=tmp_path / "b", labels=y - 1),
           "label_nan": dict(out=tmp_path / "c", labels=np.full(12, np.nan)),
           "spikes_not_binary": dict(out=tmp_path / "d", data=x * 3),
           "empty": dict(out=tmp_path / "e", data=x[:0], labels=y[:0]),
           "single_class": dict(out=tmp_path / "f", labels=np.zeros(12, np.int64))}
    for name, kw in bad.items():
        kw = {"data": x, "labels": y, **kw}
        with pytest.raises(ValueError) as e:
            api.train(kw.pop("data"), kw.pop("labels"), train={"epochs": 1}, **kw)
        assert len(str(e.value).splitlines()) == 1, (name, str(e.value))
    assert digests(u) == before
    assert not (u / "trained" / "data.npz").exists() and not (u / "imported" / "data.npz").exists()


def peak_of(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run ``spikeformer ARGS`` under a wrapper process that reports its one child's peak RSS (bytes)."""
    import time
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024) + '\\n'); "
               "sys.stderr.write(p.stderr); sys.exit(p.returncode)")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", wrapper, str(BIN), *args], capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return p, time.perf_counter() - t0, int(p.stdout.split()[-1])


def test_huge_timesteps_are_refused_fast_with_the_estimate_and_little_memory(world, tmp_path):
    u = world / "user"
    np.savez(tmp_path / "many.npz", input=np.zeros((1000, 8, 12), bool))     # 1,000 samples: TB at 10⁸ ticks
    for extra in ([], ["--numerics", "loihi"]):
        p, seconds, peak = peak_of("import", "nir", str(u / "ff.nir"), "--out", str(tmp_path / "r"), "--inputs",
                                   str(tmp_path / "many.npz"), "--timesteps", "100000000", *extra)
        assert_user_error(p, "--timesteps 100000000", "GiB", "available")
        print(f"--timesteps 1e8 {extra}: refused in {seconds:.2f} s, peak RSS {peak / 2**20:.0f} MiB")
        assert peak < 2**30, peak
        assert not (tmp_path / "r").exists()
    # wall time of a whole cold process, imports included (the import door does not load torch)
    assert seconds < 5, seconds


def test_import_into_occupied_directories_as_real_processes(world):
    u = world / "user"
    before = digests(u)
    for target in ("trained", "imported", "mine"):
        assert_user_error(run("import", "nir", str(u / "ff.nir"), "--out", str(u / target), "--inputs",
                              str(u / "in.npz")), str(u / target), "refusing to overwrite")
    assert digests(u) == before


def test_numba_cache_folder_unwritable_is_not_a_failure(tmp_path):
    """The package folder read-only (every __pycache__ a file, so nothing can be written beside the modules),
    no writable home and NUMBA_CACHE_DIR under a file: commands still run."""
    copy = tmp_path / "install"
    for pkg in ("sim", "spikeformer", "loihi_export"):
        shutil.copytree(REPO / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for d in [d for d in copy.rglob("*") if d.is_dir()] + [copy]:
        (d / "__pycache__").write_text("not a folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    env = {**os.environ, "PYTHONPATH": str(copy), "HOME": str(blocker / "home"),
           "XDG_CACHE_HOME": str(blocker / "cache"), "NUMBA_CACHE_DIR": str(blocker / "numba")}
    p = subprocess.run([sys.executable, "-c", "from spikeformer.app.cli import main; main(['import', 'nir', '--help'])"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 0 and "cannot cache" not in p.stderr, p.stderr[-2000:]
    assert "--timesteps" in p.stdout



def _run_probe(tmp_path, env: dict) -> tuple[int, int]:
    """Run tmp_path/probe.py in a fresh process: (cache files it removed, spikes it counted)."""
    p = subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    removed, spikes = p.stdout.split()
    return int(removed), int(spikes)


def test_editing_a_neuron_step_reaches_the_engine_despite_numba_cache(tmp_path):
    """numba checks a cached kernel against its own file only, and the engine's kernels inline the CUBA step of
    sim/neurons/cuba.py. In a copy of sim: simulate (warm cache), then mutate the step's spike test in cuba.py
    alone (v > 64·vth → v ≥ 0, every neuron fires every tick): a fresh process must simulate with the edited
    step (``sim.system.numba_cache.drop_stale``)."""
    copy = tmp_path / "install"
    shutil.copytree(REPO / "sim", copy / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(copy)
    (tmp_path / "probe.py").write_text(
        "import numpy as np, sim.system.numba_cache as c\n"
        "from sim.ir.graph import AerGraph, Population, Projection\n"
        "from sim.neurons.cuba import CubaLIF\n"
        "from sim.neurons.input import Input\n"
        "from sim.engine.simulate import simulate\n"
        "g = AerGraph('loihi', (Population('in', 1, Input()), Population('o', 4, CubaLIF(4095, 4095, 100), depth=1)),\n"
        "             (Projection('w', 'in', 'o', [0, 4], [0, 1, 2, 3], np.full(4, 2, np.int16)),), None, 10)\n"
        "r = simulate(g, {'in': np.ones((1, 10, 1), np.uint8)})\n"
        "print(c.STALE_REMOVED, int(r.spikes['o'].sum()))\n")

    run_probe = lambda: _run_probe(tmp_path, env)  # noqa: E731

    assert run_probe()[1] == 0                # weight 2 never lifts v above 64·100
    assert run_probe() == (0, 0)              # warm cache, same sources: nothing removed
    cuba = copy / "sim" / "neurons" / "cuba.py"
    src = cuba.read_text()
    old = "spiked = vn > (np.int64(vth) << VTH_SHIFT)"
    assert src.count(old) == 1
    cuba.write_text(src.replace(old, "spiked = vn >= 0"))
    removed, spikes = run_probe()
    assert removed > 0 and spikes == 4 * 10


def test_editing_a_neuron_step_reaches_the_fused_lif_kernels_despite_numba_cache(tmp_path):
    """spikeformer/layers/lif_cpu.py's cached kernels compile sim's CUBA step in, and their cache lives beside
    lif_cpu.py (outside sim's folders). In a copy of sim and spikeformer: run ``forward_loihi`` on zero input (warm
    cache), then edit the step in cuba.py alone (v ← 2²³−1, every neuron fires every tick): a fresh process must run
    the edited step (``sim.system.numba_cache.drop_stale_module``)."""
    copy = tmp_path / "install"
    for pkg in ("sim", "spikeformer"):
        shutil.copytree(REPO / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(copy)
    (tmp_path / "probe.py").write_text(
        "import numpy as np, spikeformer.layers.lif_cpu as k\n"
        "a = np.zeros((1, 5, 3), np.float32)\n"
        "s, v, inside = np.empty_like(a), np.empty(a.shape, np.int32), np.empty(a.shape, np.bool_)\n"
        "k.forward_loihi(a, 100, 100, 10, s, v, inside)\n"
        "print(k.STALE_REMOVED, int(s.sum()))\n")

    run_probe = lambda: _run_probe(tmp_path, env)  # noqa: E731

    assert run_probe()[1] == 0                # no input, no spike
    assert run_probe() == (0, 0)              # warm cache, same sources: nothing removed
    assert list((copy / "spikeformer" / "layers" / "__pycache__").glob("lif_cpu.forward_loihi-*.nbi"))
    cuba = copy / "sim" / "neurons" / "cuba.py"
    src = cuba.read_text()
    old = "    vn = _decay(v, DECAY_UNITY - (dv + DM_OFFSET)) + un\n"
    assert src.count(old) == 1
    cuba.write_text(src.replace(old, "    vn = np.int64(UV_MAX - 1) + 0 * un\n"))
    removed, spikes = run_probe()
    assert spikes == 1 * 5 * 3 and removed > 0
