"""nllk.torch: gradcheck in float64, and parity of values and gradients with torch.nn over the option matrix."""
import itertools
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nllk.torch as nt  # noqa: E402

REDUCTIONS = ["none", "mean", "sum"]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)


def poisson_data(n, dtype, log_input, seed=0, shape=None):
    g = torch.Generator().manual_seed(seed)
    shape = shape or (n,)
    if log_input:
        x = torch.rand(shape, generator=g, dtype=dtype) * 4 - 2
    else:
        x = torch.rand(shape, generator=g, dtype=dtype) * 5 + 0.01
    t = torch.randint(0, 7, shape, generator=g).to(dtype) + torch.rand(shape, generator=g, dtype=dtype) * 0.5
    return x, t


# ---- Poisson ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("log_input,full,reduction", itertools.product([True, False], [False, True], REDUCTIONS))
def test_poisson_gradcheck_f64(log_input, full, reduction):
    x, t = poisson_data(37, torch.float64, log_input, seed=1)
    t = t + 0.05  # keep targets away from the t == 1 kink of the Stirling term
    x.requires_grad_(True)
    t.requires_grad_(True)
    f = lambda a, b: nt.poisson_nll_loss(a, b, log_input=log_input, full=full, reduction=reduction)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, t), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype,log_input,full,reduction",
                         itertools.product([torch.float32, torch.float64], [True, False], [False, True], REDUCTIONS))
def test_poisson_parity_with_torch_nn(dtype, log_input, full, reduction):
    x, t = poisson_data(70000, dtype, log_input, seed=2)  # several 4096-blocks, and past the threading grain
    ours, ref = [nt.PoissonNLLLoss(log_input=log_input, full=full, reduction=reduction),
                 torch.nn.PoissonNLLLoss(log_input=log_input, full=full, reduction=reduction)]
    assert isinstance(ours, torch.nn.PoissonNLLLoss)
    res = []
    for m in (ours, ref):
        xi = x.clone().requires_grad_(True)
        ti = t.clone().requires_grad_(True)
        out = m(xi, ti)
        (out if out.dim() == 0 else (out * torch.linspace(0.5, 1.5, out.numel(), dtype=dtype)).sum()).backward()
        res.append((out.detach(), xi.grad, ti.grad))
    (o1, gx1, gt1), (o2, gx2, gt2) = res
    assert "PoissonNLLFunction" in ours(x.requires_grad_(True), t).grad_fn.name()  # nllk, not a fallback
    assert o1.shape == o2.shape and o1.dtype == o2.dtype
    rt = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else tol(dtype)
    torch.testing.assert_close(o1, o2, **rt)
    torch.testing.assert_close(gx1, gx2, **rt)
    torch.testing.assert_close(gt1, gt2, **rt)


def test_poisson_broadcast_and_legacy_args():
    x, _ = poisson_data(12, torch.float64, True, shape=(3, 4))
    t = torch.tensor([0.0, 1.0, 2.0, 5.0], dtype=torch.float64)
    xa, ta = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
    xb, tb = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
    a = nt.poisson_nll_loss(xa, ta, reduction="sum")
    b = torch.nn.functional.poisson_nll_loss(xb, tb, reduction="sum")
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(ta.grad, tb.grad)
    torch.testing.assert_close(nt.poisson_nll_loss(x, x.exp(), size_average=False),
                               torch.nn.functional.poisson_nll_loss(x, x.exp(), size_average=False))
    with pytest.raises(ValueError):
        nt.poisson_nll_loss(x, x, reduction="foo")


def test_poisson_full_grad_target_is_finite_where_torch_gives_nan():
    x = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    nt.poisson_nll_loss(x, t, full=True, reduction="sum").backward()
    assert torch.isfinite(t.grad).all()
    t2 = t.detach().clone().requires_grad_(True)
    torch.nn.functional.poisson_nll_loss(x, t2, full=True, reduction="sum").backward()
    torch.testing.assert_close(t.grad[1:], t2.grad[1:])


def test_poisson_falls_back_for_other_dtypes():
    x = torch.rand(10, dtype=torch.bfloat16)
    out = nt.poisson_nll_loss(x, x)
    assert out.dtype == torch.bfloat16


# ---- NLL --------------------------------------------------------------------------------------------------------
def nll_data(shape, dtype, target_dtype=torch.int64, ignore_index=-100, ignore_frac=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.log_softmax(torch.randn(shape, generator=g, dtype=dtype), dim=1 if len(shape) > 1 else 0)
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    t = torch.randint(0, c, tshape, generator=g)
    if ignore_frac:
        t = torch.where(torch.rand(tshape, generator=g) < ignore_frac, torch.full_like(t, ignore_index), t)
    w = torch.rand(c, generator=g, dtype=dtype) + 0.5
    return x, t.to(target_dtype), w


SHAPES = [(7,), (33, 5), (4, 6, 9), (3, 21, 17, 13)]


@pytest.mark.parametrize("shape,weighted,reduction", itertools.product(SHAPES, [False, True], REDUCTIONS))
def test_nll_gradcheck_f64(shape, weighted, reduction):
    x, t, w = nll_data(shape, torch.float64, ignore_index=2, ignore_frac=0.2 if len(shape) > 1 else 0.0)
    x.requires_grad_(True)
    f = lambda a: nt.nll_loss(a, t, weight=w if weighted else None, ignore_index=2, reduction=reduction)  # noqa
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape,dtype,weighted,ignore,reduction",
                         itertools.product(SHAPES + [(70000, 3), (2, 5, 128, 160)], [torch.float32, torch.float64],
                                           [False, True], [-100, 1, 255], REDUCTIONS))
