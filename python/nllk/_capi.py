"""The one binding of libnllk: finding and loading the library, the ctypes declaration of every C function in
nllk.h, and the one map from nllk_status codes to Python exceptions. nllk (numpy front end), nllk.torch and the
accumulators all call the library through this module.

The library is loaded on the first call (so `import nllk` works without it, and NLLK_LIBRARY may be set after
the import). It is looked for, in order:
  1. $NLLK_LIBRARY, a path to the shared library. When set it is the only candidate: a library that fails to
     load there is an error naming it, never silently replaced by another one;
  2. the package's own directory: nllk/libnllk.so, then nllk/libnllk.so.* (highest version first) -- where
     `pip install` puts it;
  3. a source checkout's default build folder, <repo>/build/libnllk.so, when this package is <repo>/python/nllk;
  4. the system loader: ctypes.util.find_library("nllk") (its SONAME from the ld.so cache, e.g. after
     `cmake --install` and ldconfig), then "libnllk.so" through the loader's own search (LD_LIBRARY_PATH, ...).

With the library, the compiled numpy front end _nllk_fast (python/src/nllk_fast.c) is loaded from the library's
folder or the package's, and handed the library's functions: `fast` is that module (None without it, or with
NLLK_FAST=0; FAST_ERROR says why). nllk's losses call it first on numpy arrays; it computes the common calls and
returns None for the rest, which the ctypes path below then computes.
"""
import ctypes
import ctypes.util
import glob
import os
import threading
from typing import Dict, List, NamedTuple, Optional

from ._errors import (NllkError, NllkIndexError, NllkOverflowError, NllkRuntimeError, NllkValueError)

# nllk_status, nllk_reduction, nllk_target_type, nllk_dtype (nllk.h)
OK, ERR_NULL_POINTER, ERR_INVALID_ARGUMENT, ERR_SIZE_OVERFLOW, ERR_TARGET_OUT_OF_RANGE, ERR_UNSUPPORTED = range(6)
REDUCTION_NONE, REDUCTION_MEAN, REDUCTION_SUM = 0, 1, 2
TARGET_I64, TARGET_I32, TARGET_U8 = 0, 1, 2
DTYPE_F32, DTYPE_F64, DTYPE_BF16, DTYPE_F16 = 0, 1, 2, 3
NO_INDEX = (1 << 64) - 1  # NLLK_NO_INDEX
ACC_SIZE = 72 * 1024      # NLLK_ACC_SIZE

# ---- the declaration table: every function of nllk.h -----------------------------------------------------
_p, _sz, _int, _dbl, _i64, _u64 = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_double, ctypes.c_int64,
                                   ctypes.c_uint64)
_str = ctypes.c_char_p
_st = ctypes.c_int  # nllk_status
_en = ctypes.c_int  # nllk_reduction, nllk_target_type, nllk_dtype


