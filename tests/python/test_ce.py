"""nllk.cross_entropy / cross_entropy_forward / cross_entropy_backward and the cross-entropy accumulators against
torch.nn.functional.cross_entropy (PyTorch 1.13) + autograd.

References: PyTorch computing in float64 on the same values (upcast), so that an f32 result is judged against
the (nearly) exact value of its f32 inputs: per element within K * eps * scale, scale the magnitude of the
formula's terms (weights times |logits| and |lse|), never the result; reductions within the summed per-element
allowance over the denominator. Special values (Inf, NaN) are compared with PyTorch in the same dtype: NaN
exactly where PyTorch gives NaN, infinities equal. Exception types are compared with the ones PyTorch raises.
"""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
from reference import assert_close_elementwise, assert_equal_exact, eps_of

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
REDUCTIONS = ("none", "mean", "sum")
TARGET_DTYPES = [np.int64, np.int32, np.uint8]
SMOOTHINGS = (0.0, 0.1, 1.0)


# ---- references -------------------------------------------------------------------------------------------
def _is_prob(x, t):
    return x.shape == t.shape


def torch_ce(x, t, weight, ii, red, ls, go=None, dtype=torch.float64):
    """PyTorch's (loss, grad_input, grad_target) for numpy x, t (index targets converted to int64, the dtype
    PyTorch takes), computed in `dtype` (float64: the reference; None: x's own dtype). grad_* only with go."""
    dt = dtype or torch.from_numpy(np.zeros(0, x.dtype)).dtype
    xt = torch.from_numpy(np.array(x)).to(dt).requires_grad_(go is not None)
    prob = _is_prob(x, t)
    if prob:
        tt = torch.from_numpy(np.array(t)).to(dt).requires_grad_(go is not None)
    else:
        tt = torch.from_numpy(np.asarray(t).astype(np.int64))
    wt = None if weight is None else torch.from_numpy(np.array(weight)).to(dt)
    loss = F.cross_entropy(xt, tt, weight=wt, ignore_index=ii, reduction=red, label_smoothing=ls)
    if go is None:
        return loss.detach().numpy(), None, None
    g = torch.from_numpy(np.array(go)).to(dt).reshape(loss.shape)
    grads = torch.autograd.grad(loss, (xt, tt) if prob else (xt,), g, allow_unused=True)
    gx = grads[0].numpy()
    gt = grads[1].numpy() if prob else None
    return loss.detach().numpy(), gx, gt


