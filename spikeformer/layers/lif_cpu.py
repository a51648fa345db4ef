"""CPU kernels of ``spikeformer.layers.lif.lif_sequence``: one fused numba loop per direction.

Forward, per sample b (in parallel) and tick t, for every neuron i of the population:
the scalar step of ``sim.neurons.cuba_lif`` (``lif_step_loihi_pre`` — the engine's own
arithmetic — or the float32 step), keeping the pre-reset voltage and the clip flag.
Backward, t = T−1 … 0 (see ``neurons._LifSequence`` for the formula)::

    g_v = (g_s·σ'((v_pre − θ)/κ)/κ + [¬s]·c_v·g_v') · m;   g_u = g_v + c_u·g_u';   g_a = scale·g_u

Arrays are (B, T, n) C-contiguous: float32 currents and gradients, int32 / float32
voltages, bool clip flags.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from sim import numerics as nm
from sim.neurons.cuba import lif_step_loihi_pre
from sim.system import numba_cache  # (before any @numba.njit(cache=True): a writable cache folder)

# numba checks a cached kernel against this file only; the kernels compile sim's CUBA step in
STALE_REMOVED = numba_cache.drop_stale_module(__file__, numba_cache.sim_sources(), numba.config.CACHE_DIR or None)


def run(kernel, *args) -> None:
    """kernel(*args) on torch's intra-op thread count. numba's OpenMP layer sets the calling thread's
    OpenMP count to its own on every parallel launch, and torch reads that count: both counts restored after."""
    n, numba_n = torch.get_num_threads(), numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(numba_n)
        torch.set_num_threads(n)


@numba.njit(cache=True, parallel=True)
def forward_loihi(a, du, dv, vth, s_out, v_pre, inside):
    B, T, n = a.shape
    theta = np.int64(vth) << nm.VTH_SHIFT
    for b in numba.prange(B):
        u = np.zeros(n, np.int64)
        v = np.zeros(n, np.int64)
        for t in range(T):
            for i in range(n):
                un, vn, clipped = lif_step_loihi_pre(u[i], v[i], np.int64(a[b, t, i]), du, dv, vth)
                v_pre[b, t, i] = vn
                inside[b, t, i] = not clipped
                fired = vn > theta
                s_out[b, t, i] = 1.0 if fired else 0.0
                u[i] = un
                v[i] = 0 if fired else vn


@numba.njit(cache=True, parallel=True)
def forward_float(a, du, dv, vth, s_out, v_pre):
    B, T, n = a.shape
    cu, cv = np.float32(1.0) - np.float32(du), np.float32(1.0) - np.float32(dv)
    th = np.float32(vth)
    for b in numba.prange(B):
        u = np.zeros(n, np.float32)
        v = np.zeros(n, np.float32)
        for t in range(T):
            for i in range(n):
                un = np.float32(u[i] * cu + a[b, t, i])
                vn = np.float32(v[i] * cv + un)
                fired = vn > th
                v_pre[b, t, i] = vn
                s_out[b, t, i] = 1.0 if fired else 0.0
                u[i] = un
                v[i] = np.float32(0.0) if fired else vn


@numba.njit(cache=True, parallel=True)
def backward(g_s, v_pre, inside, theta, kappa, cu, cv, scale, g_a):
    """``inside`` of shape (0, 0, 0) means no clip (float mode)."""
    B, T, n = g_s.shape
    clip = inside.shape[0] > 0
    for b in numba.prange(B):
        gv_next = np.zeros(n, np.float32)
        gu_next = np.zeros(n, np.float32)
        for t in range(T - 1, -1, -1):
            for i in range(n):
                vp = np.float32(v_pre[b, t, i])
                x = (vp - theta) / kappa
                gv = g_s[b, t, i] / (1.0 + (math.pi * x) ** 2) / kappa
                if not vp > theta:
                    gv += gv_next[i] * cv
                if clip and not inside[b, t, i]:
                    gv = 0.0
                gu = gv + gu_next[i] * cu
                g_a[b, t, i] = scale * gu
                gv_next[i] = gv
                gu_next[i] = gu
