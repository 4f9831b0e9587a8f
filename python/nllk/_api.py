"""The numpy / torch front end: argument checks as PyTorch makes them, shapes mapped to the C API's contiguous
(n) and (n, c, d) views, and results returned as the caller's kind (torch in -> torch out, numpy in -> numpy out).

Everything is done on numpy views: a CPU torch tensor's .numpy() shares its memory, so torch inputs are read in
place (no copy unless non-contiguous, of another byte order, or of a dtype that must be converted). Outputs are
fresh arrays; inputs are only ever read.

torch is never imported here: a tensor can only be passed in by a caller that has imported it already, so it is
looked up in sys.modules (numpy-only users do not pay for importing torch).
"""
import math
import operator
import sys

import numpy as np

from . import _lib
from ._lib import DTypeError

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_INT64_MAX = np.iinfo(np.int64).max


# ---- kinds: numpy or torch ----------------------------------------------------------------------------------
def _torch():
    return sys.modules.get("torch")


def _is_tensor(a):
    torch = _torch()
    return torch is not None and isinstance(a, torch.Tensor)


def _to_numpy(a, role):
    """A numpy view of a (numpy array, CPU strided torch tensor, or anything np.asarray takes)."""
    if isinstance(a, np.ndarray):
        return a
    if _is_tensor(a):
        torch = _torch()
        if a.device.type != "cpu":
            raise ValueError(f"{role}: nllk runs on the CPU, got a tensor on {a.device}")
        if a.layout != torch.strided:
            raise TypeError(f"{role}: nllk takes dense (strided) tensors, got layout {a.layout}")
        if a.dtype in (torch.bfloat16, torch.complex32) or a.is_complex() or a.is_quantized:
            raise DTypeError(f"{role}: nllk computes in float32 and float64, got {a.dtype}")
        a = a.detach()
        if a.is_conj():
            a = a.resolve_conj()
        if a.is_neg():
            a = a.resolve_neg()
        return a.numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # pragma: no cover - exotic objects
        raise TypeError(f"{role}: expected a numpy array or a torch tensor, got {type(a).__name__}") from e


def _wrap(arr, as_torch):
    """Returns arr as the caller's kind."""
    if as_torch:
        return _torch().from_numpy(arr)
    return arr


