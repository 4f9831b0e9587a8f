"""nllk.torch as a PyTorch extension (issue 14): one test per item of the issue, on both backends (the operators
of libnllk_torch.so, and the ctypes fallback), against PyTorch's own results and errors."""
import io
import os
import sys

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nllk  # noqa: E402
import nllk.torch as nt  # noqa: E402

HAVE_OPS = nt.BACKEND == "ops"
needs_ops = pytest.mark.skipif(not HAVE_OPS, reason=f"nllk's PyTorch operators not loaded: {nt.BACKEND_ERROR}")


def test_operators_loaded_when_built():
    """In a build with Torch the operators exist next to libnllk, and nllk.torch must use them."""
    lib_dir = os.path.dirname(nllk.library_info()["path"])
    if os.path.exists(os.path.join(lib_dir, "libnllk_torch.so")) and not os.environ.get("NLLK_TORCH_BACKEND"):
        assert nt.BACKEND == "ops", nt.BACKEND_ERROR


@pytest.fixture(params=["ops", "ctypes"])
def backend(request, monkeypatch):
    """Runs a test on the operators, then on the ctypes fallback (the operators switched off)."""
    if request.param == "ops":
        if not HAVE_OPS:
            pytest.skip(f"operators not loaded: {nt.BACKEND_ERROR}")
    else:
        monkeypatch.setattr(nt, "_OP_NLL", None)
        monkeypatch.setattr(nt, "_OP_POISSON", None)
    return request.param


def grad_fn_is_nllk(t):
    return t.grad_fn is not None and ("NLLFunction" in t.grad_fn.name() or "PoissonNLLFunction" in t.grad_fn.name())


def data(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, generator=g, dtype=dtype)
    t = torch.randint(0, 5, (6,), generator=g)
    p = torch.randn(6, 5, generator=g, dtype=dtype)
    pt = torch.rand(6, 5, generator=g, dtype=dtype) * 4
    return x, t, p, pt


# ---- in-place changes and set_ after the forward ---------------------------------------------------------------
def test_inplace_change_of_input_is_detected(backend):
    _, _, p, pt = data()
    x = p.clone().requires_grad_(True)
    y = x * 1
    loss = nt.poisson_nll_loss(y, pt)
    assert grad_fn_is_nllk(loss)
    y.add_(10)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    xs, t, _, _ = data()
    xs = xs.clone().requires_grad_(True)
    ys = xs * 1
    loss = nt.nll_loss(ys, t)
    ys.mul_(2)  # PyTorch saves the input of nll_loss too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_inplace_change_of_target_is_detected(backend):
    x, t, p, pt = data()
    p = p.clone().requires_grad_(True)
    t2 = pt.clone()
    loss = nt.poisson_nll_loss(p, t2)
    t2.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    x = x.clone().requires_grad_(True)
    tt = t.clone()
    loss = nt.nll_loss(x, tt)
    tt.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_set_after_forward_is_detected(backend):
    _, _, p, pt = data()
    p = p.clone().requires_grad_(True)
    t = pt.clone()
    loss = nt.poisson_nll_loss(p, t)
    t.set_(torch.zeros(3, dtype=t.dtype))  # frees the old storage as far as the caller is concerned
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# ---- double backward ------------------------------------------------------------------------------------------
POISSON_CASES = [dict(log_input=li, full=fu, reduction=r) for li in (True, False) for fu in (False, True)
                 for r in ("none", "mean", "sum")]


def _penalized(fn, x, t, **kw):
    """loss + |d loss / d x|^2, differentiated w.r.t. x and (for Poisson) t."""
    xs = x.clone().requires_grad_(True)
    ts = t.clone().requires_grad_(t.is_floating_point())
    loss = fn(xs, ts, **kw)
    loss = loss.sum() if loss.dim() else loss
    gx, = torch.autograd.grad(loss, xs, create_graph=True)
    total = loss + (gx ** 2).sum()
    wrt = [xs] + ([ts] if ts.requires_grad else [])
    return torch.autograd.grad(total, wrt)


