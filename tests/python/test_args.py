"""PyTorch's argument rules (nllk._args), value by value against torch 1.13 itself: every value PyTorch rejects is
rejected by nllk.* and nllk.torch.* with an exception of PyTorch's type (an nllk.NllkError that is also that
type), every value it accepts gives PyTorch's result."""
import enum

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
import nllk.torch as nt


class _IntEnum(enum.IntEnum):
    ONE = 1


def _nll_data():
    x = torch.log_softmax(torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(4, 3), 1)
    return x, torch.tensor([0, 1, 2, 1])


def _poisson_data():
    x = torch.linspace(0.1, 2, 5, dtype=torch.float64)
    return x, torch.linspace(0, 3, 5, dtype=torch.float64)


def _outcome(call):
    """('ok', value) or ('error', exception)."""
    try:
        return "ok", call()
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return "error", e


def _check_same_as_torch(theirs, ours_calls):
    kind, ref = _outcome(theirs)
    for name, ours in ours_calls:
        got_kind, got = _outcome(ours)
        if kind == "error":
            assert got_kind == "error", f"{name}: PyTorch raises {type(ref).__name__}: {ref}; nllk returned {got}"
            assert isinstance(got, type(ref)), f"{name}: PyTorch raises {type(ref).__name__}, nllk {got!r}"
            assert isinstance(got, nllk.NllkError), f"{name}: {got!r} is not an nllk.NllkError"
        else:
            assert got_kind == "ok", f"{name}: PyTorch accepts it, nllk raises {got!r}"
            torch.testing.assert_close(torch.as_tensor(got), ref, rtol=1e-12, atol=1e-12, equal_nan=True)


IGNORE_INDEX = [2 ** 63, 2 ** 63 - 1, -2 ** 63, -2 ** 63 - 1, 1.5, 2.0, True, False, None, "1", np.int64(1),
                np.int32(1), np.uint8(2), np.uint64(2 ** 63), np.float64(1.0), np.bool_(True), torch.tensor(1),
                torch.tensor(1, dtype=torch.uint8), torch.tensor(1.0), torch.tensor(True), torch.tensor([1]),
                np.array(1), _IntEnum.ONE]


@pytest.mark.parametrize("value", IGNORE_INDEX, ids=repr)
def test_ignore_index(value):
    x, t = _nll_data()
    _check_same_as_torch(lambda: F.nll_loss(x, t, ignore_index=value), [
        ("nllk.nll_loss", lambda: nllk.nll_loss(x, t, ignore_index=value)),
        ("nllk.nll_loss numpy", lambda: torch.from_numpy(nllk.nll_loss(x.numpy(), t.numpy(), ignore_index=value))),
        ("nllk.torch.nll_loss", lambda: nt.nll_loss(x, t, ignore_index=value)),
        ("nllk.torch.NLLLoss", lambda: nt.NLLLoss(ignore_index=value)(x, t)),
        ("nllk.torch.nll_loss grad", lambda: nt.nll_loss(x.clone().requires_grad_(True), t, ignore_index=value)),
    ])


REDUCTIONS = [None, 5, "foo", b"sum", "Mean", np.str_("sum"), "none"]


@pytest.mark.parametrize("value", REDUCTIONS, ids=repr)
def test_nll_reduction(value):
    x, t = _nll_data()
    _check_same_as_torch(lambda: F.nll_loss(x, t, reduction=value), [
        ("nllk.nll_loss", lambda: nllk.nll_loss(x, t, reduction=value)),
        ("nllk.nll_loss_forward", lambda: nllk.nll_loss_forward(x, t, reduction=value)[0]),
        ("nllk.torch.nll_loss", lambda: nt.nll_loss(x, t, reduction=value)),
    ])


@pytest.mark.parametrize("value", REDUCTIONS, ids=repr)
def test_poisson_reduction(value):
    x, t = _poisson_data()
    _check_same_as_torch(lambda: F.poisson_nll_loss(x, t, reduction=value), [
        ("nllk.poisson_nll_loss", lambda: nllk.poisson_nll_loss(x, t, reduction=value)),
        ("nllk.torch.poisson_nll_loss", lambda: nt.poisson_nll_loss(x, t, reduction=value)),
    ])


FLAGS = [True, False, None, 1, 0, 2, 1.0, "a", np.bool_(True), torch.tensor(True), np.int64(1)]


@pytest.mark.parametrize("name", ["log_input", "full"])
@pytest.mark.parametrize("value", FLAGS, ids=repr)
def test_poisson_flags(name, value):
    x, t = _poisson_data()
    kw = {name: value}
    _check_same_as_torch(lambda: F.poisson_nll_loss(x, t, **kw), [
        ("nllk.poisson_nll_loss", lambda: nllk.poisson_nll_loss(x, t, **kw)),
        ("nllk.torch.poisson_nll_loss", lambda: nt.poisson_nll_loss(x, t, **kw)),
        ("nllk.torch.poisson_nll_loss grad",
         lambda: nt.poisson_nll_loss(x.clone().requires_grad_(True), t, **kw)),
    ])
    xg = x.clone().requires_grad_(True)
    _check_same_as_torch(lambda: torch.autograd.grad(F.poisson_nll_loss(xg, t, **kw), xg)[0], [
        ("nllk.poisson_nll_loss_backward", lambda: nllk.poisson_nll_loss_backward(1.0, x, t, **kw)),
    ])