def _classes_last(x):
    """x as (positions, C) float64 with the loss's position order."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        return x.reshape(1, -1)
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _scales(x, t, weight, ii, ls):
    """(per-position magnitude of the loss's terms, per-position weight magnitude A, per-element |x|+|lse|
    in input's layout as (positions, C)) in float64, and the 'mean' denominator as PyTorch's: total_weight for
    class indices, N*d for probabilities."""
    xs = _classes_last(x)
    c = xs.shape[1]
    with np.errstate(all="ignore"):
        m = np.max(xs, axis=1, initial=-np.inf) if c else np.full(xs.shape[0], -np.inf)
        mm = np.where(np.isfinite(m), m, 0.0)
        lse = mm + np.log(np.sum(np.exp(xs - mm[:, None]), axis=1))
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    wmax = float(np.max(np.abs(w), initial=0.0))
    if _is_prob(x, t):
        q = _classes_last(t)
        q = q * (1 - ls) + ls / c if ls > 0 else q
        a = np.sum(np.abs(q * w), axis=1)
        den = float(xs.shape[0])
    else:
        tt = np.asarray(t).astype(np.int64).ravel()
        keep = tt != ii
        a = np.where(keep, wmax, 0.0)
        den = math.fsum(w[tt[keep]]) if weight is not None else float(np.count_nonzero(keep))
    xmax = np.max(np.abs(xs), axis=1, initial=0.0)
    with np.errstate(all="ignore"):
        scale = a * (xmax + np.abs(lse) + 1.0)
        # the magnitudes log_softmax_k = (x_k - m) - logsum is computed from (PyTorch's order): independent of
        # an offset common to the row, which softmax does not see
        elem = np.abs(xs - mm[:, None]) + np.abs(lse - mm)[:, None] + 1.0
    return scale, a, elem, den, lse


def _k(dt, c):
    """Per-element allowance in eps * scale: a few ulp; f64 sums of c exps carry ~sqrt(c/16) ulp (nllk.h)."""
    return 8 if dt == F32 else 8 + 2 * math.sqrt(max(c, 1))


def _loss_shape(x, t):
    if x.ndim == 1:
        return ()
    return (x.shape[0],) + x.shape[2:]


def check_forward(x, t, weight, ii, red, ls, got, what):
    dt = x.dtype
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    ref, _, _ = torch_ce(x, t, weight, ii, red, ls)
    got = np.asarray(got)
    assert got.dtype == dt, what
    scale, _, _, den, _ = _scales(x, t, weight, ii, ls)
    k = _k(dt, c)
    if red == "none":
        assert got.shape == _loss_shape(x, t), what
        assert_close_elementwise(got, ref.astype(dt), scale.reshape(got.shape), dt, what, k=k)
        return
    assert got.shape == (), what
    r = float(ref)
    if math.isnan(r):
        assert math.isnan(float(got)), f"{what}: got {float(got)!r}, PyTorch NaN"
        return
    total = float(np.sum(scale))
    if red == "mean":
        total /= abs(den) if den else 1.0
    tol = k * eps_of(dt) * total + 2 * eps_of(dt) * abs(r) + 4 * np.finfo(dt).tiny
    assert abs(float(got) - r) <= tol, f"{what}: got {float(got)!r}, PyTorch (f64) {r!r}, tol {tol:.3g}"


def check_backward(x, t, weight, ii, red, ls, go, gx, gt, what):
    dt = x.dtype
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    _, gx_ref, gt_ref = torch_ce(x, t, weight, ii, red, ls, go=go)
    scale, a, elem, den, lse = _scales(x, t, weight, ii, ls)
    gabs = np.abs(np.asarray(go, np.float64)).reshape(-1)
    if red != "none":
        gabs = np.full(scale.shape, gabs[0])
    if red == "mean":
        gabs = gabs / (abs(den) if den else 1.0)
    w = np.ones(c) if weight is None else np.abs(np.asarray(weight, np.float64))
    wmax = float(np.max(w, initial=0.0))
    xs = _classes_last(x)
    with np.errstate(all="ignore"):
        p = np.exp(xs - lse[:, None])
        # G_k (~ g * (A + wmax)) and p_k * S, p_k with the relative error of exp(x - lse) (eps * (|x| + |lse|))
        s = gabs[:, None] * (a[:, None] + wmax) * (1.0 + p * elem)
    s = _from_classes_last(s, x.shape)
    # f64: PyTorch's own float64 softmax (the reference) carries up to ~c/16 ulp for large c (seen: 3400 ulp at
    # C = 2^18 where nllk was within 10 ulp of a 50-digit value), hence the allowance growing with c
    k = 16 if dt == F32 else 16 + c / 16
    assert_close_elementwise(gx, gx_ref.astype(dt), s, dt, what + " grad_input", k=k)
    if gt is not None:
        st = _from_classes_last(gabs[:, None] * w[None, :] * elem, x.shape)
        tdt = np.asarray(gt).dtype  # target's dtype (float32 probabilities with a float64 input)
        assert_close_elementwise(gt, gt_ref.astype(tdt), st, tdt, what + " grad_target", k=k if tdt == dt else 8)


def _from_classes_last(a, shape):
    if len(shape) == 1:
        return a.reshape(shape)
    n, c = shape[0], shape[1]
    return np.moveaxis(a.reshape((n,) + tuple(shape[2:]) + (c,)), -1, 1)


# ---- cases ------------------------------------------------------------------------------------------------
def _targets(rng, tshape, c, tdt, ii, p_ignore=0.2):
    t = rng.integers(0, max(c, 1), size=tshape) if c > 0 else np.zeros(tshape, np.int64)
    info = np.iinfo(tdt)
    if info.min <= ii <= info.max:
        t = np.where(rng.random(tshape) < p_ignore, ii, t)
    return np.asarray(t).astype(tdt)


def _probs(rng, shape, cdim, dt, kind):
    if kind == "onehotish":
        z = rng.random(shape) ** 4
    else:
        z = rng.random(shape)
    if kind != "unnormalised" and shape[cdim] > 0:
        z = z / np.sum(z, axis=cdim, keepdims=True)
    return z.astype(dt)


def make_case(seed):
    rng = np.random.default_rng(seed)
    dt = F32 if rng.random() < 0.6 else F64
    form = ["1d", "2d", "2d", "nd"][int(rng.integers(0, 4))]
    c = int(rng.choice([1, 2, 3, 5, 16, 17, 31, 100, 1000, 4099]))
    e = 1 if form == "1d" else int(rng.choice([0, 1, 2, 3, 7, 16, 33, 100, 257]))
    if c * e > 300_000:
        e = max(1, 300_000 // c)
    if form == "1d":
        xshape, tshape = (c,), ()
    elif form == "2d":
        xshape, tshape = (e, c), (e,)
    else:
        k = int(rng.integers(1, 4))
        dims = [e] + [int(rng.integers(1, 4)) for _ in range(k)]
        dims[0] = max(1, e // math.prod(dims[1:])) if e else 0
        xshape, tshape = (dims[0], c) + tuple(dims[1:]), tuple([dims[0]] + dims[1:])
    x = (rng.standard_normal(xshape) * float(rng.choice([1.0, 3.0, 20.0]))).astype(dt)
    prob = rng.random() < 0.3
    ls = float(rng.choice(SMOOTHINGS + (0.05, 0.5)))
    wkind = int(rng.integers(0, 4))
    weight = None if wkind == 0 else (rng.random(c) * 2 + 0.1).astype(dt)
    if wkind == 2 and c > 1:
        weight[int(rng.integers(0, c))] = 0.0
    if prob:
        t = _probs(rng, xshape, 0 if form == "1d" else 1, dt,
                   ["normal", "onehotish", "unnormalised"][int(rng.integers(0, 3))])
        if rng.random() < 0.2 and dt == F64:
            t = t.astype(F32)  # PyTorch computes float32 probabilities with a float64 input in float64
        ii = -100
    else:
        tdt = np.dtype(TARGET_DTYPES[int(rng.integers(0, 3))])
        if tdt == np.uint8 and c > 250:
            tdt = np.dtype(np.int32)
        ii = int(rng.choice([-100, int(rng.integers(0, c)), c + 3, -1]))
        if tdt == np.uint8:
            ii = int(rng.choice([-100, int(rng.integers(0, c)), 255]))
        t = _targets(rng, tshape, c, tdt, ii)
    red = REDUCTIONS[int(rng.integers(0, 3))]
    kind = "torch" if rng.random() < 0.5 else "numpy"
    layout = ["contiguous", "strided"][int(rng.integers(0, 2))]
    return dict(x=x, t=t, weight=weight, ii=ii, red=red, ls=ls, kind=kind, layout=layout, seed=seed)


def _arg(a, kind, layout):
    a = np.asarray(a)
    if layout == "strided" and a.ndim >= 1:
        big = np.zeros(a.shape + (2,), dtype=a.dtype)
        big[..., 1] = a
        a = big[..., 1]
    return torch.from_numpy(a) if kind == "torch" else a


def _what(case):
    x, t = case["x"], case["t"]
    return (f"seed {case['seed']}: {x.dtype} x{x.shape} t{t.shape} {t.dtype} "
            f"w={'none' if case['weight'] is None else 'set'} ii={case['ii']} ls={case['ls']} {case['red']} "
            f"{case['kind']} {case['layout']}")


def run_case(case):
    x, t, weight, ii, red, ls = (case[k] for k in ("x", "t", "weight", "ii", "red", "ls"))
    kind, layout, what = case["kind"], case["layout"], _what(case)
    prob = _is_prob(x, t)
    xa, ta = _arg(x, kind, layout), _arg(t, kind, layout)
    wa = None if weight is None else _arg(weight, kind, layout)
    out = nllk.cross_entropy(xa, ta, weight=wa, ignore_index=ii, reduction=red, label_smoothing=ls)
    cls = torch.Tensor if kind == "torch" else np.ndarray
    assert isinstance(out, cls), what
    check_forward(x, t, weight, ii, red, ls, out, what)
    out2, tw, lse = nllk.cross_entropy_forward(xa, ta, weight=wa, ignore_index=ii, reduction=red,
                                               label_smoothing=ls)
    assert_equal_exact(out2, out, what + " cross_entropy_forward")
    # lse against PyTorch's logsumexp in float64
    _, _, _, _, lse_ref = _scales(x, t, weight, ii, ls)
    xs = _classes_last(x)
    lse_np = np.asarray(lse).reshape(-1).astype(np.float64)
    fin = np.isfinite(lse_ref)
    lse_t = torch.logsumexp(torch.from_numpy(xs), dim=1).numpy() if xs.shape[1] else lse_ref
    if fin.any():
        err = np.abs(lse_np[fin] - lse_t[fin])
        tol = 4 * eps_of(x.dtype) * (np.abs(lse_t[fin]) + np.max(np.abs(xs), axis=1, initial=0)[fin] + 1)
        assert np.all(err <= tol * (1 if x.dtype == F32 else _k(x.dtype, xs.shape[1]))), what + " lse"

    # backward
    rng = np.random.default_rng(case["seed"] + 11)
    go = np.asarray(rng.standard_normal(_loss_shape(x, t)) if red == "none" else rng.choice([1.0, -0.5, 3.0]),
                    dtype=x.dtype)
    goa = torch.from_numpy(go) if kind == "torch" else go
    kw = dict(weight=wa, ignore_index=ii, reduction=red, label_smoothing=ls)
    if prob:
        gx, gt = nllk.cross_entropy_backward(goa, xa, ta, compute_grad_target=True, **kw)
        assert isinstance(gt, cls) and tuple(gt.shape) == t.shape and np.asarray(gt).dtype == t.dtype, what
    else:
        gx, gt = nllk.cross_entropy_backward(goa, xa, ta, **kw), None
    assert isinstance(gx, cls) and tuple(gx.shape) == x.shape and np.asarray(gx).dtype == x.dtype, what
    # the forward's lse and total_weight give the same bits as recomputing them
    gx2 = nllk.cross_entropy_backward(goa, xa, ta, total_weight=tw, lse=lse, **kw)
    assert_equal_exact(gx2, gx, what + " grad_input with lse/total_weight")
    check_backward(x, t, weight, ii, red, ls, go, gx, gt if prob else None, what)


@pytest.mark.parametrize("seed", range(160))
def test_random_matrix(seed):
    run_case(make_case(seed))


# ---- every option combination, systematically ------------------------------------------------------------
SHAPES = [((7,), ()), ((9, 7), (9,)), ((4, 7, 5), (4, 5)), ((2, 7, 3, 4), (2, 3, 4)), ((2, 7, 2, 1, 3), (2, 2, 1, 3))]


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x" + "x".join(map(str, s[0])))
@pytest.mark.parametrize("ls", SMOOTHINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ii", [-100, 2, 9])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_class_index_options(dt, shapes, ls, weighted, ii, red):
    """Every reduction x smoothing x weight x ignore_index (outside [0, C) below and above, and a class that
    occurs) on every rank; ignored targets present (PyTorch 1.13's 'mean' normalisation of the smoothing term
    with and without weights)."""
    xshape, tshape = shapes
    rng = np.random.default_rng(hash((xshape, ls, weighted, ii, red)) % 2**32)
    c = xshape[0] if len(xshape) == 1 else xshape[1]
    x = (rng.standard_normal(xshape) * 3).astype(dt)
    t = _targets(rng, tshape, c, np.int64, ii, p_ignore=0.3)
    weight = (rng.random(c) + 0.2).astype(dt) if weighted else None
    run_case(dict(x=x, t=t, weight=weight, ii=ii, red=red, ls=ls, kind="numpy", layout="contiguous", seed=0))


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x" + "x".join(map(str, s[0])))
@pytest.mark.parametrize("ls", SMOOTHINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_prob_target_options(dt, shapes, ls, weighted, red):
    """Probability targets (input's shape) with smoothing, weights, every reduction and rank; grad_target."""
    xshape, _ = shapes
    rng = np.random.default_rng(hash((xshape, ls, weighted, red, 1)) % 2**32)
    c = xshape[0] if len(xshape) == 1 else xshape[1]
    x = (rng.standard_normal(xshape) * 3).astype(dt)
    t = _probs(rng, xshape, 0 if len(xshape) == 1 else 1, dt, "normal")
    weight = (rng.random(c) + 0.2).astype(dt) if weighted else None
    run_case(dict(x=x, t=t, weight=weight, ii=-100, red=red, ls=ls, kind="torch", layout="contiguous", seed=0))


@pytest.mark.parametrize("weighted", [False, True])
def test_float32_logits_with_float64_probabilities_promote(weighted):
    """PyTorch: float32 logits with float64 probabilities give a float64 loss (and float32 grad_input)."""
    rng = np.random.default_rng(64)
    x = rng.standard_normal((30, 6, 2)).astype(F32)
    t = _probs(rng, x.shape, 1, F64, "normal")
    w = (rng.random(6) + 0.5).astype(F32) if weighted else None
    for red in REDUCTIONS:
        got = nllk.cross_entropy(torch.from_numpy(x), torch.from_numpy(t),
                                 weight=None if w is None else torch.from_numpy(w), reduction=red)
        ref_same = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t),
                                   weight=None if w is None else torch.from_numpy(w), reduction=red)
        assert got.dtype == ref_same.dtype == torch.float64
        check_forward(x.astype(F64), t, None if w is None else w.astype(F64), -100, red, 0.0, got, red)
        go = np.ones(got.shape, F64)
        gx, gt = nllk.cross_entropy_backward(go, x, t, weight=w, reduction=red, compute_grad_target=True)
        assert gx.dtype == F32 and gt.dtype == F64


