"""PyTorch references and the comparisons the tests make.

Per-element values and gradients come from torch.nn.functional + torch.autograd. Tolerances:
  - per element: K * eps * scale, where `scale` is the magnitude of the terms of the formula (|exp(x)| + |t*x|,
    ...) rather than the result, so that catastrophic cancellation (exp(x) - t*x near 0) is judged by the
    rounding of the terms that produced it; plus a few of the dtype's smallest normal numbers (subnormals);
  - reductions: against math.fsum of PyTorch's per-element values (in float64), within RTOL * |ref| plus the
    per-element allowance summed (K * eps * sum of scales) — nllk's per-element values may differ from
    PyTorch's by a few ulp each;
  - NaN exactly where PyTorch gives NaN, infinities equal.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

K_ULP = 8                       # per-element allowance in units of eps * scale
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def eps_of(dt):
    return float(np.finfo(dt).eps)


def tiny_of(dt):
    return float(np.finfo(dt).tiny)


def to_np(a):
    if isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return np.asarray(a)


def assert_close_elementwise(got, ref, scale, dt, what="", k=K_ULP):
    """got, ref: arrays of dtype dt (same shape); scale: float64 array of term magnitudes (broadcastable)."""
    got = to_np(got)
    ref = to_np(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == ref.dtype == dt, f"{what}: dtype {got.dtype} / {ref.dtype} != {dt}"
    g64 = got.astype(np.float64)
    r64 = ref.astype(np.float64)
    nan_got, nan_ref = np.isnan(g64), np.isnan(r64)
    bad = np.flatnonzero(nan_got != nan_ref)
    assert bad.size == 0, (f"{what}: NaN mismatch at {bad[:5]} (got {got.flat[bad[0]]}, PyTorch "
                           f"{ref.flat[bad[0]]})")
    inf_ref = np.isinf(r64)
    bad = np.flatnonzero(inf_ref & (g64 != r64))
    assert bad.size == 0, f"{what}: Inf mismatch at {bad[:5]} (got {got.flat[bad[0]]}, PyTorch {ref.flat[bad[0]]})"
    fin = ~(nan_ref | inf_ref)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), got.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = k * eps_of(dt) * np.where(np.isfinite(scale), scale, np.abs(r64)) + 4 * tiny_of(dt)
        err = np.abs(g64 - r64)
    bad = np.flatnonzero(fin & ~(err <= tol))
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} elements differ beyond tolerance; first at flat {i}: got "
                             f"{got.flat[i]!r}, PyTorch {ref.flat[i]!r}, |diff| {err.flat[i]:.3g} > tol "
                             f"{tol.flat[i]:.3g} (scale {scale.flat[i]:.3g})")


def assert_equal_exact(got, ref, what=""):
    """Bitwise-equal values (including the sign of zero), NaN where ref is NaN."""
    got, ref = to_np(got), to_np(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != {ref.dtype}"
    nan_g, nan_r = np.isnan(got), np.isnan(ref)
    same = np.where(nan_r, nan_g, (got == ref) & (np.signbit(got) == np.signbit(ref)))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (f"{what}: {bad.size} elements differ; first at flat {bad[0]}: got {got.flat[bad[0]]!r}, "
                           f"PyTorch {ref.flat[bad[0]]!r}")


def assert_reduction(got, per_elem, scale, reduction, dt, what="", denominator=None, k=K_ULP, allowance=None):
    """got: nllk's 0-d mean or sum; per_elem: PyTorch's per-element values; scale: their term magnitudes
    (per-element tolerance: k * eps * sum(scale)), or `allowance` the absolute allowance for the sum instead;
    denominator: the mean's divisor (numel by default)."""
    got = to_np(got)
    assert got.shape == (), f"{what}: shape {got.shape} != ()"
    assert got.dtype == dt, f"{what}: dtype {got.dtype} != {dt}"
    p = to_np(per_elem).astype(np.float64).ravel()
    n = p.size if denominator is None else denominator
    g = float(got)
    if not np.all(np.isfinite(p)):
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.sum(p)
            if reduction == "mean":
                ref = ref / np.float64(n)
            ref = float(ref)
        assert (math.isnan(g) and math.isnan(ref)) or g == ref, f"{what}: got {g}, expected {ref} (non-finite)"
        return
    total = math.fsum(p)
    if allowance is None:
        allowance = k * eps_of(dt) * float(np.sum(np.broadcast_to(np.asarray(scale, np.float64),
                                                                  to_np(per_elem).shape)))
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            ref = np.float64(total) / np.float64(n)
        if n != 0:
            allowance /= abs(n)
        if not np.isfinite(ref):
            assert (math.isnan(g) and np.isnan(ref)) or g == ref, f"{what}: got {g}, expected {ref}"
            return
        ref = float(ref)
    else:
        ref = total
    if abs(ref) >= float(np.finfo(dt).max) * (1 - 2 * eps_of(dt)) and math.isinf(g) and (g > 0) == (ref > 0):
        return  # the exact value is at or past the dtype's largest finite number: rounding it gives Inf
    tol = RTOL[dt] * abs(ref) + allowance + 4 * tiny_of(dt)
    if dt == np.float32:
        tol += abs(ref) * eps_of(dt)  # the result's own rounding to float32
    assert abs(g - ref) <= tol, f"{what}: got {g!r}, reference {ref!r}, |diff| {abs(g - ref):.3g} > tol {tol:.3g}"