def _per_dtype(real):
    """The float-typed functions of one dtype: (name suffix-less, restype, argtypes). `real` is the ctypes type of
    an element scalar passed by value (total_weight): c_float, c_double, or c_uint16 (the bits of a bfloat16 /
    float16 value, nllk_bf16 / nllk_f16)."""
    return [
        # (input, target, n, log_input, full, eps, reduction, out)
        ("poisson_nll_fwd", _st, [_p, _p, _sz, _int, _int, _dbl, _en, _p]),
        # (input, target, n, log_input, full, eps, reduction, grad_output, grad_input, grad_target)
        ("poisson_nll_bwd", _st, [_p, _p, _sz, _int, _int, _dbl, _en, _p, _p, _p]),
        # (input, target, target_type, n, c, d, weight, ignore_index, reduction, out, total_weight)
        ("nll_fwd", _st, [_p, _p, _en, _sz, _sz, _sz, _p, _i64, _en, _p, _p]),
        # (grad_output, target, target_type, n, c, d, weight, ignore_index, reduction, total_weight, grad_input)
        ("nll_bwd", _st, [_p, _p, _en, _sz, _sz, _sz, _p, _i64, _en, real, _p]),
        ("poisson_acc_update", _st, [_p, _p, _p, _sz]),                # (acc, input, target, n)
        ("poisson_acc_update_out", _st, [_p, _p, _p, _sz, _p]),        # (acc, input, target, n, out)
        ("nll_acc_update", _st, [_p, _p, _p, _sz, _p]),                # (acc, input, target, n, weight)
        ("nll_acc_update_out", _st, [_p, _p, _p, _sz, _p, _p]),        # (acc, input, target, n, weight, out)
        # (input, target, target_type, n, c, d, weight, ignore_index, label_smoothing, reduction, out,
        #  total_weight, lse)
        ("cross_entropy_fwd", _st, [_p, _p, _en, _sz, _sz, _sz, _p, _i64, _dbl, _en, _p, _p, _p]),
        # (grad_output, input, target, target_type, n, c, d, weight, ignore_index, label_smoothing, reduction,
        #  total_weight, lse, grad_input)
        ("cross_entropy_bwd", _st, [_p, _p, _p, _en, _sz, _sz, _sz, _p, _i64, _dbl, _en, real, _p, _p]),
        # (input, target, target_type, n, c, d, weight, ignore_index, label_smoothing, reduction, out,
        #  total_weight, lse, grad_output, grad_input)
        ("cross_entropy_fwdbwd", _st, [_p, _p, _en, _sz, _sz, _sz, _p, _i64, _dbl, _en, _p, _p, _p, _p, _p]),
        # (input, target, n, c, d, weight, label_smoothing, reduction, out, lse)
        ("cross_entropy_prob_fwd", _st, [_p, _p, _sz, _sz, _sz, _p, _dbl, _en, _p, _p]),
        # (grad_output, input, target, n, c, d, weight, label_smoothing, reduction, lse, grad_input, grad_target)
        ("cross_entropy_prob_bwd", _st, [_p, _p, _p, _sz, _sz, _sz, _p, _dbl, _en, _p, _p, _p]),
        ("cross_entropy_acc_update", _st, [_p, _p, _p, _sz, _p]),            # (acc, input, target, n, weight)
        ("cross_entropy_acc_update_out", _st, [_p, _p, _p, _sz, _p, _p]),    # (..., weight, out)
        ("cross_entropy_prob_acc_update", _st, [_p, _p, _p, _sz, _p]),       # (acc, input, target, n, weight)
        ("cross_entropy_prob_acc_update_out", _st, [_p, _p, _p, _sz, _p, _p]),  # (..., weight, out)
    ]


# The dtypes: (function suffix, ctypes type of an element scalar, nllk_dtype). nllk_bf16 and nllk_f16 are the
# uint16_t bits of a 16-bit value.
DTYPES = (("f32", ctypes.c_float, DTYPE_F32), ("f64", ctypes.c_double, DTYPE_F64),
          ("bf16", ctypes.c_uint16, DTYPE_BF16), ("f16", ctypes.c_uint16, DTYPE_F16))