@pytest.mark.parametrize("tdt", TARGET_DTYPES)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_target_dtypes_give_the_same_bits(tdt, ls):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 9, 3)).astype(F32)
    t64 = rng.integers(0, 9, size=(50, 3))
    w = (rng.random(9) + 0.5).astype(F32)
    for red in REDUCTIONS:
        ref = nllk.cross_entropy(x, t64, weight=w, reduction=red, label_smoothing=ls)
        got = nllk.cross_entropy(x, t64.astype(tdt), weight=w, reduction=red, label_smoothing=ls)
        assert_equal_exact(got, ref, f"{tdt} {red}")
        check_forward(x, t64, w, -100, red, ls, got, f"{tdt} {red}")


# ---- sizes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("prob", [False, True])
def test_one_class(dt, prob):
    """C = 1: log_softmax = 0, loss -0 for class indices (as PyTorch)."""
    rng = np.random.default_rng(1)
    for xshape in [(1,), (6, 1), (3, 1, 4)]:
        x = (rng.standard_normal(xshape) * 5).astype(dt)
        tshape = _loss_shape(x, None)
        t = _probs(rng, xshape, 0 if len(xshape) == 1 else 1, dt, "unnormalised") if prob else \
            np.zeros(tshape, np.int64)
        for red in REDUCTIONS:
            for ls in SMOOTHINGS:
                for w in (None, np.array([0.5], dt)):
                    run_case(dict(x=x, t=t, weight=w, ii=-100, red=red, ls=ls, kind="numpy",
                                  layout="contiguous", seed=3))
                    if not prob and red == "none" and len(xshape) > 1:
                        ref, _, _ = torch_ce(x, t, w, -100, red, ls, dtype=None)
                        assert_equal_exact(nllk.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=ls),
                                           ref, f"C=1 {xshape} ls={ls} (sign of zero)")


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("prob", [False, True])
def test_vocabulary_of_2_18_classes(dt, ls, prob):
    """C = 2^18 (an LLM vocabulary), small N, with weights and an ignored row."""
    c = 1 << 18
    rng = np.random.default_rng(18)
    x = (rng.standard_normal((3, c)) * 4).astype(dt)
    x[1, 12345] = 30.0  # a dominant class
    w = (rng.random(c) + 0.5).astype(dt)
    if prob:
        t = _probs(rng, x.shape, 1, dt, "onehotish")
        ii = -100
    else:
        t = np.array([c - 1, 12345, 7], np.int64)
        ii = 7
    for red in REDUCTIONS:
        for weight in (None, w):
            run_case(dict(x=x, t=t, weight=weight, ii=ii, red=red, ls=ls, kind="numpy", layout="contiguous",
                          seed=18))


@pytest.mark.parametrize("xshape", [(0, 4), (0, 4, 3), (2, 4, 0), (2, 4, 3, 0), (0, 4, 2, 2)])
@pytest.mark.parametrize("prob", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_empty_batch(xshape, prob, ls):
    """No positions: 'none' is empty, 'sum' 0, 'mean' NaN, as PyTorch; gradients empty."""
    x = np.zeros(xshape, F32)
    t = np.zeros(xshape, F32) if prob else np.zeros((xshape[0],) + xshape[2:], np.int64)
    for red in REDUCTIONS:
        for w in (None, np.ones(4, F32)):
            ref, _, _ = torch_ce(x, t, w, -100, red, ls, dtype=None)
            got = nllk.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=ls)
            if prob and red == "sum":  # the sign of zero: test_empty_prob_sum_sign_of_zero
                ref = np.abs(ref)
            assert_equal_exact(got, ref, f"{xshape} prob={prob} {red} w={w is not None}")
            go = np.zeros(ref.shape, F32) if red == "none" else np.float32(1.0)
            gx = nllk.cross_entropy_backward(go, x, t, weight=w, reduction=red, label_smoothing=ls)
            assert np.asarray(gx).shape == xshape


@pytest.mark.xfail(strict=True, reason="sign of zero: an empty probability-target 'sum' is +0.0 in nllk (the "
                   "canonical sum of no terms), -0.0 in PyTorch (-(input * target).sum())")
