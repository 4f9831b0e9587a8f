"""Streaming accumulators over nllk's C accumulators (nllk.h, "Streaming"): fold chunks of any length, merge
adjacent shards, and get exactly the bits of the one-shot call over the concatenated data."""
import ctypes
from dataclasses import dataclass

import numpy as np

from . import _api, _lib
from ._lib import DTypeError

ACC_SIZE = 72 * 1024  # NLLK_ACC_SIZE in nllk.h
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}  # nllk_dtype


@dataclass(frozen=True)
class AccumulatorResult:
    """The reductions over everything folded so far (each rounded to the accumulator's dtype, as the one-shot
    call rounds them). total_weight is NLL's sum of weights of non-ignored elements; Poisson's count."""
    mean: float
    sum: float
    total_weight: float
    count: int


class _Accumulator:
    _kind = None

    def __init__(self, dtype):
        self._dtype = np.dtype(dtype)
        if self._dtype not in _DTYPES:
            raise DTypeError(f"accumulator dtype must be float32 or float64, got {self._dtype}")
        self._buf = ctypes.create_string_buffer(ACC_SIZE)
        self._lib = _lib.get()

    @property
    def dtype(self):
        return self._dtype

    def _array(self, a, role):
        arr = _api._to_numpy(a, role)
        if _api._float_dtype(arr.dtype) != self._dtype:
            raise DTypeError(f"{role}: this accumulator takes {self._dtype}, got {arr.dtype}")
        return _api._contiguous(arr, self._dtype)

    @property
    def range(self):
        """(begin, end): the global element range folded so far."""
        b, e = ctypes.c_uint64(), ctypes.c_uint64()
        _lib.check(self._lib.nllk_acc_range(self._buf, ctypes.byref(b), ctypes.byref(e)), self._lib)
        return b.value, e.value

    def merge(self, other):
        """Appends `other`, an accumulator with the same options whose range begins where this one ends."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        _lib.check(self._lib.nllk_acc_merge(self._buf, other._buf), self._lib)
        return self

    def result(self):
        """AccumulatorResult(mean, sum, total_weight, count)."""
        out = {}
        tw, cnt = ctypes.c_double(), ctypes.c_uint64()
        for name, red in (("mean", _lib.REDUCTION_MEAN), ("sum", _lib.REDUCTION_SUM)):
            v = ctypes.c_double()
            _lib.check(self._lib.nllk_acc_result(self._buf, red, ctypes.byref(v), ctypes.byref(tw),
                                                 ctypes.byref(cnt)), self._lib)
            out[name] = v.value
        return AccumulatorResult(out["mean"], out["sum"], tw.value, cnt.value)

    def to_bytes(self):
        """The accumulator's state (plain bytes: send it to another process of the same build)."""
        return self._buf.raw

    def load_bytes(self, data):
        """Replaces the state with one from to_bytes() of an accumulator with the same options."""
        if len(data) != ACC_SIZE:
            raise ValueError(f"expected {ACC_SIZE} bytes, got {len(data)}")
        ctypes.memmove(self._buf, data, ACC_SIZE)
        return self


class PoissonAccumulator(_Accumulator):
    """Folds Poisson NLL chunks: acc.update(input, target) for consecutive chunks (any shapes; flattened in C
    order), then acc.result(). `begin` is the global index of the first element (a shard's offset)."""

    def __init__(self, dtype=np.float32, log_input=True, full=False, eps=1e-8, begin=0):
        super().__init__(dtype)
        _lib.check(self._lib.nllk_poisson_acc_init(self._buf, _DTYPES[self._dtype], int(bool(log_input)),
                                                   int(bool(full)), float(eps), int(begin)), self._lib)

    def update(self, input, target):
        x = self._array(input, "poisson accumulator input")
        t = self._array(target, "poisson accumulator target")
        if x.shape != t.shape:
            raise ValueError(f"input shape {x.shape} and target shape {t.shape} differ")
        fn = getattr(self._lib, f"nllk_poisson_acc_update_{_api._suffix(self._dtype)}")
        _lib.check(fn(self._buf, _api._ptr(x), _api._ptr(t), x.size), self._lib)
        return self


class NLLAccumulator(_Accumulator):
    """Folds NLL chunks of whole samples: acc.update(input, target) with input (rows, C, *spatial) and target
    (rows, *spatial) (or input (rows, C) and target (rows,)), then acc.result(). `spatial` is the shape of the
    positions per sample, `begin` the global flat index (sample * positions + position) of the first element."""

    def __init__(self, num_classes, spatial=(), dtype=np.float32, weight=None, ignore_index=-100, begin=0,
                 target_dtype=np.int64):
        super().__init__(dtype)
        self._c = int(num_classes)
        self._spatial = tuple(int(s) for s in spatial)
        self._d = int(np.prod(self._spatial, dtype=np.int64)) if self._spatial else 1
        self._weight = _api._nll_weight(weight, self._c, self._dtype)
        tt = np.dtype(target_dtype)
        self._ttype = _api._TARGET_TYPES.get((tt.itemsize, tt.kind))
        if self._ttype is None:
            raise DTypeError(f"target_dtype must be int64, int32 or uint8, got {tt}")
        self._tdtype = tt
        _lib.check(self._lib.nllk_nll_acc_init(self._buf, _DTYPES[self._dtype], self._ttype, self._c, self._d,
                                               _api._ignore_index(ignore_index), int(begin)), self._lib)

    def update(self, input, target):
        x = self._array(input, "nll accumulator input")
        t = _api._to_numpy(target, "nll accumulator target")
        if t.dtype != self._tdtype:
            raise DTypeError(f"nll accumulator target: this accumulator takes {self._tdtype}, got {t.dtype}")
        t = _api._contiguous(t, t.dtype.newbyteorder("="))
        if x.ndim < 2 or x.shape[1] != self._c or x.shape[2:] != self._spatial:
            raise ValueError(f"input shape {x.shape}: expected (rows, {self._c}, *{self._spatial})")
        if t.shape != (x.shape[0],) + self._spatial:
            raise ValueError(f"target shape {t.shape}: expected {(x.shape[0],) + self._spatial}")
        fn = getattr(self._lib, f"nllk_nll_acc_update_{_api._suffix(self._dtype)}")
        _lib.check(fn(self._buf, _api._ptr(x), _api._ptr(t), t.size, _api._ptr(self._weight)), self._lib)
        return self