DECLARATIONS = [
    ("nllk_last_error", _str, []),
    ("nllk_last_error_index", _u64, []),
    ("nllk_status_name", _str, [_st]),
    ("nllk_version_string", _str, []),
    ("nllk_version_number", ctypes.c_uint, []),
    ("nllk_active_isa", _str, []),
    ("nllk_set_isa", _st, [_str]),
    ("nllk_isa_supported", _int, [_str]),
    ("nllk_isa_name", _str, [_int]),
    ("nllk_set_num_threads", _st, [_int]),
    ("nllk_get_num_threads", _int, []),
    ("nllk_poisson_acc_init", _st, [_p, _en, _int, _int, _dbl, _u64]),    # (acc, dtype, log_input, full, eps, begin)
    ("nllk_nll_acc_init", _st, [_p, _en, _en, _sz, _sz, _i64, _u64]),  # (acc, dtype, ttype, c, d, ignore, begin)
    # (acc, dtype, ttype, c, d, ignore_index, label_smoothing, begin)
    ("nllk_cross_entropy_acc_init", _st, [_p, _en, _en, _sz, _sz, _i64, _dbl, _u64]),
    ("nllk_cross_entropy_prob_acc_init", _st, [_p, _en, _sz, _sz, _dbl, _u64]),  # (acc, dtype, c, d, ls, begin)
    ("nllk_acc_merge", _st, [_p, _p]),                                   # (left, right)
    ("nllk_acc_range", _st, [_p, _p, _p]),                               # (acc, &begin, &end)
    ("nllk_acc_result", _st, [_p, _en, _p, _p, _p]),                     # (acc, reduction, &value, &tw, &count)
] + [(f"nllk_{name}_{dt}", res, args) for dt, real, _ in DTYPES for name, res, args in _per_dtype(real)]


class Kernels(NamedTuple):
    """The entry points of one dtype, resolved once (the front ends' per-call paths look up nothing else)."""
    poisson_nll_fwd: ctypes._CFuncPtr
    poisson_nll_bwd: ctypes._CFuncPtr
    nll_fwd: ctypes._CFuncPtr
    nll_bwd: ctypes._CFuncPtr
    poisson_acc_update: ctypes._CFuncPtr
    poisson_acc_update_out: ctypes._CFuncPtr
    nll_acc_update: ctypes._CFuncPtr
    nll_acc_update_out: ctypes._CFuncPtr
    cross_entropy_fwd: ctypes._CFuncPtr
    cross_entropy_bwd: ctypes._CFuncPtr
    cross_entropy_fwdbwd: ctypes._CFuncPtr
    cross_entropy_prob_fwd: ctypes._CFuncPtr
    cross_entropy_prob_bwd: ctypes._CFuncPtr
    cross_entropy_acc_update: ctypes._CFuncPtr
    cross_entropy_acc_update_out: ctypes._CFuncPtr
    cross_entropy_prob_acc_update: ctypes._CFuncPtr
    cross_entropy_prob_acc_update_out: ctypes._CFuncPtr
    real: type          # ctypes.c_float, ctypes.c_double, or ctypes.c_uint16 (16-bit storage: the value's bits)
    code: int           # nllk_dtype


class Library:
    """libnllk, loaded and declared. `c` is the ctypes.CDLL with every nllk_* function declared, `path` the file
    it was loaded from (the name given to the loader for a system library), `f32`/`f64`/`bf16`/`f16` the
    Kernels."""

    def __init__(self, cdll: ctypes.CDLL, path: str):
        for name, restype, argtypes in DECLARATIONS:
            fn = getattr(cdll, name)
            fn.restype = restype
            fn.argtypes = argtypes
        self.c = cdll
        self.path = path
        for dt, real, code in DTYPES:
            setattr(self, dt, Kernels(*(getattr(cdll, f"nllk_{name}_{dt}") for name, _, _ in _per_dtype(None)),
                                      real, code))


# ---- finding and loading ----------------------------------------------------------------------------------
_HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT = os.path.dirname(os.path.dirname(_HERE))  # <repo> when this file is <repo>/python/nllk/_capi.py


def _version_key(path: str) -> List[int]:
    tail = os.path.basename(path).split(".so", 1)[1]
    return [int(p) if p.isdigit() else -1 for p in tail.split(".") if p]


def candidates() -> List[str]:
    """The libraries tried, in the documented order: the $NLLK_LIBRARY path alone when it is set; else the files
    in the package directory and the checkout's build folder that exist, then the names for the system loader."""
    env = os.environ.get("NLLK_LIBRARY")
    if env:
        return [env]
    found = glob.glob(os.path.join(_HERE, "libnllk.so"))
    found += sorted(glob.glob(os.path.join(_HERE, "libnllk.so.*")), key=_version_key, reverse=True)
    if (os.path.basename(os.path.dirname(_HERE)) == "python"
            and os.path.exists(os.path.join(_CHECKOUT, "include", "nllk.h"))):
        found += glob.glob(os.path.join(_CHECKOUT, "build", "libnllk.so"))
    system = ctypes.util.find_library("nllk")
    return found + ([system] if system else []) + ["libnllk.so"]