def test_empty_prob_sum_sign_of_zero():
    x = np.zeros((0, 4), F32)
    ref, _, _ = torch_ce(x, x, None, -100, "sum", 0.0, dtype=None)
    assert_equal_exact(nllk.cross_entropy(x, x, reduction="sum"), ref, "empty prob sum")


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", SMOOTHINGS)
def test_all_ignored(dt, ls):
    """Every target ignored: 'mean' NaN (0/0), 'sum' 0, 'none' zeros, gradients as PyTorch's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6, 2)).astype(dt)
    t = np.full((5, 2), 3, np.int64)
    for red in REDUCTIONS:
        for w in (None, (rng.random(6) + 0.1).astype(dt)):
            ref, _, _ = torch_ce(x, t, w, 3, red, ls, dtype=None)
            got = nllk.cross_entropy(x, t, weight=w, ignore_index=3, reduction=red, label_smoothing=ls)
            assert_equal_exact(got, ref, f"all ignored {red} ls={ls}")
            go = np.ones(ref.shape, dt)
            _, gref, _ = torch_ce(x, t, w, 3, red, ls, go=go, dtype=None)
            gx = nllk.cross_entropy_backward(go if red == "none" else go.reshape(()), x, t, weight=w,
                                             ignore_index=3, reduction=red, label_smoothing=ls)
            assert_equal_exact(gx, gref, f"all ignored grad {red} ls={ls}")


def test_label_smoothing_mean_normalisation():
    """PyTorch 1.13's 'mean' with smoothing and ignored targets: without weights, with weights (explicit
    numbers from PyTorch, so a change of either normalisation fails here)."""
    rng = np.random.default_rng(61309)
    x = rng.standard_normal((8, 5))
    t = np.array([0, -100, 2, -100, 4, 1, -100, 3])
    w = rng.random(5) + 0.5
    for weight in (None, w):
        for ls in (0.1, 0.5, 1.0):
            ref, _, _ = torch_ce(x, t, weight, -100, "mean", ls)
            got = float(nllk.cross_entropy(x, t, weight=weight, label_smoothing=ls))
            assert abs(got - float(ref)) <= 1e-14 * abs(float(ref)) + 1e-15, (weight is None, ls, got, ref)


@pytest.mark.parametrize("tdt", TARGET_DTYPES)
def test_ignore_index_inside_and_outside(tdt):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 6)).astype(F32)
    t = rng.integers(0, 6, size=40).astype(tdt)
    for ii in (-100, -1, 0, 3, 5, 6, 200):
        for ls in (0.0, 0.2):
            for red in REDUCTIONS:
                run_case(dict(x=x, t=t, weight=None, ii=ii, red=red, ls=ls, kind="numpy", layout="contiguous",
                              seed=ii & 0xff))


# ---- extreme logits --------------------------------------------------------------------------------------
def _extreme_inputs(dt):
    ni, nan = -np.inf, np.nan
    rows = [
        [1e30, -1e30, 0.0, 1.0],        # huge magnitudes
        [-1e30, -1e30, -1e30, -1e30 * (1 - 1e-6)],  # huge, nearly equal (test_grad_is_offset_invariant)
        [ni, 0.5, ni, 2.0],              # -Inf in some classes
        [ni, ni, ni, ni],                # an all -Inf row
        [nan, 0.0, 1.0, 2.0],            # NaN
        [np.inf, 0.0, 1.0, 2.0],         # +Inf
        [30.0, -30.0, 88.0, -88.0],      # exp over/underflow territory of f32
        [0.0, -0.0, 0.0, -0.0],
    ]
    return np.array(rows, dtype=dt)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_extreme_logits_class_index(dt, ls, weighted):
    """±1e30, -Inf in some classes, all -Inf rows, NaN, +Inf: NaN/Inf where PyTorch (same dtype) has them,
    finite values within tolerance of the float64 reference; gradients likewise."""
    x = _extreme_inputs(dt)
    w = np.array([0.5, 1.0, 2.0, 0.25], dt) if weighted else None
    for t in (np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([1, 0, 0, 2, 3, 3, 1, 1]),
              np.array([2, 1, 1, 0, 1, 2, 3, 0])):
        for red in REDUCTIONS:
            what = f"extreme t={t.tolist()} {red} ls={ls} w={weighted}"
            got = nllk.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=ls)
            ref_same, _, _ = torch_ce(x, t, w, -100, red, ls, dtype=None)
            _check_specials(got, ref_same, x, t, w, -100, red, ls, what)
            go = np.ones(_loss_shape(x, t), dt) if red == "none" else np.asarray(1.0, dt)
            gx = nllk.cross_entropy_backward(go, x, t, weight=w, reduction=red, label_smoothing=ls)
            _, gref, _ = torch_ce(x, t, w, -100, red, ls, go=go, dtype=None)
            _check_grad_specials(gx, gref, x, t, w, -100, red, ls, go, what)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_extreme_logits_prob(dt, ls):
    x = _extreme_inputs(dt)
    rng = np.random.default_rng(9)
    for t in (_probs(rng, x.shape, 1, dt, "normal"), np.eye(4, dtype=dt)[[0, 1, 1, 3, 1, 2, 0, 3]]):
        for red in REDUCTIONS:
            what = f"extreme prob {red} ls={ls}"
            got = nllk.cross_entropy(x, t, reduction=red, label_smoothing=ls)
            ref_same, _, _ = torch_ce(x, t, None, -100, red, ls, dtype=None)
            _check_specials(got, ref_same, x, t, None, -100, red, ls, what)
            go = np.ones(_loss_shape(x, t), dt) if red == "none" else np.asarray(1.0, dt)
            gx, gt = nllk.cross_entropy_backward(go, x, t, reduction=red, label_smoothing=ls,
                                                 compute_grad_target=True)
            _, gref, gtref = torch_ce(x, t, None, -100, red, ls, go=go, dtype=None)
            _check_grad_specials(gx, gref, x, t, None, -100, red, ls, go, what)
            _check_grad_specials(gt, gtref, x, t, None, -100, red, ls, go, what + " grad_target", target=True)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("prob", [False, True])
def test_grad_is_offset_invariant(dt, prob):
    """Softmax ignores a common offset, and so does PyTorch's gradient (to a few ulp): logits + 30, + 1000,
    + 1e5, and a row of equal -1e30 logits. (nllk's backward once exponentiated x - lse with lse rounded to the
    dtype: p = 1 instead of 1/C on the -1e30 rows, errors of 2.7e-3 at + 1e5; it now keeps max and exp-sum apart.)"""
    rng = np.random.default_rng(30)
    base = rng.standard_normal((64, 50)) * 2
    rows = [base + off for off in (30.0, 1e3, 1e5)] + [np.full((4, 50), -1e30)]
    for x in rows:
        x = x.astype(dt)
        t = _probs(rng, x.shape, 1, dt, "normal") if prob else rng.integers(0, 50, x.shape[0])
        _, gref, _ = torch_ce(x, t, None, -100, "sum", 0.0, go=np.asarray(1.0, dt))
        gx = nllk.cross_entropy_backward(np.asarray(1.0, dt), x, t, reduction="sum")
        assert_close_elementwise(gx, gref.astype(dt), 1.0, dt, f"offset {float(x[0, 0]):.3g}", k=16)


def _check_specials(got, ref_same, x, t, w, ii, red, ls, what):
    got, ref_same = np.asarray(got), np.asarray(ref_same)
    assert got.shape == ref_same.shape, what
    nan_g, nan_r = np.isnan(got), np.isnan(ref_same)
    assert np.array_equal(nan_g, nan_r), f"{what}: NaN at {np.flatnonzero(nan_g)}, PyTorch at " \
                                         f"{np.flatnonzero(nan_r)} (got {got}, PyTorch {ref_same})"
    inf_r = np.isinf(ref_same)
    assert np.array_equal(got[inf_r], ref_same[inf_r]), f"{what}: Inf: got {got}, PyTorch {ref_same}"
    assert not np.any(np.isinf(got) & ~inf_r), f"{what}: got {got}, PyTorch {ref_same}"
    fin = ~(nan_r | inf_r)
    if red == "none" and fin.any():
        ref64, _, _ = torch_ce(x, t, w, ii, red, ls)
        scale, _, _, _, _ = _scales(x, t, w, ii, ls)
        scale = np.where(np.isfinite(scale), scale, np.abs(ref64))
        with np.errstate(invalid="ignore"):
            err = np.abs(got.astype(np.float64) - ref64)[fin]
        assert np.all(err <= 8 * eps_of(x.dtype) * scale[fin] + 1e-300), f"{what}: got {got}, ref {ref64}"
    elif fin.all():
        ref64, _, _ = torch_ce(x, t, w, ii, red, ls)
        assert abs(float(got) - float(ref64)) <= 1e-5 * abs(float(ref64)) + 1e-30, f"{what}: {got} vs {ref64}"


def _check_grad_specials(g, gref_same, x, t, w, ii, red, ls, go, what, target=False):
    g, gref_same = np.asarray(g), np.asarray(gref_same)
    nan_g, nan_r = np.isnan(g), np.isnan(gref_same)
    assert np.array_equal(nan_g, nan_r), (f"{what} grad: NaN at {np.argwhere(nan_g).tolist()}, PyTorch at "
                                          f"{np.argwhere(nan_r).tolist()}\n got {g}\n PyTorch {gref_same}")
    inf_r = np.isinf(gref_same)
    assert np.array_equal(g[inf_r], gref_same[inf_r]) and not np.any(np.isinf(g) & ~inf_r), \
        f"{what} grad: got {g}, PyTorch {gref_same}"
    fin = ~(nan_r | inf_r)
    _, gx64, gt64 = torch_ce(x, t, w, ii, red, ls, go=go)
    ref64 = gt64 if target else gx64
    with np.errstate(invalid="ignore"):
        err = np.abs(g.astype(np.float64) - ref64)[fin]
    # entries are bounded by |g| * (weights): absolute tolerance; |x - lse| may be ~1e30 for grad_target
    mag = np.abs(x.astype(np.float64)) + 1.0 if target else 1.0
    mag = np.broadcast_to(mag, g.shape)[fin]
    wmax = 1.0 if w is None else float(np.max(np.abs(w)))
    assert np.all(err <= 64 * eps_of(x.dtype) * wmax * (mag + np.abs(ref64[fin])) + 1e-300), \
        f"{what} grad: got {g}, ref {ref64}"


# ---- gradcheck (f64): nllk's backward against finite differences of nllk's forward -------------------------
class _NllkCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t, weight, ii, red, ls):
        ctx.save_for_backward(x, t)
        ctx.opts = (weight, ii, red, ls)
        with torch.no_grad():
            return nllk.cross_entropy(x.detach(), t.detach(), weight=weight, ignore_index=ii, reduction=red,
                                      label_smoothing=ls)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        weight, ii, red, ls = ctx.opts
        prob = x.shape == t.shape
        kw = dict(weight=weight, ignore_index=ii, reduction=red, label_smoothing=ls)
        if prob:
            gx, gt = nllk.cross_entropy_backward(g.contiguous(), x.detach(), t.detach(), compute_grad_target=True,
                                                 **kw)
            return gx, gt, None, None, None, None
        return nllk.cross_entropy_backward(g.contiguous(), x.detach(), t, **kw), None, None, None, None, None


@pytest.mark.parametrize("xshape", [(5,), (4, 5), (3, 5, 2), (2, 4, 2, 3)])
@pytest.mark.parametrize("prob", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_gradcheck_f64(xshape, prob, ls, red):
    rng = np.random.default_rng(7)
    c = xshape[0] if len(xshape) == 1 else xshape[1]
    x = torch.from_numpy(rng.standard_normal(xshape) * 2).requires_grad_(True)
    w = torch.from_numpy(rng.random(c) + 0.5)
    if prob:
        t = torch.from_numpy(_probs(rng, xshape, 0 if len(xshape) == 1 else 1, F64, "normal")).requires_grad_(True)
        ii = -100
    else:
        tn = _targets(rng, _loss_shape(np.zeros(xshape), None), c, np.int64, 1, 0.3)
        tn.flat[0] = 0  # (not all ignored: an all-ignored 'mean' is NaN)
        t = torch.from_numpy(tn)
        ii = 1
    for weight in (None, w):
        assert torch.autograd.gradcheck(lambda a, b: _NllkCE.apply(a, b, weight, ii, red, ls), (x, t),
                                        eps=1e-6, atol=1e-7, rtol=1e-6)


# ---- errors: the exception types PyTorch raises ----------------------------------------------------------
def _both(call_torch, call_nllk):
    try:
        call_torch()
    except Exception as e:
        te = e
    else:
        raise AssertionError("PyTorch accepted the call")
    with pytest.raises(type(te)) as info:
        call_nllk()
    assert isinstance(info.value, nllk.NllkError), type(info.value)
    return info.value, te


_X = np.random.default_rng(0).standard_normal((4, 5)).astype(F32)
_X3 = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(F32)


ERROR_CASES = {
    "target above C": (_X, np.array([0, 5, 7, 1]), {}),
    "target negative": (_X, np.array([0, 1, -3, 1]), {}),
    "target out of range with smoothing": (_X, np.array([0, 1, 9, 1]), {"label_smoothing": 0.1}),
    "target out of range, reduction none": (_X, np.array([0, 1, 2, 11]), {"reduction": "none"}),
    "batch mismatch": (_X, np.array([0, 1, 2]), {}),
    "spatial mismatch": (_X3, np.zeros((2, 4), np.int64), {}),
    "rank of target": (_X, np.zeros((4, 2), np.int64), {}),
    "label_smoothing > 1": (_X, np.array([0, 1, 2, 3]), {"label_smoothing": 1.5}),
    "label_smoothing > 1 prob": (_X, np.full((4, 5), 0.2, F32), {"label_smoothing": 1.01}),
    "label_smoothing str": (_X, np.array([0, 1, 2, 3]), {"label_smoothing": "a"}),
    "label_smoothing None": (_X, np.array([0, 1, 2, 3]), {"label_smoothing": None}),
    "prob target wrong shape": (_X, np.full((4, 6), 0.2, F32), {}),
    "prob target wrong shape nd": (_X3, np.full((2, 5, 4), 0.2, F32), {}),
    "prob target of ints": (_X, np.zeros((4, 5), np.int64), {}),
    "prob target with ignore_index": (_X, np.full((4, 5), 0.2, F32), {"ignore_index": 1}),
    "float index target": (_X, np.array([0.0, 1.0, 2.0, 3.0], F32), {}),
    "weight length": (_X, np.array([0, 1, 2, 3]), {"weight": np.ones(4, F32)}),
    "weight length prob": (_X, np.full((4, 5), 0.2, F32), {"weight": np.ones(3, F32)}),
    "bad reduction": (_X, np.array([0, 1, 2, 3]), {"reduction": "avg"}),
    "ignore_index float": (_X, np.array([0, 1, 2, 3]), {"ignore_index": 1.5}),
    "ignore_index overflow": (_X, np.array([0, 1, 2, 3]), {"ignore_index": 2 ** 70}),
    "0-d input": (np.float32(1.0), np.float32(1.0), {}),
    "integer input": (_X.astype(np.int32), np.array([0, 1, 2, 3]), {}),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_errors_raise_pytorchs_exception_types(name):
    x, t, kw = ERROR_CASES[name]

    def torch_kw():
        out = dict(kw)
        if isinstance(out.get("weight"), np.ndarray):
            out["weight"] = torch.from_numpy(out["weight"])
        return out

    e, te = _both(lambda: F.cross_entropy(torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(t)),
                                          **torch_kw()),
                  lambda: nllk.cross_entropy(x, t, **kw))
    if name.startswith("target"):
        assert isinstance(e, nllk.NllkIndexError)
        assert e.index == int(np.flatnonzero((t < 0) | (t >= 5))[0]), (e.index, t)  # the lowest offending
    # the backward checks the same things
    if name.startswith("target") or "label_smoothing > 1" in name or "shape" in name:
        go = np.ones(t.shape, F32) if kw.get("reduction") == "none" else np.float32(1.0)
        with pytest.raises(type(te)):
            nllk.cross_entropy_backward(go, x, t, **kw)


def test_lowest_out_of_range_index_is_reported():
    x = np.zeros((6, 3, 4), F32)
    t = np.zeros((6, 4), np.int64)
    t[5, 0] = 3
    t[2, 3] = -1
    t[4, 1] = 99
    with pytest.raises(IndexError) as info:
        nllk.cross_entropy(x, t, label_smoothing=0.1)
    assert info.value.index == 2 * 4 + 3


@pytest.mark.parametrize("ls", [-0.1, -1.0, float("nan"), -0.0])
def test_negative_or_nan_smoothing_is_no_smoothing(ls):
    """PyTorch 1.13 smooths only when label_smoothing > 0 (no error below 0): the same values."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    for t in (np.array([0, 1, 2, 3, 0, 1]), _probs(rng, x.shape, 1, F64, "normal")):
        ref, _, _ = torch_ce(x, t, None, -100, "mean", ls)
        got = nllk.cross_entropy(x, t, label_smoothing=ls)
        assert_equal_exact(got, nllk.cross_entropy(x, t), f"ls={ls}")
        assert abs(float(got) - float(ref)) <= 1e-14 * abs(float(ref))


