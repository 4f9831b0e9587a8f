"""Loading libnllk.so, the ctypes declarations of the functions the front end calls, and the one place where
nllk status codes become Python exceptions.

The library is looked for, in order:
  1. $NLLK_LIBRARY (a path to the shared library);
  2. next to this package: python/nllk/libnllk.so, then python/nllk/libnllk.so.* (highest version first);
  3. the default build folder of the source tree: <repo>/build/libnllk.so.
It is loaded on first use, so `import nllk` works without it and NLLK_LIBRARY may be set after the import
(before the first call).
"""
import ctypes
import glob
import os
import threading

# nllk_status (nllk.h)
OK = 0
ERR_NULL_POINTER = 1
ERR_INVALID_ARGUMENT = 2
ERR_SIZE_OVERFLOW = 3
ERR_TARGET_OUT_OF_RANGE = 4
ERR_UNSUPPORTED = 5

# nllk_reduction and nllk_target_type (nllk.h)
REDUCTION_NONE, REDUCTION_MEAN, REDUCTION_SUM = 0, 1, 2
TARGET_I64, TARGET_I32, TARGET_U8 = 0, 1, 2


# ---- exceptions ---------------------------------------------------------------------------------------------
class NllkError(Exception):
    """A call into libnllk failed. `status` is the nllk_status code, `status_name` its name; the message is the
    library's (nllk_last_error()). Concrete errors also derive from the matching built-in exception."""

    def __init__(self, status, message, status_name=None):
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class NllkIndexError(NllkError, IndexError):
    """NLLK_ERR_TARGET_OUT_OF_RANGE: an NLL target outside [0, C) that is not ignore_index."""


class NllkValueError(NllkError, ValueError):
    """NLLK_ERR_INVALID_ARGUMENT."""


class NllkOverflowError(NllkError, OverflowError):
    """NLLK_ERR_SIZE_OVERFLOW: a size product does not fit in size_t."""


class NllkRuntimeError(NllkError, RuntimeError):
    """NLLK_ERR_NULL_POINTER (a bug in this front end), NLLK_ERR_UNSUPPORTED, or an unknown status."""


class DTypeError(TypeError, RuntimeError):
    """An argument's dtype that nllk does not take. A TypeError, and also a RuntimeError because that is what
    PyTorch raises for the same inputs ("expected scalar type ...", "not implemented for 'Half'")."""


_STATUS_EXCEPTIONS = {
    ERR_NULL_POINTER: NllkRuntimeError,
    ERR_INVALID_ARGUMENT: NllkValueError,
    ERR_SIZE_OVERFLOW: NllkOverflowError,
    ERR_TARGET_OUT_OF_RANGE: NllkIndexError,
    ERR_UNSUPPORTED: NllkRuntimeError,
}


def check(status, lib=None):
    """Raises the exception for a non-zero nllk_status, carrying nllk_last_error() of this thread."""
    if status == OK:
        return
    lib = lib or get()
    message = lib.nllk_last_error().decode("utf-8", errors="replace")
    name = lib.nllk_status_name(status).decode("ascii", errors="replace")
    cls = _STATUS_EXCEPTIONS.get(status, NllkRuntimeError)
    raise cls(status, message or name, name)


# ---- finding and loading the library ------------------------------------------------------------------------
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))


def _version_key(path):
    parts = os.path.basename(path).split(".so")[-1].lstrip(".").split(".")
    return [int(p) if p.isdigit() else -1 for p in parts if p]


def candidates():
    """The paths tried, in order (the NLLK_LIBRARY one only when it is set)."""
    paths = []
    env = os.environ.get("NLLK_LIBRARY")
    if env:
        paths.append(env)
    local = os.path.join(_HERE, "libnllk.so")
    if os.path.exists(local):
        paths.append(local)
    paths += sorted(glob.glob(os.path.join(_HERE, "libnllk.so.*")), key=_version_key, reverse=True)
    paths.append(os.path.join(_REPO, "build", "libnllk.so"))
    return paths