def _contiguous(a, dtype):
    """a as a C-contiguous, aligned, native-byte-order array of dtype (no copy when it already is one)."""
    return np.require(a, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED"))


def _ptr(a):
    """The data pointer for the C API (None for an empty array)."""
    return a.ctypes.data if a is not None and a.size > 0 else None


def _float_dtype(dt):
    """dt normalized to native float32/float64, or None if dt is neither."""
    if dt.kind == "f" and dt.itemsize in (4, 8):
        return _F32 if dt.itemsize == 4 else _F64
    return None


def _compute_dtype(a, role):
    dt = _float_dtype(a.dtype)
    if dt is None:
        raise DTypeError(f"{role}: nllk computes in float32 and float64 only, got {a.dtype}")
    return dt


def _suffix(dt):
    return "f32" if dt == _F32 else "f64"


def _shape_str(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


# ---- reductions ---------------------------------------------------------------------------------------------
_REDUCTIONS = {"none": _lib.REDUCTION_NONE, "mean": _lib.REDUCTION_MEAN, "sum": _lib.REDUCTION_SUM}


def _poisson_reduction(reduction):
    # torch.nn.functional.poisson_nll_loss: ValueError(reduction + " is not valid")
    if isinstance(reduction, str) and reduction in _REDUCTIONS:
        return _REDUCTIONS[reduction]
    raise ValueError(f"{reduction} is not valid")


def _nll_reduction(reduction):
    # torch's _Reduction.get_enum: ValueError("{} is not a valid value for reduction")
    if isinstance(reduction, str) and reduction in _REDUCTIONS:
        return _REDUCTIONS[reduction]
    raise ValueError(f"{reduction} is not a valid value for reduction")


# ---- Poisson ------------------------------------------------------------------------------------------------
def _poisson_dtype(x, t):
    """PyTorch's result dtype of poisson_nll_loss(x, t): input must be float32/float64; a floating target
    promotes with it (float32 with float64 gives float64), an integer or bool target takes input's dtype."""
    dt = _compute_dtype(x, "poisson_nll_loss input")
    if t.dtype.kind == "f":
        if t.dtype.itemsize > 8:
            raise DTypeError(f"poisson_nll_loss target: nllk computes in float32 and float64, got {t.dtype}")
        return _F64 if t.dtype.itemsize == 8 else dt
    if t.dtype.kind in "iub":
        return dt
    raise DTypeError(f"poisson_nll_loss target: expected a real number dtype, got {t.dtype}")


def _poisson_prepare(input, target):
    """(kind is torch, x, t, dtype, shape, x's original shape/dtype, t's original shape/dtype)."""
    as_torch = _is_tensor(input)
    x = _to_numpy(input, "poisson_nll_loss input")
    t = _to_numpy(target, "poisson_nll_loss target")
    if isinstance(target, (int, float)) and _float_dtype(x.dtype) is not None:
        t = t.astype(x.dtype)  # a Python number is weakly typed, as in PyTorch: it takes input's dtype
    dt = _poisson_dtype(x, t)
    x_shape, t_shape, x_dtype, t_dtype = x.shape, t.shape, x.dtype, t.dtype
    try:
        shape = np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise RuntimeError(f"poisson_nll_loss: input of shape {_shape_str(x.shape)} and target of shape "
                           f"{_shape_str(t.shape)} do not broadcast") from None
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    if t.shape != shape:
        t = np.broadcast_to(t, shape)
    x = _contiguous(x, dt)
    t = _contiguous(t, dt)
    return as_torch, x, t, dt, shape, (x_shape, x_dtype), (t_shape, t_dtype)


def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """Poisson negative log-likelihood, as torch.nn.functional.poisson_nll_loss.

    input, target: numpy arrays or torch tensors (broadcast together as in PyTorch). float32/float64; mixed
    float32/float64 computes in float64, an integer target takes input's dtype (PyTorch's promotion).
    Returns the kind of `input`: a 0-d result for 'mean'/'sum', the broadcast shape for 'none'.
    """
    red = _poisson_reduction(reduction)
    as_torch, x, t, dt, shape, _, _ = _poisson_prepare(input, target)
    out = np.empty(shape if red == _lib.REDUCTION_NONE else (), dtype=dt)
    lib = _lib.get()
    fn = getattr(lib, "nllk_poisson_nll_fwd_" + _suffix(dt))
    _lib.check(fn(_ptr(x), _ptr(t), x.size, int(bool(log_input)), int(bool(full)), float(eps), red, _ptr(out)),
               lib)
    return _wrap(out, as_torch)


def _sum_to_shape(g, shape):
    """Sums g over the axes that broadcasting added to reach g.shape from shape (autograd's sum_to_size)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True, dtype=g.dtype)
    # np.require keeps a 0-d result 0-d (np.ascontiguousarray would make it 1-d)
    return np.require(g.reshape(shape), requirements=("C_CONTIGUOUS",))


def _grad_output(grad_output, red, shape, dt, fn_name):
    """grad_output as a contiguous array of dt: the result's shape for 'none', one value otherwise."""
    g = _to_numpy(grad_output, f"{fn_name} grad_output")
    if g.dtype.kind not in "fiub":
        raise DTypeError(f"{fn_name} grad_output: expected a real number dtype, got {g.dtype}")
    if red == _lib.REDUCTION_NONE:
        if g.shape != tuple(shape):
            raise RuntimeError(f"{fn_name}: grad_output has shape {_shape_str(g.shape)} but the loss (reduction "
                               f"'none') has shape {_shape_str(shape)}")
    elif g.size != 1:
        raise RuntimeError(f"{fn_name}: grad_output of a reduced loss must hold one value, got shape "
                           f"{_shape_str(g.shape)}")
    else:
        g = g.reshape(())
    return _contiguous(g, dt)


def poisson_nll_loss_backward(grad_output, input, target, log_input=True, full=False, eps=1e-8, reduction="mean",
                              compute_grad_target=False):
    """Gradients of poisson_nll_loss(input, target, ...) given grad_output (d L / d loss): grad_input in input's
    shape and dtype, and with compute_grad_target a (grad_input, grad_target) tuple (grad_target in target's
    shape). grad_output has the loss's shape for 'none', else one value (a scalar, a 0-d or 1-element array).

    Where full is set and target <= 0, grad_target is the exact derivative (-g*x or -g*log(x+eps)); PyTorch's
    autograd gives NaN there (an artefact of its masked Stirling term, see nllk.h)."""
    red = _poisson_reduction(reduction)
    as_torch, x, t, dt, shape, (x_shape, x_dtype), (t_shape, t_dtype) = _poisson_prepare(input, target)
    g = _grad_output(grad_output, red, shape, dt, "poisson_nll_loss_backward")
    gx = np.empty(shape, dtype=dt)
    gt = np.empty(shape, dtype=dt) if compute_grad_target else None
    lib = _lib.get()
    fn = getattr(lib, "nllk_poisson_nll_bwd_" + _suffix(dt))
    _lib.check(fn(_ptr(x), _ptr(t), x.size, int(bool(log_input)), int(bool(full)), float(eps), red, _ptr(g),
                  _ptr(gx), _ptr(gt)), lib)
    gx = _sum_to_shape(gx, x_shape)
    if x_dtype.kind == "f" and x_dtype != dt:
        gx = gx.astype(x_dtype)
    if not compute_grad_target:
        return _wrap(gx, as_torch)
    gt = _sum_to_shape(gt, t_shape)
    if t_dtype.kind == "f" and t_dtype != dt:
        gt = gt.astype(_float_dtype(t_dtype) or t_dtype)
    return _wrap(gx, as_torch), _wrap(gt, as_torch)


# ---- NLL ----------------------------------------------------------------------------------------------------
_TARGET_TYPES = {(8, "i"): _lib.TARGET_I64, (4, "i"): _lib.TARGET_I32, (1, "u"): _lib.TARGET_U8}


def _nll_target(t):
    """(contiguous target array, nllk_target_type): int64, int32 and uint8 as they are (no conversion copy),
    other integer dtypes converted to int64."""
    dt = t.dtype
    if dt.kind not in "iu":
        raise DTypeError(f"nll_loss target: expected integer class indices (int64, int32 or uint8), got {dt}")
    code = _TARGET_TYPES.get((dt.itemsize, dt.kind))
    if code is not None:
        return _contiguous(t, dt.newbyteorder("=")), code
    if dt.kind == "u" and dt.itemsize == 8 and t.size and t.max() > _INT64_MAX:
        bad = int(t.max())
        raise IndexError(f"Target {bad} is out of bounds.")
    return _contiguous(t, np.int64), _lib.TARGET_I64


def _ignore_index(ignore_index):
    try:
        v = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an int, not {type(ignore_index).__name__}") from None
    if not (-(1 << 63) <= v < (1 << 63)):
        raise RuntimeError(f"Overflow when unpacking long: ignore_index {v} does not fit in int64")
    return v


def _nll_geometry(x, t):
    """(n, c, d, loss shape for 'none') of an NLL input and target, checked as PyTorch checks them."""
    if x.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {x.ndim})")
    if x.ndim == 1:
        if t.ndim != 0:
            if t.ndim > 1:
                raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
            raise RuntimeError(f"size mismatch (got input: {_shape_str(x.shape)}, target: {_shape_str(t.shape)})")
        return 1, x.shape[0], 1, ()
    target_batch = t.shape[0] if t.ndim > 0 else 0
    if t.ndim == 0 or x.shape[0] != target_batch:
        raise ValueError(f"Expected input batch_size ({x.shape[0]}) to match target batch_size ({target_batch}).")
    if x.ndim == 2:
        if t.ndim != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        return x.shape[0], x.shape[1], 1, (x.shape[0],)
    out_shape = (x.shape[0],) + x.shape[2:]
    if t.shape != out_shape:
        raise RuntimeError(f"Expected target size {_shape_str(out_shape)}, got {_shape_str(t.shape)}")
    return x.shape[0], x.shape[1], math.prod(x.shape[2:]), out_shape


def _nll_weight(weight, c, dt):
    if weight is None:
        return None
    w = _to_numpy(weight, "nll_loss weight")
    if w.ndim != 1 or w.shape[0] != c:
        raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but got "
                           f"weight tensor of shape: {_shape_str(w.shape)}")
    if _float_dtype(w.dtype) != dt:
        raise DTypeError(f"nll_loss weight: expected dtype {dt} (input's), got {w.dtype}")
    return _contiguous(w, dt)


