"""Every input PyTorch rejects is rejected by nllk too, with an exception of the same type (or a subclass of it);
where nllk deliberately accepts more (int32/uint8 targets for every shape) or less (float16/bfloat16), the tests
say so."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nllk
from nllk import _capi

f32 = np.float32


def _x(*shape, dt=f32):
    return np.log(np.full(shape, 0.25, dtype=dt))


def _t(*vals, dt=np.int64):
    return np.array(vals, dtype=dt)


def _tt(a):
    return None if a is None else torch.from_numpy(np.require(a, requirements="C"))


def _nll_both(x, t, **kw):
    """(nllk call, PyTorch call) of nll_loss on the same arguments (targets converted to int64 for PyTorch)."""
    w = kw.pop("weight", None)

    def ours():
        return nllk.nll_loss(x, t, weight=w, **kw)

    def theirs():
        tt = torch.from_numpy(np.asarray(t).astype(np.int64)) if np.asarray(t).dtype.kind in "iu" else _tt(t)
        return F.nll_loss(_tt(x), tt, weight=_tt(w), **kw)

    return ours, theirs


# (id, nllk call + PyTorch call, exception nllk must raise, message pattern)
NLL_CASES = [
    ("bad reduction", _nll_both(_x(4, 3), _t(0, 1, 2, 1), reduction="foo"), ValueError,
     "foo is not a valid value for reduction"),
    ("reduction None", _nll_both(_x(4, 3), _t(0, 1, 2, 1), reduction=None), ValueError, "not a valid value"),
    ("batch mismatch", _nll_both(_x(4, 3), _t(0, 1, 2)), ValueError,
     re.escape("Expected input batch_size (4) to match target batch_size (3).")),
    ("batch mismatch spatial", _nll_both(_x(2, 3, 4), np.zeros((3, 4), np.int64)), ValueError, "batch_size"),
    ("2-D input, 0-d target", _nll_both(_x(1, 3), np.array(1)), ValueError, "batch_size"),
    ("0-d input", _nll_both(np.array(1.0, f32), np.array(0)), ValueError, "Expected 1 or more dimensions"),
    ("target out of range", _nll_both(_x(4, 3), _t(0, 1, 7, 1)), IndexError,
     re.escape("target[2] = 7 is out of range [0, 3)")),
    ("target out of range, none", _nll_both(_x(4, 3), _t(0, 1, 7, 1), reduction="none"), IndexError, "7"),
    ("target out of range, sum", _nll_both(_x(4, 3), _t(0, 1, 7, 1), reduction="sum"), IndexError, "7"),
    ("negative target", _nll_both(_x(4, 3), _t(0, -3, 1, 1)), IndexError, "-3"),
    ("target == C", _nll_both(_x(4, 3), _t(0, 3, 1, 1)), IndexError, "= 3 is out of range"),
    ("ignore_index does not excuse others", _nll_both(_x(4, 3), _t(0, 5, 9, 1), ignore_index=5), IndexError,
     re.escape("target[2] = 9")),
    ("1-D input target out of range", _nll_both(_x(3), np.array(3)), IndexError, "out of range"),
    ("spatial target out of range", _nll_both(_x(2, 3, 2, 2), np.array([[[0, 1], [2, 0]], [[1, 4], [0, 0]]])),
     IndexError, re.escape("target[5] (sample 1, position 1) = 4")),
    ("C = 0 with a target", _nll_both(np.zeros((2, 0), f32), _t(0, 0)), IndexError, "out of range"),
    ("weight too long", _nll_both(_x(4, 3), _t(0, 1, 2, 1), weight=np.ones(4, f32)), RuntimeError,
     re.escape("weight tensor should be defined either for all 3 classes or no classes but got weight tensor of "
               "shape: [4]")),
    ("weight too short, none", _nll_both(_x(4, 3), _t(0, 1, 2, 1), weight=np.ones(2, f32), reduction="none"),
     RuntimeError, "for all 3 classes"),
    ("weight 2-D", _nll_both(_x(4, 3), _t(0, 1, 2, 1), weight=np.ones((1, 3), f32)), RuntimeError,
     re.escape("shape: [1, 3]")),
    ("weight 0-d, C = 1", _nll_both(_x(2, 1), _t(0, 0), weight=np.array(2.0, f32)), RuntimeError, "all 1 classes"),
    ("weight dtype", _nll_both(_x(4, 3), _t(0, 1, 2, 1), weight=np.ones(3, np.float64)), RuntimeError, "weight"),
    ("spatial size mismatch 4-D", _nll_both(_x(2, 3, 4, 5), np.zeros((2, 4, 6), np.int64)), RuntimeError,
     re.escape("Expected target size [2, 4, 5], got [2, 4, 6]")),
    ("spatial size mismatch 3-D", _nll_both(_x(2, 3, 4), np.zeros((2, 5), np.int64)), RuntimeError,
     "Expected target size"),
    ("spatial size mismatch 5-D, none", _nll_both(_x(2, 3, 2, 2, 2), np.zeros((2, 2, 2, 3), np.int64),
                                                  reduction="none"), RuntimeError, "Expected target size"),
    ("target ndim, 4-D input", _nll_both(_x(2, 3, 4, 5), np.zeros((2, 4), np.int64)), RuntimeError,
     "Expected target size"),
    ("target ndim, 3-D input", _nll_both(_x(2, 3, 4), np.zeros((2, 4, 1), np.int64)), RuntimeError,
     "Expected target size"),
    ("2-D target for 2-D input", _nll_both(_x(2, 3), np.zeros((2, 1), np.int64)), RuntimeError,
     "0D or 1D target tensor expected"),
    ("1-D target for 1-D input", _nll_both(_x(3), _t(1)), RuntimeError, re.escape("size mismatch")),
    ("float target", _nll_both(_x(4, 3), np.array([0, 1, 2, 1], f32)), RuntimeError, "integer class indices"),
    ("bool target", _nll_both(_x(2, 3), np.array([True, False])), RuntimeError, "integer class indices"),
    ("int input", _nll_both(np.zeros((2, 3), np.int64), _t(0, 1)), RuntimeError, "float32 and float64"),
    ("ignore_index overflow", _nll_both(_x(2, 3), _t(0, 1), ignore_index=2 ** 70), RuntimeError, "Overflow"),
    ("ignore_index float", _nll_both(_x(2, 3), _t(0, 1), ignore_index=1.5), TypeError, "ignore_index"),
]


@pytest.mark.parametrize("case", NLL_CASES, ids=[c[0] for c in NLL_CASES])
def test_nll_rejects_what_pytorch_rejects(case):
    _, (ours, theirs), exc, pattern = case
    with pytest.raises(Exception) as pt:
        theirs()
    with pytest.raises(exc, match=pattern) as got:
        ours()
    # the same exception type as PyTorch (or a subclass of it)
    assert isinstance(got.value, type(pt.value)), f"PyTorch raises {type(pt.value).__name__}: {pt.value}"


def test_nll_dtype_errors_are_type_errors():
    # (float16 and bfloat16 inputs are computed, float16 although PyTorch's CPU nll_loss rejects it: test_half.py)
    for x, t in ((np.zeros((2, 3), np.int16), _t(0, 1)), (_x(2, 3), np.array([0.0, 1.0], f32))):
        with pytest.raises(TypeError):
            nllk.nll_loss(x, t)


def test_nll_accepts_int32_and_uint8_targets_where_pytorch_does_not():
    x, t = _x(2, 3, 2), np.array([[0, 1], [2, 1]])
    with pytest.raises(RuntimeError):
        F.nll_loss(_tt(x), torch.from_numpy(t.astype(np.int32)))
    with pytest.raises(RuntimeError):
        F.nll_loss(_tt(x), torch.from_numpy(t.astype(np.uint8)))  # uint8 only for 1-D/2-D input in PyTorch
    ref = float(F.nll_loss(_tt(x), torch.from_numpy(t)))
    for dt in (np.int32, np.uint8):
        assert float(nllk.nll_loss(x, t.astype(dt))) == ref


def test_index_error_carries_the_library_message():
    with pytest.raises(IndexError) as e:
        nllk.nll_loss(_x(5000, 3), np.r_[np.zeros(4321, np.int64), [-7], np.full(678, 9)])
    assert isinstance(e.value, nllk.NllkError) and e.value.status == _capi.ERR_TARGET_OUT_OF_RANGE
    assert e.value.status_name == "NLLK_ERR_TARGET_OUT_OF_RANGE"
    assert str(e.value) == "target[4321] = -7 is out of range [0, 3)"  # the lowest offending index
    assert e.value.index == 4321  # nllk_last_error_index()


def test_nll_backward_errors():
    x, t = _x(4, 3), _t(0, 1, 2, 1)
    with pytest.raises(IndexError, match="out of range"):
        nllk.nll_loss_backward(1.0, x, _t(0, 1, 3, 1))
    with pytest.raises(IndexError, match="out of range"):
        nllk.nll_loss_backward(np.ones(4, f32), x, _t(0, 1, 3, 1), reduction="none")
    with pytest.raises(ValueError, match="not a valid value"):
        nllk.nll_loss_backward(1.0, x, t, reduction="avg")
    with pytest.raises(RuntimeError, match="grad_output"):
        nllk.nll_loss_backward(np.ones(3, f32), x, t, reduction="none")
    with pytest.raises(RuntimeError, match="grad_output"):
        nllk.nll_loss_backward(np.ones(2, f32), x, t, reduction="mean")
    with pytest.raises(ValueError, match="batch_size"):
        nllk.nll_loss_backward(1.0, x, t[:3])
    with pytest.raises(RuntimeError, match="weight"):
        nllk.nll_loss_backward(1.0, x, t, weight=np.ones(2, f32))


def _poisson_both(x, t, **kw):
    return (lambda: nllk.poisson_nll_loss(x, t, **kw)), (lambda: F.poisson_nll_loss(_tt(x), _tt(t), **kw))


POISSON_CASES = [
    ("bad reduction", _poisson_both(np.ones(3, f32), np.ones(3, f32), reduction="foo"), ValueError,
     "^foo is not valid$"),
    ("shapes do not broadcast", _poisson_both(np.ones(3, f32), np.ones(4, f32)), RuntimeError, "broadcast"),
    ("shapes do not broadcast 2-D", _poisson_both(np.ones((2, 3), f32), np.ones((3, 2), f32)), RuntimeError,
     "broadcast"),
]


@pytest.mark.parametrize("case", POISSON_CASES, ids=[c[0] for c in POISSON_CASES])
def test_poisson_rejects_what_pytorch_rejects(case):
    _, (ours, theirs), exc, pattern = case
    with pytest.raises(Exception) as pt:
        theirs()
    with pytest.raises(exc, match=pattern) as got:
        ours()
    assert isinstance(got.value, type(pt.value)), f"PyTorch raises {type(pt.value).__name__}: {pt.value}"


def test_poisson_other_errors():
    x = np.ones(3, f32)
    with pytest.raises(TypeError, match="reduction"):  # as PyTorch's (None + str)
        nllk.poisson_nll_loss(x, x, reduction=None)
    with pytest.raises(TypeError, match="float32 and float64"):
        nllk.poisson_nll_loss(np.ones(3, np.int64), x)
    with pytest.raises(TypeError, match="float32 and float64"):
        nllk.poisson_nll_loss(np.ones(3, np.complex64), x)
    with pytest.raises(TypeError):
        nllk.poisson_nll_loss(x, np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="is not valid"):
        nllk.poisson_nll_loss_backward(1.0, x, x, reduction="avg")
    with pytest.raises(RuntimeError, match="grad_output"):
        nllk.poisson_nll_loss_backward(np.ones(2, f32), x, x, reduction="none")
    with pytest.raises(RuntimeError, match="grad_output"):
        nllk.poisson_nll_loss_backward(np.ones(3, f32), x, x, reduction="sum")
    with pytest.raises(RuntimeError, match="broadcast"):
        nllk.poisson_nll_loss_backward(1.0, x, np.ones(4, f32))


def test_status_codes_map_to_exceptions():
    expected = {
        _capi.ERR_NULL_POINTER: RuntimeError,
        _capi.ERR_INVALID_ARGUMENT: ValueError,
        _capi.ERR_SIZE_OVERFLOW: OverflowError,
        _capi.ERR_TARGET_OUT_OF_RANGE: IndexError,
        _capi.ERR_UNSUPPORTED: RuntimeError,
        99: RuntimeError,
    }
    for status, exc in expected.items():
        with pytest.raises(exc) as e:
            _capi.check(status)
        assert isinstance(e.value, nllk.NllkError) and e.value.status == status
    _capi.check(_capi.OK)
    # a real library failure: an invalid reduction code straight through the C API
    fn = _capi.get().f32.poisson_nll_fwd
    out = np.empty((), f32)
    with pytest.raises(nllk.NllkValueError, match="reduction 7 is not valid") as e:
        _capi.check(fn(None, None, 0, True, False, 1e-8, 7, out.ctypes.data))
    assert e.value.index is None and e.value.status_name == "NLLK_ERR_INVALID_ARGUMENT"
