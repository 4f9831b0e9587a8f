"""nllk.poisson_nll_loss and its backward against torch.nn.functional.poisson_nll_loss + autograd."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
from reference import (assert_close_elementwise, assert_reduction, poisson_grad_scales, poisson_scale,
                       torch_poisson)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
REDUCTIONS = ("none", "mean", "sum")
# element counts around the 4096-element blocks of the canonical sum, and past the threading grain
SIZES = [0, 1, 2, 3, 15, 16, 17, 31, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12287, 12289, 40961, 65537]


def _shape_for(rng, n):
    """A random shape of n elements, 0 to 4 dims (dims of size 1 allowed)."""
    ndim = int(rng.integers(0, 5)) if n == 1 else int(rng.integers(1, 5))
    if ndim == 0:
        return ()
    dims = [1] * ndim
    m, p = n, 2
    factors = []
    while m > 1 and p * p <= m:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    if m > 1:
        factors.append(m)
    if n == 0:
        dims[int(rng.integers(0, ndim))] = 0
        if ndim > 1:
            dims[int(rng.integers(0, ndim))] = int(rng.integers(0, 4))
            dims[dims.index(0) if 0 in dims else 0] = 0
    for f in factors:
        dims[int(rng.integers(0, ndim))] *= f
    return tuple(dims)


def _inputs(rng, n, dt, log_input, specials):
    """x, t of n elements: targets <=1, exactly 0 and 1, negative, >1 and integer counts; with `specials`, x
    values that overflow exp, x = 0, NaN and +-Inf."""
    if log_input:
        x = rng.standard_normal(n) * 3
    else:
        x = rng.random(n) * 5
    kind = rng.integers(0, 6, n)
    t = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
                  [rng.random(n), np.zeros(n), np.ones(n), -rng.random(n) * 3, rng.random(n) * 40 + 1],
                  rng.poisson(4.0, n).astype(np.float64))
    if specials and n:
        big = 100.0 if dt == F32 else 1000.0
        choices = np.array([0.0, big, -big, np.nan, np.inf, -np.inf, 1e-30])
        if not log_input:
            choices = np.array([0.0, -1.0, np.nan, np.inf, 1e-30, 1e30 if dt == F64 else 1e20])
        k = max(1, n // 50)
        idx = rng.choice(n, size=k, replace=False)
        x[idx] = rng.choice(choices, size=k)
    return x.astype(dt), t.astype(dt)


def _check_forward(x, t, log_input, full, eps, reduction, got, dt, what):
    _, per, _, _ = torch_poisson(x, t, log_input, full, eps, "none", grad_output=np.ones(x.shape))
    scale = poisson_scale(x, t, log_input, full, eps, dt)
    if reduction == "none":
        assert_close_elementwise(got, per, scale, dt, what)
    else:
        assert_reduction(got, per, scale, reduction, dt, what)


def _expected_grad_target(x, t, log_input, full, eps, reduction, go, gt_torch):
    """PyTorch's grad_target, except where full and t <= 0: there PyTorch's autograd gives NaN (0 times the
    infinite derivative of the masked Stirling term) and nllk gives the derivative without the term, which is
    PyTorch's full=False value (documented difference, nllk.h and design.md)."""
    if not full:
        return gt_torch
    _, _, _, gt_plain = torch_poisson(x, t, log_input, False, eps, reduction, go)
    return np.where(t <= 0, gt_plain, gt_torch)