def _nll_prepare(input, target, weight, ignore_index):
    as_torch = _is_tensor(input)
    x = _to_numpy(input, "nll_loss input")
    t = _to_numpy(target, "nll_loss target")
    n, c, d, out_shape = _nll_geometry(x, t)
    dt = _compute_dtype(x, "nll_loss input")
    t, ttype = _nll_target(t)
    w = _nll_weight(weight, c, dt)
    ii = _ignore_index(ignore_index)
    x = _contiguous(x, dt)
    return as_torch, x, t, ttype, n, c, d, out_shape, w, ii, dt


def nll_loss_forward(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """(output, total_weight), as ATen's nll_loss_forward: total_weight is the sum of the weights of the
    non-ignored targets (their count without weight) for 'mean' and 'sum', 0 for 'none'; both of input's kind
    and dtype, total_weight 0-d."""
    red = _nll_reduction(reduction)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, dt = _nll_prepare(input, target, weight, ignore_index)
    out = np.empty(out_shape if red == _lib.REDUCTION_NONE else (), dtype=dt)
    tw = np.zeros((), dtype=dt)
    if red == _lib.REDUCTION_NONE and x.ndim == 1:
        # ATen computes a 1-D input's 'none' as the sum of its single element: -x*w summed from +0 (+0.0, not
        # -0.0, where w = 0) with total_weight = w[t] (0 for 2-D 'none'). The C API's n = 1 sum is the same.
        red = _lib.REDUCTION_SUM
    lib = _lib.get()
    fn = getattr(lib, "nllk_nll_fwd_" + _suffix(dt))
    _lib.check(fn(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, _ptr(out), tw.ctypes.data), lib)
    return _wrap(out, as_torch), _wrap(tw, as_torch)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood, as torch.nn.functional.nll_loss.

    input: (C), (N, C) or (N, C, d1, ..., dK), float32/float64; target: () , (N) or (N, d1, ..., dK) class
    indices, int64, int32 or uint8 for every shape (other integer dtypes are converted to int64); weight: (C)
    of input's dtype. A target outside [0, C) that is not ignore_index raises IndexError."""
    return nll_loss_forward(input, target, weight, ignore_index, reduction)[0]


def nll_loss_backward(grad_output, input, target, weight=None, ignore_index=-100, reduction="mean",
                      total_weight=None):
    """The gradient of nll_loss(input, target, ...) w.r.t. input given grad_output, in input's shape and dtype.
    total_weight is the forward's (nll_loss_forward); computed by calling the forward when not given (only
    'mean' uses it)."""
    red = _nll_reduction(reduction)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, dt = _nll_prepare(input, target, weight, ignore_index)
    g = _grad_output(grad_output, red, out_shape, dt, "nll_loss_backward")
    lib = _lib.get()
    if total_weight is None:
        if red == _lib.REDUCTION_MEAN:
            tw = np.zeros((), dtype=dt)
            scratch = np.empty((), dtype=dt)
            fwd = getattr(lib, "nllk_nll_fwd_" + _suffix(dt))
            _lib.check(fwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, scratch.ctypes.data,
                           tw.ctypes.data), lib)
            total_weight = float(tw)
        else:
            total_weight = 0.0
    else:
        total_weight = float(np.asarray(_to_numpy(total_weight, "nll_loss_backward total_weight")).reshape(()))
    gx = np.empty(x.shape, dtype=dt)
    fn = getattr(lib, "nllk_nll_bwd_" + _suffix(dt))
    _lib.check(fn(_ptr(g), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, total_weight, _ptr(gx)), lib)
    return _wrap(gx, as_torch)


# ---- library ------------------------------------------------------------------------------------------------
def library_info():
    """{'version', 'version_number', 'isa', 'threads', 'path'} of the loaded libnllk."""
    lib = _lib.get()
    get_threads = _lib.optional("nllk_get_num_threads")
    return {
        "version": lib.nllk_version_string().decode(),
        "version_number": int(lib.nllk_version_number()),
        "isa": lib.nllk_active_isa().decode(),
        "threads": int(get_threads()) if get_threads is not None else 1,
        "path": _lib.path(),
    }


def set_num_threads(k):
    """nllk_set_num_threads(k): the thread count of later calls (0 restores the default)."""
    fn = _lib.optional("nllk_set_num_threads")
    if fn is None:
        raise NotImplementedError("this libnllk does not export nllk_set_num_threads")
    _lib.check(fn(operator.index(k)))
