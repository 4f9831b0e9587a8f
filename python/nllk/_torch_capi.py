"""ctypes bindings of libnllk's C API over torch tensors (zero-copy: data_ptr of contiguous CPU tensors).

Used by nllk.torch and bench/compare_torch.py. The library is the one nllk's front end loads (nllk._lib: at
$NLLK_LIBRARY, next to the package, or <repo>/build/libnllk.so); without it, $NLLK_LIBRARY, the source tree's
build directories (build*/libnllk.so), then the loader (ctypes.util.find_library).
"""
import ctypes
import ctypes.util
import glob
import os

import torch

NONE, MEAN, SUM = 0, 1, 2
_REDUCTIONS = {"none": NONE, "mean": MEAN, "sum": SUM}
_TARGET_TYPES = {torch.int64: 0, torch.int32: 1, torch.uint8: 2}
ERR_TARGET_OUT_OF_RANGE = 4


class NllkError(RuntimeError):
    """A failed nllk call: .status is the nllk_status, the message nllk_last_error()."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _candidates():
    env = os.environ.get("NLLK_LIBRARY")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for pattern in ("build/libnllk.so", "build*/libnllk.so"):
        for p in sorted(glob.glob(os.path.join(root, pattern))):
            yield p
    found = ctypes.util.find_library("nllk")
    if found:
        yield found


def _load():
    # the same library as nllk's front end (one instance: thread and ISA settings are shared)
    try:
        from . import _lib as _front_end

        return ctypes.CDLL(_front_end.get()._name)
    except (ImportError, AttributeError, OSError):
        pass
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:  # pragma: no cover - depends on the machine
            errors.append(f"{path}: {e}")
    raise OSError("libnllk not found (set NLLK_LIBRARY to its path); tried: " + "; ".join(errors or ["nothing"]))


lib = _load()
_p = ctypes.c_void_p
_sz = ctypes.c_size_t
_i = ctypes.c_int
_d = ctypes.c_double
for _dt, _real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
    getattr(lib, f"nllk_poisson_nll_fwd_{_dt}").argtypes = [_p, _p, _sz, _i, _i, _d, _i, _p]
    getattr(lib, f"nllk_poisson_nll_bwd_{_dt}").argtypes = [_p, _p, _sz, _i, _i, _d, _i, _p, _p, _p]
    getattr(lib, f"nllk_nll_fwd_{_dt}").argtypes = [_p, _p, _i, _sz, _sz, _sz, _p, ctypes.c_int64, _i, _p, _p]
    getattr(lib, f"nllk_nll_bwd_{_dt}").argtypes = [_p, _p, _i, _sz, _sz, _sz, _p, ctypes.c_int64, _i, _real, _p]
    for _f in ("poisson_nll_fwd", "poisson_nll_bwd", "nll_fwd", "nll_bwd"):
        getattr(lib, f"nllk_{_f}_{_dt}").restype = _i
lib.nllk_last_error.restype = ctypes.c_char_p
lib.nllk_active_isa.restype = ctypes.c_char_p
lib.nllk_version_string.restype = ctypes.c_char_p
lib.nllk_set_num_threads.argtypes = [_i]
lib.nllk_set_num_threads.restype = _i
lib.nllk_get_num_threads.restype = _i
_set_isa = getattr(lib, "nllk_set_isa", None)
if _set_isa is not None:
    _set_isa.argtypes = [ctypes.c_char_p]
    _set_isa.restype = _i


# pre-resolved entry points by dtype (the fast paths of nllk.torch avoid any lookup per call)
POISSON_FWD = {torch.float32: lib.nllk_poisson_nll_fwd_f32, torch.float64: lib.nllk_poisson_nll_fwd_f64}
NLL_FWD = {torch.float32: lib.nllk_nll_fwd_f32, torch.float64: lib.nllk_nll_fwd_f64}
POISSON_BWD = {torch.float32: lib.nllk_poisson_nll_bwd_f32, torch.float64: lib.nllk_poisson_nll_bwd_f64}
NLL_BWD = {torch.float32: lib.nllk_nll_bwd_f32, torch.float64: lib.nllk_nll_bwd_f64}
SCALAR = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
TARGET_TYPES = _TARGET_TYPES


def _check(status):
    if status != 0:
        raise NllkError(status, lib.nllk_last_error().decode(errors="replace"))


def _suffix(dtype):
    if dtype == torch.float32:
        return "f32"
    if dtype == torch.float64:
        return "f64"
    raise TypeError(f"nllk computes in float32 and float64, not {dtype}")


def _ptr(t):
    return t.data_ptr() if t is not None and t.numel() > 0 else None


def reduction_code(reduction):
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(f"{reduction} is not a valid value for reduction") from None


def library_info():
    return {
        "version": lib.nllk_version_string().decode(),
        "isa": lib.nllk_active_isa().decode(),
        "threads": lib.nllk_get_num_threads(),
        "path": lib._name,
    }


def set_num_threads(k):
    _check(lib.nllk_set_num_threads(int(k)))


def set_isa(name):
    """Forces an instruction set (nllk_set_isa); raises NllkError if this CPU or build lacks it, and
    NotImplementedError if the library has no nllk_set_isa."""
    if _set_isa is None:
        raise NotImplementedError("this libnllk has no nllk_set_isa")
    _check(_set_isa(name.encode()))


# ---- Poisson --------------------------------------------------------------------------------------------------
def poisson_fwd(x, t, log_input, full, eps, red, out=None):
    """x, t: contiguous CPU tensors of one float dtype and numel. Returns out (0-dim, or x's shape for none)."""
    n = x.numel()
    if out is None:
        out = torch.empty(x.shape if red == NONE else (), dtype=x.dtype)
    fn = getattr(lib, "nllk_poisson_nll_fwd_" + _suffix(x.dtype))
    _check(fn(_ptr(x), _ptr(t), n, int(bool(log_input)), int(bool(full)), float(eps), red, out.data_ptr()))
    return out


def poisson_bwd(x, t, log_input, full, eps, red, grad_output, need_grad_target, grad_input=None, grad_target=None):
    """grad_output: contiguous, x's shape for none, else 0-dim. Returns (grad_input, grad_target or None)."""
    n = x.numel()
    gx = torch.empty_like(x) if grad_input is None else grad_input
    gt = (torch.empty_like(t) if grad_target is None else grad_target) if need_grad_target else None
    fn = getattr(lib, "nllk_poisson_nll_bwd_" + _suffix(x.dtype))
    _check(fn(_ptr(x), _ptr(t), n, int(bool(log_input)), int(bool(full)), float(eps), red,
              _ptr(grad_output), _ptr(gx), _ptr(gt)))
    return gx, gt


# ---- NLL ------------------------------------------------------------------------------------------------------
def target_type(target):
    try:
        return _TARGET_TYPES[target.dtype]
    except KeyError:
        raise TypeError(f"nll target must be int64, int32 or uint8, not {target.dtype}") from None


def nll_fwd(x, target, n, c, d, weight, ignore_index, red, out=None):
    """x: contiguous (n, c, d) values; target: contiguous n*d class indices. Returns (out, total_weight)."""
    if out is None:
        out = torch.empty((n * d,) if red == NONE else (), dtype=x.dtype)
    tw = torch.empty((), dtype=x.dtype)
    fn = getattr(lib, "nllk_nll_fwd_" + _suffix(x.dtype))
    st = fn(_ptr(x), _ptr(target), target_type(target), n, c, d, _ptr(weight), int(ignore_index), red,
            out.data_ptr() if out.numel() else None, tw.data_ptr())
    if st == ERR_TARGET_OUT_OF_RANGE:
        raise IndexError(lib.nllk_last_error().decode(errors="replace"))
    _check(st)
    return out, tw


def nll_bwd(grad_output, target, n, c, d, weight, ignore_index, red, total_weight, grad_input):
    fn = getattr(lib, "nllk_nll_bwd_" + _suffix(grad_input.dtype))
    st = fn(_ptr(grad_output), _ptr(target), target_type(target), n, c, d, _ptr(weight), int(ignore_index), red,
            float(total_weight), _ptr(grad_input))
    if st == ERR_TARGET_OUT_OF_RANGE:
        raise IndexError(lib.nllk_last_error().decode(errors="replace"))
    _check(st)
    return grad_input
