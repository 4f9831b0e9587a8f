"""PyTorch 1.13's argument rules, written once for nllk (the numpy front end), nllk.torch and the accumulators.

What PyTorch's argument parser and torch.nn.functional accept, and the exception type each rejection raises
(tests/python/test_args.py checks every rule against torch):

  reduction     nll_loss: 'none'|'mean'|'sum', anything else ValueError("... is not a valid value for reduction").
                poisson_nll_loss: a bad string ValueError("... is not valid"), a non-string TypeError.
  bool flags    (log_input, full) a Python bool only: 1, None, numpy.bool_, tensors -> TypeError.
  int64         (ignore_index) a Python int or int subclass, a numpy integer, or a 0-d integer tensor; never a
                bool, float, str or None (TypeError); outside int64 RuntimeError("Overflow when unpacking long").
  float         (eps, label_smoothing) a Python float, int or bool, a numpy number, or a 0-d tensor that does not
                require grad; never a str, None, array or 1-element tensor (TypeError); an int too large for a
                double OverflowError.
  cross_entropy reduction as nll_loss; size_average/reduce (legacy) override it with a UserWarning as in
                torch.nn._reduction.legacy_get_string. label_smoothing > 1 RuntimeError ("label_smoothing must be
                between 0.0 and 1.0"); PyTorch 1.13 tests only `label_smoothing > 0`, so a negative or NaN value
                is the same as 0 (no smoothing) and nllk does the same. Probability targets (target of input's
                shape) must be floating point (RuntimeError) and take no ignore_index >= 0 (RuntimeError).
nllk's own integer arguments (set_num_threads, an accumulator's num_classes, spatial and begin) take what int64
takes and are range-checked before they reach C, never truncated: below the range ValueError, above it
OverflowError.

Shapes: the NLL geometry and the Poisson broadcast, checked as ATen checks them, with its messages.
"""
import math
import sys
import warnings
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ._errors import NllkIndexError, NllkOverflowError, NllkRuntimeError, NllkTypeError, NllkValueError

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}  # nllk_reduction (= PyTorch's enum)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
INT_MAX = (1 << 31) - 1  # C int


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _tensor_type():
    torch = sys.modules.get("torch")  # a tensor can only come from a caller that imported torch
    return torch.Tensor if torch is not None else ()


# ---- scalars -----------------------------------------------------------------------------------------------
def nll_reduction(reduction: Any) -> int:
    """The nllk_reduction of nll_loss's `reduction` (torch.nn._reduction.get_enum)."""
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise NllkValueError(f"{reduction} is not a valid value for reduction") from None


def nll_options(reduction: Any, ignore_index: Any, fn: str) -> Tuple[int, int]:
    """(nllk_reduction, ignore_index) of an NLL call, checked in PyTorch's order (the common values at the cost of
    one call)."""
    red = _REDUCTIONS.get(reduction) if reduction.__class__ is str else None
    if red is None:
        red = nll_reduction(reduction)
    if ignore_index.__class__ is not int or not INT64_MIN <= ignore_index <= INT64_MAX:
        ignore_index = int64(ignore_index, "ignore_index", fn)
    return red, ignore_index


def poisson_reduction(reduction: Any) -> int:
    """The nllk_reduction of poisson_nll_loss's `reduction` (torch.nn.functional.poisson_nll_loss)."""
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        if isinstance(reduction, str):
            raise NllkValueError(f"{reduction} is not valid") from None
        raise NllkTypeError(f"poisson_nll_loss(): reduction must be 'none', 'mean' or 'sum', not "
                            f"{_type_name(reduction)}") from None


def flag(value: Any, name: str, fn: str) -> int:
    """A bool argument (log_input, full) as the C API's int."""
    if value is True:
        return 1
    if value is False:
        return 0
    raise NllkTypeError(f"{fn}(): argument '{name}' must be bool, not {_type_name(value)}")


def poisson_options(log_input: Any, full: Any, eps: Any, reduction: Any, fn: str) -> Tuple[bool, bool, float, int]:
    """(log_input, full, eps, nllk_reduction) of a Poisson call, checked in PyTorch's order (the common values at
    the cost of one call)."""
    red = _REDUCTIONS.get(reduction) if reduction.__class__ is str else None
    if red is None:
        red = poisson_reduction(reduction)
    if log_input.__class__ is not bool:
        flag(log_input, "log_input", fn)
    if full.__class__ is not bool:
        flag(full, "full", fn)
    return log_input, full, (eps if eps.__class__ is float else real(eps, "eps", fn)), red