def test_legacy_size_average_and_reduce():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 1, 2, 3, 0, 1])
    for sa in (None, True, False):
        for rd in (None, True, False):
            if sa is None and rd is None:
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), size_average=sa, reduce=rd,
                                      reduction="none")
                got = nllk.cross_entropy(x, t, size_average=sa, reduce=rd, reduction="none")
            assert len(caught) == 2 and str(caught[0].message) == str(caught[1].message)
            assert np.asarray(got).shape == tuple(ref.shape)
            np.testing.assert_allclose(np.asarray(got), ref.numpy(), rtol=1e-14, atol=1e-15)


def test_functions_refuse_grad_tracking_tensors():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2])
    with pytest.raises(nllk.NllkRuntimeError):
        nllk.cross_entropy_forward(x, t)
    with pytest.raises(nllk.NllkRuntimeError):
        nllk.cross_entropy_backward(torch.tensor(1.0, dtype=torch.float64), x, t)
    with torch.no_grad():
        assert torch.equal(nllk.cross_entropy(x, t), nllk.cross_entropy(x.detach(), t))


def test_compute_grad_target_needs_probabilities():
    with pytest.raises(nllk.NllkRuntimeError):
        nllk.cross_entropy_backward(np.float32(1.0), _X, np.array([0, 1, 2, 3]), compute_grad_target=True)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((20, 7)).astype(F32)
    t = _probs(rng, x.shape, 1, F32, "normal")
    ti = rng.integers(0, 7, 20)
    w = (rng.random(7) + 0.5).astype(F32)
    copies = [a.copy() for a in (x, t, ti, w)]
    for tt in (t, ti):
        _, tw, lse = nllk.cross_entropy_forward(x, tt, weight=w, label_smoothing=0.1)
        lse_copy = lse.copy()
        nllk.cross_entropy_backward(np.float32(2.0), x, tt, weight=w, label_smoothing=0.1, lse=lse)
        nllk.cross_entropy_backward(np.float32(2.0), x, tt, weight=w, label_smoothing=0.1, lse=lse,
                                    total_weight=tw)
        assert_equal_exact(lse, lse_copy)
    for a, b in zip((x, t, ti, w), copies):
        assert_equal_exact(a, b)


