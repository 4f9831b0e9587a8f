"""nllk as a PyTorch backend: drop-in loss modules and functions with autograd.

Change one import and a PyTorch program computes its losses with nllk:

    from nllk.torch import PoissonNLLLoss, NLLLoss          # instead of torch.nn's
    import nllk.torch as F                                   # F.poisson_nll_loss, F.nll_loss

The modules subclass torch.nn.PoissonNLLLoss and torch.nn.NLLLoss (same constructor arguments, state_dict,
isinstance), and the functions take torch.nn.functional's arguments, legacy size_average/reduce included.
Forward and backward (w.r.t. input, and w.r.t. target for Poisson, as PyTorch gives it) run nllk's kernels on
the tensors' memory, without copies for contiguous inputs. What nllk does not compute falls back to PyTorch
unchanged: tensors not on the CPU, dtypes other than float32/float64 (or input and target/weight of different
dtypes), NLL targets other than int64/int32/uint8, and shapes PyTorch would reject (so its errors are the same).
Double backward is not supported (use torch.nn for higher-order gradients).

Differences from PyTorch, by design (see include/nllk.h): mean and sum are reduced in double along a fixed tree
(the same bits for any thread count; within ~1 ulp of the exact sum), and the Poisson gradient w.r.t. target
with full=True is finite where target <= 0 (PyTorch gives NaN there, an artefact of its masked Stirling term).
"""
import ctypes

import torch
import torch.nn.functional as _F
from torch.nn import _reduction as _Reduction

from . import _torch_capi as _c

__all__ = ["PoissonNLLLoss", "NLLLoss", "poisson_nll_loss", "nll_loss", "library_info", "set_num_threads"]

library_info = _c.library_info
set_num_threads = _c.set_num_threads
_FLOATS = (torch.float32, torch.float64)


def _plain_cpu(t):
    return type(t) is torch.Tensor and t.is_cpu and t.layout is torch.strided


# ---- Poisson --------------------------------------------------------------------------------------------------
class _PoissonNLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, log_input, full, eps, red):
        x, t = input, target
        if x.shape != t.shape:
            x, t = torch.broadcast_tensors(x, t)
        if not x.is_contiguous():
            x = x.contiguous()
        if not t.is_contiguous():
            t = t.contiguous()
        n = x.numel()
        xp, tp = (x.data_ptr(), t.data_ptr()) if n else (None, None)
        out = x.new_empty(x.shape if red == _c.NONE else ())
        st = _c.POISSON_FWD[x.dtype](xp, tp, n, log_input, full, eps, red, out.data_ptr() if out.numel() else None)
        if st:
            _c._check(st)
        ctx.keep = (x, t)  # the inputs' memory the backward call reads
        ctx.opts = (xp, tp, n, log_input, full, eps, red, x.shape, input.shape, target.shape, x.dtype)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        xp, tp, n, log_input, full, eps, red, shape, input_shape, target_shape, dtype = ctx.opts
        need_gx, need_gt = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        go = grad_output
        if go.dtype is not dtype:
            go = go.to(dtype)
        if red == _c.NONE and go.shape != shape:
            go = go.expand(shape)
        if not go.is_contiguous():
            go = go.contiguous()
        gx = torch.empty(shape, dtype=dtype)
        gt = torch.empty(shape, dtype=dtype) if need_gt else None
        if n:
            st = _c.POISSON_BWD[dtype](xp, tp, n, log_input, full, eps, red, go.data_ptr(), gx.data_ptr(),
                                       gt.data_ptr() if need_gt else None)
            if st:
                _c._check(st)
        if need_gx and shape != input_shape:
            gx = gx.sum_to_size(input_shape)
        if need_gt and shape != target_shape:
            gt = gt.sum_to_size(target_shape)
        return (gx if need_gx else None), gt, None, None, None, None