def legacy_reduction(size_average: Any, reduce: Any) -> str:
    """torch.nn._reduction.legacy_get_string: the reduction named by the deprecated size_average/reduce
    arguments (None counts as True), with PyTorch's UserWarning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                  stacklevel=3)
    return ret


def label_smoothing(value: Any, fn: str) -> float:
    """cross_entropy's label_smoothing as the C API's double in [0, 1]: a float argument (see real()); above 1
    RuntimeError as in PyTorch; negative or NaN is 0 (PyTorch 1.13 smooths only when label_smoothing > 0)."""
    v = value if value.__class__ is float else real(value, "label_smoothing", fn)
    if v > 0.0:
        if v <= 1.0:
            return v
        raise NllkRuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {v}")
    return 0.0


def ce_options(reduction: Any, ignore_index: Any, label_smoothing_: Any, fn: str) -> Tuple[int, int, float]:
    """(nllk_reduction, ignore_index, label_smoothing) of a cross-entropy call, checked in PyTorch's order."""
    red, ii = nll_options(reduction, ignore_index, fn)
    return red, ii, label_smoothing(label_smoothing_, fn)


def real(value: Any, name: str, fn: str) -> float:
    """A float argument (eps)."""
    if type(value) is float:
        return value
    if isinstance(value, (int, float, np.number, np.bool_)) or (
            isinstance(value, _tensor_type()) and value.dim() == 0 and not value.requires_grad):
        try:
            return float(value)
        except OverflowError:
            raise NllkOverflowError(f"{fn}(): argument '{name}': int too large to convert to float") from None
    raise NllkTypeError(f"{fn}(): argument '{name}' must be float, not {_type_name(value)}")


def _integer(value: Any, name: str, fn: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, np.integer) or (isinstance(value, int) and not isinstance(value, bool)):
        return int(value)
    if isinstance(value, _tensor_type()) and value.dim() == 0 and not value.is_floating_point() \
            and not value.is_complex() and value.dtype is not sys.modules["torch"].bool:
        return int(value)
    raise NllkTypeError(f"{fn}(): argument '{name}' must be int, not {_type_name(value)}")


def int64(value: Any, name: str, fn: str) -> int:
    """An int64 argument (ignore_index)."""
    v = _integer(value, name, fn)
    if INT64_MIN <= v <= INT64_MAX:
        return v
    raise NllkRuntimeError(f"Overflow when unpacking long: {fn}(): argument '{name}' = {v} is outside int64")


def count(value: Any, name: str, fn: str, lo: int, hi: int) -> int:
    """One of nllk's own integer arguments, in [lo, hi]."""
    v = _integer(value, name, fn)
    if v < lo:
        raise NllkValueError(f"{fn}(): {name} must be >= {lo}, got {v}")
    if v > hi:
        raise NllkOverflowError(f"{fn}(): {name} = {v} is larger than {hi}")
    return v


