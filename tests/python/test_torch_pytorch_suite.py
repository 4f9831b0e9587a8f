"""PyTorch's own test material for these losses, run against nllk.torch: the OpInfo entries of
torch.testing._internal.common_methods_invocations (sample_inputs, error_inputs, gradcheck, gradgradcheck with
batched grads and forward AD as the OpInfo asks) and the common_nn criterion tests (modules, reference_fn,
sum reduction). Every sample nllk claims (float32/float64 CPU tensors of the kinds nllk computes) must have run
on nllk's kernels: the tests count the calls that returned a result."""
import os
import random
import sys
import types
import unittest

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import nllk.torch as nt  # noqa: E402

try:  # torch.testing._internal imports expecttest (not packaged by Debian); only its TestCase base is needed here
    import expecttest  # noqa: F401
except ImportError:
    _shim = types.ModuleType("expecttest")
    _shim.TestCase, _shim.ACCEPT = unittest.TestCase, False
    sys.modules["expecttest"] = _shim
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402
import torch.testing._internal.common_nn as common_nn  # noqa: E402

OURS = {"nn.functional.nll_loss": nt.nll_loss, "nn.functional.poisson_nll_loss": nt.poisson_nll_loss,
        "nn.functional.cross_entropy": nt.cross_entropy}
OPINFOS = [o for o in op_db if o.name in OURS]
FLOATS = (torch.float32, torch.float64)
HALF = (torch.bfloat16, torch.float16)  # computed by nllk too (issue 13)


@pytest.fixture(params=["ops", "ctypes"])
def counted(request, monkeypatch):
    """The backend under test, and a dict counting the calls of nllk's kernels that returned a result."""
    counts = {"nllk": 0}
    torch.manual_seed(0)
    random.seed(0)
    _sample = random.sample  # sample_inputs_cross_entropy calls random.sample on a set (an error in Python 3.11)
    monkeypatch.setattr(random, "sample", lambda population, k, **kw: _sample(
        sorted(population) if isinstance(population, (set, frozenset)) else population, k, **kw))

    def counting(fn):
        def call(*a, **k):
            out = fn(*a, **k)
            counts["nllk"] += 1
            return out
        return call

    if request.param == "ops":
        if nt.BACKEND != "ops":
            pytest.skip(f"operators not loaded: {nt.BACKEND_ERROR}")
        monkeypatch.setattr(nt, "_OP_NLL", counting(nt._OP_NLL))
        monkeypatch.setattr(nt, "_OP_POISSON", counting(nt._OP_POISSON))
        monkeypatch.setattr(nt, "_OP_CE", counting(nt._OP_CE))
    else:  # (cross_entropy has no ctypes path: PyTorch computes it there, and nothing is counted)
        monkeypatch.setattr(nt, "_OP_NLL", None)
        monkeypatch.setattr(nt, "_OP_POISSON", None)
        monkeypatch.setattr(nt, "_OP_CE", None)
        monkeypatch.setattr(nt, "_ctypes_nll_forward", counting(nt._ctypes_nll_forward))
        monkeypatch.setattr(nt, "_ctypes_poisson_forward", counting(nt._ctypes_poisson_forward))
    counts["backend"] = request.param
    return counts


def claimed(name, sample, backend="ops"):
    """Whether nllk computes this sample (written from nllk.torch's documentation, not from its code)."""
    x, t = sample.input, sample.args[0]
    if x.dtype not in FLOATS + HALF:
        return False
    if name.endswith("poisson_nll_loss"):
        return t.dtype is x.dtype
    w = sample.kwargs.get("weight")
    if name.endswith("cross_entropy"):
        if backend != "ops" or (x.dtype in HALF and not _ce16_in_library()):
            return False
        if t.is_floating_point():
            return t.dtype is x.dtype and (w is None or (w.dtype is x.dtype and not w.requires_grad))
    return t.dtype in (torch.int64, torch.int32, torch.uint8) and (
        w is None or (w.dtype is x.dtype and not w.requires_grad))


def _ce16_in_library() -> bool:
    """False while libnllk refuses 16-bit cross-entropy (NLLK_ERR_UNSUPPORTED): PyTorch computes it then."""
    import nllk
    try:
        nllk.cross_entropy(torch.zeros(1, 2, dtype=torch.bfloat16), torch.tensor([0]))
        return True
    except nllk.NllkRuntimeError as e:
        if e.status != 5:
            raise
        return False


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)