def test_nll_parity_with_torch_nn(shape, dtype, weighted, ignore, reduction):
    x, t, w = nll_data(shape, dtype, ignore_index=ignore, ignore_frac=0.1 if len(shape) > 1 else 0.0, seed=3)
    kw = dict(weight=w if weighted else None, ignore_index=ignore, reduction=reduction)
    ours, ref = nt.NLLLoss(**kw), torch.nn.NLLLoss(**kw)
    assert isinstance(ours, torch.nn.NLLLoss)
    res = []
    for m in (ours, ref):
        xi = x.clone().requires_grad_(True)
        out = m(xi, t)
        (out if out.dim() == 0 else (out * torch.linspace(0.5, 1.5, out.numel(), dtype=dtype).view(out.shape)).sum()
         ).backward()
        res.append((out.detach(), xi.grad))
    (o1, g1), (o2, g2) = res
    assert "NLLFunction" in ours(x.requires_grad_(True), t).grad_fn.name()  # nllk, not a fallback
    assert o1.shape == o2.shape and o1.dtype == o2.dtype
    # PyTorch sums f32 in f32; nllk in double: compare means/sums with a relative tolerance
    rt = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else tol(dtype)
    torch.testing.assert_close(o1, o2, equal_nan=True, **rt)
    torch.testing.assert_close(g1, g2, equal_nan=True, **rt)


@pytest.mark.parametrize("shape", [(33, 5), (3, 21, 17, 13)])
@pytest.mark.parametrize("target_dtype", [torch.int32, torch.uint8])
def test_nll_narrow_targets_equal_int64(shape, target_dtype):
    x, t, w = nll_data(shape, torch.float32, ignore_index=255 if target_dtype == torch.uint8 else -100,
                       ignore_frac=0.1, seed=4)
    ig = 255 if target_dtype == torch.uint8 else -100
    for red in REDUCTIONS:
        a = nt.nll_loss(x, t, weight=w, ignore_index=ig, reduction=red)
        b = nt.nll_loss(x, t.to(target_dtype), weight=w, ignore_index=ig, reduction=red)
        assert torch.equal(a, b)


def test_nll_errors_like_torch():
    x, t, _ = nll_data((4, 3), torch.float32)
    with pytest.raises(IndexError):
        nt.nll_loss(x, torch.tensor([0, 1, 7, 2]))
    with pytest.raises(IndexError):
        nt.nll_loss(x, torch.tensor([0, 1, 7, 2]), reduction="none")
    with pytest.raises(ValueError):
        nt.nll_loss(x, torch.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError):
        nt.nll_loss(x, t, weight=torch.ones(5))
    with pytest.raises(ValueError):
        nt.nll_loss(x, t, reduction="foo")


def test_nll_all_ignored_is_nan_like_torch():
    x, _, _ = nll_data((4, 3), torch.float32)
    t = torch.full((4,), -100)
    assert torch.isnan(nt.nll_loss(x, t))
    assert nt.nll_loss(x, t, reduction="sum") == 0


def test_state_dict_and_drop_in():
    w = torch.rand(5)
    a, b = nt.NLLLoss(weight=w, ignore_index=3), torch.nn.NLLLoss(weight=w, ignore_index=3)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert repr(a.__class__.__mro__[1]) == repr(torch.nn.NLLLoss)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fast_paths_without_autograd_equal_autograd_paths(dtype, reduction):
    x, t = poisson_data(5000, dtype, True, seed=5)
    a = nt.poisson_nll_loss(x, t, full=True, reduction=reduction)  # no grad needed: direct call
    b = nt.poisson_nll_loss(x.clone().requires_grad_(True), t, full=True, reduction=reduction)
    assert a.grad_fn is None and b.grad_fn is not None
    assert torch.equal(a, b.detach())
    xn, tn, w = nll_data((300, 7), dtype, ignore_index=3, ignore_frac=0.1, seed=6)
    with torch.no_grad():
        c = nt.nll_loss(xn.clone().requires_grad_(True), tn, weight=w, ignore_index=3, reduction=reduction)
    d = nt.nll_loss(xn.clone().requires_grad_(True), tn, weight=w, ignore_index=3, reduction=reduction)
    assert c.grad_fn is None and d.grad_fn is not None
    assert torch.equal(c, d.detach())
    torch.testing.assert_close(c, torch.nn.functional.nll_loss(xn, tn, weight=w, ignore_index=3,
                                                               reduction=reduction), rtol=1e-5, atol=1e-6)
    with pytest.raises(IndexError):
        nt.nll_loss(xn, torch.full_like(tn, 9))
