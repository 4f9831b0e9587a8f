"""The numpy / torch front end: PyTorch's argument checks (nllk._args), shapes mapped to the C API's contiguous
(n) and (n, c, d) views, and results returned as the caller's kind (torch in -> torch out, numpy in -> numpy out).

Everything is done on numpy views: a CPU torch tensor's .numpy() shares its memory, so torch inputs are read in
place (no copy unless non-contiguous, of another byte order, or of a dtype that must be converted). Outputs are
fresh arrays; inputs are only ever read.

The compiled path: when nllk._capi.fast (the _nllk_fast module, python/src/nllk_fast.c) is loaded, each loss
hands it its arguments first; it computes the common numpy call (the same C call, so the same bits) or returns
None, and the code below runs as it always does (all checks and exceptions are its).

Dtypes: float32, float64, float16 and bfloat16 (16-bit storage: converted exactly to float32, computed in float32,
each output rounded once to the storage type; see nllk.h). numpy has no bfloat16: a torch.bfloat16 tensor (or an
ml_dtypes.bfloat16 array) is handled here as a view of its bits, a uint16 array of the dtype _BF16 (uint16 with
metadata {'nllk': 'bfloat16'}, so that an integer uint16 array is never taken for one), and results go back to
the caller as torch.bfloat16 (or ml_dtypes.bfloat16). Every conversion between float dtypes made here rounds
once to nearest even (_cast).

Autograd: nll_loss and poisson_nll_loss given a tensor that requires grad (with grad mode on) are computed by
nllk.torch, so the result takes part in autograd; the other functions raise NllkRuntimeError there rather than
return a silently detached result.

torch is never imported here: a tensor can only be passed in by a caller that has imported it already, so it is
looked up in sys.modules (numpy-only users do not pay for importing torch).
"""
import ctypes
import sys
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _args, _capi
from ._capi import REDUCTION_MEAN, REDUCTION_NONE
from ._errors import DTypeError, NllkIndexError, NllkRuntimeError, NllkTypeError, NllkValueError

ArrayLike = Any  # a numpy array, a CPU torch tensor, or anything np.asarray takes
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_F16 = np.dtype(np.float16)
_BF16 = np.dtype(np.uint16, metadata={"nllk": "bfloat16"})  # bfloat16 bits (see above)


# ---- kinds: numpy or torch ----------------------------------------------------------------------------------
def _torch():
    return sys.modules.get("torch")


def _is_tensor(a) -> bool:
    if type(a) is np.ndarray:  # (isinstance on torch.Tensor costs more than the whole check)
        return False
    torch = _torch()
    return torch is not None and isinstance(a, torch.Tensor)


def _tracks_grad(*args) -> bool:
    """True if grad mode is on and a tensor among args requires grad."""
    torch = _torch()
    if torch is not None:
        for a in args:
            if type(a) is not np.ndarray and isinstance(a, torch.Tensor) and a.requires_grad:
                return torch.is_grad_enabled()
    return False


def _refuse_grad(fn: str, *args) -> None:
    if _tracks_grad(*args):
        raise NllkRuntimeError(f"nllk.{fn}: an argument requires grad, and this function does not take part in "
                               "autograd; call it under torch.no_grad() or on .detach()ed tensors, or use "
                               "nllk.torch's losses, whose backward autograd calls")


def _to_numpy(a, role: str) -> np.ndarray:
    """A numpy view of a (numpy array, CPU strided torch tensor, or anything np.asarray takes); bfloat16 values
    (torch.bfloat16, ml_dtypes.bfloat16) as their bits, of dtype _BF16."""
    if type(a) is np.ndarray:
        return a if a.dtype.kind != "V" or not _is_bf16(a.dtype) else a.view(_BF16)
    if _is_tensor(a):
        torch = _torch()
        if a.device.type != "cpu":
            raise NllkValueError(f"{role}: nllk runs on the CPU, got a tensor on {a.device}")
        if a.layout != torch.strided:
            raise NllkTypeError(f"{role}: nllk takes dense (strided) tensors, got layout {a.layout}")
        if a.is_complex() or a.is_quantized:
            raise DTypeError(f"{role}: nllk computes in {_DTYPES_TEXT}, got {a.dtype}")
        if a.requires_grad:  # (grad mode is off here: see _tracks_grad)
            a = a.detach()
        if a.is_conj():
            a = a.resolve_conj()
        if a.is_neg():
            a = a.resolve_neg()
        if a.dtype is torch.bfloat16:
            return a.view(torch.int16).numpy().view(_BF16)
        return a.numpy()
    try:
        a = np.asarray(a)
        return a.view(_BF16) if _is_bf16(a.dtype) else a
    except Exception as e:  # pragma: no cover - exotic objects
        raise NllkTypeError(f"{role}: expected a numpy array or a torch tensor, got {type(a).__name__}") from e