# ---- Poisson ------------------------------------------------------------------------------------------------
def poisson_scale(x, t, log_input, full, eps, dt):
    """Per-element magnitude of the forward's terms (float64)."""
    x = to_np(x).astype(np.float64)
    t = to_np(t).astype(np.float64)
    e = float(np.asarray(eps, dtype=dt))
    with np.errstate(all="ignore"):
        if log_input:
            s = np.abs(np.exp(x)) + np.abs(t * x)
        else:
            s = np.abs(x) + np.abs(t * np.log(x + e))
        if full:
            st = np.abs(t * np.log(t)) + np.abs(t) + np.abs(0.5 * np.log(2 * np.pi * t))
            s = s + np.where(t > 1, st, 0.0)
    return s


def poisson_grad_scales(x, t, g, log_input, full, eps, dt):
    """(scale of grad_input, scale of grad_target) per element, float64; g broadcast to x."""
    x = to_np(x).astype(np.float64)
    t = to_np(t).astype(np.float64)
    g = np.abs(to_np(g).astype(np.float64))
    e = float(np.asarray(eps, dtype=dt))
    with np.errstate(all="ignore"):
        if log_input:
            si = g * (np.exp(x) + np.abs(t))
            st = g * np.abs(x)
        else:
            si = g * (1 + np.abs(t / (x + e)))
            st = g * np.abs(np.log(x + e))
        if full:
            st = st + np.where(t > 1, g * (np.abs(np.log(t)) + 2 + 0.5 / np.abs(t)), 0.0)
    return si, st


def torch_poisson(x, t, log_input, full, eps, reduction, grad_output=None):
    """PyTorch's (loss, per-element losses, grad_input, grad_target) for numpy x, t (same dtype)."""
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    tt = torch.from_numpy(np.array(t)).requires_grad_(True)
    loss = F.poisson_nll_loss(xt, tt, log_input=log_input, full=full, eps=eps, reduction=reduction)
    per = F.poisson_nll_loss(xt.detach(), tt.detach(), log_input=log_input, full=full, eps=eps, reduction="none")
    go = torch.from_numpy(np.array(grad_output, dtype=x.dtype)).reshape(loss.shape)
    gx, gt = torch.autograd.grad(loss, (xt, tt), go, allow_unused=True)
    if gx is None:
        gx = torch.zeros_like(xt)
    if gt is None:
        gt = torch.zeros_like(tt)
    return loss.detach().numpy(), per.numpy(), gx.numpy(), gt.numpy()


# ---- NLL ----------------------------------------------------------------------------------------------------
def torch_nll(x, t, weight, ignore_index, reduction, grad_output=None):
    """PyTorch's (loss, per-element losses, total_weight, grad_input) for numpy x (float), t (any int dtype:
    converted to int64, the only target dtype PyTorch takes for every shape)."""
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    tt = torch.from_numpy(np.asarray(t).astype(np.int64))
    wt = None if weight is None else torch.from_numpy(np.array(weight))
    loss = F.nll_loss(xt, tt, weight=wt, ignore_index=ignore_index, reduction=reduction)
    per = F.nll_loss(xt.detach(), tt, weight=wt, ignore_index=ignore_index, reduction="none")
    xd = xt.detach()
    red = {"none": 0, "mean": 1, "sum": 2}[reduction]
    # the total_weight PyTorch's own backward uses (ATen's nll_loss_nd views 3-D and >4-D inputs as 4-D)
    if xd.dim() <= 2:
        _, tw = torch.ops.aten.nll_loss_forward(xd, tt, wt, red, ignore_index)
    else:
        n, c = xd.shape[:2]
        if xd.dim() != 4:
            xd = xd.reshape(n, c, 1, -1) if xd.numel() > 0 else xd.reshape(n, c, 0, 0)
            tt4 = tt.reshape(n, 1, -1) if tt.numel() > 0 else tt.reshape(n, 0, 0)
        else:
            tt4 = tt
        _, tw = torch.ops.aten.nll_loss2d_forward(xd, tt4, wt, red, ignore_index)
    gi = None
    if grad_output is not None:
        go = torch.from_numpy(np.array(grad_output, dtype=x.dtype)).reshape(loss.shape)
        (gi,) = torch.autograd.grad(loss, (xt,), go)
        gi = gi.numpy()
    return loss.detach().numpy(), per.numpy(), tw.numpy(), gi