def _run_case(seed):
    rng = np.random.default_rng(seed)
    dt = F32 if rng.random() < 0.5 else F64
    n = int(rng.choice(SIZES, p=None))
    shape = _shape_for(rng, n)
    log_input = bool(rng.random() < 0.5)
    full = bool(rng.random() < 0.5)
    eps = float(rng.choice([1e-8, 1e-3, 0.0]))
    reduction = REDUCTIONS[int(rng.integers(0, 3))]
    use_torch = bool(rng.random() < 0.5)
    strided = bool(rng.random() < 0.25)
    x, t = _inputs(rng, n, dt, log_input, specials=bool(rng.random() < 0.5))
    x, t = x.reshape(shape), t.reshape(shape)
    what = (f"seed {seed}: {dt} shape {shape} log_input={log_input} full={full} eps={eps} {reduction} "
            f"{'torch' if use_torch else 'numpy'}{' strided' if strided else ''}")

    def arg(a):
        if strided:  # the same values, read through a non-contiguous view
            big = np.empty(a.shape + (2,), dtype=a.dtype)
            big[..., 0] = a
            big[..., 1] = 7.0
            a = big[..., 0]
            assert not a.flags.c_contiguous or a.size <= 1
        return torch.from_numpy(a) if use_torch else a

    xa, ta = arg(x), arg(t)
    got = nllk.poisson_nll_loss(xa, ta, log_input=log_input, full=full, eps=eps, reduction=reduction)
    assert isinstance(got, torch.Tensor if use_torch else np.ndarray), what
    _check_forward(x, t, log_input, full, eps, reduction, got, dt, what)

    go = (rng.standard_normal(shape) if reduction == "none" else np.float64(rng.choice([1.0, -2.5, 0.3])))
    go = np.asarray(go, dtype=dt)
    gx, gt = nllk.poisson_nll_loss_backward(torch.from_numpy(go) if use_torch else go, xa, ta, log_input=log_input,
                                            full=full, eps=eps, reduction=reduction, compute_grad_target=True)
    assert isinstance(gx, torch.Tensor if use_torch else np.ndarray), what
    _, _, gx_ref, gt_ref = torch_poisson(x, t, log_input, full, eps, reduction, go)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_elem = go if reduction == "none" else (go / dt.type(n) if reduction == "mean" else go)
    si, st = poisson_grad_scales(x, t, np.broadcast_to(g_elem, shape), log_input, full, eps, dt)
    assert_close_elementwise(gx, gx_ref, si, dt, what + " grad_input")
    gt_exp = _expected_grad_target(x, t, log_input, full, eps, reduction, go, gt_ref)
    assert_close_elementwise(gt, gt_exp, st, dt, what + " grad_target")
    gx_only = nllk.poisson_nll_loss_backward(go, x, t, log_input=log_input, full=full, eps=eps, reduction=reduction)
    assert isinstance(gx_only, np.ndarray)
    np.testing.assert_array_equal(gx_only, np.asarray(gx))


@pytest.mark.parametrize("seed", range(70))
def test_random_matrix(seed):
    _run_case(1000 + seed)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("n", [4095, 4096, 4097, 8193])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_block_edges(dt, n, reduction):
    rng = np.random.default_rng(n)
    x, t = _inputs(rng, n, dt, True, specials=False)
    got = nllk.poisson_nll_loss(x, t, reduction=reduction)
    _check_forward(x, t, True, False, 1e-8, reduction, got, dt, f"n={n}")


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [True, False])
def test_specials_every_reduction(dt, log_input, full):
    """x = 0 (log_input False: log(eps)), exp overflow, -Inf/Inf/NaN, targets <=1, 0, negative and > 1."""
    big = 100.0 if dt == F32 else 1000.0
    xs = [0.0, 1e-30, big, -big, 88.0, -88.0, np.inf, -np.inf, np.nan, 0.5, 3.0, -1.0]
    ts = [0.0, 0.5, 1.0, 1.5, 7.0, -2.0, 1e6]
    x = np.array([a for a in xs for _ in ts], dtype=dt)
    t = np.array([b for _ in xs for b in ts], dtype=dt)
    for reduction in REDUCTIONS:
        got = nllk.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction=reduction)
        _check_forward(x, t, log_input, full, 1e-8, reduction, got, dt, f"{reduction}")
        go = np.asarray(np.linspace(-2, 2, x.size) if reduction == "none" else 1.5, dtype=dt)
        gx, gt = nllk.poisson_nll_loss_backward(go, x, t, log_input=log_input, full=full, reduction=reduction,
                                                compute_grad_target=True)
        _, _, gx_ref, gt_ref = torch_poisson(x, t, log_input, full, 1e-8, reduction, go)
        g_elem = go if reduction == "none" else (go / dt.type(x.size) if reduction == "mean" else go)
        si, st = poisson_grad_scales(x, t, np.broadcast_to(g_elem, x.shape), log_input, full, 1e-8, dt)
        assert_close_elementwise(gx, gx_ref, si, dt, f"{reduction} grad_input")
        assert_close_elementwise(gt, _expected_grad_target(x, t, log_input, full, 1e-8, reduction, go, gt_ref), st,
                                 dt, f"{reduction} grad_target")


def test_x_zero_without_log_input():
    x = np.zeros(5, dtype=np.float32)
    t = np.array([0, 0.5, 1, 2, 10], dtype=np.float32)
    got = nllk.poisson_nll_loss(x, t, log_input=False, reduction="none")
    ref = F.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), log_input=False, reduction="none").numpy()
    np.testing.assert_allclose(got, ref, rtol=4e-7)
    assert np.all(np.isfinite(got))  # log(0 + eps), eps = 1e-8 rounded to float32


