"""The one definition of the arithmetic, checked three ways: Lava's own model code,
the numpy reference, the numba scalar kernel and the torch training step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from loihi_export import compat
from sim import numerics as nm
from sim.neurons.cuba import CubaLIF, lif_step_loihi_np, lif_step_loihi_pre
from sim.neurons.cuba import lif_step_loihi as lif_step_loihi_scalar
from spikeformer.layers.lif import lif_step_float, lif_step_loihi, quantize_mantissa

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


def lava_lif_pre(u, v, a, du, dv, vth):
    """Lava's u and v after the sub-threshold update, before the spike test and reset."""
    m = PyLifModelBitAcc({})
    m.u, m.v = u.astype(np.int32).copy(), v.astype(np.int32).copy()
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant = np.zeros(len(u), np.int16)
    m.bias_exp = np.zeros(len(u), np.int16)
    m.scale_bias()
    m.subthr_dynamics(activation_in=a.astype(np.int32))
    return m.u.copy(), m.v.copy()


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
                                torch.tensor(a, dtype=torch.float64), CubaLIF(du, dv, vth))
    np.testing.assert_array_equal(tu.numpy().astype(np.int64), lu)
    np.testing.assert_array_equal(tv.numpy().astype(np.int64), lv)
    np.testing.assert_array_equal(ts.numpy() > 0, ls)


def test_project_step_equals_lava_where_rounding_and_offsets_matter():
    """Negative states (truncation toward zero, not floor), the current's +1 decay offset, the 24-bit
    wrap and clip: ``sim.numerics`` (numpy and numba) equals Lava's PyLifModelBitAcc, and the
    plausible wrong variants do not."""
    # then: u reaching exactly ±2²³ (wrapped only at −2²³) and v clipped there; v = 64·vth exactly (no spike), +64
    # and v landing exactly on −2²³ (clipped to −2²³ + 1)
    u = np.array([-4097, -1, 5000, 8_000_000, -8_000_000, 4096, -70_001, 0, 0, 0, 0, 0, 0])
    v = np.array([-3, -70000, 7, 8_000_000, -8_000_000, 4095, 1, -8_388_000, 0, 0, -66, 0, 0])
    a = np.array([0, 0, 0, 3000, -3000, 0, 1, -200, 1 << 17, -(1 << 17), 1 - (1 << 17), 10, 11])
    du, dv, vth = 100, 100, 10
    lu, lv, ls = lava_lif_step(u, v, a, du, dv, vth)
    ru, rv, rs = lif_step_loihi_np(u, v, a, du, dv, vth)
    np.testing.assert_array_equal(ru, lu)
    np.testing.assert_array_equal(rv, lv)
    np.testing.assert_array_equal(rs, ls)
    for i in range(len(u)):
        assert lif_step_loihi_scalar(int(u[i]), int(v[i]), int(a[i]), du, dv, vth) == (lu[i], lv[i], ls[i]), i
    assert not ls[-2] and ls[-1]                                          # the threshold is strict: v > 64·vth
    assert lu[8] == lu[9] == nm.UV_MAX                                    # (Lava wraps at u ≤ −2²³, not at +2²³)
    pu, pv = lava_lif_pre(u, v, a, du, dv, vth)                            # before the reset: the clips show
    assert pv[8] == nm.UV_MAX - 1 and pv[10] == -nm.UV_MAX + 1
    for i in range(len(u)):
        un, vn, clipped = lif_step_loihi_pre(int(u[i]), int(v[i]), int(a[i]), du, dv, vth)
        assert (un, vn) == (pu[i], pv[i]) and clipped == (abs(pv[i]) == nm.UV_MAX - 1), i
    floored = (v * (nm.DECAY_UNITY - dv)) >> nm.DECAY_SHIFT                # floor instead of truncation
    assert not np.array_equal(np.clip(floored + lu, -nm.UV_MAX + 1, nm.UV_MAX - 1), lv)
    no_offset = np.sign(u) * (np.abs(u * (nm.DECAY_UNITY - du)) >> nm.DECAY_SHIFT)   # du without Lava's +1
    assert not np.array_equal(no_offset + (a << nm.ACT_SHIFT), lu)


def test_float_step_matches_numpy_reference():
    rng = np.random.default_rng(1)
    u, v, a = (rng.normal(0, 100, 1000).astype(np.float32) for _ in range(3))
    p = CubaLIF(300, 700, 50)
    model = p.float_equivalent()
    ru, rv, rs = model.kernel.step_np(u, v, a, *model.kernel_params())
    tu, tv, ts = lif_step_float(*(torch.from_numpy(x) for x in (u, v, a)), p)
    np.testing.assert_array_equal(tu.numpy(), ru)
    np.testing.assert_array_equal(tv.numpy(), rv)
    np.testing.assert_array_equal(ts.numpy() > 0, rs)
    params = model.kernel_params()
    for i in range(0, 1000, 7):                                           # the engine's scalar kernel
        ku, kv, ks = model.kernel.step(float(u[i]), float(v[i]), float(a[i]), *params)
        assert (np.float32(ku), np.float32(kv), bool(ks)) == (ru[i], rv[i], rs[i]), i
    # the threshold is strict (s = v > vth) and the input is added: u = 0, v = 0, a = vth gives v = vth
    z, vth = np.zeros(2, np.float32), params[2]
    at = np.array([vth, np.nextafter(np.float32(vth), np.float32(1e9))], np.float32)
    assert model.kernel.step_np(z, z, at, *params)[2].tolist() == [False, True]
    assert [bool(model.kernel.step(0.0, 0.0, float(x), *params)[2]) for x in at] == [False, True]


