"""nllk.nll_loss / nll_loss_forward / nll_loss_backward against torch.nn.functional.nll_loss + autograd."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
from reference import assert_close_elementwise, assert_equal_exact, assert_reduction, torch_nll

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
REDUCTIONS = ("none", "mean", "sum")
# flat element counts n*d around the 4096-element blocks, and past the threading grain
SIZES = [0, 1, 2, 3, 16, 17, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12289, 40961]
CLASSES = [1, 2, 3, 5, 10, 33, 300]
TARGET_DTYPES = [np.int64, np.int32, np.uint8]


def _factors(m):
    out, p = [], 2
    while m > 1 and p * p <= m:
        while m % p == 0:
            out.append(p)
            m //= p
        p += 1
    if m > 1:
        out.append(m)
    return out


def _split(rng, e, k):
    """k + 1 dims (batch, d1..dk) whose product is e (0 puts a zero in one of them)."""
    dims = [1] * (k + 1)
    if e == 0:
        dims[int(rng.integers(0, k + 1))] = 0
        for i in range(k + 1):
            if dims[i]:
                dims[i] = int(rng.integers(1, 4))
        return dims
    for f in _factors(e):
        dims[int(rng.integers(0, k + 1))] *= f
    return dims


def _log_probs(rng, shape, dt, cdim):
    z = rng.standard_normal(shape) * 2
    if shape and shape[cdim] > 0 and rng.random() < 0.7:
        z = z - np.log(np.sum(np.exp(z), axis=cdim, keepdims=True))
    return z.astype(dt)


def make_case(seed):
    rng = np.random.default_rng(seed)
    dt = F32 if rng.random() < 0.5 else F64
    form = ["1d", "2d", "nd"][int(rng.integers(0, 3))]
    c = int(rng.choice(CLASSES))
    e = 1 if form == "1d" else int(rng.choice(SIZES))
    if c * e > 400_000:
        c = max(1, 400_000 // max(e, 1))
    if form == "1d":
        xshape, tshape = (c,), ()
    elif form == "2d":
        xshape, tshape = (e, c), (e,)
    else:
        k = int(rng.integers(1, 6))
        dims = _split(rng, e, k)
        xshape, tshape = (dims[0], c) + tuple(dims[1:]), tuple(dims)
    tdt = np.dtype(TARGET_DTYPES[int(rng.integers(0, 3))])
    if tdt == np.uint8 and c > 250:
        tdt = np.dtype(np.int32)
    # ignore_index: the default, a class, outside [0, C) above and below, or one only int64 targets can hold
    ii_choices = [-100, int(rng.integers(0, c)), c + 3, -1]
    if tdt == np.int64:
        ii_choices.append(2 ** 40)
    if tdt == np.uint8:
        ii_choices = [-100, int(rng.integers(0, c)), 255, 2 ** 40]
    ignore_index = int(rng.choice(ii_choices))
    info = np.iinfo(tdt)
    representable = info.min <= ignore_index <= info.max
    x = _log_probs(rng, xshape, dt, 0 if form == "1d" else 1)
    if rng.random() < 0.3 and x.size:  # NaN and Inf inputs (read only at the target positions)
        idx = rng.choice(x.size, size=max(1, x.size // 40), replace=False)
        x.flat[idx] = rng.choice([np.nan, np.inf, -np.inf], size=idx.size)
    t = rng.integers(0, c, tshape).astype(tdt)
    frac_ignored = float(rng.choice([0.0, 0.2, 1.0], p=[0.4, 0.45, 0.15]))
    if representable and frac_ignored and t.size:
        mask = rng.random(tshape) < frac_ignored if frac_ignored < 1 else np.ones(tshape, bool)
        t[mask] = ignore_index
    elif representable and frac_ignored and form == "1d":
        t = np.asarray(ignore_index, dtype=tdt)
    wkind = int(rng.integers(0, 4))
    if wkind == 0:
        weight = None
    else:
        weight = (rng.random(c) * 2).astype(dt)
        if wkind >= 2:  # some zero weights, and once in a while all zero or one negative
            weight[rng.random(c) < 0.3] = 0
            if wkind == 3 and rng.random() < 0.3:
                weight[:] = 0
            elif wkind == 3 and c > 1:
                weight[0] = -0.75
    reduction = REDUCTIONS[int(rng.integers(0, 3))]
    kind = "torch" if rng.random() < 0.5 else "numpy"
    layout = ["contiguous", "strided", "transposed"][int(rng.integers(0, 3))]
    return dict(dt=dt, x=x, t=t, weight=weight, ignore_index=ignore_index, reduction=reduction, kind=kind,
                layout=layout, seed=seed)


def _arg(a, kind, layout):
    """a as the caller passes it: numpy or torch, possibly through a non-contiguous view of the same values."""
    a = np.asarray(a)
    if layout == "strided" and a.ndim >= 1:
        big = np.zeros(a.shape + (3,), dtype=a.dtype)
        big[..., 1] = a
        a = big[..., 1]
    elif layout == "transposed" and a.ndim >= 2:
        a = np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1)
    return torch.from_numpy(a) if kind == "torch" else a


def _exact_total_weight(t, weight, ignore_index, c):
    """(sum of the weights of the non-ignored targets, sum of their magnitudes), exactly (math.fsum)."""
    tt = np.asarray(t).astype(np.int64).ravel()
    keep = tt[tt != ignore_index]
    if weight is None:
        return float(keep.size), float(keep.size)
    w = np.asarray(weight, np.float64)[keep]
    return math.fsum(w), math.fsum(np.abs(w))


def run_case(case):
    dt, x, t, weight, ii, red = case["dt"], case["x"], case["t"], case["weight"], case["ignore_index"], \
        case["reduction"]
    kind, layout = case["kind"], case["layout"]
    what = (f"seed {case['seed']}: {dt} x{x.shape} t{t.shape} {t.dtype} w={'none' if weight is None else 'set'} "
            f"ii={ii} {red} {kind} {layout}")
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    xa, ta = _arg(x, kind, layout), _arg(t, kind, layout)
    wa = None if weight is None else _arg(weight, kind, layout)
    out, tw = nllk.nll_loss_forward(xa, ta, weight=wa, ignore_index=ii, reduction=red)
    cls = torch.Tensor if kind == "torch" else np.ndarray
    assert isinstance(out, cls) and isinstance(tw, cls), what
    assert nllk.nll_loss(xa, ta, weight=wa, ignore_index=ii, reduction=red).shape == out.shape
    loss_ref, per_ref, tw_ref, _ = torch_nll(x, t, weight, ii, red)
    if red == "none":
        assert_equal_exact(out, per_ref, what)  # per element exact: -x*w (and -0.0 where w = 0)
        assert_equal_exact(tw, tw_ref, what + " total_weight")  # 0, but w[t] for a 1-D input, as ATen
    else:
        tw_exact, tw_abs = _exact_total_weight(t, weight, ii, c)
        # nllk sums in double: a few double roundings per level of the tree, then one rounding to the dtype
        eps64 = np.finfo(np.float64).eps
        allowance = 64 * eps64 * float(np.sum(np.abs(per_ref.astype(np.float64))))
        assert_reduction(out, per_ref, None, red, dt, what, denominator=tw_exact, allowance=allowance)
        assert np.asarray(tw).dtype == dt and np.asarray(tw).shape == ()
        assert abs(float(tw) - tw_exact) <= np.finfo(dt).eps * abs(tw_exact) + 64 * eps64 * tw_abs, \
            what + f" total_weight {float(tw)!r}, exact {tw_exact!r}"
        # PyTorch's own total_weight (accumulated in the dtype)
        assert abs(float(tw) - float(tw_ref)) <= 1e-5 * tw_abs + 1e-30, what

    # backward
    rng = np.random.default_rng(case["seed"] + 7)
    go = np.asarray(rng.standard_normal(per_ref.shape) if red == "none" else rng.choice([1.0, -0.5, 3.0]),
                    dtype=dt)
    _, _, tw_torch, gi_ref = torch_nll(x, t, weight, ii, red, grad_output=go)
    goa = torch.from_numpy(go) if kind == "torch" else go
    gi = nllk.nll_loss_backward(goa, xa, ta, weight=wa, ignore_index=ii, reduction=red)
    assert isinstance(gi, cls) and tuple(gi.shape) == x.shape, what
    gi2 = nllk.nll_loss_backward(goa, xa, ta, weight=wa, ignore_index=ii, reduction=red, total_weight=tw)
    np.testing.assert_array_equal(np.asarray(gi2), np.asarray(gi))
    if red != "mean":
        assert_equal_exact(gi, gi_ref, what + " grad_input")
    else:
        # PyTorch divides by its own total_weight (accumulated in the dtype); nllk's is the rounded exact sum.
        tw_t = float(tw_torch)
        rel = abs(tw_t - float(tw)) / abs(float(tw)) if float(tw) != 0 else 0.0
        scale = np.abs(np.asarray(gi_ref, np.float64)) * (1 + rel / np.finfo(dt).eps)
        assert_close_elementwise(gi, gi_ref, scale, dt, what + " grad_input", k=4)
        # with PyTorch's total_weight, the very same bits
        gi3 = nllk.nll_loss_backward(go, x, t, weight=weight, ignore_index=ii, reduction=red,
                                     total_weight=tw_torch)
        assert_equal_exact(gi3, gi_ref, what + " grad_input (PyTorch's total_weight)")


@pytest.mark.parametrize("seed", range(110))
def test_random_matrix(seed):
    run_case(make_case(5000 + seed))


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("e", [4095, 4096, 4097, 8193])
@pytest.mark.parametrize("tdt", TARGET_DTYPES)
def test_block_edges(dt, e, tdt):
    rng = np.random.default_rng(e)
    x = _log_probs(rng, (e, 5), dt, 1)
    t = rng.integers(0, 5, e).astype(tdt)
    t[::7] = 4 if tdt == np.uint8 else -100
    ii = 4 if tdt == np.uint8 else -100
    weight = np.array([0.5, 1.0, 0.0, 2.0, 1.5], dtype=dt)
    for red in REDUCTIONS:
        run_case(dict(dt=dt, x=x, t=t, weight=weight, ignore_index=ii, reduction=red, kind="numpy",
                      layout="contiguous", seed=e))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("tdt", TARGET_DTYPES)
def test_spatial_dims(k, tdt):
    rng = np.random.default_rng(k)
    spatial = [(17,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (1, 2, 3, 2, 2)][k - 1]
    x = _log_probs(rng, (3, 4) + spatial, F32, 1)
    t = rng.integers(0, 4, (3,) + spatial).astype(tdt)
    for red in REDUCTIONS:
        run_case(dict(dt=F32, x=x, t=t, weight=None, ignore_index=1, reduction=red, kind="torch",
                      layout="strided", seed=k))


@pytest.mark.parametrize("dt", [F32, F64])
def test_1d_input(dt):
    x = np.log(np.array([0.2, 0.5, 0.3], dtype=dt))
    for t in (np.int64(1), np.int32(2), np.uint8(0)):
        t = np.asarray(t)
        for red in REDUCTIONS:
            out = nllk.nll_loss(x, t, reduction=red)
            ref = F.nll_loss(torch.from_numpy(x), torch.from_numpy(t.astype(np.int64)), reduction=red)
            assert out.shape == () and out.dtype == dt  # 'none' too: a scalar, as PyTorch
            assert float(out) == float(ref)
            gi = nllk.nll_loss_backward(np.asarray(2.0, dt), x, t, reduction=red)
            expect = np.zeros(3, dt)
            expect[int(t)] = -2.0
            assert_equal_exact(gi, expect)
    # the single target ignored: mean NaN, sum 0, none 0
    t = np.asarray(1)
    assert math.isnan(float(nllk.nll_loss(x, t, ignore_index=1)))
    assert float(nllk.nll_loss(x, t, ignore_index=1, reduction="sum")) == 0.0
    assert float(nllk.nll_loss(x, t, ignore_index=1, reduction="none")) == 0.0
    assert float(F.nll_loss(torch.from_numpy(x), torch.tensor(1), ignore_index=1, reduction="none")) == 0.0


@pytest.mark.parametrize("dt", [F32, F64])
def test_one_class(dt):
    x = np.array([[-0.5], [-1.25], [0.0]], dtype=dt)
    t = np.zeros(3, np.int64)
    for red in REDUCTIONS:
        run_case(dict(dt=dt, x=x, t=t, weight=None, ignore_index=-100, reduction=red, kind="numpy",
                      layout="contiguous", seed=1))
        run_case(dict(dt=dt, x=x, t=t, weight=np.array([0.0], dt), ignore_index=-100, reduction=red, kind="torch",
                      layout="contiguous", seed=2))


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 3), (2, 4, 0), (2, 4, 3, 0), (0, 4, 2, 2, 2)])
def test_empty(shape):
    for dt in (F32, F64):
        x = np.zeros(shape, dt)
        t = np.zeros((shape[0],) + shape[2:], np.int64)
        assert math.isnan(float(nllk.nll_loss(x, t)))
        s, tw = nllk.nll_loss_forward(x, t, reduction="sum")
        assert float(s) == 0.0 and float(tw) == 0.0
        assert nllk.nll_loss(x, t, reduction="none").shape == t.shape
        for red in REDUCTIONS:
            go = np.zeros(t.shape, dt) if red == "none" else 1.0
            gi = nllk.nll_loss_backward(go, x, t, reduction=red)
            assert gi.shape == shape and not np.any(gi)
            run_case(dict(dt=dt, x=x, t=t, weight=None, ignore_index=-100, reduction=red, kind="torch",
                          layout="contiguous", seed=3))


def test_zero_classes_all_ignored():
    x = np.zeros((3, 0), np.float32)
    t = np.full(3, -100, np.int64)
    assert math.isnan(float(nllk.nll_loss(x, t)))
    assert math.isnan(float(F.nll_loss(torch.from_numpy(x), torch.from_numpy(t))))
    assert nllk.nll_loss_backward(1.0, x, t).shape == (3, 0)


@pytest.mark.parametrize("dt", [F32, F64])
def test_all_ignored_and_zero_weights(dt):
    rng = np.random.default_rng(5)
    x = _log_probs(rng, (6, 4, 5), dt, 1)
    t_ign = np.full((6, 5), 2, np.int32)
    t = rng.integers(0, 4, (6, 5)).astype(np.uint8)
    for red in REDUCTIONS:
        # every target ignored: mean NaN, sum 0, grads 0
        run_case(dict(dt=dt, x=x, t=t_ign, weight=None, ignore_index=2, reduction=red, kind="numpy",
                      layout="contiguous", seed=4))
        # every weight 0: mean NaN, sum -0/+0, grads NaN at the targets for mean (0 * -(g/0))
        run_case(dict(dt=dt, x=x, t=t, weight=np.zeros(4, dt), ignore_index=-100, reduction=red, kind="torch",
                      layout="contiguous", seed=5))
    assert math.isnan(float(nllk.nll_loss(x, t_ign, ignore_index=2)))
    assert float(nllk.nll_loss(x, t_ign, ignore_index=2, reduction="sum")) == 0.0


def test_weight_zero_gives_negative_zero():
    x = np.array([[1.5, -2.0], [0.5, -3.0]], np.float32)
    t = np.array([0, 1])
    out = nllk.nll_loss(x, t, weight=np.array([0.0, 0.0], np.float32), reduction="none")
    ref = F.nll_loss(torch.from_numpy(x), torch.from_numpy(t), weight=torch.zeros(2), reduction="none").numpy()
    assert_equal_exact(out, ref)
    assert np.signbit(out[0]) and not np.signbit(out[1])


@pytest.mark.parametrize("tdt", TARGET_DTYPES)
def test_ignore_index_inside_and_outside(tdt):
    rng = np.random.default_rng(9)
    x = _log_probs(rng, (50, 6), F64, 1)
    t = rng.integers(0, 6, 50).astype(tdt)
    for ii in (0, 3, 5, 6, 200, -1, -100, 2 ** 40, -(2 ** 63), 2 ** 63 - 1):
        for red in REDUCTIONS:
            run_case(dict(dt=F64, x=x, t=t, weight=None, ignore_index=ii, reduction=red, kind="numpy",
                          layout="contiguous", seed=ii % 1000))


def test_nan_inf_inputs():
    x = np.array([[np.nan, 0.0], [-np.inf, 1.0], [np.inf, 2.0], [np.nan, np.nan]], np.float32)
    t = np.array([0, 0, 1, 1])
    for red in REDUCTIONS:
        run_case(dict(dt=F32, x=x, t=t, weight=None, ignore_index=-100, reduction=red, kind="numpy",
                      layout="contiguous", seed=6))
    # a NaN at a non-target position is never read
    assert float(nllk.nll_loss(x[1:3], np.array([1, 1]), reduction="sum")) == -3.0
    assert math.isnan(float(nllk.nll_loss(x, t)))
    assert math.isinf(float(nllk.nll_loss(x[1:3], np.array([0, 1]), reduction="sum")))


def test_uint8_and_int32_targets_are_not_converted():
    from nllk import _api
    for tdt in (np.uint8, np.int32, np.int64):
        t = np.arange(10, dtype=tdt) % 3
        tc, _ = _api._nll_target(t)
        assert tc is t or np.shares_memory(tc, t)
    tt = torch.arange(10, dtype=torch.uint8) % 3
    tc, code = _api._nll_target(_api._to_numpy(tt, "target"))
    assert code == 2 and tc.ctypes.data == tt.data_ptr()
    # other integer dtypes are converted to int64
    x = np.log(np.full((4, 3), 1 / 3, np.float32))
    for tdt in (np.int8, np.int16, np.uint16, np.uint32, np.uint64):
        t = np.array([0, 2, 1, 2], dtype=tdt)
        assert float(nllk.nll_loss(x, t, reduction="sum")) == pytest.approx(4 * math.log(3), rel=1e-6)


def test_thread_counts_give_the_same_bits():
    rng = np.random.default_rng(12)
    x = _log_probs(rng, (4, 3, 20000), F32, 1)
    t = rng.integers(0, 3, (4, 20000)).astype(np.uint8)
    w = np.array([0.3, 1.7, 0.9], np.float32)
    try:
        results = []
        for k in (1, 2, 5):
            nllk.set_num_threads(k)
            r = [np.asarray(v).tobytes() for red in REDUCTIONS for v in nllk.nll_loss_forward(x, t, w, 1, red)]
            r.append(np.asarray(nllk.nll_loss_backward(1.0, x, t, w, 1, "mean")).tobytes())
            results.append(r)
        assert all(r == results[0] for r in results)
    finally:
        nllk.set_num_threads(0)
