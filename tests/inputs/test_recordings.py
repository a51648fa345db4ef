"""Users' event recordings (tonic-style arrays in .npz / .h5 / a directory, AEDAT4) and dense spike files:
read back, encoded, trained on end to end (convert, simulate, Lava), and bad files as one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_user_error, run

from spikeformer.configure import presets
from spikeformer.data.event_datasets import encode_events
from spikeformer.data.event_generator import DURATION_US, generate_events
from spikeformer.data.files import DataFileError
from spikeformer.data.registry import load_dataset
from spikeformer.data.sets.recordings import INDEX, TONIC_DTYPE, read_recordings, save_recordings
from spikeformer.encode.recordings import encode_recordings, token_features

CLASSES = ("right", "left", "expand")


def write_aedat4(path: Path, ev: np.ndarray, size: tuple[int, int], t0: int = 1_700_000_000_000_000) -> Path:
    """An AEDAT4 file of the events (timestamps offset by t0 µs, as a camera's are), written by dv-processing."""
    import dv_processing as dv

    store = dv.EventStore()
    for x, y, t, p in zip(ev["x"], ev["y"], ev["t"], ev["p"]):
        store.push_back(int(t) + t0, int(x), int(y), bool(p))
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("test-camera", size))
    writer.writeEvents(store)
    del writer                                   # flushes and closes the file
    return path


@pytest.fixture(scope="module")
def streams():
    return generate_events(4, seed=3, classes=CLASSES)             # 12 streams on the 16×16 sensor


def shifted(evs):
    """The generator's streams with time from each stream's first event (how recordings are read)."""
    out = []
    for e in evs:
        e = e.copy()
        e["t"] -= e["t"].min()
        out.append(e)
    return out


@pytest.mark.parametrize("container", ["recs.npz", "recs.h5", "recs"])
def test_generator_streams_saved_as_user_files_read_back_and_encode_like_the_events_encoder(tmp_path, streams,
                                                                                         container):
    evs, labels = streams
    path = save_recordings(tmp_path / container, evs, labels, (16, 16), is_test=np.arange(12) % 4 == 0,
                           duration_us=DURATION_US)
    rec = read_recordings(path)
    assert (rec.width, rec.height, rec.duration_us) == (16, 16, DURATION_US) and (rec.labels == labels).all()
    assert rec.is_test.tolist() == (np.arange(12) % 4 == 0).tolist()
    for got, want in zip(rec.streams, shifted(evs)):
        assert got.dtype == TONIC_DTYPE
        for f in "xytp":
            assert (got[f] == want[f]).all()
    np.testing.assert_array_equal(encode_recordings(rec.streams, 8, 16, 16, 16, DURATION_US),
                                  encode_events(shifted(evs), 8, 16))
    m, _ = presets.configs_from_dict({"model": {"dataset": "recordings", "data_path": str(path)}}, "test")
    assert (m.arch.tokens, m.arch.features, m.arch.classes) == (64, 2 * 2 * 2 + 64, 3)     # default: ≤ 64 tokens (2×2 patches)
    s = load_dataset(m)
    assert (s.y_test == labels[::4]).all() and len(s.y_train) == 9


def test_patches_on_a_sensor_they_do_not_divide():
    ev = np.zeros(3, TONIC_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 9, 4], [0, 6, 3], [0, 5, 9], [True, False, True]
    assert token_features(6, 10, 7) == 2 * 4 * 4 + 6                        # P = 4: a 3×2 grid of ⌈10/4⌉·⌈7/4⌉
    x = encode_recordings([ev], 2, 6, 10, 7, 10)
    assert x[0, 1, 1 * 3 + 2, 2 * ((6 % 4) * 4 + 9 % 4) + 0]                 # (9, 6) at t=5: token 5, tick 1
    assert x[0, 1, 0 * 3 + 1, 2 * (3 * 4 + 0) + 1]                          # (4, 3) at t=9: token 1, tick 1
    assert x[0, 0, 0, 1] and x[:, :, :, :32].sum() == 3


