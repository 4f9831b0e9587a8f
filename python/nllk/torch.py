"""nllk as a PyTorch backend: drop-in loss modules and functions with autograd.

Change one import and a PyTorch program computes its losses with nllk:

    from nllk.torch import PoissonNLLLoss, NLLLoss          # instead of torch.nn's
    import nllk.torch as F                                   # F.poisson_nll_loss, F.nll_loss

The modules subclass torch.nn.PoissonNLLLoss and torch.nn.NLLLoss (same constructor arguments, state_dict,
isinstance), and the functions take torch.nn.functional's arguments, legacy size_average/reduce included.
Forward and backward (w.r.t. input, and w.r.t. target for Poisson, as PyTorch gives it) run nllk's kernels on
the tensors' memory, without copies for contiguous inputs.

Arguments are checked by the rules nllk's numpy front end uses (nllk._args: PyTorch's, with PyTorch's messages),
and errors are the same exception classes as nllk.*'s (nllk.NllkError subclasses that are also the built-in
exception PyTorch raises). What nllk does not compute falls back to PyTorch unchanged, errors included: tensors
not on the CPU, dtypes other than float32/float64 (or input and target/weight of different dtypes), NLL targets
other than int64/int32/uint8, and a class weight that requires grad. Double backward is not supported (use
torch.nn for higher-order gradients).

Differences from PyTorch, by design (see include/nllk.h): mean and sum are reduced in double along a fixed tree
(the same bits for any thread count; within ~1 ulp of the exact sum), and the Poisson gradient w.r.t. target
with full=True is finite where target <= 0 (PyTorch gives NaN there, an artefact of its masked Stirling term).
"""
import ctypes
from typing import Optional

import torch
import torch.nn.functional as _F
from torch import Tensor
from torch.nn import _reduction as _Reduction

from . import _api, _args, _capi
from ._capi import REDUCTION_NONE as _NONE

__all__ = ["PoissonNLLLoss", "NLLLoss", "poisson_nll_loss", "nll_loss", "library_info", "set_num_threads"]

library_info = _api.library_info
set_num_threads = _api.set_num_threads
_FLOATS = (torch.float32, torch.float64)
_TARGET_TYPES = {torch.int64: _capi.TARGET_I64, torch.int32: _capi.TARGET_I32, torch.uint8: _capi.TARGET_U8}
_STRIDED = torch.strided


_KERNELS = {}  # torch dtype -> _capi.Kernels: the per-call paths read `_KERNELS.get(dtype) or _kernels(dtype)`


def _kernels(dtype: torch.dtype) -> _capi.Kernels:
    """The entry points of a float dtype (loads the library on the first call)."""
    lib = _capi.get()
    return _KERNELS.setdefault(dtype, lib.f32 if dtype is torch.float32 else lib.f64)


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()  # (0, i.e. NULL, for an empty tensor: the C API allows it)


# ---- Poisson --------------------------------------------------------------------------------------------------
def _poisson_forward(input, target, options):
    """The forward call on input and target broadcast together: (out, the contiguous x and t it read)."""
    x, t = input, target
    shape = x.shape
    if t.shape != shape:
        shape = _args.broadcast_shape(shape, t.shape, "poisson_nll_loss")
        x, t = x.expand(shape), t.expand(shape)
    if not x.is_contiguous():
        x = x.contiguous()
    if not t.is_contiguous():
        t = t.contiguous()
    log_input, full, eps, red = options
    out = x.new_empty(shape if red == _NONE else ())
    status = (_KERNELS.get(x.dtype) or _kernels(x.dtype)).poisson_nll_fwd(
        x.data_ptr(), t.data_ptr(), x.numel(), log_input, full, eps, red, out.data_ptr())
    if status:
        _capi.check(status)
    return out, x, t


