"""Bad inputs and faults through every command: one line ``error: …``, nothing overwritten, nothing left running.

Most checks call the CLI in this process (``cli``: the same ``main`` the console script
runs, without the seconds of a fresh interpreter); the signal tests use real processes.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import psutil
import pytest
import torch
from test_cli import BIN, assert_user_error


def cli(*args: str) -> subprocess.CompletedProcess:
    """``spikeformer ARGS`` in this process: exit code, stdout and stderr."""
    from spikeformer.app.cli import main
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (or of ``root`` itself if it is a file)."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root) if p != root else p.name): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(tiny_run, d)
    return d


# -- one config validator ---------------------------------------------------------------------------

CONFIG_DEFECTS = [
    # (what, change to {"model", "train"}, the error every command gives)
    ("unknown section", lambda c: c.update(notes="mine"), "unknown section 'notes'"),
    ("unknown key", lambda c: c["train"].update(epoch=3), "unknown key 'train.epoch'"),
    ("bool as int", lambda c: c["model"]["arch"].update(timesteps=True), "config.timesteps must be an integer, got True"),
    ("NaN float", lambda c: c["train"].update(lr=float("nan")), "train.lr must be a finite number, got nan"),
    ("missing model", lambda c: c.pop("model"), "missing section 'model'"),
]


@pytest.mark.parametrize("what, change, message", CONFIG_DEFECTS, ids=[d[0] for d in CONFIG_DEFECTS])
def test_config_defect_is_refused_the_same_way_by_every_command(run_copy, tmp_path, what, change, message):
    cfg = json.loads((run_copy / "config.json").read_text())
    change(cfg)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    (run_copy / "config.json").write_text(json.dumps(cfg))
    before = digests(tmp_path)
    p = cli("train", "--config", str(bad), "--out", str(tmp_path / "new"))
    assert_user_error(p, f"{bad}: {message}")
    for args in (["convert"], ["simulate"], ["export", "lava"]):
        assert_user_error(cli(*args, str(run_copy)), f"{run_copy / 'config.json'}: {message}")
    assert digests(tmp_path) == before and not (tmp_path / "new").exists()


def test_unknown_section_refused_by_convert_as_a_real_process(run_copy):
    cfg = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**cfg, "notes": "mine"}))
    p = subprocess.run([str(BIN), "convert", str(run_copy)], capture_output=True, text=True, timeout=300)
    assert_user_error(p, "config.json: unknown section 'notes'")


# -- train --out ------------------------------------------------------------------------------------

def test_train_out_never_overwrites_another_run(run_copy, tmp_path):
    # a converted run without train_state.pt (copied or converted elsewhere): its files stay as they are
    (run_copy / "train_state.pt").unlink()
    before = digests(run_copy)
    assert_user_error(cli("train", "--preset", "tiny", "--epochs", "1", "--out", str(run_copy)),
                      f"--out {run_copy}", "graph.aer.npz", "model.pt", "refusing to overwrite")
    assert digests(run_copy) == before
    # a directory of something else entirely
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert_user_error(cli("train", "--preset", "tiny", "--out", str(other)), "notes.txt")
    assert (other / "notes.txt").read_text() == "mine" and len(list(other.iterdir())) == 1
    # an existing file
    f = tmp_path / "file"
    f.write_text("mine")
    assert_user_error(cli("train", "--preset", "tiny", "--out", str(f)), f"--out {f}", "existing file")
    assert f.read_text() == "mine"
    # below an existing file
    assert_user_error(cli("train", "--preset", "tiny", "--out", str(f / "run")), f"--out {f / 'run'}")


def test_train_out_accepts_its_own_state_and_refuses_outputs_beside_an_unfinished_one(tiny_run, tmp_path):
    # tiny_run is `--preset tiny`, finished and converted: resuming it changes no weights
    done = tmp_path / "done"
    shutil.copytree(tiny_run, done)
    (done / "model.pt8k2j.tmp").write_bytes(b"half")              # an interrupted write's leftover: removed
    before = digests(done)
    p = cli("train", "--preset", "tiny", "--out", str(done), "--json")
    assert p.returncode == 0, p.stderr
    after = digests(done)
    assert "model.pt8k2j.tmp" not in after
    assert {k: v for k, v in after.items() if k != "metrics.json"} == \
        {k: v for k, v in before.items() if k not in ("metrics.json", "model.pt8k2j.tmp")}
    # the same files with the checkpoint at epoch 1 of 3: training on would leave graph.aer.npz stale
    half = tmp_path / "half"
    shutil.copytree(tiny_run, half)
    st = torch.load(half / "train_state.pt", weights_only=True)
    torch.save({**st, "epoch": 1}, half / "train_state.pt")
    before = digests(half)
    assert_user_error(cli("train", "--preset", "tiny", "--out", str(half)), "graph.aer.npz")
    assert digests(half) == before
    # a run stopped before its first checkpoint (config.json, split.json only): its own config resumes,
    # another config is refused
    started = tmp_path / "started"
    started.mkdir()
    cfg = json.loads((tiny_run / "config.json").read_text())
    (started / "config.json").write_text(json.dumps({**cfg, "train": {**cfg["train"], "epochs": 4}}))
    before_started = digests(started)
    assert_user_error(cli("train", "--preset", "tiny", "--out", str(started)), f"--out {started}", "(config.json)")
    assert digests(started) == before_started
    # another config over a resumable run
    assert_user_error(cli("train", "--preset", "tiny", "--epochs", "4", "--out", str(half)),
                      "config.json", "differs from the requested config")
    assert digests(half) == before


# -- numeric options --------------------------------------------------------------------------------

def _numeric_cases(run: str, out: str) -> list[tuple[list[str], str]]:
    return [
        (["train", "--preset", "tiny", "--out", out, "--epochs", "0"], "--epochs"),
        (["train", "--preset", "tiny", "--out", out, "--batch-size", "-1"], "--batch-size"),
        (["train", "--preset", "tiny", "--out", out, "--steps-per-epoch", "0"], "--steps-per-epoch"),
        (["train", "--preset", "tiny", "--out", out, "--epochs", str(1 << 40)], "--epochs"),
        (["train", "--preset", "tiny", "--out", out, "--epochs", "2.5"], "'--epochs'"),
        (["simulate", run, "--samples", "0"], "--samples"),
        (["simulate", run, "--shards", "0"], "--shards"),
        (["simulate", run, "--shards", "-2"], "--shards"),
        (["simulate", run, "--samples", "many"], "'--samples'"),
        (["export", "lava", run, "--samples", "-3"], "--samples"),
        (["export", "lava", run, "--timeout", "nan"], "--timeout"),
        (["export", "lava", run, "--timeout", "inf"], "--timeout"),
        (["export", "lava", run, "--timeout", "0"], "--timeout"),
        (["export", "lava", run, "--timeout", "-5"], "--timeout"),
        (["report", run, "--chips", "0"], "--chips"),
        (["report", run, "--cores-per-chip", "0"], "--cores-per-chip"),
        (["demo", "--out", out, "--lava-samples", "0"], "--lava-samples"),
        (["sweep", "--dims", "64", "--active-bits", "0", "--out", out], "--active-bits"),
        (["sweep", "--dims", "64", "--active-bits", "8", "--out", out, "--epochs", "0"], "--epochs"),
        (["sweep", "--dims", "64", "--active-bits", "8", "--out", out, "--samples", "0"], "--samples"),
        (["sweep", "--dims", "64", "--active-bits", "8", "--out", out, "--threads", "0"], "--threads"),
        (["import", "nir", "model.nir", "--out", out, "--timesteps", "0"], "--timesteps"),
        (["import", "nir", "model.nir", "--out", out, "--dt", "nan"], "--dt"),
        (["import", "nir", "model.nir", "--out", out, "--dt", "-1e-4"], "--dt"),
        (["simulate", run, "--bogus", "1"], "--bogus"),
    ]


def test_every_numeric_option_is_checked_before_any_work(tmp_path, monkeypatch):
    """Checked first: before the run directory is read (it does not exist here) and before any training."""
    import spikeformer.experiments.sweep.hd
    import spikeformer.train.trainer

    def no_work(*a, **kw):
        raise AssertionError("work started before the options were checked")
    monkeypatch.setattr(spikeformer.train.trainer, "train", no_work)
    monkeypatch.setattr(spikeformer.experiments.sweep.hd, "sweep", no_work)
    out = tmp_path / "out"
    for args, option in _numeric_cases(str(tmp_path / "no-run"), str(out)):
        assert_user_error(cli(*args), option)
        assert not out.exists(), args


def test_in_range_values_pass_the_checks():
    from spikeformer.app.options import COUNT_MAX, check_count, check_seconds
    for v in (None, 1, 7, COUNT_MAX):
        check_count("--n", v)
    check_count("--n", 0, lo=0)
    for v in (None, 1e-3, 1, 600.0):
        check_seconds("--t", v)
    for bad in (0, -1, COUNT_MAX + 1, True, 2.0):
        with pytest.raises(ValueError, match=r"^--n must be an integer in \[1, 2147483647\]"):
            check_count("--n", bad)
    with pytest.raises(ValueError, match=r"\[2, 5\], got 6"):
        check_count("--n", 6, lo=2, hi=5)
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="^--t must be a finite number of seconds > 0"):
            check_seconds("--t", bad)


# -- signals ----------------------------------------------------------------------------------------

def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (same pid and start time, not a zombie)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _ours(procs: list[psutil.Process]) -> tuple[set[str], set[Path]]:
    """The /dev/shm segments mapped by ``procs`` and the Lava work directories named in their command lines
    (other runs on the machine may create their own meanwhile: only these are checked)."""
    shm, dirs = set(), set()
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/maps") as f:
                shm |= {line.split("/dev/shm/", 1)[1].strip() for line in f if "/dev/shm/" in line}
            dirs |= {Path(a).parent for a in p.cmdline() if "spikeformer-lava-" in a and a.endswith("weights")}
        except (OSError, psutil.Error):
            pass
    return shm, dirs


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_signal_during_lava_run_leaves_nothing_behind(run_copy, sig):
    """SIGTERM / SIGHUP: the CLI cleans up, then one line and 128 + the signal number; SIGKILL: the
    worker sees its parent die and cleans up itself. Processes, shared memory and files compared before/after."""
    files_before = digests(run_copy)
    proc = subprocess.Popen([str(BIN), "export", "lava", str(run_copy), "--samples", "360", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))   # (nohup ignores it)
    seen: list[psutil.Process] = []
    shm: set[str] = set()
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        seen += [p for p in _tree(proc.pid) if p not in seen]
        shm, dirs = _ours(_alive(seen))
        if len(seen) > 5 and shm and dirs:          # Lava's processes forked and talking over shared memory
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the Lava run ended before it could be interrupted"
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, (proc.returncode, err)
        assert err.strip().splitlines() == [f"error: interrupted by {sig.name}"], err
        assert out == ""
    # SIGTERM / SIGHUP: cleaned up before the CLI exits (the killed Lava processes take a moment to go);
    # SIGKILL: the worker's own cleanup, asynchronous
    deadline = time.monotonic() + (30 if sig == signal.SIGKILL else 3)      # (the worker cleans up under load too)
    left = lambda: (_alive(seen), shm & set(os.listdir("/dev/shm")), {d for d in dirs if d.exists()})  # noqa: E731
    while time.monotonic() < deadline and any(left()):
        time.sleep(0.1)
    assert len(seen) > 5 and shm and dirs
    assert left() == ([], set(), set())
    assert digests(run_copy) == files_before        # no lava.json, nothing rewritten


def test_deferred_interrupts_hold_the_signal_until_the_block_ends():
    from sim.system.signals import Interrupted, deferred_interrupts, interrupts_as_exceptions
    done = []
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)   # (an earlier test's library may have replaced it)
    sighup = signal.signal(signal.SIGHUP, signal.SIG_DFL)               # (ignored under nohup)
    with interrupts_as_exceptions():
        with pytest.raises(Interrupted) as e:
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGHUP)
                done.append("after the signal")
        assert e.value.signum == signal.SIGHUP and done == ["after the signal"]
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("again")
    signal.signal(signal.SIGINT, sigint)
    assert done[-1] == "again"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    signal.signal(signal.SIGHUP, sighup)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)       # nohup: stays ignored
    try:
        with interrupts_as_exceptions():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)