EPS = ["a", None, True, 1, 2 ** 70, 10 ** 400, np.float32(1e-3), np.int64(1), np.float16(1e-3), np.bool_(True),
       torch.tensor(1e-3, dtype=torch.float64), torch.tensor(3), torch.tensor([1e-3]), np.array(1e-3), 1j,
       torch.tensor(0.1, requires_grad=True), float("nan"), -1.0, _IntEnum.ONE]


@pytest.mark.parametrize("value", EPS, ids=repr)
def test_poisson_eps(value):
    x, t = _poisson_data()
    _check_same_as_torch(lambda: F.poisson_nll_loss(x, t, log_input=False, eps=value), [
        ("nllk.poisson_nll_loss", lambda: nllk.poisson_nll_loss(x, t, log_input=False, eps=value)),
        ("nllk.torch.poisson_nll_loss", lambda: nt.poisson_nll_loss(x, t, log_input=False, eps=value)),
        ("nllk.torch.PoissonNLLLoss", lambda: nt.PoissonNLLLoss(log_input=False, eps=value)(x, t)),
    ])


def test_shape_errors_are_the_same_classes_in_both_front_ends():
    """nllk.torch used to fall back to PyTorch for shapes it rejects (PyTorch's plain exceptions): now both front
    ends raise nllk's classes, which are PyTorch's types."""
    x, t = _nll_data()
    for bad_t, exc in ((t[:3], ValueError), (torch.zeros(4, 2, dtype=torch.int64), RuntimeError),
                       (torch.tensor([0, 1, 7, 1]), IndexError)):
        for fn in (nllk.nll_loss, nt.nll_loss):
            with pytest.raises(exc) as e:
                fn(x, bad_t)
            assert isinstance(e.value, nllk.NllkError), (fn, e.value)
    with pytest.raises(RuntimeError) as e:
        nt.nll_loss(x, t, weight=torch.ones(4, dtype=torch.float64))
    assert isinstance(e.value, nllk.NllkRuntimeError)
    with pytest.raises(nllk.NllkIndexError) as e:
        nt.nll_loss(x, torch.tensor([0, 1, 7, 1]))
    assert e.value.index == 2
    px, pt = _poisson_data()
    for fn in (nllk.poisson_nll_loss, nt.poisson_nll_loss):
        with pytest.raises(nllk.NllkRuntimeError, match="broadcast"):
            fn(px, pt[:4])


@pytest.mark.parametrize("grad", [False, True])
def test_1d_none_zero_weight_is_positive_zero(grad):
    """ATen sums a 1-D input's single 'none' element from +0: -x*0 gives +0.0, not -0.0 (issue 14)."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=grad)
    w = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    ref = F.nll_loss(x, torch.tensor(1), weight=w, reduction="none")
    assert ref.item() == 0.0 and not torch.signbit(ref)
    for fn in (nt.nll_loss, nllk.nll_loss):
        got = fn(x, torch.tensor(1), weight=w, reduction="none")
        assert got.shape == ref.shape and got.item() == 0.0 and not torch.signbit(got), fn
    if grad:
        (g,) = torch.autograd.grad(nt.nll_loss(x, torch.tensor(2), weight=w, reduction="none") * 2, x)
        torch.testing.assert_close(g, torch.tensor([0.0, 0.0, -2.0], dtype=torch.float64))


def test_weight_that_requires_grad_is_left_to_pytorch():
    x, t = _nll_data()
    x = x.clone().requires_grad_(True)
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    theirs, ours = _outcome(lambda: F.nll_loss(x, t, weight=w).backward()), \
        _outcome(lambda: nt.nll_loss(x, t, weight=w).backward())
    assert theirs[0] == ours[0] and type(theirs[1]) is type(ours[1])


def test_reduction_is_checked_first_as_in_pytorch():
    x, t = _nll_data()
    px, pt = _poisson_data()
    _check_same_as_torch(lambda: F.nll_loss(x, t, ignore_index=1.5, reduction="foo"), [
        ("nllk.nll_loss", lambda: nllk.nll_loss(x, t, ignore_index=1.5, reduction="foo")),
        ("nllk.torch.nll_loss", lambda: nt.nll_loss(x, t, ignore_index=1.5, reduction="foo"))])
    _check_same_as_torch(lambda: F.poisson_nll_loss(px, pt, log_input=None, eps="a", reduction="foo"), [
        ("nllk.poisson_nll_loss", lambda: nllk.poisson_nll_loss(px, pt, log_input=None, eps="a", reduction="foo")),
        ("nllk.torch.poisson_nll_loss",
         lambda: nt.poisson_nll_loss(px, pt, log_input=None, eps="a", reduction="foo"))])