# ---- determinism ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("prob", [False, True])
def test_threads_and_isas_give_the_same_bits(prob):
    rng = np.random.default_rng(21)
    shapes = [(3000, 37), (64, 4099), (5, 19, 300)]
    info = nllk.library_info()
    try:
        for shape in shapes:
            x = (rng.standard_normal(shape) * 4).astype(F32)
            t = _probs(rng, shape, 1, F32, "normal") if prob else \
                _targets(rng, (shape[0],) + shape[2:], shape[1], np.int64, 2)
            w = (rng.random(shape[1]) + 0.5).astype(F32)
            base = None
            for isa in info["isas"]:
                for k in (1, 2, 3):
                    nllk.set_isa(isa)
                    nllk.set_num_threads(k)
                    res = [nllk.cross_entropy_forward(x, t, weight=w, ignore_index=-100 if prob else 2,
                                                      reduction=red, label_smoothing=0.1)
                           for red in REDUCTIONS]
                    res.append(nllk.cross_entropy_backward(np.float32(1.5), x, t, weight=w,
                                                           ignore_index=-100 if prob else 2,
                                                           label_smoothing=0.1))
                    flat = [np.asarray(a).copy() for r in res[:3] for a in r] + [np.asarray(res[3])]
                    if base is None:
                        base = flat
                    else:
                        for a, b in zip(flat, base):
                            assert_equal_exact(a, b, f"{shape} {isa} threads={k}")
    finally:
        nllk.set_isa(None)
        nllk.set_num_threads(0)


# ---- streaming --------------------------------------------------------------------------------------------
def _chunks(rng, n):
    cuts = sorted(set(int(v) for v in rng.integers(0, n + 1, size=4)))
    edges = [0] + cuts + [n]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("spatial", [(), (3,), (2, 2)])
def test_accumulator_chunks_give_the_one_shot_bits(dt, ls, weighted, spatial):
    rng = np.random.default_rng(31)
    n, c = 700, 13
    x = (rng.standard_normal((n, c) + spatial) * 3).astype(dt)
    t = _targets(rng, (n,) + spatial, c, np.int64, 4)
    w = (rng.random(c) + 0.5).astype(dt) if weighted else None
    acc = nllk.CrossEntropyAccumulator(c, spatial, dtype=dt, weight=w, ignore_index=4, label_smoothing=ls)
    out = np.empty((n,) + spatial, dt)
    for a, b in _chunks(rng, n):
        acc.update(x[a:b], t[a:b], out=out[a:b])
    r = acc.result()
    mean, tw, _ = nllk.cross_entropy_forward(x, t, weight=w, ignore_index=4, reduction="mean", label_smoothing=ls)
    ssum = nllk.cross_entropy(x, t, weight=w, ignore_index=4, reduction="sum", label_smoothing=ls)
    none = nllk.cross_entropy(x, t, weight=w, ignore_index=4, reduction="none", label_smoothing=ls)
    assert_equal_exact(np.asarray(r.mean, dt), mean, "mean")
    assert_equal_exact(np.asarray(r.sum, dt), ssum, "sum")
    assert r.total_weight == float(tw)
    assert_equal_exact(out, none, "per-position losses")
    # shards merged in order
    mid = n // 3
    left = nllk.CrossEntropyAccumulator(c, spatial, dtype=dt, weight=w, ignore_index=4, label_smoothing=ls)
    right = nllk.CrossEntropyAccumulator(c, spatial, dtype=dt, weight=w, ignore_index=4, label_smoothing=ls,
                                         begin=mid * math.prod(spatial))
    left.update(x[:mid], t[:mid])
    right.update(x[mid:], t[mid:])
    assert left.merge(right).result() == r


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_prob_accumulator_chunks_give_the_one_shot_bits(dt, ls, weighted):
    rng = np.random.default_rng(32)
    n, c, spatial = 500, 11, (3,)
    x = (rng.standard_normal((n, c) + spatial) * 3).astype(dt)
    t = _probs(rng, x.shape, 1, dt, "normal")
    w = (rng.random(c) + 0.5).astype(dt) if weighted else None
    acc = nllk.CrossEntropyProbAccumulator(c, spatial, dtype=dt, weight=w, label_smoothing=ls)
    out = np.empty((n,) + spatial, dt)
    for a, b in _chunks(rng, n):
        acc.update(x[a:b], t[a:b], out=out[a:b])
    r = acc.result()
    kw = dict(weight=w, label_smoothing=ls)
    assert_equal_exact(np.asarray(r.mean, dt), nllk.cross_entropy(x, t, reduction="mean", **kw), "mean")
    assert_equal_exact(np.asarray(r.sum, dt), nllk.cross_entropy(x, t, reduction="sum", **kw), "sum")
    assert_equal_exact(out, nllk.cross_entropy(x, t, reduction="none", **kw), "per-position losses")
    assert r.count == n * 3


