"""Streaming accumulators over nllk's C accumulators (nllk.h, "Streaming"): fold chunks of any length, merge
adjacent shards, and get exactly the bits of the one-shot call over the concatenated data."""
import ctypes
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from . import _api, _args, _capi
from ._errors import DTypeError, NllkOverflowError, NllkTypeError, NllkValueError

SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1


@dataclass(frozen=True)
class AccumulatorResult:
    """The reductions over everything folded so far: float32/float64 accumulators round them to their dtype, as
    the one-shot call does; float16/bfloat16 accumulators give the double value (the one-shot call rounds it to
    the 16-bit type). total_weight is NLL's sum of weights of non-ignored elements; Poisson's count."""
    mean: float
    sum: float
    total_weight: float
    count: int


class _Accumulator:
    def __init__(self, dtype):
        self._dtype = _api.as_dtype(dtype)
        if self._dtype is None:
            raise DTypeError(f"accumulator dtype must be float32, float64, float16 or bfloat16, got {dtype}")
        self._buf = ctypes.create_string_buffer(_capi.ACC_SIZE)
        lib = _capi.get()
        self._c = lib.c
        self._k = _api._kernels(self._dtype)

    @property
    def dtype(self) -> np.dtype:
        """float32, float64, float16, or for bfloat16 nllk's marker of bfloat16 bits (uint16 with metadata
        {'nllk': 'bfloat16'}: numpy has no bfloat16)."""
        return self._dtype

    def _array(self, a, role: str) -> np.ndarray:
        arr = _api._to_numpy(a, role)
        if _api._float_dtype(arr.dtype) is not self._dtype:
            raise DTypeError(f"{role}: this accumulator takes {_api.dtype_name(self._dtype)}, got "
                             f"{_api.dtype_name(arr.dtype)}")
        return _api._contiguous(arr, self._dtype)

    def _out(self, out, shape) -> Optional[int]:
        """The address for the per-element losses of an update (None: not wanted)."""
        if out is None:
            return None
        arr = _api._to_numpy(out, "out") if _api._is_tensor(out) else out
        if (type(arr) is not np.ndarray or _api._float_dtype(arr.dtype) is not self._dtype
                or arr.shape != tuple(shape) or not arr.flags.c_contiguous or not arr.flags.writeable):
            raise NllkValueError(f"out: expected a writable C-contiguous {_api.dtype_name(self._dtype)} numpy array "
                                 f"(or CPU tensor) of shape {tuple(shape)}")
        return _api._ptr(arr)

    @property
    def range(self) -> Tuple[int, int]:
        """(begin, end): the global element range folded so far."""
        b, e = ctypes.c_uint64(), ctypes.c_uint64()
        _capi.check(self._c.nllk_acc_range(self._buf, ctypes.byref(b), ctypes.byref(e)))
        return b.value, e.value

    def merge(self, other: "_Accumulator") -> "_Accumulator":
        """Appends `other`, an accumulator with the same options whose range begins where this one ends."""
        if type(other) is not type(self):
            raise NllkTypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        _capi.check(self._c.nllk_acc_merge(self._buf, other._buf))
        return self

    def result(self) -> AccumulatorResult:
        """AccumulatorResult(mean, sum, total_weight, count)."""
        out = {}
        tw, cnt = ctypes.c_double(), ctypes.c_uint64()
        for name, red in (("mean", _capi.REDUCTION_MEAN), ("sum", _capi.REDUCTION_SUM)):
            v = ctypes.c_double()
            _capi.check(self._c.nllk_acc_result(self._buf, red, ctypes.byref(v), ctypes.byref(tw),
                                                ctypes.byref(cnt)))
            out[name] = v.value
        return AccumulatorResult(out["mean"], out["sum"], tw.value, cnt.value)

    def to_bytes(self) -> bytes:
        """The accumulator's state (plain bytes: send it to another process of the same build)."""
        return self._buf.raw

    def load_bytes(self, data: bytes) -> "_Accumulator":
        """Replaces the state with one from to_bytes() of an accumulator with the same options. The library checks
        the state (NllkValueError if it is not a valid one); on failure this accumulator is unchanged."""
        if len(data) != _capi.ACC_SIZE:
            raise NllkValueError(f"expected {_capi.ACC_SIZE} bytes, got {len(data)}")
        before = self._buf.raw
        ctypes.memmove(self._buf, bytes(data), _capi.ACC_SIZE)
        try:
            self.range  # the library validates the state it is given
        except BaseException:
            ctypes.memmove(self._buf, before, _capi.ACC_SIZE)
            raise
        return self