def test_surrogate_gradient_flows_through_loihi_step():
    v = torch.tensor([8000.0, 9000.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([3.0, 3.0], dtype=torch.float64, requires_grad=True)
    _, _, s = lif_step_loihi(torch.zeros(2, dtype=torch.float64), v, a, CubaLIF(4095, 0, 128))
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


def test_int32_rule_lava_equals_int64_within_the_validation_bounds_and_not_beyond():
    """``sim.numerics``' integer widths: for |a| up to the bounds ``sim.ir.check_bounds`` enforces
    (LIF_INPUT_MAX at du = 4095, LIF_CARRY_INPUT_MAX below), Lava's int32 steps equal ours over many
    ticks, saturating inputs included; the issue's saturating input with a carried current does not."""
    from sim.ir.bounds import LIF_CARRY_INPUT_MAX, LIF_INPUT_MAX
    rng = np.random.default_rng(11)
    n, ticks = 600, 12
    for du, amax in ((4095, LIF_INPUT_MAX), (0, LIF_CARRY_INPUT_MAX), (1, LIF_CARRY_INPUT_MAX),
                     (2047, LIF_CARRY_INPUT_MAX), (4094, LIF_CARRY_INPUT_MAX)):
        u = np.zeros(n, np.int64); v = np.zeros(n, np.int64)
        lu, lv = u.copy(), v.copy()
        sign = rng.choice([-1, 1], n)
        for t in range(ticks):
            a = np.where(np.arange(n) < n // 2, sign * amax, rng.integers(-amax, amax + 1, n))  # half saturating
            lu, lv, ls = lava_lif_step(lu, lv, a, du, 0, 1000)
            u, v, s = lif_step_loihi_np(u, v, a, du, 0, 1000)
            np.testing.assert_array_equal(u, lu, err_msg=f"du {du} tick {t}")
            np.testing.assert_array_equal(v, lv, err_msg=f"du {du} tick {t}")
            np.testing.assert_array_equal(s, ls, err_msg=f"du {du} tick {t}")
        assert (np.abs(u) <= nm.UV_MAX).all() or du == 4095          # a carried current stays within 24 bits
    a = np.array([1028 * 254 * 128, -1028 * 254 * 128])             # accepted at du = 4095, refused below
    u = v = lu = lv = np.zeros(2, np.int64)
    differ = False
    for _ in range(4):
        lu, lv, _ = lava_lif_step(lu, lv, a, 0, 0, 1000)
        u, v, _ = lif_step_loihi_np(u, v, a, 0, 0, 1000)
        differ |= not np.array_equal(u, lu)
    assert differ


def test_lava_weights_equal_lavas_clip_and_truncate_in_every_sign_mode():
    """Edge weights: 255 and 256 in excitatory matrices, −255 and −256 in inhibitory ones, odd weights
    in mixed ones: ``nm.lava_weights`` does what Lava's clip + truncate does."""
    for sample in (np.array([255, 256, 3, 0]), np.array([-255, -256, -3, 0]), np.array([255, -256, -3, 7]),
                   np.array([-1, 1]), np.array([0, 0])):
        mode = determine_sign_mode(sample)
        lava = truncate_weights(clip_weights(sample, mode, num_bits=8), mode, 8)
        np.testing.assert_array_equal(nm.lava_weights(sample), lava, err_msg=str(sample))


def test_field_widths_are_the_ones_lava_declares():
    """du, dv: 12-bit unsigned; vth: 17-bit; u, v: 24-bit signed; delays: 6 bits (+ the 1-tick hop)."""
    from lava.proc.sparse.models import PyDelaySparseModelBitAcc
    assert nm.DU_MAX == nm.DV_MAX == (1 << PyLifModelBitAcc.du.precision) - 1 == (1 << PyLifModelBitAcc.dv.precision) - 1
    assert nm.VTH_MAX == (1 << PyLifModelBitAcc.vth.precision) - 1
    assert nm.UV_MAX == 1 << (PyLifModelBitAcc.u.precision - 1) == 1 << (PyLifModelBitAcc.v.precision - 1)
    assert nm.MAX_DELAY == 1 << PyDelaySparseModelBitAcc.delays.precision
    # du = DU_MAX empties the current every tick (the model's stream LIFs and count neurons rely on it)
    u, _, _ = lava_lif_step(np.array([5_000_000, -77]), np.zeros(2), np.zeros(2), nm.DU_MAX, 0, 10)
    assert (u == 0).all() and (lif_step_loihi_np([5_000_000, -77], [0, 0], [0, 0], nm.DU_MAX, 0, 10)[0] == 0).all()


def test_exponent_shift_is_multiply_or_floor_division():
    """a = acc << exp for exp ≥ 0, ⌊acc / 2^−exp⌋ for exp < 0 (arithmetic shift: floor, also for negatives)."""
    acc = np.array([-7, -4, -1, 0, 1, 5, 1000])
    for exp in range(-3, 4):
        want = acc * 2 ** exp if exp >= 0 else np.floor_divide(acc, 2 ** -exp)
        np.testing.assert_array_equal(nm.shift_activation(acc, exp), want, err_msg=str(exp))