@pytest.mark.parametrize("kw", POISSON_CASES, ids=str)
def test_gradient_penalty_poisson(backend, kw):
    _, _, p, pt = data(1)
    if not kw["log_input"]:
        p = p.abs() + 0.1
    pt = pt + 1.1 if kw["full"] else pt  # (PyTorch's target gradient is NaN at t <= 0 with full; nllk's finite)
    ours = _penalized(nt.poisson_nll_loss, p, pt, **kw)
    ref = _penalized(F.poisson_nll_loss, p, pt, **kw)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 2), (5,)], ids=str)
def test_gradient_penalty_nll(backend, reduction, shape):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = torch.randint(0, 5, tshape, generator=g)
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    ours = _penalized(nt.nll_loss, x, t, weight=w, reduction=reduction)
    ref = _penalized(F.nll_loss, x, t, weight=w, reduction=reduction)
    torch.testing.assert_close(ours[0], ref[0])
    # and the penalty term's own derivative w.r.t. grad_output: a gradient of a gradient
    xs = x.clone().requires_grad_(True)
    for fn in (nt.nll_loss, F.nll_loss):
        out = fn(xs, t, weight=w, reduction=reduction)
        v = torch.ones_like(out).requires_grad_(True)
        gx, = torch.autograd.grad(out, xs, v, create_graph=True)
        gv, = torch.autograd.grad((gx ** 2).sum(), v)
        if fn is nt.nll_loss:
            mine = gv
        else:
            torch.testing.assert_close(mine, gv)


def test_gradgradcheck(backend):
    _, t, p, pt = data(3)
    x = p.clone().requires_grad_(True)
    tt = pt.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a, b: nt.poisson_nll_loss(a, b, reduction="sum"), (x, tt))
    assert torch.autograd.gradgradcheck(lambda a: nt.poisson_nll_loss(a, pt + 0.5, log_input=False, full=True),
                                        (p.abs().add(0.5).requires_grad_(True),))
    xn = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: nt.nll_loss(a, t, reduction="none"), (xn,))


# ---- TorchScript -------------------------------------------------------------------------------------------------
@needs_ops
def test_jit_trace_modules_and_functions():
    x, t, p, pt = data(4)
    x2, t2, p2, pt2 = data(5)
    w = torch.rand(5, dtype=torch.float64)
    for mod, ref, args, args2 in [
            (nt.NLLLoss(weight=w, ignore_index=2), torch.nn.NLLLoss(weight=w, ignore_index=2), (x, t), (x2, t2)),
            (nt.PoissonNLLLoss(full=True, reduction="sum"), torch.nn.PoissonNLLLoss(full=True, reduction="sum"),
             (p, pt), (p2, pt2))]:
        traced = torch.jit.trace(mod, args)
        assert "nllk::" in str(traced.graph)
        torch.testing.assert_close(traced(*args2), ref(*args2))  # new data: not a recorded constant
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        buf.seek(0)
        torch.testing.assert_close(torch.jit.load(buf)(*args2), ref(*args2))
    f = torch.jit.trace(lambda a, b: nt.poisson_nll_loss(a, b, log_input=False), (p.abs(), pt), check_trace=False)
    torch.testing.assert_close(f(p2.abs(), pt2), F.poisson_nll_loss(p2.abs(), pt2, log_input=False))