def _double(z):
    """A floating tensor as float64 (keeping requires_grad), anything else as it is."""
    if isinstance(z, torch.Tensor) and z.is_floating_point():
        return z.detach().double().requires_grad_(z.requires_grad)
    return z


def _clone(s, rg):
    x = s.input.detach().clone().requires_grad_(rg and s.input.requires_grad)
    args = [a.detach().clone().requires_grad_(rg and a.requires_grad) if isinstance(a, torch.Tensor) else a
            for a in s.args]
    return x, args


@pytest.mark.parametrize("opinfo", OPINFOS, ids=lambda o: o.name)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opinfo_samples(counted, opinfo, requires_grad):
    ours = OURS[opinfo.name]
    n_claimed = 0
    for dtype in sorted(opinfo.supported_dtypes("cpu"), key=str):
        if requires_grad and not (dtype.is_floating_point or dtype.is_complex):
            continue
        for s in opinfo.sample_inputs("cpu", dtype, requires_grad=requires_grad):
            n_claimed += claimed(opinfo.name, s, counted["backend"])
            xa, aa = _clone(s, requires_grad)
            xb, ab = _clone(s, requires_grad)
            a = ours(xa, *aa, **s.kwargs)
            b = opinfo.op(xb, *ab, **s.kwargs)
            assert a.shape == b.shape and a.dtype == b.dtype, s
            t = tol(dtype) if dtype in FLOATS else {}
            if dtype == torch.bfloat16:
                # nllk computes bfloat16 in float32 (sums in double) and rounds once; PyTorch 1.13 sums in
                # bfloat16: both are compared with PyTorch's float64 result on the same values
                xb, ab = _double(xb), [_double(z) for z in ab]
                b = opinfo.op(xb, *ab, **{k: _double(v) for k, v in s.kwargs.items()})
                a, t = a.double(), dict(rtol=1.6e-2, atol=1e-2)
            torch.testing.assert_close(a, b, equal_nan=True, **t)
            if requires_grad and b.requires_grad:
                v = torch.rand_like(b)
                da = [z for z in [xa] + aa if isinstance(z, torch.Tensor) and z.requires_grad]
                db = [z for z in [xb] + ab if isinstance(z, torch.Tensor) and z.requires_grad]
                ga = torch.autograd.grad(a, da, v.to(a.dtype))
                if dtype == torch.bfloat16:
                    ga = [g.double() for g in ga]
                gb = torch.autograd.grad(b, db, v)
                for i, (p, q) in enumerate(zip(ga, gb)):
                    if i == 1 and s.kwargs.get("full") and opinfo.name.endswith("poisson_nll_loss"):
                        keep = aa[0] > 0  # by design: PyTorch's target gradient is NaN at target <= 0 with full
                        p, q = p[keep], q[keep]
                    torch.testing.assert_close(p, q, equal_nan=True, **t)
    assert n_claimed > 0 or (counted["backend"] == "ctypes" and opinfo.name.endswith("cross_entropy"))
    # each claimed sample ran once (forward); nothing else reached the kernels' forward
    assert counted["nllk"] == n_claimed


@pytest.mark.parametrize("opinfo", [o for o in OPINFOS if o.error_inputs_func], ids=lambda o: o.name)
def test_opinfo_error_inputs(counted, opinfo):
    n = 0
    for e in opinfo.error_inputs("cpu"):
        s = e.sample_input
        with pytest.raises(e.error_type, match=e.error_regex):
            OURS[opinfo.name](s.input, *s.args, **s.kwargs)
        n += 1
    assert n > 0


def same_outcome(check, ours, ref, tensors, **kw):
    """check(ours) passes where check(PyTorch's op) passes, and raises PyTorch's exception where PyTorch's op
    fails it (PyTorch 1.13's nll_loss has no forward AD over its backward: gradgradcheck's fwd-over-rev)."""
    try:
        check(ref, tensors, **kw)
    except Exception as e:  # noqa: BLE001 - whatever PyTorch raises, nllk.torch must raise too
        with pytest.raises(type(e)):
            check(ours, tensors, **kw)
        return
    assert check(ours, tensors, **kw)