def _wrap(arr: np.ndarray, as_torch: bool):
    """arr as the caller's kind (bfloat16 bits as torch.bfloat16, or as ml_dtypes.bfloat16 when it is loaded)."""
    if arr.dtype is _BF16:
        if as_torch:
            return _torch().from_numpy(arr.view(np.int16)).view(_torch().bfloat16)
        ml_dtypes = sys.modules.get("ml_dtypes")
        return arr.view(ml_dtypes.bfloat16) if ml_dtypes is not None else arr
    return _torch().from_numpy(arr) if as_torch else arr


def _contiguous(a: np.ndarray, dtype) -> np.ndarray:
    """a as a C-contiguous, aligned, native-byte-order array of dtype (no copy when it already is one); values
    of another dtype are converted (_cast)."""
    if a.dtype is dtype and a.flags.c_contiguous and a.flags.aligned:  # (native dtypes are singletons)
        return a
    if a.dtype is not dtype and (dtype is _BF16 or a.dtype is _BF16) and _float_dtype(a.dtype) is not dtype:
        a = _cast(a, dtype)
    return np.require(a, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED"))


def _ptr(a: Optional[np.ndarray]) -> Optional[int]:
    """The data address of a contiguous array for the C API (None for None or an empty array)."""
    if a is None or not a.size:
        return None
    if a.flags.writeable:  # (half the cost of a.ctypes.data)
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    return a.ctypes.data


_DTYPES_TEXT = "float16, bfloat16, float32 and float64"
_FLOAT_SIZES = {2: _F16, 4: _F32, 8: _F64}


def _is_bf16(dt: np.dtype) -> bool:
    """True for nllk's bfloat16-bits dtype and for ml_dtypes' bfloat16."""
    return dt is _BF16 or (dt.itemsize == 2 and (dt.kind == "V" and dt.name == "bfloat16" or (
        dt.metadata is not None and dt.metadata.get("nllk") == "bfloat16")))


def _float_dtype(dt: np.dtype) -> Optional[np.dtype]:
    """dt normalized to native float16/float32/float64 or _BF16, or None if dt is none of them."""
    if dt.kind == "f":
        return _FLOAT_SIZES.get(dt.itemsize)
    return _BF16 if _is_bf16(dt) else None


def dtype_name(dt: np.dtype) -> str:
    return "bfloat16" if _is_bf16(dt) else str(dt)


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promote_types of two float dtypes: float64 wins; two different ones otherwise give float32
    (float16 with bfloat16 included)."""
    if a is b:
        return a
    return _F64 if a is _F64 or b is _F64 else _F32


def _widen(a: np.ndarray) -> np.ndarray:
    """a's values, with bfloat16 bits widened exactly to float32 (other dtypes as they are)."""
    if _is_bf16(a.dtype):
        # (through 1-d: numpy refuses to view a 0-d array as a dtype of another size)
        return (a.reshape(-1).view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(a.shape)
    return a


def _f32_round_to_odd(d: np.ndarray) -> np.ndarray:
    """float64 values as float32, rounded to odd (an inexact result takes the neighbour whose last bit is 1): a
    second rounding to a format of at most 22 significand bits (bfloat16) is then the correct rounding of d."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = d.astype(np.float32)
    inexact = (r.astype(np.float64) != d) & ((r.view(np.uint32) & 1) == 0) & np.isfinite(d)
    away = np.nextafter(r, np.where(d > r, np.float32(np.inf), np.float32(-np.inf)))
    return np.where(inexact, away, r).astype(np.float32)


def _cast(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    """a's values (any real dtype, bfloat16 bits included) in float dtype dt, each rounded once to nearest even
    (to bfloat16: as PyTorch's c10::BFloat16 and libnllk round a float, NaN 0x7FC0)."""
    a = _widen(np.asarray(a))
    if dt is not _BF16:
        with np.errstate(over="ignore", invalid="ignore"):  # (overflow to inf is the rounding's result)
            return a.astype(dt)
    f = a.astype(np.float32) if a.dtype.kind == "f" and a.dtype.itemsize <= 4 else \
        _f32_round_to_odd(a.astype(np.float64))
    u = np.asarray(f, dtype=np.float32).view(np.uint32)
    with np.errstate(over="ignore"):  # (NaN bits may wrap: replaced)
        bits = np.where(np.isnan(f), np.uint32(0x7FC0), (u + (((u >> 16) & 1) + 0x7FFF)) >> 16)
    return bits.astype(np.uint16).view(_BF16)


def _value(a) -> float:
    """The one value of a (a number, a 1-element array or tensor, bfloat16 bits included) as a Python float."""
    return float(_widen(np.asarray(a)).reshape(()))


def _scalar(dt: np.dtype, v: float):
    """v as the C API's element scalar of dt (a float; for 16-bit storage the bits of v rounded once)."""
    if dt is _F32 or dt is _F64:
        return v
    return int(_cast(np.asarray(v, dtype=np.float64), dt).view(np.uint16))


def _compute_dtype(a: np.ndarray, role: str) -> np.dtype:
    dt = a.dtype
    if dt is _F32 or dt is _F64:
        return dt
    dt = _float_dtype(dt)
    if dt is None:
        raise DTypeError(f"{role}: nllk computes in {_DTYPES_TEXT} only, got {a.dtype}")
    return dt


def _kernels(dt: np.dtype) -> _capi.Kernels:
    lib = _capi.get()
    return lib.f32 if dt is _F32 else lib.f64 if dt is _F64 else lib.f16 if dt is _F16 else lib.bf16


def as_dtype(dtype: Any) -> Optional[np.dtype]:
    """A dtype argument (numpy dtype or type, its name, "bfloat16", a torch dtype, ml_dtypes.bfloat16) as one of
    nllk's four (_F32, _F64, _F16, _BF16), or None."""
    torch = _torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        return {torch.float32: _F32, torch.float64: _F64, torch.float16: _F16, torch.bfloat16: _BF16}.get(dtype)
    if isinstance(dtype, str) and dtype == "bfloat16":
        return _BF16
    try:
        return _float_dtype(np.dtype(dtype))
    except TypeError:
        return None


# ---- Poisson ------------------------------------------------------------------------------------------------
def _poisson_dtype(x: np.ndarray, t: np.ndarray) -> np.dtype:
    """PyTorch's result dtype of poisson_nll_loss(x, t): input must be a float dtype; a floating target promotes
    with it (_promote: float32 with float64 gives float64, a 16-bit type with another float type float32 or
    float64), an integer or bool target takes input's dtype."""
    dt = _compute_dtype(x, "poisson_nll_loss input")
    tdt = _float_dtype(t.dtype)
    if tdt is not None:
        return _promote(dt, tdt)
    if t.dtype.kind == "f":
        raise DTypeError(f"poisson_nll_loss target: nllk computes in {_DTYPES_TEXT}, got {t.dtype}")
    if t.dtype.kind in "iub":
        return dt
    raise DTypeError(f"poisson_nll_loss target: expected a real number dtype, got {t.dtype}")


def _poisson_prepare(input, target):
    """(kind is torch, x, t, dtype, shape, x's original shape/dtype, t's original shape/dtype)."""
    as_torch = _is_tensor(input)
    x = _to_numpy(input, "poisson_nll_loss input")
    t = _to_numpy(target, "poisson_nll_loss target")
    if isinstance(target, (int, float)) and _float_dtype(x.dtype) is not None:
        t = _cast(t, _float_dtype(x.dtype))  # a Python number is weakly typed, as in PyTorch: input's dtype
    dt = _poisson_dtype(x, t)
    x_shape, t_shape, x_dtype, t_dtype = x.shape, t.shape, x.dtype, t.dtype
    shape = _args.broadcast_shape(x.shape, t.shape, "poisson_nll_loss")
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    if t.shape != shape:
        t = np.broadcast_to(t, shape)
    return as_torch, _contiguous(x, dt), _contiguous(t, dt), dt, shape, (x_shape, x_dtype), (t_shape, t_dtype)


def poisson_nll_loss(input: ArrayLike, target: ArrayLike, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean"):
    """Poisson negative log-likelihood, as torch.nn.functional.poisson_nll_loss.

    input, target: numpy arrays or torch tensors (broadcast together as in PyTorch). float32/float64/float16/
    bfloat16; mixed dtypes compute in PyTorch's promoted dtype (float32 with float64: float64; a 16-bit type
    with another float type: float32 or float64), an integer target takes input's dtype.
    Returns the kind of `input`: a 0-d result for 'mean'/'sum', the broadcast shape for 'none'. Tensors that
    require grad are computed by nllk.torch.poisson_nll_loss (the result takes part in autograd)."""
    if _capi.fast is not None:  # the compiled path: the common numpy call, else None
        out = _capi.fast.poisson_nll_loss(input, target, log_input, full, eps, reduction)
        if out is not None:
            return out
    li, fu, ep, red = _args.poisson_options(log_input, full, eps, reduction, "poisson_nll_loss")
    if _tracks_grad(input, target):
        from . import torch as nllk_torch
        return nllk_torch.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps,
                                           reduction=reduction)
    as_torch, x, t, dt, shape, _, _ = _poisson_prepare(input, target)
    out = np.empty(shape if red == REDUCTION_NONE else (), dtype=dt)
    _capi.check(_kernels(dt).poisson_nll_fwd(_ptr(x), _ptr(t), x.size, li, fu, ep, red, _ptr(out)))
    return _wrap(out, as_torch)


def _sum_to_shape(g: np.ndarray, shape) -> np.ndarray:
    """Sums g over the axes that broadcasting added to reach g.shape from shape (autograd's sum_to_size)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    if axes and g.itemsize == 2:  # 16-bit storage: summed in float64, rounded once
        g = _cast(_widen(g).sum(axis=axes, keepdims=True, dtype=np.float64), _float_dtype(g.dtype))
    elif axes:
        g = g.sum(axis=axes, keepdims=True, dtype=g.dtype)
    # np.require keeps a 0-d result 0-d (np.ascontiguousarray would make it 1-d)
    return np.require(g.reshape(shape), requirements=("C_CONTIGUOUS",))


def _grad_output(grad_output, red: int, shape, dt: np.dtype, fn_name: str) -> np.ndarray:
    """grad_output as a contiguous array of dt: the result's shape for 'none', one value otherwise."""
    g = _to_numpy(grad_output, f"{fn_name} grad_output")
    if g.dtype.kind not in "fiub":
        raise DTypeError(f"{fn_name} grad_output: expected a real number dtype, got {g.dtype}")
    if red == REDUCTION_NONE:
        if g.shape != tuple(shape):
            raise NllkRuntimeError(f"{fn_name}: grad_output has shape {_args.shape_str(g.shape)} but the loss "
                                   f"(reduction 'none') has shape {_args.shape_str(shape)}")
    elif g.size != 1:
        raise NllkRuntimeError(f"{fn_name}: grad_output of a reduced loss must hold one value, got shape "
                               f"{_args.shape_str(g.shape)}")
    else:
        g = g.reshape(())
    return _contiguous(g, dt)


def poisson_nll_loss_backward(grad_output: ArrayLike, input: ArrayLike, target: ArrayLike, log_input: bool = True,
                              full: bool = False, eps: float = 1e-8, reduction: str = "mean",
                              compute_grad_target: bool = False):
    """Gradients of poisson_nll_loss(input, target, ...) given grad_output (d L / d loss): grad_input in input's
    shape and dtype, and with compute_grad_target a (grad_input, grad_target) tuple (grad_target in target's
    shape). grad_output has the loss's shape for 'none', else one value (a scalar, a 0-d or 1-element array).

    Where full is set and target <= 0, grad_target is the exact derivative (-g*x or -g*log(x+eps)); PyTorch's
    autograd gives NaN there (an artefact of its masked Stirling term, see nllk.h)."""
    if _capi.fast is not None:
        out = _capi.fast.poisson_nll_loss_backward(grad_output, input, target, log_input, full, eps, reduction,
                                                   compute_grad_target)
        if out is not None:
            return out
    fn = "poisson_nll_loss_backward"
    li, fu, ep, red = _args.poisson_options(log_input, full, eps, reduction, fn)
    want_gt = _args.flag(compute_grad_target, "compute_grad_target", fn)
    _refuse_grad(fn, grad_output, input, target)
    as_torch, x, t, dt, shape, (x_shape, x_dtype), (t_shape, t_dtype) = _poisson_prepare(input, target)
    g = _grad_output(grad_output, red, shape, dt, fn)
    gx = np.empty(shape, dtype=dt)
    gt = np.empty(shape, dtype=dt) if want_gt else None
    _capi.check(_kernels(dt).poisson_nll_bwd(_ptr(x), _ptr(t), x.size, li, fu, ep, red, _ptr(g), _ptr(gx),
                                             _ptr(gt)))
    gx = _sum_to_shape(gx, x_shape)
    x_dtype = _float_dtype(x_dtype)
    if x_dtype is not None and x_dtype is not dt:
        gx = _cast(gx, x_dtype)
    if not want_gt:
        return _wrap(gx, as_torch)
    gt = _sum_to_shape(gt, t_shape)
    t_dtype = _float_dtype(t_dtype)
    if t_dtype is not None and t_dtype is not dt:
        gt = _cast(gt, t_dtype)
    return _wrap(gx, as_torch), _wrap(gt, as_torch)


# ---- NLL ----------------------------------------------------------------------------------------------------
TARGET_TYPES = {np.dtype(np.int64): _capi.TARGET_I64, np.dtype(np.int32): _capi.TARGET_I32,
                np.dtype(np.uint8): _capi.TARGET_U8}


def _nll_target(t: np.ndarray) -> Tuple[np.ndarray, int]:
    """(contiguous target array, nllk_target_type): int64, int32 and uint8 as they are (no conversion copy),
    other integer dtypes converted to int64."""
    dt = t.dtype
    code = TARGET_TYPES.get(dt)
    if code is not None:
        return _contiguous(t, dt), code
    if dt.kind not in "iu":
        raise DTypeError(f"nll_loss target: expected integer class indices (int64, int32 or uint8), got {dt}")
    native = dt.newbyteorder("=")
    if native in TARGET_TYPES:
        return _contiguous(t, native), TARGET_TYPES[native]
    if dt.kind == "u" and dt.itemsize == 8 and t.size and t.max() > _args.INT64_MAX:
        raise NllkIndexError(f"Target {int(t.max())} is out of bounds.")
    return _contiguous(t, np.dtype(np.int64)), _capi.TARGET_I64


def _nll_weight(weight, dt: np.dtype) -> Optional[np.ndarray]:
    """The weight as a contiguous array of dt (its shape is checked with the geometry)."""
    if weight is None:
        return None
    w = _to_numpy(weight, "nll_loss weight")
    if _float_dtype(w.dtype) is not dt:
        raise DTypeError(f"nll_loss weight: expected dtype {dtype_name(dt)} (input's), got {dtype_name(w.dtype)}")
    return _contiguous(w, dt)


def _nll_prepare(input, target, weight, ignore_index, reduction, fn: str):
    red, ii = _args.nll_options(reduction, ignore_index, fn)
    as_torch = _is_tensor(input)
    x = _to_numpy(input, "nll_loss input")
    t = _to_numpy(target, "nll_loss target")
    w = _to_numpy(weight, "nll_loss weight") if weight is not None else None
    n, c, d, out_shape, red = _args.nll_geometry(x.shape, t.shape, None if w is None else w.shape, red)
    dt = _compute_dtype(x, "nll_loss input")
    t, ttype = _nll_target(t)
    return as_torch, _contiguous(x, dt), t, ttype, n, c, d, out_shape, _nll_weight(w, dt), ii, red, dt


def nll_loss_forward(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                     ignore_index: int = -100, reduction: str = "mean"):
    """(output, total_weight), as ATen's nll_loss_forward: total_weight is the sum of the weights of the
    non-ignored targets (their count without weight) for 'mean' and 'sum', 0 for 'none' (the target's weight
    for a 1-D input); both of input's kind and dtype, total_weight 0-d."""
    if _capi.fast is not None:
        out = _capi.fast.nll_loss_forward(input, target, weight, ignore_index, reduction)
        if out is not None:
            return out
    fn = "nll_loss_forward"
    _refuse_grad(fn, input, target, weight)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, dt = _nll_prepare(input, target, weight, ignore_index,
                                                                             reduction, fn)
    out = np.empty(out_shape if red == REDUCTION_NONE else (), dtype=dt)
    tw = np.zeros((), dtype=dt)
    _capi.check(_kernels(dt).nll_fwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, _ptr(out), _ptr(tw)))
    return _wrap(out, as_torch), _wrap(tw, as_torch)


_FAST_REDUCTIONS = {"mean": REDUCTION_MEAN, "sum": 2}
_FAST_KERNELS = {}  # numpy dtype -> _capi.Kernels


def _nll_fast(x: np.ndarray, t: np.ndarray, ignore_index, reduction):
    """nll_loss of the common numpy call -- (N, C) float32/float64 and (N,) int64/int32/uint8, C-contiguous,
    aligned, native byte order, no weight, 'mean' or 'sum' -- with nothing else to check or convert (the per-call
    cost over the C call is the three data pointers and the result array); None for anything else (the general
    path then checks and computes it)."""
    red = _FAST_REDUCTIONS.get(reduction) if reduction.__class__ is str else None
    dt = x.dtype
    if (red is None or ignore_index.__class__ is not int or not _args.INT64_MIN <= ignore_index <= _args.INT64_MAX
            or x.ndim != 2 or t.ndim != 1 or not (dt is _F32 or dt is _F64) or not x.size):
        return None
    n, c = x.shape
    ttype = TARGET_TYPES.get(t.dtype)
    if (t.shape[0] != n or ttype is None or not t.dtype.isnative or not x.flags.c_contiguous
            or not x.flags.aligned or not t.flags.c_contiguous or not t.flags.aligned):
        return None
    k = _FAST_KERNELS.get(dt)
    if k is None:
        k = _FAST_KERNELS.setdefault(dt, _kernels(dt))
    out = np.empty((), dtype=dt)
    status = k.nll_fwd(_ptr(x), _ptr(t), ttype, n, c, 1, None, ignore_index, red, _ptr(out), None)
    if status:
        _capi.check(status)
    return out


def nll_loss(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None, ignore_index: int = -100,
             reduction: str = "mean"):
    """Negative log-likelihood, as torch.nn.functional.nll_loss.

    input: (C), (N, C) or (N, C, d1, ..., dK), float32/float64/float16/bfloat16 (float16 is computed although
    PyTorch's CPU nll_loss does not implement it); target: () , (N) or (N, d1, ..., dK) class
    indices, int64, int32 or uint8 for every shape (other integer dtypes are converted to int64); weight: (C)
    of input's dtype. A target outside [0, C) that is not ignore_index raises IndexError (NllkIndexError).
    A tensor input that requires grad is computed by nllk.torch.nll_loss (the result takes part in autograd)."""
    if _capi.fast is not None:
        out = _capi.fast.nll_loss(input, target, weight, ignore_index, reduction)
        if out is not None:
            return out
    if input.__class__ is np.ndarray and target.__class__ is np.ndarray and weight is None:
        out = _nll_fast(input, target, ignore_index, reduction)
        if out is not None:
            return out
    if _tracks_grad(input, target, weight):
        _args.nll_options(reduction, ignore_index, "nll_loss")
        from . import torch as nllk_torch
        return nllk_torch.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, dt = _nll_prepare(input, target, weight, ignore_index,
                                                                             reduction, "nll_loss")
    out = np.empty(out_shape if red == REDUCTION_NONE else (), dtype=dt)
    _capi.check(_kernels(dt).nll_fwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, _ptr(out), None))
    return _wrap(out, as_torch)


def nll_loss_backward(grad_output: ArrayLike, input: ArrayLike, target: ArrayLike,
                      weight: Optional[ArrayLike] = None, ignore_index: int = -100, reduction: str = "mean",
                      total_weight: Optional[Union[float, ArrayLike]] = None):
    """The gradient of nll_loss(input, target, ...) w.r.t. input given grad_output, in input's shape and dtype.
    total_weight is the forward's (nll_loss_forward); computed by calling the forward when not given (only
    'mean' uses it)."""
    if _capi.fast is not None:
        out = _capi.fast.nll_loss_backward(grad_output, input, target, weight, ignore_index, reduction, total_weight)
        if out is not None:
            return out
    fn = "nll_loss_backward"
    _refuse_grad(fn, grad_output, input, target, weight, total_weight)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, dt = _nll_prepare(input, target, weight, ignore_index,
                                                                             reduction, fn)
    g = _grad_output(grad_output, red, out_shape, dt, fn)
    k = _kernels(dt)
    if total_weight is not None:
        total_weight = _scalar(dt, _value(_to_numpy(total_weight, f"{fn} total_weight")))
    elif red == REDUCTION_MEAN:
        tw, scratch = k.real(), k.real()
        _capi.check(k.nll_fwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, ctypes.addressof(scratch),
                              ctypes.addressof(tw)))
        total_weight = tw.value  # (the C type's value: for 16-bit storage, its bits)
    else:
        total_weight = _scalar(dt, 0.0)
    gx = np.empty(x.shape, dtype=dt)
    _capi.check(k.nll_bwd(_ptr(g), _ptr(t), ttype, n, c, d, _ptr(w), ii, red, total_weight, _ptr(gx)))
    return _wrap(gx, as_torch)