def test_exp_overflow_gives_inf():
    for dt, big in ((np.float32, 89.0), (np.float64, 710.0)):
        x = np.array([big, big * 2], dtype=dt)
        t = np.array([0.0, 1.0], dtype=dt)
        got = nllk.poisson_nll_loss(x, t, reduction="none")
        assert np.all(np.isposinf(got))
        assert np.isposinf(nllk.poisson_nll_loss(x, t, reduction="sum"))


def test_grad_target_full_nonpositive_targets_is_finite_where_pytorch_gives_nan():
    """The documented difference: with full=True, PyTorch's grad w.r.t. target is NaN where t <= 0 (an autograd
    artefact of the masked Stirling term); nllk gives the exact derivative -g*x (log_input) or -g*log(x+eps)."""
    for dt in (np.float32, np.float64):
        x = np.array([0.5, -1.0, 2.0, 0.25, 3.0], dtype=dt)
        t = np.array([0.0, -1.5, 0.0, 0.5, 4.0], dtype=dt)
        for log_input in (True, False):
            xs = np.abs(x) if not log_input else x
            xt = torch.from_numpy(xs.copy()).requires_grad_()
            tt = torch.from_numpy(t.copy()).requires_grad_()
            F.poisson_nll_loss(xt, tt, log_input=log_input, full=True, reduction="sum").backward()
            assert torch.isnan(tt.grad[t <= 0]).all()          # PyTorch: NaN at t <= 0
            assert torch.isfinite(tt.grad[t > 0]).all()
            _, gt = nllk.poisson_nll_loss_backward(1.0, xs, t, log_input=log_input, full=True, reduction="sum",
                                                   compute_grad_target=True)
            assert np.all(np.isfinite(gt))
            exact = -xs if log_input else -np.log(xs + dt(1e-8))
            np.testing.assert_allclose(gt[t <= 0], exact[t <= 0], rtol=4 * np.finfo(dt).eps)
            np.testing.assert_allclose(gt[t > 0], tt.grad.numpy()[t > 0], rtol=8 * np.finfo(dt).eps)


def _grad_target_full(x, t, log_input):
    xt, tt = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(t.copy()).requires_grad_()
    F.poisson_nll_loss(xt, tt, log_input=log_input, full=True, reduction="sum").backward()
    _, gt = nllk.poisson_nll_loss_backward(1.0, x, t, log_input=log_input, full=True, reduction="sum",
                                           compute_grad_target=True)
    return gt, tt.grad.numpy()


@pytest.mark.parametrize("log_input", [True, False])
def test_grad_target_full_nan_target_is_nan(log_input):
    x = np.array([0.5, 0.5], dtype=np.float32)
    t = np.array([np.nan, 2.0], dtype=np.float32)
    gt, ref = _grad_target_full(x, t, log_input)
    assert np.isnan(ref[0])
    assert np.isnan(gt[0]), f"nllk gives {gt[0]} where PyTorch gives NaN"


@pytest.mark.parametrize("log_input", [True, False])
def test_grad_target_full_inf_target_documented(log_input):
    x = np.array([0.5, 0.5], dtype=np.float32)
    t = np.array([np.inf, 2.0], dtype=np.float32)
    gt, ref = _grad_target_full(x, t, log_input)
    assert np.isnan(ref[0])
    # documented difference (nllk.h): PyTorch's autograd computes Inf - Inf here; nllk gives the limit +Inf
    assert gt[0] == np.inf, f"nllk gives {gt[0]}, documented +Inf"
    np.testing.assert_allclose(gt[1], ref[1], rtol=8 * np.finfo(np.float32).eps)


def test_nonfinite_targets_forward_and_grad_input():
    """NaN and +-Inf targets: the losses and grad_input are PyTorch's (grad_target: see the two tests above)."""
    for dt in (np.float32, np.float64):
        for log_input in (True, False):
            x = np.array([0.5, 0.5, 0.5, np.inf, -np.inf, np.nan, 0.0], dtype=dt)
            t = np.array([np.inf, np.nan, -np.inf, 2.0, 2.0, 2.0, np.inf], dtype=dt)
            for full in (False, True):
                got = nllk.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction="none")
                go = np.linspace(0.5, 2, x.size).astype(dt)
                _, per, gx_ref, gt_ref = torch_poisson(x, t, log_input, full, 1e-8, "none", go)
                scale = poisson_scale(x, t, log_input, full, 1e-8, dt)
                assert_close_elementwise(got, per, scale, np.dtype(dt), f"log_input={log_input} full={full}")
                gx, gt = nllk.poisson_nll_loss_backward(go, x, t, log_input=log_input, full=full, reduction="none",
                                                        compute_grad_target=True)
                si, st = poisson_grad_scales(x, t, go, log_input, full, 1e-8, dt)
                assert_close_elementwise(gx, gx_ref, si, np.dtype(dt), "grad_input")
                if not full:
                    assert_close_elementwise(gt, gt_ref, st, np.dtype(dt), "grad_target")