def test_aedat4_recordings_train_convert_simulate_and_match_lava(tmp_path, streams):
    evs, labels = streams
    data = tmp_path / "recordings"
    data.mkdir()
    names = [f"rec{i:02d}.aedat4" for i in range(len(evs))]
    for n, e in zip(names, evs):
        write_aedat4(data / n, e, (16, 16))
    (data / INDEX).write_text(json.dumps({"sensor_size": [16, 16], "labels": dict(zip(names, map(int, labels))),
                                          "test": names[::3], "duration_us": DURATION_US}))
    rec = read_recordings(data)
    for got, want in zip(rec.streams, shifted(evs)):                # AEDAT4 keeps every event, p included
        assert all((got[f] == want[f]).all() for f in "xytp")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"dataset": "recordings", "data_path": "recordings", "tokens": 16,
                                         "dim": 16, "heads": 2, "timesteps": 4, "init_gain": 2.0},
                               "train": {"epochs": 2, "batch_size": 4, "lr": 1.0}}))
    out = tmp_path / "run"
    p = run("train", "--config", str(cfg), "--out", str(out), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads((out / "config.json").read_text())["model"]["data"]["data_path"] == str(data.resolve())
    assert json.loads((out / "split.json").read_text())["test"] == 4
    assert run("convert", str(out)).returncode == 0
    sim = json.loads(run("simulate", str(out), "--json").stdout)
    assert sim["samples"] == 4 and sim["agreement_with_model"] == 1.0 and sim["spikes_per_inference"] > 0
    p = run("export", "lava", str(out), "--samples", "2", "--json")
    assert p.returncode == 0, p.stderr
    lava = json.loads(p.stdout)
    assert lava["identical_to_simulator"] and lava["mismatched_spikes"] == 0 and lava["samples"] == 2


def _npz(path: Path, evs, ys, **over) -> Path:
    save_recordings(path, evs, ys, (16, 16))
    with np.load(path) as z:
        a = {k: z[k] for k in z.files}
    a.update(over)
    for k in [k for k, v in over.items() if v is None]:
        del a[k]
    np.savez(path, **a)
    return path


def test_bad_files_are_errors_naming_the_file_and_the_field(tmp_path, streams):
    evs, labels = streams
    cases = []
    floats = np.zeros(len(np.concatenate(evs)), [("x", "<f4"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
    cases.append((_npz(tmp_path / "dtype.npz", evs, labels, events=floats), "field 'x': dtype float32"))
    cases.append((_npz(tmp_path / "nolabels.npz", evs, labels, labels=None), "field 'labels': missing"))
    outside = shifted(evs)
    outside[2]["x"][5] = 16
    cases.append((save_recordings(tmp_path / "outside.h5", outside, labels, (16, 16)),
                  "field 'x': event at x = 16 outside the 16×16 sensor"))
    empty = list(evs)
    empty[1] = evs[1][:0]
    cases.append((save_recordings(tmp_path / "empty.npz", empty, labels, (16, 16)),
                  "field 'events (recording 1)': empty recording"))
    unlabelled = save_recordings(tmp_path / "unlabelled", evs, labels, (16, 16))
    np.save(unlabelled / "extra.npy", shifted(evs)[0].astype(TONIC_DTYPE))
    cases.append((unlabelled, f"{INDEX}: field 'labels': no label for recording 'extra.npy'"))
    for path, needle in cases:
        with pytest.raises(DataFileError) as e:
            read_recordings(path)
        assert str(e.value).startswith(str(path)) and needle in str(e.value), (needle, str(e.value))
    truncated = tmp_path / "truncated"                              # through the CLI: one line, exit code 2
    truncated.mkdir()
    whole = write_aedat4(tmp_path / "whole.aedat4", evs[0], (16, 16)).read_bytes()
    (truncated / "a.aedat4").write_bytes(whole[:len(whole) // 2])
    (truncated / INDEX).write_text(json.dumps({"sensor_size": [16, 16], "labels": {"a.aedat4": 0}}))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"dataset": "recordings", "data_path": str(truncated)}}))
    assert_user_error(run("train", "--config", str(cfg), "--out", str(tmp_path / "r")),
                      str(truncated / "a.aedat4"), "not a readable AEDAT4 file")
    cfg.write_text(json.dumps({"model": {"dataset": "recordings", "data_path": str(cases[0][0])}}))
    assert_user_error(run("train", "--config", str(cfg), "--out", str(tmp_path / "r")),
                      str(cases[0][0]), "field 'x'")
    assert not (tmp_path / "r").exists()


def test_dense_spike_files_and_their_errors(tmp_path):
    from spikeformer.data.sets.spikes import read_spikes

    rng = np.random.default_rng(0)
    x, y = rng.random((30, 3, 2, 5)) < 0.3, np.arange(30) % 3
    np.savez(tmp_path / "s.npz", spikes=x.astype(np.uint8), labels=y)
    m, _ = presets.configs_from_dict({"model": {"dataset": "spikes", "data_path": str(tmp_path / "s.npz"),
                                                "dim": 8, "heads": 2}}, "test")
    assert (m.arch.timesteps, m.arch.tokens, m.arch.features, m.arch.classes) == (3, 2, 5, 3)
    s = load_dataset(m)
    assert len(s.y_test) == 6 and s.x_test.dtype == bool
    np.savez(tmp_path / "bad.npz", spikes=x[..., 0], labels=y)
    with pytest.raises(DataFileError, match=r"bad.npz: field 'spikes': expected \(n, T, tokens, features\)"):
        read_spikes(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", spikes=x, labels=y[:-1])
    with pytest.raises(DataFileError, match=r"short.npz: field 'labels': 29 labels for 30 samples"):
        read_spikes(tmp_path / "short.npz")
    with pytest.raises(ValueError, match=r"config.timesteps \(4\) must equal 3"):
        load_dataset(m.replace(timesteps=4))