_RED = {"none": _c.NONE, "mean": _c.MEAN, "sum": _c.SUM}


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """torch.nn.functional.poisson_nll_loss on nllk's kernels (same arguments, same results)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction)
    if red is None:
        raise ValueError(reduction + " is not valid")
    # fast path: no autograd graph to record, same-shape contiguous CPU tensors of one float dtype
    if (type(input) is torch.Tensor and type(target) is torch.Tensor and input.is_cpu and target.is_cpu
            and input.dtype is target.dtype and input.dtype in _FLOATS
            and not (torch.is_grad_enabled() and (input.requires_grad or target.requires_grad))
            and input.layout is torch.strided and target.layout is torch.strided and input.shape == target.shape
            and input.is_contiguous() and target.is_contiguous()):
        out = input.new_empty(input.shape if red == _c.NONE else ())
        st = _c.POISSON_FWD[input.dtype](input.data_ptr(), target.data_ptr(), input.numel(), bool(log_input),
                                        bool(full), eps, red, out.data_ptr())
        if st:
            _c._check(st)
        return out
    if not (_plain_cpu(input) and _plain_cpu(target) and input.dtype in _FLOATS and target.dtype == input.dtype):
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    try:
        torch.broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        return _F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps, reduction=reduction)
    return _PoissonNLLFunction.apply(input, target, bool(log_input), bool(full), float(eps), red)


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    """torch.nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
    reduction='mean') computed by nllk."""

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)


# ---- NLL ------------------------------------------------------------------------------------------------------
_TARGET_DTYPES = (torch.int64, torch.int32, torch.uint8)


def _nll_geometry(input, target, weight):
    """(n, c, d, output shape) when nllk takes these arguments as PyTorch does, else None (PyTorch decides)."""
    if not (type(input) is torch.Tensor and type(target) is torch.Tensor and input.is_cpu and target.is_cpu
            and input.layout is torch.strided and target.layout is torch.strided and input.dtype in _FLOATS
            and target.dtype in _TARGET_DTYPES):
        return None
    if weight is not None and not (type(weight) is torch.Tensor and weight.is_cpu and weight.layout is torch.strided
                                   and weight.dtype is input.dtype and weight.dim() == 1):
        return None
    shape, tshape = input.shape, target.shape
    dims = len(shape)
    if dims == 2:
        if len(tshape) != 1 or tshape[0] != shape[0]:
            return None
        geometry = (shape[0], shape[1], 1, tshape)
    elif dims == 1:
        if len(tshape) != 0:
            return None
        geometry = (1, shape[0], 1, tshape)
    elif dims > 2:
        if len(tshape) != dims - 1 or tshape[0] != shape[0] or tshape[1:] != shape[2:]:
            return None
        d = 1
        for s in shape[2:]:
            d *= s
        geometry = (shape[0], shape[1], d, tshape)
    else:
        return None
    if weight is not None and weight.shape[0] != geometry[1]:
        return None
    return geometry


def _nll_forward(input, target, weight, ignore_index, red, geometry):
    """The forward call: (out, backward state)."""
    n, c, d, out_shape = geometry
    dtype = input.dtype
    x = input if input.is_contiguous() else input.contiguous()
    t = target if target.is_contiguous() else target.contiguous()
    w = weight if weight is None or weight.is_contiguous() else weight.contiguous()
    tt = _c.TARGET_TYPES[t.dtype]
    tp = t.data_ptr() if t.numel() else None
    wp = w.data_ptr() if w is not None and w.numel() else None
    out = x.new_empty(out_shape if red == _c.NONE else ())
    tw = _c.SCALAR[dtype]()
    st = _c.NLL_FWD[dtype](x.data_ptr() if x.numel() else None, tp, tt, n, c, d, wp, ignore_index, red,
                           out.data_ptr() if out.numel() else None, ctypes.addressof(tw))
    if st == _c.ERR_TARGET_OUT_OF_RANGE:
        raise IndexError(_c.lib.nllk_last_error().decode(errors="replace"))
    if st:
        _c._check(st)
    return out, (t, w, (tp, tt, n, c, d, wp, ignore_index, red, tw.value, input.shape, dtype))


class _NLLFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, red, geometry):
        out, (t, w, opts) = _nll_forward(input, target, weight, ignore_index, red, geometry)
        ctx.keep = (t, w)  # the target and weight memory the backward call reads
        ctx.opts = opts
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        tp, tt, n, c, d, wp, ignore_index, red, total_weight, input_shape, dtype = ctx.opts
        go = grad_output
        if go.dtype is not dtype:
            go = go.to(dtype)
        if not go.is_contiguous():
            go = go.contiguous()
        gx = torch.empty(input_shape, dtype=dtype)
        st = _c.NLL_BWD[dtype](go.data_ptr() if go.numel() else None, tp, tt, n, c, d, wp, ignore_index, red,
                               total_weight, gx.data_ptr() if gx.numel() else None)
        if st:
            _c._check(st)
        return gx, None, None, None, None, None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """torch.nn.functional.nll_loss on nllk's kernels (same arguments, same results; targets may also be
    uint8 or int32 for every shape)."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    red = _RED.get(reduction)
    geometry = _nll_geometry(input, target, weight) if red is not None else None
    if geometry is None:
        return _F.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    if input.requires_grad and torch.is_grad_enabled():
        return _NLLFunction.apply(input, target, weight, int(ignore_index), red, geometry)
    return _nll_forward(input, target, weight, int(ignore_index), red, geometry)[0]


class NLLLoss(torch.nn.NLLLoss):
    """torch.nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')
    computed by nllk."""

    def forward(self, input, target):
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)
