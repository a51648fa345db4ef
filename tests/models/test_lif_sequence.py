"""The fused LIF (spikeformer.layers.lif.lif_sequence) = the per-tick pure functions, value and gradient."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from snntorch import surrogate

from sim.neurons.cuba import CubaLIF, lif_step_loihi_np
from spikeformer.layers.lif import lif_sequence, lif_step_float, lif_step_loihi, surrogate_grad


def reference(a: torch.Tensor, p: CubaLIF, loihi: bool) -> torch.Tensor:
    """Tick by tick with autograd through the pure step functions."""
    step = lif_step_loihi if loihi else lif_step_float
    u = v = torch.zeros_like(a[:, 0])
    out = []
    for t in range(a.shape[1]):
        u, v, s = step(u, v, a[:, t], p)
        out.append(s)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("fused", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("loihi", [True, False])
@pytest.mark.parametrize("params", [(4095, 1024, 128), (100, 300, 40), (0, 0, 5), (4095, 4095, 3)])
def test_value_and_gradient_equal_the_step_functions(loihi, params, fused):
    p = CubaLIF(*params)
    gen = torch.Generator().manual_seed(sum(params))
    scale = 400.0 if loihi else 6.0
    a = torch.round(torch.randn(16, 7, 12, generator=gen) * scale) * (2 if loihi else 1)
    a[0, :, 0] = 2 ** 17 if loihi else 1e3                 # drives v into the 24-bit clip (loihi)
    weight = torch.randn(16, 7, 12, generator=gen)
    a_ref = a.clone().double().requires_grad_(True)
    s_ref = reference(a_ref, p, loihi)
    (s_ref * weight.double()).sum().backward()
    a_new = a.clone().float().requires_grad_(True)
    s_new = lif_sequence(a_new, p, loihi, fused)
    (s_new * weight).sum().backward()
    np.testing.assert_array_equal(s_new.detach().numpy(), s_ref.detach().numpy())
    assert s_new.sum() > 0 and (s_new == 0).sum() > 0
    np.testing.assert_allclose(a_new.grad.numpy(), a_ref.grad.numpy(), rtol=2e-4, atol=1e-7)
    assert a_new.grad.abs().sum() > 0


def test_loihi_spikes_equal_the_numpy_reference():
    p = CubaLIF(700, 2000, 90)
    rng = np.random.default_rng(1)
    a = (rng.integers(-300, 600, (5, 9, 20)) * 2).astype(np.float32)
    s = lif_sequence(torch.from_numpy(a), p, True).numpy()
    u = v = np.zeros((5, 20), np.int64)
    for t in range(9):
        u, v, ref = lif_step_loihi_np(u, v, a[:, t].astype(np.int64), p.du, p.dv, p.vth)
        np.testing.assert_array_equal(s[:, t], ref)


def test_surrogate_is_snntorchs_arctan():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    surrogate.atan(alpha=2.0)(x).sum().backward()
    np.testing.assert_allclose(surrogate_grad(x.detach()).numpy(), x.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fused", [True, False], ids=["numba", "torch-ops"])
def test_gradient_stops_at_the_24_bit_clip(fused):
    """v clipped at −(2²³−1) on tick 1, back near threshold on tick 2: the clip blocks tick 2's gradient."""
    p = CubaLIF(4095, 0, 3)
    big = float((1 << 17) - 2)
    a = torch.tensor([[[-big], [-big], [big], [0.0]]])
    a_ref = a.clone().double().requires_grad_(True)
    reference(a_ref, p, True).sum().backward()
    a_new = a.clone().requires_grad_(True)
    lif_sequence(a_new, p, True, fused).sum().backward()
    np.testing.assert_allclose(a_new.grad.numpy(), a_ref.grad.numpy(), rtol=1e-5)
    assert a_ref.grad[0, 2, 0] != 0


def test_fused_kernels_keep_torchs_thread_count():
    """numba's OpenMP launch resets the calling thread's OpenMP count to numba's: a training run set to
    1 thread would run every later torch op on all cores (oversubscribing parallel sweep workers)."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: no count to leak")
    before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.rand(4, 3, 10, requires_grad=True) * 4
        lif_sequence(a, CubaLIF(100, 200, 1), loihi=False, fused=True).sum().backward()
        assert torch.get_num_threads() == 1
        assert numba.get_num_threads() == numba_before          # the engine's count is left alone
    finally:
        torch.set_num_threads(before)