def test_accumulator_options_are_checked():
    with pytest.raises(RuntimeError):
        nllk.CrossEntropyAccumulator(5, label_smoothing=2.0)
    with pytest.raises(RuntimeError):
        nllk.CrossEntropyAccumulator(5, weight=np.ones(4, F32))
    with pytest.raises(TypeError):
        nllk.CrossEntropyProbAccumulator(5, label_smoothing="x")
    with pytest.raises(nllk.NllkTypeError):
        nllk.CrossEntropyAccumulator(5).merge(nllk.CrossEntropyProbAccumulator(5))
    acc = nllk.CrossEntropyProbAccumulator(5)
    with pytest.raises(ValueError):
        acc.update(np.zeros((2, 5), F32), np.zeros((2, 4), F32))


@pytest.mark.parametrize("ls", [1, True, False, 0, np.float32(0.25), np.float64(0.5), np.int64(1)],
                         ids=lambda v: f"{type(v).__name__}({v})")
def test_label_smoothing_argument_types_as_pytorch(ls):
    """What PyTorch's parser takes for a float argument (int, bool, numpy numbers) gives PyTorch's value."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 1, 2, 3, 0, 1])
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), label_smoothing=ls)
    got = nllk.cross_entropy(x, t, label_smoothing=ls)
    assert abs(float(got) - float(ref)) <= 1e-14 * abs(float(ref))
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), label_smoothing=torch.tensor(float(ls)))
    got = nllk.cross_entropy(x, t, label_smoothing=torch.tensor(float(ls)))
    assert abs(float(got) - float(ref)) <= 1e-14 * abs(float(ref))


@pytest.mark.parametrize("red", REDUCTIONS)
def test_zero_classes_as_pytorch_without_smoothing(red):
    """C = 0 with every target ignored: zeros / NaN mean, as PyTorch."""
    x = np.zeros((3, 0), F32)
    t = np.full(3, -100)
    ref, _, _ = torch_ce(x, t, None, -100, red, 0.0, dtype=None)
    assert_equal_exact(nllk.cross_entropy(x, t, reduction=red), ref, f"C=0 {red}")
    with pytest.raises(IndexError):
        nllk.cross_entropy(x, np.zeros(3, np.int64), reduction=red)


ZERO_CLASS_BUG = ("C = 0 (degenerate) differs from PyTorch: class indices with label_smoothing > 0 give +0 where "
                  "PyTorch gives NaN ('none', 'sum': ls / C = Inf times 0); probability targets give NaN (an empty row "
                  "is treated as an all -Inf row) where PyTorch gives -0.0 ('none', 'sum')")


@pytest.mark.xfail(strict=True, reason=ZERO_CLASS_BUG)
@pytest.mark.parametrize("case", ["index-smoothing-none", "index-smoothing-sum", "prob-none", "prob-sum",
                                  "prob-1d"])
def test_zero_classes_degenerate(case):
    if case.startswith("index"):
        x, t, ls = np.zeros((3, 0), F32), np.full(3, -100), 0.1
    elif case == "prob-1d":
        x = t = np.zeros((0,), F32)
        ls = 0.0
    else:
        x = t = np.zeros((3, 0), F32)
        ls = 0.0
    red = "sum" if case.endswith("sum") else "none"
    ref, _, _ = torch_ce(x, t, None, -100, red, ls, dtype=None)
    assert_equal_exact(nllk.cross_entropy(x, t, reduction=red, label_smoothing=ls), ref, case)


def test_requires_grad_tensors_go_through_nllk_torch():
    """nllk.cross_entropy given a tensor that requires grad computes through nllk.torch.cross_entropy (the result
    takes part in autograd), or refuses (NllkRuntimeError) where this build's nllk.torch has none."""
    import nllk.torch as nt
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 4, 2, 1, 3, 0])
    w = torch.rand(5, dtype=torch.float64) + 0.5
    if not hasattr(nt, "cross_entropy"):
        with pytest.raises(nllk.NllkRuntimeError):
            nllk.cross_entropy(x, t)
        return
    out = nllk.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction="sum")
    ref = F.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction="sum")
    assert out.requires_grad
    assert float(out) == pytest.approx(float(ref), rel=1e-13)
    (g,) = torch.autograd.grad(out, x)
    (gr,) = torch.autograd.grad(ref, x)
    np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=1e-12, atol=1e-14)


# ---- nllk.torch's fused forward+backward (class-index targets, f32/f64, an input that requires grad) ---------------
def _nllk_torch_ops():
    import nllk.torch as nt
    if not hasattr(nt, "cross_entropy") or getattr(nt, "BACKEND", "ops") != "ops":
        pytest.skip("nllk.torch computes cross-entropy only on its operator backend")
    return nt


def _fused_case(seed, dt, xshape, weighted):
    rng = np.random.default_rng(seed)
    c = xshape[0] if len(xshape) == 1 else xshape[1]
    tshape = () if len(xshape) == 1 else (xshape[0],) + tuple(xshape[2:])
    x = torch.from_numpy(rng.standard_normal(xshape) * 3).to(dt)
    t = torch.from_numpy(np.where(rng.random(tshape) < 0.2, -100, rng.integers(0, c, tshape)).astype(np.int64))
    w = torch.from_numpy(rng.random(c) + 0.5).to(dt) if weighted else None
    return x, t, w


@pytest.mark.parametrize("dt", [torch.float32, torch.float64])
@pytest.mark.parametrize("xshape", [(7,), (6, 5), (4, 5, 3), (2, 5, 2, 3), (3, 4100)], ids=str)
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("go_kind", ["one", "scaled"])
def test_torch_fused_gradient_as_pytorch(dt, xshape, red, ls, weighted, go_kind):
    """loss and d loss / d input through nllk.torch.cross_entropy (the fused forward+backward, then grad_output's
    product) against F.cross_entropy in float64; with grad_output 1 the bits of nllk's own backward (no product),
    otherwise exactly that gradient times grad_output (per position for 'none')."""
    nt = _nllk_torch_ops()
    x, t, w = _fused_case(len(xshape) * 100 + REDUCTIONS.index(red), dt, xshape, weighted)
    xa = x.clone().requires_grad_(True)
    loss = nt.cross_entropy(xa, t, weight=w, reduction=red, label_smoothing=ls)
    rng = np.random.default_rng(7)
    go = (torch.ones_like(loss) if go_kind == "one"
          else torch.from_numpy(rng.uniform(-2, 2, loss.shape)).to(dt))
    (g,) = torch.autograd.grad(loss, xa, go)
    x64 = x.double().clone().requires_grad_(True)
    ref = F.cross_entropy(x64, t, weight=None if w is None else w.double(), reduction=red, label_smoothing=ls)
    (gref,) = torch.autograd.grad(ref, x64, go.double())
    eps = torch.finfo(dt).eps
    np.testing.assert_allclose(loss.detach().double().numpy(), ref.detach().numpy(), rtol=64 * eps, atol=64 * eps)
    # (p_k = exp(x_k - lse) carries |x_k - lse| eps of relative error, PyTorch's float64 reference included)
    scale = float(gref.abs().max()) * (1 + 2 * float(x.abs().max())) if gref.numel() else 0.0
    np.testing.assert_allclose(g.double().numpy(), gref.numpy(), rtol=0, atol=64 * eps * scale + 1e-300)
    # the same gradient with grad_output 1 from nllk's separate backward (C API bits), then the product
    g1 = nllk.cross_entropy_backward(torch.ones_like(loss).detach(), x, t, weight=w, reduction=red,
                                     label_smoothing=ls)
    want = g1 if go_kind == "one" else (g1 * (go if red != "none" or x.dim() < 2 else go.unsqueeze(1)))
    assert torch.equal(g, want), "fused gradient != nllk's backward (times grad_output)"


def test_torch_fused_retain_graph_and_accumulation():
    """backward twice over one graph (retain_graph): the kept gradient is not modified by the first; .grad adds."""
    nt = _nllk_torch_ops()
    x, t, w = _fused_case(3, torch.float32, (64, 300), True)
    x.requires_grad_(True)
    loss = nt.cross_entropy(x, t, weight=w, label_smoothing=0.1)
    loss.backward(retain_graph=True)
    g1 = x.grad.clone()
    loss.backward(retain_graph=True)
    assert torch.equal(x.grad, 2 * g1)
    (g2,) = torch.autograd.grad(loss, x, torch.tensor(2.0), retain_graph=True)
    assert torch.equal(g2, 2 * g1)
    (g3,) = torch.autograd.grad(loss, x)
    assert torch.equal(g3, g1)


