"""DVS-like event streams: two seeded generators of moving-object recordings.

Datasets (``event_datasets.EVENT_DATASETS``; ``config.tokens`` selects one, tokens are 4×4-pixel patches):

* 16 tokens: ``generate_events(195, seed=0)``: 16×16 sensor, one bright object, 8 classes,
  1,560 streams → 1,200 train / 360 test.
* 64 tokens: ``generate_cluttered_events(220, seed=0)``: 32×32 sensor, one bright or dark
  object plus distractors, 12 classes, 2,640 streams → 2,400 train / 240 test.

Sensor model (per sample, ``size``×``size`` pixels, pixel centres at integer (x, y), y down,
s = t / duration ∈ [0, 1], L = log I). Each pixel keeps a reference level L_ref (random phase
at t = 0) and a contrast threshold C_px = C·clip(1 + 0.1·N(0, 1), 0.5, 1.5). Sampling L every
``STEP_US`` (``CLUTTER_STEP_US`` for the 64-token scenes), a pixel emits
n = trunc((L − L_ref) / C_px) events, ON (p = 1) if n > 0, OFF (p = 0) if n < 0, at the
times L crossed L_ref ± k·C_px (linear interpolation in the step), then L_ref += n·C_px.
Background activity adds Poisson noise events (``noise_hz`` per pixel, random polarity,
uniform times); every timestamp gets Gaussian jitter (σ = ``jitter_us``), is clipped to
[0, duration) and the stream is sorted by t.

16-token scenes (``generate_events``: C = 0.15, 5 Hz noise, 0.5 ms jitter). One bright object
on a uniform background of intensity 1::

    I(x, y, s) = 1 + A · shape(x, y, s)

``shape`` is a Gaussian-profile bar (centre c(s), axis angle θ(s), length ℓ, width w)
``exp(−(across² + max(|along| − ℓ/2, 0)²) / 2w²)`` or a ring of radius r(s)
``exp(−(|p − c| − r(s))² / 2w²)``; c, θ and r move linearly in s.
Classes (random start, speed, size, contrast A ∈ [1, 3] per sample):
right/left/down/up — a bar across the motion (tilt ±30°) travelling 5–9 px;
cw/ccw — a bar (ℓ 8–14 px) turning 60°–150° about a pivot near the centre, cw meaning
θ increasing with y pointing down (clockwise as displayed);
expand/contract — a ring whose radius grows / shrinks by 3–5 px.

64-token scenes (``generate_cluttered_events``: C = 0.2, 5 Hz noise, 1 ms jitter). The class
object plus ``dots`` moving dots and ``flickers`` flickering blobs, each with a log-contrast
m = σ·|m| (σ = −1, a dark object, with probability ``dark`` = 0.1, else +1)::

    I = max(e⁻³, 1 + (e^m − 1)·shape(x, y, s) + Σ_dots (e^m_d − 1)·g_d(x, y, s)
                   + Σ_flickers (e^(m_f·(1 − cos(2π·f·t + φ))/2) − 1)·g_f(x, y))

shape is the bar or ring above (w ∈ [0.6, 1], |m| ∈ [0.4, 1]); the pivot, ring centre or path
midpoint lies within ±5 px (±6 for translations) of the sensor centre.
Classes: 8 translations right/left/down/up/right-down/left-down/left-up/right-up (direction
φ = 0, π, π/2, −π/2, π/4, 3π/4, −3π/4, −π/4 with y down) — a bar across the motion (tilt ±30°,
ℓ 4–8 px) travelling 8–16 px along φ and ±2 px across it; cw/ccw — a bar (ℓ 8–16 px) turning
60°–150°; expand/contract — a ring whose radius grows / shrinks by 4–8 px from 2–4 px.
A dark object swaps the ON and OFF edges of its motion: within one tick, a dark bar moving
right looks like a bright bar moving left, and only its displacement over ticks tells them apart.
Dot g_d = exp(−|p − c_d(s)|² / 2w_d²): w_d ∈ [0.5, 0.8], |m_d| ∈ [0.25, 0.6], c_d starts
uniform on the sensor and moves 6–20 px in a uniform direction. Blob g_f = exp(−|p − c_f|² / 2w_f²):
c_f uniform, w_f ∈ [1, 2], |m_f| ∈ [0.3, 0.7], f ∈ [15, 40] Hz, φ ∈ [0, 2π). Scenes are rendered
``CLUTTER_CHUNK`` at a time in float32; the per-pixel draws come chunk by chunk, so the chunk
size is part of the dataset's definition.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from spikeformer.encode.patches import EVENT_DTYPE, positive_int

CLASSES = ("right", "left", "down", "up", "cw", "ccw", "expand", "contract")


SENSOR_SIZE = 16


DURATION_US = 80_000


STEP_US = 500


CLUTTER_STEP_US = 1000         # generate_cluttered_events samples L every 1 ms


CHUNK = 1024                   # samples rendered together (bounds memory)


CLUTTER_CHUNK = 64             # the same for generate_cluttered_events (fixed: it orders the random draws)


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


def _streams(log_intensity: Callable[[float], np.ndarray], n_samples: int, rng: np.random.Generator, size: int,
             duration_us: int, contrast: float, noise_hz: float, jitter_us: float,
             step_us: int = STEP_US) -> np.ndarray:
    """Every sample's sorted structured event array (see module docstring), as an object array.

    ``log_intensity(s)``: L at time fraction s for every sample, (n_samples, size, size), sampled
    every ``step_us``."""
    level = log_intensity(0.0)                                      # float64, or float32 for speed
    c_px = (contrast * np.clip(1 + 0.1 * rng.standard_normal((n_samples, size, size)), 0.5, 1.5)).astype(level.dtype)
    ref = (level + rng.uniform(-0.5, 0.5, level.shape) * c_px).astype(level.dtype)
    parts = []                                                      # (sample, x, y, t, p) per step
    for t_prev in range(0, duration_us, step_us):
        t_now = min(t_prev + step_us, duration_us)
        new = log_intensity(t_now / duration_us)
        n = np.trunc((new - ref) / c_px)                            # whole numbers, in L's dtype
        idx = np.nonzero(n)
        k = np.abs(n[idx]).astype(np.int64)
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


def _check_arguments(n_per_class, seed, size, duration_us, classes, allowed, contrast, noise_hz,
                     jitter_us) -> tuple[int, int, int, tuple[str, ...]]:
    """The generators' shared argument checks (errors name the argument); returns the normalised values."""
    n_per_class, size = positive_int("n_per_class", n_per_class), positive_int("size", size)
    duration_us = positive_int("duration_us", duration_us)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if size < 8 or size > 65535:
        raise ValueError(f"size must be in [8, 65535] pixels, got {size}")
    if duration_us < STEP_US or duration_us >= 2 ** 32:
        raise ValueError(f"duration_us must be in [{STEP_US}, 2**32) µs, got {duration_us}")
    classes = tuple(classes)
    bad = [c for c in classes if c not in allowed]
    if not classes or bad or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {allowed}, got {classes!r}")
    if not 0 < contrast < 10:
        raise ValueError(f"contrast must be in (0, 10) (log-intensity units), got {contrast!r}")
    if not 0 <= noise_hz < 1e6:
        raise ValueError(f"noise_hz must be in [0, 1e6) events per pixel per second, got {noise_hz!r}")
    if not 0 <= jitter_us < duration_us:
        raise ValueError(f"jitter_us must be in [0, duration_us={duration_us}), got {jitter_us!r}")
    return n_per_class, size, duration_us, classes


