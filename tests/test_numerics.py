"""The one definition of the arithmetic, checked three ways: Lava's own model code,
the numpy reference, the numba scalar kernel and the torch training step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from loihi_export import compat
from sim import numerics as nm
from sim.neurons import CubaLIFFloat
from sim.neurons.cuba_lif import lif_step_loihi as lif_step_loihi_scalar, lif_step_loihi_np
from spikeformer.neurons import LifParams, lif_step_float, lif_step_loihi, quantize_mantissa

compat.apply()
from lava.proc.lif.models import PyLifModelBitAcc  # noqa: E402
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights  # noqa: E402


def lava_lif_step(u, v, a, du, dv, vth):
    """Run Lava's PyLifModelBitAcc arithmetic directly (no runtime)."""
    m = PyLifModelBitAcc({})
    m.u, m.v = u.astype(np.int32).copy(), v.astype(np.int32).copy()
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant = np.zeros(len(u), np.int16)
    m.bias_exp = np.zeros(len(u), np.int16)
    m.scale_bias()
    m.scale_threshold()
    m.subthr_dynamics(activation_in=a.astype(np.int32))
    s = m.spiking_activation()
    m.reset_voltage(s)
    return m.u, m.v, s


@pytest.mark.parametrize("seed", range(6))
def test_loihi_step_equals_lava_numpy_numba_and_torch(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    u = rng.integers(-nm.UV_MAX + 1, nm.UV_MAX, n)
    v = rng.integers(-nm.UV_MAX + 1, nm.UV_MAX, n)
    # include the extremes: full current decay, no voltage decay, zero threshold
    du = int(rng.choice([0, 1, 2047, 4095, rng.integers(0, 4096)]))
    dv = int(rng.choice([0, 1, 4095, rng.integers(0, 4096)]))
    vth = int(rng.choice([0, 1, nm.VTH_MAX, rng.integers(0, nm.VTH_MAX)]))
    a = rng.integers(-(1 << 16), 1 << 16, n)
    lu, lv, ls = lava_lif_step(u, v, a, du, dv, vth)
    ru, rv, rs = lif_step_loihi_np(u, v, a, du, dv, vth)
    np.testing.assert_array_equal(ru, lu)
    np.testing.assert_array_equal(rv, lv)
    np.testing.assert_array_equal(rs, ls)
    ku = np.empty(n, np.int64); kv = np.empty(n, np.int64); ks = np.empty(n, bool)
    for i in range(n):
        ku[i], kv[i], ks[i] = lif_step_loihi_scalar(int(u[i]), int(v[i]), int(a[i]), du, dv, vth)
    np.testing.assert_array_equal(ku, lu)
    np.testing.assert_array_equal(kv, lv)
    np.testing.assert_array_equal(ks, ls)
    tu, tv, ts = lif_step_loihi(torch.tensor(u, dtype=torch.float64), torch.tensor(v, dtype=torch.float64),
                                torch.tensor(a, dtype=torch.float64), LifParams(du, dv, vth))
    np.testing.assert_array_equal(tu.numpy().astype(np.int64), lu)
    np.testing.assert_array_equal(tv.numpy().astype(np.int64), lv)
    np.testing.assert_array_equal(ts.numpy() > 0, ls)


def test_a_wrong_rounding_would_be_caught():
    """Floor instead of truncation toward zero differs from Lava on negative states."""
    u = np.array([-4097, -1, 5000]); v = np.array([-3, -70000, 7])
    lu, lv, _ = lava_lif_step(u, v, np.zeros(3), 100, 100, 10)
    floored = (v * (4096 - 100)) >> 12
    assert not np.array_equal(floored + lu, lv)


def test_float_step_matches_numpy_reference():
    rng = np.random.default_rng(1)
    u, v, a = (rng.normal(0, 100, 1000).astype(np.float32) for _ in range(3))
    p = LifParams(300, 700, 50)
    model = CubaLIFFloat(*p.as_float())
    ru, rv, rs = model.kernel.step_np(u, v, a, *model.kernel_params())
    tu, tv, ts = lif_step_float(*(torch.from_numpy(x) for x in (u, v, a)), p)
    np.testing.assert_array_equal(tu.numpy(), ru)
    np.testing.assert_array_equal(tv.numpy(), rv)
    np.testing.assert_array_equal(ts.numpy() > 0, rs)


def test_surrogate_gradient_flows_through_loihi_step():
    v = torch.tensor([8000.0, 9000.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([3.0, 3.0], dtype=torch.float64, requires_grad=True)
    _, _, s = lif_step_loihi(torch.zeros(2, dtype=torch.float64), v, a, LifParams(4095, 0, 128))
    s.sum().backward()
    assert (a.grad != 0).all() and (v.grad != 0).all()


def test_quantized_weights_survive_lavas_clip_and_truncate():
    w = torch.linspace(-300, 300, 601, dtype=torch.float64)
    q = quantize_mantissa(w).numpy().astype(np.int64)
    assert q.min() == nm.W_MIN and q.max() == nm.W_MAX and (q % 2 == 0).all()
    for sample in (q, np.abs(q), -np.abs(q)):          # mixed, excitatory, inhibitory matrices
        mode = determine_sign_mode(sample)
        lava = truncate_weights(clip_weights(sample, mode, num_bits=8), mode, 8)
        np.testing.assert_array_equal(lava, sample)
        np.testing.assert_array_equal(nm.lava_weights(sample), lava)
    odd = np.array([-3, 1, 5])
    assert not np.array_equal(nm.lava_weights(odd), odd)          # odd weights do not survive
    assert SignMode.MIXED == determine_sign_mode(odd)