@needs_ops
@pytest.mark.parametrize("kind", ["nll_weight", "nll_legacy", "poisson", "poisson_no_log"])
def test_jit_script_modules(kind):
    x, t, p, pt = data(6)
    w = torch.rand(5, dtype=torch.float64)
    if kind == "nll_weight":
        ours, ref, args = nt.NLLLoss(weight=w, ignore_index=1, reduction="sum"), torch.nn.NLLLoss(
            weight=w, ignore_index=1, reduction="sum"), (x, t)
    elif kind == "nll_legacy":
        ours, ref, args = nt.NLLLoss(size_average=False), torch.nn.NLLLoss(size_average=False), (x, t)
    elif kind == "poisson":
        ours, ref, args = nt.PoissonNLLLoss(), torch.nn.PoissonNLLLoss(), (p, pt)
    else:
        ours, ref, args = (nt.PoissonNLLLoss(log_input=False, full=True, reduction="none"),
                           torch.nn.PoissonNLLLoss(log_input=False, full=True, reduction="none"), (p.abs(), pt))
    scripted = torch.jit.script(ours)
    assert "nllk::" in str(scripted.graph)
    xs = args[0].clone().requires_grad_(True)
    xr = args[0].clone().requires_grad_(True)
    a, b = scripted(xs, args[1]), ref(xr, args[1])
    torch.testing.assert_close(a, b)
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(xs.grad, xr.grad)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    torch.testing.assert_close(torch.jit.load(buf)(*args), b.detach())


@needs_ops
def test_ops_directly_in_script_function():
    @torch.jit.script
    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.ops.nllk.nll_loss(x, t, None, 2, -100)

    x, t, _, _ = data(7)
    torch.testing.assert_close(f(x, t), F.nll_loss(x, t, reduction="sum"))


# ---- forward-mode AD, vmap, weight that requires grad ----------------------------------------------------------
def test_forward_ad_gives_pytorchs_tangent(backend):
    x, t, p, pt = data(8)
    tx, tp = torch.randn_like(x), torch.randn_like(p)
    res = []
    for fn_n, fn_p in ((nt.nll_loss, nt.poisson_nll_loss), (F.nll_loss, F.poisson_nll_loss)):
        with fwAD.dual_level():
            a = fn_n(fwAD.make_dual(x, tx), t)
            b = fn_p(fwAD.make_dual(p, tp), pt, reduction="none")
            res.append((fwAD.unpack_dual(a).tangent, fwAD.unpack_dual(b).tangent))
    assert res[0][0] is not None and res[0][1] is not None
    torch.testing.assert_close(res[0][0], res[1][0])
    torch.testing.assert_close(res[0][1], res[1][1])


def test_vmap_gives_pytorchs_values(backend):
    functorch = pytest.importorskip("functorch")
    xb = torch.randn(4, 6, 5, dtype=torch.float64)
    tb = torch.randint(0, 5, (4, 6))
    pb, ptb = torch.randn(4, 7, dtype=torch.float64), torch.rand(4, 7, dtype=torch.float64)
    torch.testing.assert_close(functorch.vmap(nt.nll_loss)(xb, tb), functorch.vmap(F.nll_loss)(xb, tb))
    torch.testing.assert_close(functorch.vmap(nt.poisson_nll_loss)(pb, ptb),
                               functorch.vmap(F.poisson_nll_loss)(pb, ptb))
    # per-sample gradients: vmap over grad
    g_ours = functorch.vmap(functorch.grad(lambda a, b: nt.poisson_nll_loss(a, b)))(pb, ptb)
    g_ref = functorch.vmap(functorch.grad(lambda a, b: F.poisson_nll_loss(a, b)))(pb, ptb)
    torch.testing.assert_close(g_ours, g_ref)


def test_weight_requiring_grad_raises_pytorchs_error(backend):
    x, t, _, _ = data(9)
    w = torch.rand(5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="is not differentiable with respect to argument 'weight'"):
        F.nll_loss(x.clone().requires_grad_(True), t, weight=w)
    with pytest.raises(RuntimeError, match="is not differentiable with respect to argument 'weight'"):
        nt.nll_loss(x.clone().requires_grad_(True), t, weight=w)
    with pytest.raises(RuntimeError, match="is not differentiable with respect to argument 'weight'"):
        nt.nll_loss(x, t, weight=w)  # (PyTorch raises whether or not the input requires grad)
    with torch.no_grad():  # no graph: the weight's requires_grad does not matter, as in PyTorch
        torch.testing.assert_close(nt.nll_loss(x, t, weight=w), F.nll_loss(x, t, weight=w))