@pytest.mark.parametrize("opinfo", OPINFOS, ids=lambda o: o.name)
def test_opinfo_gradcheck_gradgradcheck(counted, opinfo):
    ours = OURS[opinfo.name]
    n = 0
    for s in opinfo.sample_inputs("cpu", torch.float64, requires_grad=True):
        tensors = [s.input] + [a for a in s.args if isinstance(a, torch.Tensor) and a.requires_grad]
        rest = [a for a in s.args if not (isinstance(a, torch.Tensor) and a.requires_grad)]
        if s.kwargs.get("full") and opinfo.name.endswith("poisson_nll_loss") and len(tensors) > 1:
            tensors[1] = (tensors[1].detach().abs() + 1.5).requires_grad_(True)  # away from the t <= 1 kink

        def fn(*ts):
            return ours(ts[0], *(list(ts[1:]) + rest), **s.kwargs)

        def ref(*ts):
            return opinfo.op(ts[0], *(list(ts[1:]) + rest), **s.kwargs)

        same_outcome(torch.autograd.gradcheck, fn, ref, tensors, check_batched_grad=opinfo.check_batched_grad,
                     check_forward_ad=opinfo.supports_forward_ad)
        same_outcome(torch.autograd.gradgradcheck, fn, ref, tensors,
                     check_batched_grad=opinfo.check_batched_gradgrad,
                     check_fwd_over_rev=opinfo.supports_fwgrad_bwgrad)
        n += 1
    assert n > 0 and (counted["nllk"] > 0 or counted["backend"] == "ctypes")


# ---- common_nn criterion tests ----------------------------------------------------------------------------------
def _criterion_cases():
    for c in common_nn.criterion_tests:
        name = c.get("fullname") or c["module_name"] + ("_" + c["desc"] if c.get("desc") else "")
        if name.startswith(("NLLLoss", "PoissonNLLLoss", "CrossEntropyLoss")):
            yield pytest.param(c, id=name)


def _nllk_module(m):
    """The nllk.torch module with the configuration of torch.nn module m."""
    if isinstance(m, torch.nn.CrossEntropyLoss):
        return nt.CrossEntropyLoss(weight=m.weight, ignore_index=m.ignore_index, reduction=m.reduction,
                                   label_smoothing=m.label_smoothing)
    if isinstance(m, torch.nn.NLLLoss):
        return nt.NLLLoss(weight=m.weight, ignore_index=m.ignore_index, reduction=m.reduction)
    return nt.PoissonNLLLoss(log_input=m.log_input, full=m.full, eps=m.eps, reduction=m.reduction)


@pytest.mark.parametrize("case", list(_criterion_cases()))
@pytest.mark.parametrize("dtype", FLOATS)
def test_common_nn_criterion(counted, case, dtype):
    torch.manual_seed(0)
    args = case["constructor_args_fn"]() if "constructor_args_fn" in case else case.get("constructor_args", ())
    ref_mod = (case["constructor"] if "constructor" in case else getattr(torch.nn, case["module_name"]))(*args)
    ref_mod = ref_mod.to(dtype)
    x = case["input_fn"]() if "input_fn" in case else torch.randn(case["input_size"])
    t = case["target_fn"]() if "target_fn" in case else case.get("target", None)
    if t is None:
        t = torch.rand(case["target_size"])
    x = x.to(dtype)
    t = t.to(dtype) if t.is_floating_point() else t
    reductions = [ref_mod.reduction] + (["sum"] if case.get("check_sum_reduction") else [])
    for red in reductions:
        ref_mod.reduction = red
        ours = _nllk_module(ref_mod)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        a, b = ours(xa, t), ref_mod(xb, t)
        torch.testing.assert_close(a, b, **tol(dtype))
        if red == case.get("reduction", ref_mod.reduction) and "reference_fn" in case and red == reductions[0]:
            r = case["reference_fn"](x.double(), t.double() if t.is_floating_point() else t, ref_mod.double())
            ref_mod.to(dtype)
            torch.testing.assert_close(a.double(), torch.as_tensor(r, dtype=torch.float64), rtol=1e-4, atol=1e-5)
        v = torch.rand_like(b)
        a.backward(v)
        b.backward(v)
        torch.testing.assert_close(xa.grad, xb.grad, **tol(dtype))
    ce_on_ctypes = counted["backend"] == "ctypes" and isinstance(ref_mod, torch.nn.CrossEntropyLoss)
    assert counted["nllk"] == (0 if ce_on_ctypes else len(reductions))