# ---- cross-entropy ------------------------------------------------------------------------------------------
def _ce_prepare(input, target, weight, ignore_index, reduction, label_smoothing, fn: str):
    """(kind is torch, x, t, target type (None: probabilities), n, c, d, loss shape, weight, ignore_index,
    reduction, label_smoothing, dtype) of a cross-entropy call, checked as PyTorch 1.13 checks it."""
    red, ii, ls = _args.ce_options(reduction, ignore_index, label_smoothing, fn)
    as_torch = _is_tensor(input)
    x = _to_numpy(input, f"{fn} input")
    t = _to_numpy(target, f"{fn} target")
    w = _to_numpy(weight, f"{fn} weight") if weight is not None else None
    prob = _args.ce_is_prob(x.shape, t.shape, t.dtype, ii, t.dtype.kind == "f" or _is_bf16(t.dtype))
    dt = _compute_dtype(x, f"{fn} input")
    if prob:
        n, c, d, out_shape = _args.ce_prob_geometry(x.shape, None if w is None else w.shape, red)
        tdt = _float_dtype(t.dtype)
        if tdt is None:
            raise DTypeError(f"{fn} target: probabilities must be of a float dtype ({_DTYPES_TEXT}), got "
                             f"{t.dtype}")
        pdt = _promote(dt, tdt)
        if pdt is not dt:
            # PyTorch promotes: e.g. float32 logits with float64 probabilities give a float64 loss, bfloat16 logits
            # with float32 probabilities a float32 one (nllk computes it all in that dtype); a weight of the
            # logits' dtype is then taken as well
            if w is not None and _float_dtype(w.dtype) is dt:
                w = _cast(w, pdt)
            dt = pdt
        t, ttype = _contiguous(t, dt), None
    else:
        n, c, d, out_shape, red = _args.nll_geometry(x.shape, t.shape, None if w is None else w.shape, red)
        t, ttype = _nll_target(t)
    return as_torch, _contiguous(x, dt), t, ttype, n, c, d, out_shape, _nll_weight(w, dt), ii, red, ls, dt