@needs_ops
def test_weight_requiring_grad_in_the_operator_itself():
    x, t, _, _ = data(9)
    w = torch.rand(5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="is not differentiable with respect to argument 'weight'"):
        torch.ops.nllk.nll_loss(x, t, w)


# ---- argument validation ------------------------------------------------------------------------------------
BAD_NLL = [
    (dict(ignore_index=2 ** 63), RuntimeError, nllk.NllkRuntimeError),
    (dict(ignore_index=-2 ** 63 - 1), RuntimeError, nllk.NllkRuntimeError),
    (dict(ignore_index=1.5), TypeError, nllk.NllkTypeError),
    (dict(ignore_index=True), TypeError, nllk.NllkTypeError),
    (dict(ignore_index=None), TypeError, nllk.NllkTypeError),
    (dict(reduction="avg"), ValueError, nllk.NllkValueError),
    (dict(reduction=None), ValueError, nllk.NllkValueError),
]
BAD_POISSON = [
    (dict(log_input=None), TypeError, nllk.NllkTypeError),
    (dict(log_input=1), TypeError, nllk.NllkTypeError),
    (dict(full=None), TypeError, nllk.NllkTypeError),
    (dict(eps="a"), TypeError, nllk.NllkTypeError),
    (dict(eps=None), TypeError, nllk.NllkTypeError),
    (dict(reduction="avg"), ValueError, nllk.NllkValueError),
]


@pytest.mark.parametrize("kw,pytorch_exc,nllk_exc", BAD_NLL, ids=str)
def test_nll_rejects_what_pytorch_rejects(backend, kw, pytorch_exc, nllk_exc):
    x, t, _, _ = data()
    with pytest.raises(pytorch_exc):
        F.nll_loss(x, t, **kw)
    with pytest.raises(nllk_exc):
        nt.nll_loss(x, t, **kw)
    with pytest.raises(nllk_exc):
        nt.nll_loss(x.clone().requires_grad_(True), t, **kw)


@pytest.mark.parametrize("kw,pytorch_exc,nllk_exc", BAD_POISSON, ids=str)
def test_poisson_rejects_what_pytorch_rejects(backend, kw, pytorch_exc, nllk_exc):
    _, _, p, pt = data()
    with pytest.raises(pytorch_exc):
        F.poisson_nll_loss(p, pt, **kw)
    with pytest.raises(nllk_exc):
        nt.poisson_nll_loss(p, pt, **kw)


def test_errors_are_nllk_classes_with_pytorchs_types(backend):
    x, t, p, pt = data()
    with pytest.raises(nllk.NllkIndexError) as e:
        nt.nll_loss(x, torch.tensor([0, 1, 2, 9, 1, 0]))
    assert isinstance(e.value, IndexError) and e.value.index == 3
    with pytest.raises(nllk.NllkValueError):
        nt.nll_loss(x, t[:4])
    with pytest.raises(nllk.NllkRuntimeError):
        nt.nll_loss(x, t, weight=torch.ones(4, dtype=x.dtype))
    with pytest.raises(nllk.NllkRuntimeError):
        nt.poisson_nll_loss(p, pt[:, :3])


def test_one_dim_none_zero_weight_is_plus_zero(backend):
    x = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64)
    t = torch.tensor(1)
    w = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    ref = F.nll_loss(x, t, weight=w, reduction="none")
    ours = nt.nll_loss(x, t, weight=w, reduction="none")
    assert ours.shape == ref.shape and ours.item() == 0.0
    assert torch.copysign(torch.ones(()), ours) == torch.copysign(torch.ones(()), ref) == 1