class _PoissonNLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, options):
        out, x, t = _poisson_forward(input, target, options)
        ctx.keep = (x, t)  # the inputs' memory the backward call reads
        ctx.opts = (options, input.shape, target.shape)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (log_input, full, eps, red), input_shape, target_shape = ctx.opts
        x, t = ctx.keep
        shape = x.shape
        need_gx, need_gt = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        go = grad_output
        if go.dtype is not x.dtype:
            go = go.to(x.dtype)
        if red == _NONE and go.shape != shape:
            go = go.expand(shape)
        if not go.is_contiguous():
            go = go.contiguous()
        gx = torch.empty(shape, dtype=x.dtype)
        gt = torch.empty(shape, dtype=x.dtype) if need_gt else None
        _capi.check(_kernels(x.dtype).poisson_nll_bwd(x.data_ptr(), t.data_ptr(), x.numel(), log_input, full, eps,
                                                      red, go.data_ptr(), gx.data_ptr(), _ptr(gt)))
        if need_gx and shape != input_shape:
            gx = gx.sum_to_size(input_shape)
        if need_gt and shape != target_shape:
            gt = gt.sum_to_size(target_shape)
        return (gx if need_gx else None), gt, None


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average: Optional[bool] = None, eps: float = 1e-8, reduce: Optional[bool] = None,
                     reduction: str = "mean") -> Tensor:
    """torch.nn.functional.poisson_nll_loss on nllk's kernels (same arguments, same results)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    options = _args.poisson_options(log_input, full, eps, reduction, "poisson_nll_loss")
    if not (type(input) is Tensor and type(target) is Tensor and input.dtype in _FLOATS
            and target.dtype is input.dtype and input.is_cpu and target.is_cpu
            and input.layout is _STRIDED and target.layout is _STRIDED):
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    if torch.is_grad_enabled() and (input.requires_grad or target.requires_grad):
        return _PoissonNLLFunction.apply(input, target, options)
    return _poisson_forward(input, target, options)[0]


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    """torch.nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
    reduction='mean') computed by nllk."""

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)


# ---- NLL ------------------------------------------------------------------------------------------------------
def _nll_forward(input, target, weight, ignore_index, geometry, with_total_weight=False):
    """The forward call: (out, total_weight (a ctypes scalar, None unless asked for), the contiguous target and
    weight it read)."""
    n, c, d, out_shape, red = geometry
    x = input if input.is_contiguous() else input.contiguous()
    t = target if target.is_contiguous() else target.contiguous()
    w = weight if weight is None or weight.is_contiguous() else weight.contiguous()
    k = _KERNELS.get(x.dtype) or _kernels(x.dtype)
    out = x.new_empty(out_shape if red == _NONE else ())
    tw = k.real() if with_total_weight else None
    status = k.nll_fwd(x.data_ptr(), t.data_ptr(), _TARGET_TYPES[t.dtype], n, c, d,
                       None if w is None else w.data_ptr(), ignore_index, red, out.data_ptr(),
                       None if tw is None else ctypes.addressof(tw))
    if status:
        _capi.check(status)
    return out, tw, t, w


class _NLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, geometry):
        out, tw, t, w = _nll_forward(input, target, weight, ignore_index, geometry, with_total_weight=True)
        ctx.keep = (t, w)  # the target and weight memory the backward call reads
        ctx.opts = (ignore_index, geometry, tw.value, input.shape, input.dtype)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        ignore_index, (n, c, d, _, red), total_weight, input_shape, dtype = ctx.opts
        t, w = ctx.keep
        go = grad_output
        if go.dtype is not dtype:
            go = go.to(dtype)
        if not go.is_contiguous():
            go = go.contiguous()
        gx = torch.empty(input_shape, dtype=dtype)
        _capi.check(_kernels(dtype).nll_bwd(go.data_ptr(), t.data_ptr(), _TARGET_TYPES[t.dtype], n, c, d, _ptr(w),
                                            ignore_index, red, total_weight, gx.data_ptr()))
        return gx, None, None, None, None


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average: Optional[bool] = None,
             ignore_index: int = -100, reduce: Optional[bool] = None, reduction: str = "mean") -> Tensor:
    """torch.nn.functional.nll_loss on nllk's kernels (same arguments, same results; targets may also be
    uint8 or int32 for every shape)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red, ii = _args.nll_options(reduction, ignore_index, "nll_loss")
    if not (type(input) is Tensor and type(target) is Tensor and input.dtype in _FLOATS
            and target.dtype in _TARGET_TYPES and input.is_cpu and target.is_cpu
            and input.layout is _STRIDED and target.layout is _STRIDED
            and (weight is None or (type(weight) is Tensor and weight.dtype is input.dtype and weight.is_cpu
                                    and weight.layout is _STRIDED and not weight.requires_grad))):
        return _F.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    geometry = _args.nll_geometry(input.shape, target.shape, None if weight is None else weight.shape, red)
    if input.requires_grad and torch.is_grad_enabled():
        return _NLLFunction.apply(input, target, weight, ii, geometry)
    return _nll_forward(input, target, weight, ii, geometry)[0]


class NLLLoss(torch.nn.NLLLoss):
    """torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')
    computed by nllk."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)