def _ce_fwd(k, x, t, ttype, n, c, d, w, ii, red, ls, out, tw, lse) -> None:
    if ttype is None:
        _capi.check(k.cross_entropy_prob_fwd(_ptr(x), _ptr(t), n, c, d, _ptr(w), ls, red, _ptr(out), _ptr(lse)))
    else:
        _capi.check(k.cross_entropy_fwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, ls, red, _ptr(out),
                                        _ptr(tw), _ptr(lse)))


def cross_entropy(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                  size_average: Optional[bool] = None, ignore_index: int = -100, reduce: Optional[bool] = None,
                  reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy from logits (log_softmax over the class dimension + NLL, fused), as
    torch.nn.functional.cross_entropy (PyTorch 1.13), with its signature and argument rules.

    input: logits (C), (N, C) or (N, C, d1, ..., dK), float32/float64/float16/bfloat16. target: class indices of
    shape (), (N) or (N, d1, ..., dK) (int64, int32 or uint8 as they are; other integer dtypes converted to int64),
    or class probabilities of input's shape (a float dtype; mixed dtypes compute and return PyTorch's promoted
    dtype, e.g. float32 logits with float64 probabilities float64). weight: (C) of input's dtype.
    ignore_index: class-index targets only (a probability target takes no ignore_index >= 0).
    label_smoothing in [0, 1] (> 1 RuntimeError; negative or NaN is no smoothing, as in PyTorch 1.13), with
    PyTorch 1.13's normalisation: for class indices and 'mean', both terms are divided by total_weight (the weight
    sum of the non-ignored targets; their count without weight); for probabilities 'mean' divides by N*d.
    size_average / reduce: PyTorch's deprecated arguments (they override reduction, with its warning).
    Returns input's kind: 0-d for 'mean'/'sum', target's shape (the loss's shape) for 'none'.
    Tensors that require grad are computed by nllk.torch.cross_entropy (the result takes part in autograd)."""
    if _capi.fast is not None and size_average is None and reduce is None:
        out = _capi.fast.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
        if out is not None:
            return out
    fn = "cross_entropy"
    if size_average is not None or reduce is not None:
        reduction = _args.legacy_reduction(size_average, reduce)
    if _tracks_grad(input, target, weight):
        _args.ce_options(reduction, ignore_index, label_smoothing, fn)
        from . import torch as nllk_torch
        if not hasattr(nllk_torch, "cross_entropy"):
            raise NllkRuntimeError("nllk.cross_entropy: an argument requires grad and this nllk.torch has no "
                                   "cross_entropy; call it on .detach()ed tensors")
        return nllk_torch.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                                        reduction=reduction, label_smoothing=label_smoothing)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, ls, dt = _ce_prepare(input, target, weight,
                                                                                ignore_index, reduction,
                                                                                label_smoothing, fn)
    out = np.empty(out_shape if red == REDUCTION_NONE else (), dtype=dt)
    _ce_fwd(_kernels(dt), x, t, ttype, n, c, d, w, ii, red, ls, out, None, None)
    return _wrap(out, as_torch)


def cross_entropy_forward(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                          ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
    """(output, total_weight, lse): cross_entropy's output, and what its backward can reuse. lse holds the
    log-sum-exp of each position's logits (the loss's shape for 'none': (N, d1..dK), () for a 1-D input);
    total_weight is, for class indices, nll_loss_forward's (the weight sum of the non-ignored targets, their
    count without weight; 0 for 'none'), for probabilities the number of positions N*d (the 'mean' divisor).
    All of input's kind and dtype. The forward's values are those of cross_entropy (the same bits)."""
    if _capi.fast is not None:
        out = _capi.fast.cross_entropy_forward(input, target, weight, ignore_index, reduction, label_smoothing)
        if out is not None:
            return out
    fn = "cross_entropy_forward"
    _refuse_grad(fn, input, target, weight)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, ls, dt = _ce_prepare(input, target, weight,
                                                                                ignore_index, reduction,
                                                                                label_smoothing, fn)
    out = np.empty(out_shape if red == REDUCTION_NONE else (), dtype=dt)
    lse = np.empty(out_shape, dtype=dt)
    tw = np.zeros((), dtype=dt) if ttype is not None else _cast(np.asarray(float(n * d)), dt)
    _ce_fwd(_kernels(dt), x, t, ttype, n, c, d, w, ii, red, ls, out, tw if ttype is not None else None, lse)
    return _wrap(out, as_torch), _wrap(tw, as_torch), _wrap(lse, as_torch)


def cross_entropy_backward(grad_output: ArrayLike, input: ArrayLike, target: ArrayLike,
                           weight: Optional[ArrayLike] = None, ignore_index: int = -100, reduction: str = "mean",
                           label_smoothing: float = 0.0, total_weight: Optional[Union[float, ArrayLike]] = None,
                           lse: Optional[ArrayLike] = None, compute_grad_target: bool = False):
    """The gradient of cross_entropy(input, target, ...) w.r.t. the logits given grad_output (the loss's shape
    for 'none', one value otherwise), in input's shape and dtype. total_weight and lse are
    cross_entropy_forward's (class indices, 'mean': total_weight is computed by a forward when not given; lse is
    recomputed when not given -- the same bits either way). compute_grad_target (probability targets only):
    returns (grad_input, grad_target), grad_target in target's shape and dtype."""
    if _capi.fast is not None:
        out = _capi.fast.cross_entropy_backward(grad_output, input, target, weight, ignore_index, reduction,
                                                label_smoothing, total_weight, lse, compute_grad_target)
        if out is not None:
            return out
    fn = "cross_entropy_backward"
    want_gt = _args.flag(compute_grad_target, "compute_grad_target", fn)
    _refuse_grad(fn, grad_output, input, target, weight, total_weight, lse)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, ls, dt = _ce_prepare(input, target, weight,
                                                                                ignore_index, reduction,
                                                                                label_smoothing, fn)
    if want_gt and ttype is not None:
        raise NllkRuntimeError(f"{fn}: compute_grad_target needs probability targets (class indices have no "
                               "gradient)")
    g = _grad_output(grad_output, red, out_shape, dt, fn)
    k = _kernels(dt)
    if lse is not None:
        lse = _to_numpy(lse, f"{fn} lse")
        if lse.size != n * d:
            raise NllkRuntimeError(f"{fn}: lse has shape {_args.shape_str(lse.shape)}, expected "
                                   f"{_args.shape_str(out_shape)} (one log-sum-exp per position)")
        if _float_dtype(lse.dtype) is not dt:
            raise DTypeError(f"{fn} lse: expected dtype {dtype_name(dt)} (input's), got {dtype_name(lse.dtype)}")
        lse = _contiguous(lse, dt)
    gx = np.empty(x.shape, dtype=dt)
    if ttype is None:
        gt = np.empty(x.shape, dtype=dt) if want_gt else None
        _capi.check(k.cross_entropy_prob_bwd(_ptr(g), _ptr(x), _ptr(t), n, c, d, _ptr(w), ls, red, _ptr(lse),
                                             _ptr(gx), _ptr(gt)))
        x_dtype = _float_dtype(_to_numpy(input, f"{fn} input").dtype)
        if x_dtype is not dt:  # (e.g. float32 logits with float64 probabilities: computed in float64)
            gx = _cast(gx, x_dtype)
        if not want_gt:
            return _wrap(gx, as_torch)
        t_dtype = _float_dtype(_to_numpy(target, f"{fn} target").dtype)
        if t_dtype is not dt:
            gt = _cast(gt, t_dtype)
        return _wrap(gx, as_torch), _wrap(gt, as_torch)
    if total_weight is not None:
        total_weight = _value(_to_numpy(total_weight, f"{fn} total_weight"))
    elif red == REDUCTION_MEAN:
        tw = np.zeros((), dtype=dt)
        fresh = np.empty(n * d, dtype=dt) if lse is None else None  # (the caller's lse is only read)
        _ce_fwd(k, x, t, ttype, n, c, d, w, ii, red, ls, np.empty((), dtype=dt), tw, fresh)
        lse = fresh if lse is None else lse
        total_weight = _value(tw)
    else:
        total_weight = 0.0
    _capi.check(k.cross_entropy_bwd(_ptr(g), _ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, ls, red,
                                    _scalar(dt, total_weight), _ptr(lse), _ptr(gx)))
    return _wrap(gx, as_torch)