def _load() -> Library:
    tried = []
    for path in candidates():
        try:
            return Library(ctypes.CDLL(path), path)
        except (OSError, AttributeError) as e:  # AttributeError: a library without a declared function
            tried.append(f"{path} ({e})")
    if os.environ.get("NLLK_LIBRARY"):
        raise OSError(f"cannot load libnllk from NLLK_LIBRARY={os.environ['NLLK_LIBRARY']!r}: {tried[0]}")
    raise OSError("libnllk not found: set NLLK_LIBRARY to its path, install the package with pip (which puts it "
                  "next to the package), build the source tree into <repo>/build, or install it where the system "
                  "loader finds it. Tried: " + "; ".join(tried))


_lock = threading.Lock()
_library: Optional[Library] = None
fast = None  # the compiled numpy front end, bound to the loaded library (None: the ctypes path only)
FAST_ERROR: Optional[str] = "libnllk not loaded yet"


def get() -> Library:
    """The library, loaded and declared on the first call."""
    if _library is None:
        _load_once()
    return _library


def _load_once() -> None:
    global _library
    global fast, FAST_ERROR
    with _lock:
        if _library is None:
            library = _load()
            fast, FAST_ERROR = _load_fast(library)
            _library = library


def _load_fast(library: Library):
    """(_nllk_fast bound to library, None), or (None, why not)."""
    if os.environ.get("NLLK_FAST") == "0":
        return None, "NLLK_FAST=0"
    import importlib.machinery
    import importlib.util
    import numpy as np
    tried = []
    folders = [os.path.dirname(os.path.abspath(library.path))] if os.path.dirname(library.path) else []
    for d in dict.fromkeys(folders + [_HERE]):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(d, "_nllk_fast" + suffix)
            if not os.path.exists(path):
                continue
            try:
                spec = importlib.util.spec_from_file_location("nllk._nllk_fast", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                addresses = tuple(ctypes.cast(getattr(library.c, name), ctypes.c_void_p).value
                                  for name in module.NAMES.split(";"))
                module.bind(addresses, np.ndarray, np.empty, np.dtype(np.float32), np.dtype(np.float64))
                return module, None
            except (ImportError, AttributeError, TypeError, ValueError) as e:
                tried.append(f"{path}: {e}")
    return None, "; ".join(tried) or "_nllk_fast not found"


# ---- status -> exception ------------------------------------------------------------------------------------
STATUS_EXCEPTIONS: Dict[int, type] = {
    ERR_NULL_POINTER: NllkRuntimeError,      # a bug in the caller of the C API
    ERR_INVALID_ARGUMENT: NllkValueError,
    ERR_SIZE_OVERFLOW: NllkOverflowError,
    ERR_TARGET_OUT_OF_RANGE: NllkIndexError,
    ERR_UNSUPPORTED: NllkRuntimeError,
}


def error(status: int) -> NllkError:
    """The exception for a failed call's status, with this thread's nllk_last_error() message and
    nllk_last_error_index() (read at once: the next nllk call of the thread replaces them)."""
    c = get().c
    index = c.nllk_last_error_index()
    message = c.nllk_last_error().decode("utf-8", errors="replace")
    name = c.nllk_status_name(status).decode("ascii", errors="replace")
    cls = STATUS_EXCEPTIONS.get(status, NllkRuntimeError)
    return cls(message or name, status, name, None if index == NO_INDEX else index)


def check(status: int) -> None:
    """Raises error(status) for a non-zero nllk_status."""
    if status:
        raise error(status)