# ---- shapes ------------------------------------------------------------------------------------------------
def shape_str(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def nll_geometry(x_shape: Tuple[int, ...], t_shape: Tuple[int, ...], weight_shape: Optional[Tuple[int, ...]],
                 reduction: int) -> Tuple[int, int, int, Tuple[int, ...], int]:
    """(n, c, d, loss shape for 'none', reduction for the C call) of an NLL input and target (and weight) of these
    shapes, checked as ATen checks them: input (C), (N, C) or (N, C, d1..dK); target (), (N) or (N, d1..dK).

    A 1-D input's 'none' is computed as 'sum' of its one element: ATen sums -x*w from +0, so a zero weight gives
    +0.0 where the per-element value is -0.0."""
    dims = len(x_shape)
    if dims == 2 and len(t_shape) == 1 and x_shape[0] == t_shape[0]:  # the common case first
        n, c, d, out_shape = x_shape[0], x_shape[1], 1, t_shape
    elif dims < 1:
        raise NllkValueError(f"Expected 1 or more dimensions (got {dims})")
    elif dims == 1:
        if len(t_shape) > 1:
            raise NllkRuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if len(t_shape) == 1:
            raise NllkRuntimeError(f"size mismatch (got input: {shape_str(x_shape)}, target: "
                                   f"{shape_str(t_shape)})")
        n, c, d, out_shape = 1, x_shape[0], 1, ()
        if reduction == _REDUCTIONS["none"]:
            reduction = _REDUCTIONS["sum"]
    else:
        batch = t_shape[0] if len(t_shape) > 0 else 0
        if len(t_shape) == 0 or x_shape[0] != batch:
            raise NllkValueError(f"Expected input batch_size ({x_shape[0]}) to match target batch_size ({batch}).")
        if dims == 2:
            raise NllkRuntimeError("0D or 1D target tensor expected, multi-target not supported")
        out_shape = (x_shape[0],) + tuple(x_shape[2:])
        if tuple(t_shape) != out_shape:
            raise NllkRuntimeError(f"Expected target size {shape_str(out_shape)}, got {shape_str(t_shape)}")
        n, c, d = x_shape[0], x_shape[1], math.prod(x_shape[2:])
    if weight_shape is not None:
        check_nll_weight(weight_shape, c)
    return n, c, d, out_shape, reduction


def check_nll_weight(weight_shape: Tuple[int, ...], c: int, prefix: str = "") -> None:
    """An NLL (or cross-entropy) class weight must have shape (C,)."""
    if len(weight_shape) != 1 or weight_shape[0] != c:
        raise NllkRuntimeError(f"{prefix}weight tensor should be defined either for all {c} classes or no classes "
                               f"but got weight tensor of shape: {shape_str(weight_shape)}")


_TORCH_NAMES = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def ce_is_prob(x_shape: Tuple[int, ...], t_shape: Tuple[int, ...], t_dtype: np.dtype, ignore_index: int,
               t_floating: Optional[bool] = None) -> bool:
    """True when cross_entropy's target holds class probabilities: PyTorch 1.13 assumes so exactly when target
    has input's shape, and then requires a floating target (RuntimeError) and no ignore_index >= 0
    (RuntimeError). A 0-d input has no class dimension (IndexError, as PyTorch's log_softmax over dim 1).
    t_floating: whether the target is floating point (default: t_dtype's kind is 'f'; the front end says so for
    the bits of bfloat16 values too)."""
    prob = tuple(x_shape) == tuple(t_shape)
    if prob:
        if not (t_dtype.kind == "f" if t_floating is None else t_floating):
            name = _TORCH_NAMES.get(t_dtype.name, t_dtype.name)
            raise NllkRuntimeError(f"Expected floating point type for target with class probabilities, got {name}")
        if ignore_index >= 0:
            raise NllkRuntimeError("ignore_index is not supported for floating point target")
    if len(x_shape) == 0:
        raise NllkIndexError("Dimension specified as 1 but tensor has no dimensions")
    return prob


def ce_prob_geometry(x_shape: Tuple[int, ...], weight_shape: Optional[Tuple[int, ...]],
                     reduction: int) -> Tuple[int, int, int, Tuple[int, ...]]:
    """(n, c, d, loss shape for 'none') of cross_entropy with probability targets (target of input's shape):
    input (C) or (N, C, d1..dK), the loss summed over the class dimension."""
    if len(x_shape) == 1:
        n, c, d, out_shape = 1, x_shape[0], 1, ()
    else:
        n, c, d, out_shape = x_shape[0], x_shape[1], math.prod(x_shape[2:]), (x_shape[0],) + tuple(x_shape[2:])
    if weight_shape is not None:
        check_nll_weight(weight_shape, c, "cross_entropy: ")
    return n, c, d, out_shape


def broadcast_shape(x_shape: Tuple[int, ...], t_shape: Tuple[int, ...], fn: str) -> Tuple[int, ...]:
    """The shape Poisson input and target broadcast to (RuntimeError as in PyTorch when they do not)."""
    if x_shape == t_shape:
        return tuple(x_shape)
    try:
        return np.broadcast_shapes(tuple(x_shape), tuple(t_shape))
    except ValueError:
        raise NllkRuntimeError(f"{fn}: input of shape {shape_str(x_shape)} and target of shape "
                               f"{shape_str(t_shape)} do not broadcast") from None