def cross_entropy_forward_backward(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                                   ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
                                   grad_output: Optional[ArrayLike] = None):
    """(loss, grad_input): cross_entropy(input, target, ...) and cross_entropy_backward(grad_output, input, target,
    ...) in one call (a training step without autograd). grad_output: the loss's shape for 'none', one value
    otherwise; None means 1 (grad_input is then d loss / d input itself). Both results are bit for bit those of the
    two calls. Class-index targets run nllk's fused kernel (nllk_cross_entropy_fwdbwd_*: the logits read from memory
    once, one exp per logit, grad_input written once); probability targets run the forward, then the backward."""
    fn = "cross_entropy_forward_backward"
    _refuse_grad(fn, input, target, weight, grad_output)
    as_torch, x, t, ttype, n, c, d, out_shape, w, ii, red, ls, dt = _ce_prepare(input, target, weight,
                                                                                ignore_index, reduction,
                                                                                label_smoothing, fn)
    if ttype is None:
        out, _, lse = cross_entropy_forward(input, target, weight, ignore_index, reduction, label_smoothing)
        g = np.ones(out_shape if red == REDUCTION_NONE else ()) if grad_output is None else grad_output
        gx = cross_entropy_backward(g, input, target, weight, ignore_index, reduction, label_smoothing, lse=lse)
        return out, gx
    g = None if grad_output is None else _grad_output(grad_output, red, out_shape, dt, fn)
    out = np.empty(out_shape if red == REDUCTION_NONE else (), dtype=dt)
    gx = np.empty(x.shape, dtype=dt)
    _capi.check(_kernels(dt).cross_entropy_fwdbwd(_ptr(x), _ptr(t), ttype, n, c, d, _ptr(w), ii, ls, red,
                                                  _ptr(out), None, None, _ptr(g), _ptr(gx)))
    return _wrap(out, as_torch), _wrap(gx, as_torch)