def generate_events(n_per_class: int, seed: int, size: int = SENSOR_SIZE, duration_us: int = DURATION_US,
                    classes: Sequence[str] = CLASSES, contrast: float = 0.15, noise_hz: float = 5.0,
                    jitter_us: float = 500.0) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` streams of each class: (object array of EVENT_DTYPE arrays, labels int64).

    Label i means ``classes[i]``; samples come class by class. Same arguments → same streams.
    """
    n_per_class, size, duration_us, classes = _check_arguments(n_per_class, seed, size, duration_us, classes, CLASSES,
                                                               contrast, noise_hz, jitter_us)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    params = [_object_params(classes[label], rng, size) for label in labels]
    obj = {k: np.array(v) for k, v in zip(("ring", "c0", "c1", "th0", "th1", "r0", "r1", "length", "width", "amp"),
                                           zip(*params))}
    py, px = np.mgrid[0:size, 0:size].astype(np.float64)
    chunks = []
    for a in range(0, len(labels), CHUNK):
        part = {k: v[a:a + CHUNK] for k, v in obj.items()}
        chunks.append(_streams(lambda s, part=part: _log_intensity(part, s, px, py), len(part["amp"]), rng, size,
                               duration_us, contrast, noise_hz, jitter_us))
    return np.concatenate(chunks), labels


DIRECTIONS = {"right": 0.0, "left": np.pi, "down": np.pi / 2, "up": -np.pi / 2, "right-down": np.pi / 4,
              "left-down": 3 * np.pi / 4, "left-up": -3 * np.pi / 4, "right-up": -np.pi / 4}


CLUTTER_CLASSES = (*DIRECTIONS, "cw", "ccw", "expand", "contract")


MAIN_LOG_CONTRAST = (0.4, 1.0)       # |m| of the class object


DOT_LOG_CONTRAST = (0.25, 0.6)       # |m| of a moving-dot distractor


FLICKER_LOG_CONTRAST = (0.3, 0.7)    # |m| of a flickering-blob distractor


FLOOR = np.exp(-3.0)                 # I is clipped below at e⁻³ (overlapping dark objects)


EXP_FLOOR = -30.0                    # Gaussian exponents are clipped below here


def _signed(rng: np.random.Generator, bounds: tuple[float, float], dark: float, n: int | None = None) -> np.ndarray:
    """Log-contrasts σ·|m|: |m| ~ U(bounds), σ = −1 with probability ``dark``."""
    sign = np.where(rng.random(n) < dark, -1.0, 1.0)
    return sign * rng.uniform(*bounds, n)


def _scene_params(label: str, rng: np.random.Generator, size: int, dots: int, flickers: int, dark: float) -> dict:
    """One cluttered scene of class ``label``: the class object plus its distractors (module docstring)."""
    mid = (size - 1) / 2
    m, width = _signed(rng, MAIN_LOG_CONTRAST, dark), rng.uniform(0.6, 1.0)
    if label in DIRECTIONS:
        phi = DIRECTIONS[label]
        along, normal = np.array([np.cos(phi), np.sin(phi)]), np.array([-np.sin(phi), np.cos(phi)])
        travel = rng.uniform(8, 16) * along + rng.uniform(-2, 2) * normal
        c0 = mid + rng.uniform(-6, 6, 2) - travel / 2
        theta = phi + np.pi / 2 + rng.uniform(-np.pi / 6, np.pi / 6)
        main = (False, c0, c0 + travel, theta, theta, 0.0, 0.0, rng.uniform(4, 8), width, m)
    elif label in ("cw", "ccw"):
        c, th0, turn = mid + rng.uniform(-5, 5, 2), rng.uniform(0, np.pi), rng.uniform(np.pi / 3, 5 * np.pi / 6)
        main = (False, c, c, th0, th0 + (turn if label == "cw" else -turn), 0.0, 0.0, rng.uniform(8, 16), width, m)
    else:
        c, r_small, grow = mid + rng.uniform(-5, 5, 2), rng.uniform(2, 4), rng.uniform(4, 8)
        r0, r1 = (r_small, r_small + grow) if label == "expand" else (r_small + grow, r_small)
        main = (True, c, c, 0.0, 0.0, r0, r1, 0.0, width, m)
    out = dict(zip(("ring", "c0", "c1", "th0", "th1", "r0", "r1", "length", "width", "m"), main))
    heading, speed = rng.uniform(-np.pi, np.pi, dots), rng.uniform(6, 20, dots)
    out.update(dot_start=rng.uniform(0, size - 1, (dots, 2)),
               dot_travel=speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1),
               dot_width=rng.uniform(0.5, 0.8, dots), dot_m=_signed(rng, DOT_LOG_CONTRAST, dark, dots),
               flicker_c=rng.uniform(0, size - 1, (flickers, 2)), flicker_width=rng.uniform(1.0, 2.0, flickers),
               flicker_m=_signed(rng, FLICKER_LOG_CONTRAST, dark, flickers),
               flicker_hz=rng.uniform(15, 40, flickers), flicker_phase=rng.uniform(0, 2 * np.pi, flickers))
    return out


def _scene_log_intensity(sc: dict, s: float, axis: np.ndarray, duration_us: int) -> np.ndarray:
    """L = log max(I, e⁻³) at time fraction s for every scene: (n, size, size), I as in the module docstring.

    Every distance is a sum of an x term (n, 1, size) and a y term (n, size, 1), so the full
    (n, size, size) arrays cost a few operations per term."""
    n, size = len(sc["m"]), len(axis)
    shape = np.empty((n, size, size), axis.dtype)
    for sel in (np.flatnonzero(~sc["ring"]), np.flatnonzero(sc["ring"])):
        if not len(sel):
            continue
        cx, cy = (sc["c0"][sel] + s * (sc["c1"][sel] - sc["c0"][sel])).T
        dx, dy = axis - cx[:, None], axis - cy[:, None]                       # (k, size)
        if sc["ring"][sel[0]]:
            d = np.sqrt(dx[:, None, :] ** 2 + dy[:, :, None] ** 2)
            d -= (sc["r0"][sel] + s * (sc["r1"][sel] - sc["r0"][sel]))[:, None, None]
            d *= d
        else:
            th = sc["th0"][sel] + s * (sc["th1"][sel] - sc["th0"][sel])
            cos, sin = np.cos(th)[:, None], np.sin(th)[:, None]
            along = np.abs((dx * cos)[:, None, :] + (dy * sin)[:, :, None])
            along -= sc["length"][sel][:, None, None] / 2
            np.maximum(along, 0, out=along)
            d = (dy * cos)[:, :, None] - (dx * sin)[:, None, :]                  # across
            d *= d
            along *= along
            d += along
        d *= (-0.5 / sc["width"][sel] ** 2)[:, None, None]
        np.maximum(d, EXP_FLOOR, out=d)                     # exp(−30) ≈ 1e−13: skips slow underflow
        shape[sel] = np.exp(d, out=d)
    intensity = shape
    intensity *= np.expm1(sc["m"])[:, None, None]
    intensity += 1
    k = sc["dot_m"].shape[1]
    if k:                                                                      # separable Gaussian dots
        c = sc["dot_start"] + s * sc["dot_travel"]                             # (n, k, 2)
        scale = -0.5 / sc["dot_width"][..., None] ** 2
        gx = np.exp(np.maximum((axis - c[..., 0:1]) ** 2 * scale, EXP_FLOOR))   # (n, k, size)
        gy = np.exp(np.maximum((axis - c[..., 1:2]) ** 2 * scale, EXP_FLOOR)) * np.expm1(sc["dot_m"])[..., None]
        for j in range(k):
            intensity += gy[:, j, :, None] * gx[:, j, None, :]
    for j in range(sc["flicker_m"].shape[1]):
        phase = 2 * np.pi * sc["flicker_hz"][:, j] * s * duration_us * 1e-6 + sc["flicker_phase"][:, j]
        gain = np.expm1(sc["flicker_m"][:, j] * (1 - np.cos(phase)) / 2)
        intensity += gain[:, None, None] * sc["flicker_profile"][:, j]
    np.maximum(intensity, np.float32(FLOOR), out=intensity)
    return np.log(intensity, out=intensity)


def generate_cluttered_events(n_per_class: int, seed: int, size: int = 32, duration_us: int = DURATION_US,
                              classes: Sequence[str] = CLUTTER_CLASSES, contrast: float = 0.2,
                              noise_hz: float = 5.0, jitter_us: float = 1000.0, dots: int = 1, flickers: int = 1,
                              dark: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` cluttered scenes of each class (module docstring, "64-token dataset"):
    (object array of EVENT_DTYPE arrays, labels int64). Label i means ``classes[i]``; samples come
    class by class. Same arguments → same streams.
    """
    n_per_class, size, duration_us, classes = _check_arguments(n_per_class, seed, size, duration_us, classes,
                                                               CLUTTER_CLASSES, contrast, noise_hz, jitter_us)
    for name, value in (("dots", dots), ("flickers", flickers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 16:
            raise ValueError(f"{name} must be an integer in [0, 16], got {value!r}")
    if not 0 <= dark <= 1:
        raise ValueError(f"dark must be a probability in [0, 1], got {dark!r}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    scenes = [_scene_params(classes[label], rng, size, dots, flickers, dark) for label in labels]
    sc = {k: np.array([p[k] for p in scenes], dtype=bool if k == "ring" else np.float32) for k in scenes[0]}
    py, px = np.mgrid[0:size, 0:size].astype(np.float32)
    chunks = []
    for a in range(0, len(labels), CLUTTER_CHUNK):
        part = {k: v[a:a + CLUTTER_CHUNK] for k, v in sc.items()}
        fc = part["flicker_c"]                                                 # static blob profiles (n, k, y, x)
        part["flicker_profile"] = np.exp(np.maximum(
            -((px - fc[..., 0, None, None]) ** 2 + (py - fc[..., 1, None, None]) ** 2)
            / (2 * part["flicker_width"][..., None, None] ** 2), EXP_FLOOR))
        chunks.append(_streams(lambda s, part=part: _scene_log_intensity(part, s, px[0], duration_us),
                               len(part["m"]), rng, size, duration_us, contrast, noise_hz, jitter_us,
                               CLUTTER_STEP_US))
    return np.concatenate(chunks), labels