# ---- the numpy front end with tensors that require grad ----------------------------------------------------------
def test_numpy_front_end_takes_part_in_autograd(backend):
    x, t, p, pt = data(10)
    for fn, ref_fn, a, b in ((nllk.nll_loss, F.nll_loss, x, t), (nllk.poisson_nll_loss, F.poisson_nll_loss, p, pt)):
        xa, xb = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
        out = fn(xa, b)
        assert out.requires_grad and grad_fn_is_nllk(out)
        out.backward()
        ref_fn(xb, b).backward()
        torch.testing.assert_close(xa.grad, xb.grad)


# ---- the calls nllk claims run on nllk's kernels ------------------------------------------------------------------
@needs_ops
def test_calls_reach_the_operators(monkeypatch):
    counts = {"nll": 0, "poisson": 0, "F": 0}

    def counting(name, fn):
        def call(*a, **k):
            out = fn(*a, **k)
            counts[name] += 1  # calls that returned a result (the operators refuse what they do not compute)
            return out
        return call

    monkeypatch.setattr(nt, "_OP_NLL", counting("nll", nt._OP_NLL))
    monkeypatch.setattr(nt, "_OP_POISSON", counting("poisson", nt._OP_POISSON))
    monkeypatch.setattr(nt._F, "nll_loss", counting("F", F.nll_loss))
    monkeypatch.setattr(nt._F, "poisson_nll_loss", counting("F", F.poisson_nll_loss))
    x, t, p, pt = data()
    nt.nll_loss(x, t)
    nt.nll_loss(x.float().requires_grad_(True), t.int())
    nt.poisson_nll_loss(p, pt, reduction="none")
    nt.PoissonNLLLoss()(p, pt)
    assert counts == {"nll": 2, "poisson": 2, "F": 0}
    nt.nll_loss(x.bfloat16(), t)                       # bfloat16: nllk's (issue 13)
    nt.nll_loss(x.to("meta"), t.to("meta"))            # not on the CPU: PyTorch's
    nt.poisson_nll_loss(p, pt.float())                 # mixed dtypes: PyTorch's
    with fwAD.dual_level():
        nt.poisson_nll_loss(fwAD.make_dual(p, p), pt)  # forward AD: PyTorch's
    assert counts == {"nll": 3, "poisson": 2, "F": 3}


# ---- cross-entropy (operators only) ------------------------------------------------------------------------------
CE_CASES = [dict(prob=p, label_smoothing=ls, reduction=r) for p in (False, True) for ls in (0.0, 0.3)
            for r in ("none", "mean", "sum")]


def _ce_data(prob, seed=11):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    t = (torch.rand(4, 5, 3, generator=g, dtype=torch.float64).softmax(1) if prob
         else torch.randint(0, 5, (4, 3), generator=g))
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    return x, t, w


@needs_ops
@pytest.mark.parametrize("kw", CE_CASES, ids=str)
def test_cross_entropy_values_gradients_and_penalty(kw):
    kw = dict(kw)
    x, t, w = _ce_data(kw.pop("prob"))
    if not t.is_floating_point():
        t[0, 0] = 1
        kw["ignore_index"] = 1
    ours = _penalized(nt.cross_entropy, x, t, weight=w, **kw)
    ref = _penalized(F.cross_entropy, x, t, weight=w, **kw)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    out = nt.cross_entropy(x.clone().requires_grad_(True), t, weight=w, **kw)
    assert "CrossEntropyFunction" in out.grad_fn.name()