# ---- library ------------------------------------------------------------------------------------------------
def library_info() -> dict:
    """{'version', 'version_number', 'isa', 'isas', 'threads', 'path'} of the loaded libnllk: 'isa' is the active
    instruction set, 'isas' the build's list (lowest first) that this CPU supports."""
    lib = _capi.get()
    c = lib.c
    names = []
    while c.nllk_isa_name(len(names)) is not None:
        names.append(c.nllk_isa_name(len(names)))
    return {
        "version": c.nllk_version_string().decode(),
        "version_number": int(c.nllk_version_number()),
        "isa": c.nllk_active_isa().decode(),
        "isas": [n.decode() for n in names if c.nllk_isa_supported(n)],
        "threads": int(c.nllk_get_num_threads()),
        "path": lib.path,
    }


def set_num_threads(k: int) -> None:
    """nllk_set_num_threads(k): the thread count of later calls (0 restores the default). k must be an int in
    [0, 2**31 - 1] (ValueError below, OverflowError above: never truncated)."""
    k = _args.count(k, "k", "set_num_threads", 0, _args.INT_MAX)
    _capi.check(_capi.get().c.nllk_set_num_threads(k))


def set_isa(name: Optional[str]) -> None:
    """nllk_set_isa: forces an instruction set ("scalar", "avx2", "avx512", "neon") for every later call, for
    tests and benchmarks; None or "" restores the automatic choice. ValueError for an unknown name,
    NllkRuntimeError (NLLK_ERR_UNSUPPORTED) for one this build or CPU lacks."""
    if name is not None and not isinstance(name, str):
        raise NllkTypeError(f"set_isa(): name must be a str or None, not {type(name).__name__}")
    _capi.check(_capi.get().c.nllk_set_isa(name.encode() if name else None))