_lock = threading.Lock()
_lib = None


def get():
    """The loaded library (loaded and declared on first call)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            _lib = _declare(_load())
    return _lib


def _load():
    env = os.environ.get("NLLK_LIBRARY")
    if env:
        # an explicit choice is never silently replaced by another library
        try:
            return ctypes.CDLL(env)
        except OSError as e:
            raise OSError(f"cannot load libnllk from NLLK_LIBRARY={env!r}: {e}") from None
    tried = []
    for path in candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (absent)")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise OSError("libnllk.so not found: set NLLK_LIBRARY to its path, or put it next to the nllk package, or "
                  "build the source tree into <repo>/build. Tried: " + "; ".join(tried))


_p = ctypes.c_void_p
_sz = ctypes.c_size_t
_int = ctypes.c_int
_dbl = ctypes.c_double
_i64 = ctypes.c_int64
_status = ctypes.c_int  # nllk_status
_enum = ctypes.c_int    # nllk_reduction, nllk_target_type


def _declare(lib):
    """argtypes and restype of every function this package calls."""

    def decl(name, restype, argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = argtypes

    decl("nllk_last_error", ctypes.c_char_p, [])
    decl("nllk_status_name", ctypes.c_char_p, [_status])
    decl("nllk_version_string", ctypes.c_char_p, [])
    decl("nllk_version_number", ctypes.c_uint, [])
    decl("nllk_active_isa", ctypes.c_char_p, [])
    for dt, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        # (input, target, n, log_input, full, eps, reduction, out)
        decl(f"nllk_poisson_nll_fwd_{dt}", _status, [_p, _p, _sz, _int, _int, _dbl, _enum, _p])
        # (input, target, n, log_input, full, eps, reduction, grad_output, grad_input, grad_target)
        decl(f"nllk_poisson_nll_bwd_{dt}", _status, [_p, _p, _sz, _int, _int, _dbl, _enum, _p, _p, _p])
        # (input, target, target_type, n, c, d, weight, ignore_index, reduction, out, total_weight)
        decl(f"nllk_nll_fwd_{dt}", _status, [_p, _p, _enum, _sz, _sz, _sz, _p, _i64, _enum, _p, _p])
        # (grad_output, target, target_type, n, c, d, weight, ignore_index, reduction, total_weight, grad_input)
        decl(f"nllk_nll_bwd_{dt}", _status, [_p, _p, _enum, _sz, _sz, _sz, _p, _i64, _enum, real, _p])
    # streaming accumulators (nllk_acc is a fixed-size byte block owned by the Python object)
    _u64 = ctypes.c_uint64
    decl("nllk_poisson_acc_init", _status, [_p, _enum, _int, _int, _dbl, _u64])
    decl("nllk_nll_acc_init", _status, [_p, _enum, _enum, _sz, _sz, _i64, _u64])
    for dt in ("f32", "f64"):
        decl(f"nllk_poisson_acc_update_{dt}", _status, [_p, _p, _p, _sz])
        decl(f"nllk_nll_acc_update_{dt}", _status, [_p, _p, _p, _sz, _p])
    decl("nllk_acc_merge", _status, [_p, _p])
    decl("nllk_acc_range", _status, [_p, _p, _p])
    decl("nllk_acc_result", _status, [_p, _enum, _p, _p, _p])
    # thread control: optional (older builds of the library do not export it)
    for name, restype, argtypes in (("nllk_get_num_threads", _int, []), ("nllk_set_num_threads", _status, [_int])):
        try:
            decl(name, restype, argtypes)
        except AttributeError:
            pass
    return lib


def optional(name):
    """The library function `name`, or None if this build does not export it."""
    try:
        return getattr(get(), name)
    except AttributeError:
        return None


def path():
    """The path the library was loaded from."""
    return get()._name