@pytest.mark.parametrize("use_torch", [False, True])
def test_empty(use_torch):
    for dt in (np.float32, np.float64):
        x = np.zeros((0, 3), dtype=dt)
        a = torch.from_numpy(x) if use_torch else x
        assert math.isnan(float(nllk.poisson_nll_loss(a, a, reduction="mean")))
        s = nllk.poisson_nll_loss(a, a, reduction="sum")
        assert float(s) == 0.0 and s.shape == ()
        assert nllk.poisson_nll_loss(a, a, reduction="none").shape == (0, 3)
        for red in REDUCTIONS:
            go = np.zeros((0, 3), dt) if red == "none" else 1.0
            gx, gt = nllk.poisson_nll_loss_backward(go, a, a, reduction=red, compute_grad_target=True)
            assert gx.shape == (0, 3) and gt.shape == (0, 3)


def test_scalar_inputs():
    x, t = np.float32(0.7), np.float32(3.0)
    got = nllk.poisson_nll_loss(np.asarray(x), np.asarray(t), full=True, reduction="none")
    ref = F.poisson_nll_loss(torch.tensor(x), torch.tensor(t), full=True, reduction="none")
    assert got.shape == () and got.dtype == np.float32
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-6)
    tg = nllk.poisson_nll_loss(torch.tensor(x), torch.tensor(t), reduction="none")
    assert isinstance(tg, torch.Tensor) and tg.shape == ()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_broadcasting(reduction):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 1, 5)).astype(np.float32)
    t = (rng.random((3, 1)) * 4).astype(np.float32)
    xt, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t).requires_grad_()
    ref = F.poisson_nll_loss(xt, tt, full=True, reduction=reduction)
    got = nllk.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t), full=True, reduction=reduction)
    assert tuple(got.shape) == tuple(ref.shape) == ((4, 3, 5) if reduction == "none" else ())
    np.testing.assert_allclose(got.numpy(), ref.detach().numpy(), rtol=2e-6, atol=1e-6)
    go = torch.ones(ref.shape) * 0.5
    ref.backward(go)
    gx, gt = nllk.poisson_nll_loss_backward(go, torch.from_numpy(x), torch.from_numpy(t), full=True,
                                            reduction=reduction, compute_grad_target=True)
    assert gx.shape == xt.shape and gt.shape == tt.shape
    np.testing.assert_allclose(gx.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gt.numpy(), tt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_dtype_promotion():
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal(50).astype(np.float32)
    t64 = rng.random(50) * 3
    # float32 input, float64 target: PyTorch's result is float64 (it evaluates exp(x) in float32 though;
    # nllk evaluates everything in float64, so they agree to float32 precision)
    for a, b in ((x32, t64), (x32.astype(np.float64), t64.astype(np.float32))):
        got = nllk.poisson_nll_loss(torch.from_numpy(a), torch.from_numpy(b), reduction="none")
        ref = F.poisson_nll_loss(torch.from_numpy(a), torch.from_numpy(b), reduction="none")
        assert got.dtype == ref.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    gx = nllk.poisson_nll_loss_backward(1.0, x32, t64)
    assert gx.dtype == np.float32  # the gradient has the input's dtype
    # an integer target takes the input's dtype
    ti = rng.integers(0, 5, 50)
    got = nllk.poisson_nll_loss(torch.from_numpy(x32), torch.from_numpy(ti), reduction="none")
    ref = F.poisson_nll_loss(torch.from_numpy(x32), torch.from_numpy(ti), reduction="none")
    assert got.dtype == ref.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    # a Python number as target is weakly typed
    assert nllk.poisson_nll_loss(x32, 2.0).dtype == np.float32


def test_thread_counts_give_the_same_bits():
    rng = np.random.default_rng(11)
    x, t = _inputs(rng, 150001, F32, True, specials=False)
    before = nllk.library_info()["threads"]
    try:
        results = []
        for k in (1, 2, 3, 7):
            nllk.set_num_threads(k)
            results.append([np.asarray(nllk.poisson_nll_loss(x, t, full=True, reduction=r)).tobytes()
                            for r in ("mean", "sum", "none")])
        assert all(r == results[0] for r in results)
    finally:
        nllk.set_num_threads(0)
    assert nllk.library_info()["threads"] == before