class PoissonAccumulator(_Accumulator):
    """Folds Poisson NLL chunks: acc.update(input, target) for consecutive chunks (any shapes; flattened in C
    order), then acc.result(). `begin` is the global index of the first element (a shard's offset)."""

    def __init__(self, dtype=np.float32, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                 begin: int = 0):
        fn = "PoissonAccumulator"
        li, fu = _args.flag(log_input, "log_input", fn), _args.flag(full, "full", fn)
        ep = _args.real(eps, "eps", fn)
        b = _args.count(begin, "begin", fn, 0, _args.UINT64_MAX)
        super().__init__(dtype)
        _capi.check(self._c.nllk_poisson_acc_init(self._buf, self._k.code, li, fu, ep, b))

    def update(self, input, target, out: Optional[np.ndarray] = None):
        """Folds the next chunk; with `out` (an array or tensor of the accumulator's dtype and the chunk's shape)
        also writes its per-element losses there (the one-shot call's 'none' values)."""
        x = self._array(input, "poisson accumulator input")
        t = self._array(target, "poisson accumulator target")
        if x.shape != t.shape:
            raise NllkValueError(f"input shape {x.shape} and target shape {t.shape} differ")
        _capi.check(self._k.poisson_acc_update_out(self._buf, _api._ptr(x), _api._ptr(t), x.size,
                                                   self._out(out, x.shape)))
        return self


class NLLAccumulator(_Accumulator):
    """Folds NLL chunks of whole samples: acc.update(input, target) with input (rows, C, *spatial) and target
    (rows, *spatial) (or input (rows, C) and target (rows,)), then acc.result(). `spatial` is the shape of the
    positions per sample, `begin` the global flat index (sample * positions + position) of the first element."""

    def __init__(self, num_classes: int, spatial: Sequence[int] = (), dtype=np.float32, weight=None,
                 ignore_index: int = -100, begin: int = 0, target_dtype=np.int64):
        fn = "NLLAccumulator"
        c = _args.count(num_classes, "num_classes", fn, 0, SIZE_MAX)
        self._spatial = tuple(_args.count(s, "spatial", fn, 0, SIZE_MAX) for s in spatial)
        d = math.prod(self._spatial)
        if d > SIZE_MAX:
            raise NllkOverflowError(f"{fn}(): spatial {self._spatial} has more than {SIZE_MAX} positions")
        ii = _args.int64(ignore_index, "ignore_index", fn)
        b = _args.count(begin, "begin", fn, 0, _args.UINT64_MAX)
        super().__init__(dtype)
        self._classes = c
        self._weight = _api._nll_weight(weight, self._dtype)
        if self._weight is not None:
            _args.check_nll_weight(self._weight.shape, c)
        self._tdtype = np.dtype(target_dtype)
        ttype = _api.TARGET_TYPES.get(self._tdtype)
        if ttype is None:
            raise DTypeError(f"target_dtype must be int64, int32 or uint8, got {self._tdtype}")
        self._init(ttype, c, d, ii, b)

    def _init(self, ttype: int, c: int, d: int, ii: int, b: int) -> None:
        _capi.check(self._c.nllk_nll_acc_init(self._buf, self._k.code, ttype, c, d, ii, b))

    def _fold(self, x, t, out):
        _capi.check(self._k.nll_acc_update_out(self._buf, _api._ptr(x), _api._ptr(t), t.size,
                                               _api._ptr(self._weight), out))

    def update(self, input, target, out: Optional[np.ndarray] = None):
        """Folds the next rows; with `out` (a float array of target's shape) also writes their per-element
        losses there (the one-shot call's 'none' values)."""
        x = self._array(input, "nll accumulator input")
        t = _api._to_numpy(target, "nll accumulator target")
        if t.dtype != self._tdtype:
            raise DTypeError(f"nll accumulator target: this accumulator takes {self._tdtype}, got {t.dtype}")
        t = _api._contiguous(t, self._tdtype)
        if x.ndim < 2 or x.shape[1] != self._classes or x.shape[2:] != self._spatial:
            raise NllkValueError(f"input shape {x.shape}: expected (rows, {self._classes}, *{self._spatial})")
        if t.shape != (x.shape[0],) + self._spatial:
            raise NllkValueError(f"target shape {t.shape}: expected {(x.shape[0],) + self._spatial}")
        self._fold(x, t, self._out(out, t.shape))
        return self


