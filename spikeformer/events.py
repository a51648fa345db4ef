"""DVS-like event streams: a seeded generator of moving-object recordings and their token encoder.

Sensor model (per sample, ``size``×``size`` pixels, pixel centres at integer (x, y), y down).
One bright object on a uniform background of intensity 1::

    I(x, y, s) = 1 + A · shape(x, y, s),   s = t / duration ∈ [0, 1],   L = log I

``shape`` is a Gaussian-profile bar (centre c(s), axis angle θ(s), length ℓ, width w)
``exp(−(across² + max(|along| − ℓ/2, 0)²) / 2w²)`` or a ring of radius r(s)
``exp(−(|p − c| − r(s))² / 2w²)``; c, θ and r move linearly in s. Each pixel keeps a
reference level L_ref (random phase at t = 0) and a contrast threshold
C_px = C·clip(1 + 0.1·N(0, 1), 0.5, 1.5). Sampling L every ``STEP_US``, a pixel emits
n = trunc((L − L_ref) / C_px) events, ON (p = 1) if n > 0, OFF (p = 0) if n < 0, at the
times L crossed L_ref ± k·C_px (linear interpolation in the step), then L_ref += n·C_px.
Background activity adds Poisson noise events (``noise_hz`` per pixel, random polarity,
uniform times); every timestamp gets Gaussian jitter (σ = ``jitter_us``), is clipped to
[0, duration) and the stream is sorted by t.

Classes (random start, speed, size, contrast A ∈ [1, 3] per sample):
right/left/down/up — a bar across the motion (tilt ±30°) travelling 5–9 px;
cw/ccw — a bar (ℓ 8–14 px) turning 60°–150° about a pivot near the centre, cw meaning
θ increasing with y pointing down (clockwise as displayed);
expand/contract — a ring whose radius grows / shrinks by 3–5 px.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from spikeformer.data import Split

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<u4"), ("p", "u1")])
CLASSES = ("right", "left", "down", "up", "cw", "ccw", "expand", "contract")
SENSOR_SIZE = 16
DURATION_US = 80_000
STEP_US = 500
CHUNK = 1024                   # samples rendered together (bounds memory)
SPLIT_SEED = 0
SPLIT_PER_CLASS = 195          # 8 · 195 = 1,560 streams → 1,200 train / 360 test
SPLIT_TEST = 360


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _object_params(label: str, rng: np.random.Generator, size: int) -> tuple:
    """(ring?, c0, c1, θ0, θ1, r0, r1, length, width, amplitude) for one sample of class ``label``."""
    mid = (size - 1) / 2
    width, amp = rng.uniform(0.7, 1.2), rng.uniform(1.0, 3.0)
    if label in ("right", "left", "down", "up"):
        phi = {"right": 0.0, "left": np.pi, "down": np.pi / 2, "up": -np.pi / 2}[label]
        direction = np.array([np.cos(phi), np.sin(phi)])
        travel = rng.uniform(5, 9) * direction + rng.uniform(-1.5, 1.5) * direction[::-1]
        c0 = mid - travel / 2 + rng.uniform(-3, 3, 2)
        theta = phi + np.pi / 2 + rng.uniform(-np.pi / 6, np.pi / 6)
        return False, c0, c0 + travel, theta, theta, 0.0, 0.0, rng.uniform(3, 10), width, amp
    c = mid + rng.uniform(-2, 2, 2)
    if label in ("cw", "ccw"):
        th0, turn = rng.uniform(0, np.pi), rng.uniform(np.pi / 3, 5 * np.pi / 6)
        return False, c, c, th0, th0 + (turn if label == "cw" else -turn), 0.0, 0.0, rng.uniform(8, 14), width, amp
    r_small, grow = rng.uniform(1.5, 3), rng.uniform(3, 5)
    r0, r1 = (r_small, r_small + grow) if label == "expand" else (r_small + grow, r_small)
    return True, c, c, 0.0, 0.0, r0, r1, 0.0, width, amp


def _log_intensity(obj: dict, s: float, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """L = log(1 + A·shape) at time fraction s for every sample: (n, size, size)."""
    col = lambda a: a[:, None, None]                                           # noqa: E731
    cx, cy = (obj["c0"] + s * (obj["c1"] - obj["c0"])).T
    dx, dy = px - col(cx), py - col(cy)
    th = col(obj["th0"] + s * (obj["th1"] - obj["th0"]))
    along, across = dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)
    bar = across ** 2 + np.maximum(np.abs(along) - col(obj["length"]) / 2, 0) ** 2
    ring = (np.hypot(dx, dy) - col(obj["r0"] + s * (obj["r1"] - obj["r0"]))) ** 2
    d2 = np.where(col(obj["ring"]), ring, bar)
    return np.log1p(col(obj["amp"]) * np.exp(-d2 / (2 * col(obj["width"]) ** 2)))


def _streams(obj: dict, rng: np.random.Generator, size: int, duration_us: int,
             contrast: float, noise_hz: float, jitter_us: float) -> np.ndarray:
    """Every sample's sorted structured event array (see module docstring), as an object array."""
    n_samples = len(obj["amp"])
    py, px = np.mgrid[0:size, 0:size].astype(np.float64)
    c_px = contrast * np.clip(1 + 0.1 * rng.standard_normal((n_samples, size, size)), 0.5, 1.5)
    level = _log_intensity(obj, 0.0, px, py)
    ref = level + rng.uniform(-0.5, 0.5, level.shape) * c_px
    parts = []                                                      # (sample, x, y, t, p) per step
    for t_prev in range(0, duration_us, STEP_US):
        t_now = min(t_prev + STEP_US, duration_us)
        new = _log_intensity(obj, t_now / duration_us, px, py)
        n = np.trunc((new - ref) / c_px).astype(np.int64)
        idx = np.nonzero(n)
        k = np.abs(n[idx])
        i, yy, xx = (np.repeat(a, k) for a in idx)
        j = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 1              # 1…|n| per pixel
        sign = np.sign(n[i, yy, xx])
        crossing = ref[i, yy, xx] + sign * j * c_px[i, yy, xx]
        frac = np.clip((crossing - level[i, yy, xx]) / (new[i, yy, xx] - level[i, yy, xx]), 0, 1)
        parts.append((i, xx, yy, t_prev + frac * (t_now - t_prev), sign > 0))
        ref, level = ref + n * c_px, new
    n_noise = rng.poisson(noise_hz * size * size * duration_us * 1e-6, n_samples)
    total = int(n_noise.sum())
    parts.append((np.repeat(np.arange(n_samples), n_noise), rng.integers(0, size, total),
                  rng.integers(0, size, total), rng.uniform(0, duration_us, total), rng.integers(0, 2, total)))
    i, x, y, t, p = (np.concatenate(a) for a in zip(*parts))
    t = np.clip(np.round(t + jitter_us * rng.standard_normal(len(t))), 0, duration_us - 1)
    order = np.lexsort((t, i))                                      # by sample, then time (stable)
    ev = np.empty(len(t), EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x[order], y[order], t[order], p[order]
    ev.flags.writeable = False
    out = np.empty(n_samples, dtype=object)
    for k, part in enumerate(np.split(ev, np.cumsum(np.bincount(i, minlength=n_samples))[:-1])):
        out[k] = part
    return out


def generate_events(n_per_class: int, seed: int, size: int = SENSOR_SIZE, duration_us: int = DURATION_US,
                    classes: Sequence[str] = CLASSES, contrast: float = 0.15, noise_hz: float = 5.0,
                    jitter_us: float = 500.0) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` streams of each class: (object array of EVENT_DTYPE arrays, labels int64).

    Label i means ``classes[i]``; samples come class by class. Same arguments → same streams.
    """
    n_per_class, size = _positive_int("n_per_class", n_per_class), _positive_int("size", size)
    duration_us = _positive_int("duration_us", duration_us)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if size < 8 or size > 65535:
        raise ValueError(f"size must be in [8, 65535] pixels, got {size}")
    if duration_us < STEP_US or duration_us >= 2 ** 32:
        raise ValueError(f"duration_us must be in [{STEP_US}, 2**32) µs, got {duration_us}")
    classes = tuple(classes)
    bad = [c for c in classes if c not in CLASSES]
    if not classes or bad or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {CLASSES}, got {classes!r}")
    if not 0 < contrast < 10:
        raise ValueError(f"contrast must be in (0, 10) (log-intensity units), got {contrast!r}")
    if not 0 <= noise_hz < 1e6:
        raise ValueError(f"noise_hz must be in [0, 1e6) events per pixel per second, got {noise_hz!r}")
    if not 0 <= jitter_us < duration_us:
        raise ValueError(f"jitter_us must be in [0, duration_us={duration_us}), got {jitter_us!r}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    params = [_object_params(classes[label], rng, size) for label in labels]
    obj = {k: np.array(v) for k, v in zip(("ring", "c0", "c1", "th0", "th1", "r0", "r1", "length", "width", "amp"),
                                           zip(*params))}
    chunks = [_streams({k: v[a:a + CHUNK] for k, v in obj.items()}, rng, size, duration_us, contrast, noise_hz,
                       jitter_us) for a in range(0, len(labels), CHUNK)]
    return np.concatenate(chunks), labels


@lru_cache(maxsize=1)
def _split_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    streams, labels = generate_events(SPLIT_PER_CLASS, SPLIT_SEED)
    return tuple(train_test_split(streams, labels, test_size=SPLIT_TEST, stratify=labels, random_state=SPLIT_SEED))


def load_events_split() -> Split:
    """The fixed split: ``generate_events(195, seed=0)`` (8 classes, 16×16 sensor, 80 ms) →
    1,200 train / 360 test (45 per class), stratified, ``random_state=0``.

    x_train / x_test are object arrays of read-only event arrays (generated once per process).
    """
    x_tr, x_te, y_tr, y_te = _split_arrays()
    return Split(x_tr.copy(), y_tr.copy(), x_te.copy(), y_te.copy())


def patch_grid(tokens: int, size: int = SENSOR_SIZE, name: str = "tokens") -> int:
    """Side g of the g×g patch grid for ``tokens`` = g²; g must divide ``size``. Errors name ``name``."""
    g = int(round(np.sqrt(tokens))) if isinstance(tokens, (int, np.integer)) and tokens > 0 else 0
    if g * g != tokens or size % g:
        valid = [d * d for d in range(1, size + 1) if size % d == 0]
        raise ValueError(f"{name} ({tokens!r}) must be one of {valid} for the events dataset: "
                         f"g×g square patches of the {size}×{size} sensor")
    return g


def token_features(tokens: int, size: int = SENSOR_SIZE, name: str = "config.tokens") -> int:
    """F = 2·(size/g)² + tokens: every pixel of a patch × 2 polarities, then the one-hot position."""
    return 2 * (size // patch_grid(tokens, size, name)) ** 2 + tokens


def check_model_config(tokens: int, features: int, encoder: str) -> None:
    """Errors for a ModelConfig with dataset='events' whose tokens/features/encoder do not fit."""
    if encoder != "thermometer":
        raise ValueError(f"config.encoder must stay 'thermometer' (unused) for the events dataset, got {encoder!r}")
    if features != token_features(tokens):
        raise ValueError(f"config.features ({features}) must equal 2·(16/√tokens)² + tokens = "
                         f"{token_features(tokens)} for the events dataset with tokens={tokens}")


def encode_events(streams: Sequence[np.ndarray], timesteps: int, tokens: int, size: int = SENSOR_SIZE,
                  duration_us: int = DURATION_US) -> np.ndarray:
    """Spikes (n, T, N, F) bool from event streams.

    Tick k covers t ∈ [k·duration/T, (k+1)·duration/T): an event goes to tick ⌊t·T/duration⌋.
    Tokens are the N = g² square patches (side P = size/g) in row-major order: token
    (y // P)·g + x // P. Feature 2·((y mod P)·P + x mod P) + p fires at tick k if at least one
    event of polarity p fell on that pixel in that tick; features 2P² + n (n < N) are the
    token's one-hot position, on every tick. F = 2P² + N.
    """
    timesteps = _positive_int("timesteps", timesteps)
    size = _positive_int("size", size)
    duration_us = _positive_int("duration_us", duration_us)
    g = patch_grid(tokens, size)
    side = size // g
    out = np.zeros((len(streams), timesteps, tokens, 2 * side * side + tokens), bool)
    out[:, :, np.arange(tokens), 2 * side * side + np.arange(tokens)] = True
    for i, ev in enumerate(streams):
        if not isinstance(ev, np.ndarray) or ev.dtype != EVENT_DTYPE:
            raise ValueError(f"streams[{i}]: expected a structured array of EVENT_DTYPE, got "
                             f"{getattr(ev, 'dtype', type(ev).__name__)}")
        x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
        if len(ev) and (x.max() >= size or y.max() >= size or t.max() >= duration_us or ev["p"].max() > 1):
            raise ValueError(f"streams[{i}]: events outside the {size}×{size} sensor, t ≥ duration_us="
                             f"{duration_us} or p > 1")
        feature = 2 * ((y % side) * side + x % side) + ev["p"]
        out[i, t * timesteps // duration_us, (y // side) * g + x // side, feature] = True
    return out