@needs_ops
def test_cross_entropy_inplace_detected_and_errors():
    x, t, w = _ce_data(False)
    xs = x.clone().requires_grad_(True)
    y = xs * 1
    loss = nt.cross_entropy(y, t)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    bad = t.clone()
    bad[2, 1] = 7
    with pytest.raises(nllk.NllkIndexError) as e:
        nt.cross_entropy(x, bad)
    assert e.value.index == 2 * 3 + 1
    for kw, exc in [(dict(label_smoothing=1.5), RuntimeError), (dict(reduction="avg"), ValueError),
                    (dict(ignore_index=1.5), TypeError)]:
        with pytest.raises(exc):
            F.cross_entropy(x, t, **kw)
        with pytest.raises(exc) as e:
            nt.cross_entropy(x, t, **kw)
        assert isinstance(e.value, nllk.NllkError)


@needs_ops
@pytest.mark.parametrize("prob", [False, True])
def test_cross_entropy_module_script_trace(prob):
    x, t, w = _ce_data(prob)
    ours = nt.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    ref = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    scripted = torch.jit.script(ours)
    traced = torch.jit.trace(ours, (x, t))
    x2, t2, _ = _ce_data(prob, seed=12)
    for m in (scripted, traced):
        assert "nllk::cross_entropy" in str(m.graph)
        torch.testing.assert_close(m(x2, t2), ref(x2, t2))


@needs_ops
def test_cross_entropy_fwad_vmap_and_weight_grad_are_pytorchs():
    functorch = pytest.importorskip("functorch")
    x, t, w = _ce_data(False)
    tx = torch.randn_like(x)
    with fwAD.dual_level():
        a = fwAD.unpack_dual(nt.cross_entropy(fwAD.make_dual(x, tx), t)).tangent
        b = fwAD.unpack_dual(F.cross_entropy(fwAD.make_dual(x, tx), t)).tangent
    torch.testing.assert_close(a, b)
    xb, tb = torch.randn(4, 6, 5, dtype=torch.float64), torch.randint(0, 5, (4, 6))
    torch.testing.assert_close(functorch.vmap(nt.cross_entropy)(xb, tb), functorch.vmap(F.cross_entropy)(xb, tb))
    wr = w.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        nt.cross_entropy(x, t, weight=wr)
    xp, tp, _ = _ce_data(True)
    wa, wb = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    nt.cross_entropy(xp, tp, weight=wa).backward()  # probabilities: PyTorch differentiates the weight
    F.cross_entropy(xp, tp, weight=wb).backward()
    torch.testing.assert_close(wa.grad, wb.grad)


# ---- the numpy front end's common call (its per-call fast path) ---------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("tdtype", ["int64", "int32", "uint8"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_numpy_common_call(dtype, tdtype, reduction):
    import numpy as np
    rng = np.random.default_rng(13)
    x = rng.standard_normal((33, 7)).astype(dtype)
    t = rng.integers(0, 7, 33).astype(tdtype)
    t[3] = 5
    for ii in (-100, 5):
        ours = nllk.nll_loss(x, t, ignore_index=ii, reduction=reduction)
        ref = F.nll_loss(torch.from_numpy(x), torch.from_numpy(t.astype("int64")), ignore_index=ii,
                         reduction=reduction)
        assert isinstance(ours, np.ndarray) and ours.shape == () and ours.dtype == x.dtype
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)
    bad = t.copy()
    bad[11] = 7
    with pytest.raises(nllk.NllkIndexError) as e:
        nllk.nll_loss(x, bad, reduction=reduction)
    assert e.value.index == 11
    with pytest.raises(nllk.NllkValueError):
        nllk.nll_loss(x, t[:5], reduction=reduction)
    with pytest.raises(nllk.NllkRuntimeError):
        nllk.nll_loss(x, t, ignore_index=2 ** 63, reduction=reduction)
    with pytest.raises(nllk.NllkTypeError):
        nllk.nll_loss(x, t, ignore_index=True, reduction=reduction)
    np.testing.assert_allclose(nllk.nll_loss(x[:, ::2], t % 4, reduction=reduction),  # strided: the general path
                               nllk.nll_loss(np.ascontiguousarray(x[:, ::2]), t % 4, reduction=reduction))