class CrossEntropyAccumulator(NLLAccumulator):
    """Folds cross-entropy chunks (logits, class-index targets) of whole samples: acc.update(input, target) with
    input (rows, C, *spatial) logits and target (rows, *spatial) (or (rows, C) and (rows,)), then acc.result()
    -- the bits of nllk.cross_entropy over the concatenated rows (label smoothing with PyTorch's normalisation
    included). total_weight is the weight sum of the non-ignored targets (their count without weight)."""

    def __init__(self, num_classes: int, spatial: Sequence[int] = (), dtype=np.float32, weight=None,
                 ignore_index: int = -100, label_smoothing: float = 0.0, begin: int = 0, target_dtype=np.int64):
        fn = "CrossEntropyAccumulator"
        self._ls = _args.label_smoothing(label_smoothing, fn)
        super().__init__(num_classes, spatial, dtype, weight, ignore_index, begin, target_dtype)

    def _init(self, ttype: int, c: int, d: int, ii: int, b: int) -> None:
        _capi.check(self._c.nllk_cross_entropy_acc_init(self._buf, self._k.code, ttype, c, d, ii, self._ls, b))

    def _fold(self, x, t, out):
        _capi.check(self._k.cross_entropy_acc_update_out(self._buf, _api._ptr(x), _api._ptr(t), t.size,
                                                         _api._ptr(self._weight), out))


class CrossEntropyProbAccumulator(_Accumulator):
    """Folds cross-entropy chunks with class-probability targets: acc.update(input, target) with input and target
    both (rows, C, *spatial), then acc.result() -- the bits of nllk.cross_entropy over the concatenated rows
    ('mean' divides by the number of positions, as PyTorch)."""

    def __init__(self, num_classes: int, spatial: Sequence[int] = (), dtype=np.float32, weight=None,
                 label_smoothing: float = 0.0, begin: int = 0):
        fn = "CrossEntropyProbAccumulator"
        c = _args.count(num_classes, "num_classes", fn, 0, SIZE_MAX)
        self._spatial = tuple(_args.count(s, "spatial", fn, 0, SIZE_MAX) for s in spatial)
        d = math.prod(self._spatial)
        if d > SIZE_MAX:
            raise NllkOverflowError(f"{fn}(): spatial {self._spatial} has more than {SIZE_MAX} positions")
        ls = _args.label_smoothing(label_smoothing, fn)
        b = _args.count(begin, "begin", fn, 0, _args.UINT64_MAX)
        super().__init__(dtype)
        self._classes = c
        self._weight = _api._nll_weight(weight, self._dtype)
        if self._weight is not None:
            _args.check_nll_weight(self._weight.shape, c, "cross_entropy: ")
        _capi.check(self._c.nllk_cross_entropy_prob_acc_init(self._buf, self._k.code, c, d, ls, b))

    def update(self, input, target, out: Optional[np.ndarray] = None):
        """Folds the next rows; with `out` (a float array of shape (rows, *spatial)) also writes their per-position
        losses there (the one-shot call's 'none' values)."""
        x = self._array(input, "cross-entropy accumulator input")
        t = self._array(target, "cross-entropy accumulator target")
        if x.ndim < 2 or x.shape[1] != self._classes or x.shape[2:] != self._spatial:
            raise NllkValueError(f"input shape {x.shape}: expected (rows, {self._classes}, *{self._spatial})")
        if t.shape != x.shape:
            raise NllkValueError(f"target shape {t.shape}: expected input's shape {x.shape}")
        rows = (x.shape[0],) + self._spatial
        _capi.check(self._k.cross_entropy_prob_acc_update_out(self._buf, _api._ptr(x), _api._ptr(t),
                                                              math.prod(rows), _api._ptr(self._weight),
                                                              self._out(out, rows)))
        return self