@pytest.mark.parametrize("red", REDUCTIONS)
def test_torch_fused_gradient_handed_out_is_the_callers(red):
    """a gradient returned for grad_output 1 may be changed in place (as with PyTorch's own cross_entropy): a later
    backward over the same graph neither sees the change nor raises autograd's version-check error."""
    nt = _nllk_torch_ops()
    x, t, w = _fused_case(5, torch.float64, (32, 7, 3), True)
    x.requires_grad_(True)
    loss = nt.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=0.2)
    ones = torch.ones_like(loss)
    (g1,) = torch.autograd.grad(loss, x, ones, retain_graph=True)
    want = g1.clone()
    g1.mul_(0.0)
    (g2,) = torch.autograd.grad(loss, x, ones, retain_graph=True)
    assert torch.equal(g2, want)
    g2.add_(1.0)
    loss.backward(ones)
    assert torch.equal(x.grad, want)
    ref_x = x.detach().clone().requires_grad_(True)
    F.cross_entropy(ref_x, t, weight=w, reduction=red, label_smoothing=0.2).backward(ones)
    assert torch.allclose(x.grad, ref_x.grad, rtol=1e-12, atol=1e-14)


def test_torch_fused_inplace_modification_is_detected():
    """an input changed in place after the forward: the backward raises autograd's version-check error."""
    nt = _nllk_torch_ops()
    leaf = torch.randn(5, 4, requires_grad=True)
    x = leaf * 1.0
    t = torch.tensor([0, 3, 1, 2, 0])
    loss = nt.cross_entropy(x, t)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("red", REDUCTIONS)
def test_torch_fused_create_graph_is_pytorchs(red):
    """create_graph=True (double backward): PyTorch's composite, as before the fused path."""
    nt = _nllk_torch_ops()
    x, t, w = _fused_case(5, torch.float64, (6, 5), True)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    la = nt.cross_entropy(xa, t, weight=w, reduction=red, label_smoothing=0.1)
    lb = F.cross_entropy(xb, t, weight=w, reduction=red, label_smoothing=0.1)
    (ga,) = torch.autograd.grad(la.sum(), xa, create_graph=True)
    (gb,) = torch.autograd.grad(lb.sum(), xb, create_graph=True)
    (hha,) = torch.autograd.grad((ga * ga).sum(), xa)
    (hhb,) = torch.autograd.grad((gb * gb).sum(), xb)
    np.testing.assert_allclose(ga.detach().numpy(), gb.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hha.numpy(), hhb.numpy(), rtol=1e-10, atol=1e-13)


def test_torch_fused_only_when_grad_is_needed():
    """no grad mode, or an input that does not require grad: the plain forward (same loss bits as the fused one)."""
    nt = _nllk_torch_ops()
    x, t, w = _fused_case(9, torch.float32, (40, 33), True)
    with torch.no_grad():
        plain = nt.cross_entropy(x.clone().requires_grad_(True), t, weight=w)
    fused = nt.cross_entropy(x.clone().requires_grad_(True), t, weight=w)
    assert fused.requires_grad and not plain.requires_grad
    assert torch.equal(fused.detach(), plain)


# ---- nllk.cross_entropy_forward_backward (no autograd) -----------------------------------------------------
def _bits(a):
    """a's elements as integers of their size (NaNs compared by their bits too: same library, same ISA)."""
    return a.reshape(-1).view({2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()])


@pytest.mark.parametrize("dt", [torch.float32, torch.float64, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("xshape", [(7,), (6, 5), (4, 5, 3), (3, 4100)], ids=str)
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("kind", ["index", "weighted", "prob"])
@pytest.mark.parametrize("go_kind", ["default", "given"])
def test_forward_backward_is_forward_then_backward(dt, xshape, red, kind, go_kind):
    """(loss, grad_input) bit for bit those of cross_entropy and cross_entropy_backward (the fused kernel for class
    indices, forward then backward for probabilities), of input's kind and dtype; f64 also against PyTorch."""
    x, t, w = _fused_case(len(xshape) * 10 + REDUCTIONS.index(red), dt, xshape, kind == "weighted")
    if kind == "prob":
        t = torch.softmax(torch.from_numpy(np.random.default_rng(7).standard_normal(xshape)), -1).to(dt)
    x0, t0 = x.clone(), t.clone()
    ref = nllk.cross_entropy(x, t, weight=w, reduction=red, label_smoothing=0.2)
    go = (torch.from_numpy(np.asarray(np.random.default_rng(3).random(ref.shape) + 0.5)).to(dt) if go_kind == "given"
          else None)
    loss, gx = nllk.cross_entropy_forward_backward(x, t, weight=w, reduction=red, label_smoothing=0.2,
                                                   grad_output=go)
    want = nllk.cross_entropy_backward(torch.ones(ref.shape, dtype=dt) if go is None else go, x, t, weight=w,
                                       reduction=red, label_smoothing=0.2)
    assert loss.dtype == dt and gx.dtype == dt and gx.shape == x.shape
    assert torch.equal(_bits(loss), _bits(ref)) and torch.equal(_bits(gx), _bits(want))
    assert torch.equal(x, x0) and torch.equal(t, t0)  # inputs untouched
    if dt == torch.float64:
        xt = x.clone().requires_grad_(True)
        pl = F.cross_entropy(xt, t, weight=w, reduction=red, label_smoothing=0.2)
        pl.backward(torch.ones_like(pl) if go is None else go)
        torch.testing.assert_close(loss, pl.detach(), rtol=1e-12, atol=1e-12, equal_nan=True)
        torch.testing.assert_close(gx, xt.grad, rtol=1e-12, atol=1e-13, equal_nan=True)


def test_forward_backward_numpy_and_errors():
    """numpy in, numpy out; the errors of the forward and the backward (grad_output's shape, a tensor that requires
    grad, a target out of range)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    t = rng.integers(0, 5, 8)
    loss, gx = nllk.cross_entropy_forward_backward(x, t, reduction="sum")
    assert isinstance(loss, np.ndarray) and isinstance(gx, np.ndarray) and gx.dtype == np.float32
    assert np.array_equal(gx, nllk.cross_entropy_backward(np.float32(1.0), x, t, reduction="sum"))
    with pytest.raises(RuntimeError, match="grad_output"):
        nllk.cross_entropy_forward_backward(x, t, reduction="none", grad_output=np.ones(7, np.float32))
    with pytest.raises(RuntimeError):
        nllk.cross_entropy_forward_backward(torch.from_numpy(x).requires_grad_(True), torch.from_numpy(t))
    bad = t.copy()
    bad[5] = 9
    with pytest.raises(IndexError) as e:
        nllk.cross_entropy_forward_backward(x, bad)
    assert e.value.index == 5


@pytest.mark.parametrize("dt", [torch.bfloat16, torch.float16], ids=str)
def test_backward_16bit_mean_without_total_weight(dt):
    """cross_entropy_backward on 16-bit logits, 'mean', total_weight not given (computed by a forward): the bits of
    the call given the forward's total_weight (a 0-d bfloat16 total_weight once raised numpy's ValueError)."""
    x, t, w = _fused_case(21, dt, (9, 6), True)
    _, tw, lse = nllk.cross_entropy_forward(x, t, weight=w)
    go = torch.ones((), dtype=dt)
    assert torch.equal(_bits(nllk.cross_entropy_backward(go, x, t, weight=w)),
                       _bits(nllk.cross_entropy_backward(go, x, t, weight=w, total_weight=tw, lse=lse)))
